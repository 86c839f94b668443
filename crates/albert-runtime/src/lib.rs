//! `albert-runtime`: run ALBERT models exported by `albert-export` inside your application, on
//! ONNX Runtime (CPU, CUDA, TensorRT) or tract (pure Rust, CPU), with tokenization, batching and
//! tasks.
//!
//! ```
//! use albert_runtime::{EmbedOptions, Pipeline, PipelineOptions, Pooling, cosine};
//!
//! # fn main() -> albert_runtime::Result<()> {
//! // A directory made by `albert-export <checkpoint> -o <dir> --task base`; this one is the tiny
//! // random-weight export the project's tests use.
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/runtime/tiny-base");
//! let pipeline = Pipeline::load(dir.as_ref(), &PipelineOptions::default())?;
//! let vectors = pipeline.embed(
//!     &["The whale surfaced.", "A ship sailed from Nantucket."],
//!     EmbedOptions { pooling: Pooling::Mean, normalize: true },
//! )?;
//! assert_eq!(vectors.len(), 2);
//! println!("cosine {:.3} on {}", cosine(&vectors[0], &vectors[1]), pipeline.target());
//! # Ok(())
//! # }
//! ```
//!
//! Choose the engine with [`PipelineOptions::backend`]: [`BackendChoice::Ort`] with
//! [`OrtOptions`] (providers, fallback policy, threads, optimization level) or
//! [`BackendChoice::Tract`]. A [`Pipeline`] is `Send + Sync`; share one between threads.

#![warn(missing_docs)]

pub mod backend;
pub mod error;
pub mod pipeline;
pub mod tasks;

#[cfg(feature = "ort")]
pub use backend::ort::{FallbackPolicy, OrtOptions, Provider, ProviderFlag};
#[cfg(feature = "tract")]
pub use backend::tract::TractOptions;
pub use backend::{
    Backend, BackendChoice, ExecutionTarget, ModelInputs, ModelOutputs, OutputTensor, output,
};
pub use error::{Result, RuntimeError};
pub use pipeline::{Pipeline, PipelineOptions, TextInput, Truncation};
pub use tasks::LabelScore;
pub use tasks::answer::Answer;
pub use tasks::classify::Classification;
pub use tasks::embed::{EmbedOptions, Pooling, cosine};
pub use tasks::fill_mask::{MaskCandidate, MaskPrediction};
pub use tasks::token_classify::WordLabel;

// The README's examples compile as doc tests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;

// The repository README's library example too.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct RepositoryReadmeExample;
