//! config.json reading/writing and checkpoint validation, on the HF fixtures in tests/fixtures/hf.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use albert_core::checkpoint::{CONFIG_FILE, WEIGHTS_FILE, read_safetensors};
use albert_core::{AlbertConfig, AlbertError, Checkpoint, Head, Sharing, TensorF32};

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hf")
        .join(case)
}

fn config_error(json: &str) -> String {
    AlbertConfig::from_json_str(json, Path::new("config.json"))
        .expect_err("must fail")
        .to_string()
}

#[test]
fn hf_config_round_trips_unchanged() {
    let path = fixture("sequence_classification").join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let config = AlbertConfig::from_json_str(&text, &path).unwrap();
    assert_eq!(config.num_labels(), 3);
    assert_eq!(config.sharing, Sharing::All);
    assert!(config.extra.contains_key("transformers_version"));
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let written: serde_json::Value = serde_json::from_str(&config.to_json_string()).unwrap();
    assert_eq!(written, original);
}

#[test]
fn minimal_config_takes_hf_defaults() {
    let config = AlbertConfig::from_json_str("{}", Path::new("c.json")).unwrap();
    assert_eq!(config, AlbertConfig::default());
    assert_eq!(
        (
            config.hidden_size,
            config.num_attention_heads,
            config.embedding_size
        ),
        (4096, 64, 128)
    );
}

#[test]
fn sharing_is_written_only_when_not_all() {
    let config = AlbertConfig::default();
    assert!(!config.to_json_string().contains("\"sharing\""));
    let ffn = config.clone().with_sharing(Sharing::Ffn);
    let text = ffn.to_json_string();
    assert!(text.contains("\"sharing\": \"ffn\""));
    assert_eq!(
        AlbertConfig::from_json_str(&text, Path::new("c")).unwrap(),
        ffn
    );
    let none = config.with_sharing(Sharing::None);
    assert_eq!(none.num_hidden_groups, none.num_hidden_layers);
}

