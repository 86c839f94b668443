//! `albert-load`: a closed-loop load generator for `albert-serve` (and any server with TEI's
//! `/embed` or OpenAI's `/v1/embeddings`), with the runtime's own offline throughput as the
//! yardstick. See docs/serving.md, "Benchmark".

mod generate;
mod offline;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use generate::{Plan, Route};
use report::Run;

/// The committed held-out corpus sample: real sentences of mixed lengths.
const HELDOUT_SAMPLE: &str = include_str!("../../../tests/fixtures/corpus/heldout-sample.txt");

#[derive(Parser)]
#[command(
    name = "albert-load",
    version,
    about = "Load a running ALBERT server and report requests/s, tokens/s and latency per concurrency level"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the levels against a server.
    Run(RunArgs),
    /// Draw several runs' JSON reports in one chart.
    Chart {
        /// Reports written by `run --out`.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// The SVG to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    url: String,
    /// The route and request shape.
    #[arg(long, value_enum, default_value = "embed")]
    route: Route,
    /// The model name (openai route).
    #[arg(long)]
    model: Option<String>,
    /// Texts, one per line [default: the committed held-out corpus sample].
    #[arg(long)]
    texts: Option<PathBuf>,
    /// How many non-empty lines to use.
    #[arg(long, default_value_t = 1000)]
    lines: usize,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    concurrency: Vec<usize>,
    /// Seconds per level.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Requests per level at most.
    #[arg(long, default_value_t = 100_000)]
    max_requests: usize,
    /// What this run is, in the report and the chart.
    #[arg(long, default_value = "albert-serve")]
    label: String,
    /// Write LABEL.json here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The export the server serves: measures the runtime alone on the same texts first (and
    /// counts tokens), for the efficiency and overhead ratios.
    #[arg(long)]
    offline: Option<PathBuf>,
    /// offline: the engine (as the server's --backend).
    #[arg(long, default_value = "ort")]
    backend: String,
    /// offline: inference threads (as the server's --threads; 0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// offline: texts per batch (as the server's --max-batch-requests).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

fn texts(args: &RunArgs) -> Result<Vec<String>> {
    let text = match &args.texts {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => HELDOUT_SAMPLE.to_string(),
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(args.lines)
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        bail!("no texts: the file has no non-empty line");
    }
    Ok(lines)
}

fn run(args: RunArgs) -> Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency: levels must be at least 1");
    }
    let texts = texts(&args)?;
    let (offline, tokens) = match &args.offline {
        Some(model) => {
            let pipeline = offline::pipeline(model, &args.backend, args.threads, args.batch_size)?;
            let tokens = offline::token_counts(&pipeline, &texts)?;
            eprintln!("measuring the runtime alone on {} texts…", texts.len());
            let measured =
                offline::measure(&pipeline, &texts, &tokens, args.seconds, args.batch_size)?;
            eprintln!(
                "offline: {:.1} texts/s, {:.0} tokens/s in batches of {} as they come ({:.1} texts/s sorted by length); one text alone p50 {:.2} ms ({})",
                measured.texts_per_second,
                measured.tokens_per_second,
                measured.batch_size,
                measured.sorted_texts_per_second,
                measured.single_p50_ms,
                measured.engine
            );
            (Some(measured), Some(tokens))
        }
        None => (None, None),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .context("making the HTTP client")?;
    let mut levels = Vec::new();
    for &concurrency in &args.concurrency {
        let plan = Plan {
            url: args.url.trim_end_matches('/'),
            route: args.route,
            model: args.model.as_deref(),
            texts: &texts,
            tokens: tokens.as_deref(),
            concurrency,
            duration: Duration::from_secs_f64(args.seconds),
            max_requests: args.max_requests,
        };
        let level = runtime.block_on(generate::run_level(&client, &plan));
        eprintln!(
            "concurrency {concurrency:>3}: {:>6} requests ({} errors), {:.1} req/s, p50 {:.2} ms, p99 {:.2} ms",
            level.requests, level.errors, level.requests_per_second, level.p50_ms, level.p99_ms
        );
        levels.push(level);
    }
    let run = Run {
        label: args.label.clone(),
        url: args.url.clone(),
        route: args.route,
        texts: texts.len(),
        cpu: albert_core::cpu::cpu().model.clone(),
        levels,
        offline,
        efficiency: None,
        overhead_ms: None,
    }
    .with_ratios();
    println!("{} — {} ({})", run.label, run.url, run.cpu);
    println!("{}", report::table(&run));
    if let (Some(efficiency), Some(overhead)) = (run.efficiency, run.overhead_ms) {
        println!(
            "efficiency at the highest concurrency: {efficiency:.3} of the runtime's offline throughput; overhead at concurrency 1: {overhead:+.2} ms over the runtime alone"
        );
    }
    if let Some(dir) = &args.out {
        let path = report::write_json(&run, dir)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Chart { reports, output } => {
            let runs = report::read_runs(&reports)?;
            report::chart(&runs, &output)?;
            println!("wrote {}", output.display());
            Ok(())
        }
    }
}
