//! Factorized embeddings (paper §3.1): word, position and token-type tables of width E, summed,
//! LayerNorm, dropout (HF `AlbertEmbeddings`). The E→H projection lives in the encoder, as in HF.

use albert_core::AlbertConfig;
use albert_core::params::names;
use tch::{Kind, Tensor};

use super::params::{LayerNorm, ParamTable};

pub struct Embeddings {
    pub word: Tensor,
    position: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
    dropout: f64,
    pad_token_id: i64,
}

impl Embeddings {
    pub fn new(table: &ParamTable, config: &AlbertConfig) -> Self {
        Embeddings {
            word: table.get(names::WORD_EMBEDDINGS),
            position: table.get(names::POSITION_EMBEDDINGS),
            token_type: table.get(names::TOKEN_TYPE_EMBEDDINGS),
            norm: LayerNorm::new(
                table,
                &albert_core::params::norm(names::EMBEDDINGS_NORM),
                config,
            ),
            dropout: config.hidden_dropout_prob,
            pad_token_id: config.pad_token_id.unwrap_or(-1),
        }
    }

    /// `input_ids`, `token_type_ids`: [batch, seq] int64, already range-checked.
    pub fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor, train: bool) -> Tensor {
        let seq = input_ids.size()[1];
        let positions = Tensor::arange(seq, (Kind::Int64, input_ids.device()));
        let words = Tensor::embedding(&self.word, input_ids, self.pad_token_id, false, false);
        let types = Tensor::embedding(&self.token_type, token_type_ids, -1, false, false);
        let pos = Tensor::embedding(&self.position, &positions, -1, false, false);
        let x = words + types + pos.unsqueeze(0);
        self.norm.forward(&x).dropout(self.dropout, train)
    }
}