#[test]
fn bad_fields_are_named() {
    let e = config_error(r#"{"hidden_act": "gelu_nope"}"#);
    assert!(
        e.contains("hidden_act") && e.contains("gelu_nope") && e.contains("gelu_new"),
        "{e}"
    );
    let e = config_error(r#"{"hidden_size": "big"}"#);
    assert!(e.contains("hidden_size") && e.contains("big"), "{e}");
    let e = config_error(r#"{"hidden_size": 100, "num_attention_heads": 12}"#);
    assert!(
        e.contains("num_attention_heads") && e.contains("divisor of hidden_size (100)"),
        "{e}"
    );
    let e = config_error(r#"{"num_hidden_layers": 4, "num_hidden_groups": 5}"#);
    assert!(
        e.contains("num_hidden_groups") && e.contains("at most num_hidden_layers (4)"),
        "{e}"
    );
    let e = config_error(r#"{"sharing": "half"}"#);
    assert!(e.contains("sharing") && e.contains("half"), "{e}");
    let e = config_error(r#"{"sharing": "none", "num_hidden_layers": 4, "num_hidden_groups": 1}"#);
    assert!(e.contains("num_hidden_groups") && e.contains("none"), "{e}");
    let e = config_error(r#"{"hidden_dropout_prob": 1.5}"#);
    assert!(
        e.contains("hidden_dropout_prob") && e.contains("1.5"),
        "{e}"
    );
    let e = config_error(r#"{"vocab_size": 0}"#);
    assert!(e.contains("vocab_size"), "{e}");
    let e = config_error(r#"{"model_type": "bert"}"#);
    assert!(e.contains("model_type") && e.contains("bert"), "{e}");
    assert!(config_error("{").contains("config.json"));
}

/// Writes a safetensors file with arbitrary tensors (bypassing our validating writer).
fn write_raw(dir: &Path, config_from: &Path, tensors: &BTreeMap<String, TensorF32>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(config_from.join(CONFIG_FILE), dir.join(CONFIG_FILE)).unwrap();
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<_> = bytes
        .iter()
        .map(|(n, b, s)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let out = safetensors::serialize(views, Some(HashMap::from([("format".into(), "pt".into())])))
        .unwrap();
    std::fs::write(dir.join(WEIGHTS_FILE), out).unwrap();
}

#[test]
fn reads_every_hf_head_class() {
    for (case, head) in [
        ("base_model", Head::Base),
        ("masked_lm", Head::MaskedLm),
        ("pretraining_default", Head::Pretraining),
        ("sequence_classification", Head::SequenceClassification),
        ("token_classification", Head::TokenClassification),
        ("question_answering", Head::QuestionAnswering),
    ] {
        let checkpoint = Checkpoint::read_dir(&fixture(case)).unwrap();
        assert_eq!(checkpoint.parts.head(), Some(head), "{case}");
        assert!(
            checkpoint
                .tensors
                .keys()
                .all(|n| !n.starts_with("embeddings.")),
            "{case}: canonical names"
        );
    }
}

#[test]
fn missing_unexpected_and_misshaped_tensors_are_named() {
    let source = fixture("pretraining_default");
    let good = read_safetensors(&source.join(WEIGHTS_FILE)).unwrap();
    let tmp = tempfile::tempdir().unwrap();

    let name = "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.key.bias";
    let mut missing = good.clone();
    missing.remove(name);
    write_raw(&tmp.path().join("missing"), &source, &missing);
    match Checkpoint::read_dir(&tmp.path().join("missing")) {
        Err(AlbertError::MissingTensor {
            name: n, expected, ..
        }) => {
            assert_eq!(n, name);
            assert_eq!(expected, vec![32]);
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }

    let mut unexpected = good.clone();
    let extra = "albert.encoder.albert_layer_groups.1.albert_layers.0.ffn.bias";
    unexpected.insert(
        extra.into(),
        TensorF32::new(extra, vec![48], vec![0.0; 48]).unwrap(),
    );
    write_raw(&tmp.path().join("unexpected"), &source, &unexpected);
    let err = Checkpoint::read_dir(&tmp.path().join("unexpected")).unwrap_err();
    assert!(
        matches!(&err, AlbertError::UnexpectedTensor { name, .. } if name == extra),
        "{err}"
    );
    assert!(err.to_string().contains("num_hidden_groups=1"), "{err}");

    let mut misshaped = good.clone();
    let pooler = "albert.pooler.weight";
    misshaped.insert(
        pooler.into(),
        TensorF32::new(pooler, vec![32, 31], vec![0.0; 32 * 31]).unwrap(),
    );
    write_raw(&tmp.path().join("shape"), &source, &misshaped);
    match Checkpoint::read_dir(&tmp.path().join("shape")) {
        Err(AlbertError::TensorShape {
            name,
            expected,
            found,
            ..
        }) => {
            assert_eq!(name, pooler);
            assert_eq!(expected, vec![32, 32]);
            assert_eq!(found, vec![32, 31]);
        }
        other => panic!("expected TensorShape, got {other:?}"),
    }

    assert!(matches!(
        Checkpoint::read_dir(&tmp.path().join("nowhere")),
        Err(AlbertError::Io { .. })
    ));
    std::fs::write(
        tmp.path().join("missing").join(WEIGHTS_FILE),
        b"not safetensors",
    )
    .unwrap();
    assert!(matches!(
        Checkpoint::read_dir(&tmp.path().join("missing")),
        Err(AlbertError::Safetensors { .. })
    ));
}

#[test]
fn legacy_tied_decoder_and_buffers_are_accepted() {
    let source = fixture("masked_lm");
    let mut tensors = read_safetensors(&source.join(WEIGHTS_FILE)).unwrap();
    let word = tensors["albert.embeddings.word_embeddings.weight"].clone();
    let bias = tensors["predictions.bias"].clone();
    tensors.insert("predictions.decoder.weight".into(), word);
    tensors.insert("predictions.decoder.bias".into(), bias);
    tensors.insert(
        "albert.embeddings.position_ids".into(),
        TensorF32::new("p", vec![1, 40], (0..40).map(|i| i as f32).collect()).unwrap(),
    );
    let tmp = tempfile::tempdir().unwrap();
    write_raw(tmp.path(), &source, &tensors);
    let checkpoint = Checkpoint::read_dir(tmp.path()).unwrap();
    assert_eq!(checkpoint.parts.head(), Some(Head::MaskedLm));
    assert!(
        !checkpoint
            .tensors
            .contains_key("predictions.decoder.weight")
    );
}

#[test]
fn writes_are_atomic_and_leave_no_temporary_files() {
    let checkpoint = Checkpoint::read_dir(&fixture("pretraining_groups")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    checkpoint.write_dir(tmp.path()).unwrap();
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(Checkpoint::read_dir(tmp.path()).unwrap(), checkpoint);

    // An invalid checkpoint is refused before anything is written.
    let mut broken = checkpoint.clone();
    broken.tensors.remove("albert.pooler.bias");
    let dir = tmp.path().join("broken");
    assert!(broken.write_dir(&dir).is_err());
    assert!(!dir.exists());
}
