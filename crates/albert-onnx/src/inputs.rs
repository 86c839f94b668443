//! The three inputs every ALBERT graph takes, as [`crate::export`] names them (and optimum's
//! ALBERT exports do): `input_ids`, `attention_mask`, `token_type_ids`, int64
//! `[batch, sequence_length]`. The reference forward pass computes on this type and
//! `albert-runtime`'s engines run on it (`albert_runtime::ModelInputs` is this type).

use ndarray::Array2;

/// One batch of model inputs, each `[batch, sequence_length]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInputs {
    /// Token ids, padded with the config's `pad_token_id`.
    pub input_ids: Array2<i64>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Array2<i64>,
    /// Segment of each token: 0 for the first text, 1 for the second of a pair.
    pub token_type_ids: Array2<i64>,
}
