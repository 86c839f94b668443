//! The `albert-train` binary as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::process::Command;

fn albert_train(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_albert-train"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run albert-train")
}

#[test]
fn params_prints_breakdown_total_and_paper_figure() {
    let out = albert_train(&["params", "--preset", "base", "--sharing", "ffn"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("37,686,528"), "{text}");
    assert!(text.contains("38M (Table 3)"), "{text}");
    assert!(text.contains("embedding mapping"), "{text}");

    let out = albert_train(&["params", "--preset", "large", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["total"], 17_683_968);
    assert_eq!(json["paper"], "18M (Table 1)");
}

#[test]
fn params_reads_a_config_file() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/hf/pretraining_groups/config.json"
    );
    let out = albert_train(&[
        "params",
        "--config",
        config,
        "--head",
        "pretraining",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["total"], 21_251); // HF num_parameters() of that fixture
}

#[test]
fn init_writes_a_loadable_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/hf/pretraining_inner/config.json"
    );
    let out = albert_train(&[
        "init",
        "--config",
        config,
        "--sharing",
        "attention",
        "--head",
        "pretraining",
        "--device",
        "cpu",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checkpoint = albert_core::Checkpoint::read_dir(&dir).unwrap();
    assert_eq!(checkpoint.config.sharing, albert_core::Sharing::Attention);
    assert!(
        checkpoint
            .tensors
            .contains_key("albert.encoder.unshared_layers.2.albert_layers.1.ffn.weight")
    );
}

#[test]
fn user_errors_are_messages_not_panics() {
    let out = albert_train(&["params", "--config", "/nonexistent/config.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/config.json") && !err.contains("panicked"),
        "{err}"
    );

    let out = albert_train(&["params", "--sharing", "half"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("all, attention, ffn, none"), "{err}");

    if !tch::Cuda::is_available() {
        let tmp = tempfile::tempdir().unwrap();
        let out = albert_train(&[
            "init",
            "--device",
            "cuda",
            "-o",
            tmp.path().to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no CUDA device") && !err.contains("panicked"),
            "{err}"
        );
    }
}
