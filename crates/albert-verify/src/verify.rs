//! `--verify`: run an exported model in ONNX Runtime and in tract on sample inputs (several batch
//! sizes and lengths, with padding) and compare every output with the reference forward pass
//! computed from the checkpoint ([`albert_onnx::reference`]).
//!
//! The engines are `albert-runtime`'s backends.

use std::path::{Path, PathBuf};

use albert_core::Checkpoint;
use albert_core::compare::{self, Fault};
use albert_onnx::export::Task;
use albert_onnx::reference::{self, Inputs, Outputs};
use albert_runtime::{Backend, BackendChoice, OrtOptions, TractOptions};
use ndarray::Array2;

use crate::error::{Result, VerifyError};

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

/// As its [`Engine::name`] (the reports' `engine` fields).
impl serde::Serialize for Engine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Loads a model in ONNX Runtime (CPU) through `albert-runtime`.
pub fn load_onnxruntime(model: &Path, library: Option<&Path>) -> Result<Box<dyn Backend>> {
    let options = OrtOptions {
        library: library.map(Path::to_path_buf),
        intra_threads: 2,
        ..OrtOptions::default()
    };
    Ok(albert_runtime::backend::load(
        model,
        &BackendChoice::Ort(options),
    )?)
}

/// Loads a model in tract through `albert-runtime`.
pub fn load_tract(model: &Path) -> Result<Box<dyn Backend>> {
    Ok(albert_runtime::backend::load(
        model,
        &BackendChoice::Tract(TractOptions::default()),
    )?)
}

/// Runs a backend and keeps the named outputs.
pub fn run_backend(backend: &dyn Backend, inputs: &Inputs, names: &[&str]) -> Result<Outputs> {
    let mut outputs = backend.run(inputs)?;
    names
        .iter()
        .map(|name| {
            let value = outputs.remove(*name).ok_or_else(|| {
                VerifyError::Verification(format!("the model has no output `{name}`"))
            })?;
            Ok((name.to_string(), value.to_array()?))
        })
        .collect()
}

/// Sample inputs: random ids, row `i` of the batch shorter than the one before (padding at the
/// end, `pad_token_id`), token type 1 on the second half of each row when the model has two types.
pub fn sample_inputs(checkpoint: &Checkpoint, batch: usize, length: usize, seed: u64) -> Inputs {
    let config = &checkpoint.config;
    sample_inputs_for(
        config.vocab_size,
        config.pad_token_id.unwrap_or(0),
        config.type_vocab_size,
        batch,
        length,
        seed,
    )
}

