//! `albert-convert`'s work as a library, one method per step: read the input (a model directory
//! or a `.onnx` file) and run `albert_onnx::convert`'s passes on it ([`ConvertJob::convert`]);
//! write the converted model, with the input's config and tokenizer when the output is a
//! directory ([`ConvertJob::write`]); measure its drift against the source in the engines
//! ([`ConvertJob::check_drift`], through [`crate::conversion`]) and judge it
//! ([`ConvertJob::verdict`]); write the [`ConvertReport`] as JSON ([`ConvertJob::write_report`]).
//! The binary parses the command line and prints what each step returns.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use albert_onnx::convert::{ConvertOptions, LoopMode};
//! use albert_verify::convert_job::{ConvertJob, DriftOptions};
//!
//! # fn main() -> albert_verify::Result<()> {
//! let options = ConvertOptions { loops: LoopMode::Fold, ..ConvertOptions::default() };
//! let job = ConvertJob::new(Path::new("my-albert-onnx"), Path::new("my-albert-small"), options)?;
//! let converted = job.convert()?;
//! let written = job.write(&converted)?;
//! let drift = job.check_drift(&converted, &DriftOptions::default())?;
//! let verdict = job.verdict(&drift, &DriftOptions::default());
//! job.write_report(&job.report(converted, written, drift))?;
//! verdict?;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use albert_core::checkpoint::{MODEL_FILE, TOKENIZER_FILE, checked_companions};
use albert_onnx::convert::report::{ModelStats, model_file_bytes};
use albert_onnx::convert::{self, ConvertOptions, FuseFlavour, PassLog, QuantFormat};
use albert_onnx::proto::pb::ModelProto;
use albert_onnx::proto::{self, EXTERNAL_DATA_THRESHOLD};
use serde::Serialize;

use crate::conversion::{self, DriftCheck, DriftReport, InputSizes, TextSample, Verdict};
use crate::error::{BoxError, Result, VerifyError};
use crate::verify::Engine;

/// The report's name in an output directory (beside an output file: `<out>.report.json`).
pub const REPORT_FILE: &str = "convert-report.json";

/// Where a conversion reads and writes.
#[derive(Debug, Clone)]
pub struct ConvertPaths {
    pub input_model: PathBuf,
    /// The input, when it is a model directory (its config and tokenizer are read there).
    pub input_dir: Option<PathBuf>,
    pub output_model: PathBuf,
    /// The output, when it is a directory (not a `.onnx` file).
    pub output_dir: Option<PathBuf>,
    pub report: PathBuf,
}

impl ConvertPaths {
    /// `input` is a model directory (holding `model.onnx`) or a `.onnx` file; `output` is a
    /// `.onnx` file or a directory. Fails when the input model does not exist, or when the output
    /// would overwrite it.
    pub fn resolve(input: &Path, output: &Path) -> Result<ConvertPaths> {
        let (input_model, input_dir) = if input.is_dir() {
            (input.join(MODEL_FILE), Some(input.to_path_buf()))
        } else {
            (input.to_path_buf(), None)
        };
        if !input_model.exists() {
            return Err(VerifyError::Invalid(format!(
                "{}: not found (expected a .onnx file or a directory holding {MODEL_FILE})",
                input_model.display()
            )));
        }
        let (output_model, output_dir, report) = if output.extension().is_some_and(|e| e == "onnx")
        {
            (
                output.to_path_buf(),
                None,
                output.with_extension("report.json"),
            )
        } else {
            (
                output.join(MODEL_FILE),
                Some(output.to_path_buf()),
                output.join(REPORT_FILE),
            )
        };
        if output_model.canonicalize().ok() == input_model.canonicalize().ok()
            && output_model.exists()
        {
            return Err(VerifyError::Invalid(format!(
                "--output would overwrite the input model {}",
                input_model.display()
            )));
        }
        Ok(ConvertPaths {
            input_model,
            input_dir,
            output_model,
            output_dir,
            report,
        })
    }
}

