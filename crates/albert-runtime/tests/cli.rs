//! `albert-run` as a user runs it, on the committed tiny export (tools/make_runtime_fixture.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../../tests/support/docs_commands.rs"]
mod docs_commands;

use std::process::Command;

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/runtime/tiny-base"
);

fn albert_run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_albert-run"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run albert-run")
}

#[test]
fn embed_json_on_both_backends() {
    let mut results = Vec::new();
    for backend in ["ort", "tract"] {
        let out = albert_run(&[
            MODEL,
            "embed",
            "the model runs.",
            "a longer sentence about the model.",
            "--json",
            "--normalize",
            "--backend",
            backend,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let embeddings = json["embeddings"].as_array().unwrap();
        assert_eq!(embeddings.len(), 2);
        assert_eq!(embeddings[0].as_array().unwrap().len(), 32);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(if backend == "ort" {
                "onnxruntime (cpu)"
            } else {
                "tract (cpu)"
            }),
            "{stderr}"
        );
        results.push(embeddings.clone());
    }
    for (a, b) in results[0].iter().zip(&results[1]) {
        for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
            assert!((x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-4);
        }
    }
}

#[test]
fn errors_are_messages() {
    let out = albert_run(&[MODEL, "fill-mask", "the [MASK] runs."]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--task masked-lm") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let out = albert_run(&[MODEL, "answer", "only one text"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("a question and a context"),
        "{stderr}"
    );

    let out = albert_run(&["/nonexistent", "embed", "x"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model.onnx is missing"), "{stderr}");

    let out = albert_run(&[MODEL, "embed", "x", "--provider", "cuda"]);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cuda:0 is unavailable"), "{stderr}");
        let out = albert_run(&[MODEL, "embed", "x", "--provider", "cuda", "--fallback"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("running on onnxruntime (cpu)"));
    }
}

/// Every `albert-run` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_run_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-run",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-run")),
    );
}
