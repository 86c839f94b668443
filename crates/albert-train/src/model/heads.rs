//! Heads on the encoder (HF `AlbertModel` pooler, `AlbertMLMHead`, `AlbertSOPHead`, and the
//! classifier / QA heads of the `AlbertFor*` classes).

use albert_core::params::{self, names};
use albert_core::{Activation, AlbertConfig};
use tch::Tensor;

use super::activation;
use super::params::{LayerNorm, Linear, ParamTable};

/// tanh(W·h[CLS] + b).
pub struct Pooler(Linear);

impl Pooler {
    pub fn new(table: &ParamTable) -> Self {
        Pooler(Linear::new(table, &params::linear(names::POOLER)))
    }

    pub fn forward(&self, hidden: &Tensor) -> Tensor {
        self.0.forward(&hidden.select(1, 0)).tanh()
    }
}

/// H→E dense, activation, LayerNorm, then the decoder tied to the word embeddings (E→V) with
/// `predictions.bias`.
pub struct MlmHead {
    dense: Linear,
    norm: LayerNorm,
    bias: Tensor,
    activation: Activation,
}

impl MlmHead {
    pub fn new(table: &ParamTable, config: &AlbertConfig) -> Self {
        MlmHead {
            dense: Linear::new(table, &params::linear(names::MLM_DENSE)),
            norm: LayerNorm::new(table, &params::norm(names::MLM_NORM), config),
            bias: table.get(names::MLM_BIAS),
            activation: config.activation(),
        }
    }

    /// `hidden`: [..., H] → logits [..., V].
    pub fn forward(&self, hidden: &Tensor, word_embeddings: &Tensor) -> Tensor {
        let x = activation::apply(self.activation, &self.dense.forward(hidden));
        super::precision::linear(&self.norm.forward(&x), word_embeddings, &self.bias)
    }
}

/// Dropout then a linear layer (SOP, NSP, sequence and token classification).
pub struct Classifier {
    linear: Linear,
    dropout: f64,
}

impl Classifier {
    pub fn new(table: &ParamTable, prefix: &str, dropout: f64) -> Self {
        Classifier {
            linear: Linear::new(table, &params::linear(prefix)),
            dropout,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.linear.forward(&x.dropout(self.dropout, train))
    }
}
