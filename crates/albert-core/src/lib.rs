//! `albert-core`: what every part of the ALBERT toolchain shares, with no libtorch and no ONNX.
//!
//! * [`config`]: the Hugging Face `config.json` of ALBERT, read and written unchanged, with the
//!   paper's cross-layer sharing strategies and the Table 1 presets.
//! * [`params`]: the parameter inventory (canonical HF names, shapes, sharing), and counts.
//! * [`cpu`]: the CPU's model and the x86-64 extensions the int8 paths depend on (VNNI, AVX-512,
//!   AMX), detected once for the workspace.
//! * [`compare`]: the one comparison of two outputs (max-abs, cosine) where NaN, infinities and
//!   shape mismatches fail.
//! * [`checkpoint`]: `model.safetensors` checkpoints in the HF layout, validated tensor by tensor.
//! * [`task`]: what an exported graph computes, its heads and its output names.
//! * [`fsutil`]: atomic file and directory writes, and typed JSON files read with errors naming
//!   the file and field.
//! * [`tokenizer`]: loading `tokenizer.json`, training ALBERT-style unigram tokenizers.
//!
//! ALBERT: Lan et al., "ALBERT: A Lite BERT for Self-supervised Learning of Language
//! Representations", arXiv 1909.11942; reference implementation: HF transformers
//! `models/albert/modeling_albert.py`.

pub mod activation;
pub mod checkpoint;
pub mod compare;
pub mod config;
pub mod cpu;
pub mod error;
pub mod fsutil;
pub mod params;
pub mod qa;
pub mod task;
pub mod tokenizer;

pub use activation::{Activation, HiddenAct};
pub use checkpoint::{Checkpoint, TensorF32};
pub use config::{AlbertConfig, Preset, Sharing};
pub use error::{AlbertError, Result};
pub use fsutil::write_atomic;
pub use params::{Head, LayerSlot, ParamSpec, Parts, SentenceHead};
pub use task::{OutputShape, Task};

// The README's examples compile as doc tests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
