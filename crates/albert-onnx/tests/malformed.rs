//! Graphs from elsewhere may be malformed: a node with fewer inputs or outputs than its operator
//! needs makes every combination of the converter's passes fail with an error naming the node
//! (its name and operator), never panic; one input fewer (perhaps an optional one) never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use albert_onnx::convert::{self, ConvertOptions, FuseFlavour, LoopMode, QuantFormat};
use albert_onnx::convert::{QuantizeOptions, fold};
use albert_onnx::proto::pb::{ModelProto, NodeProto};
use albert_onnx::proto::read_model;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Every combination of the passes' options.
fn every_option() -> Vec<ConvertOptions> {
    let mut all = Vec::new();
    for (loops, best_effort) in [
        (LoopMode::Keep, false),
        (LoopMode::Fold, false),
        (LoopMode::Fold, true),
        (LoopMode::Unfold, false),
    ] {
        for fuse in [None, Some(FuseFlavour::Portable), Some(FuseFlavour::Ort)] {
            let int8 = |format| {
                Some(QuantizeOptions {
                    format,
                    ..QuantizeOptions::default()
                })
            };
            for (quantize, float16) in [
                (None, false),
                (int8(QuantFormat::Portable), false),
                (int8(QuantFormat::Ort), false),
                (None, true),
            ] {
                all.push(ConvertOptions {
                    loops,
                    fuse,
                    best_effort,
                    quantize,
                    float16,
                });
            }
        }
    }
    all
}

/// Our export, the same folded into a `Scan` loop, and third-party graphs (torch's legacy
/// exporter, ONNX Runtime's optimizer with its contrib ops).
fn models() -> Vec<(String, ModelProto)> {
    let ours = read_model(&repo("tests/fixtures/runtime/tiny-base/model.onnx")).unwrap();
    let mut folded = ours.clone();
    fold::fold(folded.graph.as_mut().unwrap()).unwrap();
    let mut all = vec![("ours".into(), ours), ("ours folded".into(), folded)];
    for fixture in ["torch-legacy", "ort-optimized"] {
        let path = repo(&format!("tests/fixtures/convert/{fixture}/model.onnx"));
        all.push((fixture.into(), read_model(&path).unwrap()));
    }
    all
}

#[test]
fn a_node_missing_inputs_or_outputs_is_an_error_naming_it_never_a_panic() {
    std::panic::set_hook(Box::new(|_| {}));
    let options = every_option();
    let mut failures = Vec::new();
    let mut cases = 0;
    for (model_name, model) in models() {
        let graph = model.graph.as_ref().unwrap();
        let mut seen = Vec::new();
        for (i, node) in graph.node.iter().enumerate() {
            let op = (node.domain.clone(), node.op_type.clone());
            if seen.contains(&op) {
                continue;
            }
            seen.push(op);
            type Damage = fn(&mut NodeProto);
            let mut broken: Vec<(&str, Damage)> = Vec::new();
            if !node.input.is_empty() {
                broken.push(("no inputs", |n| n.input.clear()));
                // Often still valid ONNX (an optional input): the conversion may go on, or fail,
                // but never panic.
                broken.push(("its last input dropped", |n| {
                    n.input.pop();
                }));
            }
            broken.push(("no outputs", |n| n.output.clear()));
            for (what, damage) in broken {
                let mut bad = model.clone();
                damage(&mut bad.graph.as_mut().unwrap().node[i]);
                let named = format!("`{}` ({})", node.name, node.op_type);
                for o in &options {
                    cases += 1;
                    let mut m = bad.clone();
                    let case = format!("{model_name}: {named} with {what}, {o:?}");
                    match catch_unwind(AssertUnwindSafe(|| convert::convert(&mut m, o))) {
                        Err(_) => failures.push(format!("{case}: panicked")),
                        Ok(_) if what == "its last input dropped" => {}
                        Ok(Ok(_)) => failures.push(format!("{case}: converted")),
                        Ok(Err(e)) if !e.to_string().contains(&named) => {
                            failures.push(format!("{case}: error without the node: {e}"))
                        }
                        Ok(Err(_)) => {}
                    }
                }
            }
        }
    }
    let _ = std::panic::take_hook();
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed; the first 20:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
