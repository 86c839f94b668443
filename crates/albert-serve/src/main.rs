//! `albert-serve`: serve ALBERT models over HTTP (see docs/serving.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use albert_runtime::{BackendChoice, OrtOptions, PipelineOptions, ProviderFlag, TractOptions};
use albert_serve::batcher::BatchLimits;
use albert_serve::models;
use albert_serve::state::{AppState, Limits};
use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Ort,
    Tract,
}

#[derive(Parser, Debug)]
#[command(
    name = "albert-serve",
    version,
    about = "Serve ALBERT models over HTTP: OpenAI- and TEI-compatible embeddings, classification, \
             fill-mask, token classification and question answering, batched by token budget",
    after_help = "Every flag can also be set by an environment variable: ALBERT_SERVE_ and the \
                  flag's name in capitals (ALBERT_SERVE_PORT=9000); models by ALBERT_SERVE_MODELS \
                  (comma-separated)."
)]
struct Cli {
    /// Model directories, each an export (model.onnx) or a checkpoint in the HF layout (exported
    /// at start into --cache-dir), served as NAME (default: the directory's name).
    #[arg(
        value_name = "[NAME=]MODEL_DIR",
        required = true,
        env = "ALBERT_SERVE_MODELS",
        value_delimiter = ','
    )]
    models: Vec<String>,
    /// The engine.
    #[arg(long, value_enum, default_value = "ort", env = "ALBERT_SERVE_BACKEND")]
    backend: BackendArg,
    /// ONNX Runtime execution provider (cuda and tensorrt need onnxruntime-gpu and a GPU).
    #[arg(long, value_enum, default_value = "cpu", env = "ALBERT_SERVE_PROVIDER")]
    provider: ProviderFlag,
    /// GPU index for cuda and tensorrt.
    #[arg(long, default_value_t = 0, env = "ALBERT_SERVE_DEVICE")]
    device: i32,
    /// Fall back to the CPU (with a warning) when the provider cannot be used, instead of failing.
    #[arg(long, env = "ALBERT_SERVE_FALLBACK")]
    fallback: bool,
    /// libonnxruntime.so [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long, env = "ALBERT_SERVE_ORT_LIBRARY")]
    ort_library: Option<PathBuf>,
    /// Inference threads across all models [default: the cores]: ONNX Runtime's intra-op
    /// threads, or tract workers (tract runs each batch on one thread).
    #[arg(long, env = "ALBERT_SERVE_THREADS")]
    threads: Option<usize>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "ALBERT_SERVE_HOST")]
    host: String,
    /// Port to listen on (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 8080, env = "ALBERT_SERVE_PORT")]
    port: u16,
    /// Padded tokens per batch (longest text × texts).
    #[arg(long, default_value_t = 16384, env = "ALBERT_SERVE_MAX_BATCH_TOKENS")]
    max_batch_tokens: usize,
    /// Texts per batch.
    #[arg(long, default_value_t = 32, env = "ALBERT_SERVE_MAX_BATCH_REQUESTS")]
    max_batch_requests: usize,
    /// How long a batch waits for more texts, in milliseconds.
    #[arg(long, default_value_t = 2, env = "ALBERT_SERVE_MAX_BATCH_DELAY_MS")]
    max_batch_delay_ms: u64,
    /// Requests in flight before new ones get 429.
    #[arg(
        long,
        default_value_t = 512,
        env = "ALBERT_SERVE_MAX_CONCURRENT_REQUESTS"
    )]
    max_concurrent_requests: usize,
    /// Inputs in one request before 413.
    #[arg(long, default_value_t = 32, env = "ALBERT_SERVE_MAX_CLIENT_BATCH_SIZE")]
    max_client_batch_size: usize,
    /// Largest request body (bytes, or with a unit: 2MB, 512KiB).
    #[arg(long, default_value = "2MB", env = "ALBERT_SERVE_PAYLOAD_LIMIT", value_parser = parse_bytes)]
    payload_limit: usize,
    /// Longest a request may take before 503 (e.g. 30s, 500ms).
    #[arg(long, default_value = "30s", env = "ALBERT_SERVE_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Longest the server waits for requests in flight after SIGTERM or Ctrl-C.
    #[arg(long, default_value = "30s", env = "ALBERT_SERVE_SHUTDOWN_TIMEOUT", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,
    /// Where checkpoints are exported [default: $XDG_CACHE_HOME/albert-serve, or ~/.cache/albert-serve].
    #[arg(long, env = "ALBERT_SERVE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Require `Authorization: Bearer KEY` on every route but /health, /metrics and /v2/health.
    #[arg(long, env = "ALBERT_SERVE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Log JSON lines instead of text.
    #[arg(long, env = "ALBERT_SERVE_JSON_LOGS")]
    json_logs: bool,
}

