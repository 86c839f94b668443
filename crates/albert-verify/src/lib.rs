//! `albert-verify`: the layer above the engine-free graph library (`albert-onnx`) that runs
//! models in `albert-runtime`'s engines, ONNX Runtime and tract, to judge them
//! (DESIGN.md, the layering rule: graph building, export and conversion need no engine; verifying an export
//! or measuring a conversion's drift runs the engines and sits one layer above).
//!
//! * [`verify`]: an export against the f64 reference forward pass (`albert_onnx::reference`)
//!   in both engines, on sample inputs (`albert-export --verify`).
//! * [`drift`]: a converted model's outputs against its source's, on sample inputs and on
//!   real text.
//! * [`conversion`]: the whole check of `albert-convert --verify`: every requested engine, which
//!   could not run and why, and the verdict.
//! * [`convert_job`]: the whole of `albert-convert`: read, run the passes, write the model and
//!   its companions, check the drift, write the report.
//! * [`display`]: byte counts and spinners for the binaries `albert-export` and `albert-convert`.

pub mod conversion;
pub mod convert_job;
pub mod display;
pub mod drift;
pub mod error;
pub mod verify;

pub use error::{Result, VerifyError};

// The README's examples compile as doc tests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
