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

/// A copy of `albert-run` in an empty directory, run from there: no venv above it or above the
/// working directory, and no ORT_DYLIB_PATH.
fn shipped_albert_run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let exe = dir.join("albert-run");
    std::fs::copy(env!("CARGO_BIN_EXE_albert-run"), &exe).unwrap();
    Command::new(&exe)
        .args(args)
        .current_dir(dir)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the copied albert-run")
}

/// ONNX Runtime is found beside a shipped executable, and where it is nowhere the error lists
/// the places tried and says how to fix it (issue #20: no path from the build machine).
#[test]
fn onnx_runtime_is_found_beside_the_executable_or_the_error_says_where_it_looked() {
    let model = std::fs::canonicalize(MODEL).unwrap();
    let model = model.to_str().unwrap();
    let bare = tempfile::tempdir().unwrap();
    let out = shipped_albert_run(bare.path(), &[model, "embed", "the model runs."]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ran without a library: {stderr}");
    assert!(
        stderr.contains("ONNX Runtime library was not found")
            && stderr.contains(&bare.path().join("libonnxruntime.so").display().to_string())
            && stderr.contains("ORT_DYLIB_PATH")
            && stderr.contains("--ort-library"),
        "{stderr}"
    );
    // tract needs no library at all.
    let out = shipped_albert_run(
        bare.path(),
        &[model, "embed", "the model runs.", "--backend", "tract"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let shipped = tempfile::tempdir().unwrap();
    let venv_library =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/onnxruntime.so");
    std::os::unix::fs::symlink(
        std::fs::canonicalize(venv_library).unwrap(),
        shipped.path().join("libonnxruntime.so"),
    )
    .unwrap();
    let out = shipped_albert_run(shipped.path(), &[model, "embed", "the model runs."]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("onnxruntime (cpu)"), "{stderr}");
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

/// A copy of the committed tiny export in a temporary directory, for a test to damage.
fn model_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny-base");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "model.onnx", "tokenizer.json"] {
        std::fs::copy(std::path::Path::new(MODEL).join(file), dir.join(file)).unwrap();
    }
    (tmp, dir)
}

/// Runs `albert-run DIR embed TEXT` on both engines and returns each one's stderr, after checking
/// that it failed without a panic.
fn refused(dir: &std::path::Path, text: &str) -> Vec<String> {
    ["ort", "tract"]
        .into_iter()
        .map(|backend| {
            let out = albert_run(&[dir.to_str().unwrap(), "embed", text, "--backend", backend]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!out.status.success(), "{backend}: {stderr}");
            assert!(!stderr.contains("panicked"), "{backend}: {stderr}");
            stderr
        })
        .collect()
}

/// A tokenizer from another model (the bundled one: 8,000 pieces) beside this model (400): its
/// ids run past the model's embedding table, which the runtime refuses naming tokenizer.json.
#[test]
fn a_tokenizer_whose_vocabulary_does_not_fit_the_config_is_refused() {
    let (_tmp, dir) = model_copy();
    let bundled = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/albert-tiny-en/tokenizer.json"
    );
    std::fs::copy(bundled, dir.join("tokenizer.json")).unwrap();
    for stderr in refused(&dir, "the sailors hauled the long ropes across the deck") {
        assert!(
            stderr.contains("tokenizer.json") && stderr.contains("vocabulary of 400"),
            "{stderr}"
        );
    }
}

#[test]
fn a_malformed_tokenizer_json_is_refused_naming_the_file() {
    let (_tmp, dir) = model_copy();
    let text = std::fs::read_to_string(dir.join("tokenizer.json")).unwrap();
    for damaged in [&text[..text.len() / 2], "{\"model\": 7}", ""] {
        std::fs::write(dir.join("tokenizer.json"), damaged).unwrap();
        for stderr in refused(&dir, "the model runs.") {
            assert!(
                stderr.contains(&dir.join("tokenizer.json").display().to_string()),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_corrupt_model_onnx_is_refused_naming_the_file() {
    let (_tmp, dir) = model_copy();
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for damaged in [&bytes[..bytes.len() / 2], &garbage[..], &[][..]] {
        std::fs::write(dir.join("model.onnx"), damaged).unwrap();
        for stderr in refused(&dir, "the model runs.") {
            assert!(
                stderr.contains(&dir.join("model.onnx").display().to_string()),
                "{stderr}"
            );
        }
    }
}
