//! The load report: a table, `LABEL.json`, and a chart of several runs side by side.

use std::path::Path;

use anyhow::{Context, Result};
use comfy_table::Table;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::generate::Level;
use crate::offline::Offline;

/// One run of the load generator against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// What was measured, e.g. `albert-serve` or `albert-serve (batching off)`.
    pub label: String,
    /// The server's address.
    pub url: String,
    /// The route.
    pub route: crate::generate::Route,
    /// Texts in the rotation.
    pub texts: usize,
    /// The machine's CPU model.
    pub cpu: String,
    /// Each concurrency level.
    pub levels: Vec<Level>,
    /// The runtime alone on the same texts, when measured.
    pub offline: Option<Offline>,
    /// Throughput at the highest concurrency ÷ the runtime's offline throughput.
    pub efficiency: Option<f64>,
    /// p50 at concurrency 1 minus the runtime's latency for one text alone, in ms.
    pub overhead_ms: Option<f64>,
}

impl Run {
    /// Fills in the ratios against the offline measurement.
    pub fn with_ratios(mut self) -> Self {
        if let Some(offline) = &self.offline {
            self.efficiency = self
                .levels
                .iter()
                .max_by_key(|l| l.concurrency)
                .map(|l| l.requests_per_second / offline.texts_per_second);
            self.overhead_ms = self
                .levels
                .iter()
                .find(|l| l.concurrency == 1)
                .map(|l| l.p50_ms - offline.single_p50_ms);
        }
        self
    }
}

fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".into(),
    }
}

/// The levels of a run as a table.
pub fn table(run: &Run) -> Table {
    let mut table = Table::new();
    table.set_header([
        "concurrency",
        "requests",
        "errors",
        "req/s",
        "tokens/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "client CPU s",
    ]);
    for l in &run.levels {
        table.add_row([
            l.concurrency.to_string(),
            l.requests.to_string(),
            l.errors.to_string(),
            num(Some(l.requests_per_second), 1),
            num(l.tokens_per_second, 0),
            num(Some(l.p50_ms), 2),
            num(Some(l.p90_ms), 2),
            num(Some(l.p99_ms), 2),
            num(Some(l.client_cpu_seconds), 2),
        ]);
    }
    table
}

/// Writes `dir/LABEL.json` (the label made file-safe).
pub fn write_json(run: &Run, dir: &Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name: String = run
        .label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.json"));
    albert_core::write_atomic(&path, &serde_json::to_vec_pretty(run)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads runs written by [`write_json`].
pub fn read_runs(paths: &[std::path::PathBuf]) -> Result<Vec<Run>> {
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a load report", p.display()))
        })
        .collect()
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Requests/s and p99 latency against concurrency, one line per run.
pub fn chart(runs: &[Run], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(500);
    let max_c = runs
        .iter()
        .flat_map(|r| r.levels.iter().map(|l| l.concurrency))
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    for (area, title, value) in [
        (
            &left,
            "successful requests/s",
            (|l: &Level| l.requests_per_second) as fn(&Level) -> f64,
        ),
        (&right, "p99 latency (ms)", |l: &Level| l.p99_ms),
    ] {
        let top = runs
            .iter()
            .flat_map(|r| r.levels.iter().map(value))
            .filter(|v| v.is_finite())
            .fold(1e-9, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((1f64..max_c).log_scale(), 0f64..top)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("concurrent clients")
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, run) in runs.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64)> = run
                .levels
                .iter()
                .map(|l| (l.concurrency as f64, value(l)))
                .filter(|p| p.1.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(run.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
