//! `albert-bench`: an ALBERT export (or checkpoint) across engines and providers, variants made
//! with the converter, batch sizes, sequence lengths and threads. Per cell: load time, latency
//! percentiles over a time budget after warm-up, throughput, peak memory, achieved GFLOP/s (from
//! the config's FLOP count) against the machine's measured GEMM rate, and drift against float32.
//! Providers that cannot run here are listed as skipped with the reason.

mod calibration;
mod cell;
mod cli;
mod compare;
mod flops;
mod inputs;
mod matrix;
mod models;
mod report;
mod row;

use std::path::PathBuf;

use albert_core::AlbertConfig;
use albert_core::checkpoint::{CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};
use albert_onnx::export::Task;
use albert_onnx::proto;
use albert_runtime::ModelOutputs;
use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use crate::calibration::gemm_gflops;
use crate::cli::{Cli, ProviderArg, VariantArg};
use crate::matrix::{CellKey, Matrix};
use crate::models::{export_of, export_task, load, make_variant};
use crate::row::{GemmRate, ModelShape, Results, Row};

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.compare {
        compare::check_python(&cli)?;
    }
    std::fs::create_dir_all(&cli.report)
        .with_context(|| format!("creating {}", cli.report.display()))?;
    // First, so that every report says which machine it came from (int8 accuracy in ONNX Runtime
    // depends on VNNI: albert_core::cpu).
    println!("{}", albert_core::cpu::cpu());
    let export = export_of(&cli.model, &cli.report)?;
    let config = AlbertConfig::from_file(&export.join(CONFIG_FILE))?;
    let tokenizer_path = export.join(TOKENIZER_FILE);
    if !tokenizer_path.exists() {
        bail!(
            "{}: the benchmark feeds real text and needs the model's tokenizer",
            tokenizer_path.display()
        );
    }
    let tokenizer = albert_core::tokenizer::load(&tokenizer_path)?;
    let special = |t: &str| tokenizer.token_to_id(t).map(i64::from);
    let (cls, sep) = (
        special(albert_core::tokenizer::CLS).unwrap_or(2),
        special(albert_core::tokenizer::SEP).unwrap_or(3),
    );
    let stream = match &cli.text {
        Some(path) => {
            let content = std::fs::read_to_string(path)
                .with_context(|| format!("reading --text {}", path.display()))?;
            inputs::token_stream(&tokenizer, &content, &format!("--text {}", path.display()))?
        }
        None => inputs::token_stream(
            &tokenizer,
            inputs::HELDOUT_SAMPLE,
            "the held-out corpus sample",
        )?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cli.threads.clone().unwrap_or_else(|| vec![cores]);

    // Variants, made once with the converter.
    let mut variants: Vec<(VariantArg, Result<PathBuf, String>)> = Vec::new();
    for &v in &cli.variants {
        variants.push((
            v,
            make_variant(&export, v, &cli.report).map_err(|e| format!("{e:#}")),
        ));
    }
    let task = export_task(&proto::read_model(&export.join(MODEL_FILE))?, &config)?;
    let head = match task {
        Task::MaskedLm | Task::Pretraining => flops::Head::MaskedLm,
        _ => flops::Head::Base,
    };

    // The machine's GEMM rate per thread count (ONNX Runtime CPU).
    let mut gemm: Vec<(usize, f64)> = Vec::new();
    if cli.providers.iter().any(|p| p.ort_cpu()) {
        for &t in &threads {
            match gemm_gflops(&cli.report, t, &cli) {
                Ok(rate) => gemm.push((t, rate)),
                Err(e) => eprintln!("GEMM calibration at {t} threads failed: {e:#}"),
            }
        }
    }

    // The cells in the order of the rows: provider, variant, threads, batch, length.
    let mut keys: Vec<CellKey> = Vec::new();
    for &provider in &cli.providers {
        let thread_counts: Vec<usize> = if provider == ProviderArg::Tract {
            vec![1]
        } else {
            threads.clone()
        };
        for (variant, _) in &variants {
            for &threads in &thread_counts {
                for &batch in &cli.batch {
                    for &seq in &cli.seq {
                        keys.push(CellKey {
                            provider,
                            variant: *variant,
                            threads,
                            batch,
                            seq,
                        });
                    }
                }
            }
        }
    }
    let bar = ProgressBar::new(keys.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} cells [{elapsed} < {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // float32 reference outputs per shape (the fp32 export on ORT CPU, else tract).
    let mut references: Vec<((usize, usize), ModelOutputs)> = Vec::new();
    let reference_backend = load(ProviderArg::OrtCpu, &export.join(MODEL_FILE), cores, &cli)
        .or_else(|_| load(ProviderArg::Tract, &export.join(MODEL_FILE), 1, &cli))
        .context("loading the float32 export for the drift reference")?;
    for &batch in &cli.batch {
        for &seq in &cli.seq {
            if seq > config.max_position_embeddings {
                bail!(
                    "--seq {seq} exceeds the model's max_position_embeddings {}",
                    config.max_position_embeddings
                );
            }
            let feed = inputs::packed(&stream, cls, sep, batch, seq);
            references.push(((batch, seq), reference_backend.run(&feed)?));
        }
    }
    drop(reference_backend);

    let matrix = Matrix {
        cli: &cli,
        variants: &variants,
        stream: &stream,
        cls_sep: (cls, sep),
        references: &references,
        config: &config,
        head,
        gemm: &gemm,
    };
    let rows: Vec<Row> = if cli.interleave {
        matrix.run_interleaved(&keys, &bar)
    } else {
        keys.iter()
            .map(|&key| {
                bar.set_message(key.label());
                let row = matrix.run_alone(key);
                bar.inc(1);
                row
            })
            .collect()
    };
    bar.finish_and_clear();

    println!("{}", report::table(&rows));
    for line in report::skipped_summary(&rows) {
        println!("{line}");
    }
    if !gemm.is_empty() {
        for (t, rate) in &gemm {
            println!(
                "machine GEMM rate (ONNX Runtime CPU, 1024³ fp32 MatMul, {t} threads): {rate:.1} GFLOP/s"
            );
        }
    }
    let comparisons = if cli.compare {
        let ours: Vec<(&str, PathBuf)> = variants
            .iter()
            .filter_map(|(v, path)| Some((v.name(), path.as_ref().ok()?.clone())))
            .collect();
        let anchors = compare::run_anchors(&cli, &export.join(CONFIG_FILE), task, &ours, &threads)?;
        let ratios = compare::ratios(&rows, &anchors);
        let graph_ratios = compare::graph_ratios(&anchors);
        println!("{}", compare::table(&ratios));
        println!(
            "our graphs and torch.onnx.export's, both in ONNX Runtime Python, interleaved in one process:"
        );
        println!("{}", compare::table(&graph_ratios));
        Some((anchors, ratios, graph_ratios))
    } else {
        None
    };
    let json = serde_json::to_string_pretty(&Results {
        anchors: comparisons.as_ref().map(|c| c.0.as_slice()),
        ratios: comparisons.as_ref().map(|c| c.1.as_slice()),
        graph_ratios: comparisons.as_ref().map(|c| c.2.as_slice()),
        task: task.name(),
        interleaved: cli.interleave,
        model: &export,
        config: ModelShape::from(&config),
        cpu: albert_core::cpu::cpu().to_string(),
        gemm_gflops: gemm
            .iter()
            .map(|&(threads, gflops)| GemmRate { threads, gflops })
            .collect(),
        rows: &rows,
    })?;
    if let Some(path) = &cli.json {
        albert_core::write_atomic(path, json.as_bytes())?;
    }
    albert_core::write_atomic(&cli.report.join("results.json"), json.as_bytes())?;
    report::write(
        &cli.report,
        &rows,
        &gemm,
        comparisons
            .as_ref()
            .map(|c| (c.1.as_slice(), c.2.as_slice())),
        cli.interleave,
    )?;
    println!("report: {}", cli.report.join("report.md").display());
    Ok(())
}
