//! One cell of the matrix: load, warm up, then time runs for a time budget; latency
//! percentiles, throughput, peak memory.

use std::time::{Duration, Instant};

use albert_runtime::{Backend, ModelInputs, ModelOutputs};
use anyhow::Result;
use serde::Serialize;

/// Latency figures of one cell, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub runs: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `warmup` times untimed, then at least `min_runs` times and until `budget` has passed.
/// Returns the timing and the last run's outputs.
pub fn time_runs(
    backend: &dyn Backend,
    inputs: &ModelInputs,
    warmup: usize,
    min_runs: usize,
    budget: Duration,
) -> Result<(Timing, ModelOutputs)> {
    let mut outputs = ModelOutputs::new();
    for _ in 0..warmup {
        outputs = backend.run(inputs)?;
    }
    let mut latencies = Vec::new();
    let start = Instant::now();
    while latencies.len() < min_runs || start.elapsed() < budget {
        let t = Instant::now();
        outputs = backend.run(inputs)?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mean_ms = latencies.iter().sum::<f64>() / latencies.len() as f64;
    latencies.sort_by(f64::total_cmp);
    Ok((
        Timing {
            runs: latencies.len(),
            mean_ms,
            p50_ms: percentile(&latencies, 50.0),
            p90_ms: percentile(&latencies, 90.0),
            p99_ms: percentile(&latencies, 99.0),
            min_ms: latencies[0],
        },
        outputs,
    ))
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets the process's peak resident set (Linux: `5` into `/proc/self/clear_refs`), so the
/// next [`peak_rss_mb`] is the peak of this cell alone. Returns whether the reset worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident set in MB (since the last reset), if known.
pub fn peak_rss_mb() -> Option<f64> {
    status_kib("VmHWM:").map(|k| k as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.0);
    }
}
