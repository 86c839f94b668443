//! Precision: the whole graph in float16 for GPU execution, its interface unchanged (int64 ids in,
//! float32 outputs out).
//!
//! Every float32 initializer becomes float16 (finite values beyond float16's range are clamped to
//! ±65504, so the attention mask's "minus infinity" bias, `f32::MIN` in HF, stays finite and
//! `0 × bias` stays 0), every `Cast` to float32 casts to float16, and the outputs are cast back.
//! What needs float32 accumulation keeps it: `LayerNormalization` computes its statistics in
//! float32 (`stash_type = 1`, the default; run `--fuse portable` first so every LayerNorm is one),
//! and each `Softmax` is wrapped in casts to float32 and back. `Gemm` becomes `MatMul` + `Add`
//! (tract's `Gemm` turns float16 inputs into a float32 output).
//!
//! bfloat16 is not offered: neither tract nor ONNX Runtime's CPU provider runs it, so nothing here
//! could check it.

use crate::error::{OnnxError, Result};
use crate::graph::{self, Namer};
use crate::proto::attr_int;
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::type_proto::Value;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto, ValueInfoProto};

/// What the precision pass changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PrecisionStats {
    pub initializers: usize,
    pub casts: usize,
    pub softmax_guards: usize,
    pub outputs: usize,
}

fn to_half(tensor: &mut TensorProto) -> Result<()> {
    let values = graph::f32_data(tensor)?;
    tensor.raw_data = values
        .iter()
        .map(|&v| {
            let v = if v.is_finite() {
                v.clamp(-65504.0, 65504.0)
            } else {
                v
            };
            half::f16::from_f32(v)
        })
        .flat_map(|h| h.to_le_bytes())
        .collect();
    tensor.float_data.clear();
    tensor.data_type = DataType::Float16 as i32;
    Ok(())
}

fn retype(info: &mut ValueInfoProto) {
    if let Some(Value::TensorType(t)) = info.r#type.as_mut().and_then(|t| t.value.as_mut())
        && t.elem_type == DataType::Float as i32
    {
        t.elem_type = DataType::Float16 as i32;
    }
}

fn is_float(info: &ValueInfoProto) -> bool {
    matches!(
        info.r#type.as_ref().and_then(|t| t.value.as_ref()),
        Some(Value::TensorType(t)) if t.elem_type == DataType::Float as i32
    )
}

