//! The converter's passes without an engine: the folded graph's size does not grow with the
//! layers, dedupe undoes ONNX Runtime's optimizer copies in a third-party fixture
//! (tools/make_convert_fixtures.py), and a graph without repeated layers is not folded. The
//! converted models' outputs, in both engines, are crates/albert-verify/tests/convert.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use albert_core::{Activation, Checkpoint, Head, HiddenAct, Sharing};
use albert_onnx::OnnxError;
use albert_onnx::convert::report::ModelStats;
use albert_onnx::convert::{
    self, ConvertOptions, FuseFlavour, INT8_WEIGHTS_KEY, Int8Weights, LoopMode, QuantFormat,
    QuantizeOptions, fold, int8_weights_of,
};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_onnx::proto::{EXTERNAL_DATA_THRESHOLD, read_model, write_model};
use albert_onnx::reference::Inputs;
use ndarray::ArrayD;

mod common;

use common::{assert_onnx_checker_accepts, converted, export, has_domain, has_op, tiny};

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

/// Issue #19, finding 7: every file export and convert write is valid ONNX, whatever the passes
/// and their combination; the portable forms use standard ONNX only (the tanh GELU written out
/// in standard ops below opset 20, `Gelu` from opset 20), and the `ort` forms declare the
/// `com.microsoft` opset their contrib ops need (loop bodies use the model's imports).
#[test]
fn every_exported_and_converted_file_passes_the_onnx_checker() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sources: Vec<(String, PathBuf, i64, bool)> = Vec::new();
    for (i, (activation, opset)) in [
        (Activation::GeluTanh, 17),
        (Activation::GeluTanh, 20),
        (Activation::Gelu, 17),
        (Activation::Gelu, 21),
    ]
    .into_iter()
    .enumerate()
    {
        let mut config = tiny(Sharing::All, 3, 1, 1, 61);
        config.hidden_act = HiddenAct::new(activation);
        let dir = tmp.path().join(format!("{activation:?}-{opset}"));
        let checkpoint = Checkpoint::random(&config, Head::MaskedLm.parts(), 40 + i as u64)
            .unwrap()
            .perturbed(50 + i as u64, 0.3);
        checkpoint.write_dir(&dir.join("ckpt")).unwrap();
        let options = ExportOptions {
            task: Some(Task::MaskedLm),
            opset,
            ..ExportOptions::default()
        };
        let model = export_dir(&dir.join("ckpt"), &dir.join("onnx"), &options)
            .unwrap()
            .model_path;
        sources.push((format!("{activation:?}-{opset}"), model, opset, false));
    }
    // A model folded already: the passes then work inside its Scan body.
    let folded = tmp.path().join("folded-source.onnx");
    converted(&sources[0].1, &FOLD, &folded);
    sources.push(("folded".to_string(), folded, 17, false));
    for kind in ["torch-legacy", "torch-dynamo", "ort-optimized"] {
        let (model, _, _) = third_party(kind);
        let opset = read_model(&model).unwrap().opset_import[0].version;
        sources.push((kind.to_string(), model, opset, true));
    }
    let quantize = |format| {
        Some(QuantizeOptions {
            format,
            ..QuantizeOptions::default()
        })
    };
    let mut files: Vec<PathBuf> = sources.iter().map(|(_, m, _, _)| m.clone()).collect();
    let mut refused = Vec::new();
    for (name, model, opset, third_party) in &sources {
        for loops in [LoopMode::Keep, LoopMode::Fold] {
            for fuse in [None, Some(FuseFlavour::Portable), Some(FuseFlavour::Ort)] {
                for (quantize, float16) in [
                    (None, false),
                    (None, true),
                    (quantize(QuantFormat::Portable), false),
                    (quantize(QuantFormat::Ort), false),
                ] {
                    let ort_ops = fuse == Some(FuseFlavour::Ort)
                        || quantize
                            .as_ref()
                            .is_some_and(|q| q.format == QuantFormat::Ort);
                    // int8 and fp16 fuse (portable) when no flavour is asked for.
                    let fused = fuse.is_some() || quantize.is_some() || float16;
                    let options = ConvertOptions {
                        loops,
                        fuse,
                        best_effort: true,
                        quantize,
                        float16,
                    };
                    let out = tmp.path().join(format!("{name}-{}.onnx", files.len()));
                    let mut proto = read_model(model).unwrap();
                    let log = match convert::convert(&mut proto, &options) {
                        Ok(log) => log,
                        // A third party's graph may hold what a pass refuses (torch-legacy's
                        // ConstantOfShape in float16): then nothing is written.
                        Err(e) if *third_party => {
                            assert!(float16, "{name} {options:?}: {e}");
                            refused.push(format!("{name} {options:?}: {e}"));
                            continue;
                        }
                        Err(e) => panic!("{name} {options:?}: {e}"),
                    };
                    write_model(&out, proto.clone(), EXTERNAL_DATA_THRESHOLD).unwrap();
                    let graph = proto.graph.as_ref().unwrap();
                    let microsoft = has_domain(graph, "com.microsoft");
                    let imported = proto
                        .opset_import
                        .iter()
                        .any(|o| o.domain == "com.microsoft");
                    assert!(!microsoft || imported, "{name} {options:?}");
                    if !ort_ops && name != "ort-optimized" {
                        // Portable means standard ONNX only.
                        assert!(!microsoft, "{name} {options:?}: {log:?}");
                        if fused {
                            // The GELU: `Gelu` from opset 20, standard ops below.
                            assert_eq!(has_op(graph, "Gelu"), *opset >= 20, "{name} {options:?}");
                        }
                    }
                    files.push(out);
                }
            }
        }
    }
    // 4 exports, one folded, and 3 fixtures, each converted 24 ways, but for the float16
    // conversions a fixture's graph refuses.
    assert_eq!(files.len(), 8 + 8 * 24 - refused.len());
    assert_onnx_checker_accepts(&files);
}

