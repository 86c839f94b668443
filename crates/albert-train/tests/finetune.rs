//! Fine-tuning for sequence classification on tiny data: a tiny random model learns a task
//! that needs its input (the first word decides the label) to full validation accuracy, well
//! above the majority baseline; the best checkpoint carries the labels; bad data is a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use albert_core::{AlbertConfig, Checkpoint, Head};
use albert_train::finetune::{Columns, Example, FinetuneOptions, finetune, read_examples};

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

fn examples(from: usize, n: usize) -> Vec<Example> {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/corpus/heldout-sample.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| l.split_whitespace().count() >= 4)
        .skip(from)
        .take(n)
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

#[test]
fn learns_a_task_that_needs_the_input_and_keeps_the_best_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("base");
    tiny_checkpoint(&model);
    let options = FinetuneOptions {
        model: model.clone(),
        train: examples(0, 256),
        validation: examples(300, 64),
        output: tmp.path().join("out"),
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
    };
    let summary = finetune(&options, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(summary.labels, ["negative", "positive"]);
    assert!((summary.majority_accuracy - 0.5).abs() < 1e-9);
    assert!(summary.best_accuracy >= 0.95, "{summary:?}");
    let first: f64 = summary.train_losses[..6].iter().sum::<f64>() / 6.0;
    let n = summary.train_losses.len();
    let last: f64 = summary.train_losses[n - 6..].iter().sum::<f64>() / 6.0;
    assert!(last < 0.5 * first, "loss {first} → {last}");
    let best = Checkpoint::read_dir(&summary.best_checkpoint).unwrap();
    let id2label = best.config.id2label.unwrap();
    assert_eq!(id2label["0"], "negative");
    assert_eq!(id2label["1"], "positive");
    assert!(best.parts.classifier);
    assert!(summary.best_checkpoint.join("tokenizer.json").exists());
    let metrics = std::fs::read_to_string(options.output.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"eval\"")).count(),
        summary.epochs_run
    );
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

    // A validation label the training set does not have.
    let model = tmp.path().join("base");
    tiny_checkpoint(&model);
    let mut validation = examples(200, 4);
    validation[1].label = "neutral".into();
    let options = FinetuneOptions {
        model,
        train: examples(0, 8),
        validation,
        output: tmp.path().join("out"),
        max_seq_length: 32,
        batch_size: 4,
        epochs: 1,
        learning_rate: 1e-3,
        warmup_fraction: 0.1,
        weight_decay: 0.0,
        patience: 1,
        seed: 0,
        device: tch::Device::Cpu,
        progress: false,
    };
    let err = finetune(&options, Arc::new(AtomicBool::new(false)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("validation data") && err.contains("`neutral`"),
        "{err}"
    );
}
