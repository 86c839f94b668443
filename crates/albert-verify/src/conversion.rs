//! `albert-convert --verify`: the converted model against its source in each requested engine,
//! on sample inputs and, when given, real text ([`crate::drift`]). An engine that cannot run the
//! converted model fails the check, unless the failure is not the conversion's: tract with an
//! output that uses ONNX Runtime-only operators (`--fuse ort`, `--int8-format ort`), or an
//! engine that cannot run the source model either; those are skipped with the reason.

use std::path::Path;

use albert_core::AlbertConfig;
use albert_core::checkpoint::CONFIG_FILE;
use albert_core::compare::Drift;
use albert_onnx::proto::pb::{ModelProto, NodeProto};
use albert_runtime::ModelInputs;
use serde::Serialize;

use crate::drift::{self, DriftRow, TextDrift};
use crate::error::{Result, VerifyError};
use crate::verify::{Engine, sample_inputs_for};

/// Sizes of the sample inputs a model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSizes {
    pub vocab: usize,
    pub token_types: usize,
    pub max_length: usize,
}

impl InputSizes {
    /// From the config beside the model (in `dir`), else from the rows of the tables that the
    /// inputs index; small defaults where the graph does not say.
    pub fn of(model: &ModelProto, dir: Option<&Path>) -> InputSizes {
        if let Some(config) = dir.and_then(|d| AlbertConfig::from_file(&d.join(CONFIG_FILE)).ok()) {
            return InputSizes {
                vocab: config.vocab_size,
                token_types: config.type_vocab_size,
                max_length: config.max_position_embeddings,
            };
        }
        let defaults = InputSizes {
            vocab: 100,
            token_types: 2,
            max_length: 16,
        };
        let Some(graph) = model.graph.as_ref() else {
            return defaults;
        };
        let table = |n: &NodeProto| {
            n.input
                .first()
                .and_then(|t| graph.initializer.iter().find(|i| i.name == *t))
        };
        let table_rows = |pick: &dyn Fn(&NodeProto) -> bool| {
            graph
                .node
                .iter()
                .filter(|n| n.op_type == "Gather" && pick(n))
                .filter_map(table)
                .map(|t| t.dims.first().copied().unwrap_or(1) as usize)
                .next()
        };
        let reads =
            |input: &'static str| move |n: &NodeProto| n.input.get(1).is_some_and(|i| i == input);
        InputSizes {
            vocab: table_rows(&reads("input_ids")).unwrap_or(defaults.vocab),
            token_types: table_rows(&reads("token_type_ids")).unwrap_or(defaults.token_types),
            // The position table: the other Gather over a float table that reads neither input.
            max_length: table_rows(&|n: &NodeProto| {
                n.input
                    .get(1)
                    .is_some_and(|i| i != "input_ids" && i != "token_type_ids")
                    && table(n).is_some_and(|t| t.dims.len() == 2)
            })
            .unwrap_or(defaults.max_length),
        }
    }
}

/// Real text for the check: tokenized batches, and the mask token's id (masked-LM agreement).
#[derive(Debug, Clone)]
pub struct TextSample {
    pub batches: Vec<ModelInputs>,
    pub mask_id: Option<i64>,
}

impl TextSample {
    /// The first `sentences` lines of `text` with at least 4 words, tokenized with the
    /// tokenizer at `tokenizer`, 16 to a batch, at most `max_length` (capped at 128) tokens.
    pub fn load(
        tokenizer: &Path,
        text: &Path,
        sentences: usize,
        max_length: usize,
    ) -> Result<TextSample> {
        let tokenizer = albert_core::tokenizer::load(tokenizer)?;
        let lines: Vec<String> = std::fs::read_to_string(text)
            .map_err(|e| VerifyError::Invalid(format!("reading {}: {e}", text.display())))?
            .lines()
            .map(str::trim)
            .filter(|l| l.split_whitespace().count() >= 4)
            .take(sentences)
            .map(str::to_string)
            .collect();
        Ok(TextSample {
            batches: drift::text_batches(&tokenizer, &lines, 16, max_length.min(128))?,
            mask_id: tokenizer
                .token_to_id(albert_core::tokenizer::MASK)
                .map(i64::from),
        })
    }
}

/// What to compare.
#[derive(Debug, Clone)]
pub struct DriftCheck<'a> {
    /// The model that was converted.
    pub source: &'a Path,
    /// The model the drift is measured against: the source, or another (`--reference`).
    pub reference: &'a Path,
    pub converted: &'a Path,
    pub engines: &'a [Engine],
    pub ort_library: Option<&'a Path>,
    /// The converted model uses ONNX Runtime contrib operators that tract does not run.
    pub ort_only: bool,
    pub sizes: InputSizes,
    pub text: Option<&'a TextSample>,
}

