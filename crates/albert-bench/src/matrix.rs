//! The cells of a run (provider × variant × threads × batch × length) and how they are timed:
//! one after another, each with its peak memory, or `--interleave`d in turns.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use albert_core::AlbertConfig;
use albert_core::compare::Drift;
use albert_runtime::{Backend, ModelInputs, ModelOutputs};
use indicatif::ProgressBar;

use crate::cli::{Cli, ProviderArg, VariantArg};
use crate::models::load;
use crate::row::Row;
use crate::{cell, flops, inputs};

/// Drift of the first output against the float32 reference (NaN, an infinity or another shape
/// is an `albert_core::compare::Fault`: infinite max-abs, and the row says why).
fn drift(reference: &ModelOutputs, got: &ModelOutputs) -> Option<Drift> {
    let (name, want) = reference.iter().next()?;
    Some(albert_core::compare::drift(
        want.view().ok()?,
        got.get(name)?.view().ok()?,
    ))
}

/// Where a cell sits in the matrix.
#[derive(Debug, Clone, Copy)]
pub struct CellKey {
    pub provider: ProviderArg,
    pub variant: VariantArg,
    pub threads: usize,
    pub batch: usize,
    pub seq: usize,
}

impl CellKey {
    pub fn label(self) -> String {
        format!(
            "{} {} b{} s{} {}t",
            self.provider.name(),
            self.variant.name(),
            self.batch,
            self.seq,
            self.threads
        )
    }
}

/// A cell ready to be timed: its backend loaded, its inputs packed.
pub struct Prepared {
    backend: Box<dyn Backend>,
    load_seconds: f64,
    feed: ModelInputs,
    path: PathBuf,
}

/// What every cell of one benchmark run shares.
pub struct Matrix<'a> {
    pub cli: &'a Cli,
    pub variants: &'a [(VariantArg, Result<PathBuf, String>)],
    pub stream: &'a [i64],
    pub cls_sep: (i64, i64),
    pub references: &'a [((usize, usize), ModelOutputs)],
    pub config: &'a AlbertConfig,
    pub head: flops::Head,
    pub gemm: &'a [(usize, f64)],
}

