//! Helpers shared by the integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// tests: a panic is the failure report
// Each test file that includes this module uses some of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use albert_core::{AlbertConfig, Checkpoint, Head, Sharing};
use albert_onnx::convert::{self, ConvertOptions};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_onnx::graph;
use albert_onnx::proto::pb::{GraphProto, ModelProto};
use albert_onnx::proto::{self, read_model, write_model};

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

/// A tiny config of the given sharing and layout, for tests that export and convert.
pub fn tiny(
    sharing: Sharing,
    layers: usize,
    groups: usize,
    inner: usize,
    vocab: usize,
) -> AlbertConfig {
    AlbertConfig {
        vocab_size: vocab,
        embedding_size: 12,
        hidden_size: 16,
        num_hidden_layers: layers,
        num_hidden_groups: groups,
        inner_group_num: inner,
        num_attention_heads: 4,
        intermediate_size: 20,
        max_position_embeddings: 24,
        ..AlbertConfig::default()
    }
    .with_sharing(sharing)
}

/// A random checkpoint of `config` with `head`, perturbed, and its export for `task`.
pub fn export(
    config: &AlbertConfig,
    head: Head,
    task: Task,
    seed: u64,
    dir: &Path,
) -> (Checkpoint, PathBuf) {
    let checkpoint = Checkpoint::random(config, head.parts(), seed)
        .unwrap()
        .perturbed(seed + 1, 0.3);
    checkpoint.write_dir(&dir.join("ckpt")).unwrap();
    let options = ExportOptions {
        task: Some(task),
        ..ExportOptions::default()
    };
    let path = export_dir(&dir.join("ckpt"), &dir.join("onnx"), &options)
        .unwrap()
        .model_path;
    (checkpoint, path)
}

/// `model` read, converted with `options` and written to `out`.
pub fn converted(
    model: &Path,
    options: &ConvertOptions,
    out: &Path,
) -> (ModelProto, Vec<convert::PassLog>) {
    let mut proto = read_model(model).unwrap();
    let log = convert::convert(&mut proto, options).unwrap();
    write_model(out, proto.clone(), proto::EXTERNAL_DATA_THRESHOLD).unwrap();
    (proto, log)
}

/// Whether `graph` has a node of type `op`, loop bodies included.
pub fn has_op(graph: &GraphProto, op: &str) -> bool {
    graph
        .node
        .iter()
        .any(|n| n.op_type == op || graph::subgraphs(n).any(|g| has_op(g, op)))
}

/// Fails listing every file the ONNX project's checker (`onnx.checker.check_model` with
/// `full_check=True`, the project's venv: tools/setup.sh) rejects, with its reason.
pub fn assert_onnx_checker_accepts(files: &[PathBuf]) {
    let script = r#"import sys, onnx
failed = []
for p in sys.argv[1:]:
    try:
        onnx.checker.check_model(onnx.load(p), full_check=True)
    except Exception as e:
        failed.append(f"{p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
print("\n".join(failed) if failed else f"checked {len(sys.argv) - 1}")"#;
    let stdout = venv_python(script, files);
    assert_eq!(
        stdout.trim(),
        format!("checked {}", files.len()),
        "files the ONNX checker rejects"
    );
}

/// Whether `graph` has a node of `domain`, loop bodies included.
pub fn has_domain(graph: &GraphProto, domain: &str) -> bool {
    graph
        .node
        .iter()
        .any(|n| n.domain == domain || graph::subgraphs(n).any(|g| has_domain(g, domain)))
}

/// Runs `script` with the project venv's Python (tools/setup.sh) on `args` and returns what it
/// printed; a failure to start or a non-zero exit panics with Python's message.
pub fn venv_python(script: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run tools/setup.sh)", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
