//! Fine-tuning on tiny data, one test per head: a tiny random model learns a task that needs its
//! input (sequence classification: the first word decides the label; token classification: tags
//! given by the words; question answering: the span of a phrase planted in real sentences, in
//! contexts longer than one window) far above the input-blind baseline, the best checkpoint
//! carries its labels, and the exported model gives the same answers through the runtime. Bad
//! data is a clear error naming the file, the line and the field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use albert_core::{AlbertConfig, Checkpoint, Head};
use albert_runtime::{BackendChoice, Pipeline, PipelineOptions};
use albert_train::finetune::{
    Columns, Example, FinetuneOptions, FinetuneSummary, QaColumns, QaExample, TagColumns,
    TaggedExample, TaskData, finetune, read_examples, read_qa_examples, read_tagged_examples,
};
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A tiny random checkpoint with the runtime fixture's tokenizer (400 pieces).
fn tiny_checkpoint(dir: &Path) {
    let config = AlbertConfig {
        vocab_size: 400,
        embedding_size: 16,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 48,
        max_position_embeddings: 64,
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..AlbertConfig::default()
    };
    Checkpoint::random(&config, Head::MaskedLm.parts(), 1)
        .unwrap()
        .write_dir(dir)
        .unwrap();
    std::fs::copy(
        root().join("tests/fixtures/runtime/tiny-base/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
}

/// Real held-out sentences of at least 4 words.
fn sentences(from: usize, n: usize) -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/corpus/heldout-sample.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| l.split_whitespace().count() >= 4)
        .skip(from)
        .take(n)
        .map(str::to_string)
        .collect()
}

fn examples(from: usize, n: usize) -> Vec<Example> {
    sentences(from, n)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let positive = i % 2 == 0;
            Example {
                text: format!("{} {line}", if positive { "yes" } else { "no" }),
                pair: None,
                label: if positive { "positive" } else { "negative" }.into(),
            }
        })
        .collect()
}

fn options(model: &Path, data: TaskData, output: PathBuf) -> FinetuneOptions {
    FinetuneOptions {
        model: model.to_path_buf(),
        data,
        output,
        max_seq_length: 48,
        batch_size: 16,
        epochs: 8,
        learning_rate: 3e-3,
        warmup_fraction: 0.1,
        weight_decay: 0.01,
        patience: 8,
        seed: 0,
        device: tch::Device::Cpu,
        progress: false,
    }
}

fn run(options: &FinetuneOptions) -> FinetuneSummary {
    finetune(options, Arc::new(AtomicBool::new(false))).unwrap()
}

/// The mean of the first and of the last six training losses.
fn loss_drop(summary: &FinetuneSummary) -> (f64, f64) {
    let losses = &summary.train_losses;
    let n = losses.len();
    (
        losses[..6].iter().sum::<f64>() / 6.0,
        losses[n - 6..].iter().sum::<f64>() / 6.0,
    )
}

/// The best checkpoint exported to ONNX and loaded in tract.
fn served(summary: &FinetuneSummary, dir: &Path) -> Pipeline {
    albert_onnx::export_dir(
        &summary.best_checkpoint,
        dir,
        &albert_onnx::ExportOptions::default(),
    )
    .unwrap();
    Pipeline::load(
        dir,
        &PipelineOptions {
            backend: BackendChoice::Tract(Default::default()),
            ..PipelineOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn sequence_classification_learns_a_task_that_needs_the_input_and_keeps_the_best_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("base");
    tiny_checkpoint(&model);
    let data = TaskData::Sequence {
        train: examples(0, 256),
        validation: examples(300, 64),
        test: examples(400, 64),
    };
    let options = options(&model, data, tmp.path().join("out"));
    let summary = run(&options);
    assert_eq!(summary.labels, ["negative", "positive"]);
    let (baseline_name, baseline) = summary.baseline.clone().unwrap();
    assert!((baseline - 0.5).abs() < 1e-9, "{baseline_name}");
    assert_eq!(summary.best.main().0, "accuracy");
    assert!(summary.best.main().1 >= 0.95, "{summary:?}");
    // The test set, scored once with the best epoch's weights.
    let test = summary.test.clone().expect("a test set was given");
    assert_eq!(test.main().0, "accuracy");
    assert!(test.main().1 >= 0.9, "{test:?}");
    let (first, last) = loss_drop(&summary);
    assert!(last < 0.5 * first, "loss {first} → {last}");
    let best = Checkpoint::read_dir(&summary.best_checkpoint).unwrap();
    let id2label = best.config.id2label.unwrap();
    assert_eq!(id2label["0"], "negative");
    assert_eq!(id2label["1"], "positive");
    assert!(best.parts.classifier && best.parts.pooler);
    assert!(summary.best_checkpoint.join("tokenizer.json").exists());
    let metrics = std::fs::read_to_string(options.output.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"eval\"")).count(),
        summary.epochs_run
    );
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"test\"")).count(),
        1
    );
    assert!(options.output.join("curves.svg").exists());
}

