//! `albert-runtime`: run ALBERT models exported by `albert-export` inside your application, on
//! ONNX Runtime (CPU, CUDA, TensorRT) or tract (pure Rust, CPU), with tokenization, batching and
//! tasks.
//!
//! ```no_run
//! use albert_runtime::{EmbedOptions, Pipeline, PipelineOptions, Pooling};
//!
//! # fn main() -> albert_runtime::Result<()> {
//! // A directory made by `albert-export <checkpoint> -o my-albert-onnx --task base`.
//! let pipeline = Pipeline::load("my-albert-onnx".as_ref(), &PipelineOptions::default())?;
//! let vectors = pipeline.embed(
//!     &["The whale surfaced.", "A ship sailed from Nantucket."],
//!     EmbedOptions { pooling: Pooling::Mean, normalize: true },
//! )?;
//! println!("{} vectors of {} values on {}", vectors.len(), vectors[0].len(), pipeline.target());
//! # Ok(())
//! # }
//! ```
//!
//! Choose the engine with [`PipelineOptions::backend`]: [`BackendChoice::Ort`] with
//! [`OrtOptions`] (providers, fallback policy, threads, optimization level) or
//! [`BackendChoice::Tract`]. A [`Pipeline`] is `Send + Sync`; share one between threads.

pub mod backend;
pub mod error;
pub mod pipeline;
pub mod tasks;

#[cfg(feature = "ort")]
pub use backend::ort::{FallbackPolicy, OrtOptions, Provider};
#[cfg(feature = "tract")]
pub use backend::tract::TractOptions;
pub use backend::{Backend, BackendChoice, ExecutionTarget, ModelInputs, ModelOutputs};
pub use error::{Result, RuntimeError};
pub use pipeline::{Pipeline, PipelineOptions, TextInput, Truncation};
pub use tasks::LabelScore;
pub use tasks::answer::Answer;
pub use tasks::classify::Classification;
pub use tasks::embed::{EmbedOptions, Pooling, cosine};
pub use tasks::fill_mask::{MaskCandidate, MaskPrediction};
pub use tasks::token_classify::WordLabel;
