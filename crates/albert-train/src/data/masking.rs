//! n-gram masking (paper §4.1, Appendix A.1; ALBERT `create_masked_lm_predictions` with
//! `ngram = 3`): the unit is a whole word (a `▁`-initial piece and the pieces that follow it); an
//! n-gram of n ≤ 3 words is chosen with p(n) ∝ 1/n; 15% of the tokens are predicted, at most
//! `max_predictions`; each chosen token is replaced by `[MASK]` 80% of the time, by a random token
//! 10%, and kept 10%.

use albert_core::tokenizer::{CLS, MASK, PAD, SEP, UNK};
use rand::{Rng, RngExt};

/// Ids the data pipeline needs.
#[derive(Debug, Clone)]
pub struct SpecialIds {
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
    pub pad: u32,
    /// Vocabulary size.
    pub vocab_size: u32,
    /// Random replacements are drawn from `[first_regular, vocab_size)`, past the special tokens.
    pub first_regular: u32,
    /// Whether each id begins a word (its piece starts with `▁`).
    pub word_start: Vec<bool>,
}

impl SpecialIds {
    /// From an ALBERT-style tokenizer (`[CLS]`, `[SEP]`, `[MASK]`, `<pad>`).
    pub fn from_tokenizer(tokenizer: &tokenizers::Tokenizer) -> crate::Result<Self> {
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| crate::TrainError::BadInput {
                    name: "tokenizer",
                    message: format!(
                        "has no {t} token (ALBERT's special tokens are {})",
                        albert_core::tokenizer::SPECIAL_TOKENS.join(" ")
                    ),
                })
        };
        let vocab_size = tokenizer.get_vocab_size(true) as u32;
        let word_start = (0..vocab_size)
            .map(|i| tokenizer.id_to_token(i).is_some_and(|t| t.starts_with('▁')))
            .collect();
        let specials = [id(CLS)?, id(SEP)?, id(MASK)?, id(PAD)?];
        Ok(SpecialIds {
            cls: specials[0],
            sep: specials[1],
            mask: specials[2],
            pad: specials[3],
            vocab_size,
            first_regular: specials
                .iter()
                .max()
                .copied()
                .unwrap_or(0)
                .max(id(UNK).unwrap_or(0))
                + 1,
            word_start,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MaskingOptions {
    pub masked_lm_prob: f64,
    pub max_predictions: usize,
    /// Longest n-gram, in words.
    pub max_ngram: usize,
}

impl Default for MaskingOptions {
    fn default() -> Self {
        MaskingOptions {
            masked_lm_prob: 0.15,
            max_predictions: 20,
            max_ngram: 3,
        }
    }
}

/// Masks `tokens` in place (special tokens are never chosen) and returns the masked positions
/// (ascending) with their original ids.
pub fn mask_ngrams(
    tokens: &mut [u32],
    ids: &SpecialIds,
    options: &MaskingOptions,
    rng: &mut impl Rng,
) -> (Vec<usize>, Vec<u32>) {
    // Words: runs of token positions starting at a word-start piece.
    let mut words: Vec<Vec<usize>> = Vec::new();
    for (i, &t) in tokens.iter().enumerate() {
        if t == ids.cls || t == ids.sep || t == ids.pad {
            continue;
        }
        let continues = !ids.word_start.get(t as usize).copied().unwrap_or(true);
        match words.last_mut() {
            Some(word) if continues && word.last() == Some(&(i - 1)) => word.push(i),
            _ => words.push(vec![i]),
        }
    }
    let candidates: usize = words.iter().map(Vec::len).sum();
    let to_predict = options
        .max_predictions
        .min(((candidates as f64 * options.masked_lm_prob).round() as usize).max(1));

    // p(n) ∝ 1/n for n = 1..=max_ngram.
    let weights: Vec<f64> = (1..=options.max_ngram).map(|n| 1.0 / n as f64).collect();
    let mut starts: Vec<usize> = (0..words.len()).collect();
    // Fisher–Yates with the caller's RNG (deterministic for a seed).
    for i in (1..starts.len()).rev() {
        let j = rng.random_range(0..=i);
        starts.swap(i, j);
    }
    let mut covered = vec![false; tokens.len()];
    let mut chosen: Vec<usize> = Vec::new();
    for start in starts {
        if chosen.len() >= to_predict {
            break;
        }
        let available = options.max_ngram.min(words.len() - start);
        let total: f64 = weights[..available].iter().sum();
        let mut x = rng.random::<f64>() * total;
        let mut n = available;
        for (k, w) in weights[..available].iter().enumerate() {
            if x < *w {
                n = k + 1;
                break;
            }
            x -= w;
        }
        // Shorten the n-gram while it would exceed the budget (as ALBERT does).
        let positions = |n: usize| -> Vec<usize> {
            words[start..start + n].iter().flatten().copied().collect()
        };
        let mut set = positions(n);
        while chosen.len() + set.len() > to_predict && n > 1 {
            n -= 1;
            set = positions(n);
        }
        if chosen.len() + set.len() > to_predict || set.iter().any(|&p| covered[p]) {
            continue;
        }
        for p in set {
            covered[p] = true;
            chosen.push(p);
        }
    }
    chosen.sort_unstable();
    let labels: Vec<u32> = chosen.iter().map(|&p| tokens[p]).collect();
    for &p in &chosen {
        let r = rng.random::<f64>();
        if r < 0.8 {
            tokens[p] = ids.mask;
        } else if r < 0.9 {
            // keep the original
        } else {
            tokens[p] = rng.random_range(ids.first_regular..ids.vocab_size);
        }
    }
    (chosen, labels)
}
