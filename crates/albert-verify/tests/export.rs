//! Exports run in ONNX Runtime and tract against independent references: HF transformers'
//! outputs (fixtures made by tools/make_fixtures.py) and the f64 reference forward pass, for
//! every fixture, every sharing strategy and group layout, every task and every activation.
//! Tolerance: ONNX (fp32, either engine) vs reference or HF ≤ 1e-4. (The reference itself is
//! checked against HF in crates/albert-onnx/tests/export.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use albert_core::compare;
use albert_core::{Activation, AlbertConfig, Checkpoint, Head, HiddenAct, Sharing};
use albert_onnx::OnnxError;
use albert_onnx::export::{ExportOptions, Task, build_model, export_dir};
use albert_onnx::proto::read_model;
use albert_onnx::reference::Inputs;
use albert_verify::verify::{self, VerifyOptions, load_onnxruntime, load_tract, run_backend};
use ndarray::ArrayD;

// The fixture readers are albert-onnx's (these tests moved here from there with the engines).
#[path = "../../albert-onnx/tests/common/mod.rs"]
mod common;

const ONNX_TOLERANCE: f64 = 1e-4;

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

fn verify_all(model: &Path, checkpoint: &Checkpoint, task: Task, lengths: Vec<usize>) -> f64 {
    let mut options = VerifyOptions::defaults_for(checkpoint);
    options.lengths = lengths;
    let rows = verify::verify(model, checkpoint, task, &options).unwrap();
    assert_eq!(
        rows.len(),
        2 * options.batches.len() * options.lengths.len() * task.outputs(&checkpoint.parts).len()
    );
    verify::check(&rows, ONNX_TOLERANCE).unwrap();
    rows.iter().map(|r| r.max_abs_diff).fold(0.0, f64::max)
}

#[test]
fn every_fixture_exports_and_matches_hf_in_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in fixtures() {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = tmp.path().join(&case);
        let summary = export_dir(&dir, &out, &ExportOptions::default()).unwrap();
        assert!(out.join("config.json").exists());
        let checkpoint = Checkpoint::read_dir(&dir).unwrap();
        assert_eq!(summary.task, Task::default_for(&checkpoint.parts));
        let names = summary.task.outputs(&checkpoint.parts);

        // Directly against HF's outputs on HF's inputs.
        let (inputs, hf) = fixture_io(&dir);
        let ort = load_onnxruntime(&summary.model_path, None).unwrap();
        let tract = load_tract(&summary.model_path).unwrap();
        for (engine, got) in [
            (
                "onnxruntime",
                run_backend(ort.as_ref(), &inputs, &names).unwrap(),
            ),
            (
                "tract",
                run_backend(tract.as_ref(), &inputs, &names).unwrap(),
            ),
        ] {
            for name in &names {
                let diff = compare::max_abs_diff(&got[*name], &hf[hf_name(summary.task, name)]);
                assert!(
                    diff <= ONNX_TOLERANCE,
                    "{case}/{engine}/{name}: {diff:e} vs HF"
                );
            }
        }
        // Against the reference at batch 1 and 3, lengths 1, 7 and the longest the model takes.
        let max = checkpoint.config.max_position_embeddings;
        verify_all(
            &summary.model_path,
            &checkpoint,
            summary.task,
            vec![1, 7, max],
        );
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

#[test]
fn every_sharing_strategy_and_group_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let mut case = 0;
    for sharing in Sharing::ALL {
        for (layers, groups, inner) in [(3, 1, 1), (4, 2, 1), (3, 1, 2), (5, 2, 2)] {
            let config = tiny(sharing, layers, groups, inner);
            let checkpoint = random(&config, Head::Pretraining, case);
            for task in [Task::Pretraining, Task::Base] {
                let dir = tmp.path().join(format!("{case}-{}", task.name()));
                let model = export_checkpoint(&checkpoint, task, &dir);
                verify_all(&model, &checkpoint, task, vec![1, 7, 24]);
            }
            case += 1;
        }
    }
}

