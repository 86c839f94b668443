//! `albert-train curves`: several runs' held-out curves in one chart.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub(crate) struct CurvesArgs {
    /// A run to draw, as LABEL=PATH: a pretraining output directory (its metrics.jsonl) or a
    /// metrics.jsonl file. Repeat for each run; the legend keeps this order.
    #[arg(long = "run", required = true, value_name = "LABEL=PATH")]
    runs: Vec<String>,
    /// The SVG file to write.
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn curves_command(args: &CurvesArgs) -> Result<()> {
    use albert_train::chart::{ChartRun, write_comparison_chart};
    let mut runs = Vec::new();
    for item in &args.runs {
        let Some((label, path)) = item
            .split_once('=')
            .filter(|(l, p)| !l.is_empty() && !p.is_empty())
        else {
            bail!("--run {item:?}: expected LABEL=PATH (e.g. sop=runs/experiments/objective-sop)");
        };
        let path = PathBuf::from(path);
        let metrics = if path.is_dir() {
            path.join(albert_train::metrics_log::METRICS_FILE)
        } else {
            path
        };
        if !metrics.is_file() {
            bail!(
                "--run {item:?}: {} not found (expected a run directory with metrics.jsonl, or the file)",
                metrics.display()
            );
        }
        runs.push(ChartRun {
            label: label.to_string(),
            metrics,
        });
    }
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {} for --output", parent.display()))?;
    }
    write_comparison_chart(&runs, &args.output).map_err(anyhow::Error::msg)?;
    println!("wrote {}", args.output.display());
    Ok(())
}
