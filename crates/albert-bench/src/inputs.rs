//! Benchmark inputs from real text: sentences tokenized with the model's tokenizer and packed
//! into full rows `[CLS] … [SEP]` of exactly the requested length, consecutive rows continuing
//! the text (so every cell sees real token statistics, not random ids).

use albert_runtime::ModelInputs;
use anyhow::{Result, bail};
use ndarray::Array2;

/// The committed held-out corpus sample, built into the binary: real sentences for the inputs
/// wherever the binary runs (no path of the build machine).
pub const HELDOUT_SAMPLE: &str = include_str!("../../../tests/fixtures/corpus/heldout-sample.txt");

/// Token ids of the text, in order, without special tokens.
pub fn token_stream(tokenizer: &tokenizers::Tokenizer, text: &str, name: &str) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let encoding = tokenizer
            .encode(line, false)
            .map_err(|e| anyhow::anyhow!("tokenizing {name}: {e}"))?;
        ids.extend(encoding.get_ids().iter().map(|&i| i64::from(i)));
    }
    if ids.is_empty() {
        bail!("{name} holds no text");
    }
    Ok(ids)
}

/// `batch` rows of `seq` tokens from the stream (wrapping around when it runs out).
pub fn packed(stream: &[i64], cls: i64, sep: i64, batch: usize, seq: usize) -> ModelInputs {
    let mut position = 0usize;
    let input_ids = Array2::from_shape_fn((batch, seq), |(_, c)| {
        if c == 0 {
            cls
        } else if c + 1 == seq && seq >= 2 {
            sep
        } else {
            let id = stream[position % stream.len()];
            position += 1;
            id
        }
    });
    ModelInputs {
        input_ids,
        attention_mask: Array2::ones((batch, seq)),
        token_type_ids: Array2::zeros((batch, seq)),
    }
}
