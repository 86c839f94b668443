//! Three implementations that share no forward code must agree: the tch model, and the ONNX export
//! run in ONNX Runtime and in tract — for every sharing strategy, including the two HF cannot
//! express (and so no HF fixture covers). Tolerance: max-abs ≤ 1e-4 in fp32.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use albert_core::{AlbertConfig, Checkpoint, Head, Sharing};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_train::AlbertModel;
use albert_verify::verify::{load_onnxruntime, load_tract, run_backend, sample_inputs};
use ndarray::{ArrayD, IxDyn};
use tch::{Device, Tensor, nn};

fn to_tensor(a: &ndarray::Array2<i64>) -> Tensor {
    let (b, s) = a.dim();
    Tensor::from_slice(a.as_slice().unwrap()).view([b as i64, s as i64])
}

fn to_array(t: &Tensor) -> ArrayD<f32> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let data = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn max_abs(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

#[test]
fn tch_onnxruntime_and_tract_agree_for_every_sharing() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, sharing) in Sharing::ALL.into_iter().enumerate() {
        let config = AlbertConfig {
            vocab_size: 70,
            embedding_size: 12,
            hidden_size: 24,
            num_hidden_layers: 5,
            num_hidden_groups: 2,
            inner_group_num: 2,
            num_attention_heads: 3,
            intermediate_size: 30,
            max_position_embeddings: 20,
            ..AlbertConfig::default()
        }
        .with_sharing(sharing);
        let checkpoint = Checkpoint::random(&config, Head::Pretraining.parts(), i as u64)
            .unwrap()
            .perturbed(99, 0.3);
        let dir = tmp.path().join(sharing.name());
        checkpoint.write_dir(&dir.join("ckpt")).unwrap();
        let summary = export_dir(
            &dir.join("ckpt"),
            &dir.join("onnx"),
            &ExportOptions::default(),
        )
        .unwrap();
        assert_eq!(summary.task, Task::Pretraining);

        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::from_checkpoint(&vs, &checkpoint).unwrap();
        let ort = load_onnxruntime(&summary.model_path, None).unwrap();
        let tract = load_tract(&summary.model_path).unwrap();
        let names = ["prediction_logits", "sop_logits"];
        for (batch, length) in [(1, 1), (3, 7), (2, 20)] {
            let inputs = sample_inputs(&checkpoint, batch, length, 5);
            let out = model
                .forward(
                    &to_tensor(&inputs.input_ids),
                    Some(&to_tensor(&inputs.attention_mask)),
                    Some(&to_tensor(&inputs.token_type_ids)),
                    false,
                )
                .unwrap();
            let ours = [
                to_array(out.mlm_logits.as_ref().unwrap()),
                to_array(out.sentence_logits.as_ref().unwrap()),
            ];
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
                for (name, tch_value) in names.iter().zip(&ours) {
                    let diff = max_abs(&got[*name], tch_value);
                    assert!(
                        diff <= 1e-4,
                        "sharing={sharing} {engine} b{batch} s{length} {name}: {diff:e}"
                    );
                }
            }
        }
    }
}
