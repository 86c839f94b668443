//! `albert-train evaluate`: held-out MLM, SOP and NSP accuracy (own head and linear probe).

use std::path::PathBuf;

use albert_train::DeviceChoice;
use anyhow::{Context, Result};
use clap::Args;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

#[derive(Args)]
pub(crate) struct EvaluateArgs {
    /// A pretrained checkpoint with its tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// Held-out text: one sentence per line, a blank line between documents.
    #[arg(long, required = true, num_args = 1..)]
    eval: Vec<PathBuf>,
    /// Text the SOP and NSP probes are trained on (e.g. the training corpus).
    #[arg(long, required = true, num_args = 1..)]
    probe_train: Vec<PathBuf>,
    #[arg(long, default_value_t = 128)]
    max_seq_length: usize,
    /// Held-out examples per measurement (at most).
    #[arg(long, default_value_t = 2000)]
    examples: usize,
    /// Probe-training examples per task (at most).
    #[arg(long, default_value_t = 4000)]
    probe_examples: usize,
    /// Full-batch Adam steps of each probe.
    #[arg(long, default_value_t = 300)]
    probe_steps: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn evaluate_command(args: &EvaluateArgs) -> Result<()> {
    use albert_train::evaluate::{EvaluateOptions, evaluate};
    let options = EvaluateOptions {
        model: args.model.clone(),
        eval_files: args.eval.clone(),
        probe_train_files: args.probe_train.clone(),
        max_seq_length: args.max_seq_length,
        examples: args.examples,
        probe_examples: args.probe_examples,
        probe_steps: args.probe_steps,
        batch_size: args.batch_size,
        seed: args.seed,
        device: args.device.resolve()?,
    };
    let report = evaluate(&options)?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "task",
        "own head",
        "other task's head",
        "linear probe",
        "chance",
        "held-out examples",
    ]);
    let figure = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    table.add_row(vec![
        Cell::new("MLM"),
        Cell::new(figure(report.mlm_accuracy)).set_alignment(CellAlignment::Right),
        Cell::new("-"),
        Cell::new("-"),
        Cell::new("-"),
        Cell::new(format!("{} predictions", report.mlm_predictions)),
    ]);
    for (name, s) in [("SOP", report.sop), ("NSP", report.nsp)] {
        table.add_row(vec![
            Cell::new(name),
            Cell::new(figure(s.head)).set_alignment(CellAlignment::Right),
            Cell::new(figure(s.other_head)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.4}", s.probe)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.4}", s.chance)).set_alignment(CellAlignment::Right),
            Cell::new(s.held_out_examples).set_alignment(CellAlignment::Right),
        ]);
    }
    println!(
        "{} (trained objective: {})",
        args.model.display(),
        report.trained_objective
    );
    println!("{table}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        albert_core::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
