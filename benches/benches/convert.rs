//! The converter's variants against ONNX Runtime's own tools, ALBERT-base shapes, ONNX Runtime
//! CPU, batch 1 and 8, length 128, side by side in one run; then the converter's passes.
//!
//!     .venv/bin/python tools/make_convert_fixtures.py --base   # anchors in data/convert-anchors
//!     cargo bench -p albert-benches --bench convert
//!
//! With the anchors present, every variant is made from the same weights: `torch-legacy` (a
//! `torch.onnx.export` of HF `AlbertModel`), ONNX Runtime's transformer optimizer output of it
//! (`ort-optimized`), and its pre-processed per-channel `quantize_dynamic` (`ort-quantized`);
//! ours are converted from `torch-legacy` in this process. Without them, ours are converted from
//! our own export of random ALBERT-base weights and the anchors are left out (said on stderr).
//! `ALBERT_BENCH_THREADS` sets ONNX Runtime's intra-op threads (default 2).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report

use std::path::{Path, PathBuf};

use albert_core::{Checkpoint, Head, Preset};
use albert_onnx::convert::{
    self, ConvertOptions, FuseFlavour, LoopMode, QuantFormat, QuantizeOptions,
};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_onnx::proto::{EXTERNAL_DATA_THRESHOLD, read_model, write_model};
use albert_runtime::{Backend, BackendChoice, OrtOptions};
mod common;

use common::inputs;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn anchors() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/convert-anchors");
    let complete = ["torch-legacy", "ort-optimized", "ort-quantized"]
        .iter()
        .all(|k| dir.join(k).join("model.onnx").exists());
    complete.then_some(dir)
}

fn our_export(dir: &Path) -> PathBuf {
    let config = Preset::Base.config();
    Checkpoint::random(&config, Head::Base.parts(), 0)
        .unwrap()
        .write_dir(&dir.join("ckpt"))
        .unwrap();
    let options = ExportOptions {
        task: Some(Task::Base),
        ..ExportOptions::default()
    };
    export_dir(&dir.join("ckpt"), &dir.join("onnx"), &options)
        .unwrap()
        .model_path
}

fn options(loops: LoopMode, int8: Option<QuantFormat>) -> ConvertOptions {
    fused(loops, None, int8)
}

fn fused(loops: LoopMode, fuse: Option<FuseFlavour>, int8: Option<QuantFormat>) -> ConvertOptions {
    ConvertOptions {
        loops,
        fuse,
        best_effort: false,
        quantize: int8.map(|format| QuantizeOptions {
            format,
            ..QuantizeOptions::default()
        }),
        float16: false,
    }
}

fn variants() -> Vec<(&'static str, ConvertOptions)> {
    vec![
        ("ours-fp32-deduped", options(LoopMode::Keep, None)),
        ("ours-fp32-folded", options(LoopMode::Fold, None)),
        (
            "ours-fp32-fused-portable",
            fused(LoopMode::Keep, Some(FuseFlavour::Portable), None),
        ),
        (
            "ours-fp32-fused-ort",
            fused(LoopMode::Keep, Some(FuseFlavour::Ort), None),
        ),
        (
            "ours-fp32-fused-ort-folded",
            fused(LoopMode::Fold, Some(FuseFlavour::Ort), None),
        ),
        (
            "ours-int8-portable",
            options(LoopMode::Keep, Some(QuantFormat::Portable)),
        ),
        (
            "ours-int8-portable-folded",
            options(LoopMode::Fold, Some(QuantFormat::Portable)),
        ),
        (
            "ours-int8-ort",
            options(LoopMode::Keep, Some(QuantFormat::Ort)),
        ),
        (
            "ours-int8-ort-folded",
            options(LoopMode::Fold, Some(QuantFormat::Ort)),
        ),
        (
            "ours-int8-ort-fused",
            fused(
                LoopMode::Keep,
                Some(FuseFlavour::Portable),
                Some(QuantFormat::Ort),
            ),
        ),
    ]
}

fn convert_to(source: &Path, options: &ConvertOptions, out: &Path) {
    let mut model = read_model(source).unwrap();
    convert::convert(&mut model, options).unwrap();
    write_model(out, model, EXTERNAL_DATA_THRESHOLD).unwrap();
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let anchors = anchors();
    let source = match &anchors {
        Some(dir) => dir.join("torch-legacy/model.onnx"),
        None => {
            eprintln!(
                "data/convert-anchors is missing: ONNX Runtime's optimizer and quantizer anchors \
                 are left out (make them with tools/make_convert_fixtures.py --base)"
            );
            our_export(tmp.path())
        }
    };
    let mut models: Vec<(String, PathBuf)> = vec![("source-fp32".into(), source.clone())];
    if let Some(dir) = &anchors {
        models.push((
            "ort-optimizer-fp32".into(),
            dir.join("ort-optimized/model.onnx"),
        ));
        models.push((
            "ort-quantize-dynamic-int8".into(),
            dir.join("ort-quantized/model.onnx"),
        ));
    }
    for (name, options) in variants() {
        let out = tmp.path().join(format!("{name}.onnx"));
        convert_to(&source, &options, &out);
        models.push((name.to_string(), out));
    }
    let threads: usize = std::env::var("ALBERT_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let backends: Vec<(String, Box<dyn Backend>)> = models
        .iter()
        .map(|(name, path)| {
            let choice = BackendChoice::Ort(OrtOptions {
                intra_threads: threads,
                ..OrtOptions::default()
            });
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            eprintln!("{name}: {} bytes", size);
            (
                name.clone(),
                albert_runtime::backend::load(path, &choice).unwrap(),
            )
        })
        .collect();
    let vocab = Preset::Base.config().vocab_size;
    for (batch, length) in [(1, 128), (8, 128)] {
        let mut group =
            c.benchmark_group(format!("albert-base ort-cpu {threads}t b{batch} s{length}"));
        group.throughput(Throughput::Elements((batch * length) as u64));
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_secs(2));
        group.measurement_time(std::time::Duration::from_secs(if batch == 1 {
            5
        } else {
            12
        }));
        let feed = inputs(batch, length, vocab);
        for (name, backend) in &backends {
            group.bench_function(name.as_str(), |b| b.iter(|| backend.run(&feed).unwrap()));
        }
        group.finish();
    }

    let mut group = c.benchmark_group("albert-convert passes (albert-base)");
    group.sample_size(10);
    let model = read_model(&source).unwrap();
    for (name, options) in [
        ("cleanup+dedupe", options(LoopMode::Keep, None)),
        ("+fold", options(LoopMode::Fold, None)),
        (
            "+fold+int8",
            options(LoopMode::Fold, Some(QuantFormat::Portable)),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut m = model.clone();
                convert::convert(&mut m, &options).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
