//! Pretraining data, optimizers and the loop, against independent references: masking statistics
//! over a large sample (the paper's rates, with stated tolerances), SOP/NSP labels against the
//! corpus order, LAMB and AdamW against PyTorch (fixture made by tools/make_optimizer_fixture.py),
//! and exact resume on the CPU.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use albert_core::AlbertConfig;
use albert_train::data::masking::mask_ngrams;
use albert_train::data::{
    Corpus, InstanceOptions, MaskingOptions, Objective, SpecialIds, create_instances,
};
use albert_train::optim::{Optimizer, OptimizerKind, OptimizerOptions};
use albert_train::pretrain::{PretrainOptions, pretrain};
use rand::SeedableRng;
use tch::{Device, Tensor};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Synthetic ids: every token a word start except every third (a continuation piece).
fn ids(vocab: u32) -> SpecialIds {
    SpecialIds {
        cls: 2,
        sep: 3,
        mask: 4,
        pad: 0,
        vocab_size: vocab,
        first_regular: 5,
        word_start: (0..vocab).map(|i| i % 3 != 0).collect(),
    }
}

#[test]
fn masking_rates_follow_the_paper() {
    let ids = ids(1000);
    let options = MaskingOptions {
        masked_lm_prob: 0.15,
        max_predictions: 1000,
        max_ngram: 3,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (mut candidates, mut predicted, mut masked, mut kept, mut random) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut ngram_words: HashMap<usize, usize> = HashMap::new();
    for sample in 0..2000u32 {
        let body: Vec<u32> = (0..120u32)
            .map(|i| 5 + (i * 7 + sample * 13) % 995)
            .collect();
        let mut tokens = vec![2];
        tokens.extend_from_slice(&body);
        tokens.push(3);
        let original = tokens.clone();
        let (positions, labels) = mask_ngrams(&mut tokens, &ids, &options, &mut rng);
        candidates += body.len();
        predicted += positions.len();
        assert!(
            !positions.contains(&0) && !positions.contains(&(tokens.len() - 1)),
            "special tokens are never masked"
        );
        for (&p, &label) in positions.iter().zip(&labels) {
            assert_eq!(original[p], label);
            match tokens[p] {
                4 => masked += 1,
                t if t == label => kept += 1,
                _ => random += 1,
            }
        }
        // Group the masked positions into runs of whole words to see the n-gram lengths.
        let mut run_words = 0;
        for (k, &p) in positions.iter().enumerate() {
            let starts_word = ids.word_start[original[p] as usize];
            let contiguous = k > 0 && positions[k - 1] + 1 == p;
            if contiguous && !starts_word {
                continue;
            }
            if contiguous {
                run_words += 1;
            } else {
                if run_words > 0 {
                    *ngram_words.entry(run_words).or_default() += 1;
                }
                run_words = 1;
            }
        }
        if run_words > 0 {
            *ngram_words.entry(run_words).or_default() += 1;
        }
    }
    let rate = predicted as f64 / candidates as f64;
    assert!((rate - 0.15).abs() < 0.005, "masked fraction {rate}");
    let total = (masked + kept + random) as f64;
    let (m, k, r) = (
        masked as f64 / total,
        kept as f64 / total,
        random as f64 / total,
    );
    assert!(
        (m - 0.8).abs() < 0.01 && (k - 0.1).abs() < 0.01 && (r - 0.1).abs() < 0.01,
        "80/10/10: {m:.3}/{k:.3}/{r:.3}"
    );
    // n-gram lengths: p(n) ∝ 1/n → 6/11, 3/11, 2/11. Adjacent n-grams merge into longer runs in
    // this count, so runs of 1 word are under-counted a little: check the order and rough sizes.
    let runs: usize = ngram_words.values().sum();
    let share = |n| *ngram_words.get(&n).unwrap_or(&0) as f64 / runs as f64;
    assert!(
        share(1) > share(2) && share(2) > share(3),
        "{ngram_words:?}"
    );
    assert!(
        (share(1) - 6.0 / 11.0).abs() < 0.08,
        "1-grams {:.3}",
        share(1)
    );
    assert!(ngram_words.keys().all(|&n| n <= 9), "{ngram_words:?}");
}

fn corpus() -> Corpus {
    // 40 documents whose sentences encode (document, sentence) in their ids, so order is checkable.
    Corpus {
        documents: (0..40u32)
            .map(|d| {
                (0..(3 + d % 7))
                    .map(|s| vec![1000 + d * 100 + s; 3 + (s % 4) as usize])
                    .collect()
            })
            .collect(),
    }
}

fn decode(id: u32) -> Option<(u32, u32)> {
    (id >= 1000).then(|| ((id - 1000) / 100, (id - 1000) % 100))
}

/// Segments A and B as (document, sentence) sequences of the unmasked ids.
/// (document, sentence) of each token of a segment.
type Positions = Vec<(u32, u32)>;

fn segments(instance: &albert_train::data::Instance) -> (Positions, Positions) {
    let mut tokens = instance.input_ids.clone();
    for (&p, &l) in instance
        .masked_positions
        .iter()
        .zip(&instance.masked_labels)
    {
        tokens[p] = l;
    }
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (t, &ty) in tokens.iter().zip(&instance.token_type_ids) {
        if let Some(ds) = decode(*t) {
            if ty == 0 { a.push(ds) } else { b.push(ds) }
        }
    }
    (a, b)
}

#[test]
fn sop_labels_match_the_order_and_stay_in_the_document() {
    let options = InstanceOptions {
        max_seq_length: 24,
        objective: Objective::Sop,
        ..InstanceOptions::default()
    };
    let instances = create_instances(&corpus(), &ids(5000), &options, 7, 0);
    assert!(instances.len() > 50);
    let mut swapped = 0;
    for inst in &instances {
        let (a, b) = segments(inst);
        assert!(!a.is_empty() && !b.is_empty());
        assert!(
            a.iter()
                .chain(&b)
                .all(|(d, _)| *d as usize == inst.document),
            "SOP crosses a document boundary"
        );
        let (last_a, first_b) = (a.last().unwrap().1, b.first().unwrap().1);
        if inst.sentence_label == 0 {
            assert!(last_a <= first_b, "label 0 but B comes before A");
        } else {
            swapped += 1;
            assert!(last_a >= first_b, "label 1 but A comes before B");
        }
        assert_eq!(inst.input_ids[0], 2);
        assert!(inst.input_ids.len() <= 24);
    }
    let share = swapped as f64 / instances.len() as f64;
    assert!((share - 0.5).abs() < 0.12, "swapped share {share}");
}

#[test]
fn nsp_negatives_come_from_another_document_and_positives_follow() {
    let options = InstanceOptions {
        max_seq_length: 32,
        objective: Objective::Nsp,
        ..InstanceOptions::default()
    };
    let instances = create_instances(&corpus(), &ids(5000), &options, 3, 0);
    for inst in &instances {
        let (a, b) = segments(inst);
        assert!(a.iter().all(|(d, _)| *d as usize == inst.document));
        match inst.sentence_label {
            0 => {
                assert!(b.iter().all(|(d, _)| *d as usize == inst.document));
                assert!(a.last().unwrap().1 <= b.first().unwrap().1);
            }
            _ => {
                let other = inst
                    .other_document
                    .expect("negatives record their document");
                assert_ne!(other, inst.document);
                assert!(b.iter().all(|(d, _)| *d as usize == other));
            }
        }
    }
    // Different epochs mask differently (dynamic masking), the same epoch identically.
    let again = create_instances(&corpus(), &ids(5000), &options, 3, 0);
    let next = create_instances(&corpus(), &ids(5000), &options, 3, 1);
    assert_eq!(instances, again);
    assert_ne!(instances, next);
}

fn fixture() -> HashMap<String, Tensor> {
    Tensor::read_safetensors(root().join("tests/fixtures/optim/steps.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn run_optimizer(kind: OptimizerKind) -> Vec<(String, Tensor)> {
    let f = fixture();
    let names: Vec<String> = f
        .keys()
        .filter_map(|k| k.strip_prefix("initial/").map(str::to_string))
        .collect();
    let vars: Vec<(String, Tensor)> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                f[&format!("initial/{n}")].copy().set_requires_grad(true),
            )
        })
        .collect();
    let mut optimizer = Optimizer::new(
        vars.iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect(),
        OptimizerOptions {
            kind,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            weight_decay: 0.01,
        },
    );
    for step in 0..3 {
        optimizer.zero_grad();
        // loss = Σ w·g makes the gradient exactly g.
        let loss = vars
            .iter()
            .map(|(n, t)| (t * f[&format!("grads/{n}")].get(step)).sum(tch::Kind::Float))
            .fold(
                Tensor::zeros([], (tch::Kind::Float, Device::Cpu)),
                |a, b| a + b,
            );
        loss.backward();
        optimizer.step(0.01);
    }
    vars
}