/// Converts one graph's constants, casts and softmaxes (and its loop bodies').
fn convert_graph(
    graph: &mut GraphProto,
    namer: &mut Namer,
    stats: &mut PrecisionStats,
) -> Result<()> {
    for tensor in graph
        .initializer
        .iter_mut()
        .filter(|t| t.data_type == DataType::Float as i32)
    {
        to_half(tensor)?;
        stats.initializers += 1;
    }
    let mut nodes: Vec<NodeProto> = Vec::with_capacity(graph.node.len());
    for mut node in std::mem::take(&mut graph.node) {
        for body in graph::subgraphs_mut(&mut node) {
            for info in body.input.iter_mut().chain(body.output.iter_mut()) {
                retype(info);
            }
            body.value_info.clear();
            convert_graph(body, namer, stats)?;
        }
        match node.op_type.as_str() {
            "Cast" => {
                for a in node.attribute.iter_mut().filter(|a| a.name == "to") {
                    if a.i == DataType::Float as i64 {
                        a.i = DataType::Float16 as i64;
                        stats.casts += 1;
                    }
                }
                nodes.push(node);
            }
            "ConstantOfShape" | "DynamicQuantizeLinear" | "MatMulInteger" => {
                return Err(OnnxError::Invalid(format!(
                    "float16: node `{}` ({}) is not supported (quantized models stay float32)",
                    node.name, node.op_type
                )));
            }
            // tract's Gemm computes float16 inputs into a float32 output; MatMul and Add keep
            // the type. (Only the plain form ALBERT uses: no transA, alpha = beta = 1.)
            "Gemm"
                if graph::attr_i(&node, "transA").unwrap_or(0) == 0
                    && node
                        .attribute
                        .iter()
                        .all(|a| !matches!(a.name.as_str(), "alpha" | "beta") || a.f == 1.0) =>
            {
                let y = graph::output(&node, 0)?.to_string();
                let a = graph::input(&node, 0)?.to_string();
                let mut b = graph::input(&node, 1)?.to_string();
                if graph::attr_i(&node, "transB") == Some(1) {
                    let t = namer.fresh(&format!("{b}.transposed"));
                    nodes.push(graph::node(
                        "Transpose",
                        namer.fresh(&format!("{}/Transpose", node.name)),
                        &[&b],
                        &[&t],
                        vec![crate::proto::attr_ints("perm", &[1, 0])],
                    ));
                    b = t;
                }
                let bias = node.input.get(2).filter(|c| !c.is_empty()).cloned();
                let product = match bias {
                    Some(_) => namer.fresh(&format!("{y}.product")),
                    None => y.clone(),
                };
                nodes.push(graph::node(
                    "MatMul",
                    namer.fresh(&format!("{}/MatMul", node.name)),
                    &[&a, &b],
                    &[&product],
                    vec![],
                ));
                if let Some(bias) = bias {
                    nodes.push(graph::node(
                        "Add",
                        namer.fresh(&format!("{}/Add", node.name)),
                        &[&product, &bias],
                        &[&y],
                        vec![],
                    ));
                }
            }
            "Softmax" => {
                let (x, y) = (
                    graph::input(&node, 0)?.to_string(),
                    graph::output(&node, 0)?.to_string(),
                );
                let x32 = namer.fresh(&format!("{x}.float32"));
                let y32 = namer.fresh(&format!("{y}.float32"));
                nodes.push(graph::node(
                    "Cast",
                    namer.fresh(&format!("{}/Cast_in", node.name)),
                    &[&x],
                    &[&x32],
                    vec![attr_int("to", DataType::Float as i64)],
                ));
                node.input.splice(..1, [x32]);
                node.output.splice(..1, [y32.clone()]);
                nodes.push(node.clone());
                nodes.push(graph::node(
                    "Cast",
                    namer.fresh(&format!("{}/Cast_out", node.name)),
                    &[&y32],
                    &[&y],
                    vec![attr_int("to", DataType::Float16 as i64)],
                ));
                stats.softmax_guards += 1;
            }
            _ => nodes.push(node),
        }
    }
    graph.node = nodes;
    Ok(())
}

/// Converts the model to float16 (see the module comment).
pub fn to_float16(graph: &mut GraphProto) -> Result<PrecisionStats> {
    if graph.input.iter().any(is_float) {
        return Err(OnnxError::Invalid(
            "float16: the model takes float inputs (ALBERT takes int64 ids)".into(),
        ));
    }
    let mut namer = Namer::new(graph);
    let mut stats = PrecisionStats::default();
    convert_graph(graph, &mut namer, &mut stats)?;
    graph.value_info.clear();
    // Outputs keep their names and float32 type: the last value is renamed and cast back.
    let outputs: Vec<String> = graph
        .output
        .iter()
        .filter(|o| is_float(o))
        .map(|o| o.name.clone())
        .collect();
    for name in outputs {
        let half = namer.fresh(&format!("{name}.float16"));
        for node in &mut graph.node {
            for out in node.output.iter_mut().filter(|o| **o == name) {
                *out = half.clone();
            }
        }
        graph::replace_uses(graph, &name, &half);
        graph.node.push(graph::node(
            "Cast",
            namer.fresh(&format!("/precision/Cast_{name}")),
            &[&half],
            &[&name],
            vec![attr_int("to", DataType::Float as i64)],
        ));
        stats.outputs += 1;
    }
    graph::sort_nodes(graph)?;
    Ok(stats)
}
