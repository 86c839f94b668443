//! One forward pass of an ALBERT-base-shaped export (random weights; speed does not depend on
//! them), ONNX Runtime (CPU) vs tract, at batch 1 and 8, length 128, side by side in one run; and
//! of a small model (the committed tiny fixture: E 16, H 32, 3 layers), where per-call overhead
//! dominates, at batch 1 × 16 and 8 × 40.
//!
//!     cargo bench -p albert-benches --bench forward
//!
//! ONNX Runtime runs with 1 intra-op thread and with its default (one per core); tract is
//! single-threaded, so `ort-1-thread` vs `tract` compares the engines and `ort-all-cores` shows
//! what threads add.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use albert_core::{Checkpoint, Head, Preset};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_runtime::{Backend, BackendChoice, OrtOptions, TractOptions};
mod common;

use common::inputs;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn forward(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let config = Preset::Base.config();
    Checkpoint::random(&config, Head::Base.parts(), 0)
        .unwrap()
        .write_dir(&tmp.path().join("ckpt"))
        .unwrap();
    let options = ExportOptions {
        task: Some(Task::Base),
        ..ExportOptions::default()
    };
    let model = export_dir(&tmp.path().join("ckpt"), &tmp.path().join("onnx"), &options)
        .unwrap()
        .model_path;
    let load = |choice: BackendChoice| albert_runtime::backend::load(&model, &choice).unwrap();
    let backends: Vec<(&str, Box<dyn Backend>)> = vec![
        (
            "ort-1-thread",
            load(BackendChoice::Ort(OrtOptions {
                intra_threads: 1,
                ..OrtOptions::default()
            })),
        ),
        (
            "ort-all-cores",
            load(BackendChoice::Ort(OrtOptions::default())),
        ),
        ("tract", load(BackendChoice::Tract(TractOptions::default()))),
    ];
    for (batch, length) in [(1, 128), (8, 128)] {
        let mut group = c.benchmark_group(format!("albert-base forward b{batch} s{length}"));
        group.throughput(Throughput::Elements((batch * length) as u64));
        group.sample_size(10);
        let feed = inputs(batch, length, config.vocab_size);
        for (name, backend) in &backends {
            group.bench_function(*name, |b| b.iter(|| backend.run(&feed).unwrap()));
        }
        group.finish();
    }
}

fn forward_small(c: &mut Criterion) {
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/runtime/tiny-base/model.onnx");
    let load = |choice: BackendChoice| albert_runtime::backend::load(&model, &choice).unwrap();
    let backends: Vec<(&str, Box<dyn Backend>)> = vec![
        (
            "ort-1-thread",
            load(BackendChoice::Ort(OrtOptions {
                intra_threads: 1,
                ..OrtOptions::default()
            })),
        ),
        ("tract", load(BackendChoice::Tract(TractOptions::default()))),
    ];
    for (batch, length) in [(1, 16), (8, 40)] {
        let mut group = c.benchmark_group(format!("tiny forward b{batch} s{length}"));
        group.throughput(Throughput::Elements((batch * length) as u64));
        let feed = inputs(batch, length, 400);
        for (name, backend) in &backends {
            group.bench_function(*name, |b| b.iter(|| backend.run(&feed).unwrap()));
        }
        group.finish();
    }
}

criterion_group!(benches, forward, forward_small);
criterion_main!(benches);
