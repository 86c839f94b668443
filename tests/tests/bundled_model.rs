//! The bundled model (models/albert-tiny-en), exported and served by the runtime on both engines,
//! predicts masked words of held-out text far better than a frequency baseline. The baseline is
//! computed here on the same positions: always answer the most frequent word-start piece of the
//! training sample.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::HashMap;

use albert_e2e::root;
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_runtime::{
    BackendChoice, OrtOptions, Pipeline, PipelineOptions, TractOptions, Truncation,
};

#[test]
fn bundled_model_beats_the_frequency_baseline_on_held_out_text() {
    let model = root().join("models/albert-tiny-en");
    let tmp = tempfile::tempdir().unwrap();
    let options = ExportOptions {
        task: Some(Task::MaskedLm),
        ..ExportOptions::default()
    };
    let summary = export_dir(&model, tmp.path(), &options).unwrap();
    assert_eq!(summary.task, Task::MaskedLm);

    let tokenizer = albert_core::tokenizer::load(&model.join("tokenizer.json")).unwrap();
    let train =
        std::fs::read_to_string(root().join("tests/fixtures/corpus/train-sample.txt")).unwrap();
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for line in train.lines().filter(|l| !l.is_empty()).take(5000) {
        for &id in tokenizer.encode(line, false).unwrap().get_ids() {
            *counts.entry(id).or_default() += 1;
        }
    }
    let most_frequent = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(id, _)| *id)
        .unwrap();

    // Mask one word-start piece (a whole one-piece word) per held-out sentence, chosen by position.
    let heldout =
        std::fs::read_to_string(root().join("tests/fixtures/corpus/heldout-sample.txt")).unwrap();
    let mut cases = Vec::new();
    for (i, line) in heldout
        .lines()
        .filter(|l| l.split_whitespace().count() >= 6)
        .enumerate()
        .take(150)
    {
        let encoding = tokenizer.encode(line, false).unwrap();
        let tokens = encoding.get_tokens();
        let candidates: Vec<usize> = (0..tokens.len())
            .filter(|&t| {
                tokens[t].starts_with('▁')
                    && tokens[t].len() > 1
                    && tokens.get(t + 1).is_none_or(|n| n.starts_with('▁'))
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let t = candidates[i % candidates.len()];
        let (start, end) = encoding.get_offsets()[t];
        let word = &line[start..end];
        // As a user writes it: "the [MASK] of" (the piece's offsets include its space).
        let space = if word.starts_with(' ') { " " } else { "" };
        let masked = format!("{}{space}[MASK]{}", &line[..start], &line[end..]);
        cases.push((masked, encoding.get_ids()[t], word.trim().to_string()));
    }
    assert!(cases.len() >= 100);

    for backend in [
        BackendChoice::Ort(OrtOptions::default()),
        BackendChoice::Tract(TractOptions::default()),
    ] {
        let pipeline = Pipeline::load(
            tmp.path(),
            &PipelineOptions {
                backend,
                truncation: Truncation::Truncate,
                ..PipelineOptions::default()
            },
        )
        .unwrap();
        let (mut model_hits, mut baseline_hits) = (0usize, 0usize);
        for (text, expected, _) in &cases {
            let predictions = pipeline.fill_mask(text, 1).unwrap();
            model_hits += usize::from(predictions[0].candidates[0].id == *expected);
            baseline_hits += usize::from(most_frequent == *expected);
        }
        let (model_acc, baseline_acc) = (
            model_hits as f64 / cases.len() as f64,
            baseline_hits as f64 / cases.len() as f64,
        );
        println!(
            "{}: top-1 {model_acc:.3} vs baseline {baseline_acc:.3} on {} masked words",
            pipeline.target(),
            cases.len()
        );
        assert!(
            model_acc > 2.0 * baseline_acc && model_acc > 0.15,
            "model {model_acc:.3}, baseline {baseline_acc:.3}"
        );
    }
}
