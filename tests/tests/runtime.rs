//! `albert-runtime` end to end: exported models (every task) run through the pipeline on ONNX
//! Runtime and on tract. References: the f64 forward pass from the checkpoint (albert-onnx, itself
//! checked against HF transformers), one-by-one runs for batching, single-thread runs for
//! concurrency. Tolerances: engine vs reference ≤ 1e-4; batched vs one-by-one ≤ 1e-4 (different
//! padding changes float summation order only); threads vs single thread: bit-identical.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::sync::Arc;

use albert_core::compare;
use albert_e2e::{SENTENCES, exported, tiny_config};
use albert_onnx::export::Task;
use albert_onnx::reference;
use albert_runtime::{
    BackendChoice, EmbedOptions, ExecutionTarget, FallbackPolicy, OrtOptions, Pipeline,
    PipelineOptions, Pooling, Provider, RuntimeError, TractOptions, Truncation,
};

fn ort() -> BackendChoice {
    BackendChoice::Ort(OrtOptions::default())
}

fn tract() -> BackendChoice {
    BackendChoice::Tract(TractOptions::default())
}

fn options(backend: BackendChoice) -> PipelineOptions {
    PipelineOptions {
        backend,
        ..PipelineOptions::default()
    }
}

/// Both engines, on the pipeline's own batches, against the reference forward pass.
#[test]
fn both_engines_match_the_reference_for_every_task() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, task) in Task::ALL.into_iter().enumerate() {
        let (checkpoint, dir) = exported(tmp.path(), task, 10 + i as u64);
        for choice in [ort(), tract()] {
            let pipeline = Pipeline::load(&dir, &options(choice.clone())).unwrap();
            let tokenizer = pipeline.tokenizer();
            let encodings: Vec<_> = SENTENCES
                .iter()
                .map(|s| tokenizer.encode(*s, true).unwrap())
                .collect();
            let longest = encodings.iter().map(|e| e.len()).max().unwrap();
            let mut inputs = albert_runtime::ModelInputs {
                input_ids: ndarray::Array2::zeros((encodings.len(), longest)),
                attention_mask: ndarray::Array2::zeros((encodings.len(), longest)),
                token_type_ids: ndarray::Array2::zeros((encodings.len(), longest)),
            };
            for (row, e) in encodings.iter().enumerate() {
                for (col, &id) in e.get_ids().iter().enumerate() {
                    inputs.input_ids[[row, col]] = i64::from(id);
                    inputs.attention_mask[[row, col]] = 1;
                }
            }
            let expected = reference::run(&checkpoint, task, &inputs).unwrap();
            let backend = albert_runtime::backend::load(&dir.join("model.onnx"), &choice).unwrap();
            let got = backend.run(&inputs).unwrap();
            for (name, value) in &expected {
                let got = got[name].view().unwrap();
                let diff = compare::max_abs_diff(&got, value);
                assert!(
                    diff <= 1e-4,
                    "{task} {}: {name}: {diff:e}",
                    pipeline.target()
                );
            }
        }
    }
}

