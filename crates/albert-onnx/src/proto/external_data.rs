//! ONNX external data, confined to the model's directory.
//!
//! A tensor stored outside the model names its file by a path written in the model
//! (`external_data["location"]`, relative to the model's directory in the ONNX IR spec). A
//! crafted model could name `/etc/shadow` or `../../secret` and have any reader copy that file
//! into a tensor (the ONNX project fixed the same traversal in its own loader, CVE-2024-27318).
//! [`confine`] is the one check, made by our code before anything opens such a file: our reader
//! ([`super::read_model`]) and, through [`check_external_data`], the engines of `albert-runtime`.

use std::path::{Component, Path, PathBuf};

use prost::Message;

use super::pb::tensor_proto::DataLocation;
use super::pb::{AttributeProto, GraphProto, ModelProto, TensorProto};
use crate::error::{OnnxError, Result};

/// The key of `TensorProto::external_data` that names the file.
pub const LOCATION: &str = "location";

/// The file that `location` names for tensor `tensor`, if it lies inside `model_dir`: its
/// canonical path. Rejected, with the tensor and the location in the error: an empty location,
/// an absolute path or one with a root or prefix, any `..` component, and any path (through
/// symbolic links too) whose canonical target is not a regular file inside the canonical
/// `model_dir`.
pub fn confine(model_dir: &Path, tensor: &str, location: &str) -> Result<PathBuf> {
    let unsafe_location = |reason: String| OnnxError::UnsafeExternalData {
        tensor: tensor.to_string(),
        location: location.to_string(),
        reason,
    };
    if location.is_empty() {
        return Err(unsafe_location("is empty".into()));
    }
    let relative = Path::new(location);
    for component in relative.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(unsafe_location("climbs out with `..`".into())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_location(
                    "is absolute (it must be relative to the model's directory)".into(),
                ));
            }
        }
    }
    // A model path without a directory part (`model.onnx`) lies in the current directory.
    let dir = if model_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        model_dir
    };
    let canonical_dir = dir
        .canonicalize()
        .map_err(|e| unsafe_location(format!("cannot be resolved: {}: {e}", dir.display())))?;
    let target = dir.join(relative);
    // Symbolic links are followed here, so one that points out of the directory is caught.
    let canonical = target
        .canonicalize()
        .map_err(|e| unsafe_location(format!("cannot be resolved: {}: {e}", target.display())))?;
    if !canonical.starts_with(&canonical_dir) {
        return Err(unsafe_location(format!(
            "resolves to {}, outside the model's directory {}",
            canonical.display(),
            canonical_dir.display()
        )));
    }
    if !canonical.is_file() {
        return Err(unsafe_location(format!(
            "resolves to {}, which is not a regular file",
            canonical.display()
        )));
    }
    Ok(canonical)
}

/// Whether a tensor's data is in an external file (`data_location = EXTERNAL`, the one test
/// ONNX Runtime and tract make too).
pub fn is_external(tensor: &TensorProto) -> bool {
    tensor.data_location == Some(DataLocation::External as i32)
}

/// The value of `key` in a tensor's `external_data`.
pub fn field<'a>(tensor: &'a TensorProto, key: &str) -> Option<&'a str> {
    tensor
        .external_data
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// Every tensor of `model` stored externally, with the file [`confine`] found for it in
/// `model_dir`; nothing is opened but to resolve paths.
pub fn external_tensors<'a>(
    model: &'a mut ModelProto,
    model_dir: &Path,
) -> Result<Vec<(&'a mut TensorProto, PathBuf)>> {
    tensors_mut(model)
        .into_iter()
        .filter(|t| is_external(t))
        .map(|t| {
            let file = confine(model_dir, &t.name, field(t, LOCATION).unwrap_or_default())?;
            Ok((t, file))
        })
        .collect()
}

/// Checks, without reading any external data, that every tensor of the model file at
/// `model_path` that is stored externally names a file inside the model's directory. Returns the
/// decoded model, its external tensors still external (the runtime reads its metadata and int8
/// weights from it without decoding the file twice).
pub fn check_external_data(model_path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(model_path).map_err(|e| OnnxError::io(model_path, e))?;
    let mut model = ModelProto::decode(bytes.as_slice()).map_err(|e| OnnxError::Decode {
        path: model_path.to_path_buf(),
        message: e.to_string(),
    })?;
    external_tensors(&mut model, model_dir(model_path))?;
    Ok(model)
}

/// The directory external data locations are relative to.
pub fn model_dir(model_path: &Path) -> &Path {
    model_path.parent().unwrap_or(Path::new(""))
}

/// Every tensor of a model, wherever the IR allows one to be: graph initializers (sparse ones
/// too), node attributes, and the same inside subgraphs, model-local functions and training
/// graphs. Any of them may be external.
pub fn tensors_mut(model: &mut ModelProto) -> Vec<&mut TensorProto> {
    let mut out = Vec::new();
    if let Some(graph) = model.graph.as_mut() {
        graph_tensors(graph, &mut out);
    }
    for function in &mut model.functions {
        for node in &mut function.node {
            attribute_tensors(&mut node.attribute, &mut out);
        }
        attribute_tensors(&mut function.attribute_proto, &mut out);
    }
    for training in &mut model.training_info {
        for graph in training
            .initialization
            .iter_mut()
            .chain(training.algorithm.iter_mut())
        {
            graph_tensors(graph, &mut out);
        }
    }
    out
}

fn graph_tensors<'a>(graph: &'a mut GraphProto, out: &mut Vec<&'a mut TensorProto>) {
    out.extend(graph.initializer.iter_mut());
    for sparse in &mut graph.sparse_initializer {
        out.extend(sparse.values.iter_mut().chain(sparse.indices.iter_mut()));
    }
    for node in &mut graph.node {
        attribute_tensors(&mut node.attribute, out);
    }
}

fn attribute_tensors<'a>(attributes: &'a mut [AttributeProto], out: &mut Vec<&'a mut TensorProto>) {
    for attribute in attributes {
        out.extend(attribute.t.iter_mut().chain(attribute.tensors.iter_mut()));
        for sparse in attribute
            .sparse_tensor
            .iter_mut()
            .chain(attribute.sparse_tensors.iter_mut())
        {
            out.extend(sparse.values.iter_mut().chain(sparse.indices.iter_mut()));
        }
        for graph in attribute.g.iter_mut().chain(attribute.graphs.iter_mut()) {
            graph_tensors(graph, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(dir: &Path, location: &str) -> String {
        match confine(dir, "t", location) {
            Err(OnnxError::UnsafeExternalData { reason, .. }) => reason,
            other => panic!("{location}: {other:?}"),
        }
    }

    #[test]
    fn only_regular_files_below_the_directory_pass() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("weights")).expect("a subdirectory");
        std::fs::write(dir.join("weights/w.bin"), b"w").expect("a data file");
        let inside = confine(dir, "t", "./weights/w.bin").expect("inside");
        assert!(inside.ends_with("weights/w.bin"));
        assert_eq!(reason(dir, ""), "is empty");
        assert!(reason(dir, "weights/../weights/w.bin").contains(".."));
        assert!(reason(dir, "/weights/w.bin").contains("absolute"));
        assert!(reason(dir, "weights").contains("not a regular file"));
        assert!(reason(dir, "missing.bin").contains("cannot be resolved"));
    }
}
