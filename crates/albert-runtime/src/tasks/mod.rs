//! The tasks, each a method on [`crate::Pipeline`]: [`embed`](crate::Pipeline::embed),
//! [`fill_mask`](crate::Pipeline::fill_mask), [`classify`](crate::Pipeline::classify) and
//! [`classify_pairs`](crate::Pipeline::classify_pairs),
//! [`token_classify`](crate::Pipeline::token_classify), [`answer`](crate::Pipeline::answer).

pub mod answer;
pub mod classify;
pub mod embed;
pub mod fill_mask;
pub mod token_classify;

use serde::Serialize;

/// A label with its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScore {
    /// The label, from `id2label` or `LABEL_i`.
    pub label: String,
    /// Its softmax probability.
    pub score: f32,
}

/// Softmax of a slice, computed stably.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|v| v / sum).collect()
}

/// The label of class `i` from `id2label`, else `LABEL_i` (HF's default names).
pub(crate) fn label(config: &albert_core::AlbertConfig, i: usize) -> String {
    config
        .id2label
        .as_ref()
        .and_then(|m| m.get(&i.to_string()).cloned())
        .unwrap_or_else(|| format!("LABEL_{i}"))
}

/// Narrows a character span to exclude surrounding whitespace (SentencePiece-style pieces carry
/// the space before a word in their offsets).
pub(crate) fn trim_span(chars: &[char], start: usize, end: usize) -> (usize, usize) {
    let (mut start, mut end) = (start.min(chars.len()), end.min(chars.len()));
    while start < end && chars[start].is_whitespace() {
        start += 1;
    }
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    (start, end)
}
