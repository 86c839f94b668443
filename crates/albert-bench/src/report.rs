//! Results for people: a terminal table, a Markdown report and SVG charts (latency and
//! throughput against batch size, one line per provider and variant).

use std::path::Path;

use anyhow::Result;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use plotters::prelude::*;

use crate::compare::Ratio;
use crate::row::Row;

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

const HEADER: [&str; 13] = [
    "provider",
    "variant",
    "batch",
    "seq",
    "threads",
    "status",
    "load s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "tokens/s",
    "GFLOP/s",
    "cos vs fp32",
];

fn cells(r: &Row) -> [String; 13] {
    let t = r.timing.as_ref();
    [
        r.provider.to_string(),
        r.variant.to_string(),
        r.batch.to_string(),
        r.seq.to_string(),
        r.threads.to_string(),
        if r.status.len() > 60 {
            format!(
                "{}…",
                &r.status[..r
                    .status
                    .char_indices()
                    .nth(59)
                    .map_or(r.status.len(), |(i, _)| i)]
            )
        } else {
            r.status.clone()
        },
        fmt(r.load_seconds, 2),
        fmt(t.map(|t| t.p50_ms), 1),
        fmt(t.map(|t| t.p90_ms), 1),
        fmt(t.map(|t| t.p99_ms), 1),
        fmt(r.tokens_per_second, 0),
        fmt(r.gflops, 1),
        fmt(r.cosine_vs_fp32, 6),
    ]
}

/// The measured cells (skipped ones are summarized by [`skipped_summary`]).
pub fn table(rows: &[Row]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(HEADER);
    for r in rows.iter().filter(|r| r.status == "ok") {
        table.add_row(cells(r).into_iter().enumerate().map(|(i, s)| {
            let cell = Cell::new(s);
            if i >= 6 || (2..=4).contains(&i) {
                cell.set_alignment(CellAlignment::Right)
            } else {
                cell
            }
        }));
    }
    table
}

/// One line per (provider, variant, reason) of skipped cells, with how many cells it covers.
pub fn skipped_summary(rows: &[Row]) -> Vec<String> {
    let mut lines: Vec<(String, usize)> = Vec::new();
    for r in rows.iter().filter(|r| r.status != "ok") {
        let line = format!("{} {}: {}", r.provider, r.variant, r.status);
        match lines.iter_mut().find(|(l, _)| *l == line) {
            Some((_, n)) => *n += 1,
            None => lines.push((line, 1)),
        }
    }
    lines
        .into_iter()
        .map(|(l, n)| format!("{l} ({n} cell{})", if n == 1 { "" } else { "s" }))
        .collect()
}

fn chart(
    path: &Path,
    rows: &[Row],
    title: &str,
    y_label: &str,
    value: impl Fn(&Row) -> Option<f64>,
) -> Result<()> {
    let ok: Vec<&Row> = rows.iter().filter(|r| r.status == "ok").collect();
    if ok.is_empty() {
        return Ok(());
    }
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &ok {
        let Some(v) = value(r) else { continue };
        let key = format!("{} {} s{} {}t", r.provider, r.variant, r.seq, r.threads);
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, points)) => points.push((r.batch as f64, v)),
            None => series.push((key, vec![(r.batch as f64, v)])),
        }
    }
    let max_x = ok.iter().map(|r| r.batch as f64).fold(1.0, f64::max);
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut ctx = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max_x * 1.05, 0.0..max_y.max(1e-9))?;
    ctx.configure_mesh()
        .x_desc("batch size")
        .y_desc(y_label)
        .draw()?;
    for (i, (name, mut points)) in series.into_iter().enumerate() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        ctx.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        ctx.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    ctx.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

fn ratio_table(md: &mut String, ratios: &[Ratio]) {
    md.push_str("| batch | seq | threads | anchor | anchor p50 ms | ours | our p50 ms | ratio |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in ratios {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {:.2} |\n",
            r.batch, r.seq, r.threads, r.anchor, r.anchor_p50_ms, r.ours, r.ours_p50_ms, r.ratio
        ));
    }
}

/// Writes `report.md`, `latency.svg` and `throughput.svg` into `dir`.
pub fn write(
    dir: &Path,
    rows: &[Row],
    gemm: &[(usize, f64)],
    ratios: Option<(&[Ratio], &[Ratio])>,
    interleaved: bool,
) -> Result<()> {
    chart(
        &dir.join("latency.svg"),
        rows,
        "p50 latency per batch",
        "p50 ms",
        |r| r.timing.as_ref().map(|t| t.p50_ms),
    )?;
    chart(
        &dir.join("throughput.svg"),
        rows,
        "throughput per batch",
        "tokens / s",
        |r| r.tokens_per_second,
    )?;
    let mut md = format!("# albert-bench report\n\n{}.\n\n", albert_core::cpu::cpu());
    if interleaved {
        md.push_str(
            "The cells of each batch size and length were timed in turns (`--interleave`), so their \
             ratios are not the drift between minutes; peak memory per cell is not measured then.\n\n",
        );
    }
    for (t, rate) in gemm {
        md.push_str(&format!("Machine GEMM rate (ONNX Runtime CPU, 1024³ fp32 MatMul, {t} threads): {rate:.1} GFLOP/s.\n\n"));
    }
    md.push_str(&format!(
        "| {} | peak RSS MB | GEMM efficiency | max-abs vs fp32 |\n",
        HEADER.join(" | ")
    ));
    md.push_str(&format!("|{}\n", " --- |".repeat(HEADER.len() + 3)));
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cells(r).join(" | "),
            fmt(r.peak_rss_mb, 0),
            fmt(r.gemm_efficiency, 2),
            r.max_abs_vs_fp32.map_or("-".into(), |v| format!("{v:.2e}"))
        ));
    }
    let skipped = skipped_summary(rows);
    if !skipped.is_empty() {
        md.push_str("\nSkipped:\n\n");
        for line in skipped {
            md.push_str(&format!("- {line}\n"));
        }
    }
    if let Some((ratios, graph_ratios)) = ratios {
        md.push_str("\nAgainst external anchors measured in the same run (ratio = ours / anchor, p50; below 1 is faster):\n\n");
        ratio_table(&mut md, ratios);
        md.push_str("\nOur graphs against torch.onnx.export's, both timed by ONNX Runtime Python in one process, interleaved (the graph alone, without our runtime and without drift between our cells and the anchors):\n\n");
        ratio_table(&mut md, graph_ratios);
    }
    md.push_str("\n![latency](latency.svg)\n\n![throughput](throughput.svg)\n");
    albert_core::write_atomic(&dir.join("report.md"), md.as_bytes())?;
    Ok(())
}