impl Matrix<'_> {
    fn skipped(&self, key: CellKey, reason: String) -> Row {
        Row::skipped(
            key.provider,
            key.variant,
            key.batch,
            key.seq,
            key.threads,
            reason,
        )
    }

    /// Loads the cell's variant on its provider (timed), or says why it cannot run.
    fn prepare(&self, key: CellKey) -> Result<Prepared, String> {
        let path = match self.variants.iter().find(|(v, _)| *v == key.variant) {
            Some((_, Ok(path))) => path.clone(),
            Some((_, Err(e))) => return Err(format!("the variant could not be made: {e}")),
            None => return Err("the variant was not made".into()),
        };
        if key.provider.gpu() && key.variant == VariantArg::Int8 {
            return Err("DynamicQuantizeLinear + MatMulInteger run on the CPU only".into());
        }
        let start = Instant::now();
        let backend =
            load(key.provider, &path, key.threads, self.cli).map_err(|e| format!("{e:#}"))?;
        let (cls, sep) = self.cls_sep;
        Ok(Prepared {
            backend,
            load_seconds: start.elapsed().as_secs_f64(),
            feed: inputs::packed(self.stream, cls, sep, key.batch, key.seq),
            path,
        })
    }

    /// The row of a timed cell: throughput, GFLOP/s, drift against the float32 reference.
    fn finish(
        &self,
        key: CellKey,
        cell: &Prepared,
        timing: cell::Timing,
        outputs: &ModelOutputs,
        peak_rss_mb: Option<f64>,
    ) -> Row {
        let seconds = timing.p50_ms / 1e3;
        let flops = flops::forward_flops(self.config, self.head, key.batch, key.seq);
        let gflops = flops / seconds / 1e9;
        let gemm_rate = self
            .gemm
            .iter()
            .find(|(t, _)| *t == key.threads)
            .map(|(_, r)| *r);
        let drift = self
            .references
            .iter()
            .find(|(shape, _)| *shape == (key.batch, key.seq))
            .and_then(|(_, reference)| drift(reference, outputs));
        Row {
            provider: key.provider.name(),
            variant: key.variant.name(),
            batch: key.batch,
            seq: key.seq,
            threads: key.threads,
            status: "ok".into(),
            load_seconds: Some(cell.load_seconds),
            sequences_per_second: Some(key.batch as f64 / seconds),
            tokens_per_second: Some((key.batch * key.seq) as f64 / seconds),
            peak_rss_mb,
            gflops: Some(gflops),
            gemm_efficiency: gemm_rate
                .filter(|_| key.provider.ort_cpu())
                .map(|r| gflops / r),
            max_abs_vs_fp32: drift.as_ref().map(|d| d.max_abs),
            cosine_vs_fp32: drift.as_ref().map(|d| d.cosine),
            drift_fault: drift.and_then(|d| d.fault).map(|f| f.to_string()),
            model_bytes: std::fs::metadata(&cell.path).ok().map(|m| m.len()),
            timing: Some(timing),
        }
    }

    /// One cell on its own: loaded, warmed up, timed for `--seconds`, with its peak memory (the
    /// process peak is reset before it loads).
    pub fn run_alone(&self, key: CellKey) -> Row {
        let reset = cell::reset_peak_rss();
        let prepared = match self.prepare(key) {
            Ok(p) => p,
            Err(reason) => return self.skipped(key, reason),
        };
        // One cell taking turns alone: a single turn of the whole budget (more while it has
        // fewer than --min-runs runs).
        let budget = Duration::from_secs_f64(self.cli.seconds);
        let cells = [(prepared.backend.as_ref(), &prepared.feed)];
        let result =
            cell::time_interleaved(&cells, self.cli.warmup, self.cli.min_runs, budget, budget)
                .pop()
                .unwrap_or_else(|| Err(anyhow::anyhow!("no timing")));
        match result {
            Ok((timing, outputs)) => {
                let rss = if reset { cell::peak_rss_mb() } else { None };
                self.finish(key, &prepared, timing, &outputs, rss)
            }
            Err(e) => self.skipped(key, format!("run failed: {e:#}")),
        }
    }

    /// `--interleave`: the cells of each batch size and length are loaded together and timed
    /// in turns (`cell::time_interleaved`), so that their ratios are not the drift between
    /// minutes. Peak memory is not measured then (all of a shape's cells are resident at once).
    /// Rows come back in the order of `keys`.
    pub fn run_interleaved(&self, keys: &[CellKey], bar: &ProgressBar) -> Vec<Row> {
        let mut rows: Vec<Option<Row>> = vec![None; keys.len()];
        let mut shapes: Vec<(usize, usize)> = Vec::new();
        for key in keys {
            if !shapes.contains(&(key.batch, key.seq)) {
                shapes.push((key.batch, key.seq));
            }
        }
        for (batch, seq) in shapes {
            let mut ready: Vec<(usize, Prepared)> = Vec::new();
            for (i, &key) in keys.iter().enumerate() {
                if (key.batch, key.seq) != (batch, seq) {
                    continue;
                }
                match self.prepare(key) {
                    Ok(p) => ready.push((i, p)),
                    Err(reason) => {
                        rows[i] = Some(self.skipped(key, reason));
                        bar.inc(1);
                    }
                }
            }
            bar.set_message(format!("b{batch} s{seq}: {} cells in turns", ready.len()));
            let cells: Vec<(&dyn Backend, &ModelInputs)> = ready
                .iter()
                .map(|(_, p)| (p.backend.as_ref(), &p.feed))
                .collect();
            let budget = Duration::from_secs_f64(self.cli.seconds);
            let results = cell::time_interleaved(
                &cells,
                self.cli.warmup,
                self.cli.min_runs,
                budget,
                budget.min(Duration::from_millis(250)),
            );
            for ((i, prepared), result) in ready.iter().zip(results) {
                rows[*i] = Some(match result {
                    Ok((timing, outputs)) => {
                        self.finish(keys[*i], prepared, timing, &outputs, None)
                    }
                    Err(e) => self.skipped(keys[*i], format!("run failed: {e:#}")),
                });
                bar.inc(1);
            }
        }
        rows.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NaN output is never close to the float32 reference: the row's drift fails both the
    /// lossless bound and the int8 cosine bound that `tests/cli.rs` holds rows to.
    #[test]
    fn a_nan_output_drifts() {
        let outputs = |v: f32| -> ModelOutputs {
            let array = ndarray::ArrayD::from_elem(vec![2, 3], v);
            [("last_hidden_state".to_string(), array.into())].into()
        };
        let reference = outputs(0.5);
        for bad in [f32::NAN, f32::INFINITY] {
            let d = drift(&reference, &outputs(bad)).expect("the output is there");
            assert!(!d.within(1e-4), "{bad}: {d:?}");
            assert!(d.cosine < 0.999, "{bad}: {d:?}");
            assert!(d.fault.is_some(), "{bad}: {d:?}");
        }
    }
}
