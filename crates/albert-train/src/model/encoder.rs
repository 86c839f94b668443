//! The encoder: E→H mapping, then `num_hidden_layers` repetitions of the group's
//! `inner_group_num` post-LN transformer layers (HF `AlbertTransformer`, `AlbertLayer`,
//! `AlbertAttention`). Which tensors a layer application reads is decided by the inventory's
//! [`albert_core::params::layer_names`], so every sharing strategy is the same code.

use albert_core::params::{self, LayerSlot, names};
use albert_core::{Activation, AlbertConfig};
use tch::{Kind, Tensor};

use super::params::{LayerNorm, Linear, ParamTable};
use super::{activation, precision};

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    norm: LayerNorm,
    heads: i64,
    head_size: i64,
    attention_dropout: f64,
    output_dropout: f64,
}

impl Attention {
    /// `mask_bias`: [batch, 1, 1, seq], 0 for tokens and the most negative f32 for padding.
    fn forward(&self, x: &Tensor, mask_bias: &Tensor, train: bool) -> Tensor {
        let size = x.size();
        let (b, s, h) = (size[0], size[1], size[2]);
        let split = |t: Tensor| t.view([b, s, self.heads, self.head_size]).transpose(1, 2);
        let q = split(self.query.forward(x));
        let k = split(self.key.forward(x));
        let v = split(self.value.forward(x));
        // HF eager_attention_forward: (q·kᵀ)·scaling + mask, softmax, dropout, ·v.
        let scaling = (self.head_size as f64).powf(-0.5);
        let scores = precision::matmul(&q, &k.transpose(2, 3)) * scaling + mask_bias;
        let probs = scores
            .softmax(-1, Kind::Float)
            .to_kind(q.kind())
            .dropout(self.attention_dropout, train);
        let context = precision::matmul(&probs, &v)
            .transpose(1, 2)
            .contiguous()
            .view([b, s, h]);
        let out = self
            .dense
            .forward(&context)
            .dropout(self.output_dropout, train);
        self.norm.forward(&(x + out))
    }
}

struct FeedForward {
    ffn: Linear,
    ffn_output: Linear,
    norm: LayerNorm,
    activation: Activation,
}

impl FeedForward {
    fn forward(&self, attention_output: &Tensor) -> Tensor {
        // HF AlbertLayer.ff_chunk; HF applies no dropout here.
        let hidden = activation::apply(self.activation, &self.ffn.forward(attention_output));
        let out = self.ffn_output.forward(&hidden);
        self.norm.forward(&(out + attention_output))
    }
}

struct Layer {
    attention: Attention,
    feed_forward: FeedForward,
}

pub struct Encoder {
    mapping: Linear,
    /// One entry per layer application, in forward order; shared tensors are shallow clones.
    layers: Vec<Layer>,
}

impl Encoder {
    pub fn new(table: &ParamTable, config: &AlbertConfig) -> Self {
        let heads = config.num_attention_heads as i64;
        let layers = params::layer_slots(config)
            .map(|slot: LayerSlot| {
                let n = params::layer_names(config, slot);
                Layer {
                    attention: Attention {
                        query: Linear::new(table, &n.query),
                        key: Linear::new(table, &n.key),
                        value: Linear::new(table, &n.value),
                        dense: Linear::new(table, &n.attention_dense),
                        norm: LayerNorm::new(table, &n.attention_norm, config),
                        heads,
                        head_size: config.head_size() as i64,
                        attention_dropout: config.attention_probs_dropout_prob,
                        output_dropout: config.hidden_dropout_prob,
                    },
                    feed_forward: FeedForward {
                        ffn: Linear::new(table, &n.ffn),
                        ffn_output: Linear::new(table, &n.ffn_output),
                        norm: LayerNorm::new(table, &n.output_norm, config),
                        activation: config.activation(),
                    },
                }
            })
            .collect();
        Encoder {
            mapping: Linear::new(table, &params::linear(names::MAPPING)),
            layers,
        }
    }

    /// `embeddings`: [batch, seq, E]; `attention_mask`: [batch, seq], 1 for tokens, 0 for padding.
    pub fn forward(&self, embeddings: &Tensor, attention_mask: &Tensor, train: bool) -> Tensor {
        let mut hidden = self.mapping.forward(embeddings);
        // (1 − mask)·min, broadcast over heads and query positions, as HF's eager attention mask.
        let mask = attention_mask.to_kind(hidden.kind());
        let mask_bias = (mask * -1.0 + 1.0).unsqueeze(1).unsqueeze(1) * f64::from(f32::MIN);
        for layer in &self.layers {
            let attended = layer.attention.forward(&hidden, &mask_bias, train);
            hidden = layer.feed_forward.forward(&attended);
        }
        hidden
    }
}
