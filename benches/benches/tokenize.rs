//! Tokenization throughput: the committed corpus sample's held-out sentences through an ALBERT
//! unigram tokenizer (the runtime fixture's), one at a time and as a batch, with special tokens
//! as the runtime adds them.
//!
//!     cargo bench -p albert-benches --bench tokenize

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn tokenize(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tokenizer =
        albert_core::tokenizer::load(&root.join("tests/fixtures/runtime/tiny-base/tokenizer.json"))
            .unwrap();
    let text =
        std::fs::read_to_string(root.join("tests/fixtures/corpus/heldout-sample.txt")).unwrap();
    let sentences: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(2000)
        .map(str::to_string)
        .collect();
    let bytes: usize = sentences.iter().map(String::len).sum();
    let mut group = c.benchmark_group("tokenize held-out sentences");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("one at a time", |b| {
        b.iter(|| {
            sentences
                .iter()
                .map(|s| tokenizer.encode(s.as_str(), true).unwrap().len())
                .sum::<usize>()
        })
    });
    group.bench_function("encode_batch", |b| {
        b.iter(|| {
            tokenizer
                .encode_batch(sentences.clone(), true)
                .unwrap()
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, tokenize);
criterion_main!(benches);
