//! Extractive question answering: the best span of the context.

use albert_core::Task;
use ndarray::s;
use serde::Serialize;

use super::{softmax, trim_span};
use tokenizers::Encoding;

use crate::backend::ModelOutputs;
use crate::error::{Result, RuntimeError};
use crate::pipeline::Pipeline;

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
    /// Finds the answer to `question` in `context`. Needs a `question-answering` export. A
    /// context longer than the model takes is read in overlapping windows and the best span of
    /// all of them wins, exactly as fine-tuning's validation reads it (`albert_core::qa`).
    pub fn answer(&self, question: &str, context: &str) -> Result<Answer> {
        self.require_answer_outputs()?;
        let windows = self.answer_windows(question, context)?;
        let rows = self.run_batched(&windows)?;
        let rows: Vec<(&ModelOutputs, usize)> = rows.iter().map(|(o, r)| (&**o, *r)).collect();
        let windows: Vec<&Encoding> = windows.iter().collect();
        self.best_answer(&rows, &windows, context)
    }

    /// Fails unless the model has `start_logits` and `end_logits`.
    pub fn require_answer_outputs(&self) -> Result<()> {
        self.require_output("start_logits", "answer", Task::QuestionAnswering)?;
        self.require_output("end_logits", "answer", Task::QuestionAnswering)
    }

    /// The windows `question` and `context` are read in: one when they fit the model, else
    /// overlapping pieces of the context, each with the whole question
    /// ([`albert_core::qa::windows`], [`albert_core::qa::DOC_STRIDE`] tokens shared). Run them
    /// (in any batches) and pass each one's outputs to [`Pipeline::best_answer`].
    pub fn answer_windows(&self, question: &str, context: &str) -> Result<Vec<Encoding>> {
        if context.trim().is_empty() {
            return Err(RuntimeError::Empty("the context is empty"));
        }
        let windows = albert_core::qa::windows(
            self.tokenizer(),
            question,
            context,
            self.max_length(),
            albert_core::qa::DOC_STRIDE,
        )
        .map_err(|e| RuntimeError::InvalidInput(format!("question and context: {e}")))?;
        for window in &windows {
            self.check_ids(0, window)?;
        }
        Ok(windows)
    }

    /// The best span over the windows of one question (from [`Pipeline::answer_windows`]);
    /// `rows[i]` is the batch output and row that window `i` ran in. The score is p(start)·p(end)
    /// over the context tokens of the winning window.
    pub fn best_answer(
        &self,
        rows: &[(&ModelOutputs, usize)],
        windows: &[&Encoding],
        context: &str,
    ) -> Result<Answer> {
        if rows.len() != windows.len() {
            return Err(RuntimeError::InvalidInput(format!(
                "{} windows but {} output rows",
                windows.len(),
                rows.len()
            )));
        }
        let logits = |outputs: &ModelOutputs, row: usize, name: &str| -> Result<Vec<f32>> {
            let all = crate::backend::output(outputs, name)?;
            if row >= all.shape()[0] {
                return Err(RuntimeError::InvalidInput(format!(
                    "output `{name}` has no row {row}"
                )));
            }
            Ok(all.slice(s![row, ..]).to_vec())
        };
        let mut best: Option<(albert_core::qa::Span, Vec<f32>, Vec<f32>)> = None;
        for (index, ((outputs, row), window)) in rows.iter().zip(windows).enumerate() {
            let start = logits(outputs, *row, "start_logits")?;
            let end = logits(outputs, *row, "end_logits")?;
            let spans = albert_core::qa::context_spans(window);
            let candidate = albert_core::qa::best_span_in_window(
                index,
                &start,
                &end,
                &spans,
                MAX_ANSWER_TOKENS,
            );
            if let Some(candidate) = candidate
                && best
                    .as_ref()
                    .is_none_or(|(b, _, _)| candidate.score > b.score)
            {
                best = Some((candidate, start, end));
            }
        }
        let Some((span, start, end)) = best else {
            return Err(RuntimeError::InvalidInput(
                "no context token is left to answer from".into(),
            ));
        };
        // p(start)·p(end), each a softmax over the winning window's context tokens (HF's
        // question-answering pipeline scores the same way).
        let window = windows[span.window];
        let context_tokens: Vec<usize> = albert_core::qa::context_spans(window)
            .iter()
            .enumerate()
            .filter_map(|(t, s)| s.map(|_| t))
            .collect();
        let probability = |logits: &[f32], token: usize| -> f32 {
            let values: Vec<f32> = context_tokens
                .iter()
                .map(|&t| logits.get(t).copied().unwrap_or(f32::MIN))
                .collect();
            let at = context_tokens.iter().position(|&t| t == token).unwrap_or(0);
            softmax(&values).get(at).copied().unwrap_or(0.0)
        };
        let score = probability(&start, span.first_token) * probability(&end, span.last_token);
        let chars: Vec<char> = context.chars().collect();
        let (first, last) = trim_span(&chars, span.start, span.end);
        Ok(Answer {
            text: chars[first..last].iter().collect(),
            start: first,
            end: last,
            score,
        })
    }
}
