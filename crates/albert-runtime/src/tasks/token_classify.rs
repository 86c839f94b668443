//! Token classification, aggregated to words.

use albert_core::Task;
use ndarray::s;
use serde::Serialize;

use super::{label, softmax, trim_span};
use tokenizers::Encoding;

use crate::backend::ModelOutputs;
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Pipeline, TextInput};

/// A word with the label of its first piece (HF's `first` aggregation) and character offsets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordLabel {
    /// The word as it appears in the text.
    pub word: String,
    /// The label of the word's first piece, from `id2label` or `LABEL_i`.
    pub label: String,
    /// That label's softmax probability.
    pub score: f32,
    /// Character offset of the word's start in the text.
    pub start: usize,
    /// Character offset just past the word's end (exclusive).
    pub end: usize,
}

impl Pipeline {
    /// Labels every word of each text. Needs a `token-classification` export.
    pub fn token_classify(&self, texts: &[&str]) -> Result<Vec<Vec<WordLabel>>> {
        self.require_output("logits", "token-classify", Task::TokenClassification)?;
        let inputs: Vec<TextInput> = texts.iter().map(|t| TextInput::Single(t)).collect();
        let encodings = self.encode_all(&inputs)?;
        let runs = self.run_batched(&encodings)?;
        texts
            .iter()
            .zip(&encodings)
            .zip(runs)
            .map(|((text, encoding), (outputs, row))| {
                self.token_classify_row(&outputs, row, text, encoding)
            })
            .collect()
    }

    /// The labelled words of row `row` of a batch run with [`Pipeline::run_encodings`]; `text`
    /// and `encoding` are that row's.
    pub fn token_classify_row(
        &self,
        outputs: &ModelOutputs,
        row: usize,
        text: &str,
        encoding: &Encoding,
    ) -> Result<Vec<WordLabel>> {
        let logits = crate::backend::output(outputs, "logits")?;
        if logits.ndim() != 3 {
            return Err(RuntimeError::InvalidInput(
                "the model's logits are per text: this is a sequence-classification model (use classify)".into(),
            ));
        }
        let chars: Vec<char> = text.chars().collect();
        let mut words: Vec<WordLabel> = Vec::new();
        let mut current: Option<u32> = None;
        for (t, (word_id, &(start, end))) in encoding
            .get_word_ids()
            .iter()
            .zip(encoding.get_offsets())
            .enumerate()
        {
            let Some(word_id) = *word_id else { continue };
            let (start, end) = trim_span(&chars, start, end);
            if encoding.get_special_tokens_mask()[t] == 1 {
                continue;
            }
            if current == Some(word_id) {
                if let Some(last) = words.last_mut() {
                    last.end = last.end.max(end);
                    last.word = chars[last.start.min(chars.len())..last.end.min(chars.len())]
                        .iter()
                        .collect();
                }
                continue;
            }
            current = Some(word_id);
            let probs = softmax(&logits.slice(s![row, t, ..]).to_vec());
            let (best, score) = probs
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, s)| (i, *s))
                .unwrap_or((0, 0.0));
            words.push(WordLabel {
                word: chars[start.min(chars.len())..end.min(chars.len())]
                    .iter()
                    .collect(),
                label: label(self.config(), best),
                score,
                start,
                end,
            });
        }
        Ok(words)
    }
}
