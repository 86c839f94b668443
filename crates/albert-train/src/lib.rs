//! `albert-train`: ALBERT on tch/libtorch (CPU or CUDA).
//!
//! * [`model`]: the model, numerically equal to HF transformers (fixtures in `tests/fixtures/hf`),
//!   with every cross-layer sharing strategy of the paper and HF-layout checkpoints.
//! * [`device`]: `--device auto|cpu|cuda[:N]`.

pub mod device;
pub mod error;
pub mod model;

pub use device::DeviceChoice;
pub use error::{Result, TrainError};
pub use model::{AlbertModel, AlbertOutput};
