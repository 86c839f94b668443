//! The one error type of `albert-verify`.

use albert_core::AlbertError;
use albert_onnx::OnnxError;
use albert_runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Core(#[from] AlbertError),

    /// Reading, building or converting the graph.
    #[error(transparent)]
    Onnx(#[from] OnnxError),

    /// Loading or running a model in an engine (the message names the engine).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),

    #[error("verification failed: {0}")]
    Verification(String),

    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = VerifyError> = std::result::Result<T, E>;
