//! The largest model the paper names, not shared: ALBERT-xxlarge with every layer its own
//! (2.4 billion parameters, 9.7 GB of f32), which only fits ONNX with external data. Run by hand:
//! it needs ~10 GB of memory and ~20 GB of disk, and minutes:
//!
//!     cargo test --release -p albert-verify --test large_models -- --ignored --nocapture

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::time::Instant;

use albert_core::params::{count, inventory};
use albert_core::{Checkpoint, Head, Preset, Sharing};
use albert_onnx::export::{ExportOptions, export_dir};
use albert_verify::verify::{load_onnxruntime, run_backend, sample_inputs};

#[test]
#[ignore = "by hand: ~10 GB of memory, ~20 GB of disk (see the file's header)"]
fn xxlarge_not_shared_exports_with_external_data_and_runs() {
    let config = Preset::Xxlarge.config().with_sharing(Sharing::None);
    let parameters = count(&inventory(&config, &Head::Base.parts())).total;
    let tmp =
        tempfile::tempdir_in(std::env::var("LARGE_MODEL_DIR").unwrap_or_else(|_| "/tmp".into()))
            .unwrap();
    let start = Instant::now();
    {
        let checkpoint = Checkpoint::random(&config, Head::Base.parts(), 0).unwrap();
        checkpoint.write_dir(&tmp.path().join("ckpt")).unwrap();
    }
    println!(
        "checkpoint of {parameters} parameters written in {:.0?}",
        start.elapsed()
    );

    let start = Instant::now();
    let summary = export_dir(
        &tmp.path().join("ckpt"),
        &tmp.path().join("onnx"),
        &ExportOptions::default(),
    )
    .unwrap();
    println!(
        "exported in {:.0?}: {} bytes, {} initializers, {} nodes",
        start.elapsed(),
        summary.file_bytes,
        summary.initializers,
        summary.nodes
    );
    assert!(summary.external_data);
    assert_eq!(summary.parameters, parameters);
    let model_bytes = std::fs::metadata(&summary.model_path).unwrap().len();
    assert!(model_bytes < 50_000_000, "graph file {model_bytes} bytes");
    assert!(summary.file_bytes as f64 <= 1.01 * 4.0 * parameters as f64);

    // ONNX Runtime loads the 9.7 GB of external data and runs it.
    let start = Instant::now();
    let checkpoint_config = albert_core::AlbertConfig::from_file(&tmp.path().join("ckpt")).unwrap();
    let probe = Checkpoint {
        config: checkpoint_config,
        parts: Head::Base.parts(),
        tensors: Default::default(),
    };
    let inputs = sample_inputs(&probe, 1, 8, 0);
    let ort = load_onnxruntime(&summary.model_path, None).unwrap();
    let out = run_backend(
        ort.as_ref(),
        &inputs,
        &["last_hidden_state", "pooler_output"],
    )
    .unwrap();
    assert!(out["last_hidden_state"].iter().all(|v| v.is_finite()));
    assert_eq!(out["last_hidden_state"].shape(), &[1, 8, 4096]);
    println!("onnxruntime loaded and ran it in {:.0?}", start.elapsed());
}