/// How to measure the drift (`albert-convert --verify`).
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// Engines the converted model runs in (the reference always runs in ONNX Runtime).
    pub engines: Vec<Engine>,
    /// Max-abs tolerance for lossless passes (not applied to int8 or float16 output).
    pub tolerance: f64,
    /// Real text (one sentence per line), tokenized with the input directory's tokenizer.
    pub text: Option<PathBuf>,
    /// Sentences of `text` to use.
    pub sentences: usize,
    /// The model to measure against instead of the input.
    pub reference: Option<PathBuf>,
    pub ort_library: Option<PathBuf>,
}

impl Default for DriftOptions {
    /// Both engines, 1e-4, no text (256 sentences when given), against the input.
    fn default() -> Self {
        DriftOptions {
            engines: vec![Engine::OnnxRuntime, Engine::Tract],
            tolerance: 1e-4,
            text: None,
            sentences: 256,
            reference: None,
            ort_library: None,
        }
    }
}

/// One conversion: where it reads and writes, and the passes it runs.
#[derive(Debug, Clone)]
pub struct ConvertJob {
    pub paths: ConvertPaths,
    pub options: ConvertOptions,
    /// The input directory's config and tokenizer, copied into an output directory.
    companions: Vec<&'static str>,
}

/// The converted model, in memory, and what the passes did.
#[derive(Debug, Clone)]
pub struct Converted {
    pub model: ModelProto,
    pub log: Vec<PassLog>,
    /// Size and structure of the source.
    pub source: ModelStats,
    /// Sizes of the sample inputs the source takes.
    pub sizes: InputSizes,
}

/// What `albert-convert` writes beside the converted model (`convert-report.json`).
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    pub input: PathBuf,
    pub output: PathBuf,
    pub passes: Vec<PassLog>,
    pub source: ModelStats,
    pub converted: ModelStats,
    /// Converted file bytes over the source's.
    pub size_ratio: f64,
    /// The int8 weight encoding (`--int8-weights`), when the conversion quantized.
    pub int8_weights: Option<&'static str>,
    /// `drift`, `text`, `engines_skipped`, `engine_errors`: empty without `--verify`.
    #[serde(flatten)]
    pub drift: DriftReport,
}

impl ConvertJob {
    /// Resolves the paths ([`ConvertPaths::resolve`]) and, for an output directory, loads and
    /// checks the input's config and tokenizer before anything is written.
    pub fn new(input: &Path, output: &Path, options: ConvertOptions) -> Result<ConvertJob> {
        let paths = ConvertPaths::resolve(input, output)?;
        let companions = match (&paths.input_dir, &paths.output_dir) {
            (Some(input_dir), Some(_)) => checked_companions(input_dir)?,
            _ => Vec::new(),
        };
        Ok(ConvertJob {
            paths,
            options,
            companions,
        })
    }

    /// Reads the input model and runs the passes on it.
    pub fn convert(&self) -> Result<Converted> {
        let input = &self.paths.input_model;
        let mut model = proto::read_model(input)
            .map_err(|e| VerifyError::step(format!("reading {}", input.display()), e))?;
        let source = ModelStats::of(&model, model_file_bytes(input));
        let sizes = InputSizes::of(&model, self.paths.input_dir.as_deref());
        let log = convert::convert(&mut model, &self.options)
            .map_err(|e| VerifyError::step(format!("converting {}", input.display()), e))?;
        Ok(Converted {
            model,
            log,
            source,
            sizes,
        })
    }

