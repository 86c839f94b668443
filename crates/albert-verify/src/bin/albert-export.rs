//! `albert-export`: an ALBERT checkpoint (ours or Hugging Face's) to a self-contained ONNX model
//! directory, optionally verified in ONNX Runtime and tract against the checkpoint.

use std::path::PathBuf;

use albert_core::Checkpoint;
use albert_onnx::export::{DEFAULT_OPSET, ExportOptions, Task, export_dir};
use albert_onnx::proto::EXTERNAL_DATA_THRESHOLD;
use albert_verify::display::{human_bytes, spinner};
use albert_verify::verify::{self, VerifyOptions};
use anyhow::{Context, Result, bail};
use clap::Parser;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

#[derive(Parser)]
#[command(
    name = "albert-export",
    version,
    about = "Export an ALBERT checkpoint to ONNX, shared weights stored once"
)]
struct Cli {
    /// Model directory in the Hugging Face layout (config.json, model.safetensors[, tokenizer.json]).
    checkpoint: PathBuf,
    /// Output directory (model.onnx, config.json, tokenizer.json; the tokenizer is loaded and its
    /// ids checked against the config's vocab_size before anything is written).
    #[arg(short, long)]
    output: PathBuf,
    /// base, masked-lm, pretraining, sequence-classification, token-classification,
    /// question-answering [default: the richest the checkpoint's heads allow].
    #[arg(long)]
    task: Option<Task>,
    /// ONNX opset (17 to 21).
    #[arg(long, default_value_t = DEFAULT_OPSET)]
    opset: i64,
    /// Run the export in ONNX Runtime and tract and compare with the checkpoint's reference outputs.
    #[arg(long)]
    verify: bool,
    /// Tolerance of --verify: an output passes when max |Δ| ≤ tolerance × max(1, max |reference|).
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
    /// Batch sizes of --verify.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 3])]
    verify_batches: Vec<usize>,
    /// Sequence lengths of --verify [default: 1, 7 and max_position_embeddings capped at 128].
    #[arg(long, value_delimiter = ',')]
    verify_lengths: Option<Vec<usize>>,
    /// libonnxruntime.so for --verify [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long)]
    ort_library: Option<PathBuf>,
    /// Initializer bytes above which weights go to model.onnx.data (ONNX external data).
    #[arg(long, default_value_t = EXTERNAL_DATA_THRESHOLD, hide = true)]
    external_data_threshold: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let options = ExportOptions {
        task: cli.task,
        opset: cli.opset,
        external_threshold: cli.external_data_threshold,
    };
    let bar = spinner(&format!("exporting {}", cli.checkpoint.display()));
    let summary = export_dir(&cli.checkpoint, &cli.output, &options);
    bar.finish_and_clear();
    let summary = summary.with_context(|| format!("exporting {}", cli.checkpoint.display()))?;

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    table.add_row([Cell::new("model"), Cell::new(summary.model_path.display())]);
    table.add_row([Cell::new("task"), Cell::new(summary.task)]);
    table.add_row([Cell::new("opset"), right(summary.opset.to_string())]);
    table.add_row([
        Cell::new("parameters"),
        right(summary.parameters.to_string()),
    ]);
    table.add_row([
        Cell::new("file size"),
        right(human_bytes(summary.file_bytes)),
    ]);
    table.add_row([
        Cell::new("bytes per parameter"),
        right(format!(
            "{:.3}",
            summary.file_bytes as f64 / summary.parameters.max(1) as f64
        )),
    ]);
    table.add_row([
        Cell::new("initializers"),
        right(summary.initializers.to_string()),
    ]);
    table.add_row([Cell::new("nodes"), right(summary.nodes.to_string())]);
    table.add_row([
        Cell::new("external data"),
        Cell::new(if summary.external_data {
            "model.onnx.data"
        } else {
            "no"
        }),
    ]);
    table.add_row([
        Cell::new("source sha256"),
        Cell::new(&summary.source_sha256),
    ]);
    println!("{table}");

    if cli.verify {
        let checkpoint = Checkpoint::read_dir(&cli.checkpoint)?;
        let mut verify_options = VerifyOptions::defaults_for(&checkpoint);
        verify_options.batches = cli.verify_batches.clone();
        if let Some(lengths) = &cli.verify_lengths {
            verify_options.lengths = lengths.clone();
        }
        verify_options.tolerance = cli.tolerance;
        verify_options.ort_library = cli.ort_library.clone();
        let bar = spinner("verifying in onnxruntime and tract against the checkpoint");
        let rows = verify::verify(
            &summary.model_path,
            &checkpoint,
            summary.task,
            &verify_options,
        );
        bar.finish_and_clear();
        let rows = rows?;
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "engine", "batch", "length", "output", "max |Δ|", "bound", "",
        ]);
        for r in &rows {
            table.add_row([
                Cell::new(r.engine.name()),
                right(r.batch.to_string()),
                right(r.length.to_string()),
                Cell::new(&r.output),
                right(format!("{:.2e}", r.max_abs_diff)),
                right(format!("{:.1e}", r.bound(cli.tolerance))),
                Cell::new(if r.passes(cli.tolerance) {
                    "ok"
                } else {
                    "FAIL"
                }),
            ]);
        }
        println!("{table}");
        if let Err(e) = verify::check(&rows, cli.tolerance) {
            bail!(
                "{e}\nthe export at {} did not verify",
                summary.model_path.display()
            );
        }
        let worst = rows.iter().map(|r| r.max_abs_diff).fold(0.0, f64::max);
        println!(
            "verified: {} comparisons, worst max-abs difference {worst:.2e}, each within {:e} × max(1, max |reference|)",
            rows.len(),
            cli.tolerance
        );
    }
    Ok(())
}
