//! Fill-mask: the most likely words for each `[MASK]`.
//!
//!     cargo run -p albert-runtime --example fill_mask -- <export-dir> "The [MASK] surfaced."
//!
//! `<export-dir>` is made by `albert-export <checkpoint> -o <export-dir> --task masked-lm`.

use albert_runtime::{Pipeline, PipelineOptions};

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: fill_mask <export-dir> <text with [MASK]>")?;
    let text = args
        .next()
        .unwrap_or_else(|| "The captain stood on the [MASK] of the ship.".to_string());

    let pipeline = Pipeline::load(dir.as_ref(), &PipelineOptions::default())?;
    for prediction in pipeline.fill_mask(&text, 5)? {
        println!("[MASK] at token {}:", prediction.position);
        for candidate in prediction.candidates {
            println!("  {:<16} {:.3}", candidate.text, candidate.score);
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
