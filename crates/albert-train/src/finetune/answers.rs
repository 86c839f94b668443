//! Extractive question answering (HF `AlbertForQuestionAnswering`: a start and an end logit per
//! token; the loss is the mean of the two cross-entropies). SQuAD-style data: a question, a
//! context and answers given by text and character offset. A context longer than the model takes
//! is cut into overlapping windows (`doc_stride` tokens shared, as HF's `run_qa`); a window that
//! does not hold the whole answer is trained to point at `[CLS]`. Validation: the best span over
//! all of an example's windows (start ≤ end, at most `max_answer_length` tokens, largest
//! start + end logit), scored with SQuAD's exact match and F1. Examples without an answer
//! (SQuAD 2.0) train `[CLS]` too and are predicted unanswerable when `[CLS]` outscores every span.

use std::path::Path;

use albert_core::qa;
use serde_json::Value;
use tch::{Device, Tensor};

use super::data::{Row, bad, read_rows};
use super::metrics::{answer_f1, exact_match};
use super::{Evaluation, Inputs, Prepared, Split, Task, encode_splits, pad, pad_id};
use crate::error::{Result, TrainError};
use crate::model::AlbertModel;

/// A question about a context, with its gold answers (empty: unanswerable).
#[derive(Debug, Clone, PartialEq)]
pub struct QaExample {
    pub question: String,
    pub context: String,
    /// (text, character offset of its start in the context).
    pub answers: Vec<(String, usize)>,
}

/// Which columns hold the question, the context and the answers. The answers are SQuAD's
/// object, `{"text": [...], "answer_start": [...]}` (or one text and one offset); in a CSV cell,
/// that object as JSON text.
#[derive(Debug, Clone)]
pub struct QaColumns {
    pub question: String,
    pub context: String,
    pub answers: String,
}

fn answers_of(row: &Row, key: &str, context: &str) -> Result<Vec<(String, usize)>> {
    let value = row.json(key)?;
    let shape_error = || {
        bad(
            "data",
            format!(
                "{}: field `{key}` must be {{\"text\": [...], \"answer_start\": [...]}}, found {value}",
                row.origin
            ),
        )
    };
    let list = |v: Option<&Value>| -> Option<Vec<Value>> {
        match v? {
            Value::Array(items) => Some(items.clone()),
            other => Some(vec![other.clone()]),
        }
    };
    let texts = list(value.get("text")).ok_or_else(shape_error)?;
    let starts = list(value.get("answer_start")).ok_or_else(shape_error)?;
    if texts.len() != starts.len() {
        return Err(shape_error());
    }
    let chars: Vec<char> = context.chars().collect();
    texts
        .iter()
        .zip(&starts)
        .map(|(text, start)| {
            let (Some(text), Some(start)) = (text.as_str(), start.as_u64()) else {
                return Err(shape_error());
            };
            let start = start as usize;
            // An offset from the file may be anything up to u64::MAX (tests/fixtures/fuzz/train_csv).
            let end = start.saturating_add(text.chars().count());
            let found: String = chars.get(start..end).unwrap_or_default().iter().collect();
            if found != text {
                return Err(bad(
                    "data",
                    format!(
                        "{}: answer `{text}` is not at character {start} of the context (found `{found}` there)",
                        row.origin
                    ),
                ));
            }
            Ok((text.to_string(), start))
        })
        .collect()
}

/// Reads question-answering examples from a `.csv` or `.jsonl` file; each answer must stand in
/// the context at its offset (characters, as SQuAD counts them).
pub fn read_qa_examples(path: &Path, columns: &QaColumns) -> Result<Vec<QaExample>> {
    let table = read_rows(path)?;
    table.require(&[&columns.question, &columns.context, &columns.answers])?;
    table
        .rows
        .iter()
        .map(|row| {
            let context = row.string(&columns.context)?;
            Ok(QaExample {
                question: row.string(&columns.question)?,
                answers: answers_of(row, &columns.answers, &context)?,
                context,
            })
        })
        .collect()
}

/// One window of one example.
struct Feature {
    inputs: Inputs,
    /// Token positions of the answer, or 0 (`[CLS]`) when the window does not hold it.
    start: i64,
    end: i64,
    example: usize,
    /// Per token: its character span in the context, for context tokens.
    context_span: Vec<Option<(usize, usize)>>,
}

