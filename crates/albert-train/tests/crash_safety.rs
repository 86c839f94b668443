//! A short `albert-train pretrain` run (a checkpoint every step) killed with SIGKILL at seeded
//! moments, each restart resuming from what the last one left (`--resume` when a checkpoint is
//! there): every checkpoint with a final name is complete and byte for byte the uninterrupted
//! run's, and every file parses (the checks: albert-verify's `tests/crash/mod.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../albert-verify/tests/crash/mod.rs"]
mod crash;

use std::path::{Path, PathBuf};
use std::process::Command;

const KILLS: usize = 6;
const STEPS: u64 = 5;

#[test]
fn killed_pretraining_leaves_only_complete_checkpoints() {
    let seed = crash::seed();
    let mut rng = crash::Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"model_type": "albert", "vocab_size": 8000, "embedding_size": 64, "hidden_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
            "max_position_embeddings": 64}"#,
    )
    .unwrap();
    let tokenizer = root.join("models/albert-tiny-en/tokenizer.json");
    let corpus = root.join("tests/fixtures/corpus/heldout-sample.txt");
    let run = tmp.path().join("run");
    let args = |out: &Path| -> Vec<String> {
        [
            "pretrain",
            "--config",
            config.to_str().unwrap(),
            "--tokenizer",
            tokenizer.to_str().unwrap(),
            "--train",
            corpus.to_str().unwrap(),
            "--steps",
            &STEPS.to_string(),
            "--batch-size",
            "2",
            "--max-seq-length",
            "32",
            "--eval-every",
            "0",
            "--save-every",
            "1",
            // Every checkpoint kept, so the uninterrupted run has each one to compare with.
            "--keep",
            &STEPS.to_string(),
            "--device",
            "cpu",
            "-o",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .into()
    };
    let command = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_albert-train"));
        c.args(args(&run));
        // Resume what an earlier (killed) run saved, unless it finished: then start over.
        let saved = albert_train::pretrain::checkpoints(&run).unwrap_or_default();
        if saved.last().is_some_and(|(step, _)| *step < STEPS) {
            c.arg("--resume");
        }
        c
    };
    let inputs: Vec<PathBuf> = vec![config.clone(), tokenizer.clone(), corpus.clone()];
    let schedule = crash::Schedule {
        seed,
        label: "albert-train",
        command: &command,
        out: &run,
        inputs: &inputs,
        // Appended logs and the chart redrawn from them differ with where the kills fell.
        volatile: &["metrics.jsonl", "curves.svg"],
    };
    let reference = schedule.reference(&tmp.path().join("reference"));
    let hits = schedule.run(&mut rng, KILLS, &reference);
    println!("kills before the end: albert-train {hits}/{KILLS}");
    assert!(
        hits > 0,
        "no kill landed while albert-train ran (seed {seed})"
    );
}
