//! Sequence classification of single texts and of pairs.

use albert_core::Task;
use ndarray::Axis;
use serde::Serialize;

use super::{LabelScore, label, softmax};
use crate::backend::ModelOutputs;
use crate::error::Result;
use crate::pipeline::{Pipeline, TextInput};

/// The best label and every label's probability (in label order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The most probable label.
    pub label: String,
    /// Its probability.
    pub score: f32,
    /// Every label with its probability, in label order.
    pub scores: Vec<LabelScore>,
}

impl Pipeline {
    /// Classifies each text. Needs a `sequence-classification` export; labels come from
    /// `config.json`'s `id2label`.
    pub fn classify(&self, texts: &[&str]) -> Result<Vec<Classification>> {
        let inputs: Vec<TextInput> = texts.iter().map(|t| TextInput::Single(t)).collect();
        self.classify_inputs(&inputs)
    }

    /// Classifies each pair of texts (segment B has token type 1).
    pub fn classify_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Classification>> {
        let inputs: Vec<TextInput> = pairs.iter().map(|(a, b)| TextInput::Pair(a, b)).collect();
        self.classify_inputs(&inputs)
    }

    fn classify_inputs(&self, inputs: &[TextInput<'_>]) -> Result<Vec<Classification>> {
        self.require_output("logits", "classify", Task::SequenceClassification)?;
        let encodings = self.encode_all(inputs)?;
        self.run_batched(&encodings)?
            .into_iter()
            .map(|(outputs, row)| self.classify_row(&outputs, row))
            .collect()
    }

    /// The classification of row `row` of a batch run with [`Pipeline::run_encodings`].
    pub fn classify_row(&self, outputs: &ModelOutputs, row: usize) -> Result<Classification> {
        let logits = crate::backend::output(outputs, "logits")?
            .index_axis(Axis(0), row)
            .to_owned();
        if logits.ndim() != 1 {
            return Err(crate::RuntimeError::InvalidInput(
                "the model's logits are per token: this is a token-classification model (use token_classify)".into(),
            ));
        }
        let probs = softmax(&logits.iter().cloned().collect::<Vec<_>>());
        let scores: Vec<LabelScore> = probs
            .iter()
            .enumerate()
            .map(|(i, &score)| LabelScore {
                label: label(self.config(), i),
                score,
            })
            .collect();
        let best = scores
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .cloned()
            .unwrap_or(LabelScore {
                label: String::new(),
                score: 0.0,
            });
        Ok(Classification {
            label: best.label,
            score: best.score,
            scores,
        })
    }
}