struct AnswerTask {
    train: Vec<Feature>,
    /// Validation, test: the windows and the examples they came from.
    held_out: [(Vec<Feature>, Vec<QaExample>); 2],
    max_answer_length: usize,
    pad: i64,
}

fn windows(
    tokenizer: &tokenizers::Tokenizer,
    examples: &[QaExample],
    file: &str,
    max_length: usize,
    doc_stride: usize,
) -> Result<Vec<Feature>> {
    let mut out = Vec::new();
    for (n, e) in examples.iter().enumerate() {
        let all = qa::windows(tokenizer, &e.question, &e.context, max_length, doc_stride)
            .map_err(|err| bad("data", format!("{file}: example {}: {err}", n + 1)))?;
        for window in all {
            let context_span = qa::context_spans(&window);
            let (mut start, mut end) = (0i64, 0i64);
            if let Some((text, a)) = e.answers.first() {
                let b = a + text.chars().count();
                let spans: Vec<(usize, (usize, usize))> = context_span
                    .iter()
                    .enumerate()
                    .filter_map(|(t, s)| s.map(|s| (t, s)))
                    .collect();
                let covers = spans.first().is_some_and(|(_, s)| s.0 <= *a)
                    && spans.last().is_some_and(|(_, s)| s.1 >= b);
                if covers {
                    start = spans
                        .iter()
                        .rev()
                        .find(|(_, s)| s.0 <= *a)
                        .map_or(0, |(t, _)| *t as i64);
                    end = spans
                        .iter()
                        .find(|(_, s)| s.1 >= b)
                        .map_or(0, |(t, _)| *t as i64);
                }
            }
            out.push(Feature {
                inputs: Inputs::from_encoding(&window),
                start,
                end,
                example: n,
                context_span,
            });
        }
    }
    Ok(out)
}

pub(crate) fn prepare(
    tokenizer: tokenizers::Tokenizer,
    max_length: usize,
    doc_stride: usize,
    max_answer_length: usize,
    train: &[QaExample],
    [validation, test]: [&[QaExample]; 2],
) -> Result<Prepared> {
    if doc_stride >= max_length / 2 {
        return Err(bad(
            "--doc-stride",
            format!(
                "{doc_stride} must be under half of --max-seq-length ({max_length}) so windows advance"
            ),
        ));
    }
    let (train_windows, [validation_windows, test_windows]) =
        encode_splits(train, [validation, test], |examples, split| {
            windows(&tokenizer, examples, split, max_length, doc_stride)
        })?;
    Ok(Prepared {
        task: Box::new(AnswerTask {
            train: train_windows,
            held_out: [
                (validation_windows, validation.to_vec()),
                (test_windows, test.to_vec()),
            ],
            max_answer_length: max_answer_length.max(1),
            pad: pad_id(&tokenizer),
        }),
        labels: Vec::new(),
        baseline: None,
    })
}

impl AnswerTask {
    /// (start logits, end logits) [batch, seq] and the targets [batch] of some windows.
    fn logits(
        &self,
        model: &AlbertModel,
        items: &[&Feature],
        device: Device,
        train: bool,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        let inputs: Vec<&Inputs> = items.iter().map(|f| &f.inputs).collect();
        let (ids, mask, types) = pad(&inputs, self.pad, device);
        let out = model.forward(&ids, Some(&mask), Some(&types), train)?;
        let missing = || TrainError::MissingHead("question-answering");
        let starts: Vec<i64> = items.iter().map(|f| f.start).collect();
        let ends: Vec<i64> = items.iter().map(|f| f.end).collect();
        Ok((
            out.start_logits.ok_or_else(missing)?,
            out.end_logits.ok_or_else(missing)?,
            Tensor::from_slice(&starts).to_device(device),
            Tensor::from_slice(&ends).to_device(device),
        ))
    }
}

