//! `--compare`: external anchors measured in the same run by `tools/bench_anchors.py` (HF PyTorch
//! eager; ONNX Runtime's Python API on `torch.onnx.export` output as is, after its transformer
//! optimizer, and after its int8 `quantize_dynamic`), and the ratio of our best variant to each.
//! Float anchors are compared with our best float variant, int8 anchors with our best int8.
//!
//! The anchors build the HF class of the export's task, so that both sides compute the same
//! heads. Our variants' graphs are also timed in the anchors' process (`ort-python-ours-*`,
//! interleaved with the anchors): [`graph_ratios`] compares graph with graph, apart from our
//! runtime and from the machine's drift between our cells and the anchors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::{Deserialize, Serialize};

use albert_onnx::export::Task;

use crate::cli::Cli;
use crate::row::Row;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchor {
    pub anchor: String,
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub p50_ms: f64,
    pub mean_ms: f64,
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub anchor: String,
    pub anchor_p50_ms: f64,
    /// Our best cell: `provider variant`.
    pub ours: String,
    pub ours_p50_ms: f64,
    /// ours / anchor (below 1: we are faster).
    pub ratio: f64,
}

/// The anchors' Python program (tools/bench_anchors.py), built into the binary and written into
/// the report directory when it runs, so `--compare` needs no checkout of this repository.
const ANCHORS_SCRIPT: &str = include_str!("../../../tools/bench_anchors.py");