#[test]
fn lamb_and_adamw_match_pytorch() {
    let f = fixture();
    for (kind, prefix) in [
        (OptimizerKind::Lamb, "lamb"),
        (OptimizerKind::AdamW, "adamw"),
    ] {
        for (name, value) in run_optimizer(kind) {
            let expected = &f[&format!("{prefix}/{name}")];
            let diff = (value.detach() - expected).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "{prefix} {name}: {diff:e}");
        }
    }
}

/// A run that nobody interrupts.
fn run(options: &PretrainOptions) -> albert_train::Result<albert_train::pretrain::PretrainSummary> {
    pretrain(options, Arc::new(AtomicBool::new(false)))
}

fn options(output: &Path, steps: u64, resume: bool) -> PretrainOptions {
    let tokenizer = output.parent().unwrap().join("tokenizer.json");
    if !tokenizer.exists() {
        let t = albert_core::tokenizer::train_unigram(
            &[root()
                .join("tests/fixtures/corpus/small-sample.txt")
                .as_path()],
            300,
        )
        .unwrap();
        albert_core::tokenizer::save(&t, &tokenizer).unwrap();
    }
    let vocab = albert_core::tokenizer::load(&tokenizer)
        .unwrap()
        .get_vocab_size(true);
    PretrainOptions {
        config: AlbertConfig {
            vocab_size: vocab,
            embedding_size: 16,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 48,
            max_position_embeddings: 64,
            hidden_dropout_prob: 0.1,
            ..AlbertConfig::default()
        },
        tokenizer,
        train_files: vec![root().join("tests/fixtures/corpus/small-sample.txt")],
        eval_files: vec![],
        output: output.to_path_buf(),
        instances: InstanceOptions {
            max_seq_length: 48,
            ..InstanceOptions::default()
        },
        batch_size: 4,
        accumulation: 2,
        steps,
        stop_after: None,
        optimizer: OptimizerOptions::default(),
        learning_rate: 0.005,
        warmup_steps: 2,
        clip: 1.0,
        eval_every: 0,
        eval_batches: 1,
        save_every: 0,
        keep: 2,
        seed: 11,
        device: Device::Cpu,
        resume,
        init_from: None,
        progress: false,
        bf16: false,
    }
}

