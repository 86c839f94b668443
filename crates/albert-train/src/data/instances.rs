//! Pretraining examples from documents (ALBERT `create_instances_from_document`): sentences are
//! gathered into a chunk until it fills the target length (`max_seq_length` − 3, or with
//! probability `short_seq_prob` a random shorter length); the chunk is cut at a random sentence
//! boundary into segments A and B, then:
//!
//! * SOP (ALBERT): B follows A in the document (label 0), or, with probability ½, the two are
//!   swapped (label 1). Both come from the same document, so topic cannot give the answer away.
//!   A chunk of one sentence is cut inside the sentence (ALBERT would take B from another
//!   document; we keep SOP negatives within the document).
//! * NSP (BERT): B is the actual continuation (label 0), or, with probability ½ (always for a
//!   one-sentence chunk), a span of a random other document (label 1); the unused sentences are
//!   put back.
//! * none: the whole chunk is one segment.
//!
//! The pair is truncated to fit (from the longer side, at a random end), framed as
//! `[CLS] A [SEP] B [SEP]` with token types 0 then 1, and masked ([`super::masking`]). A new epoch
//! draws new segments and new masks (dynamic masking). Everything is a function of (seed, epoch),
//! streamed through a shuffle buffer ([`InstanceStream`]).

use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use super::corpus::Corpus;
use super::masking::{MaskingOptions, SpecialIds, mask_ngrams};

/// The sentence-level objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Objective {
    Sop,
    Nsp,
    None,
}

impl FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sop" => Ok(Objective::Sop),
            "nsp" => Ok(Objective::Nsp),
            "none" => Ok(Objective::None),
            other => Err(format!(
                "unknown objective `{other}`: expected sop, nsp or none"
            )),
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Objective::Sop => "sop",
            Objective::Nsp => "nsp",
            Objective::None => "none",
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct InstanceOptions {
    pub max_seq_length: usize,
    pub short_seq_prob: f64,
    pub objective: Objective,
    pub masking: MaskingOptions,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            max_seq_length: 128,
            short_seq_prob: 0.1,
            objective: Objective::Sop,
            masking: MaskingOptions::default(),
        }
    }
}

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `[CLS] A [SEP] B [SEP]`, masked.
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u8>,
    /// Masked positions (ascending) and the original ids there.
    pub masked_positions: Vec<usize>,
    pub masked_labels: Vec<u32>,
    /// 1: swapped (SOP) or random next (NSP); 0 otherwise (and always 0 for `none`).
    pub sentence_label: u8,
    /// The document the example came from, and (NSP negatives) the one segment B came from.
    pub document: usize,
    pub other_document: Option<usize>,
}

/// A 64-bit mix of the seed and epoch (SplitMix64's finalizer), so that epochs get unrelated streams.
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// BERT's `truncate_seq_pair`: drop tokens from the longer segment, from its front or back at
/// random, until the pair fits.
fn truncate_pair(a: &mut Vec<u32>, b: &mut Vec<u32>, max_tokens: usize, rng: &mut impl Rng) {
    while a.len() + b.len() > max_tokens {
        let longer = if a.len() > b.len() { &mut *a } else { &mut *b };
        if longer.len() <= 1 {
            break;
        }
        if rng.random::<bool>() {
            longer.remove(0);
        } else {
            longer.pop();
        }
    }
}

/// Examples streamed epoch after epoch: each epoch visits the documents in a new order, makes
/// each document's examples with an RNG of its own (seed, epoch, document), and draws them through
/// a shuffle buffer. Only the buffer is held, and the stream is a pure function of (seed, epoch,
/// index), so a resumed run replays it to where it stopped.
pub struct InstanceStream<'a> {
    corpus: &'a Corpus,
    ids: &'a SpecialIds,
    options: InstanceOptions,
    seed: u64,
    buffer_size: usize,
    epoch: u64,
    order: Vec<usize>,
    next_document: usize,
    buffer: Vec<Instance>,
    rng: StdRng,
    emitted: usize,
}

impl<'a> InstanceStream<'a> {
    /// A stream at the start of `epoch`.
    pub fn new(
        corpus: &'a Corpus,
        ids: &'a SpecialIds,
        options: InstanceOptions,
        seed: u64,
        epoch: u64,
        buffer_size: usize,
    ) -> Self {
        let mut stream = InstanceStream {
            corpus,
            ids,
            options,
            seed,
            buffer_size: buffer_size.max(1),
            epoch,
            order: Vec::new(),
            next_document: 0,
            buffer: Vec::new(),
            rng: StdRng::seed_from_u64(0),
            emitted: 0,
        };
        stream.start_epoch(epoch);
        stream
    }

    /// A stream positioned after `index` examples of `epoch` (replayed).
    pub fn at(
        corpus: &'a Corpus,
        ids: &'a SpecialIds,
        options: InstanceOptions,
        seed: u64,
        epoch: u64,
        index: usize,
        buffer_size: usize,
    ) -> Option<Self> {
        let mut stream = Self::new(corpus, ids, options, seed, epoch, buffer_size);
        for _ in 0..index {
            stream.next_instance()?;
        }
        Some(stream)
    }

