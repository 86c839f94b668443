//! A model whose external data names a file outside its directory (absolute, `..`, a symbolic
//! link out) is refused by our own check before ONNX Runtime or tract opens anything, with the
//! tensor and the location in the message; data in a subdirectory of the model loads in both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};

use albert_onnx::proto::pb::ModelProto;
use albert_onnx::proto::{read_model, write_model};
use albert_runtime::backend::{self, Backend};
use albert_runtime::{
    BackendChoice, EmbedOptions, OrtOptions, Pipeline, PipelineOptions, Pooling, RuntimeError,
    TractOptions,
};
use prost::Message;

const WORDS: &str = "albert.embeddings.word_embeddings.weight";
const SECRET: &[u8] = b"TOP-SECRET: these bytes must never reach a model. ";

fn tiny_base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/runtime/tiny-base")
}

fn engines() -> [BackendChoice; 2] {
    [
        BackendChoice::Ort(OrtOptions::default()),
        BackendChoice::Tract(TractOptions::default()),
    ]
}

/// tiny-base as a model directory `dir` with its weights in `model.onnx.data`, each tensor's
/// location given by `location(name)`.
fn model_dir(dir: &Path, location: impl Fn(&str) -> String) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(tiny_base().join(file), dir.join(file)).unwrap();
    }
    let path = dir.join("model.onnx");
    let model = read_model(&tiny_base().join("model.onnx")).unwrap();
    write_model(&path, model, 0).unwrap();
    let mut model = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
    for tensor in &mut model.graph.as_mut().unwrap().initializer {
        let new = location(&tensor.name);
        for entry in tensor
            .external_data
            .iter_mut()
            .filter(|e| e.key == "location")
        {
            entry.value = new.clone();
        }
    }
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

fn assert_refused(dir: &Path, location: &str) {
    for choice in engines() {
        let engine = format!("{choice:?}");
        let check = |result: Result<(), RuntimeError>| {
            let Err(err) = result else {
                panic!("{engine}: loaded a model whose `{WORDS}` is at `{location}`");
            };
            let message = err.to_string();
            assert!(
                matches!(
                    err,
                    RuntimeError::Model(albert_onnx::OnnxError::UnsafeExternalData { .. })
                ),
                "{engine}: {message}"
            );
            assert!(
                message.contains(WORDS) && message.contains(location),
                "{engine}: {message}"
            );
        };
        check(backend::load(&dir.join("model.onnx"), &choice).map(drop));
        let options = PipelineOptions {
            backend: choice.clone(),
            ..PipelineOptions::default()
        };
        check(Pipeline::load(dir, &options).map(drop));
    }
}

/// A file outside the model's directory, long enough to fill the word-embedding table.
fn secret(tmp: &Path) -> PathBuf {
    let path = tmp.join("outside/secret.bin");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, SECRET.repeat(100_000 / SECRET.len() + 1)).unwrap();
    path
}

/// Every tensor at the data file the writer made, but the word-embedding table at `location`.
fn words_at(location: &str) -> impl Fn(&str) -> String {
    move |name| {
        if name == WORDS {
            location.to_string()
        } else {
            "model.onnx.data".to_string()
        }
    }
}

#[test]
fn an_absolute_location_is_refused_by_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let location = secret(tmp.path()).to_str().unwrap().to_string();
    let dir = tmp.path().join("model");
    model_dir(&dir, words_at(&location));
    assert_refused(&dir, &location);
}

#[test]
fn a_location_that_climbs_out_is_refused_by_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    secret(tmp.path());
    let location = "../outside/secret.bin";
    let dir = tmp.path().join("model");
    model_dir(&dir, words_at(location));
    assert_refused(&dir, location);
}

#[test]
fn a_symbolic_link_out_of_the_directory_is_refused_by_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret(tmp.path());
    let dir = tmp.path().join("model");
    model_dir(&dir, words_at("innocent.bin"));
    std::os::unix::fs::symlink(&secret, dir.join("innocent.bin")).unwrap();
    assert_refused(&dir, "innocent.bin");
}

#[test]
fn data_in_a_subdirectory_of_the_model_loads_in_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    model_dir(&dir, |_| "weights/model.onnx.data".to_string());
    std::fs::create_dir_all(dir.join("weights")).unwrap();
    std::fs::rename(
        dir.join("model.onnx.data"),
        dir.join("weights/model.onnx.data"),
    )
    .unwrap();
    let text = ["The whale surfaced near the ship."];
    let embed = EmbedOptions {
        pooling: Pooling::Mean,
        normalize: false,
    };
    for choice in engines() {
        let options = PipelineOptions {
            backend: choice,
            ..PipelineOptions::default()
        };
        let external = Pipeline::load(&dir, &options).unwrap();
        let inline = Pipeline::load(&tiny_base(), &options).unwrap();
        assert_eq!(
            external.embed(&text, embed).unwrap(),
            inline.embed(&text, embed).unwrap()
        );
        let backend: Box<dyn Backend> =
            backend::load(&dir.join("model.onnx"), &options.backend).unwrap();
        assert_eq!(backend.output_names(), inline.output_names());
    }
}
