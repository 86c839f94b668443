//! The pipeline: an exported model directory (`model.onnx`, `config.json`, `tokenizer.json`) on a
//! backend, with tokenization (single texts and pairs, with a truncation policy) and batching
//! (texts of similar length together, each batch padded to its longest). Tasks are in
//! [`crate::tasks`].

use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use albert_core::{AlbertConfig, OutputShape, Task};
use ndarray::Array2;
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use crate::backend::{self, Backend, BackendChoice, ExecutionTarget, ModelInputs, ModelOutputs};
use crate::error::{Result, RuntimeError};

pub use albert_core::checkpoint::{CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};

/// What to do with a text longer than the model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncation {
    /// Fail with [`RuntimeError::TooLong`].
    #[default]
    Error,
    /// Cut it to the limit (pairs: the longer side first; question answering: the context).
    Truncate,
}

/// How [`Pipeline::load`] sets up a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// The engine and its options [default: ONNX Runtime on the CPU if compiled in, else tract].
    pub backend: BackendChoice,
    /// What to do with texts over `max_length` [default: `Error`].
    pub truncation: Truncation,
    /// Token limit per text, special tokens included [default: max_position_embeddings].
    pub max_length: Option<usize>,
    /// Texts per model call (at least 1) [default: 16].
    pub batch_size: usize,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            backend: BackendChoice::default(),
            truncation: Truncation::Error,
            max_length: None,
            batch_size: 16,
        }
    }
}

/// An input: a text or a pair of texts (segment B gets token type 1).
#[derive(Debug, Clone, Copy)]
pub enum TextInput<'a> {
    /// One text.
    Single(&'a str),
    /// Two texts (segments A and B), encoded together.
    Pair(&'a str, &'a str),
}

/// A loaded model, ready to run tasks. `Send + Sync`: share it between threads (`Arc<Pipeline>`).
pub struct Pipeline {
    backend: Box<dyn Backend>,
    tokenizer: Tokenizer,
    /// The tokenizer with truncation to `max_length` (longest side first / segment B only), made
    /// once at load rather than per over-long text.
    truncate_longest: Tokenizer,
    truncate_second: Tokenizer,
    config: AlbertConfig,
    truncation: Truncation,
    max_length: usize,
    batch_size: usize,
    dir: PathBuf,
    /// What the model computes, found on the first [`Pipeline::task`] call.
    task: OnceLock<Task>,
}

/// `text`, sequence `seq` of the untruncated encoding `raw` (character offsets, as
/// `encode_char_offsets` gives them), cut before its token number `keep` (whole when shorter).
fn cut_after<'t>(text: &'t str, raw: &Encoding, seq: usize, keep: usize) -> &'t str {
    let cut = raw
        .get_sequence_ids()
        .iter()
        .zip(raw.get_offsets())
        .filter(|(s, _)| **s == Some(seq))
        .nth(keep)
        .map(|(_, &(start, _))| start);
    match cut.and_then(|c| text.char_indices().nth(c)) {
        Some((byte, _)) => text.get(..byte).unwrap_or(text),
        None => text,
    }
}

fn tokenize_error(what: impl Into<String>, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Tokenize {
        what: what.into(),
        message: e.to_string(),
    }
}

