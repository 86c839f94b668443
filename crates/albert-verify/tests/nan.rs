//! A NaN in a model's outputs fails every check that compares outputs: `--verify` against the
//! reference, and the converter's drift check (a NaN never scores as a match, `albert_core::compare`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};

use albert_core::Checkpoint;
use albert_onnx::export::{ExportOptions, export_dir};
use albert_onnx::graph;
use albert_onnx::proto::pb::tensor_proto::DataType;
use albert_onnx::proto::{self, read_model, write_model};
use albert_verify::conversion::{self, DriftCheck, InputSizes};
use albert_verify::verify::{self, Engine, VerifyOptions};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// `model` with every float32 weight replaced by NaN, written to `out`: every output is NaN.
fn poisoned(model: &Path, out: &Path) {
    let mut proto = read_model(model).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    for tensor in &mut graph.initializer {
        if tensor.data_type == DataType::Float as i32 {
            let dims: Vec<usize> = tensor.dims.iter().map(|&d| d as usize).collect();
            let nan = vec![f32::NAN; graph::numel(tensor)];
            *tensor = proto::tensor_f32(&tensor.name, &dims, &nan);
        }
    }
    write_model(out, proto, proto::EXTERNAL_DATA_THRESHOLD).unwrap();
}

#[test]
fn a_nan_export_fails_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let checkpoint_dir = repo("tests/fixtures/hf/masked_lm");
    let checkpoint = Checkpoint::read_dir(&checkpoint_dir).unwrap();
    let summary = export_dir(
        &checkpoint_dir,
        &tmp.path().join("onnx"),
        &ExportOptions::default(),
    )
    .unwrap();
    let nan = tmp.path().join("nan.onnx");
    poisoned(&summary.model_path, &nan);
    let options = VerifyOptions::defaults_for(&checkpoint);
    let rows = verify::verify(&nan, &checkpoint, summary.task, &options).unwrap();
    assert!(
        rows.iter().all(|r| !r.passes(options.tolerance)),
        "{rows:?}"
    );
    let err = verify::check(&rows, options.tolerance)
        .unwrap_err()
        .to_string();
    assert!(err.contains("onnxruntime batch 1 length 1"), "{err}");
}

#[test]
fn a_nan_conversion_fails_the_drift_check() {
    let tmp = tempfile::tempdir().unwrap();
    let source = repo("tests/fixtures/runtime/tiny-base/model.onnx");
    let nan = tmp.path().join("nan.onnx");
    poisoned(&source, &nan);
    let report = conversion::check(&DriftCheck {
        source: &source,
        reference: &source,
        converted: &nan,
        engines: &[Engine::OnnxRuntime, Engine::Tract],
        ort_library: None,
        ort_only: false,
        sizes: InputSizes::of(&read_model(&source).unwrap(), source.parent()),
        text: None,
    })
    .unwrap();
    assert!(!report.rows.is_empty());
    let verdict = report.verdict(1e-5, false, false);
    assert!(verdict.is_err(), "{verdict:?}: {:?}", report.rows);
    // tract's Tanh maps NaN to finite values, so its pooler output is no NaN (only wrong); every
    // other output is NaN.
    let nan_rows = report
        .rows
        .iter()
        .filter(|r| r.engine == "onnxruntime" || r.output == "last_hidden_state");
    for row in nan_rows {
        assert!(!row.drift.within(f64::MAX), "{row:?}");
        // JSON has no infinities: the row says why instead.
        let json = serde_json::to_value(row).unwrap();
        assert!(json["max_abs"].is_null(), "{json}");
        assert!(
            json["fault"]
                .as_str()
                .is_some_and(|f| f.starts_with("non-finite value") && f.ends_with("against NaN")),
            "{json}"
        );
    }
    let err = verdict.unwrap_err().to_string();
    assert!(err.contains("not comparable"), "{err}");
    // Lossy or not, a NaN is a broken model.
    assert!(report.verdict(1e-5, true, false).is_err());
}