    fn start_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.rng = StdRng::seed_from_u64(epoch_seed(self.seed, epoch));
        self.order = (0..self.corpus.documents.len()).collect();
        for i in (1..self.order.len()).rev() {
            let j = self.rng.random_range(0..=i);
            self.order.swap(i, j);
        }
        self.next_document = 0;
        self.buffer.clear();
        self.emitted = 0;
    }

    /// (epoch, examples drawn in it so far).
    pub fn position(&self) -> (u64, usize) {
        (self.epoch, self.emitted)
    }

    /// The next example; `None` only if a whole epoch yields no example (documents too short).
    pub fn next_instance(&mut self) -> Option<Instance> {
        let mut empty_epochs = 0;
        loop {
            while self.buffer.len() < self.buffer_size && self.next_document < self.order.len() {
                let doc = self.order[self.next_document];
                self.next_document += 1;
                let mut rng = StdRng::seed_from_u64(epoch_seed(
                    self.seed ^ epoch_seed(doc as u64, 0x5EED),
                    self.epoch,
                ));
                instances_from_document(
                    self.corpus,
                    doc,
                    self.ids,
                    &self.options,
                    &mut rng,
                    &mut self.buffer,
                );
            }
            if self.buffer.is_empty() {
                if self.emitted == 0 {
                    empty_epochs += 1;
                    if empty_epochs > 1 || self.corpus.documents.is_empty() {
                        return None;
                    }
                }
                let next = self.epoch + 1;
                self.start_epoch(next);
                continue;
            }
            let j = self.rng.random_range(0..self.buffer.len());
            self.emitted += 1;
            return Some(self.buffer.swap_remove(j));
        }
    }
}

/// All examples of one epoch, in stream order (a full shuffle).
pub fn create_instances(
    corpus: &Corpus,
    ids: &SpecialIds,
    options: &InstanceOptions,
    seed: u64,
    epoch: u64,
) -> Vec<Instance> {
    let mut stream = InstanceStream::new(corpus, ids, *options, seed, epoch, usize::MAX);
    let mut out = Vec::new();
    while let Some(instance) = stream.next_instance() {
        if stream.position().0 != epoch {
            break;
        }
        out.push(instance);
    }
    out
}

fn instances_from_document(
    corpus: &Corpus,
    doc: usize,
    ids: &SpecialIds,
    options: &InstanceOptions,
    rng: &mut StdRng,
    out: &mut Vec<Instance>,
) {
    let document = &corpus.documents[doc];
    let max_tokens = options.max_seq_length.saturating_sub(3).max(2);
    let target = |rng: &mut StdRng| {
        if rng.random::<f64>() < options.short_seq_prob {
            rng.random_range(2..=max_tokens)
        } else {
            max_tokens
        }
    };
    let mut target_length = target(rng);
    let mut chunk: Vec<&Vec<u32>> = Vec::new();
    let mut chunk_length = 0;
    let mut i = 0;
    while i < document.len() {
        chunk.push(&document[i]);
        chunk_length += document[i].len();
        if i + 1 == document.len() || chunk_length >= target_length {
            let a_end = if chunk.len() >= 2 {
                rng.random_range(1..chunk.len())
            } else {
                1
            };
            let mut a: Vec<u32> = chunk[..a_end]
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            let mut b: Vec<u32> = Vec::new();
            let mut label = 0u8;
            let mut other_document = None;
            match options.objective {
                Objective::None => {
                    a = chunk.iter().flat_map(|s| s.iter().copied()).collect();
                }
                Objective::Sop => {
                    b = chunk[a_end..]
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    if b.is_empty() && a.len() >= 2 {
                        // One sentence: cut it inside, keeping both segments in the document.
                        let cut = rng.random_range(1..a.len());
                        b = a.split_off(cut);
                    }
                    if rng.random::<bool>() {
                        std::mem::swap(&mut a, &mut b);
                        label = 1;
                    }
                }
                Objective::Nsp => {
                    if (chunk.len() == 1 || rng.random::<bool>()) && corpus.documents.len() > 1 {
                        label = 1;
                        let target_b = target_length.saturating_sub(a.len()).max(1);
                        let mut other = rng.random_range(0..corpus.documents.len() - 1);
                        if other >= doc {
                            other += 1;
                        }
                        other_document = Some(other);
                        let other_doc = &corpus.documents[other];
                        let start = rng.random_range(0..other_doc.len());
                        for sentence in &other_doc[start..] {
                            b.extend_from_slice(sentence);
                            if b.len() >= target_b {
                                break;
                            }
                        }
                        // Put back the sentences of this chunk that B did not use.
                        i -= chunk.len() - a_end;
                    } else {
                        b = chunk[a_end..]
                            .iter()
                            .flat_map(|s| s.iter().copied())
                            .collect();
                    }
                }
            }
            let budget = if b.is_empty() {
                max_tokens + 1
            } else {
                max_tokens
            };
            truncate_pair(&mut a, &mut b, budget, rng);
            let usable = !a.is_empty() && (options.objective == Objective::None || !b.is_empty());
            if usable {
                let mut input_ids = Vec::with_capacity(a.len() + b.len() + 3);
                let mut token_type_ids = Vec::with_capacity(input_ids.capacity());
                input_ids.push(ids.cls);
                input_ids.extend_from_slice(&a);
                input_ids.push(ids.sep);
                token_type_ids.resize(input_ids.len(), 0);
                if !b.is_empty() {
                    input_ids.extend_from_slice(&b);
                    input_ids.push(ids.sep);
                    token_type_ids.resize(input_ids.len(), 1);
                }
                let (masked_positions, masked_labels) =
                    mask_ngrams(&mut input_ids, ids, &options.masking, rng);
                out.push(Instance {
                    input_ids,
                    token_type_ids,
                    masked_positions,
                    masked_labels,
                    sentence_label: label,
                    document: doc,
                    other_document,
                });
            }
            chunk.clear();
            chunk_length = 0;
            target_length = target(rng);
        }
        i += 1;
    }
}
