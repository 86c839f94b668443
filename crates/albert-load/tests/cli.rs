//! `albert-load` as a user runs it: against a live `albert-serve` (the workspace's own binary,
//! built beside this test) on a tiny export, bounded to a second per level.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../../tests/support/docs_commands.rs"]
mod docs_commands;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use albert_onnx::export::Task;

/// `albert-serve` from the same target directory as this test (`cargo nextest run --workspace`
/// and `make test` build every binary first).
fn albert_serve() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("albert-serve");
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p albert-serve` (or the whole workspace's tests)",
        path.display()
    );
    path
}

#[test]
fn a_bounded_run_reports_every_level_and_charts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, 31).1;
    let mut server = Command::new(albert_serve())
        .arg(&dir)
        .args(["--host", "127.0.0.1", "--port", "0", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    let out_dir = tmp.path().join("load");
    let run = Command::new(env!("CARGO_BIN_EXE_albert-load"))
        .args([
            "run",
            &url,
            "--concurrency",
            "1,4",
            "--seconds",
            "1",
            "--lines",
            "50",
        ])
        .arg("--offline")
        .arg(&dir)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("efficiency at the highest concurrency"),
        "{stdout}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("albert-serve.json")).unwrap()).unwrap();
    let levels = report["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    for (level, concurrency) in levels.iter().zip([1, 4]) {
        assert_eq!(level["concurrency"], concurrency);
        assert_eq!(level["errors"], 0, "{level}");
        assert!(level["ok"].as_u64().unwrap() > 0);
        for key in [
            "requests_per_second",
            "tokens_per_second",
            "p50_ms",
            "p99_ms",
        ] {
            let v = level[key].as_f64().unwrap();
            assert!(v.is_finite() && v > 0.0, "{key} = {v}");
        }
        assert!(level["p50_ms"].as_f64() <= level["p99_ms"].as_f64());
    }
    assert!(report["offline"]["texts_per_second"].as_f64().unwrap() > 0.0);
    assert!(report["efficiency"].as_f64().unwrap() > 0.0);
    assert!(report["overhead_ms"].as_f64().unwrap().is_finite());

    let chart = tmp.path().join("chart.svg");
    let drawn = Command::new(env!("CARGO_BIN_EXE_albert-load"))
        .arg("chart")
        .arg(out_dir.join("albert-serve.json"))
        .arg("-o")
        .arg(&chart)
        .output()
        .unwrap();
    assert!(
        drawn.status.success(),
        "{}",
        String::from_utf8_lossy(&drawn.stderr)
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("albert-serve"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

/// Every `albert-load` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_load_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-load",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-load")),
    );
}