#[test]
fn resume_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = run(&options(&tmp.path().join("straight"), 8, false)).unwrap();
    assert_eq!(straight.losses.len(), 8);

    // The same run stopped part-way (as by Ctrl-C, which saves a checkpoint first), then resumed.
    let partial = options(&tmp.path().join("resumed"), 8, false);
    let flag = Arc::new(AtomicBool::new(false));
    let worker_flag = Arc::clone(&flag);
    let handle = std::thread::spawn(move || pretrain(&partial, worker_flag));
    // The flag is polled after every step; raise it once a few steps are logged.
    let metrics = tmp.path().join("resumed").join("metrics.jsonl");
    while !handle.is_finished() {
        if std::fs::read_to_string(&metrics).is_ok_and(|t| t.lines().count() >= 3) {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let first = handle.join().unwrap().unwrap();
    assert!(first.stopped_early);
    let done = first.steps as usize;
    assert!(done < 8);
    let resumed = run(&options(&tmp.path().join("resumed"), 8, true)).unwrap();
    let mut losses = first.losses.clone();
    losses.extend(&resumed.losses);
    assert_eq!(losses, straight.losses, "resumed after step {done}");
    assert!(tmp.path().join("resumed/curves.svg").exists());
    let kept = albert_train::pretrain::checkpoints(&tmp.path().join("resumed")).unwrap();
    assert!(kept.len() <= 2);
}

#[test]
fn stop_after_keeps_the_schedule_and_resume_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let straight = run(&options(&tmp.path().join("straight"), 6, false)).unwrap();
    let mut boxed = options(&tmp.path().join("boxed"), 6, false);
    boxed.stop_after = Some(4);
    let first = run(&boxed).unwrap();
    assert!(first.stopped_early);
    assert_eq!(first.steps, 4);
    // Same schedule (lr of a 6-step run) for the first 4 steps, so the same losses.
    assert_eq!(first.losses, straight.losses[..4]);
    assert!(first.last_checkpoint.ends_with("checkpoint-00000004"));
    let rest = run(&options(&tmp.path().join("boxed"), 6, true)).unwrap();
    assert_eq!(rest.losses, straight.losses[4..]);
}

