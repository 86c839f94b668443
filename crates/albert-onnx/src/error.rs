//! The one error type of `albert-onnx`.

use std::path::PathBuf;

use albert_core::AlbertError;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(transparent)]
    Core(#[from] AlbertError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a valid ONNX model: {message}")]
    Decode { path: PathBuf, message: String },

    /// A tensor's external data names a file outside the model's directory (or none at all).
    #[error("tensor `{tensor}`: external data location `{location}` {reason}")]
    UnsafeExternalData {
        tensor: String,
        location: String,
        reason: String,
    },

    #[error("task `{task}` needs {needs}, but the checkpoint has {has}")]
    TaskHeads {
        task: String,
        needs: String,
        has: String,
    },

    #[error("--opset {0}: supported opsets are 17 to 21")]
    Opset(i64),

    #[error("cannot fold: {0}")]
    CannotFold(String),

    #[error("cannot quantize: {0}")]
    CannotQuantize(String),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = OnnxError> = std::result::Result<T, E>;

impl OnnxError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OnnxError::Io {
            path: path.into(),
            source,
        }
    }
}
