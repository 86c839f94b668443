//! `albert-run`: try an exported ALBERT model in one line.

use std::path::PathBuf;

use albert_runtime::{
    BackendChoice, EmbedOptions, OrtOptions, Pipeline, PipelineOptions, Pooling, ProviderFlag,
    TractOptions, Truncation,
};
use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
enum TaskArg {
    Embed,
    FillMask,
    Classify,
    TokenClassify,
    Answer,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Ort,
    Tract,
}

#[derive(Clone, Copy, ValueEnum)]
enum PoolingArg {
    Cls,
    Pooler,
    Mean,
}

#[derive(Parser)]
#[command(
    name = "albert-run",
    version,
    about = "Run an exported ALBERT model on texts"
)]
struct Cli {
    /// A directory made by albert-export (model.onnx, config.json, tokenizer.json).
    model_dir: PathBuf,
    /// What to do with the texts.
    task: TaskArg,
    /// The texts. `answer` takes a question and a context; `classify --pairs` takes pairs.
    #[arg(required = true)]
    texts: Vec<String>,
    #[arg(long, value_enum, default_value = "ort")]
    backend: BackendArg,
    /// ONNX Runtime execution provider (cuda and tensorrt need onnxruntime-gpu and a GPU).
    #[arg(long, value_enum, default_value = "cpu")]
    provider: ProviderFlag,
    /// GPU index for cuda and tensorrt.
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// Fall back to the CPU (with a warning) when the provider cannot be used, instead of failing.
    #[arg(long)]
    fallback: bool,
    /// libonnxruntime.so [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long)]
    ort_library: Option<PathBuf>,
    /// ONNX Runtime intra-op threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// embed: how token vectors become one vector.
    #[arg(long, value_enum, default_value = "mean")]
    pooling: PoolingArg,
    /// embed: scale vectors to unit length.
    #[arg(long)]
    normalize: bool,
    /// fill-mask: candidates per mask.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// classify: the texts are pairs (A1 B1 A2 B2 …).
    #[arg(long)]
    pairs: bool,
    /// Cut texts longer than the model takes instead of failing.
    #[arg(long)]
    truncate: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if matches!(cli.task, TaskArg::Answer) && cli.texts.len() != 2 {
        bail!(
            "answer takes two texts: a question and a context (got {})",
            cli.texts.len()
        );
    }
    if cli.pairs && cli.texts.len() % 2 != 0 {
        bail!(
            "--pairs needs an even number of texts (A1 B1 A2 B2 …), got {}",
            cli.texts.len()
        );
    }
    let backend = match cli.backend {
        BackendArg::Tract => BackendChoice::Tract(TractOptions::default()),
        BackendArg::Ort => BackendChoice::Ort(OrtOptions {
            library: cli.ort_library.clone(),
            intra_threads: cli.threads,
            ..OrtOptions::for_provider(cli.provider.provider(cli.device), cli.fallback)
        }),
    };
    let options = PipelineOptions {
        backend,
        truncation: if cli.truncate {
            Truncation::Truncate
        } else {
            Truncation::Error
        },
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::load(&cli.model_dir, &options)
        .with_context(|| format!("loading {}", cli.model_dir.display()))?;
    eprintln!("running on {}", pipeline.target());
    let texts: Vec<&str> = cli.texts.iter().map(String::as_str).collect();

    match cli.task {
        TaskArg::Embed => {
            let pooling = match cli.pooling {
                PoolingArg::Cls => Pooling::Cls,
                PoolingArg::Pooler => Pooling::Pooler,
                PoolingArg::Mean => Pooling::Mean,
            };
            let vectors = pipeline.embed(
                &texts,
                EmbedOptions {
                    pooling,
                    normalize: cli.normalize,
                },
            )?;
            if cli.json {
                println!("{}", json!({ "embeddings": vectors }));
            } else {
                for (text, v) in texts.iter().zip(&vectors) {
                    let head: Vec<String> = v.iter().take(6).map(|x| format!("{x:+.4}")).collect();
                    println!("{text}\n  [{} values] {} …", v.len(), head.join(" "));
                }
                if vectors.len() > 1 {
                    println!("cosine similarity:");
                    for (i, a) in vectors.iter().enumerate() {
                        let row: Vec<String> = vectors
                            .iter()
                            .map(|b| format!("{:+.3}", albert_runtime::cosine(a, b)))
                            .collect();
                        println!("  {i}: {}", row.join(" "));
                    }
                }
            }
        }
        TaskArg::FillMask => {
            for text in &texts {
                let predictions = pipeline.fill_mask(text, cli.top_k)?;
                if cli.json {
                    println!("{}", json!({ "text": text, "masks": predictions }));
                } else {
                    println!("{text}");
                    for p in &predictions {
                        let best: Vec<String> = p
                            .candidates
                            .iter()
                            .map(|c| format!("{} ({:.3})", c.text, c.score))
                            .collect();
                        println!("  [MASK] at token {}: {}", p.position, best.join(", "));
                    }
                }
            }
        }
        TaskArg::Classify => {
            let results = if cli.pairs {
                if !texts.len().is_multiple_of(2) {
                    bail!(
                        "--pairs needs an even number of texts (A1 B1 A2 B2 …), got {}",
                        texts.len()
                    );
                }
                let pairs: Vec<(&str, &str)> = texts.chunks(2).map(|c| (c[0], c[1])).collect();
                pipeline.classify_pairs(&pairs)?
            } else {
                pipeline.classify(&texts)?
            };
            if cli.json {
                println!("{}", json!({ "classifications": results }));
            } else {
                for (i, r) in results.iter().enumerate() {
                    println!("{i}: {} ({:.3})", r.label, r.score);
                }
            }
        }
        TaskArg::TokenClassify => {
            let results = pipeline.token_classify(&texts)?;
            if cli.json {
                println!("{}", json!({ "words": results }));
            } else {
                for (text, words) in texts.iter().zip(&results) {
                    println!("{text}");
                    for w in words {
                        println!(
                            "  {:<20} {:<12} {:.3} [{}..{})",
                            w.word, w.label, w.score, w.start, w.end
                        );
                    }
                }
            }
        }
        TaskArg::Answer => {
            let [question, context] = texts.as_slice() else {
                bail!(
                    "answer takes two texts: a question and a context (got {})",
                    texts.len()
                );
            };
            let answer = pipeline.answer(question, context)?;
            if cli.json {
                println!("{}", json!({ "answer": answer }));
            } else {
                println!(
                    "{} ({:.3}) [{}..{})",
                    answer.text, answer.score, answer.start, answer.end
                );
            }
        }
    }
    Ok(())
}
