//! Errors of the trainer library.

use albert_core::AlbertError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Core(#[from] AlbertError),

    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),

    #[error(
        "--device cuda: no CUDA device is visible to libtorch ({libtorch}); use --device auto or cpu, \
         or run on a machine with an NVIDIA GPU and its driver"
    )]
    CudaUnavailable { libtorch: String },

    #[error("--device cuda:{index}: only {count} CUDA device(s) visible")]
    CudaIndex { index: usize, count: usize },

    #[error("input `{name}`: {message}")]
    BadInput { name: &'static str, message: String },

    #[error("the model has no {0} head")]
    MissingHead(&'static str),
}

impl TrainError {
    /// A file operation on `path` failed.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TrainError::Core(AlbertError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