/// The outcome of a [`DriftCheck`]; in the conversion report under the names `drift`, `text`,
/// `engines_skipped` and `engine_errors`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftReport {
    #[serde(rename = "drift")]
    pub rows: Vec<DriftRow>,
    pub text: Vec<TextDrift>,
    /// Engines not held against the conversion, with the reason.
    #[serde(rename = "engines_skipped")]
    pub skipped: Vec<SkippedEngine>,
    /// Engines that could not run the converted model.
    #[serde(rename = "engine_errors")]
    pub errors: Vec<EngineError>,
}

/// An engine whose failure is not the conversion's (see the module header).
#[derive(Debug, Clone, Serialize)]
pub struct SkippedEngine {
    pub engine: Engine,
    pub reason: String,
}

/// An engine that could not run the converted model.
#[derive(Debug, Clone, Serialize)]
pub struct EngineError {
    pub engine: Engine,
    pub error: String,
}

/// What the check concludes (see [`DriftReport::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Lossless and within the tolerance: the worst max-abs difference.
    Verified { worst: f64 },
    /// A lossy conversion (int8, float16): the drift is reported, not held to a tolerance.
    Lossy,
    /// Measured against another model than the source: reported only.
    AgainstReference,
}

/// Runs the source (in ONNX Runtime, the reference engine) and the converted model (in each
/// engine) on sample inputs of three shapes (batch × length: 1×7, 3×16, 2×64, capped at the
/// model's length) and on the text sample.
pub fn check(c: &DriftCheck) -> Result<DriftReport> {
    let reference = crate::drift::load(Engine::OnnxRuntime, c.reference, c.ort_library)?;
    let batches: Vec<(String, ModelInputs)> = [(1usize, 7usize), (3, 16), (2, 64)]
        .iter()
        .map(|&(b, l)| (b, l.min(c.sizes.max_length)))
        .map(|(b, l)| {
            (
                format!("{b}x{l}"),
                sample_inputs_for(c.sizes.vocab, 0, c.sizes.token_types, b, l, 7),
            )
        })
        .collect();
    let mut report = DriftReport::default();
    for &engine in c.engines {
        let run = || -> Result<(Vec<DriftRow>, Option<TextDrift>)> {
            let converted = drift::load(engine, c.converted, c.ort_library)?;
            let rows = drift::drift(reference.as_ref(), converted.as_ref(), engine, &batches)?;
            let text = c
                .text
                .map(|t| {
                    drift::text_drift(
                        reference.as_ref(),
                        converted.as_ref(),
                        engine,
                        &t.batches,
                        t.mask_id,
                    )
                })
                .transpose()?;
            Ok((rows, text))
        };
        match run() {
            Ok((rows, text)) => {
                report.rows.extend(rows);
                report.text.extend(text);
            }
            Err(e) if engine == Engine::Tract && c.ort_only => report.skipped.push(SkippedEngine {
                engine,
                reason: format!("the output uses ONNX Runtime-only operators ({e})"),
            }),
            Err(e) => {
                // A graph the engine cannot run before conversion either is the source's limit,
                // not the conversion's: say so and go on.
                let source_runs = (engine != Engine::OnnxRuntime).then(|| {
                    drift::load(engine, c.source, c.ort_library)
                        .and_then(|b| drift::drift(b.as_ref(), b.as_ref(), engine, &batches))
                });
                match source_runs {
                    Some(Err(source_error)) => report.skipped.push(SkippedEngine {
                        engine,
                        reason: format!(
                            "the source model does not run in it either ({source_error})"
                        ),
                    }),
                    _ => report.errors.push(EngineError {
                        engine,
                        error: e.to_string(),
                    }),
                }
            }
        }
    }
    Ok(report)
}

impl DriftReport {
    /// Fails when an engine could not run the converted model, when any output is not comparable
    /// with the reference's (NaN, an infinity, another shape), or when a lossless conversion
    /// (not `lossy`), measured against its own source (not `against_reference`), differs from
    /// it by more than `tolerance` (max-abs).
    pub fn verdict(&self, tolerance: f64, lossy: bool, against_reference: bool) -> Result<Verdict> {
        if !self.errors.is_empty() {
            return Err(VerifyError::Verification(
                "the converted model did not run in every requested engine (see above)".into(),
            ));
        }
        let worst = self
            .rows
            .iter()
            .map(|r| r.drift.clone())
            .fold(Drift::EXACT, Drift::worst);
        // NaN, an infinity or another shape is a broken model however lossy the conversion.
        if let Some(fault) = &worst.fault {
            return Err(VerifyError::Verification(format!(
                "the converted model's outputs are not comparable with the reference's: {fault}"
            )));
        }
        if lossy {
            return Ok(Verdict::Lossy);
        }
        if against_reference {
            return Ok(Verdict::AgainstReference);
        }
        if !worst.within(tolerance) {
            return Err(VerifyError::Verification(format!(
                "the converted model differs from the source by {:.2e} > --tolerance {tolerance:e}",
                worst.max_abs
            )));
        }
        Ok(Verdict::Verified {
            worst: worst.max_abs,
        })
    }
}
