//! Instances → tensors.

use tch::{Device, Kind, Tensor};

use super::instances::Instance;

/// One batch, padded to its longest example.
pub struct Batch {
    /// [batch, seq]
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub token_type_ids: Tensor,
    /// Flat indexes (row · seq + position) of the masked tokens, and their original ids.
    pub masked_index: Tensor,
    pub masked_labels: Tensor,
    /// [batch] SOP/NSP labels.
    pub sentence_labels: Tensor,
    /// Real (non-padding) tokens in the batch.
    pub tokens: usize,
}

impl Batch {
    pub fn new(instances: &[&Instance], pad: u32, device: Device) -> Batch {
        let rows = instances.len();
        let seq = instances
            .iter()
            .map(|i| i.input_ids.len())
            .max()
            .unwrap_or(1);
        let mut ids = vec![i64::from(pad); rows * seq];
        let mut mask = vec![0i64; rows * seq];
        let mut types = vec![0i64; rows * seq];
        let mut masked_index = Vec::new();
        let mut masked_labels = Vec::new();
        let mut tokens = 0;
        for (r, inst) in instances.iter().enumerate() {
            for (c, (&id, &ty)) in inst.input_ids.iter().zip(&inst.token_type_ids).enumerate() {
                ids[r * seq + c] = i64::from(id);
                mask[r * seq + c] = 1;
                types[r * seq + c] = i64::from(ty);
            }
            tokens += inst.input_ids.len();
            for (&p, &label) in inst.masked_positions.iter().zip(&inst.masked_labels) {
                masked_index.push((r * seq + p) as i64);
                masked_labels.push(i64::from(label));
            }
        }
        let shape = [rows as i64, seq as i64];
        let sentence: Vec<i64> = instances
            .iter()
            .map(|i| i64::from(i.sentence_label))
            .collect();
        Batch {
            input_ids: Tensor::from_slice(&ids).view(shape).to_device(device),
            attention_mask: Tensor::from_slice(&mask).view(shape).to_device(device),
            token_type_ids: Tensor::from_slice(&types).view(shape).to_device(device),
            masked_index: Tensor::from_slice(&masked_index)
                .to_kind(Kind::Int64)
                .to_device(device),
            masked_labels: Tensor::from_slice(&masked_labels).to_device(device),
            sentence_labels: Tensor::from_slice(&sentence).to_device(device),
            tokens,
        }
    }
}
