//! One row of the results: a measured cell, or a skipped one with its reason.

use std::path::Path;

use albert_core::AlbertConfig;
use serde::Serialize;

use crate::cell;
use crate::cli::{ProviderArg, VariantArg};
use crate::compare::{Anchor, Ratio};

/// One row of the results.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub provider: &'static str,
    pub variant: &'static str,
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub status: String,
    pub load_seconds: Option<f64>,
    #[serde(flatten)]
    pub timing: Option<cell::Timing>,
    pub sequences_per_second: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub gflops: Option<f64>,
    /// Achieved GFLOP/s over the machine's measured single-GEMM rate at the same threads.
    pub gemm_efficiency: Option<f64>,
    /// Infinite (null in JSON) when the outputs are not comparable: see `drift_fault`.
    pub max_abs_vs_fp32: Option<f64>,
    pub cosine_vs_fp32: Option<f64>,
    /// Why the outputs are not comparable with the float32 reference's (NaN, an infinity,
    /// another shape).
    pub drift_fault: Option<String>,
    pub model_bytes: Option<u64>,
}

impl Row {
    pub fn skipped(
        provider: ProviderArg,
        variant: VariantArg,
        batch: usize,
        seq: usize,
        threads: usize,
        reason: String,
    ) -> Row {
        Row {
            provider: provider.name(),
            variant: variant.name(),
            batch,
            seq,
            threads,
            status: format!("skipped: {reason}"),
            load_seconds: None,
            timing: None,
            sequences_per_second: None,
            tokens_per_second: None,
            peak_rss_mb: None,
            gflops: None,
            gemm_efficiency: None,
            max_abs_vs_fp32: None,
            cosine_vs_fp32: None,
            drift_fault: None,
            model_bytes: None,
        }
    }
}

/// `results.json` (and `--json`): the run's rows with what they were measured on.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    /// The external anchors and ours / anchor ratios (`--compare`), else null.
    pub anchors: Option<&'a [Anchor]>,
    pub ratios: Option<&'a [Ratio]>,
    pub graph_ratios: Option<&'a [Ratio]>,
    /// The export's task (`albert-export --task`).
    pub task: &'static str,
    /// Whether the cells were timed in turns (`--interleave`).
    pub interleaved: bool,
    /// The export directory measured.
    pub model: &'a Path,
    pub config: ModelShape,
    /// The machine's CPU line (`albert_core::cpu`: model, AVX2 / AVX-512 / VNNI / AMX).
    pub cpu: String,
    /// The machine's GEMM rate per thread count.
    pub gemm_gflops: Vec<GemmRate>,
    pub rows: &'a [Row],
}

/// The sizes that set a model's cost.
#[derive(Debug, Serialize)]
pub struct ModelShape {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub vocab_size: usize,
}

impl From<&AlbertConfig> for ModelShape {
    fn from(config: &AlbertConfig) -> Self {
        ModelShape {
            hidden_size: config.hidden_size,
            num_hidden_layers: config.num_hidden_layers,
            vocab_size: config.vocab_size,
        }
    }
}

/// One fp32 GEMM rate (`calibration.rs`).
#[derive(Debug, Serialize)]
pub struct GemmRate {
    pub threads: usize,
    pub gflops: f64,
}
