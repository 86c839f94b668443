//! Semantic search over a list of sentences: embed them once, then rank them by cosine similarity
//! to a query.
//!
//!     cargo run -p albert-runtime --example semantic_search -- <export-dir> "your query"
//!
//! `<export-dir>` is made by `albert-export <checkpoint> -o <export-dir> --task base`.

use albert_runtime::{EmbedOptions, Pipeline, PipelineOptions, Pooling, Truncation};

const DOCUMENTS: [&str; 6] = [
    "Call me Ishmael.",
    "The whale surfaced beside the ship.",
    "It is a truth universally acknowledged that a single man must be in want of a wife.",
    "The crew hauled the harpoon line aboard.",
    "She danced all evening at the ball.",
    "In the beginning God created the heaven and the earth.",
];

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: semantic_search <export-dir> <query>")?;
    let query = args.next().unwrap_or_else(|| "a sailor at sea".to_string());

    let options = PipelineOptions {
        truncation: Truncation::Truncate,
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::load(dir.as_ref(), &options)?;
    let options = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: true,
    };
    let documents = pipeline.embed(&DOCUMENTS, options)?;
    let query_vector = pipeline.embed(&[&query], options)?.remove(0);

    let mut ranked: Vec<(f32, &str)> = documents
        .iter()
        .zip(DOCUMENTS)
        .map(|(v, text)| (albert_runtime::cosine(&query_vector, v), text))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("query: {query}  ({})", pipeline.target());
    for (score, text) in ranked {
        println!("{score:+.3}  {text}");
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
