//! Helpers of the end-to-end tests: real text, a tokenizer trained on it, and exported model
//! directories (random weights) for every task, made the way a user makes them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a panic is the failure report

pub mod fuzz;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use albert_core::{AlbertConfig, Checkpoint, Head, Sharing};
use albert_onnx::export::{ExportOptions, Task, export_dir};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// English text to train a test tokenizer on: a fixed slice of the pretraining corpus
/// (tests/fixtures/corpus/README.md says how it is made).
pub fn corpus() -> PathBuf {
    root().join("tests/fixtures/corpus/small-sample.txt")
}

/// A unigram tokenizer trained once per test process on [`corpus`], saved as `tokenizer.json`.
pub fn tokenizer_file() -> &'static Path {
    static FILE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = albert_core::tokenizer::train_unigram(&[corpus().as_path()], 400).unwrap();
        let path = dir.path().join("tokenizer.json");
        albert_core::tokenizer::save(&tokenizer, &path).unwrap();
        (dir, path)
    });
    path
}

pub fn vocab_size() -> usize {
    albert_core::tokenizer::load(tokenizer_file())
        .unwrap()
        .get_vocab_size(true)
}

/// A small config over the test tokenizer's vocabulary.
pub fn tiny_config(sharing: Sharing) -> AlbertConfig {
    let labels = ["negative", "neutral", "positive"];
    AlbertConfig {
        vocab_size: vocab_size(),
        embedding_size: 16,
        hidden_size: 32,
        num_hidden_layers: 3,
        num_attention_heads: 4,
        intermediate_size: 40,
        max_position_embeddings: 64,
        id2label: Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), l.to_string()))
                .collect(),
        ),
        label2id: Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.to_string(), i as i64))
                .collect(),
        ),
        ..AlbertConfig::default()
    }
    .with_sharing(sharing)
}

/// The head a task's checkpoint has.
pub fn head_for(task: Task) -> Head {
    match task {
        Task::Base => Head::Base,
        Task::MaskedLm => Head::MaskedLm,
        Task::Pretraining => Head::Pretraining,
        Task::SequenceClassification => Head::SequenceClassification,
        Task::TokenClassification => Head::TokenClassification,
        Task::QuestionAnswering => Head::QuestionAnswering,
    }
}

/// A random checkpoint for `task` (with the test tokenizer) and its export, under `dir`:
/// returns (checkpoint, export directory).
pub fn exported(dir: &Path, task: Task, seed: u64) -> (Checkpoint, PathBuf) {
    let config = tiny_config(Sharing::All);
    let checkpoint = Checkpoint::random(&config, head_for(task).parts(), seed)
        .unwrap()
        .perturbed(seed + 1, 0.2);
    let ckpt = dir.join(format!("{}-ckpt", task.name()));
    checkpoint.write_dir(&ckpt).unwrap();
    std::fs::copy(tokenizer_file(), ckpt.join("tokenizer.json")).unwrap();
    let out = dir.join(task.name());
    let options = ExportOptions {
        task: Some(task),
        ..ExportOptions::default()
    };
    export_dir(&ckpt, &out, &options).unwrap();
    (checkpoint, out)
}

/// Sentences of mixed lengths.
pub const SENTENCES: [&str; 9] = [
    "ALBERT shares one set of layer weights across all layers.",
    "The exporter stores each shared tensor once.",
    "Short text.",
    "A model is a directory in the Hugging Face layout, with a config and weights, and the tokenizer beside them.",
    "Tests compare against an independent reference.",
    "Run it on ONNX Runtime or tract.",
    "Factorized embeddings project a small embedding space to the hidden size.",
    "Sentence order prediction asks whether two segments are swapped.",
    "Yes.",
];