/// A run of 4 steps stopped after 2 (a checkpoint at step 2) under `tmp/run`: the directory.
fn stopped_run(tmp: &Path) -> PathBuf {
    let out = tmp.join("run");
    let mut first = options(&out, 4, false);
    first.stop_after = Some(2);
    run(&first).unwrap();
    out
}

/// A damaged `trainer_state.json` — cut short, a field missing, a field of the wrong type — is
/// refused by `--resume`, naming the file and the field, instead of resuming from epoch 0.
#[test]
fn resume_refuses_a_damaged_trainer_state_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stopped_run(tmp.path());
    let path = out.join("checkpoint-00000002").join("trainer_state.json");
    let good = std::fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&good).unwrap();
    let edited = |edit: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut v = value.clone();
        edit(v.as_object_mut().unwrap());
        v.to_string()
    };
    // Cut just after the key `"epoch":`, so the file ends where that field's value should be.
    let cut = good.find("\"epoch\"").unwrap() + "\"epoch\":".len();
    let cases = [
        ("cut short", good[..cut].to_string(), "epoch"),
        (
            "missing field",
            edited(&|m| {
                m.remove("index");
            }),
            "index",
        ),
        (
            "wrong type",
            edited(&|m| {
                m.insert("optimizer_steps".into(), "two".into());
            }),
            "optimizer_steps",
        ),
    ];
    for (what, text, field) in cases {
        std::fs::write(&path, &text).unwrap();
        let err = run(&options(&out, 4, true)).unwrap_err().to_string();
        assert!(
            err.contains("--resume")
                && err.contains(&path.display().to_string())
                && err.contains(&format!("`{field}`")),
            "{what}: {err}"
        );
    }
    // The intact file resumes.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(run(&options(&out, 4, true)).unwrap().steps, 4);
}

/// `--resume` with nothing to resume from, or from another model's checkpoint (a config of other
/// sizes), fails naming the argument and the directory or the differing field.
#[test]
fn resume_refuses_no_checkpoint_and_another_models_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    let err = run(&options(&empty, 4, true)).unwrap_err().to_string();
    assert!(
        err.contains("--resume") && err.contains(&format!("no checkpoint in {}", empty.display())),
        "{err}"
    );

    let out = stopped_run(tmp.path());
    let mut other = options(&out, 4, true);
    other.config.hidden_size = 64;
    let err = run(&other).unwrap_err().to_string();
    let config = out.join("checkpoint-00000002").join("config.json");
    assert!(
        err.contains("--resume")
            && err.contains(&config.display().to_string())
            && err.contains("`hidden_size`"),
        "{err}"
    );
}

#[test]
fn bf16_autocast_stays_close_to_fp32_and_trains() {
    use albert_core::Head;
    use albert_train::AlbertModel;
    use albert_train::model::precision::bf16_autocast;
    let config = AlbertConfig {
        vocab_size: 100,
        embedding_size: 16,
        hidden_size: 64,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        intermediate_size: 96,
        max_position_embeddings: 32,
        ..AlbertConfig::default()
    };
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let model = AlbertModel::new(&vs, &config, Head::Pretraining.parts()).unwrap();
    let ids = Tensor::from_slice(&[2i64, 17, 45, 9, 88, 3, 2, 61, 12, 3, 0, 0]).view([2, 6]);
    let mask = ids.ne(0).to_kind(tch::Kind::Int64);
    let fp32 = model
        .forward(&ids, Some(&mask), None, false)
        .unwrap()
        .mlm_logits
        .unwrap();
    let bf16 = bf16_autocast(true, || {
        model
            .forward(&ids, Some(&mask), None, false)
            .unwrap()
            .mlm_logits
            .unwrap()
    });
    assert_eq!(bf16.kind(), tch::Kind::Float, "outputs come back in f32");
    let scale = fp32.abs().max().double_value(&[]);
    let diff = (&fp32 - &bf16).abs().max().double_value(&[]);
    // bf16 keeps 8 bits of mantissa: a few parts in a thousand per product, accumulated over layers.
    assert!(
        diff / scale < 0.05,
        "relative difference {:.4}",
        diff / scale
    );
    assert!(diff > 0.0, "the bf16 path was not taken");
    let loss = bf16_autocast(true, || {
        model
            .forward(&ids, Some(&mask), None, true)
            .unwrap()
            .mlm_logits
            .unwrap()
            .square()
            .mean(tch::Kind::Float)
    });
    loss.backward();
    let grad =
        vs.variables()["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"].grad();
    assert!(
        grad.defined()
            && grad.kind() == tch::Kind::Float
            && grad.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0
    );
}

