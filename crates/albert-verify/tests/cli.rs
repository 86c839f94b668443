//! `albert-export` as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../../tests/support/docs_commands.rs"]
mod docs_commands;

use std::path::Path;
use std::process::Command;

fn albert_export(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_albert-export"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run albert-export")
}

fn fixture(case: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hf")
        .join(case)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn exports_an_hf_checkpoint_and_verifies_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("onnx");
    let run = albert_export(&[
        &fixture("masked_lm"),
        "-o",
        out.to_str().unwrap(),
        "--verify",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("masked-lm") && stdout.contains("bytes per parameter"),
        "{stdout}"
    );
    assert!(
        stdout.contains("onnxruntime") && stdout.contains("tract"),
        "{stdout}"
    );
    // 2 engines × 2 batches × 3 lengths × 1 output.
    assert!(stdout.contains("verified: 12 comparisons"), "{stdout}");
    assert!(out.join("model.onnx").exists() && out.join("config.json").exists());
}

#[test]
fn a_failed_verification_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("onnx");
    // A tolerance no fp32 engine can meet against the f64 reference.
    let run = albert_export(&[
        &fixture("pretraining_default"),
        "-o",
        out.to_str().unwrap(),
        "--verify",
        "--tolerance",
        "1e-12",
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("did not verify") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("onnx");
    let run = albert_export(&[
        &fixture("base_model"),
        "-o",
        out.to_str().unwrap(),
        "--task",
        "question-answering",
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("qa_outputs") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(!out.exists());

    let run = albert_export(&[
        &fixture("base_model"),
        "-o",
        out.to_str().unwrap(),
        "--task",
        "summarize",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("unknown task") && stderr.contains("masked-lm"),
        "{stderr}"
    );
}

/// A copy of `from` (a flat directory) at `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// The runtime fixture's tokenizer (400 pieces) with its vocabulary cut to the first `size`.
fn tokenizer_json(size: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/runtime/tiny-base/tokenizer.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    json["model"]["vocab"]
        .as_array_mut()
        .unwrap()
        .truncate(size);
    serde_json::to_vec(&json).unwrap()
}

/// Issue #19, finding 6: what the exporter copies into the model directory is loaded and checked
/// first (tokenizer.json parses and fits config.json's vocab_size; config.json parses); a bad one
/// is an error naming the file, and no output file gets its final name.
#[test]
fn a_broken_tokenizer_or_config_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    // base_model's config.json: vocab_size 97.
    let cases: [(&str, &str, Vec<u8>); 3] = [
        (
            "malformed-tokenizer",
            "tokenizer.json",
            b"{ \"model\": [1, 2".to_vec(),
        ),
        ("tokenizer-too-large", "tokenizer.json", tokenizer_json(400)),
        (
            "malformed-config",
            "config.json",
            b"{ \"vocab_size\": 97,".to_vec(),
        ),
    ];
    for (case, file, bytes) in cases {
        let checkpoint = tmp.path().join(case);
        copy_dir(Path::new(&fixture("base_model")), &checkpoint);
        std::fs::write(checkpoint.join(file), bytes).unwrap();
        let out = tmp.path().join(format!("{case}-out"));
        let run = albert_export(&[
            checkpoint.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--verify",
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{case}: {stderr}");
        assert!(
            stderr.contains(&checkpoint.join(file).display().to_string())
                && !stderr.contains("panicked"),
            "{case}: {stderr}"
        );
        for name in [
            "model.onnx",
            "model.onnx.data",
            "config.json",
            "tokenizer.json",
        ] {
            assert!(!out.join(name).exists(), "{case}: {name} was written");
        }
    }
    // A tokenizer that fits (97 pieces for vocab_size 97) is copied.
    let checkpoint = tmp.path().join("fits");
    copy_dir(Path::new(&fixture("base_model")), &checkpoint);
    std::fs::write(checkpoint.join("tokenizer.json"), tokenizer_json(97)).unwrap();
    let out = tmp.path().join("fits-out");
    let run = albert_export(&[checkpoint.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("tokenizer.json")).unwrap(),
        tokenizer_json(97)
    );
}

/// Every `albert-export` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_export_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-export",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-export")),
    );
}

/// Every `albert-convert` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_convert_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-convert",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-convert")),
    );
}
