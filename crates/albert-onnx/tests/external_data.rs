//! External data stays inside the model's directory: a crafted model whose tensor names a file
//! elsewhere (absolute, `..`, a symbolic link out) is refused before the file is read, with the
//! tensor and the location in the message; a model whose data lies in a subdirectory loads; the
//! writer only writes the data file names it makes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};

use albert_onnx::proto::pb::attribute_proto::AttributeType;
use albert_onnx::proto::pb::{AttributeProto, ModelProto, NodeProto, TensorProto};
use albert_onnx::proto::{read_model, write_model};
use prost::Message;

const TENSOR: &str = "albert.embeddings.word_embeddings.weight";
const SECRET: &[u8] = b"TOP-SECRET: these bytes must never reach a model. ";

fn tiny_base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/runtime/tiny-base/model.onnx")
}

fn decode(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

fn set_location(tensor: &mut TensorProto, location: &str) {
    for entry in &mut tensor.external_data {
        if entry.key == "location" {
            entry.value = location.to_string();
        }
    }
}

/// tiny-base in `dir/model.onnx` with its weights in `dir/model.onnx.data`, the word-embedding
/// table's location replaced by `location`.
fn crafted(dir: &Path, location: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("model.onnx");
    write_model(&path, read_model(&tiny_base()).unwrap(), 0).unwrap();
    let mut model = decode(&path);
    let graph = model.graph.as_mut().unwrap();
    let tensor = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == TENSOR)
        .unwrap();
    set_location(tensor, location);
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

/// A file outside the model's directory, long enough to fill the word-embedding table.
fn secret(tmp: &Path) -> PathBuf {
    let outside = tmp.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let path = outside.join("secret.bin");
    std::fs::write(&path, SECRET.repeat(100_000 / SECRET.len() + 1)).unwrap();
    path
}

fn assert_refused(model: &Path, tensor: &str, location: &str) {
    let Err(err) = read_model(model) else {
        panic!("read_model accepted `{location}` as the location of `{tensor}`");
    };
    let message = err.to_string();
    assert!(
        message.contains(tensor) && message.contains(location),
        "{message}"
    );
    assert!(
        matches!(err, albert_onnx::OnnxError::UnsafeExternalData { .. }),
        "{err:?}"
    );
}

#[test]
fn an_absolute_location_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret(tmp.path());
    let location = secret.to_str().unwrap();
    let model = crafted(&tmp.path().join("model"), location);
    assert_refused(&model, TENSOR, location);
}

#[test]
fn a_location_that_climbs_out_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    secret(tmp.path());
    let location = "../outside/secret.bin";
    let model = crafted(&tmp.path().join("model"), location);
    assert_refused(&model, TENSOR, location);
    // Climbing out and back in is refused as well: `..` is never followed.
    let location = "../model/model.onnx.data";
    let model = crafted(&tmp.path().join("model"), location);
    assert_refused(&model, TENSOR, location);
}

#[test]
fn a_symbolic_link_out_of_the_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret(tmp.path());
    let dir = tmp.path().join("model");
    let model = crafted(&dir, "innocent.bin");
    std::os::unix::fs::symlink(&secret, dir.join("innocent.bin")).unwrap();
    assert_refused(&model, TENSOR, "innocent.bin");
}

#[test]
fn a_tensor_in_a_node_attribute_is_confined_too() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret(tmp.path());
    let location = secret.to_str().unwrap();
    let path = crafted(&tmp.path().join("model"), "model.onnx.data");
    let mut model = decode(&path);
    let mut value = model.graph.as_ref().unwrap().initializer[0].clone();
    value.name = "constant_value".into();
    set_location(&mut value, location);
    model.graph.as_mut().unwrap().node.push(NodeProto {
        op_type: "Constant".into(),
        output: vec!["unused".into()],
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(value),
            ..Default::default()
        }],
        ..Default::default()
    });
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    assert_refused(&path, "constant_value", location);
}

#[test]
fn data_in_a_subdirectory_of_the_model_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let path = crafted(&dir, "model.onnx.data");
    std::fs::create_dir_all(dir.join("weights")).unwrap();
    std::fs::rename(
        dir.join("model.onnx.data"),
        dir.join("weights/model.onnx.data"),
    )
    .unwrap();
    let mut model = decode(&path);
    for tensor in &mut model.graph.as_mut().unwrap().initializer {
        set_location(tensor, "weights/model.onnx.data");
    }
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    assert_eq!(
        read_model(&path).unwrap(),
        read_model(&tiny_base()).unwrap()
    );
}

#[test]
fn the_writer_writes_only_the_data_file_name_it_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = read_model(&tiny_base()).unwrap();
    let path = tmp.path().join("exported.onnx");
    write_model(&path, model.clone(), 0).unwrap();
    let written = decode(&path);
    let locations: Vec<&str> = written
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .flat_map(|t| &t.external_data)
        .filter(|e| e.key == "location")
        .map(|e| e.value.as_str())
        .collect();
    assert!(!locations.is_empty());
    assert!(
        locations.iter().all(|l| *l == "exported.onnx.data"),
        "{locations:?}"
    );
    assert_eq!(read_model(&path).unwrap(), model);

    // A model that still refers to someone else's external data is not written.
    let secret = secret(tmp.path());
    let mut foreign = decode(&path);
    let tensor = &mut foreign.graph.as_mut().unwrap().initializer[0];
    let name = tensor.name.clone();
    set_location(tensor, secret.to_str().unwrap());
    let out = tmp.path().join("out.onnx");
    let err = write_model(&out, foreign, usize::MAX).expect_err("a foreign location");
    assert!(
        err.to_string().contains(&name) && err.to_string().contains(secret.to_str().unwrap()),
        "{err}"
    );
    assert!(!out.exists());
}