#[test]
fn every_task_head() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = tiny(Sharing::Attention, 3, 1, 2);
    config.id2label = Some((0..5).map(|i| (i.to_string(), format!("L{i}"))).collect());
    for (i, (head, task)) in [
        (Head::Base, Task::Base),
        (Head::MaskedLm, Task::MaskedLm),
        (Head::MaskedLm, Task::Base),
        (Head::PretrainingNsp, Task::Pretraining),
        (Head::SequenceClassification, Task::SequenceClassification),
        (Head::TokenClassification, Task::TokenClassification),
        (Head::QuestionAnswering, Task::QuestionAnswering),
    ]
    .into_iter()
    .enumerate()
    {
        let checkpoint = random(&config, head, 100 + i as u64);
        let model = export_checkpoint(&checkpoint, task, &tmp.path().join(i.to_string()));
        verify_all(&model, &checkpoint, task, vec![1, 9]);
    }
}

#[test]
fn every_activation_runs_in_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let all = [
        Activation::Gelu,
        Activation::GeluTanh,
        Activation::GeluFast,
        Activation::Gelu10,
        Activation::QuickGelu,
        Activation::Relu,
        Activation::Relu2,
        Activation::Relu6,
        Activation::LeakyRelu,
        Activation::Silu,
        Activation::Hardswish,
        Activation::Mish,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Laplace,
        Activation::SqrtSoftplus,
        Activation::Linear,
    ];
    for (i, activation) in all.into_iter().enumerate() {
        let mut config = tiny(Sharing::All, 2, 1, 1);
        config.hidden_act = HiddenAct::new(activation);
        let checkpoint = random(&config, Head::MaskedLm, 200 + i as u64);
        let model = export_checkpoint(&checkpoint, Task::MaskedLm, &tmp.path().join(i.to_string()));
        verify_all(&model, &checkpoint, Task::MaskedLm, vec![5]);
    }
}

#[test]
fn opsets_17_to_21_run_in_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let checkpoint = random(&tiny(Sharing::All, 2, 1, 1), Head::Pretraining, 300);
    checkpoint.write_dir(&tmp.path().join("ckpt")).unwrap();
    for opset in 17..=21 {
        let options = ExportOptions {
            opset,
            ..ExportOptions::default()
        };
        let summary = export_dir(
            &tmp.path().join("ckpt"),
            &tmp.path().join(opset.to_string()),
            &options,
        )
        .unwrap();
        verify_all(&summary.model_path, &checkpoint, Task::Pretraining, vec![6]);
    }
    let options = ExportOptions {
        opset: 16,
        ..ExportOptions::default()
    };
    assert!(matches!(
        export_dir(&tmp.path().join("ckpt"), &tmp.path().join("16"), &options),
        Err(OnnxError::Opset(16))
    ));
}

#[test]
fn external_data_loads_in_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = tiny(Sharing::None, 3, 3, 1);
    (config.hidden_size, config.intermediate_size) = (64, 128);
    let checkpoint = random(&config, Head::Pretraining, 500);
    checkpoint.write_dir(&tmp.path().join("ckpt")).unwrap();
    let options = ExportOptions {
        external_threshold: 100_000,
        ..ExportOptions::default()
    };
    let summary = export_dir(&tmp.path().join("ckpt"), &tmp.path().join("onnx"), &options).unwrap();
    assert!(summary.external_data);
    let data = tmp.path().join("onnx/model.onnx.data");
    let (model_bytes, data_bytes) = (
        std::fs::metadata(&summary.model_path).unwrap().len(),
        std::fs::metadata(&data).unwrap().len(),
    );
    assert!(
        model_bytes < data_bytes / 2,
        "model {model_bytes} B, data {data_bytes} B"
    );
    verify_all(
        &summary.model_path,
        &checkpoint,
        Task::Pretraining,
        vec![1, 8],
    );
    // Reading resolves the external data back to the same model as an in-memory build.
    let inline = build_model(&checkpoint, Task::Pretraining, 17, &summary.source_sha256).unwrap();
    assert_eq!(read_model(&summary.model_path).unwrap(), inline);
}
