//! `albert-onnx`: ALBERT to ONNX, without libtorch.
//!
//! * [`proto`]: ONNX protobuf I/O (our prost types of the ONNX IR), external data confined to
//!   the model's directory, atomic writes.
//! * [`builder`]: a small graph builder and ALBERT's composite pieces in standard ONNX ops.
//! * [`export`]: checkpoint → `model.onnx`, each shared tensor stored once.
//! * [`inputs`]: the three inputs every ALBERT graph takes.
//! * [`reference`]: an f64 forward pass straight from the checkpoint, the judge of `--verify`.
//! * [`convert`]: graph passes on any ALBERT ONNX model: clean-up, dedupe, fold into `Scan`,
//!   int8 quantization, and size statistics ([`graph`] holds what they share).
//!
//! No inference engine: running a model (verifying an export, measuring a conversion's drift)
//! is `albert-verify`'s, on `albert-runtime`'s engines (DESIGN.md, the layering rule).

pub mod builder;
pub mod convert;
pub mod error;
pub mod export;
pub mod graph;
pub mod inputs;
pub mod proto;
pub mod reference;

pub use error::{OnnxError, Result};
pub use export::{ExportOptions, ExportSummary, Task, build_model, export_dir};
pub use inputs::ModelInputs;

// The README's examples compile as doc tests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
