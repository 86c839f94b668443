//! `albert-train`: ALBERT on tch/libtorch (CPU or CUDA).
//!
//! * [`model`]: the model, numerically equal to HF transformers (fixtures in `tests/fixtures/hf`),
//!   with every cross-layer sharing strategy of the paper and HF-layout checkpoints.
//! * [`device`]: `--device auto|cpu|cuda[:N]`.
//! * [`pretrain`]: MLM + SOP/NSP pretraining; [`finetune`]: sequence classification, token
//!   classification and question answering; [`evaluate`]: held-out MLM accuracy and SOP/NSP
//!   accuracy (own head and linear probe).

pub mod chart;
pub mod data;
pub mod denormals;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod finetune;
pub mod metrics_log;
pub mod model;
pub mod optim;
pub mod pretrain;
pub mod progress;
pub mod run_lock;
pub mod trainer_state;

pub use device::DeviceChoice;
pub use error::{Result, TrainError};
pub use model::{AlbertModel, AlbertOutput};

// The README's examples compile as doc tests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
