//! `albert-onnx`: ALBERT to ONNX, without libtorch.
//!
//! * [`proto`]: ONNX protobuf I/O (the prost types of `tract-onnx`), external data, atomic writes.
//! * [`builder`]: a small graph builder and ALBERT's composite pieces in standard ONNX ops.
//! * [`export`]: checkpoint → `model.onnx`, each shared tensor stored once.
//! * [`reference`]: an f64 forward pass straight from the checkpoint, the judge of `--verify`.
//! * [`convert`]: graph passes on any ALBERT ONNX model: clean-up, dedupe, fold into `Scan`,
//!   int8 quantization, and the drift report ([`graph`] holds what they share).
//! * [`verify`]: runs an export in ONNX Runtime and tract and compares with the reference.

pub mod builder;
pub mod convert;
pub mod display;
pub mod error;
pub mod export;
pub mod graph;
pub mod proto;
pub mod reference;
pub mod verify;

pub use error::{OnnxError, Result};
pub use export::{ExportOptions, ExportSummary, Task, build_model, export_dir};