/// [`sample_inputs`] from the sizes alone (for models known only as ONNX graphs).
pub fn sample_inputs_for(
    vocab_size: usize,
    pad: i64,
    type_vocab_size: usize,
    batch: usize,
    length: usize,
    seed: u64,
) -> Inputs {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ ((batch as u64) << 32) ^ length as u64);
    let low = if vocab_size > 5 { 5 } else { 0 };
    let mut input_ids = Array2::<i64>::zeros((batch, length));
    let mut attention_mask = Array2::<i64>::zeros((batch, length));
    let mut token_type_ids = Array2::<i64>::zeros((batch, length));
    for b in 0..batch {
        let real = (length - (length * b) / batch.max(1)).max(1);
        for p in 0..length {
            if p < real {
                input_ids[[b, p]] = rng.random_range(low..vocab_size) as i64;
                attention_mask[[b, p]] = 1;
                if type_vocab_size > 1 && p >= real / 2 && real > 1 {
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
    /// `albert_core::compare`'s max-abs difference: `+inf` when either side is not finite.
    pub max_abs_diff: f64,
    /// max |reference| of this output: what float32 precision is relative to.
    pub reference_scale: f64,
}

impl VerifyRow {
    /// The largest difference that passes: `tolerance × max(1, max |reference|)`. float32 keeps
    /// about 7 significant digits of an output's scale, so a trained model's MLM logits (tens)
    /// carry proportionally larger rounding than unit-scale hidden states; below scale 1 the
    /// tolerance is absolute.
    pub fn bound(&self, tolerance: f64) -> f64 {
        tolerance * self.reference_scale.max(1.0)
    }

    /// Whether the difference is within [`VerifyRow::bound`]; NaN or an infinity on either side
    /// (an infinite difference, `albert_core::compare`) never is, even against an infinite bound.
    pub fn passes(&self, tolerance: f64) -> bool {
        self.max_abs_diff.is_finite() && self.max_abs_diff <= self.bound(tolerance)
    }
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
    /// f64 reference quick); tolerance 1e-4 of each output's scale ([`VerifyRow::bound`]).
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

/// Runs every (engine, batch, length) and compares every output; the rows come back even when some
/// exceed the tolerance, so that the caller can print them; [`check`] turns them into a verdict.
pub fn verify(
    model: &Path,
    checkpoint: &Checkpoint,
    task: Task,
    options: &VerifyOptions,
) -> Result<Vec<VerifyRow>> {
    let names = task.outputs(&checkpoint.parts);
    let tract = load_tract(model)?;
    let onnxruntime = load_onnxruntime(model, options.ort_library.as_deref())?;
    let mut rows = Vec::new();
    for &batch in &options.batches {
        for &length in &options.lengths {
            if length > checkpoint.config.max_position_embeddings {
                return Err(VerifyError::Invalid(format!(
                    "verify length {length} exceeds max_position_embeddings {}",
                    checkpoint.config.max_position_embeddings
                )));
            }
            let inputs = sample_inputs(checkpoint, batch, length, options.seed);
            let expected = reference::run(checkpoint, task, &inputs)?;
            let engines = [
                (
                    Engine::OnnxRuntime,
                    run_backend(onnxruntime.as_ref(), &inputs, &names)?,
                ),
                (Engine::Tract, run_backend(tract.as_ref(), &inputs, &names)?),
            ];
            for (engine, got) in engines {
                for name in &names {
                    let (g, e) = (&got[*name], &expected[*name]);
                    let drift = compare::drift(g, e);
                    if let Some(fault @ Fault::Shape { .. }) = &drift.fault {
                        return Err(VerifyError::Verification(format!(
                            "{} output `{name}` against the reference: {fault}",
                            engine.name()
                        )));
                    }
                    rows.push(VerifyRow {
                        engine,
                        batch,
                        length,
                        output: name.to_string(),
                        max_abs_diff: drift.max_abs,
                        reference_scale: e.iter().fold(0.0, |m, v| m.max(f64::from(v.abs()))),
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// Fails when any row exceeds its bound ([`VerifyRow::bound`]).
pub fn check(rows: &[VerifyRow], tolerance: f64) -> Result<()> {
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.passes(tolerance))
        .map(|r| {
            format!(
                "{} batch {} length {} {}: {:.3e} > {:.3e}",
                r.engine.name(),
                r.batch,
                r.length,
                r.output,
                r.max_abs_diff,
                r.bound(tolerance)
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(VerifyError::Verification(format!(
            "max-abs difference above {tolerance:e} × max(1, max |reference|): {}",
            bad.join("; ")
        )))
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    fn row(max_abs_diff: f64, reference_scale: f64) -> VerifyRow {
        VerifyRow {
            engine: Engine::Tract,
            batch: 1,
            length: 7,
            output: "logits".into(),
            max_abs_diff,
            reference_scale,
        }
    }

    #[test]
    fn the_bound_scales_with_outputs_larger_than_one() {
        // MLM logits up to 30: 1e-4 of the scale is 3e-3.
        assert!((row(0.0, 30.0).bound(1e-4) - 3e-3).abs() < 1e-15);
        assert!(row(2e-3, 30.0).passes(1e-4));
        assert!(!row(4e-3, 30.0).passes(1e-4));
        // Unit-scale and smaller outputs: the tolerance is absolute.
        assert!(row(9e-5, 0.5).passes(1e-4));
        assert!(!row(2e-4, 0.5).passes(1e-4));
        assert!(!row(f64::NAN, 1.0).passes(1e-4));
        // An infinite reference makes an infinite bound: an infinite difference still fails.
        assert!(!row(f64::INFINITY, f64::INFINITY).passes(1e-4));
        let err = check(&[row(4e-3, 30.0)], 1e-4)
            .expect_err("above the bound")
            .to_string();
        assert!(err.contains("tract batch 1 length 7 logits"), "{err}");
    }
}
