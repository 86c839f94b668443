//! Our ONNX messages (`proto::pb`) keep everything in a model: the ONNX project's own Python
//! package reads the same model from every fixture (our exports, torch legacy and dynamo
//! exports, ONNX Runtime-optimized and -quantized graphs) before and after our decode and
//! encode; what we write re-encodes byte for byte; every field of the IR survives a round trip,
//! numbered as the spec numbers it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};

use albert_onnx::proto::pb::tensor_proto::DataType;
use albert_onnx::proto::pb::{
    DeviceConfigurationProto, FunctionProto, GraphProto, IntIntListEntryProto, ModelProto,
    NodeDeviceConfigurationProto, NodeProto, OperatorSetIdProto, ShardedDimProto,
    ShardingSpecProto, SimpleShardedDimProto, SparseTensorProto, StringStringEntryProto,
    TensorAnnotation, TrainingInfoProto, TypeProto, simple_sharded_dim_proto, type_proto,
};
use albert_onnx::proto::{self, Dim, metadata, tensor_f32, tensor_i64, value_info};
use prost::Message;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.onnx` file under tests/fixtures.
fn fixtures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "onnx") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("tests/fixtures"), &mut out);
    out.sort();
    out
}

/// Whether the ONNX Python package (the project's venv, tools/setup.sh) reads the same model
/// from both files. protobuf's equality covers every field its schema declares; the one
/// difference allowed is a singular scalar written explicitly with its default value (`i: 0` on
/// an `INT` attribute, an empty `doc_string`): our messages, like the generated ones they
/// replace, keep such a value but not the fact it was written (see `proto::pb`).
fn onnx_reads_the_same(a: &Path, b: &Path) -> bool {
    let script = r#"import sys, onnx
def defaults_cleared(m):
    for f, v in m.ListFields():
        if f.is_repeated:
            for x in (v if f.message_type is not None else []):
                defaults_cleared(x)
        elif f.message_type is not None:
            defaults_cleared(v)
        elif f.containing_oneof is None and v == f.default_value:
            m.ClearField(f.name)
    return m
a, b = (defaults_cleared(onnx.load(p, load_external_data=False)) for p in sys.argv[1:])
print(a == b)"#;
    common::venv_python(script, &[a, b]).trim() == "True"
}

#[test]
fn every_fixture_round_trips_with_nothing_dropped() {
    let files = fixtures();
    assert!(files.len() >= 7, "{files:?}");
    let tmp = tempfile::tempdir().unwrap();
    for (i, file) in files.iter().enumerate() {
        let model = ModelProto::decode(std::fs::read(file).unwrap().as_slice()).unwrap();
        let again = model.encode_to_vec();
        assert_eq!(ModelProto::decode(again.as_slice()).unwrap(), model);
        let copy = tmp.path().join(format!("{i}.onnx"));
        std::fs::write(&copy, &again).unwrap();
        assert!(
            onnx_reads_the_same(file, &copy),
            "{}: the ONNX package reads a different model after our round trip",
            file.display()
        );
    }
}

#[test]
fn our_writes_round_trip_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, file) in fixtures().iter().enumerate() {
        let path = tmp.path().join(format!("{i}.onnx"));
        proto::write_model(
            &path,
            proto::read_model(file).unwrap(),
            proto::EXTERNAL_DATA_THRESHOLD,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let model = ModelProto::decode(bytes.as_slice()).unwrap();
        assert!(model.encode_to_vec() == bytes, "{}", file.display());
    }
}

/// A model using every part of the IR that ALBERT exports do not: each must survive encoding
/// and decoding (prost would drop a field it does not declare).
fn everything() -> ModelProto {
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let sequence = TypeProto {
        value: Some(type_proto::Value::SequenceType(type_proto::Sequence {
            elem_type: Some(Box::new(
                value_info("x", DataType::Float, &[Dim::Symbol("n")])
                    .r#type
                    .unwrap(),
            )),
        })),
        denotation: "TENSOR_SEQUENCE".into(),
    };
    let optional = TypeProto {
        value: Some(type_proto::Value::OptionalType(type_proto::Optional {
            elem_type: Some(Box::new(sequence.clone())),
        })),
        ..Default::default()
    };
    let map = TypeProto {
        value: Some(type_proto::Value::MapType(type_proto::Map {
            key_type: DataType::Int64 as i32,
            value_type: Some(Box::new(optional.clone())),
        })),
        ..Default::default()
    };
    let opaque = TypeProto {
        value: Some(type_proto::Value::OpaqueType(type_proto::Opaque {
            domain: "example.com".into(),
            name: "Handle".into(),
        })),
        ..Default::default()
    };
    let sparse_type = TypeProto {
        value: Some(type_proto::Value::SparseTensorType(
            type_proto::SparseTensor {
                elem_type: DataType::Float as i32,
                shape: None,
            },
        )),
        ..Default::default()
    };
    let sparse = SparseTensorProto {
        values: Some(tensor_f32("s", &[2], &[1.0, 2.0])),
        indices: Some(tensor_i64("s_idx", &[2], &[0, 3])),
        dims: vec![4],
    };
    let mut x = value_info("x", DataType::Float, &[Dim::Symbol("n")]);
    x.doc_string = "the input".into();
    x.metadata_props = vec![entry("value", "meta")];
    let mut weight = tensor_f32("w", &[2], &[0.5, 1.5]);
    weight.doc_string = "a weight".into();
    weight.metadata_props = vec![entry("tensor", "meta")];
    weight.segment = Some(albert_onnx::proto::pb::tensor_proto::Segment { begin: 0, end: 2 });
    let mut attribute = proto::attr_ints("axes", &[0, -1]);
    attribute.doc_string = "attribute doc".into();
    attribute.ref_attr_name = "outer_axes".into();
    attribute.tp = Some(map.clone());
    attribute.type_protos = vec![opaque, sparse_type];
    attribute.sparse_tensor = Some(sparse.clone());
    attribute.sparse_tensors = vec![sparse.clone()];
    let node = NodeProto {
        input: vec!["x".into(), "w".into()],
        output: vec!["y".into()],
        name: "call".into(),
        op_type: "Scale".into(),
        domain: "local".into(),
        overload: "v2".into(),
        attribute: vec![attribute.clone()],
        doc_string: "node doc".into(),
        metadata_props: vec![entry("node", "meta")],
        device_configurations: vec![NodeDeviceConfigurationProto {
            configuration_id: "two".into(),
            pipeline_stage: 1,
            sharding_spec: vec![ShardingSpecProto {
                tensor_name: "x".into(),
                device: vec![0, 1],
                index_to_device_group_map: vec![IntIntListEntryProto {
                    key: 0,
                    value: vec![0, 1],
                }],
                sharded_dim: vec![ShardedDimProto {
                    axis: 0,
                    simple_sharding: vec![SimpleShardedDimProto {
                        dim: Some(simple_sharded_dim_proto::Dim::DimParam("n".into())),
                        num_shards: 2,
                    }],
                }],
            }],
        }],
    };
    let graph = GraphProto {
        node: vec![node.clone()],
        name: "g".into(),
        initializer: vec![weight],
        sparse_initializer: vec![sparse],
        doc_string: "graph doc".into(),
        input: vec![x.clone()],
        output: vec![value_info("y", DataType::Float, &[Dim::Fixed(2)])],
        value_info: vec![x],
        quantization_annotation: vec![TensorAnnotation {
            tensor_name: Some("w".into()),
            quant_parameter_tensor_names: vec![entry("SCALE_TENSOR", "w_scale")],
        }],
        metadata_props: vec![entry("graph", "meta")],
    };
    ModelProto {
        ir_version: 11,
        producer_name: "test".into(),
        producer_version: "1".into(),
        domain: "ai.albert".into(),
        model_version: 3,
        doc_string: "model doc".into(),
        graph: Some(graph.clone()),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 21,
        }],
        metadata_props: metadata(&[("albert.task", "base".into())]),
        training_info: vec![TrainingInfoProto {
            initialization: Some(graph.clone()),
            algorithm: Some(graph),
            initialization_binding: vec![entry("w", "w_init")],
            update_binding: vec![entry("w", "w_next")],
        }],
        functions: vec![FunctionProto {
            name: Some("Scale".into()),
            input: vec!["x".into()],
            output: vec!["y".into()],
            attribute: vec!["factor".into()],
            attribute_proto: vec![attribute],
            node: vec![node],
            doc_string: Some("function doc".into()),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 21,
            }],
            domain: Some("local".into()),
            overload: "v2".into(),
            value_info: vec![value_info("x", DataType::Float, &[Dim::Fixed(2)])],
            metadata_props: vec![entry("function", "meta")],
        }],
        configuration: vec![DeviceConfigurationProto {
            name: "two".into(),
            num_devices: 2,
            device: vec!["cuda:0".into(), "cuda:1".into()],
        }],
    }
}

/// The model as the ONNX Python package understands it: parsed, printed in protobuf's text
/// format and parsed again, which keeps only the fields its schema declares; a field we numbered
/// differently from the spec would be lost on the way.
fn through_onnx_text_format(model: &Path) -> ModelProto {
    let out = model.with_extension("text.onnx");
    let script = "import sys, onnx\nfrom google.protobuf import text_format\nm = onnx.load(sys.argv[1], load_external_data=False)\nn = text_format.Parse(text_format.MessageToString(m), onnx.ModelProto())\nopen(sys.argv[2], 'wb').write(n.SerializeToString())";
    common::venv_python(script, &[model, out.as_path()]);
    ModelProto::decode(std::fs::read(&out).unwrap().as_slice()).unwrap()
}

#[test]
fn every_field_of_the_ir_survives_a_round_trip() {
    let model = everything();
    let bytes = model.encode_to_vec();
    assert_eq!(ModelProto::decode(bytes.as_slice()).unwrap(), model);
    // Through our reader and writer too.
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("a.onnx"), tmp.path().join("b.onnx"));
    std::fs::write(&first, &bytes).unwrap();
    let read = proto::read_model(&first).unwrap();
    assert_eq!(read, model);
    assert_eq!(read.metadata_props, model.metadata_props);
    assert_eq!(read.doc_string, "model doc");
    assert_eq!(read.training_info, model.training_info);
    proto::write_model(&second, read, proto::EXTERNAL_DATA_THRESHOLD).unwrap();
    assert_eq!(std::fs::read(&second).unwrap(), bytes);
    // Our field numbers are the spec's.
    assert_eq!(through_onnx_text_format(&second), model);
}
