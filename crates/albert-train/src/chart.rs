//! Training curves as an SVG chart (plotters): loss, and MLM and SOP/NSP accuracy (or a fine-tuned
//! classifier's validation accuracy), for the training steps and the held-out evaluations, read
//! back from `metrics.jsonl`; and the held-out curves of several runs side by side (the paper's
//! tables at our scale: which run learns faster, and where each leaves the MLM plateau).

use std::path::Path;

use plotters::prelude::*;

type Series = Vec<(f64, f64)>;

fn read(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn series(lines: &[serde_json::Value], split: &str, key: &str) -> Series {
    lines
        .iter()
        .filter(|l| l["split"] == split)
        .filter_map(|l| Some((l["step"].as_f64()?, l[key].as_f64()?)))
        .collect()
}

/// Smooths a noisy training series with a trailing moving average over `window` points.
fn smooth(points: &Series, window: usize) -> Series {
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, _))| {
            let from = i.saturating_sub(window.saturating_sub(1));
            let slice = &points[from..=i];
            (
                x,
                slice.iter().map(|p| p.1).sum::<f64>() / slice.len() as f64,
            )
        })
        .collect()
}

fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    curves: &[(&str, Series, RGBColor)],
    y_range: Option<(f64, f64)>,
) -> Result<(), String> {
    let all: Vec<&(f64, f64)> = curves.iter().flat_map(|c| c.1.iter()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let (y_min, y_max) = y_range.unwrap_or_else(|| {
        let lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = all.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        (lo.min(0.0), hi * 1.05 + 1e-9)
    });
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..x_max, y_min..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .draw()
        .map_err(|e| e.to_string())?;
    for (label, points, color) in curves {
        if points.is_empty() {
            continue;
        }
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes an SVG drawn by `draw` to `out` through a temporary file beside it
/// ([`albert_core::fsutil::write_atomic_with`]), so that a reader (or a browser refreshing the
/// chart of a running job) never sees half a chart.
fn write_atomically(
    out: &Path,
    draw: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    albert_core::fsutil::write_atomic_with(out, |tmp| {
        draw(tmp).map_err(|e| albert_core::AlbertError::Io {
            path: tmp.to_path_buf(),
            source: std::io::Error::other(e),
        })
    })
    .map_err(|e| match e {
        albert_core::AlbertError::Io { source, .. } => format!("{}: {source}", out.display()),
        other => other.to_string(),
    })
}

/// Draws `metrics` (JSON lines) into an SVG at `out`.
pub fn write_training_chart(metrics: &Path, out: &Path) -> Result<(), String> {
    let lines = read(metrics)?;
    write_atomically(out, |tmp| draw_training_chart(&lines, tmp))
}

fn draw_training_chart(lines: &[serde_json::Value], out: &Path) -> Result<(), String> {
    let window = 20;
    let root = SVGBackend::new(out, (1100, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(550);
    panel(
        &left,
        "loss",
        &[
            (
                "train (moving average)",
                smooth(&series(lines, "train", "loss"), window),
                BLUE,
            ),
            ("held-out", series(lines, "eval", "loss"), RED),
        ],
        None,
    )?;
    panel(
        &right,
        "accuracy, F1",
        &[
            (
                "MLM train",
                smooth(&series(lines, "train", "mlm_accuracy"), window),
                BLUE,
            ),
            ("MLM held-out", series(lines, "eval", "mlm_accuracy"), RED),
            (
                "SOP/NSP train",
                smooth(&series(lines, "train", "sentence_accuracy"), window),
                GREEN,
            ),
            (
                "SOP/NSP held-out",
                series(lines, "eval", "sentence_accuracy"),
                MAGENTA,
            ),
            // Fine-tuning writes its task's validation metrics.
            (
                "validation accuracy",
                series(lines, "eval", "accuracy"),
                BLACK,
            ),
            ("validation F1", series(lines, "eval", "f1"), CYAN),
            (
                "validation exact match",
                series(lines, "eval", "exact_match"),
                RGBColor(230, 140, 0),
            ),
        ],
        Some((0.0, 1.0)),
    )?;
    root.present().map_err(|e| e.to_string())
}

/// Colours for the runs of a comparison chart, in order (then repeated).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(0, 0, 0),
];

/// One run of a comparison chart: its label and its `metrics.jsonl`.
pub struct ChartRun {
    pub label: String,
    pub metrics: std::path::PathBuf,
}

/// Draws the held-out evaluations of `runs` into one SVG at `out`: MLM accuracy, MLM loss and
/// sentence-task (SOP/NSP) accuracy against the step, a line per run. A run without a sentence
/// objective has no sentence curve (its loss is logged as 0). Errors name the metrics file that
/// cannot be read, or say that no run has a held-out evaluation yet.
pub fn write_comparison_chart(runs: &[ChartRun], out: &Path) -> Result<(), String> {
    let mut mlm_accuracy = Vec::new();
    let mut mlm_loss = Vec::new();
    let mut sentence = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let lines = read(&run.metrics)?;
        let color = PALETTE[i % PALETTE.len()];
        let label = run.label.as_str();
        mlm_accuracy.push((label, series(&lines, "eval", "mlm_accuracy"), color));
        mlm_loss.push((label, series(&lines, "eval", "mlm_loss"), color));
        let trained_sentence = series(&lines, "eval", "sentence_loss")
            .iter()
            .any(|p| p.1 != 0.0);
        if trained_sentence {
            sentence.push((label, series(&lines, "eval", "sentence_accuracy"), color));
        }
    }
    if mlm_accuracy.iter().all(|c| c.1.is_empty()) {
        let files: Vec<String> = runs
            .iter()
            .map(|r| r.metrics.display().to_string())
            .collect();
        return Err(format!(
            "no held-out evaluation (split \"eval\") in {} yet",
            files.join(", ")
        ));
    }
    write_atomically(out, |tmp| {
        let root = SVGBackend::new(tmp, (1500, 450)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let panels = root.split_evenly((1, 3));
        panel(&panels[0], "held-out MLM accuracy", &mlm_accuracy, None)?;
        panel(&panels[1], "held-out MLM loss", &mlm_loss, None)?;
        panel(
            &panels[2],
            "held-out SOP/NSP accuracy (own head)",
            &sentence,
            Some((0.0, 1.0)),
        )?;
        root.present().map_err(|e| e.to_string())
    })
}
