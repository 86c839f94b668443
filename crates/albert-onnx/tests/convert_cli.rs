//! `albert-convert` as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use albert_core::{AlbertConfig, Checkpoint, Head};
use albert_onnx::export::{ExportOptions, Task, export_dir};

fn albert_convert(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_albert-convert"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run albert-convert")
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn folds_and_quantizes_a_model_directory_with_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("int8");
    let run = albert_convert(&[
        repo("tests/fixtures/runtime/tiny-base").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--fold",
        "--quantize",
        "int8",
        "--verify",
        "--text",
        repo("tests/fixtures/corpus/heldout-sample.txt")
            .to_str()
            .unwrap(),
        "--sentences",
        "64",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in [
        "model.onnx",
        "config.json",
        "tokenizer.json",
        "convert-report.json",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("convert-report.json")).unwrap()).unwrap();
    let passes: Vec<&str> = report["passes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pass"].as_str().unwrap())
        .collect();
    // int8 fuses LayerNorm and GELU first (portable fusion).
    assert_eq!(passes, ["cleanup", "dedupe", "fuse", "fold", "quantize"]);
    let text = report["text"].as_array().unwrap();
    assert_eq!(text.len(), 2, "{report}"); // onnxruntime and tract
    for engine in text {
        assert_eq!(engine["sentences"], 64);
        let cosine = engine["embedding_cosine_mean"].as_f64().unwrap();
        assert!(cosine >= 0.999, "{engine}");
    }
    assert!(report["size_ratio"].as_f64().unwrap() < 1.0);
}

#[test]
fn a_corrupt_model_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.onnx");
    std::fs::write(&bad, b"this is not protobuf \xff\xff\xff").unwrap();
    let out = tmp.path().join("out.onnx");
    let run = albert_convert(&[bad.to_str().unwrap(), "-o", out.to_str().unwrap(), "--fold"]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("bad.onnx") && stderr.contains("not a valid ONNX model"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_model_without_repeated_layers_fails_to_fold_unless_best_effort() {
    let tmp = tempfile::tempdir().unwrap();
    let config = AlbertConfig {
        vocab_size: 50,
        embedding_size: 8,
        hidden_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 24,
        max_position_embeddings: 16,
        ..AlbertConfig::default()
    };
    let checkpoint = Checkpoint::random(&config, Head::Base.parts(), 3).unwrap();
    checkpoint.write_dir(&tmp.path().join("ckpt")).unwrap();
    let options = ExportOptions {
        task: Some(Task::Base),
        ..ExportOptions::default()
    };
    export_dir(&tmp.path().join("ckpt"), &tmp.path().join("onnx"), &options).unwrap();
    let input = tmp.path().join("onnx");
    let out = tmp.path().join("folded.onnx");

    let run = albert_convert(&[
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--fold",
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("cannot fold: "), "{stderr}");
    assert!(!out.exists());

    let run = albert_convert(&[
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--fold",
        "--best-effort",
        "--verify",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("skipped (best effort): cannot fold"),
        "{stdout}"
    );
    assert!(out.exists());
}
