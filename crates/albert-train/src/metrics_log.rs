//! `metrics.jsonl`: one JSON line per training step and per evaluation, which the progress of a
//! run, its charts (`chart.rs`), `albert-train curves` and tools/experiments.py read back. Each
//! line is one of the typed records below with its `split` (`train`, `eval`, `test`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{Result, TrainError};

/// The file's name in a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// Which part of the data a line measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// A training step (its batch).
    Train,
    /// The held-out (validation) set.
    Eval,
    /// The test set, scored once with the best weights (fine-tuning).
    Test,
}

/// A pretraining step.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainStep {
    pub step: u64,
    pub lr: f64,
    pub loss: f64,
    pub mlm_loss: f64,
    pub mlm_accuracy: f64,
    /// SOP or NSP (0 with no sentence objective).
    pub sentence_loss: f64,
    pub sentence_accuracy: f64,
    /// Before clipping.
    pub grad_norm: f64,
    pub tokens_per_second: f64,
}

/// A pretraining evaluation on held-out text.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainEval {
    pub step: u64,
    pub loss: f64,
    pub mlm_loss: f64,
    pub mlm_accuracy: f64,
    pub sentence_loss: f64,
    pub sentence_accuracy: f64,
}

/// A fine-tuning step.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneStep {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
}

/// A fine-tuning evaluation: validation after an epoch, or the test set once at the end.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneEval {
    /// The step it was taken at (validation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u64>,
    pub epoch: usize,
    pub loss: f64,
    /// The task's metrics by name (accuracy; f1, precision, recall; exact_match).
    #[serde(flatten)]
    pub metrics: BTreeMap<&'static str, f64>,
}

/// A record with its split first.
#[derive(Serialize)]
struct Line<'a, T> {
    split: Split,
    #[serde(flatten)]
    record: &'a T,
}

/// Appends one record to the JSON-lines file `path` with one `write`, so that a process killed
/// while logging leaves at most its last line cut short (never one torn in the middle of the
/// file): the readers skip a line that does not parse, and `--resume` rewrites the file with
/// whole lines ([`truncate`]).
pub fn append(path: &Path, split: Split, record: &impl Serialize) -> Result<()> {
    let mut text =
        serde_json::to_string(&Line { split, record }).map_err(|e| TrainError::BadInput {
            name: "metrics",
            message: format!("{}: {e}", path.display()),
        })?;
    text.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| TrainError::io(path, e))
}

/// Keeps only the lines up to `step` (a resumed run rewrites what follows).
pub fn truncate(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .collect();
    albert_core::write_atomic(
        path,
        (kept.join("\n") + if kept.is_empty() { "" } else { "\n" }).as_bytes(),
    )?;
    Ok(())
}
