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
