//! Floating-point operations of one forward pass, from the config (a multiply-add counts 2).
//! Per token and layer: Q, K, V and output projections 4·2·H², the feed-forward 2·2·H·F, and
//! attention scores and context 2·2·S·H; plus the embedding projection 2·E·H per token, the
//! pooler 2·H² per sequence, and for masked-LM outputs the MLM head 2·(H·E + E·V) per token.
//! Element-wise work (LayerNorm, GELU, softmax) is left out, as usual for GFLOP/s figures.

use albert_core::AlbertConfig;

/// What the exported graph computes beyond the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Encoder and pooler (`last_hidden_state`, `pooler_output`).
    Base,
    /// The MLM head on every token (`logits` over the vocabulary).
    MaskedLm,
}

pub fn forward_flops(config: &AlbertConfig, head: Head, batch: usize, seq: usize) -> f64 {
    let (e, h, f, v) = (
        config.embedding_size as f64,
        config.hidden_size as f64,
        config.intermediate_size as f64,
        config.vocab_size as f64,
    );
    let s = seq as f64;
    let layers = (config.num_hidden_layers * config.inner_group_num.max(1)) as f64;
    let per_layer_token = 8.0 * h * h + 4.0 * h * f + 4.0 * s * h;
    let mut per_token = 2.0 * e * h + layers * per_layer_token;
    let mut per_sequence = 2.0 * h * h;
    if head == Head::MaskedLm {
        per_token += 2.0 * (h * e + e * v);
        per_sequence = 0.0;
    }
    batch as f64 * (s * per_token + per_sequence)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn albert_base_matches_a_hand_count() {
        // ALBERT-base, one sequence of 128: per token 2·128·768 + 12·(8·768² + 4·768·3072 +
        // 4·128·768) = 196,608 + 12·(4,718,592 + 9,437,184 + 393,216) = 174,784,512;
        // × 128 tokens + the pooler's 2·768² = 22,372,417,536 + 1,179,648.
        let config = albert_core::Preset::Base.config();
        let flops = forward_flops(&config, Head::Base, 1, 128);
        assert_eq!(flops, 22_373_597_184.0);
        assert_eq!(forward_flops(&config, Head::Base, 8, 128), 8.0 * flops);
    }
}
