//! The closed loop: `concurrency` clients on one async thread, each sending its next text as soon
//! as the last answer came, until the level's time or request budget is spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Which route the requests go to, and in what shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// TEI's `POST /embed` with `{"inputs": text, "truncate": true}`.
    Embed,
    /// OpenAI's `POST /v1/embeddings` with `{"input": text, "model": MODEL}` (texts must fit).
    Openai,
}

/// What one level measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Level {
    /// Clients sending at once.
    pub concurrency: usize,
    /// Requests answered (any status).
    pub requests: usize,
    /// Requests answered with 2xx.
    pub ok: usize,
    /// Non-2xx answers and failed connections.
    pub errors: usize,
    /// Wall time of the level.
    pub seconds: f64,
    /// Successful requests per second.
    pub requests_per_second: f64,
    /// Tokens of the successful requests' texts per second (when token counts are known).
    pub tokens_per_second: Option<f64>,
    /// Latency percentiles of successful requests, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// CPU seconds this generator used during the level (it shares the machine with the server).
    pub client_cpu_seconds: f64,
}

/// The value at quantile `q` of sorted values (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// CPU time of this process (all threads), from /proc/self/stat in USER_HZ ticks (100 per
/// second on Linux).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// A load level's settings.
pub struct Plan<'a> {
    pub url: &'a str,
    pub route: Route,
    pub model: Option<&'a str>,
    pub texts: &'a [String],
    /// Tokens of each text (as the server counts them), if known.
    pub tokens: Option<&'a [usize]>,
    pub concurrency: usize,
    pub duration: Duration,
    pub max_requests: usize,
}

/// Runs one level on the current thread's runtime.
pub async fn run_level(client: &reqwest::Client, plan: &Plan<'_>) -> Level {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let endpoint = match plan.route {
        Route::Embed => format!("{}/embed", plan.url),
        Route::Openai => format!("{}/v1/embeddings", plan.url),
    };
    let clients = (0..plan.concurrency).map(|_| {
        let (next, endpoint) = (next.clone(), endpoint.clone());
        async move {
            let mut seen: Vec<(usize, Option<f64>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= plan.max_requests || started.elapsed() >= plan.duration {
                    return seen;
                }
                let text = &plan.texts[i % plan.texts.len()];
                let body = match plan.route {
                    Route::Embed => serde_json::json!({"inputs": text, "truncate": true}),
                    Route::Openai => serde_json::json!({"input": text, "model": plan.model}),
                };
                let sent = Instant::now();
                let answer = client.post(&endpoint).json(&body).send().await;
                let ok = match answer {
                    Ok(response) if response.status().is_success() => {
                        // The whole body is read: the server's work includes writing it.
                        response.bytes().await.is_ok()
                    }
                    _ => false,
                };
                let latency = ok.then(|| sent.elapsed().as_secs_f64() * 1e3);
                seen.push((i % plan.texts.len(), latency));
            }
        }
    });
    let results: Vec<(usize, Option<f64>)> = futures::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = results.iter().filter_map(|r| r.1).collect();
    latencies.sort_by(f64::total_cmp);
    let ok = latencies.len();
    let tokens_per_second = plan.tokens.map(|tokens| {
        results
            .iter()
            .filter(|r| r.1.is_some())
            .map(|r| tokens[r.0] as f64)
            .sum::<f64>()
            / seconds
    });
    Level {
        concurrency: plan.concurrency,
        requests: results.len(),
        ok,
        errors: results.len() - ok,
        seconds,
        requests_per_second: ok as f64 / seconds,
        tokens_per_second,
        p50_ms: percentile(&latencies, 0.50),
        p90_ms: percentile(&latencies, 0.90),
        p99_ms: percentile(&latencies, 0.99),
        client_cpu_seconds: cpu_seconds() - cpu_before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.9), 90.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spent = cpu_seconds();
        assert!(spent.is_finite() && spent >= 0.0, "{spent}");
    }
}
