//! The one error type of `albert-runtime`: every message says what is wrong and what to do.

use std::path::PathBuf;

/// Every error `albert-runtime` returns.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// An error from `albert-core`, e.g. reading or validating `config.json`.
    #[error(transparent)]
    Core(#[from] albert_core::AlbertError),

    /// The model file cannot be decoded, or its external data names a file outside the model's
    /// directory.
    #[error(transparent)]
    Model(#[from] albert_onnx::OnnxError),

    /// A file could not be read or was not found (e.g. `model.onnx`).
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    #[error(
        "model directory {dir} is incomplete: {missing} is missing (export one with `albert-export <checkpoint> -o {dir}`)"
    )]
    /// The model directory lacks `model.onnx`, `config.json` or `tokenizer.json`.
    IncompleteModelDir {
        /// The model directory.
        dir: PathBuf,
        /// The missing file's name.
        missing: &'static str,
    },

    /// `tokenizer.json` could not be loaded.
    #[error("{path}: cannot load the tokenizer: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizer library's message.
        message: String,
    },

    /// Tokenizing (or setting up truncation for) an input failed.
    #[error("tokenizing {what}: {message}")]
    Tokenize {
        /// Which input, e.g. `text 2`.
        what: String,
        /// The tokenizer library's message.
        message: String,
    },

    #[error(
        "the model has no output `{output}`, which {task} needs (its outputs: {available}); export it with `--task {export_task}`"
    )]
    /// The model lacks the output a task needs: it was exported for another task.
    MissingOutput {
        /// The output the task needs, e.g. `logits`.
        output: &'static str,
        /// The task asked for, e.g. `classify`.
        task: &'static str,
        /// The model's outputs, comma-separated.
        available: String,
        /// The `albert-export --task` value that produces the output.
        export_task: &'static str,
    },

    #[error(
        "the model's inputs are {found}, expected input_ids, attention_mask and token_type_ids"
    )]
    /// The graph's inputs are not exactly `input_ids`, `attention_mask` and `token_type_ids`.
    UnexpectedInputs {
        /// The graph's input names, comma-separated.
        found: String,
    },

    #[error(
        "text {index} has {tokens} tokens, more than the limit of {limit} (use truncation `truncate` or a shorter text)"
    )]
    /// A text exceeds the token limit under [`Truncation::Error`](crate::Truncation::Error).
    TooLong {
        /// The text's position in the input list (from 0).
        index: usize,
        /// Its length in tokens, special tokens included.
        tokens: usize,
        /// The pipeline's token limit (`max_length`).
        limit: usize,
    },

    /// No texts were given, or a question-answering context is blank; says which.
    #[error("empty input: {0}")]
    Empty(&'static str),

    /// Invalid options or input, e.g. a bad `max_length` or `batch_size`, a token id outside the
    /// vocabulary, no `[MASK]` in a fill-mask text, or a model of the wrong kind for the task.
    #[error("{0}")]
    InvalidInput(String),

    /// Fill-mask was asked of a tokenizer without the mask token (named here).
    #[error("the tokenizer has no mask token `{0}`; fill-mask needs one")]
    NoMaskToken(String),

    #[error("execution provider {provider} is unavailable: {reason}")]
    /// An ONNX Runtime execution provider could not be registered under
    /// [`FallbackPolicy::Require`](crate::backend::ort::FallbackPolicy::Require).
    ProviderUnavailable {
        /// The provider, e.g. `cuda:0`.
        provider: String,
        /// ONNX Runtime's message.
        reason: String,
    },

    #[error(
        "the ONNX Runtime library was not found (looked at: {looked}); install the onnxruntime \
         wheel (`pip install onnxruntime==1.31.1`; tools/setup.sh does it in the project's .venv) \
         and set ORT_DYLIB_PATH to its capi/libonnxruntime.so.1.31.1, pass the path with \
         --ort-library (OrtOptions::library), or ship the library beside the executable"
    )]
    /// No ONNX Runtime shared library exists at any of the candidate paths.
    OrtLibraryNotFound {
        /// The paths tried, comma-separated.
        looked: String,
    },

    /// ONNX Runtime failed to load the library, build the session or run the model.
    #[error("ONNX Runtime: {0}")]
    OnnxRuntime(String),

    /// tract failed to load, optimize or run the model.
    #[error("tract: {0}")]
    Tract(String),
}

/// `Result` with [`RuntimeError`] as the default error.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

impl RuntimeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            path: path.into(),
            source,
        }
    }
}
