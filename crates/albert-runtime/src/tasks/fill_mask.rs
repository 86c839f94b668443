//! Fill-mask: the most likely tokens for each `[MASK]`.

use albert_core::Task;
use ndarray::s;
use serde::Serialize;

use super::softmax;
use tokenizers::Encoding;

use crate::backend::ModelOutputs;
use crate::error::{Result, RuntimeError};
use crate::pipeline::{Pipeline, TextInput};

/// One candidate for a mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskCandidate {
    /// The vocabulary piece (e.g. `▁paris`).
    pub token: String,
    /// The piece as text (e.g. `paris`).
    pub text: String,
    /// The token id in the vocabulary.
    pub id: u32,
    /// Its softmax probability at the mask.
    pub score: f32,
}

/// The candidates for one `[MASK]`, best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskPrediction {
    /// Which token of the text the mask is (counting special tokens).
    pub position: usize,
    /// The `top_k` candidates, most probable first.
    pub candidates: Vec<MaskCandidate>,
}

impl Pipeline {
    /// The `top_k` most likely tokens for every `[MASK]` in `text`. Needs a `masked-lm` export
    /// (`logits`) or a `pretraining` one (`prediction_logits`).
    pub fn fill_mask(&self, text: &str, top_k: usize) -> Result<Vec<MaskPrediction>> {
        self.fill_mask_output()?;
        let encodings = self.encode_all(&[TextInput::Single(text)])?;
        self.mask_positions(&encodings[0])?;
        let (outputs, row) = self.run_batched(&encodings)?.remove(0);
        self.fill_mask_row(&outputs, row, &encodings[0], top_k)
    }

    /// The output holding MLM logits (`logits` or `prediction_logits`), or an error naming the
    /// export task that has one.
    pub fn fill_mask_output(&self) -> Result<&'static str> {
        if self.output_names().iter().any(|n| n == "logits") {
            Ok("logits")
        } else {
            self.require_output("prediction_logits", "fill-mask", Task::MaskedLm)?;
            Ok("prediction_logits")
        }
    }

    /// The positions of `[MASK]` in an encoding; an error when there is none.
    pub fn mask_positions(&self, encoding: &Encoding) -> Result<Vec<usize>> {
        let mask_token = albert_core::tokenizer::MASK;
        let mask_id = self
            .tokenizer()
            .token_to_id(mask_token)
            .ok_or_else(|| RuntimeError::NoMaskToken(mask_token.to_string()))?;
        let positions: Vec<usize> = encoding
            .get_ids()
            .iter()
            .enumerate()
            .filter(|(_, id)| **id == mask_id)
            .map(|(i, _)| i)
            .collect();
        if positions.is_empty() {
            return Err(RuntimeError::InvalidInput(format!(
                "the text has no {mask_token} token"
            )));
        }
        Ok(positions)
    }

    /// The predictions for row `row` of a batch run with [`Pipeline::run_encodings`];
    /// `encoding` is that row's.
    pub fn fill_mask_row(
        &self,
        outputs: &ModelOutputs,
        row: usize,
        encoding: &Encoding,
        top_k: usize,
    ) -> Result<Vec<MaskPrediction>> {
        let logits = crate::backend::output(outputs, self.fill_mask_output()?)?;
        let mut predictions = Vec::new();
        for position in self.mask_positions(encoding)? {
            let scores = softmax(&logits.slice(s![row, position, ..]).to_vec());
            let mut ranked: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
            let candidates = ranked
                .into_iter()
                .take(top_k.max(1))
                .map(|(id, score)| {
                    let id = id as u32;
                    MaskCandidate {
                        token: self.tokenizer().id_to_token(id).unwrap_or_default(),
                        text: self.tokenizer().decode(&[id], false).unwrap_or_default(),
                        id,
                        score,
                    }
                })
                .collect();
            predictions.push(MaskPrediction {
                position,
                candidates,
            });
        }
        Ok(predictions)
    }
}
