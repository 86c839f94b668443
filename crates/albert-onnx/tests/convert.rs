//! The converter's passes without an engine: the folded graph's size does not grow with the
//! layers, dedupe undoes ONNX Runtime's optimizer copies in a third-party fixture
//! (tools/make_convert_fixtures.py), and a graph without repeated layers is not folded. The
//! converted models' outputs, in both engines, are crates/albert-verify/tests/convert.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use albert_core::{Head, Sharing};
use albert_onnx::OnnxError;
use albert_onnx::convert::report::ModelStats;
use albert_onnx::convert::{self, ConvertOptions, LoopMode, fold};
use albert_onnx::export::Task;
use albert_onnx::proto::read_model;
use albert_onnx::reference::Inputs;
use ndarray::ArrayD;

mod common;

use common::{converted, export, has_op, tiny};

const FOLD: ConvertOptions = ConvertOptions {
    loops: LoopMode::Fold,
    fuse: None,
    best_effort: false,
    quantize: None,
    float16: false,
};

#[test]
fn folded_node_count_does_not_depend_on_the_layer_count() {
    let tmp = tempfile::tempdir().unwrap();
    for sharing in Sharing::ALL {
        let counts: Vec<usize> = [3, 6, 12]
            .iter()
            .map(|&layers| {
                let config = tiny(sharing, layers, 1, 1, 61);
                let dir = tmp.path().join(format!("{sharing:?}-{layers}"));
                let (_, model) = export(&config, Head::MaskedLm, Task::MaskedLm, 7, &dir);
                let (folded, _) = converted(&model, &FOLD, &dir.join("folded.onnx"));
                ModelStats::of(&folded, 0).nodes_with_subgraphs
            })
            .collect();
        assert!(
            counts.iter().all(|&c| c == counts[0]),
            "{sharing:?}: {counts:?}"
        );
    }
}

/// A third-party fixture: its model and HF's outputs on its inputs.
fn third_party(kind: &str) -> (PathBuf, Inputs, BTreeMap<String, ArrayD<f32>>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/convert")
        .join(kind);
    let (inputs, outputs) = common::read_io(&dir.join("reference.safetensors"));
    (dir.join("model.onnx"), inputs, outputs)
}

#[test]
fn dedupe_undoes_the_copies_of_onnx_runtimes_optimizer() {
    // ORT's attention fusion packs Q, K, V into a new tensor per layer and keeps the originals for
    // the unfused first layer; after dedupe the float parameters stored equal a plain export's.
    let stored = |kind: &str| {
        let (model, _, _) = third_party(kind);
        let mut proto = read_model(&model).unwrap();
        let before = ModelStats::of(&proto, 0).stored_float_elements;
        let graph = proto.graph.as_mut().unwrap();
        convert::cleanup::cleanup(graph).unwrap();
        convert::dedupe::dedupe(graph).unwrap();
        (before, ModelStats::of(&proto, 0).stored_float_elements)
    };
    let (_, plain) = stored("torch-legacy");
    let (optimized_before, optimized_after) = stored("ort-optimized");
    assert!(
        optimized_before as f64 > 1.2 * plain as f64,
        "{optimized_before} vs {plain}"
    );
    assert!(
        optimized_after as f64 <= 1.01 * plain as f64,
        "{optimized_after} vs {plain}"
    );
}

#[test]
fn a_graph_without_repeated_layers_cannot_be_folded() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny(Sharing::All, 1, 1, 1, 61);
    let (_, model) = export(&config, Head::Base, Task::Base, 1, tmp.path());
    let mut proto = read_model(&model).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    convert::cleanup::cleanup(graph).unwrap();
    let err = fold::fold(graph).unwrap_err();
    assert!(matches!(err, OnnxError::CannotFold(_)), "{err}");
    assert!(err.to_string().starts_with("cannot fold: "), "{err}");

    // Best effort: the conversion goes on, unfolded, and says why.
    let mut proto = read_model(&model).unwrap();
    let options = ConvertOptions {
        best_effort: true,
        ..FOLD
    };
    let log = convert::convert(&mut proto, &options).unwrap();
    assert!(
        log.iter()
            .any(|l| l.pass == "fold" && l.summary.contains("skipped")),
        "{log:?}"
    );
    assert!(!has_op(proto.graph.as_ref().unwrap(), "Scan"));
}