/// The int8 weight encodings (`--int8-weights`): every stored weight in its range (full
/// [-127, 127] reaching 127, reduced [-63, 63] reaching 63, uint8 [1, 255] around the zero point
/// 128), named in the metadata, inferred the same from the weights alone (a third party's model),
/// and accepted by the ONNX checker in both formats and with a folded loop. ONNX Runtime's u8×s8
/// kernels saturate on x86-64 without VNNI for weights outside [-64, 63] (albert_core::cpu); the
/// engines' accuracy per encoding is crates/albert-verify/tests/convert.rs.
#[test]
fn each_int8_weight_encoding_is_stored_in_its_range_and_recorded() {
    use albert_onnx::proto::pb::tensor_proto::DataType;
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny(Sharing::All, 3, 1, 1, 1200);
    let (_, model) = export(&config, Head::MaskedLm, Task::MaskedLm, 5, tmp.path());
    assert_eq!(QuantizeOptions::default().weights, Int8Weights::Reduced);
    let mut files = Vec::new();
    for weights in [Int8Weights::Full, Int8Weights::Reduced, Int8Weights::Uint8] {
        for (format, loops) in [
            (QuantFormat::Portable, LoopMode::Keep),
            (QuantFormat::Ort, LoopMode::Fold),
        ] {
            let options = ConvertOptions {
                loops,
                quantize: Some(QuantizeOptions {
                    format,
                    weights,
                    ..QuantizeOptions::default()
                }),
                ..ConvertOptions::default()
            };
            let out = tmp.path().join(format!("{weights:?}-{format:?}.onnx"));
            let (mut proto, log) = converted(&model, &options, &out);
            let quantize = log.iter().find(|l| l.pass == "quantize").unwrap();
            assert!(quantize.summary.contains(weights.name()), "{log:?}");
            assert_eq!(
                albert_onnx::proto::metadata_value(&proto, INT8_WEIGHTS_KEY),
                Some(weights.name())
            );
            // The weights are the rank ≥ 2 integer tensors (zero points are rank 1).
            let graph = proto.graph.as_ref().unwrap();
            let stored: Vec<_> = graph
                .initializer
                .iter()
                .filter(|t| t.dims.len() >= 2)
                .collect();
            let of_type = |ty: DataType| -> Vec<i32> {
                stored
                    .iter()
                    .filter(|t| t.data_type == ty as i32)
                    .flat_map(|t| t.raw_data.iter())
                    .map(|&b| {
                        if ty == DataType::Int8 {
                            i32::from(b as i8)
                        } else {
                            i32::from(b)
                        }
                    })
                    .collect()
            };
            let (int8, uint8) = (of_type(DataType::Int8), of_type(DataType::Uint8));
            let (lo, hi, values) = match weights {
                Int8Weights::Full => (-127, 127, &int8),
                Int8Weights::Reduced => (-63, 63, &int8),
                Int8Weights::Uint8 => (1, 255, &uint8),
            };
            assert!(!values.is_empty(), "{weights:?} {format:?}: no weights");
            assert!(
                values.iter().all(|v| (lo..=hi).contains(v)),
                "{weights:?} {format:?}: a weight outside [{lo}, {hi}]"
            );
            // Each channel's largest weight maps to the end of the range.
            assert!(values.contains(&hi), "{weights:?} {format:?}");
            let other = if weights == Int8Weights::Uint8 {
                &int8
            } else {
                &uint8
            };
            assert!(other.is_empty(), "{weights:?} {format:?}: mixed encodings");
            if weights == Int8Weights::Uint8 {
                let zero_points: Vec<u8> = graph
                    .initializer
                    .iter()
                    .filter(|t| t.name.ends_with(".zero_point"))
                    .flat_map(|t| {
                        assert_eq!(t.data_type, DataType::Uint8 as i32, "{}", t.name);
                        t.raw_data.clone()
                    })
                    .collect();
                assert!(!zero_points.is_empty() && zero_points.iter().all(|&z| z == 128));
            }
            assert_eq!(int8_weights_of(&proto), Some(weights));
            // A third party's model says nothing: inferred from the weights.
            proto.metadata_props.retain(|e| e.key != INT8_WEIGHTS_KEY);
            assert_eq!(
                int8_weights_of(&proto),
                Some(weights),
                "{weights:?} {format:?}"
            );
            files.push(out);
        }
    }
    // The float32 source has no integer product; ONNX Runtime's `quantize_dynamic` (its default
    // QInt8 weights, reduce_range off) writes full-range weights.
    assert_eq!(int8_weights_of(&read_model(&model).unwrap()), None);
    let (ort_quantized, _, _) = third_party("ort-quantized");
    assert_eq!(
        int8_weights_of(&read_model(&ort_quantized).unwrap()),
        Some(Int8Weights::Full)
    );
    assert_onnx_checker_accepts(&files);
}
