//! The models a server serves: each a pipeline, its task, what the routes can ask of it, and its
//! batcher. A model directory is an export (`model.onnx`) or a checkpoint in the HF layout, which
//! is exported once into the cache directory and reused while the checkpoint is unchanged.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use albert_core::Task;
use albert_core::checkpoint::{CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use albert_runtime::{Pipeline, PipelineOptions};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::batcher::{BatchLimits, Batcher};

/// What a route asks of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Sentence embeddings (`/v1/embeddings`, `/embed`): a `base` export.
    Embeddings,
    /// Labels per text or pair (`/predict`): a `sequence-classification` export.
    TextClassification,
    /// Labels per word (`/token-classification`).
    TokenClassification,
    /// The likeliest tokens at `[MASK]` (`/fill-mask`): `masked-lm` or `pretraining` exports.
    FillMask,
    /// Answer spans (`/question-answering`).
    QuestionAnswering,
}

impl Capability {
    /// What a model of this task can do.
    pub fn of(task: Task) -> Capability {
        match task {
            Task::Base => Capability::Embeddings,
            Task::MaskedLm | Task::Pretraining => Capability::FillMask,
            Task::SequenceClassification => Capability::TextClassification,
            Task::TokenClassification => Capability::TokenClassification,
            Task::QuestionAnswering => Capability::QuestionAnswering,
        }
    }

    /// The name in messages and in `/info`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Embeddings => "embeddings",
            Capability::TextClassification => "text-classification",
            Capability::TokenClassification => "token-classification",
            Capability::FillMask => "fill-mask",
            Capability::QuestionAnswering => "question-answering",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model being served.
pub struct ServedModel {
    /// Its name in requests (`model`) and responses.
    pub name: String,
    /// The directory given on the command line.
    pub source: PathBuf,
    /// The loaded export.
    pub pipeline: Arc<Pipeline>,
    /// What the export computes.
    pub task: Task,
    /// Its queue and workers.
    pub batcher: Batcher,
}

impl ServedModel {
    /// What the model can do.
    pub fn capability(&self) -> Capability {
        Capability::of(self.task)
    }

    /// Whether it has ALBERT's pooler output (`pooling: "pooler"`).
    pub fn has_pooler(&self) -> bool {
        self.pipeline
            .output_names()
            .iter()
            .any(|n| n == "pooler_output")
    }
}

/// A `[NAME=]DIR` argument: the name defaults to the directory's name.
pub fn parse_model_arg(arg: &str) -> Result<(String, PathBuf)> {
    let (name, dir) = match arg.split_once('=') {
        Some((name, dir)) => (name.to_string(), PathBuf::from(dir)),
        None => {
            let dir = PathBuf::from(arg);
            let name = dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, dir)
        }
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!(
            "model `{arg}`: the name `{name}` must be letters, digits, `-`, `_` or `.` (give one with NAME=DIR)"
        );
    }
    Ok((name, dir))
}