impl Task for AnswerTask {
    fn len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, model: &AlbertModel, batch: &[usize], device: Device) -> Result<Tensor> {
        let items: Vec<&Feature> = batch.iter().map(|&i| &self.train[i]).collect();
        let (s, e, ts, te) = self.logits(model, &items, device, true)?;
        Ok((s.cross_entropy_for_logits(&ts) + e.cross_entropy_for_logits(&te)) / 2.0)
    }

    fn evaluate(
        &self,
        model: &AlbertModel,
        split: Split,
        batch_size: usize,
        device: Device,
    ) -> Result<Evaluation> {
        let _guard = tch::no_grad_guard();
        let (windows, examples) = &self.held_out[split as usize];
        let mut loss = 0.0;
        // Per example: the best span over its windows, and the lowest [CLS] score.
        let mut best: Vec<Option<qa::Span>> = vec![None; examples.len()];
        let mut null: Vec<f32> = vec![f32::INFINITY; examples.len()];
        for chunk in windows.chunks(batch_size) {
            let items: Vec<&Feature> = chunk.iter().collect();
            let (s, e, ts, te) = self.logits(model, &items, device, false)?;
            loss += ((s.cross_entropy_for_logits(&ts) + e.cross_entropy_for_logits(&te)) / 2.0)
                .double_value(&[])
                * chunk.len() as f64;
            let s = Vec::<Vec<f32>>::try_from(s.to_device(Device::Cpu))?;
            let e = Vec::<Vec<f32>>::try_from(e.to_device(Device::Cpu))?;
            for ((f, s), e) in chunk.iter().zip(s).zip(e) {
                null[f.example] = null[f.example].min(s[0] + e[0]);
                let candidate =
                    qa::best_span_in_window(0, &s, &e, &f.context_span, self.max_answer_length);
                best[f.example] = qa::better(best[f.example], candidate);
            }
        }
        let with_unanswerable = examples.iter().any(|e| e.answers.is_empty());
        let (mut em, mut f1) = (0.0, 0.0);
        for ((example, span), null) in examples.iter().zip(&best).zip(&null) {
            let predicted: String = match span {
                Some(span) if !(with_unanswerable && *null > span.score) => example
                    .context
                    .chars()
                    .skip(span.start)
                    .take(span.end - span.start)
                    .collect(),
                _ => String::new(),
            };
            let gold: Vec<String> = if example.answers.is_empty() {
                vec![String::new()]
            } else {
                example.answers.iter().map(|(t, _)| t.clone()).collect()
            };
            em += exact_match(&predicted, &gold);
            f1 += answer_f1(&predicted, &gold);
        }
        let n = examples.len().max(1) as f64;
        Ok(Evaluation {
            loss: loss / windows.len().max(1) as f64,
            metrics: vec![("f1", f1 / n), ("exact_match", em / n)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_overlap_and_label_the_answer_where_it_is_whole() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/runtime/tiny-base/tokenizer.json"
        );
        let tokenizer = albert_core::tokenizer::load(Path::new(path)).expect("fixture");
        let words: Vec<String> = (0..40).map(|i| format!("word{i}")).collect();
        let context = format!(
            "{} the onnx model {}",
            words[..20].join(" "),
            words[20..].join(" ")
        );
        let start = context.find("the onnx model").expect("planted");
        let example = QaExample {
            question: "which model?".into(),
            context: context.clone(),
            answers: vec![("the onnx model".into(), start)],
        };
        let features = windows(&tokenizer, &[example], "test", 24, 4).expect("windows");
        assert!(features.len() > 3, "{} windows", features.len());
        let question_len = tokenizer
            .encode("which model?", false)
            .expect("encode")
            .len();
        let mut labelled = 0;
        for f in &features {
            assert!(f.inputs.ids.len() <= 24);
            assert_eq!(f.inputs.ids[0], 2, "[CLS] first");
            assert_eq!(
                f.inputs.ids[question_len + 1],
                3,
                "[SEP] after the question"
            );
            if f.start == 0 {
                assert_eq!(f.end, 0);
                continue;
            }
            labelled += 1;
            let (a, _) = f.context_span[f.start as usize].expect("context token");
            let (_, b) = f.context_span[f.end as usize].expect("context token");
            let text: String = context.chars().skip(a).take(b - a).collect();
            assert_eq!(text.trim(), "the onnx model");
        }
        // Consecutive windows share 4 tokens, so the 3-word answer is whole in one or two.
        assert!((1..=2).contains(&labelled), "{labelled}");
    }
}
