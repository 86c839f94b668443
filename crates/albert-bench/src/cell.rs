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

impl Timing {
    /// The figures of a cell's latencies (milliseconds, in the order they were taken).
    pub fn from_latencies(mut latencies: Vec<f64>) -> Timing {
        let mean_ms = latencies.iter().sum::<f64>() / latencies.len() as f64;
        latencies.sort_by(f64::total_cmp);
        Timing {
            runs: latencies.len(),
            mean_ms,
            p50_ms: percentile(&latencies, 50.0),
            p90_ms: percentile(&latencies, 90.0),
            p99_ms: percentile(&latencies, 99.0),
            min_ms: latencies.first().copied().unwrap_or(f64::NAN),
        }
    }
}

/// One cell's progress while several take turns.
struct Turns {
    latencies: Vec<f64>,
    timed: Duration,
    outputs: ModelOutputs,
    failed: Option<anyhow::Error>,
}

/// Times cells in turns: each is warmed up (`warmup` untimed runs), then they run one after
/// another for `slice` each (at least one run a turn), round after round, until every cell has
/// run `budget` in all and at least `min_runs` times (`--interleave`; a cell timed alone is the
/// case of one cell and a slice of the whole budget). Returns each cell's timing and its last
/// run's outputs. Drift of a shared machine then falls on
/// every cell alike instead of on whichever ran in a slow minute. A cell that fails is dropped
/// from the turns with its error; the others go on.
pub fn time_interleaved(
    cells: &[(&dyn Backend, &ModelInputs)],
    warmup: usize,
    min_runs: usize,
    budget: Duration,
    slice: Duration,
) -> Vec<Result<(Timing, ModelOutputs)>> {
    let mut turns: Vec<Turns> = cells
        .iter()
        .map(|(backend, inputs)| {
            let mut turn = Turns {
                latencies: Vec::new(),
                timed: Duration::ZERO,
                outputs: ModelOutputs::new(),
                failed: None,
            };
            for _ in 0..warmup {
                match backend.run(inputs) {
                    Ok(o) => turn.outputs = o,
                    Err(e) => {
                        turn.failed = Some(e.into());
                        break;
                    }
                }
            }
            turn
        })
        .collect();
    let done =
        |t: &Turns| t.failed.is_some() || (t.latencies.len() >= min_runs && t.timed >= budget);
    while !turns.iter().all(done) {
        for ((backend, inputs), turn) in cells.iter().zip(turns.iter_mut()) {
            if done(turn) {
                continue;
            }
            let start = Instant::now();
            loop {
                let t = Instant::now();
                match backend.run(inputs) {
                    Ok(o) => turn.outputs = o,
                    Err(e) => {
                        turn.failed = Some(e.into());
                        break;
                    }
                }
                let took = t.elapsed();
                turn.timed += took;
                turn.latencies.push(took.as_secs_f64() * 1e3);
                if start.elapsed() >= slice {
                    break;
                }
            }
        }
    }
    turns
        .into_iter()
        .map(|t| match t.failed {
            Some(e) => Err(e),
            None => Ok((Timing::from_latencies(t.latencies), t.outputs)),
        })
        .collect()
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
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use albert_runtime::{ExecutionTarget, RuntimeError};
    use std::sync::Mutex;

    /// A backend that sleeps, logs which cell ran into a shared journal, and fails from its
    /// `fail_at`-th call on.
    struct Sleeper<'a> {
        id: usize,
        sleep: Duration,
        fail_at: Option<usize>,
        calls: Mutex<usize>,
        journal: &'a Mutex<Vec<usize>>,
    }

    impl Backend for Sleeper<'_> {
        fn target(&self) -> ExecutionTarget {
            ExecutionTarget::TractCpu
        }
        fn output_names(&self) -> &[String] {
            &[]
        }
        fn run(&self, _: &ModelInputs) -> albert_runtime::Result<ModelOutputs> {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            if self.fail_at.is_some_and(|n| *calls >= n) {
                return Err(RuntimeError::InvalidInput(format!(
                    "cell {} broke",
                    self.id
                )));
            }
            std::thread::sleep(self.sleep);
            self.journal.lock().unwrap().push(self.id);
            Ok(ModelOutputs::new())
        }
    }

    #[test]
    fn interleaved_cells_take_turns_until_each_has_its_budget() {
        let journal = Mutex::new(Vec::new());
        let sleeper = |id, ms, fail_at| Sleeper {
            id,
            sleep: Duration::from_millis(ms),
            fail_at,
            calls: Mutex::new(0),
            journal: &journal,
        };
        // Cell 2 fails on its 6th call (3 warm-up runs, then in its second turn or so).
        let cells = [
            sleeper(0, 2, None),
            sleeper(1, 5, None),
            sleeper(2, 2, Some(6)),
        ];
        let inputs = ModelInputs {
            input_ids: ndarray::Array2::zeros((1, 1)),
            attention_mask: ndarray::Array2::ones((1, 1)),
            token_type_ids: ndarray::Array2::zeros((1, 1)),
        };
        let turns: Vec<(&dyn Backend, &ModelInputs)> =
            cells.iter().map(|c| (c as &dyn Backend, &inputs)).collect();
        let (budget, slice) = (Duration::from_millis(40), Duration::from_millis(10));
        let results = time_interleaved(&turns, 3, 5, budget, slice);
        assert_eq!(results.len(), 3);
        for result in &results[..2] {
            let timing = &result.as_ref().unwrap().0;
            // At least min_runs, and at least the budget of timed runs (each run ≥ its sleep).
            assert!(timing.runs >= 5, "{timing:?}");
            assert!(timing.mean_ms * timing.runs as f64 >= 40.0, "{timing:?}");
            assert!(timing.min_ms <= timing.p50_ms && timing.p50_ms <= timing.p99_ms);
        }
        let Err(failure) = &results[2] else {
            panic!("cell 2 should fail")
        };
        assert!(
            format!("{failure:#}").contains("cell 2 broke"),
            "{failure:#}"
        );
        // Turns: after the warm-ups (3 per cell, cell by cell), cells 0 and 1 alternate in
        // slices: each needs ≥ 4 slices of 10 ms for 40 ms, so the journal switches between
        // them several times, where timing one after the other would switch once.
        let journal = journal.into_inner().unwrap();
        let timed: Vec<usize> = journal[9..].iter().copied().filter(|&id| id != 2).collect();
        let switches = timed.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches >= 4, "{timed:?}");
    }

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
