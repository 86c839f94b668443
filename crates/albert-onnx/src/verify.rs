//! `--verify`: run an exported model in ONNX Runtime and in tract on sample inputs (several batch
//! sizes and lengths, with padding) and compare every output with the reference forward pass
//! computed from the checkpoint ([`crate::reference`]).
//!
//! These are minimal runs of each engine; `albert-runtime` is the full, configurable backend.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use albert_core::Checkpoint;
use ndarray::{Array2, ArrayD};
use tract_onnx::prelude::*;

use crate::error::{OnnxError, Result};
use crate::export::Task;
use crate::reference::{self, Inputs, Outputs};

/// The two engines an export must run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    OnnxRuntime,
    Tract,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::OnnxRuntime => "onnxruntime",
            Engine::Tract => "tract",
        }
    }
}

/// Where the ONNX Runtime shared library is looked for, in order: an explicit path, the
/// `ORT_DYLIB_PATH` variable, the project venv made by tools/setup.sh.
pub fn ort_library_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(p));
    }
    // The venv of the checkout this crate was built in, then one next to the executable's checkout.
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/onnxruntime.so"));
    if let Ok(exe) = std::env::current_exe()
        && let Some(root) = exe
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.parent())
    {
        candidates.push(root.join(".venv/onnxruntime.so"));
    }
    candidates
}

/// The process's one ONNX Runtime environment (ORT allows one per process).
fn ort_environment(explicit: Option<&Path>) -> Result<&'static ort::environment::Environment> {
    static ENVIRONMENT: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    let env = ENVIRONMENT.get_or_init(|| {
        let candidates = ort_library_candidates(explicit);
        let Some(path) = candidates.iter().find(|p| p.exists()) else {
            return Err(OnnxError::OrtLibraryNotFound {
                looked: candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .to_string());
        };
        let builder =
            ort::init_from(path).map_err(|e| format!("loading {}: {e}", path.display()))?;
        builder
            .with_name("albert-verify")
            .build()
            .map_err(|e| format!("creating the environment: {e}"))
    });
    env.as_ref().map_err(|e| OnnxError::OnnxRuntime(e.clone()))
}

fn ort_err(e: impl std::fmt::Display) -> OnnxError {
    OnnxError::OnnxRuntime(e.to_string())
}

/// A model loaded once in ONNX Runtime (CPU provider, default graph optimizations).
pub struct OrtModel {
    session: ort::session::Session,
}

impl OrtModel {
    pub fn load(model: &Path, ort_lib: Option<&Path>) -> Result<Self> {
        let env = ort_environment(ort_lib)?;
        let session = ort::session::Session::builder(env)
            .map_err(ort_err)?
            .with_intra_threads(2)
            .map_err(ort_err)?
            .commit_from_file(model)
            .map_err(ort_err)?;
        Ok(OrtModel { session })
    }

    pub fn run(&mut self, inputs: &Inputs, output_names: &[&str]) -> Result<Outputs> {
        let tensor = |a: &Array2<i64>| ort::value::Tensor::from_array(a.clone()).map_err(ort_err);
        let outputs = self
            .session
            .run(ort::inputs![
                "input_ids" => tensor(&inputs.input_ids)?,
                "attention_mask" => tensor(&inputs.attention_mask)?,
                "token_type_ids" => tensor(&inputs.token_type_ids)?,
            ])
            .map_err(ort_err)?;
        let mut result = Outputs::new();
        for name in output_names {
            let value = outputs
                .get(*name)
                .ok_or_else(|| OnnxError::OnnxRuntime(format!("no output `{name}`")))?;
            let array = value.try_extract_array::<f32>().map_err(ort_err)?;
            result.insert(name.to_string(), array.to_owned());
        }
        Ok(result)
    }
}

fn tract_err(e: impl std::fmt::Display) -> OnnxError {
    OnnxError::Tract(e.to_string())
}

/// A model loaded and optimized once in tract, with symbolic batch and sequence dimensions.
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
}

impl TractModel {
    pub fn load(model: &Path) -> Result<Self> {
        let plan = tract_onnx::onnx()
            .model_for_path(model)
            .map_err(tract_err)?
            .into_optimized()
            .map_err(tract_err)?
            .into_runnable()
            .map_err(tract_err)?;
        Ok(TractModel { plan })
    }

    pub fn run(&self, inputs: &Inputs, output_names: &[&str]) -> Result<Outputs> {
        let feed: TVec<TValue> = tvec!(
            inputs
                .input_ids
                .clone()
                .into_dyn()
                .into_tensor()
                .into_tvalue(),
            inputs
                .attention_mask
                .clone()
                .into_dyn()
                .into_tensor()
                .into_tvalue(),
            inputs
                .token_type_ids
                .clone()
                .into_dyn()
                .into_tensor()
                .into_tvalue(),
        );
        let outputs = self.plan.run(feed).map_err(tract_err)?;
        let mut result = Outputs::new();
        for (name, value) in output_names.iter().zip(outputs.iter()) {
            let view = value.to_plain_array_view::<f32>().map_err(tract_err)?;
            result.insert(name.to_string(), view.to_owned());
        }
        Ok(result)
    }
}