/// Real sentences with two planted entities: the phrase "onnx checkpoint" (B-TOOL I-TOOL) and
/// the word "tract" (B-ENG); every other word O. (Planted words, because they are single pieces
/// of the fixture tokenizer that no corpus word starts with: a tag is then decided by a word's
/// first piece, which a tiny model learns in a few epochs.)
fn tagged(from: usize, n: usize) -> Vec<TaggedExample> {
    sentences(from, n)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            // At most 12 words, so that no entity is cut off by the 48-token truncation.
            let mut words: Vec<String> = line
                .split_whitespace()
                .take(12)
                .map(str::to_string)
                .collect();
            let engine = (i * 5) % words.len();
            words.insert(engine, "tract".into());
            let tool = (i * 7) % words.len();
            words.splice(tool..tool, ["onnx".to_string(), "checkpoint".to_string()]);
            let tags = words
                .iter()
                .enumerate()
                .map(|(w, word)| {
                    match (w.checked_sub(tool), word.as_str()) {
                        (Some(0), _) => "B-TOOL",
                        (Some(1), _) => "I-TOOL",
                        (_, "tract") => "B-ENG",
                        _ => "O",
                    }
                    .to_string()
                })
                .collect();
            TaggedExample { words, tags }
        })
        .collect()
}

#[test]
fn token_classification_learns_word_tags_scored_by_entity_f1() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("base");
    tiny_checkpoint(&model);
    let data = TaskData::Tokens {
        train: tagged(0, 256),
        validation: tagged(300, 64),
        test: tagged(400, 32),
    };
    let options = options(&model, data, tmp.path().join("out"));
    let summary = run(&options);
    assert_eq!(summary.labels, ["B-ENG", "B-TOOL", "I-TOOL", "O"]);
    assert_eq!(summary.best.main().0, "f1");
    // Tagging every word O finds no entity: F1 0.
    let (baseline_name, baseline) = summary.baseline.clone().unwrap();
    assert!(
        baseline_name.contains("`O`") && baseline == 0.0,
        "{baseline_name} {baseline}"
    );
    assert!(summary.best.main().1 >= 0.9, "{summary:?}");
    let test = summary.test.clone().expect("a test set was given");
    assert!(test.main().1 >= 0.85, "{test:?}");
    let (first, last) = loss_drop(&summary);
    assert!(last < 0.5 * first, "loss {first} → {last}");
    let best = Checkpoint::read_dir(&summary.best_checkpoint).unwrap();
    assert!(best.parts.classifier && !best.parts.pooler);
    assert_eq!(best.config.id2label.unwrap()["2"], "I-TOOL");

    // Served through the runtime, the words get the tags the trainer's own validation gives.
    let pipeline = served(&summary, &tmp.path().join("onnx"));
    let words = pipeline
        .token_classify(&["we ran the onnx checkpoint in tract today"])
        .unwrap()
        .remove(0);
    let tags: Vec<&str> = words.iter().map(|w| w.label.as_str()).collect();
    assert_eq!(
        tags,
        ["O", "O", "O", "B-TOOL", "I-TOOL", "O", "B-ENG", "O"],
        "{words:?}"
    );
}

/// Contexts of two real sentences (longer than one 48-token window) with the phrase
/// "onnx checkpoint" planted in one of them; the answer is the phrase.
fn questions(from: usize, n: usize) -> Vec<QaExample> {
    let lines = sentences(from, 2 * n);
    lines
        .chunks(2)
        .enumerate()
        .map(|(i, two)| {
            let joined = two.join(" ");
            let mut words: Vec<&str> = joined.split_whitespace().collect();
            let at = (i * 11) % words.len();
            words.splice(at..at, ["onnx", "checkpoint"]);
            let context = words.join(" ");
            let start = words[..at].iter().map(|w| w.chars().count() + 1).sum();
            QaExample {
                question: "where is it?".into(),
                context,
                answers: vec![("onnx checkpoint".into(), start)],
            }
        })
        .collect()
}

