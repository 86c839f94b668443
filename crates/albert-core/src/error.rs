//! The one error type of `albert-core`: every variant names the file, field or tensor at fault,
//! what was expected and what was found.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AlbertError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: field `{field}`: {message}")]
    ConfigField {
        path: PathBuf,
        field: String,
        message: String,
    },

    #[error("invalid config: field `{field}`: expected {expected}, found {found}")]
    InvalidConfig {
        field: String,
        expected: String,
        found: String,
    },

    #[error("unknown {what} `{found}`: expected one of {expected}")]
    UnknownName {
        what: &'static str,
        found: String,
        expected: String,
    },

    #[error("{path}: not a valid safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },

    #[error("{path}: tensor `{name}` is missing (expected shape {expected:?}{hint})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        hint: String,
    },

    #[error("{path}: unexpected tensor `{name}` with shape {found:?} ({hint})")]
    UnexpectedTensor {
        path: PathBuf,
        name: String,
        found: Vec<usize>,
        hint: String,
    },

    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("{path}: tensor `{name}` has dtype {found}, expected one of F32, F16, BF16, F64")]
    TensorDtype {
        path: PathBuf,
        name: String,
        found: String,
    },

    #[error("{path}: tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },

    /// A text the tokenizer could not encode as asked (e.g. a question too long for any window).
    #[error("tokenizing: {0}")]
    Tokenization(String),

    #[error("tensor `{name}`: {found} values do not fill shape {shape:?} ({expected} values)")]
    TensorLength {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
}

pub type Result<T, E = AlbertError> = std::result::Result<T, E>;

impl AlbertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AlbertError::Io {
            path: path.into(),
            source,
        }
    }
}
