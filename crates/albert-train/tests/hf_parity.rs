//! Numerical parity with HF transformers 5.24.0, on the fixtures made by `tools/make_fixtures.py`
//! (tiny random models of every HF head class, several group/inner layouts, E ≠ H and E = H,
//! several activations, padding in the attention mask). Tolerance: max |ours − HF| ≤ 1e-5 in fp32,
//! the bound; HF's own eager-vs-sdpa attention differs by about 1e-6 on these shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use albert_core::params::{count, inventory};
use albert_core::{Checkpoint, TensorF32};
use albert_train::AlbertModel;
use tch::{Device, Kind, Tensor, nn};

const TOLERANCE: f64 = 1e-5;
const EXPECTED_CASES: usize = 10;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/hf");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/make_fixtures.py)", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("io.safetensors").exists())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.len(),
        EXPECTED_CASES,
        "fixture cases in {}",
        root.display()
    );
    dirs
}

fn io(dir: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(dir.join("io.safetensors"))
        .expect("io.safetensors")
        .into_iter()
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

fn case_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).expect("case.json"))
        .expect("json")
}

#[test]
fn every_output_matches_hf_transformers() {
    let mut report = Vec::new();
    for dir in fixtures() {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let checkpoint = Checkpoint::read_dir(&dir).unwrap_or_else(|e| panic!("{case}: {e}"));
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::from_checkpoint(&vs, &checkpoint).expect("model");
        let io = io(&dir);
        let out = model
            .forward(
                &io["input_ids"],
                Some(&io["attention_mask"]),
                Some(&io["token_type_ids"]),
                false,
            )
            .expect("forward");
        let ours: Vec<(&str, Option<&Tensor>)> = vec![
            ("last_hidden_state", Some(&out.last_hidden_state)),
            ("pooler_output", out.pooler_output.as_ref()),
            ("mlm_logits", out.mlm_logits.as_ref()),
            ("sop_logits", out.sentence_logits.as_ref()),
            ("classifier_logits", out.classifier_logits.as_ref()),
            ("start_logits", out.start_logits.as_ref()),
            ("end_logits", out.end_logits.as_ref()),
        ];
        let mut compared = 0;
        for (name, tensor) in ours {
            match (io.get(name), tensor) {
                (Some(reference), Some(t)) => {
                    let diff = max_abs_diff(t, reference);
                    report.push(format!("{case}/{name}: max abs diff {diff:.2e}"));
                    assert!(
                        diff <= TOLERANCE,
                        "{case}/{name}: max abs diff {diff:e} > {TOLERANCE:e}"
                    );
                    compared += 1;
                }
                (None, None) => {}
                (r, t) => panic!(
                    "{case}/{name}: HF has it: {}, we have it: {}",
                    r.is_some(),
                    t.is_some()
                ),
            }
        }
        assert!(compared >= 2, "{case}: only {compared} outputs compared");
    }
    println!("{}", report.join("\n"));
}

#[test]
fn parameter_counts_equal_hf_num_parameters() {
    for dir in fixtures() {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let checkpoint = Checkpoint::read_dir(&dir).expect("checkpoint");
        let hf = case_json(&dir)["num_parameters"]
            .as_u64()
            .expect("num_parameters") as usize;
        let ours = count(&inventory(&checkpoint.config, &checkpoint.parts)).total;
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::from_checkpoint(&vs, &checkpoint).expect("model");
        assert_eq!(ours, hf, "{case}: inventory count vs HF num_parameters()");
        assert_eq!(model.num_parameters(), hf, "{case}: tch model count vs HF");
        let in_store: usize = vs.trainable_variables().iter().map(Tensor::numel).sum();
        assert_eq!(
            in_store, hf,
            "{case}: VarStore holds each shared tensor once"
        );
    }
}

/// Saving what we loaded gives HF's own file back: the same names (canonical, i.e. with the
/// `albert.` prefix that `AlbertFor*` classes use) and bit-identical values.
#[test]
fn save_reproduces_hf_checkpoint_bit_identically() {
    for dir in fixtures() {
        let case = dir.file_name().unwrap().to_string_lossy().into_owned();
        let original = Checkpoint::read_dir(&dir).expect("checkpoint");
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::from_checkpoint(&vs, &original).expect("model");
        let tmp = tempfile::tempdir().expect("tempdir");
        model
            .to_checkpoint()
            .expect("to_checkpoint")
            .write_dir(tmp.path())
            .expect("write");
        let reread = Checkpoint::read_dir(tmp.path()).expect("reread");
        assert_eq!(reread.parts, original.parts, "{case}: heads");
        assert_eq!(
            reread.tensors.keys().collect::<Vec<_>>(),
            original.tensors.keys().collect::<Vec<_>>(),
            "{case}: names"
        );
        for (name, t) in &original.tensors {
            let r: &TensorF32 = &reread.tensors[name];
            assert_eq!(r.shape, t.shape, "{case}/{name}");
            let same_bits = r
                .data
                .iter()
                .zip(&t.data)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same_bits, "{case}/{name}: values differ after save/load");
        }
        // The config round-trips too (HF fields we do not model are kept).
        let hf_json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let our_json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tmp.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(our_json, hf_json, "{case}: config.json");
    }
}
