//! `albert-convert` as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use albert_core::{AlbertConfig, Checkpoint, Head};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_onnx::proto::{read_model, write_model};

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
    // The default int8 weights (7-bit, accurate on every CPU: #23) are recorded and said.
    assert_eq!(report["int8_weights"], "reduced");
    assert!(stdout.contains("int8 weights: reduced"), "{stdout}");
    let model = read_model(&out.join("model.onnx")).unwrap();
    assert_eq!(
        albert_onnx::proto::metadata_value(&model, "albert.int8_weights"),
        Some("reduced")
    );
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

/// tiny-base in `dir/model.onnx` with its weights in `dir/model.onnx.data`, the word-embedding
/// table's external data location replaced by `location`.
fn crafted(dir: &Path, location: &str) -> PathBuf {
    use albert_onnx::proto::pb::ModelProto;
    use prost::Message;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("model.onnx");
    let source = repo("tests/fixtures/runtime/tiny-base/model.onnx");
    write_model(&path, read_model(&source).unwrap(), 0).unwrap();
    let mut model = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let tensor = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == WORDS)
        .unwrap();
    for entry in &mut tensor.external_data {
        if entry.key == "location" {
            entry.value = location.to_string();
        }
    }
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

const WORDS: &str = "albert.embeddings.word_embeddings.weight";

/// Every regular file under `dir`, recursively (symbolic links are not followed).
fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let entry = e.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                files(&entry.path())
            } else if kind.is_file() {
                vec![entry.path()]
            } else {
                vec![]
            }
        })
        .collect()
}

#[test]
fn external_data_outside_the_model_directory_is_refused_and_nothing_is_written() {
    const SECRET: &[u8] = b"TOP-SECRET: these bytes must never reach a model. ";
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("outside/secret.bin");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, SECRET.repeat(100_000 / SECRET.len() + 1)).unwrap();
    let absolute = secret.to_str().unwrap();
    for (case, location) in [
        ("absolute", absolute),
        ("parent", "../outside/secret.bin"),
        ("symlink", "innocent.bin"),
    ] {
        let dir = tmp.path().join(case);
        let model = crafted(&dir, location);
        if case == "symlink" {
            std::os::unix::fs::symlink(&secret, dir.join(location)).unwrap();
        }
        let out = tmp.path().join(format!("{case}-out.onnx"));
        let run = albert_convert(&[model.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{case}: converted");
        assert!(
            stderr.contains(WORDS) && stderr.contains(location) && !stderr.contains("panicked"),
            "{case}: {stderr}"
        );
        assert!(!out.exists(), "{case}: {} written", out.display());
    }
    // The secret's bytes are nowhere but in the secret.
    for file in files(tmp.path()).iter().filter(|f| **f != secret) {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET),
            "{} holds the secret",
            file.display()
        );
    }
}

/// Issue #19, finding 6: what the converter copies into an output directory (config.json,
/// tokenizer.json) is loaded and checked first; a bad one is an error naming the file, and no
/// output file gets its final name.
#[test]
fn a_broken_tokenizer_or_config_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let source = repo("tests/fixtures/runtime/tiny-base");
    // The fixture's config with a vocabulary smaller than its tokenizer's 400 pieces.
    let mut small: serde_json::Value =
        serde_json::from_slice(&std::fs::read(source.join("config.json")).unwrap()).unwrap();
    small["vocab_size"] = 300.into();
    let cases: [(&str, &str, Vec<u8>); 3] = [
        (
            "malformed-tokenizer",
            "tokenizer.json",
            b"{ \"model\": [1, 2".to_vec(),
        ),
        (
            "tokenizer-too-large",
            "config.json",
            serde_json::to_vec(&small).unwrap(),
        ),
        (
            "malformed-config",
            "config.json",
            b"{ \"vocab_size\": 400,".to_vec(),
        ),
    ];
    for (case, file, bytes) in cases {
        let input = tmp.path().join(case);
        std::fs::create_dir_all(&input).unwrap();
        for name in ["model.onnx", "config.json", "tokenizer.json"] {
            std::fs::copy(source.join(name), input.join(name)).unwrap();
        }
        std::fs::write(input.join(file), bytes).unwrap();
        let out = tmp.path().join(format!("{case}-out"));
        let run = albert_convert(&[input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{case}: {stderr}");
        // The vocabulary check names the tokenizer, the others the malformed file.
        let named = if case == "tokenizer-too-large" {
            "tokenizer.json"
        } else {
            file
        };
        assert!(
            stderr.contains(&input.join(named).display().to_string())
                && !stderr.contains("panicked"),
            "{case}: {stderr}"
        );
        for name in [
            "model.onnx",
            "config.json",
            "tokenizer.json",
            "convert-report.json",
        ] {
            assert!(!out.join(name).exists(), "{case}: {name} was written");
        }
    }
}