/// `2000000`, `2MB` (10^6), `2MiB` (2^20), `512KB`, `512KiB`.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{s}`: expected a number of bytes, e.g. 2000000 or 2MB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}` (B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{s}` is too large"))
}

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("albert-serve")
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn backend_choice(cli: &Cli, threads: usize) -> BackendChoice {
    match cli.backend {
        BackendArg::Tract => BackendChoice::Tract(TractOptions::default()),
        BackendArg::Ort => {
            BackendChoice::Ort(OrtOptions {
                library: cli.ort_library.clone(),
                intra_threads: threads,
                // The inference threads share the cores with the HTTP front end and the
                // tokenizers: spinning between batches would starve them (measured: see
                // docs/serving.md, "Benchmark").
                intra_op_spinning: false,
                ..OrtOptions::for_provider(cli.provider.provider(cli.device), cli.fallback)
            })
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.json_logs);
    if cli.max_batch_requests == 0 || cli.max_batch_tokens == 0 {
        bail!("--max-batch-requests and --max-batch-tokens must be at least 1");
    }
    if cli.max_concurrent_requests == 0 || cli.max_client_batch_size == 0 {
        bail!("--max-concurrent-requests and --max-client-batch-size must be at least 1");
    }
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
            ],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("albert_batch_size".into()),
                &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("albert_batch_tokens".into()),
                &[64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0],
            )
        })
        .context("setting up metrics")?
        .install_recorder()
        .context("installing the metrics recorder")?;

    let threads = cli.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // The inference threads are shared out between the models.
    let share = (threads / cli.models.len()).max(1);
    let (engine_threads, workers) = match cli.backend {
        BackendArg::Ort => (share, 1),
        BackendArg::Tract => (0, share),
    };
    let options = PipelineOptions {
        backend: backend_choice(&cli, engine_threads),
        ..PipelineOptions::default()
    };
    let limits = BatchLimits {
        max_batch_tokens: cli.max_batch_tokens,
        max_batch_requests: cli.max_batch_requests,
        max_batch_delay: Duration::from_millis(cli.max_batch_delay_ms),
    };
    let cache_dir = cli.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let mut served = Vec::new();
    for arg in &cli.models {
        let (name, dir) = models::parse_model_arg(arg)?;
        if served.iter().any(|m: &models::ServedModel| m.name == name) {
            bail!("two models are named `{name}`: name them with NAME=DIR");
        }
        for model in models::load(&name, &dir, &cache_dir, &options, limits, workers)? {
            tracing::info!(
                model = %model.name,
                task = %model.task,
                serves = %model.capability(),
                engine = %model.pipeline.target(),
                "loaded"
            );
            served.push(model);
        }
    }
    let state = Arc::new(AppState::new(
        served,
        Limits {
            max_concurrent_requests: cli.max_concurrent_requests,
            max_client_batch_size: cli.max_client_batch_size,
            payload_limit: cli.payload_limit,
            max_batch_tokens: cli.max_batch_tokens,
            max_batch_requests: cli.max_batch_requests,
            max_batch_delay_ms: cli.max_batch_delay_ms,
            request_timeout: cli.request_timeout,
        },
        cli.api_key.clone(),
        Some(metrics),
    ));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(&cli, state.clone()))?;
    for model in &state.models {
        model.batcher.close();
    }
    tracing::info!("stopped");
    Ok(())
}

async fn serve(cli: &Cli, state: Arc<AppState>) -> Result<()> {
    let address = format!("{}:{}", cli.host, cli.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let local: SocketAddr = listener.local_addr().context("reading the bound address")?;
    // Printed on stdout, one line, for scripts and tests that start the server on port 0.
    println!("listening on http://{local}");
    tracing::info!(address = %local, "listening");

    let (draining, drained) = tokio::sync::oneshot::channel::<()>();
    let gate = state.clone();
    let app = albert_serve::routes::router(state.clone());
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing the requests in flight");
        gate.begin_shutdown();
        let _ = draining.send(());
    });
    let timeout = cli.shutdown_timeout;
    tokio::select! {
        result = server => result.context("serving")?,
        () = async move {
            if drained.await.is_ok() {
                tokio::time::sleep(timeout).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(
                timeout = %humantime::format_duration(timeout),
                "requests still in flight after --shutdown-timeout; stopping anyway"
            );
        }
    }
    Ok(())
}

/// SIGTERM (what container runtimes send) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn payload_limits_read_with_units() {
        assert_eq!(parse_bytes("2000000").unwrap(), 2_000_000);
        assert_eq!(parse_bytes("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_bytes("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_bytes("512 KiB").unwrap(), 512 << 10);
        assert!(parse_bytes("2XB").unwrap_err().contains("unknown unit"));
        assert!(parse_bytes("MB").is_err());
    }
}