    /// Writes the converted model (and, into an output directory, the input's config and
    /// tokenizer); returns its size and structure.
    pub fn write(&self, converted: &Converted) -> Result<ModelStats> {
        if let Some(dir) = &self.paths.output_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| VerifyError::step(format!("creating {}", dir.display()), e))?;
            if let Some(input_dir) = &self.paths.input_dir {
                for file in &self.companions {
                    let from = input_dir.join(file);
                    let copy = || -> std::result::Result<(), BoxError> {
                        albert_core::write_atomic(&dir.join(file), &std::fs::read(&from)?)?;
                        Ok(())
                    };
                    copy()
                        .map_err(|e| VerifyError::step(format!("copying {}", from.display()), e))?;
                }
            }
        }
        let written = proto::write_model(
            &self.paths.output_model,
            converted.model.clone(),
            EXTERNAL_DATA_THRESHOLD,
        )?;
        Ok(ModelStats::of(&converted.model, written))
    }

    /// Whether the output uses ONNX Runtime contrib ops that tract does not run (`--fuse ort`,
    /// `--int8-format ort`).
    pub fn ort_only(&self) -> bool {
        self.options.fuse == Some(FuseFlavour::Ort)
            || self
                .options
                .quantize
                .as_ref()
                .is_some_and(|q| q.format == QuantFormat::Ort)
    }

    /// Whether a pass changes the numbers on purpose (int8, float16): the drift is then
    /// reported, not held to a tolerance.
    pub fn lossy(&self) -> bool {
        self.options.quantize.is_some() || self.options.float16
    }

    /// Runs the written model against the source (or `drift.reference`) in each engine, on
    /// sample inputs and on the text sample ([`conversion::check`]).
    pub fn check_drift(&self, converted: &Converted, drift: &DriftOptions) -> Result<DriftReport> {
        let tokenizer = self
            .paths
            .input_dir
            .as_ref()
            .map(|d| d.join(TOKENIZER_FILE));
        let text = match (&drift.text, tokenizer) {
            (Some(text), Some(tokenizer)) if tokenizer.exists() => Some(TextSample::load(
                &tokenizer,
                text,
                drift.sentences,
                converted.sizes.max_length,
            )?),
            (Some(_), _) => {
                return Err(VerifyError::Invalid(format!(
                    "--text needs the input to be a model directory with {TOKENIZER_FILE}"
                )));
            }
            _ => None,
        };
        let reference = drift.reference.as_ref().unwrap_or(&self.paths.input_model);
        conversion::check(&DriftCheck {
            source: &self.paths.input_model,
            reference,
            converted: &self.paths.output_model,
            engines: &drift.engines,
            ort_library: drift.ort_library.as_deref(),
            ort_only: self.ort_only(),
            sizes: converted.sizes,
            text: text.as_ref(),
        })
        .map_err(|e| {
            VerifyError::step(
                format!("loading {} in ONNX Runtime", reference.display()),
                e,
            )
        })
    }

    /// The check's conclusion: lossy, measured against another reference, or within
    /// `drift.tolerance` ([`DriftReport::verdict`]).
    pub fn verdict(&self, report: &DriftReport, drift: &DriftOptions) -> Result<Verdict> {
        report.verdict(drift.tolerance, self.lossy(), drift.reference.is_some())
    }

    /// The report of the conversion; `drift` is empty when it was not checked.
    pub fn report(
        &self,
        converted: Converted,
        output: ModelStats,
        drift: DriftReport,
    ) -> ConvertReport {
        ConvertReport {
            input: self.paths.input_model.clone(),
            output: self.paths.output_model.clone(),
            passes: converted.log,
            size_ratio: output.file_bytes as f64 / converted.source.file_bytes.max(1) as f64,
            int8_weights: self.options.quantize.as_ref().map(|q| q.weights.name()),
            source: converted.source,
            converted: output,
            drift,
        }
    }

    /// Writes `report` as JSON to [`ConvertPaths::report`] (atomically).
    pub fn write_report(&self, report: &ConvertReport) -> Result<()> {
        let path = &self.paths.report;
        let write = || -> std::result::Result<(), BoxError> {
            albert_core::write_atomic(path, serde_json::to_string_pretty(report)?.as_bytes())?;
            Ok(())
        };
        write().map_err(|e| VerifyError::step(format!("writing {}", path.display()), e))
    }
}
