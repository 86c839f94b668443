//! `albert-bench` as a user runs it, on the committed tiny export (real text from the corpus
//! sample): every requested cell is in the JSON, measured or skipped with a reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../../tests/support/docs_commands.rs"]
mod docs_commands;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The committed tiny export (random weights, a tokenizer beside it).
fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/runtime/tiny-base")
}

/// Runs `albert-bench` on the tiny export with the common small-matrix arguments and `extra`;
/// returns its stdout and the JSON rows.
fn bench(extra: &[&str]) -> (String, Vec<serde_json::Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("report");
    let json = tmp.path().join("rows.json");
    let run = Command::new(env!("CARGO_BIN_EXE_albert-bench"))
        .arg(tiny_model())
        .args(["--seq", "16", "--threads", "1", "--warmup", "1"])
        .args(extra)
        .arg("--report")
        .arg(&report)
        .arg("--json")
        .arg(&json)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in ["report.md", "results.json", "latency.svg", "throughput.svg"] {
        assert!(report.join(file).exists(), "{file} missing");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let interleaved = extra.contains(&"--interleave");
    assert_eq!(results["interleaved"], interleaved);
    let report_md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert_eq!(report_md.contains("timed in turns"), interleaved);
    // The machine is in every report: int8 accuracy in ONNX Runtime depends on its VNNI.
    let cpu = albert_core::cpu::cpu().to_string();
    assert_eq!(results["cpu"], cpu.as_str());
    assert!(
        report_md.contains(&cpu) && stdout.contains(&cpu),
        "{stdout}"
    );
    (stdout, results["rows"].as_array().unwrap().clone())
}

/// A measured row is consistent: ordered percentiles, at least the minimum runs, tokens/s from
/// the p50, and drift against the float32 export within the variant's bounds (lossless ≤ 1e-4,
/// int8 close in cosine). A row of `ort-cuda` is skipped with its reason (no GPU in CI).
fn check_row(row: &serde_json::Value) {
    let (provider, variant) = (
        row["provider"].as_str().unwrap(),
        row["variant"].as_str().unwrap(),
    );
    let status = row["status"].as_str().unwrap();
    if provider == "ort-cuda" {
        // No GPU on the CI machine: skipped with the reason (int8 is CPU-only anyway).
        assert!(status.starts_with("skipped: "), "{row}");
        return;
    }
    assert_eq!(status, "ok", "{row}");
    let (p50, p90, p99) = (
        row["p50_ms"].as_f64().unwrap(),
        row["p90_ms"].as_f64().unwrap(),
        row["p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{row}");
    assert!(row["runs"].as_u64().unwrap() >= 5);
    let tokens = row["tokens_per_second"].as_f64().unwrap();
    let batch = row["batch"].as_f64().unwrap();
    assert!(
        (tokens - batch * 16.0 * 1e3 / p50).abs() <= 1e-6 * tokens,
        "{row}"
    );
    let cosine = row["cosine_vs_fp32"].as_f64().unwrap();
    match variant {
        "int8" => assert!(cosine >= 0.999, "{row}"),
        _ => assert!(row["max_abs_vs_fp32"].as_f64().unwrap() <= 1e-4, "{row}"),
    }
}

#[test]
fn measures_every_cell_or_says_why_not() {
    let (stdout, rows) = bench(&[
        "--providers",
        "tract,ort-cpu,ort-cpu-keep-denormals,ort-cuda",
        "--variants",
        "fp32,folded,int8",
        "--batch",
        "1,2",
        "--seconds",
        "0.05",
    ]);
    // 4 providers × 3 variants × 2 batch sizes × 1 length × 1 thread count.
    assert_eq!(rows.len(), 24);
    for row in &rows {
        check_row(row);
        if row["status"] == "ok" {
            assert!(row["peak_rss_mb"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    assert!(stdout.contains("ort-cuda fp32: skipped"), "{stdout}");
}

/// `--interleave` times the cells of each shape in turns: the same rows, in the same order
/// (provider, variant, batch), each measured, without per-cell peak memory.
#[test]
fn interleaved_cells_are_the_same_rows() {
    let (_, rows) = bench(&[
        "--interleave",
        "--providers",
        "tract,ort-cpu,ort-cuda",
        "--variants",
        "fp32,int8",
        "--batch",
        "1,2",
        "--seconds",
        "0.1",
    ]);
    let mut expected = Vec::new();
    for provider in ["tract", "ort-cpu", "ort-cuda"] {
        for variant in ["fp32", "int8"] {
            for batch in [1, 2] {
                expected.push(format!("{provider} {variant} {batch}"));
            }
        }
    }
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["provider"].as_str().unwrap(),
                r["variant"].as_str().unwrap(),
                r["batch"]
            )
        })
        .collect();
    assert_eq!(got, expected);
    for row in &rows {
        check_row(row);
        assert!(row["peak_rss_mb"].is_null(), "{row}");
    }
}

#[test]
fn compare_without_the_anchors_packages_fails_before_measuring() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_model();
    let report = tmp.path().join("report");
    // `false` stands for a Python without transformers: the import check fails.
    let run = Command::new(env!("CARGO_BIN_EXE_albert-bench"))
        .arg(&model)
        .args(["--compare", "--python", "false", "--report"])
        .arg(&report)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("--compare") && stderr.contains("transformers"),
        "{stderr}"
    );
    assert!(!report.join("results.json").exists(), "nothing measured");
    // Failed before any work: the report directory (where variants are made) was never created.
    // (Checked after the matrix, as before the pre-check, it would hold the exports.)
    assert!(!report.exists(), "failed before exporting or measuring");
}

/// Every `albert-bench` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_bench_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-bench",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-bench")),
    );
}
