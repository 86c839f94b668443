//! Helpers shared by the integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;

use albert_onnx::reference::Inputs;
use ndarray::{Array2, ArrayD};

/// A fixture's inputs (int64 `input_ids`, `attention_mask`, `token_type_ids`) and HF's outputs
/// (every float32 tensor, by name) from the safetensors file the fixture scripts write.
pub fn read_io(path: &Path) -> (Inputs, BTreeMap<String, ArrayD<f32>>) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids = |name: &str| {
        let v = file.tensor(name).unwrap();
        let data: Vec<i64> = v
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        Array2::from_shape_vec((v.shape()[0], v.shape()[1]), data).unwrap()
    };
    let inputs = Inputs {
        input_ids: ids("input_ids"),
        attention_mask: ids("attention_mask"),
        token_type_ids: ids("token_type_ids"),
    };
    let mut outputs = BTreeMap::new();
    for (name, v) in file.tensors() {
        if v.dtype() == safetensors::Dtype::F32 {
            let data: Vec<f32> = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            outputs.insert(
                name,
                ArrayD::from_shape_vec(v.shape().to_vec(), data).unwrap(),
            );
        }
    }
    (inputs, outputs)
}