#[test]
fn the_stream_replays_to_any_position_across_epochs() {
    use albert_train::data::InstanceStream;
    let corpus = corpus();
    let ids = ids(5000);
    let options = InstanceOptions {
        max_seq_length: 24,
        ..InstanceOptions::default()
    };
    let mut stream = InstanceStream::new(&corpus, &ids, options, 5, 0, 16);
    let first: Vec<_> = (0..300).map(|_| stream.next_instance().unwrap()).collect();
    assert!(
        stream.position().0 >= 1,
        "300 examples span more than one epoch"
    );
    let (epoch, index) = {
        let mut s = InstanceStream::new(&corpus, &ids, options, 5, 0, 16);
        for _ in 0..250 {
            s.next_instance();
        }
        s.position()
    };
    let mut resumed = InstanceStream::at(&corpus, &ids, options, 5, epoch, index, 16).unwrap();
    let rest: Vec<_> = (0..50).map(|_| resumed.next_instance().unwrap()).collect();
    assert_eq!(rest, first[250..]);
    // An epoch holds every document's examples once (the buffer only reorders them).
    let one_epoch = create_instances(&corpus, &ids, &options, 5, 0);
    let mut docs: Vec<usize> = one_epoch.iter().map(|i| i.document).collect();
    docs.sort_unstable();
    docs.dedup();
    assert_eq!(docs.len(), corpus.documents.len());
}