#[test]
fn question_answering_finds_the_span_across_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("base");
    tiny_checkpoint(&model);
    let train = questions(0, 128);
    let validation = questions(400, 32);
    for e in train.iter().chain(&validation) {
        let (text, start) = &e.answers[0];
        let found: String = e
            .context
            .chars()
            .skip(*start)
            .take(text.chars().count())
            .collect();
        assert_eq!(&found, text);
    }
    let data = TaskData::Answers {
        train,
        validation,
        test: questions(600, 16),
        doc_stride: 8,
        max_answer_length: 10,
    };
    let options = options(&model, data, tmp.path().join("out"));
    let summary = run(&options);
    // The contexts do not fit one window: there are more windows than examples.
    assert!(summary.train_features > 128, "{}", summary.train_features);
    assert!(summary.labels.is_empty() && summary.baseline.is_none());
    let test = summary.test.clone().expect("a test set was given");
    assert!(test.metrics[1].1 >= 0.8, "{test:?}");
    assert_eq!(summary.best.main().0, "f1");
    let exact = summary.best.metrics[1];
    assert_eq!(exact.0, "exact_match");
    assert!(exact.1 >= 0.9, "{summary:?}");
    let (first, last) = loss_drop(&summary);
    assert!(last < 0.5 * first, "loss {first} → {last}");
    let best = Checkpoint::read_dir(&summary.best_checkpoint).unwrap();
    assert!(best.parts.qa && !best.parts.classifier);

    let pipeline = served(&summary, &tmp.path().join("onnx"));
    let answer = pipeline
        .answer(
            "where is it?",
            "it is in the onnx checkpoint that we wrote yesterday",
        )
        .unwrap();
    assert_eq!(answer.text, "onnx checkpoint", "{answer:?}");

    // A context several times longer than the model takes (64 positions), the phrase planted
    // near its end: the runtime reads it in windows, as validation did, and finds the phrase
    // (it used to refuse the context as too long, or with truncation cut the phrase off).
    let mut found = 0;
    for (i, chunk) in sentences(700, 24).chunks(6).enumerate() {
        let joined = chunk.join(" ");
        let mut words: Vec<&str> = joined.split_whitespace().collect();
        let at = words.len() - 3 - i;
        words.splice(at..at, ["onnx", "checkpoint"]);
        let context = words.join(" ");
        let windows = pipeline.answer_windows("where is it?", &context).unwrap();
        assert!(windows.len() >= 3, "{} windows", windows.len());
        let answer = pipeline.answer("where is it?", &context).unwrap();
        found += usize::from(answer.text == "onnx checkpoint");
    }
    assert!(found >= 3, "{found} of 4 long contexts answered");
}

#[test]
fn data_errors_name_the_file_and_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("data.csv");
    std::fs::write(&csv, "sentence,label\nhello there,a\n").unwrap();
    let columns = Columns {
        text: "text".into(),
        pair: None,
        label: "label".into(),
    };
    let err = read_examples(&csv, &columns).unwrap_err().to_string();
    assert!(
        err.contains("data.csv")
            && err.contains("no column `text`")
            && err.contains("sentence, label"),
        "{err}"
    );

    let jsonl = tmp.path().join("data.jsonl");
    std::fs::write(
        &jsonl,
        "{\"text\": \"hi\", \"label\": \"a\"}\n{\"text\": \"ho\"}\n",
    )
    .unwrap();
    let err = read_examples(&jsonl, &columns).unwrap_err().to_string();
    assert!(
        err.contains("data.jsonl:2") && err.contains("no field `label`"),
        "{err}"
    );

    // Token classification: a tag per word, in JSON arrays or whitespace-separated CSV cells.
    let tag_columns = TagColumns {
        words: "tokens".into(),
        tags: "tags".into(),
    };
    let tags_csv = tmp.path().join("tags.csv");
    std::fs::write(&tags_csv, "tokens,tags\nthe cat,O O\nthe dog sat,O O\n").unwrap();
    let err = read_tagged_examples(&tags_csv, &tag_columns)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tags.csv:3") && err.contains("3 word(s)") && err.contains("2 tag(s)"),
        "{err}"
    );
    let tags_jsonl = tmp.path().join("tags.jsonl");
    std::fs::write(
        &tags_jsonl,
        "{\"tokens\": [\"the\", \"cat\"], \"tags\": [\"B-ART\", \"O\"]}\n",
    )
    .unwrap();
    let read = read_tagged_examples(&tags_jsonl, &tag_columns).unwrap();
    assert_eq!(read[0].tags, ["B-ART", "O"]);

    // Question answering: the answer must stand in the context at its offset.
    let qa_columns = QaColumns {
        question: "question".into(),
        context: "context".into(),
        answers: "answers".into(),
    };
    let qa = tmp.path().join("qa.jsonl");
    std::fs::write(
        &qa,
        concat!(
            "{\"question\": \"who?\", \"context\": \"the cat sat\", \"answers\": {\"text\": [\"cat\"], \"answer_start\": [4]}}\n",
            "{\"question\": \"who?\", \"context\": \"the cat sat\", \"answers\": {\"text\": [\"cat\"], \"answer_start\": [5]}}\n",
        ),
    )
    .unwrap();
    let err = read_qa_examples(&qa, &qa_columns).unwrap_err().to_string();
    assert!(
        err.contains("qa.jsonl:2") && err.contains("`cat` is not at character 5"),
        "{err}"
    );
    let qa_csv = tmp.path().join("qa.csv");
    std::fs::write(
        &qa_csv,
        "question,context,answers\nwho?,the cat sat,\"{\"\"text\"\": \"\"cat\"\", \"\"answer_start\"\": 4}\"\n",
    )
    .unwrap();
    let read = read_qa_examples(&qa_csv, &qa_columns).unwrap();
    assert_eq!(read[0].answers, [("cat".to_string(), 4)]);

    // A validation label the training set does not have.
    let model = tmp.path().join("base");
    tiny_checkpoint(&model);
    let mut validation = examples(200, 4);
    validation[1].label = "neutral".into();
    let data = TaskData::Sequence {
        train: examples(0, 8),
        validation,
        test: Vec::new(),
    };
    let err = finetune(
        &options(&model, data, tmp.path().join("out")),
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("validation data") && err.contains("`neutral`"),
        "{err}"
    );
}