/// The directories to load `dir` from: itself when it holds `model.onnx`; for a checkpoint, its
/// export for the richest task its heads allow and, when that is not `base`, a `base` export too
/// (so a pretrained checkpoint serves embeddings as well as fill-mask), each made in `cache_dir`
/// unless an export of the same files is there already.
pub fn export_dirs(name: &str, dir: &Path, cache_dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.join(MODEL_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    if !dir.join(CONFIG_FILE).is_file() || !dir.join(WEIGHTS_FILE).is_file() {
        bail!(
            "model `{name}`: {} holds neither {MODEL_FILE} (an export) nor {CONFIG_FILE} and {WEIGHTS_FILE} (a checkpoint)",
            dir.display()
        );
    }
    let fingerprint = fingerprint(dir)?;
    let checkpoint = albert_core::Checkpoint::read_dir(dir)
        .with_context(|| format!("model `{name}`: reading the checkpoint {}", dir.display()))?;
    let richest = Task::default_for(&checkpoint.parts);
    drop(checkpoint);
    let mut tasks = vec![richest];
    if richest != Task::Base {
        tasks.push(Task::Base);
    }
    tasks
        .into_iter()
        .map(|task| {
            let target = cache_dir.join(format!("{name}-{task}-{}", &fingerprint[..16]));
            export_once(name, dir, task, cache_dir, &target)?;
            Ok(target)
        })
        .collect()
}

/// Exports `dir` for `task` into `target` unless it is there already.
fn export_once(name: &str, dir: &Path, task: Task, cache_dir: &Path, target: &Path) -> Result<()> {
    if target.join(MODEL_FILE).is_file() {
        tracing::info!(model = name, %task, dir = %target.display(), "reusing the cached export");
        return Ok(());
    }
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating the cache directory {}", cache_dir.display()))?;
    // Exported into a fresh directory and renamed into place, so a crash leaves no half export
    // under the name that is reused.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}-"))
        .tempdir_in(cache_dir)
        .with_context(|| format!("creating a directory in {}", cache_dir.display()))?;
    tracing::info!(model = name, %task, checkpoint = %dir.display(), "exporting the checkpoint");
    let options = albert_onnx::ExportOptions {
        task: Some(task),
        ..albert_onnx::ExportOptions::default()
    };
    albert_onnx::export_dir(dir, staging.path(), &options)
        .with_context(|| format!("model `{name}`: exporting {} for {task}", dir.display()))?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, target) {
        // Another server exported the same checkpoint meanwhile: use theirs.
        let _ = std::fs::remove_dir_all(&staged);
        if !target.join(MODEL_FILE).is_file() {
            return Err(e).with_context(|| format!("moving the export to {}", target.display()));
        }
    }
    tracing::info!(model = name, %task, dir = %target.display(), "exported");
    Ok(())
}

/// SHA-256 over the SHA-256 of each file an export is made from.
fn fingerprint(dir: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for file in [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE] {
        let path = dir.join(file);
        if path.is_file() {
            hasher.update(file.as_bytes());
            hasher.update(albert_onnx::export::sha256_file(&path)?.as_bytes());
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Loads a model directory and starts a batcher for each of its exports (one for an export, one
/// or two for a checkpoint: see [`export_dirs`]).
pub fn load(
    name: &str,
    source: &Path,
    cache_dir: &Path,
    options: &PipelineOptions,
    limits: BatchLimits,
    workers: usize,
) -> Result<Vec<ServedModel>> {
    export_dirs(name, source, cache_dir)?
        .into_iter()
        .map(|dir| {
            let pipeline = Pipeline::load(&dir, options)
                .with_context(|| format!("model `{name}`: loading {}", dir.display()))?;
            let task = pipeline
                .task()
                .with_context(|| format!("model `{name}`: running it once"))?;
            if limits.max_batch_tokens < pipeline.max_length() {
                tracing::warn!(
                    model = name,
                    max_batch_tokens = limits.max_batch_tokens,
                    max_length = pipeline.max_length(),
                    "--max-batch-tokens is below the model's length: a text that long runs alone"
                );
            }
            let pipeline = Arc::new(pipeline);
            let batcher = Batcher::start(name, pipeline.clone(), limits, workers)
                .with_context(|| format!("model `{name}`: starting its batch workers"))?;
            Ok(ServedModel {
                name: name.to_string(),
                source: source.to_path_buf(),
                pipeline,
                task,
                batcher,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn model_arguments_name_their_models() {
        let (name, dir) = parse_model_arg("tiny=models/albert-tiny-en").unwrap();
        assert_eq!(
            (name.as_str(), dir.as_path()),
            ("tiny", Path::new("models/albert-tiny-en"))
        );
        let (name, _) = parse_model_arg("/some/where/my-model").unwrap();
        assert_eq!(name, "my-model");
        let err = parse_model_arg("a b=dir").unwrap_err().to_string();
        assert!(err.contains("`a b`"), "{err}");
    }
}