impl Pipeline {
    /// Loads an exported model directory.
    pub fn load(dir: &Path, options: &PipelineOptions) -> Result<Self> {
        for (file, name) in [
            (MODEL_FILE, "model.onnx"),
            (CONFIG_FILE, "config.json"),
            (TOKENIZER_FILE, "tokenizer.json"),
        ] {
            if !dir.join(file).exists() {
                return Err(RuntimeError::IncompleteModelDir {
                    dir: dir.to_path_buf(),
                    missing: name,
                });
            }
        }
        let config = AlbertConfig::from_file(&dir.join(CONFIG_FILE))?;
        // The workspace's one loader: a malformed file is an error naming it (never a panic
        // inside `tokenizers`), and a vocabulary larger than the model's is refused here.
        let tokenizer =
            albert_core::tokenizer::load_for(&dir.join(TOKENIZER_FILE), config.vocab_size)?;
        let max_length = options
            .max_length
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);
        if max_length < 3 {
            return Err(RuntimeError::InvalidInput(format!(
                "max_length {max_length} is below 3"
            )));
        }
        if options.batch_size == 0 {
            return Err(RuntimeError::InvalidInput(
                "batch_size must be at least 1".into(),
            ));
        }
        let truncating = |strategy| -> Result<Tokenizer> {
            let mut t = tokenizer.clone();
            t.with_truncation(Some(TruncationParams {
                max_length,
                strategy,
                ..TruncationParams::default()
            }))
            .map_err(|e| RuntimeError::Tokenizer {
                path: dir.join(TOKENIZER_FILE),
                message: e.to_string(),
            })?;
            Ok(t)
        };
        let truncate_longest = truncating(TruncationStrategy::LongestFirst)?;
        let truncate_second = truncating(TruncationStrategy::OnlySecond)?;
        let backend = backend::load(&dir.join(MODEL_FILE), &options.backend)?;
        Ok(Pipeline {
            backend,
            tokenizer,
            truncate_longest,
            truncate_second,
            config,
            truncation: options.truncation,
            max_length,
            batch_size: options.batch_size,
            dir: dir.to_path_buf(),
            task: OnceLock::new(),
        })
    }

    /// What runs the model (after any provider fallback).
    pub fn target(&self) -> ExecutionTarget {
        self.backend.target()
    }

    /// The model's `config.json`.
    pub fn config(&self) -> &AlbertConfig {
        &self.config
    }

    /// The model's tokenizer, from `tokenizer.json`.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The directory the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.dir
    }

    /// The model's output names, in graph order.
    pub fn output_names(&self) -> &[String] {
        self.backend.output_names()
    }

    /// Fails unless the model has output `name`.
    pub(crate) fn require_output(
        &self,
        name: &'static str,
        task: &'static str,
        export_task: Task,
    ) -> Result<()> {
        if self.output_names().iter().any(|n| n == name) {
            Ok(())
        } else {
            Err(RuntimeError::MissingOutput {
                output: name,
                task,
                available: self.output_names().join(", "),
                export_task: export_task.name(),
            })
        }
    }

    /// Tokenizes one input with character offsets under the given truncation policy (a server
    /// takes it per request) and checks its ids against the vocabulary. `index` names the input
    /// in errors; `only_second` truncates only segment B (question answering's context).
    pub fn encode_with(
        &self,
        index: usize,
        input: TextInput<'_>,
        truncation: Truncation,
        only_second: bool,
    ) -> Result<Encoding> {
        let raw = match input {
            TextInput::Single(a) => self.tokenizer.encode_char_offsets(a, true),
            TextInput::Pair(a, b) => self.tokenizer.encode_char_offsets((a, b), true),
        }
        .map_err(|e| tokenize_error(format!("text {index}"), e))?;
        let encoding = if raw.len() <= self.max_length {
            raw
        } else {
            match truncation {
                Truncation::Error => {
                    return Err(RuntimeError::TooLong {
                        index,
                        tokens: raw.len(),
                        limit: self.max_length,
                    });
                }
                Truncation::Truncate => {
                    let tokenizer = if only_second {
                        &self.truncate_second
                    } else {
                        &self.truncate_longest
                    };
                    // Each side is first cut to `max_length` tokens, which no truncation keeps
                    // more of: `tokenizers` splits what it truncates into overflow pieces and, for
                    // a pair, post-processes every piece of A with every piece of B, so two 10k-
                    // character texts took 7 GB and 45 s (tests/fixtures/fuzz/runtime_text).
                    let keep = self.max_length;
                    match input {
                        TextInput::Single(a) => {
                            tokenizer.encode_char_offsets(cut_after(a, &raw, 0, keep), true)
                        }
                        TextInput::Pair(a, b) => tokenizer.encode_char_offsets(
                            (cut_after(a, &raw, 0, keep), cut_after(b, &raw, 1, keep)),
                            true,
                        ),
                    }
                    .map_err(|e| tokenize_error(format!("text {index}"), e))?
                }
            }
        };
        self.check_ids(index, &encoding)?;
        Ok(encoding)
    }

    /// Takes token ids as a client tokenized them (special tokens included), under the given
    /// truncation policy (`Truncate` keeps the first `max_length`), and checks them against the
    /// vocabulary. Word ids and offsets are unknown, so this serves the tasks that need neither
    /// (embeddings, classification).
    pub fn encode_ids(
        &self,
        index: usize,
        ids: &[u32],
        truncation: Truncation,
    ) -> Result<Encoding> {
        if ids.is_empty() {
            return Err(RuntimeError::Empty("a token-id list is empty"));
        }
        let ids = if ids.len() <= self.max_length {
            ids
        } else if truncation == Truncation::Truncate {
            &ids[..self.max_length]
        } else {
            return Err(RuntimeError::TooLong {
                index,
                tokens: ids.len(),
                limit: self.max_length,
            });
        };
        let n = ids.len();
        let tokens = ids
            .iter()
            .map(|&id| self.tokenizer.id_to_token(id).unwrap_or_default())
            .collect();
        let encoding = Encoding::new(
            ids.to_vec(),
            vec![0; n],
            tokens,
            vec![None; n],
            vec![(0, 0); n],
            vec![0; n],
            vec![1; n],
            Vec::new(),
            Default::default(),
        );
        self.check_ids(index, &encoding)?;
        Ok(encoding)
    }

    /// The token limit per text, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Runs one batch of encodings, padded to its longest (a server forms its own batches; the
    /// task methods batch with [`PipelineOptions::batch_size`]). Row `i` of each output is
    /// `batch[i]`'s.
    pub fn run_encodings(&self, batch: &[&Encoding]) -> Result<ModelOutputs> {
        if batch.is_empty() {
            return Err(RuntimeError::Empty("no texts given"));
        }
        self.backend.run(&self.pad(batch))
    }

    /// What the model computes, read from its outputs on a three-token probe run (made once,
    /// on the first call): see [`Task::from_outputs`].
    pub fn task(&self) -> Result<Task> {
        if let Some(task) = self.task.get() {
            return Ok(*task);
        }
        let probe = self.encode_with(0, TextInput::Single("a"), Truncation::Truncate, false)?;
        let outputs = self.run_encodings(&[&probe])?;
        let shapes = outputs
            .iter()
            .map(|(name, tensor)| {
                Ok(OutputShape {
                    name: name.clone(),
                    dims: tensor.shape()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let task = Task::from_outputs(&shapes, self.config.vocab_size).ok_or_else(|| {
            RuntimeError::InvalidInput(format!(
                "{}: the model's outputs ({}) are not those of an ALBERT task (last_hidden_state, logits, prediction_logits, start_logits/end_logits)",
                self.dir.display(),
                self.output_names().join(", ")
            ))
        })?;
        Ok(*self.task.get_or_init(|| task))
    }

    /// Runs encodings in batches of similar length and returns, for each encoding in the caller's
    /// order, its batch's outputs and its row in that batch.
    pub(crate) fn run_batched(
        &self,
        encodings: &[Encoding],
    ) -> Result<Vec<(std::sync::Arc<ModelOutputs>, usize)>> {
        if encodings.is_empty() {
            return Err(RuntimeError::Empty("no texts given"));
        }
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut placed: Vec<Option<(std::sync::Arc<ModelOutputs>, usize)>> =
            vec![None; encodings.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let outputs = std::sync::Arc::new(self.backend.run(&self.pad(&batch))?);
            for (row, &i) in chunk.iter().enumerate() {
                placed[i] = Some((outputs.clone(), row));
            }
        }
        placed
            .into_iter()
            .map(|p| {
                p.ok_or_else(|| RuntimeError::InvalidInput("internal: a text was not run".into()))
            })
            .collect()
    }

    /// Pads a batch to its longest encoding (`pad_token_id`, attention mask 0).
    fn pad(&self, batch: &[&Encoding]) -> ModelInputs {
        let longest = batch.iter().map(|e| e.len()).max().unwrap_or(1).max(1);
        let pad = self.config.pad_token_id.unwrap_or(0);
        let mut input_ids = Array2::from_elem((batch.len(), longest), pad);
        let mut attention_mask = Array2::<i64>::zeros((batch.len(), longest));
        let mut token_type_ids = Array2::<i64>::zeros((batch.len(), longest));
        for (row, encoding) in batch.iter().enumerate() {
            for (col, ((&id, &mask), &ty)) in encoding
                .get_ids()
                .iter()
                .zip(encoding.get_attention_mask())
                .zip(encoding.get_type_ids())
                .enumerate()
            {
                input_ids[[row, col]] = i64::from(id);
                attention_mask[[row, col]] = i64::from(mask);
                token_type_ids[[row, col]] = i64::from(ty);
            }
        }
        ModelInputs {
            input_ids,
            attention_mask,
            token_type_ids,
        }
    }

    /// Checks token ids against the model's vocabulary (a tokenizer/model mismatch).
    pub(crate) fn check_ids(&self, index: usize, encoding: &Encoding) -> Result<()> {
        let vocab = self.config.vocab_size;
        match albert_core::tokenizer::id_outside_vocab(encoding.get_ids().iter().copied(), vocab) {
            Some(id) => Err(RuntimeError::InvalidInput(format!(
                "text {index}: token id {id} is outside the model's vocabulary of {vocab}; is tokenizer.json the model's?"
            ))),
            None => Ok(()),
        }
    }

    /// Tokenizes and checks a list of inputs under the pipeline's truncation policy.
    pub(crate) fn encode_all(&self, inputs: &[TextInput<'_>]) -> Result<Vec<Encoding>> {
        if inputs.is_empty() {
            return Err(RuntimeError::Empty("no texts given"));
        }
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| self.encode_with(i, *input, self.truncation, false))
            .collect()
    }
}
