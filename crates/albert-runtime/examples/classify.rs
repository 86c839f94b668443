//! Classification of texts, with labels from the model's `config.json` (`id2label`), on tract —
//! pure Rust, nothing to install.
//!
//!     cargo run -p albert-runtime --example classify -- <export-dir> "text one" "text two"
//!
//! `<export-dir>` is made by `albert-export <checkpoint> -o <export-dir> --task sequence-classification`.

use albert_runtime::{BackendChoice, Pipeline, PipelineOptions, TractOptions, Truncation};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: classify <export-dir> <text>...")?;
    let texts: Vec<String> = args.collect();
    if texts.is_empty() {
        return Err("give at least one text".into());
    }
    let options = PipelineOptions {
        backend: BackendChoice::Tract(TractOptions::default()),
        truncation: Truncation::Truncate,
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::load(dir.as_ref(), &options)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (text, result) in refs.iter().zip(pipeline.classify(&refs)?) {
        let all: Vec<String> = result
            .scores
            .iter()
            .map(|s| format!("{} {:.3}", s.label, s.score))
            .collect();
        println!(
            "{:<12} {text}\n             ({})",
            result.label,
            all.join(", ")
        );
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
