//! Sentence embeddings.

use albert_core::Task;
use ndarray::{Axis, s};

use tokenizers::Encoding;

use crate::backend::ModelOutputs;
use crate::error::Result;
use crate::pipeline::{Pipeline, TextInput};

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The `[CLS]` token's last hidden state.
    Cls,
    /// ALBERT's pooler (tanh of a dense layer on `[CLS]`), the `pooler_output` of `base` exports.
    Pooler,
    /// The mean of the last hidden states over the attention mask (padding excluded).
    #[default]
    Mean,
}

/// Options of [`Pipeline::embed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmbedOptions {
    /// How token vectors are pooled [default: `Mean`].
    pub pooling: Pooling,
    /// Scale each vector to unit L2 norm (cosine similarity becomes a dot product).
    pub normalize: bool,
}

impl Pipeline {
    /// One vector per text. Needs a `base` export (`last_hidden_state`, and `pooler_output` for
    /// [`Pooling::Pooler`]).
    pub fn embed(&self, texts: &[&str], options: EmbedOptions) -> Result<Vec<Vec<f32>>> {
        self.require_output(embed_output(options.pooling), "embed", Task::Base)?;
        let inputs: Vec<TextInput> = texts.iter().map(|t| TextInput::Single(t)).collect();
        let encodings = self.encode_all(&inputs)?;
        let runs = self.run_batched(&encodings)?;
        encodings
            .iter()
            .zip(runs)
            .map(|(encoding, (outputs, row))| self.embed_row(&outputs, row, encoding, options))
            .collect()
    }

    /// The vector of row `row` of a batch run with [`Pipeline::run_encodings`]; `encoding` is
    /// that row's (mean pooling averages over its tokens, so padding never counts).
    pub fn embed_row(
        &self,
        outputs: &ModelOutputs,
        row: usize,
        encoding: &Encoding,
        options: EmbedOptions,
    ) -> Result<Vec<f32>> {
        let values = crate::backend::output(outputs, embed_output(options.pooling))?;
        let mut vector: Vec<f32> = match options.pooling {
            Pooling::Pooler => values.index_axis(Axis(0), row).iter().cloned().collect(),
            Pooling::Cls => values.slice(s![row, 0, ..]).iter().cloned().collect(),
            Pooling::Mean => {
                let hidden = values.index_axis(Axis(0), row);
                let tokens = encoding.len();
                let width = hidden.shape()[1];
                let mut sum = vec![0f32; width];
                for t in 0..tokens {
                    for (acc, v) in sum.iter_mut().zip(hidden.slice(s![t, ..]).iter()) {
                        *acc += v;
                    }
                }
                sum.iter().map(|v| v / tokens.max(1) as f32).collect()
            }
        };
        if options.normalize {
            let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                vector.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Ok(vector)
    }
}

/// The output a pooling reads.
pub fn embed_output(pooling: Pooling) -> &'static str {
    match pooling {
        Pooling::Pooler => "pooler_output",
        Pooling::Cls | Pooling::Mean => "last_hidden_state",
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|v| v * v).sum::<f32>().sqrt();
    let nb = b.iter().map(|v| v * v).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
