//! The one error type of `albert-runtime`: every message says what is wrong and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Core(#[from] albert_core::AlbertError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "model directory {dir} is incomplete: {missing} is missing (export one with `albert-export <checkpoint> -o {dir}`)"
    )]
    IncompleteModelDir { dir: PathBuf, missing: &'static str },

    #[error("{path}: cannot load the tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },

    #[error("tokenizing {what}: {message}")]
    Tokenize { what: String, message: String },

    #[error(
        "the model has no output `{output}`, which {task} needs (its outputs: {available}); export it with `--task {export_task}`"
    )]
    MissingOutput {
        output: &'static str,
        task: &'static str,
        available: String,
        export_task: &'static str,
    },

    #[error(
        "the model's inputs are {found}, expected input_ids, attention_mask and token_type_ids"
    )]
    UnexpectedInputs { found: String },

    #[error(
        "text {index} has {tokens} tokens, more than the limit of {limit} (use truncation `truncate` or a shorter text)"
    )]
    TooLong {
        index: usize,
        tokens: usize,
        limit: usize,
    },

    #[error("empty input: {0}")]
    Empty(&'static str),

    #[error("{0}")]
    InvalidInput(String),

    #[error("the tokenizer has no mask token `{0}`; fill-mask needs one")]
    NoMaskToken(String),

    #[error("execution provider {provider} is unavailable: {reason}")]
    ProviderUnavailable { provider: String, reason: String },

    #[error(
        "the ONNX Runtime library was not found (looked at: {looked}); run tools/setup.sh, set \
         ORT_DYLIB_PATH to libonnxruntime.so.1.31.1, or pass its path in OrtOptions::library"
    )]
    OrtLibraryNotFound { looked: String },

    #[error("ONNX Runtime: {0}")]
    OnnxRuntime(String),

    #[error("tract: {0}")]
    Tract(String),

    #[error("backend `{0}` is not compiled in (enable the cargo feature of that name)")]
    BackendNotCompiled(&'static str),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }
}
