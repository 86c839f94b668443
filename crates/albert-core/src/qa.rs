//! Extractive question answering over long contexts, defined once for fine-tuning's validation
//! (crates/albert-train/src/finetune/answers.rs) and for serving (the runtime's `answer`, the
//! server's `/question-answering`), so both read a context the same way and pick the same span.
//!
//! A context longer than one sequence is read in overlapping windows, as HF's `run_qa.py` and
//! question-answering pipeline do: the question is kept whole in every window, the context is cut
//! into pieces that share `doc_stride` tokens with their neighbour. Each window proposes its
//! best span (context tokens only, start ≤ end, at most `max_answer_length` tokens, largest
//! start logit + end logit); the answer is the best proposal over all windows, the earlier one
//! on ties.

use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use crate::error::{AlbertError, Result};

/// Tokens shared by consecutive windows when nothing else is said (`albert-train finetune
/// --doc-stride`'s default; the runtime and the server use it too).
pub const DOC_STRIDE: usize = 32;

/// The windows of `(question, context)` for sequences of `max_length` tokens overlapping by
/// `doc_stride` (lowered when the question leaves too little room for it), with character
/// offsets. A pair that fits is one window. Fails when the question leaves no room for the
/// context.
pub fn windows(
    tokenizer: &Tokenizer,
    question: &str,
    context: &str,
    max_length: usize,
    doc_stride: usize,
) -> Result<Vec<Encoding>> {
    let error = |message: String| AlbertError::Tokenization(message);
    let whole = tokenizer
        .encode_char_offsets((question, context), true)
        .map_err(|e| error(e.to_string()))?;
    if whole.len() <= max_length {
        return Ok(vec![whole]);
    }
    let question_tokens = tokenizer
        .encode_char_offsets(question, false)
        .map_err(|e| error(e.to_string()))?
        .len();
    // [CLS] question [SEP] context [SEP]: what is left for the context in each window.
    let room = max_length.saturating_sub(question_tokens + 3);
    if room < 2 {
        return Err(error(format!(
            "the question takes {question_tokens} tokens, which leaves no room for the context \
             in a sequence of {max_length}"
        )));
    }
    // Windows must advance: the shared part stays under half of each window's context.
    let stride = doc_stride.min((room - 1) / 2);
    let mut windowed = tokenizer.clone();
    windowed
        .with_truncation(Some(TruncationParams {
            max_length,
            stride,
            strategy: TruncationStrategy::OnlySecond,
            ..TruncationParams::default()
        }))
        .map_err(|e| error(e.to_string()))?;
    let mut first = windowed
        .encode_char_offsets((question, context), true)
        .map_err(|e| error(e.to_string()))?;
    let mut all = first.take_overflowing();
    all.insert(0, first);
    Ok(all)
}

/// Per token of a window: its character span in the context for context tokens, else `None`
/// (the question, special tokens, padding).
pub fn context_spans(window: &Encoding) -> Vec<Option<(usize, usize)>> {
    let sequence = window.get_sequence_ids();
    let special = window.get_special_tokens_mask();
    let offsets = window.get_offsets();
    (0..window.len())
        .map(|t| {
            (sequence.get(t) == Some(&Some(1)) && special.get(t) == Some(&0))
                .then(|| offsets.get(t).copied())
                .flatten()
        })
        .collect()
}

/// A proposed answer: token positions in its window and character offsets in the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Start logit + end logit.
    pub score: f32,
    /// The window it was found in.
    pub window: usize,
    /// First and last token, in the window.
    pub first_token: usize,
    pub last_token: usize,
    /// First character and one past the last, in the context.
    pub start: usize,
    pub end: usize,
}

/// The best span of one window from its start and end logits (one per token) and
/// [`context_spans`]; `None` when the window holds no context token. A NaN logit never wins.
pub fn best_span_in_window(
    window: usize,
    start_logits: &[f32],
    end_logits: &[f32],
    spans: &[Option<(usize, usize)>],
    max_answer_length: usize,
) -> Option<Span> {
    let mut best: Option<Span> = None;
    for (i, first) in spans.iter().enumerate() {
        let (Some((start, _)), Some(&s)) = (first, start_logits.get(i)) else {
            continue;
        };
        for (j, last) in spans
            .iter()
            .enumerate()
            .skip(i)
            .take(max_answer_length.max(1))
        {
            let (Some((_, end)), Some(&e)) = (last, end_logits.get(j)) else {
                continue;
            };
            let score = s + e;
            if score.is_nan() {
                continue;
            }
            if best.is_none_or(|b| score > b.score) {
                best = Some(Span {
                    score,
                    window,
                    first_token: i,
                    last_token: j,
                    start: *start,
                    end: *end,
                });
            }
        }
    }
    best
}

/// The better of two proposals: the higher score, the earlier on ties.
pub fn better(a: Option<Span>, b: Option<Span>) -> Option<Span> {
    match (a, b) {
        (Some(a), Some(b)) if b.score > a.score => Some(b),
        (Some(a), _) => Some(a),
        (None, b) => b,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn the_best_span_respects_order_length_and_context() {
        // Tokens: [CLS] q [SEP] c1 c2 c3 [SEP]; context tokens cover characters 0..4, 4..7, 8..11.
        let span = [
            None,
            None,
            None,
            Some((0, 4)),
            Some((4, 7)),
            Some((8, 11)),
            None,
        ];
        let start = [9.0, 9.0, 0.0, 1.0, 0.0, 5.0, 9.0];
        let end = [9.0, 9.0, 0.0, 4.0, 0.0, 0.0, 9.0];
        // c1..c1 = 5 and c3..c3 = 5: the first found stays; special tokens never count.
        let best = best_span_in_window(0, &start, &end, &span, 30).unwrap();
        assert_eq!((best.score, best.start, best.end), (5.0, 0, 4));
        let end = [9.0, 9.0, 0.0, 0.0, 0.0, 3.0, 9.0];
        // c3..c3 = 8 beats c1..c3 = 4; with length 1 only single tokens count.
        let best = best_span_in_window(0, &start, &end, &span, 1).unwrap();
        assert_eq!((best.score, best.start, best.end), (8.0, 8, 11));
        assert_eq!(best_span_in_window(0, &start, &end, &[None, None], 5), None);
        // A NaN logit never wins.
        let start = [0.0, 0.0, 0.0, f32::NAN, 0.0, 1.0, 0.0];
        let best = best_span_in_window(0, &start, &end, &span, 30).unwrap();
        assert_eq!((best.start, best.end), (8, 11));
    }

    #[test]
    fn the_better_proposal_is_the_higher_then_the_earlier() {
        let at = |score, window| Span {
            score,
            window,
            first_token: 0,
            last_token: 0,
            start: 0,
            end: 0,
        };
        assert_eq!(
            better(Some(at(1.0, 0)), Some(at(2.0, 1))).unwrap().window,
            1
        );
        assert_eq!(
            better(Some(at(2.0, 0)), Some(at(2.0, 1))).unwrap().window,
            0
        );
        assert_eq!(better(None, Some(at(1.0, 1))).unwrap().window, 1);
        assert_eq!(better(Some(at(1.0, 0)), None).unwrap().window, 0);
    }
}