/// Sample inputs: random ids, row `i` of the batch shorter than the one before (padding at the
/// end, `pad_token_id`), token type 1 on the second half of each row when the model has two types.
pub fn sample_inputs(checkpoint: &Checkpoint, batch: usize, length: usize, seed: u64) -> Inputs {
    let config = &checkpoint.config;
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ ((batch as u64) << 32) ^ length as u64);
    let low = if config.vocab_size > 5 { 5 } else { 0 };
    let pad = config.pad_token_id.unwrap_or(0);
    let mut input_ids = Array2::<i64>::zeros((batch, length));
    let mut attention_mask = Array2::<i64>::zeros((batch, length));
    let mut token_type_ids = Array2::<i64>::zeros((batch, length));
    for b in 0..batch {
        let real = (length - (length * b) / batch.max(1)).max(1);
        for p in 0..length {
            if p < real {
                input_ids[[b, p]] = rng.random_range(low..config.vocab_size) as i64;
                attention_mask[[b, p]] = 1;
                if config.type_vocab_size > 1 && p >= real / 2 && real > 1 {
                    token_type_ids[[b, p]] = 1;
                }
            } else {
                input_ids[[b, p]] = pad;
            }
        }
    }
    Inputs {
        input_ids,
        attention_mask,
        token_type_ids,
    }
}

/// One comparison: an engine's output against the reference for one input shape.
#[derive(Debug, Clone)]
pub struct VerifyRow {
    pub engine: Engine,
    pub batch: usize,
    pub length: usize,
    pub output: String,
    pub max_abs_diff: f64,
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub batches: Vec<usize>,
    pub lengths: Vec<usize>,
    pub tolerance: f64,
    pub ort_library: Option<PathBuf>,
    pub seed: u64,
}

impl VerifyOptions {
    /// Batches 1 and 3; lengths 1, 7 and the longest the model takes (capped at 128 to keep the
    /// f64 reference quick); tolerance 1e-4 max-abs.
    pub fn defaults_for(checkpoint: &Checkpoint) -> Self {
        let max = checkpoint.config.max_position_embeddings.min(128);
        let mut lengths = vec![1, 7.min(max), max];
        lengths.dedup();
        VerifyOptions {
            batches: vec![1, 3],
            lengths,
            tolerance: 1e-4,
            ort_library: None,
            seed: 0,
        }
    }
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> Result<f64> {
    if a.shape() != b.shape() {
        return Err(OnnxError::Verification(format!(
            "shape {:?} differs from the reference's {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(a.iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(
            0.0,
            |m, d| if d.is_nan() { f64::INFINITY } else { m.max(d) },
        ))
}

/// Runs every (engine, batch, length) and compares every output; the rows come back even when some
/// exceed the tolerance, so that the caller can print them; [`check`] turns them into a verdict.
pub fn verify(
    model: &Path,
    checkpoint: &Checkpoint,
    task: Task,
    options: &VerifyOptions,
) -> Result<Vec<VerifyRow>> {
    let names = task.outputs(&checkpoint.parts);
    let tract = TractModel::load(model)?;
    let mut onnxruntime = OrtModel::load(model, options.ort_library.as_deref())?;
    let mut rows = Vec::new();
    for &batch in &options.batches {
        for &length in &options.lengths {
            if length > checkpoint.config.max_position_embeddings {
                return Err(OnnxError::Invalid(format!(
                    "verify length {length} exceeds max_position_embeddings {}",
                    checkpoint.config.max_position_embeddings
                )));
            }
            let inputs = sample_inputs(checkpoint, batch, length, options.seed);
            let expected = reference::run(checkpoint, task, &inputs)?;
            let engines = [
                (Engine::OnnxRuntime, onnxruntime.run(&inputs, &names)?),
                (Engine::Tract, tract.run(&inputs, &names)?),
            ];
            for (engine, got) in engines {
                for name in &names {
                    let (g, e) = (&got[*name], &expected[*name]);
                    rows.push(VerifyRow {
                        engine,
                        batch,
                        length,
                        output: name.to_string(),
                        max_abs_diff: max_abs_diff(g, e)?,
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// Fails when any row exceeds the tolerance.
pub fn check(rows: &[VerifyRow], tolerance: f64) -> Result<()> {
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| r.max_abs_diff.is_nan() || r.max_abs_diff > tolerance)
        .map(|r| {
            format!(
                "{} batch {} length {} {}: {:.3e}",
                r.engine.name(),
                r.batch,
                r.length,
                r.output,
                r.max_abs_diff
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(OnnxError::Verification(format!(
            "max-abs difference above {tolerance:e}: {}",
            bad.join("; ")
        )))
    }
}
