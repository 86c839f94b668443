//! Extractive question answering: the best span of the context.

use ndarray::s;
use serde::Serialize;

use super::{softmax, trim_span};
use tokenizers::Encoding;

use crate::backend::ModelOutputs;
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Pipeline, TextInput};

/// The best answer span, with character offsets in the context (end exclusive).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The answer as it appears in the context.
    pub text: String,
    /// Offset of its first character in the context.
    pub start: usize,
    /// Offset just past its last character in the context.
    pub end: usize,
    /// p(start)·p(end) over the context's tokens.
    pub score: f32,
}

/// Longest answer considered, in tokens (HF's pipeline default).
pub const MAX_ANSWER_TOKENS: usize = 15;

impl Pipeline {
    /// Finds the answer to `question` in `context`. Needs a `question-answering` export. Under
    /// truncation `truncate`, a context too long is cut (the question is kept whole).
    pub fn answer(&self, question: &str, context: &str) -> Result<Answer> {
        self.require_answer_outputs()?;
        if context.trim().is_empty() {
            return Err(RuntimeError::Empty("the context is empty"));
        }
        let encodings = self.encode_all(&[TextInput::Pair(question, context)], true)?;
        let (outputs, row) = self.run_batched(&encodings)?.remove(0);
        self.answer_row(&outputs, row, context, &encodings[0])
    }

    /// Fails unless the model has `start_logits` and `end_logits`.
    pub fn require_answer_outputs(&self) -> Result<()> {
        self.require_output("start_logits", "answer", "question-answering")?;
        self.require_output("end_logits", "answer", "question-answering")
    }

    /// The best span for row `row` of a batch run with [`Pipeline::run_encodings`]; `context`
    /// and `encoding` (question and context as a pair) are that row's.
    pub fn answer_row(
        &self,
        outputs: &ModelOutputs,
        row: usize,
        context: &str,
        encoding: &Encoding,
    ) -> Result<Answer> {
        let context_tokens: Vec<usize> = (0..encoding.len())
            .filter(|&t| {
                encoding.get_sequence_ids()[t] == Some(1)
                    && encoding.get_special_tokens_mask()[t] == 0
            })
            .collect();
        if context_tokens.is_empty() {
            return Err(RuntimeError::InvalidInput(
                "no context token is left after truncation".into(),
            ));
        }
        let pick = |name: &str| -> Result<Vec<f32>> {
            let all = crate::backend::output(outputs, name)?
                .slice(s![row, ..])
                .to_vec();
            Ok(softmax(
                &context_tokens.iter().map(|&t| all[t]).collect::<Vec<_>>(),
            ))
        };
        let (p_start, p_end) = (pick("start_logits")?, pick("end_logits")?);
        let mut best = (0, 0, f32::MIN);
        for (i, &ps) in p_start.iter().enumerate() {
            for (j, &pe) in p_end.iter().enumerate().skip(i).take(MAX_ANSWER_TOKENS) {
                if ps * pe > best.2 {
                    best = (i, j, ps * pe);
                }
            }
        }
        let chars: Vec<char> = context.chars().collect();
        let (start, end) = trim_span(
            &chars,
            encoding.get_offsets()[context_tokens[best.0]].0,
            encoding.get_offsets()[context_tokens[best.1]].1,
        );
        Ok(Answer {
            text: chars[start..end].iter().collect(),
            start,
            end,
            score: best.2,
        })
    }
}
