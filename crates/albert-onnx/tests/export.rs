//! The exporter without an engine: the f64 reference forward pass against HF transformers'
//! outputs (fixtures made by tools/make_fixtures.py, tolerance 1e-5), shared weights stored once,
//! the tied decoder, onnx.checker on every task, and clear errors. Running exports in ONNX
//! Runtime and tract is crates/albert-verify/tests/export.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use albert_core::compare;
use albert_core::{AlbertConfig, Checkpoint, Head, Preset, Sharing};
use albert_onnx::OnnxError;
use albert_onnx::export::{ExportOptions, Task, build_model, export_dir};
use albert_onnx::proto::{self, read_model};
use albert_onnx::reference::{self, Inputs};
use ndarray::ArrayD;

mod common;

const REFERENCE_TOLERANCE: f64 = 1e-5;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf")
}

fn fixtures() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("io.safetensors").exists())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 10);
    dirs
}

/// The fixture's inputs and HF's outputs.
fn fixture_io(dir: &Path) -> (Inputs, BTreeMap<String, ArrayD<f32>>) {
    common::read_io(&dir.join("io.safetensors"))
}

/// HF's name for each ONNX output of a task, in the fixture files.
fn hf_name(task: Task, output: &str) -> &'static str {
    match (task, output) {
        (_, "last_hidden_state") => "last_hidden_state",
        (_, "pooler_output") => "pooler_output",
        (Task::MaskedLm, "logits") | (_, "prediction_logits") => "mlm_logits",
        (_, "sop_logits") => "sop_logits",
        (_, "logits") => "classifier_logits",
        (_, "start_logits") => "start_logits",
        (_, "end_logits") => "end_logits",
        _ => panic!("no HF name for {output}"),
    }
}

#[test]
fn reference_matches_hf_transformers() {
    for dir in fixtures() {
        let checkpoint = Checkpoint::read_dir(&dir).unwrap();
        let (inputs, hf) = fixture_io(&dir);
        let mut tasks = vec![Task::default_for(&checkpoint.parts)];
        if tasks[0] != Task::Base {
            tasks.push(Task::Base);
        }
        for task in tasks {
            let ours = reference::run(&checkpoint, task, &inputs).unwrap();
            for (name, value) in &ours {
                let diff = compare::max_abs_diff(value, &hf[hf_name(task, name)]);
                assert!(
                    diff <= REFERENCE_TOLERANCE,
                    "{}: {name}: {diff:e}",
                    dir.display()
                );
            }
        }
    }
}

fn tiny(sharing: Sharing, layers: usize, groups: usize, inner: usize) -> AlbertConfig {
    AlbertConfig {
        vocab_size: 61,
        embedding_size: 12,
        hidden_size: 16,
        num_hidden_layers: layers,
        num_hidden_groups: groups,
        inner_group_num: inner,
        num_attention_heads: 4,
        intermediate_size: 20,
        max_position_embeddings: 24,
        ..AlbertConfig::default()
    }
    .with_sharing(sharing)
}

fn random(config: &AlbertConfig, head: Head, seed: u64) -> Checkpoint {
    Checkpoint::random(config, head.parts(), seed)
        .unwrap()
        .perturbed(seed + 1, 0.3)
}

fn export_checkpoint(checkpoint: &Checkpoint, task: Task, dir: &Path) -> PathBuf {
    checkpoint.write_dir(&dir.join("ckpt")).unwrap();
    let options = ExportOptions {
        task: Some(task),
        ..ExportOptions::default()
    };
    export_dir(&dir.join("ckpt"), &dir.join("onnx"), &options)
        .unwrap()
        .model_path
}

/// ALBERT-base shapes: the file holds each weight once (≤ 1.01 × 4 bytes × parameters) and the
/// number of initializers does not grow with the number of layers when all layers share.
#[test]
fn base_sized_export_stores_shared_weights_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut initializer_counts = Vec::new();
    for layers in [12, 24] {
        let mut config = Preset::Base.config();
        config.num_hidden_layers = layers;
        let checkpoint = Checkpoint::random(&config, Head::Base.parts(), 1).unwrap();
        let dir = tmp.path().join(layers.to_string());
        checkpoint.write_dir(&dir.join("ckpt")).unwrap();
        let summary = export_dir(
            &dir.join("ckpt"),
            &dir.join("onnx"),
            &ExportOptions::default(),
        )
        .unwrap();
        assert_eq!(summary.parameters, 11_683_584);
        let size = std::fs::metadata(&summary.model_path).unwrap().len() as f64;
        assert!(
            size <= 1.01 * 4.0 * 11_683_584.0,
            "{layers} layers: {size} bytes"
        );
        let model = read_model(&summary.model_path).unwrap();
        let graph = model.graph.unwrap();
        let layer_weights = graph
            .initializer
            .iter()
            .filter(|t| t.name.contains("albert_layer_groups"))
            .count();
        assert_eq!(layer_weights, 16, "one set of layer tensors");
        assert!(
            graph.node.iter().all(|n| n.op_type != "Identity"),
            "no Identity nodes"
        );
        initializer_counts.push(graph.initializer.len());
    }
    assert_eq!(initializer_counts[0], initializer_counts[1]);
}