#[test]
fn evaluate_scores_the_heads_it_has_and_probes_both_sentence_tasks() {
    use albert_train::evaluate::{EvaluateOptions, evaluate};
    let tmp = tempfile::tempdir().unwrap();
    let heldout = root().join("tests/fixtures/corpus/heldout-sample.txt");
    let mut options = options(&tmp.path().join("run"), 6, false);
    options.accumulation = 1;
    options.eval_files = vec![heldout.clone()];
    options.eval_every = 6;
    options.eval_batches = 3;
    let summary = run(&options).unwrap();
    let eval = summary.eval.expect("evaluated at the last step");

    let evaluate_options = EvaluateOptions {
        model: summary.last_checkpoint.clone(),
        eval_files: vec![heldout.clone()],
        probe_train_files: vec![root().join("tests/fixtures/corpus/small-sample.txt")],
        max_seq_length: 48,
        examples: options.eval_batches * options.batch_size,
        probe_examples: 200,
        probe_steps: 50,
        batch_size: options.batch_size,
        seed: options.seed,
        device: Device::Cpu,
    };
    let report = evaluate(&evaluate_options).unwrap();
    assert_eq!(report.trained_objective, "sop");
    // The model's own SOP head on the very examples pretraining evaluated: the same accuracy.
    let head = report.sop.head.expect("the checkpoint has an SOP head");
    assert!(
        (head - eval.sentence_accuracy).abs() < 1e-6,
        "{head} vs {eval:?}"
    );
    assert!(report.nsp.head.is_none(), "no NSP head was trained");
    assert!(
        report.sop.other_head.is_none(),
        "the SOP head is the own head on SOP"
    );
    // The SOP head read on NSP examples (the paper's "SOP-trained model on NSP" cell), recomputed
    // here one example at a time (no padding, unlike evaluate's batches) from the public parts:
    // the held-out NSP examples, the head's argmax against the label (1: B is from elsewhere).
    // On 64 examples: at 48 tokens most chunks are one sentence, always a negative, so 12 can
    // hold no positive at all (the tokenizer is trained on README.md and changes with it).
    let wide = evaluate(&EvaluateOptions {
        examples: 64,
        ..evaluate_options
    })
    .unwrap();
    let cross = wide.nsp.other_head.expect("the SOP head is scored on NSP");
    let checkpoint = albert_core::Checkpoint::read_dir(&summary.last_checkpoint).unwrap();
    let tokenizer =
        albert_core::tokenizer::load(&summary.last_checkpoint.join("tokenizer.json")).unwrap();
    let special = SpecialIds::from_tokenizer(&tokenizer).unwrap();
    let corpus = Corpus::load(&[heldout.as_path()], &tokenizer).unwrap();
    let instance_options = InstanceOptions {
        max_seq_length: 48,
        objective: Objective::Nsp,
        ..InstanceOptions::default()
    };
    let mut nsp = create_instances(
        &corpus,
        &special,
        &instance_options,
        options.seed ^ albert_train::evaluate::HELD_OUT_SEED,
        0,
    );
    nsp.truncate(64);
    assert_eq!(nsp.len(), wide.nsp.held_out_examples);
    assert!(nsp.iter().any(|i| i.sentence_label == 1) && nsp.iter().any(|i| i.sentence_label == 0));
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let model = albert_train::AlbertModel::from_checkpoint(&vs, &checkpoint).unwrap();
    let row = |v: &[i64]| Tensor::from_slice(v).unsqueeze(0);
    let right = nsp
        .iter()
        .filter(|inst| {
            let ids: Vec<i64> = inst.input_ids.iter().map(|&x| i64::from(x)).collect();
            let types: Vec<i64> = inst.token_type_ids.iter().map(|&x| i64::from(x)).collect();
            let (_, pooled) = model
                .encode(&row(&ids), &row(&vec![1; ids.len()]), &row(&types), false)
                .unwrap();
            let logits = model.sentence_logits(&pooled.unwrap(), false).unwrap();
            logits.argmax(-1, false).int64_value(&[0]) == i64::from(inst.sentence_label)
        })
        .count();
    let expected = right as f64 / nsp.len() as f64;
    assert!((cross - expected).abs() < 1e-6, "{cross} vs {expected}");
    assert!(
        report
            .mlm_accuracy
            .is_some_and(|a| (0.0..=1.0).contains(&a))
    );
    assert!(report.mlm_predictions > 0);
    for scores in [report.sop, report.nsp] {
        assert_eq!(scores.held_out_examples, 12);
        assert!(scores.probe_train_examples > 50, "{scores:?}");
        assert!((0.0..=1.0).contains(&scores.probe));
        assert!((0.5..=1.0).contains(&scores.chance));
    }
}

#[test]
fn init_from_starts_from_a_checkpoints_weights_with_the_same_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let first = run(&options(&tmp.path().join("first"), 3, false)).unwrap();
    // A zero learning rate leaves the weights as loaded: the new run's checkpoint is the old one.
    let mut again = options(&tmp.path().join("again"), 1, false);
    again.init_from = Some(first.last_checkpoint.clone());
    again.learning_rate = 0.0;
    let second = run(&again).unwrap();
    let a = albert_core::Checkpoint::read_dir(&first.last_checkpoint).unwrap();
    let b = albert_core::Checkpoint::read_dir(&second.last_checkpoint).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, tensor) in &a.tensors {
        assert_eq!(tensor.data, b.tensors[name].data, "{name}");
    }
    // Another tokenizer of the same size is refused, naming both files.
    let other = tmp.path().join("other-tokenizer.json");
    let vocab = albert_core::tokenizer::load(&again.tokenizer)
        .unwrap()
        .get_vocab_size(true);
    let sample = root().join("tests/fixtures/corpus/heldout-sample.txt");
    let t = albert_core::tokenizer::train_unigram(&[sample.as_path()], vocab).unwrap();
    albert_core::tokenizer::save(&t, &other).unwrap();
    again.tokenizer = other;
    let err = run(&again).unwrap_err().to_string();
    assert!(
        err.contains("--init-from") && err.contains("other-tokenizer.json"),
        "{err}"
    );
}
