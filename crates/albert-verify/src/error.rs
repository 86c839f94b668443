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

    /// A step of a conversion that failed (`reading model.onnx`), the cause as its source.
    #[error("{step}")]
    Step {
        step: String,
        #[source]
        source: BoxError,
    },
}

impl VerifyError {
    /// `source` as the cause of the failed `step`, which names the file it worked on.
    pub fn step(step: impl Into<String>, source: impl Into<BoxError>) -> VerifyError {
        VerifyError::Step {
            step: step.into(),
            source: source.into(),
        }
    }
}

/// Any error, as the cause of a [`VerifyError::Step`].
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub type Result<T, E = VerifyError> = std::result::Result<T, E>;
