//! ONNX protobuf I/O on our own prost types of the ONNX IR ([`pb`]): building tensors, attributes
//! and value infos, and reading and writing models, with ONNX external data for weights beyond
//! protobuf's 2 GB limit ([`external_data`]: confined to the model's directory).

// Reads files from anywhere: no access on their structure may panic (see convert/mod.rs).
#![deny(clippy::indexing_slicing)]

pub mod external_data;
pub mod pb;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pb::attribute_proto::AttributeType;
use pb::tensor_proto::{DataLocation, DataType};
use pb::tensor_shape_proto::{Dimension, dimension};
use pb::{
    AttributeProto, ModelProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use prost::Message;

use crate::error::{OnnxError, Result};
pub use external_data::check_external_data;

/// Protobuf messages cannot exceed 2 GiB; models whose weights pass this go to external data.
pub const EXTERNAL_DATA_THRESHOLD: usize = 2_000_000_000;

pub fn tensor_f32(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn tensor_i64(name: &str, dims: &[usize], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub fn attr_string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::String as i32,
        s: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Float as i32,
        f: value,
        ..Default::default()
    }
}

/// A dimension of a graph input or output: a number or a symbolic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    Symbol(&'static str),
}

pub fn value_info(name: &str, elem_type: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Symbol(s) => dimension::Value::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn metadata(entries: &[(&str, String)]) -> Vec<StringStringEntryProto> {
    entries
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.to_string(),
            value: v.clone(),
        })
        .collect()
}

/// The metadata value under `key`, if any.
pub fn metadata_value<'a>(model: &'a ModelProto, key: &str) -> Option<&'a str> {
    model
        .metadata_props
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// The dimensions of a tensor value's declared shape (`None`: symbolic or unknown); empty when
/// it declares none.
pub fn dims(value: &ValueInfoProto) -> Vec<Option<i64>> {
    let Some(pb::type_proto::Value::TensorType(tensor)) =
        value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Vec::new();
    };
    tensor.shape.as_ref().map_or_else(Vec::new, |shape| {
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect()
    })
}

/// The bytes of all initializers (raw or typed data).
pub fn initializer_bytes(model: &ModelProto) -> usize {
    model.graph.as_ref().map_or(0, graph_initializer_bytes)
}

/// The bytes of a graph's initializers (raw or typed data).
pub fn graph_initializer_bytes(graph: &pb::GraphProto) -> usize {
    graph
        .initializer
        .iter()
        .map(|t| t.raw_data.len() + 4 * t.float_data.len() + 8 * t.int64_data.len())
        .sum()
}

/// The external data file name used next to `model_path` (`model.onnx` → `model.onnx.data`).
pub fn external_data_name(model_path: &Path) -> String {
    format!(
        "{}.data",
        model_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model.onnx".into())
    )
}

/// Moves every initializer of at least 1 KiB into the external data file `data` (64-byte aligned,
/// as the ONNX tools do), writing as it goes; the tensors then refer to it by `location`.
fn externalize(model: &mut ModelProto, location: &str, data: &Path) -> std::io::Result<u64> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(data)?);
    let mut offset = 0usize;
    if let Some(graph) = model.graph.as_mut() {
        for tensor in graph
            .initializer
            .iter_mut()
            .filter(|t| t.raw_data.len() >= 1024)
        {
            let padding = (64 - offset % 64) % 64;
            out.write_all(&vec![0u8; padding])?;
            offset += padding;
            let bytes = std::mem::take(&mut tensor.raw_data);
            out.write_all(&bytes)?;
            tensor.data_location = Some(DataLocation::External as i32);
            tensor.external_data = metadata(&[
                ("location", location.to_string()),
                ("offset", offset.to_string()),
                ("length", bytes.len().to_string()),
            ]);
            offset += bytes.len();
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(offset as u64)
}

/// Writes a model atomically ([`albert_core::fsutil::write_atomic_with`]): each file goes to a
/// temporary name in the same directory first, then is renamed into place (the external data file
/// before the model that refers to it). Weights
/// beyond `external_threshold` bytes go to `<model>.data`, streamed from the initializers, so no
/// second copy of the weights is made. Returns the bytes written.
///
/// The only external data location written is the name this function makes (`<model>.data`, a
/// file name without directories); a model that still refers to any other external data is
/// refused, so that no location from a model read elsewhere is passed on.
pub fn write_model(path: &Path, mut model: ModelProto, external_threshold: usize) -> Result<u64> {
    if let Some(tensor) = external_data::tensors_mut(&mut model)
        .into_iter()
        .find(|t| external_data::is_external(t))
    {
        return Err(OnnxError::UnsafeExternalData {
            tensor: tensor.name.clone(),
            location: external_data::field(tensor, external_data::LOCATION)
                .unwrap_or_default()
                .to_string(),
            reason: "is not one this writer made (read_model loads external data in memory)".into(),
        });
    }
    let data_name = external_data_name(path);
    let data_path = path.with_file_name(&data_name);
    let external = initializer_bytes(&model) > external_threshold;
    let data_bytes = if external {
        // The data file first, so the model never names data that is not there yet.
        let mut data_bytes = 0;
        albert_core::fsutil::write_atomic_with(&data_path, |tmp| {
            data_bytes = externalize(&mut model, &data_name, tmp)
                .map_err(|e| OnnxError::io(&data_path, e))?;
            Ok::<(), OnnxError>(())
        })?;
        data_bytes
    } else {
        0
    };
    let bytes = model.encode_to_vec();
    albert_core::write_atomic(path, &bytes)?;
    if !external && data_path.exists() {
        // A stale external data file from an earlier export would mislead readers; removed only
        // now that the model in place no longer refers to it.
        std::fs::remove_file(&data_path).map_err(|e| OnnxError::io(&data_path, e))?;
    }
    Ok(bytes.len() as u64 + data_bytes)
}

/// Reads a model and loads its external data (if any) into `raw_data`, every tensor's location
/// first confined to the model's directory ([`external_data::confine`]).
pub fn read_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|e| OnnxError::io(path, e))?;
    let mut model = ModelProto::decode(bytes.as_slice()).map_err(|e| OnnxError::Decode {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    // Every location is checked before any data file is opened.
    let external = external_data::external_tensors(&mut model, external_data::model_dir(path))?;
    let mut files: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    for (tensor, file) in external {
        let bad = |message: String| OnnxError::Decode {
            path: path.to_path_buf(),
            message: format!("tensor `{}`: {message}", tensor.name),
        };
        let offset: usize = external_data::field(tensor, "offset")
            .map_or(Ok(0), str::parse)
            .map_err(|_| bad("bad offset".into()))?;
        let length = external_data::field(tensor, "length").map(str::parse::<usize>);
        let blob = match files.entry(file) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let data = std::fs::read(e.key()).map_err(|err| OnnxError::io(e.key(), err))?;
                e.insert(data)
            }
        };
        let length = match length {
            Some(v) => v.map_err(|_| bad("bad length".into()))?,
            None => blob.len().saturating_sub(offset),
        };
        let bytes = offset
            .checked_add(length)
            .and_then(|end| blob.get(offset..end))
            .ok_or_else(|| {
                bad(format!(
                    "range {offset}+{length} is outside its external data ({} bytes)",
                    blob.len()
                ))
            })?;
        tensor.raw_data = bytes.to_vec();
        tensor.data_location = None;
        tensor.external_data.clear();
    }
    Ok(model)
}
