//! The reference the server is measured against: the runtime itself, in this process, on the same
//! texts and engine settings — its throughput in batches of the server's size formed as the server
//! forms them under full load (consecutive arrivals, each batch padded to its longest), the same
//! with all texts sorted by length first (the best case, which no server sees), and its latency
//! for one text alone.

use std::path::Path;
use std::time::Instant;

use albert_runtime::{
    BackendChoice, EmbedOptions, OrtOptions, Pipeline, PipelineOptions, Pooling, TractOptions,
    Truncation,
};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::generate::percentile;

/// What the runtime does without a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offline {
    /// Texts per second, in batches of `batch_size` consecutive texts (each padded to its
    /// longest), as a loaded server batches what arrives.
    pub texts_per_second: f64,
    /// Tokens per second in the same run.
    pub tokens_per_second: f64,
    /// Texts per second with all texts sorted by length before batching.
    pub sorted_texts_per_second: f64,
    /// Texts per batch.
    pub batch_size: usize,
    /// Median milliseconds to embed one text alone.
    pub single_p50_ms: f64,
    /// What ran the model.
    pub engine: String,
}

/// A pipeline on the engine the server uses, truncating as the load's requests ask.
pub fn pipeline(
    model: &Path,
    backend: &str,
    threads: usize,
    batch_size: usize,
) -> Result<Pipeline> {
    let backend = match backend {
        "tract" => BackendChoice::Tract(TractOptions::default()),
        _ => BackendChoice::Ort(OrtOptions {
            intra_threads: threads,
            // As albert-serve runs it.
            intra_op_spinning: false,
            ..OrtOptions::default()
        }),
    };
    Pipeline::load(
        model,
        &PipelineOptions {
            backend,
            truncation: Truncation::Truncate,
            batch_size,
            ..PipelineOptions::default()
        },
    )
    .with_context(|| format!("loading {}", model.display()))
}

/// Each text's token count as the server counts it (special tokens in, truncated).
pub fn token_counts(pipeline: &Pipeline, texts: &[String]) -> Result<Vec<usize>> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(pipeline
                .encode_with(
                    i,
                    albert_runtime::TextInput::Single(t),
                    Truncation::Truncate,
                    false,
                )?
                .len())
        })
        .collect()
}

/// Measures the runtime on `texts`: all of them once as a warm-up, then for at least `seconds`.
pub fn measure(
    pipeline: &Pipeline,
    texts: &[String],
    tokens: &[usize],
    seconds: f64,
    batch_size: usize,
) -> Result<Offline> {
    let options = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: true,
    };
    let all: Vec<&str> = texts.iter().map(String::as_str).collect();
    // The pipeline sorts the texts of one call by length and batches them by `batch_size`.
    let time = |chunk: usize| -> Result<(usize, f64)> {
        let started = Instant::now();
        let mut rounds = 0usize;
        while rounds == 0 || started.elapsed().as_secs_f64() < seconds {
            for batch in all.chunks(chunk) {
                pipeline.embed(batch, options)?;
            }
            rounds += 1;
        }
        Ok((rounds, started.elapsed().as_secs_f64()))
    };
    pipeline.embed(&all, options)?;
    let (sorted_rounds, sorted_elapsed) = time(all.len())?;
    let (rounds, elapsed) = time(batch_size)?;
    let mut single = Vec::new();
    let alone_started = Instant::now();
    for text in texts.iter().cycle().take(texts.len().max(50)) {
        let t = Instant::now();
        pipeline.embed(&[text], options)?;
        single.push(t.elapsed().as_secs_f64() * 1e3);
        if alone_started.elapsed().as_secs_f64() > seconds && single.len() >= 20 {
            break;
        }
    }
    single.sort_by(f64::total_cmp);
    Ok(Offline {
        texts_per_second: (rounds * texts.len()) as f64 / elapsed,
        tokens_per_second: (rounds * tokens.iter().sum::<usize>()) as f64 / elapsed,
        sorted_texts_per_second: (sorted_rounds * texts.len()) as f64 / sorted_elapsed,
        batch_size,
        single_p50_ms: percentile(&single, 0.5),
        engine: pipeline.target().to_string(),
    })
}