#[test]
fn tied_decoder_reads_the_word_embedding_initializer() {
    let checkpoint = random(&tiny(Sharing::All, 2, 1, 1), Head::MaskedLm, 400);
    let model = build_model(&checkpoint, Task::MaskedLm, 17, "sha").unwrap();
    let graph = model.graph.clone().unwrap();
    let word = "albert.embeddings.word_embeddings.weight";
    assert_eq!(
        graph.initializer.iter().filter(|t| t.name == word).count(),
        1
    );
    let readers: Vec<_> = graph
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| i == word))
        .map(|n| n.op_type.as_str())
        .collect();
    assert_eq!(readers, vec!["Gather", "Transpose"]);
    // The transpose feeds the decoder's MatMul (no transposed copy stored).
    let transpose = graph
        .node
        .iter()
        .find(|n| n.op_type == "Transpose" && n.input[0] == word)
        .unwrap();
    assert!(
        graph
            .node
            .iter()
            .any(|n| n.op_type == "MatMul" && n.input[1] == transpose.output[0])
    );
    assert_eq!(
        proto::metadata_value(&model, "albert.task"),
        Some("masked-lm")
    );
    let config: AlbertConfig = AlbertConfig::from_json_str(
        proto::metadata_value(&model, "albert.config").unwrap(),
        Path::new("meta"),
    )
    .unwrap();
    assert_eq!(config, checkpoint.config);
}

#[test]
fn onnx_checker_full_check_passes_for_every_task() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = tiny(Sharing::Ffn, 3, 1, 1);
    config.id2label = Some((0..3).map(|i| (i.to_string(), format!("L{i}"))).collect());
    let mut models = Vec::new();
    for (i, (head, task)) in [
        (Head::Base, Task::Base),
        (Head::MaskedLm, Task::MaskedLm),
        (Head::Pretraining, Task::Pretraining),
        (Head::SequenceClassification, Task::SequenceClassification),
        (Head::TokenClassification, Task::TokenClassification),
        (Head::QuestionAnswering, Task::QuestionAnswering),
    ]
    .into_iter()
    .enumerate()
    {
        let checkpoint = random(&config, head, 600 + i as u64);
        models.push(export_checkpoint(
            &checkpoint,
            task,
            &tmp.path().join(i.to_string()),
        ));
    }
    assert_eq!(models.len(), 6);
    common::assert_onnx_checker_accepts(&models);
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");

    let err = export_dir(&tmp.path().join("missing"), &out, &ExportOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("missing") && err.to_string().contains("not found"),
        "{err}"
    );
    assert!(!out.exists());

    let options = ExportOptions {
        task: Some(Task::MaskedLm),
        ..ExportOptions::default()
    };
    let err = export_dir(
        &fixtures_root().join("sequence_classification"),
        &out,
        &options,
    )
    .unwrap_err();
    assert!(matches!(err, OnnxError::TaskHeads { .. }), "{err}");
    assert!(
        err.to_string().contains("masked-lm") && err.to_string().contains("MLM head"),
        "{err}"
    );
    assert!(!out.exists());

    // A config that does not match the weights.
    let ckpt = tmp.path().join("mismatch");
    std::fs::create_dir_all(&ckpt).unwrap();
    let source = fixtures_root().join("pretraining_default");
    std::fs::copy(
        source.join("model.safetensors"),
        ckpt.join("model.safetensors"),
    )
    .unwrap();
    let config = std::fs::read_to_string(source.join("config.json"))
        .unwrap()
        .replace("\"embedding_size\": 16", "\"embedding_size\": 20");
    std::fs::write(ckpt.join("config.json"), config).unwrap();
    let err = export_dir(&ckpt, &out, &ExportOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("albert.embeddings") && text.contains("20") && text.contains("16"),
        "{text}"
    );
    assert!(!out.exists());
}