/// `--python`, else the first `.venv/bin/python` walking up from the current directory (the
/// project's venv, which tools/setup.sh makes), else `python3` from `PATH`.
fn python(cli: &Cli) -> PathBuf {
    if let Some(python) = &cli.python {
        return python.clone();
    }
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            cwd.ancestors()
                .map(|dir| dir.join(".venv/bin/python"))
                .find(|python| python.exists())
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Runs `command` (the anchors' Python, `python`); a failure names `what` and how to install the
/// anchors' packages, with Python's own message.
fn run_python(python: &Path, command: &mut Command, what: &str) -> Result<Output> {
    let out = command
        .output()
        .with_context(|| format!("running {} (--python)", python.display()))?;
    if !out.status.success() {
        bail!(
            "{what} failed with {} (it needs transformers in the venv: .venv/bin/pip install transformers==5.24.0):\n{}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Checks before any cell is measured that the anchors' Python has what they import, so that a
/// missing package fails in a second rather than after the whole matrix.
pub fn check_python(cli: &Cli) -> Result<()> {
    let python = python(cli);
    run_python(
        &python,
        Command::new(&python).args(["-c", "import torch, transformers, onnxruntime"]),
        "--compare: importing torch, transformers and onnxruntime",
    )?;
    Ok(())
}

/// The prefix of the anchors' rows that time our own graphs.
const OURS: &str = "ort-python-ours-";

/// Runs the anchors for an export of `task`, also timing `ours` (variant name, model file).
pub fn run_anchors(
    cli: &Cli,
    config: &Path,
    task: Task,
    ours: &[(&str, PathBuf)],
    threads: &[usize],
) -> Result<Vec<Anchor>> {
    let python = python(cli);
    let script = cli.report.join("bench_anchors.py");
    std::fs::write(&script, ANCHORS_SCRIPT)
        .with_context(|| format!("writing {}", script.display()))?;
    let join = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let mut anchors = Vec::new();
    for &t in threads {
        eprintln!(
            "measuring the external anchors at {t} threads ({})",
            script.display()
        );
        let out = run_python(
            &python,
            Command::new(&python)
                .arg(&script)
                .arg("--config")
                .arg(config)
                .args(["--task", task.name()])
                .args(ours.iter().flat_map(|(name, path)| {
                    ["--ours".to_string(), format!("{name}={}", path.display())]
                }))
                .args(["--batch", &join(&cli.batch), "--seq", &join(&cli.seq)])
                .args([
                    "--threads",
                    &t.to_string(),
                    "--seconds",
                    &cli.seconds.to_string(),
                ]),
            &script.display().to_string(),
        )?;
        let rows: Vec<Anchor> =
            serde_json::from_slice(&out.stdout).context("reading the anchors' JSON")?;
        anchors.extend(rows);
    }
    Ok(anchors)
}

pub fn ratios(rows: &[Row], anchors: &[Anchor]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for a in anchors.iter().filter(|a| !a.anchor.starts_with(OURS)) {
        let int8 = a.anchor.contains("int8");
        let best = rows
            .iter()
            .filter(|r| r.status == "ok" && r.batch == a.batch && r.seq == a.seq)
            .filter(|r| r.threads == a.threads || r.provider == "tract")
            .filter(|r| (r.variant == "int8") == int8)
            .filter_map(|r| r.timing.as_ref().map(|t| (r, t.p50_ms)))
            .min_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((r, p50)) = best {
            out.push(Ratio {
                batch: a.batch,
                seq: a.seq,
                threads: a.threads,
                anchor: a.anchor.clone(),
                anchor_p50_ms: a.p50_ms,
                ours: format!("{} {}", r.provider, r.variant),
                ours_p50_ms: p50,
                ratio: p50 / a.p50_ms,
            });
        }
    }
    out
}

/// Our graphs against torch's in the anchors' process: our best float graph against the faster
/// of the two float anchors, our int8 against `quantize_dynamic`'s, per shape.
pub fn graph_ratios(anchors: &[Anchor]) -> Vec<Ratio> {
    let fastest = |ours: bool, int8: bool, a: &Anchor| {
        anchors
            .iter()
            .filter(|b| (b.batch, b.seq, b.threads) == (a.batch, a.seq, a.threads))
            .filter(|b| b.anchor.starts_with(OURS) == ours && b.anchor.contains("int8") == int8)
            .filter(|b| ours || b.anchor.starts_with("ort-python-"))
            .min_by(|x, y| x.p50_ms.total_cmp(&y.p50_ms))
    };
    let mut out = Vec::new();
    for a in anchors.iter().filter(|a| a.anchor == "pytorch-eager-fp32") {
        for int8 in [false, true] {
            if let (Some(ours), Some(theirs)) = (fastest(true, int8, a), fastest(false, int8, a)) {
                out.push(Ratio {
                    batch: a.batch,
                    seq: a.seq,
                    threads: a.threads,
                    anchor: theirs.anchor.clone(),
                    anchor_p50_ms: theirs.p50_ms,
                    ours: format!("graph {}", &ours.anchor[OURS.len()..]),
                    ours_p50_ms: ours.p50_ms,
                    ratio: ours.p50_ms / theirs.p50_ms,
                });
            }
        }
    }
    out
}

pub fn table(ratios: &[Ratio]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "batch",
        "seq",
        "threads",
        "anchor",
        "anchor p50 ms",
        "our best",
        "our p50 ms",
        "ours / anchor",
    ]);
    for r in ratios {
        table.add_row([
            r.batch.to_string(),
            r.seq.to_string(),
            r.threads.to_string(),
            r.anchor.clone(),
            format!("{:.1}", r.anchor_p50_ms),
            r.ours.clone(),
            format!("{:.1}", r.ours_p50_ms),
            format!("{:.2}", r.ratio),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(name: &str, batch: usize, p50_ms: f64) -> Anchor {
        Anchor {
            anchor: name.into(),
            batch,
            seq: 128,
            threads: 2,
            p50_ms,
            mean_ms: p50_ms,
            runs: 10,
        }
    }

    #[test]
    fn graph_ratios_pair_our_fastest_graph_with_torchs_fastest_of_its_kind() {
        let anchors = vec![
            anchor("pytorch-eager-fp32", 8, 10.0),
            anchor("ort-python-fp32", 8, 8.0),
            anchor("ort-python-optimizer-fp32", 8, 6.0),
            anchor("ort-python-quantize-dynamic-int8", 8, 4.0),
            anchor("ort-python-ours-fp32", 8, 9.0),
            anchor("ort-python-ours-fused", 8, 7.5),
            anchor("ort-python-ours-int8", 8, 3.0),
        ];
        let got = graph_ratios(&anchors);
        let pairs: Vec<(&str, &str, f64)> = got
            .iter()
            .map(|r| (r.anchor.as_str(), r.ours.as_str(), r.ratio))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("ort-python-optimizer-fp32", "graph fused", 7.5 / 6.0),
                ("ort-python-quantize-dynamic-int8", "graph int8", 3.0 / 4.0),
            ]
        );
        // Our own graphs are never anchors of the runtime's ratios.
        assert!(ratios(&[], &anchors).is_empty());
    }
}
