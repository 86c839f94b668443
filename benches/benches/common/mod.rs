//! What the benchmarks share.

use albert_runtime::ModelInputs;
use ndarray::Array2;
use rand::{RngExt, SeedableRng};

/// Full rows of `length` ids (`[CLS]` first, the rest drawn past the special tokens), seeded.
pub fn inputs(batch: usize, length: usize, vocab: usize) -> ModelInputs {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    ModelInputs {
        input_ids: Array2::from_shape_fn((batch, length), |(_, p)| {
            if p == 0 {
                2
            } else {
                rng.random_range(5..vocab as i64)
            }
        }),
        attention_mask: Array2::ones((batch, length)),
        token_type_ids: Array2::zeros((batch, length)),
    }
}