#[test]
fn engines_agree_on_every_task_result() {
    let tmp = tempfile::tempdir().unwrap();
    let load = |task: Task, seed: u64| {
        let (_, dir) = exported(tmp.path(), task, seed);
        (
            Pipeline::load(&dir, &options(ort())).unwrap(),
            Pipeline::load(&dir, &options(tract())).unwrap(),
        )
    };

    let (a, b) = load(Task::Base, 1);
    assert_eq!(a.target(), ExecutionTarget::OrtCpu);
    assert_eq!(b.target(), ExecutionTarget::TractCpu);
    for pooling in [Pooling::Cls, Pooling::Pooler, Pooling::Mean] {
        let opts = EmbedOptions {
            pooling,
            normalize: true,
        };
        let (x, y) = (
            a.embed(&SENTENCES, opts).unwrap(),
            b.embed(&SENTENCES, opts).unwrap(),
        );
        for (u, v) in x.iter().zip(&y) {
            assert!(compare::max_abs_diff(u, v) <= 1e-4, "{pooling:?}");
            let norm: f32 = u.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }

    let (a, b) = load(Task::MaskedLm, 2);
    let text = "ALBERT shares one set of [MASK] weights across all [MASK].";
    let (x, y) = (a.fill_mask(text, 5).unwrap(), b.fill_mask(text, 5).unwrap());
    assert_eq!(x.len(), 2);
    for (p, q) in x.iter().zip(&y) {
        assert_eq!(p.candidates.len(), 5);
        assert!(p.candidates.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(p.candidates[0].id, q.candidates[0].id);
        assert!((p.candidates[0].score - q.candidates[0].score).abs() < 1e-4);
    }

    let (a, b) = load(Task::SequenceClassification, 3);
    let (x, y) = (
        a.classify(&SENTENCES).unwrap(),
        b.classify(&SENTENCES).unwrap(),
    );
    for (p, q) in x.iter().zip(&y) {
        assert_eq!(p.label, q.label);
        assert!(["negative", "neutral", "positive"].contains(&p.label.as_str()));
        let total: f32 = p.scores.iter().map(|s| s.score).sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert!(
            compare::max_abs_diff(
                &p.scores.iter().map(|s| s.score).collect::<Vec<_>>(),
                &q.scores.iter().map(|s| s.score).collect::<Vec<_>>()
            ) < 1e-4
        );
    }
    let pairs = [
        ("Is it shared?", "Yes, across layers."),
        ("Short text.", "Yes."),
    ];
    let (x, y) = (
        a.classify_pairs(&pairs).unwrap(),
        b.classify_pairs(&pairs).unwrap(),
    );
    assert_eq!(
        x.iter().map(|c| &c.label).collect::<Vec<_>>(),
        y.iter().map(|c| &c.label).collect::<Vec<_>>()
    );

    let (a, b) = load(Task::TokenClassification, 4);
    let text = "Factorized embeddings project a small space.";
    let (x, y) = (
        a.token_classify(&[text]).unwrap(),
        b.token_classify(&[text]).unwrap(),
    );
    let words: Vec<&str> = x[0].iter().map(|w| w.word.as_str()).collect();
    assert_eq!(
        words,
        vec![
            "Factorized",
            "embeddings",
            "project",
            "a",
            "small",
            "space."
        ]
    );
    for w in &x[0] {
        let span: String = text.chars().skip(w.start).take(w.end - w.start).collect();
        assert_eq!(span, w.word);
    }
    for (p, q) in x[0].iter().zip(&y[0]) {
        assert_eq!(
            (&p.word, &p.label, p.start, p.end),
            (&q.word, &q.label, q.start, q.end)
        );
        assert!((p.score - q.score).abs() < 1e-4);
    }

    let (a, b) = load(Task::QuestionAnswering, 5);
    let context = "ALBERT shares one set of layer weights across all layers of the encoder.";
    let (x, y) = (
        a.answer("What is shared?", context).unwrap(),
        b.answer("What is shared?", context).unwrap(),
    );
    assert_eq!((x.start, x.end), (y.start, y.end));
    assert!(x.end <= context.chars().count() && x.start < x.end);
    assert!(context.contains(&x.text));
}

#[test]
fn batched_results_equal_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = exported(tmp.path(), Task::Base, 6);
    for backend in [ort(), tract()] {
        let batched = Pipeline::load(
            &dir,
            &PipelineOptions {
                backend: backend.clone(),
                batch_size: 4,
                ..PipelineOptions::default()
            },
        )
        .unwrap();
        let opts = EmbedOptions {
            pooling: Pooling::Mean,
            normalize: false,
        };
        let together = batched.embed(&SENTENCES, opts).unwrap();
        for (sentence, vector) in SENTENCES.iter().zip(&together) {
            let alone = batched.embed(&[sentence], opts).unwrap();
            let diff = compare::max_abs_diff(&alone[0], vector);
            assert!(diff <= 1e-4, "{}: `{sentence}`: {diff:e}", batched.target());
        }
    }
}

#[test]
fn eight_threads_get_the_single_thread_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = exported(tmp.path(), Task::SequenceClassification, 7);
    for backend in [ort(), tract()] {
        let pipeline = Arc::new(Pipeline::load(&dir, &options(backend)).unwrap());
        let expected: Vec<_> = SENTENCES
            .iter()
            .map(|s| pipeline.classify(&[s]).unwrap().remove(0))
            .collect();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let pipeline = Arc::clone(&pipeline);
                std::thread::spawn(move || {
                    (0..10)
                        .map(|k| {
                            let i = (t + k) % SENTENCES.len();
                            (i, pipeline.classify(&[SENTENCES[i]]).unwrap().remove(0))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            for (i, got) in handle.join().unwrap() {
                assert_eq!(got, expected[i], "{}", pipeline.target());
            }
        }
    }
}

#[test]
fn providers_are_honest() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = exported(tmp.path(), Task::Base, 8);
    let cuda = |policy| PipelineOptions {
        backend: BackendChoice::Ort(OrtOptions {
            providers: vec![Provider::Cuda { device: 0 }, Provider::Cpu],
            policy,
            ..OrtOptions::default()
        }),
        ..PipelineOptions::default()
    };
    match Pipeline::load(&dir, &cuda(FallbackPolicy::Require)) {
        // A machine whose ONNX Runtime has CUDA (onnxruntime-gpu) and a GPU.
        Ok(p) => assert_eq!(p.target(), ExecutionTarget::OrtCuda { device: 0 }),
        Err(e) => {
            assert!(matches!(e, RuntimeError::ProviderUnavailable { .. }), "{e}");
            assert!(e.to_string().contains("cuda:0"), "{e}");
            let fallback = Pipeline::load(&dir, &cuda(FallbackPolicy::Fallback)).unwrap();
            assert_eq!(fallback.target(), ExecutionTarget::OrtCpu);
            assert_eq!(
                fallback
                    .embed(&["x"], EmbedOptions::default())
                    .unwrap()
                    .len(),
                1
            );
        }
    }
    let trt = PipelineOptions {
        backend: BackendChoice::Ort(OrtOptions {
            providers: vec![Provider::TensorRt {
                device: 0,
                fp16: false,
                engine_cache: None,
            }],
            ..OrtOptions::default()
        }),
        ..PipelineOptions::default()
    };
    if let Err(e) = Pipeline::load(&dir, &trt) {
        assert!(e.to_string().contains("tensorrt:0"), "{e}");
    }
}

#[test]
fn user_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, dir) = exported(tmp.path(), Task::Base, 9);

    let err = Pipeline::load(&tmp.path().join("nowhere"), &options(ort()))
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            RuntimeError::IncompleteModelDir {
                missing: "model.onnx",
                ..
            }
        ),
        "{err}"
    );
    let partial = tmp.path().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::copy(dir.join("model.onnx"), partial.join("model.onnx")).unwrap();
    std::fs::copy(dir.join("config.json"), partial.join("config.json")).unwrap();
    let err = Pipeline::load(&partial, &options(tract())).err().unwrap();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    let pipeline = Pipeline::load(&dir, &options(ort())).unwrap();
    let long = "word ".repeat(200);
    let err = pipeline
        .embed(&["fine", &long], EmbedOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::TooLong {
                index: 1,
                limit: 64,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        pipeline.embed(&[], EmbedOptions::default()).unwrap_err(),
        RuntimeError::Empty(_)
    ));
    let err = pipeline.fill_mask("a [MASK] here", 3).unwrap_err();
    assert!(err.to_string().contains("--task masked-lm"), "{err}");
    let err = pipeline.classify(&["x"]).unwrap_err();
    assert!(err.to_string().contains("sequence-classification"), "{err}");

    let truncating = Pipeline::load(
        &dir,
        &PipelineOptions {
            truncation: Truncation::Truncate,
            ..options(tract())
        },
    )
    .unwrap();
    assert_eq!(
        truncating
            .embed(&[&long], EmbedOptions::default())
            .unwrap()
            .len(),
        1
    );

    // A config that does not fit the tokenizer (vocabulary too small for its ids).
    let (_, mlm) = exported(tmp.path(), Task::MaskedLm, 11);
    let pipeline = Pipeline::load(&mlm, &options(ort())).unwrap();
    assert!(
        pipeline
            .fill_mask("no mask here", 3)
            .unwrap_err()
            .to_string()
            .contains("[MASK]")
    );
    let _ = tiny_config(albert_core::Sharing::All);
}

/// The pipeline reads what a model computes from its outputs on a probe run: the task it was
/// exported for, on both engines.
#[test]
fn the_pipeline_knows_each_exports_task() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, task) in Task::ALL.into_iter().enumerate() {
        let (_, dir) = exported(tmp.path(), task, 30 + i as u64);
        for choice in [ort(), tract()] {
            let pipeline = Pipeline::load(&dir, &options(choice)).unwrap();
            assert_eq!(pipeline.task().unwrap(), task, "{}", pipeline.target());
        }
    }
}
