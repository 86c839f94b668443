//! The machine's own GEMM rate, measured in the same run, against which each cell's achieved
//! GFLOP/s is read.

use std::path::Path;

use albert_onnx::proto::{self, EXTERNAL_DATA_THRESHOLD};
use albert_runtime::OrtOptions;
use anyhow::Result;

use crate::cli::Cli;

/// The machine's fp32 GEMM rate through ONNX Runtime's CPU provider at `threads`: one
/// 1024×1024×1024 MatMul, timed for a second.
pub fn gemm_gflops(work: &Path, threads: usize, cli: &Cli) -> Result<f64> {
    use albert_onnx::proto::pb::tensor_proto::DataType;
    use albert_onnx::proto::{Dim, tensor_f32, value_info};
    let n = 1024usize;
    let path = work.join("gemm.onnx");
    if !path.exists() {
        let b: Vec<f32> = (0..n * n)
            .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
            .collect();
        let graph = albert_onnx::proto::pb::GraphProto {
            name: "gemm".into(),
            node: vec![albert_onnx::graph::node(
                "MatMul",
                "MatMul".into(),
                &["x", "b"],
                &["y"],
                vec![],
            )],
            initializer: vec![tensor_f32("b", &[n, n], &b)],
            input: vec![value_info(
                "x",
                DataType::Float,
                &[Dim::Fixed(n), Dim::Fixed(n)],
            )],
            output: vec![value_info(
                "y",
                DataType::Float,
                &[Dim::Fixed(n), Dim::Fixed(n)],
            )],
            ..Default::default()
        };
        let model = albert_onnx::proto::pb::ModelProto {
            ir_version: 8,
            opset_import: vec![albert_onnx::proto::pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(graph),
            ..Default::default()
        };
        proto::write_model(&path, model, EXTERNAL_DATA_THRESHOLD)?;
    }
    let x = ndarray::ArrayD::from_shape_fn(vec![n, n], |i| ((i[0] + 3 * i[1]) % 13) as f32 / 13.0);
    let options = OrtOptions {
        library: cli.ort_library.clone(),
        intra_threads: threads,
        ..OrtOptions::default()
    };
    let seconds = albert_runtime::backend::ort::seconds_per_run(&path, &options, x, 1.0)?;
    Ok(2.0 * (n as f64).powi(3) / seconds / 1e9)
}
