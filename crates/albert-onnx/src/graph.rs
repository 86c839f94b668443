//! Graph utilities shared by the converter's passes: tensor data access in every ONNX storage form,
//! value names referenced from subgraphs, producers and consumers, fresh names, and the
//! clean-up every pass ends with (dead nodes and unused initializers removed).

// The passes' shared helpers, on graphs they did not make (see convert/mod.rs).
#![deny(clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};

use crate::error::{OnnxError, Result};
use crate::proto::pb::attribute_proto::AttributeType;
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

/// Bytes per element of the data types the passes handle.
pub fn element_size(data_type: i32) -> Option<usize> {
    match DataType::try_from(data_type).ok()? {
        DataType::Float | DataType::Int32 | DataType::Uint32 => Some(4),
        DataType::Double | DataType::Int64 | DataType::Uint64 => Some(8),
        DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16 => Some(2),
        DataType::Int8 | DataType::Uint8 | DataType::Bool => Some(1),
        _ => None,
    }
}

/// Number of elements of a tensor from its dims; `usize::MAX` when the dims of a malformed graph
/// overflow (no data matches that count, so the tensor is refused where its data is read).
pub fn numel(tensor: &TensorProto) -> usize {
    tensor
        .dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(0) as usize))
        .unwrap_or(usize::MAX)
}

/// Moves typed data (`float_data`, `int64_data`, …) into little-endian `raw_data`, so that every
/// tensor can be compared and read the same way. Tensors already raw are left as they are.
pub fn make_raw(tensor: &mut TensorProto) -> Result<()> {
    if !tensor.raw_data.is_empty() || numel(tensor) == 0 {
        return Ok(());
    }
    let dt = DataType::try_from(tensor.data_type).unwrap_or(DataType::Undefined);
    let raw: Vec<u8> = match dt {
        DataType::Float => tensor
            .float_data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Double => tensor
            .double_data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Int64 => tensor
            .int64_data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Uint64 => tensor
            .uint64_data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DataType::Int32 => tensor
            .int32_data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        // int32_data carries the smaller integer types and float16 bit patterns, one per entry.
        DataType::Int8 | DataType::Uint8 | DataType::Bool => {
            tensor.int32_data.iter().map(|&v| v as u8).collect()
        }
        DataType::Int16 | DataType::Uint16 | DataType::Float16 | DataType::Bfloat16 => tensor
            .int32_data
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        _ => {
            return Err(OnnxError::Invalid(format!(
                "initializer `{}`: unsupported data type {}",
                tensor.name, tensor.data_type
            )));
        }
    };
    let expected = element_size(tensor.data_type)
        .unwrap_or(1)
        .saturating_mul(numel(tensor));
    if raw.len() != expected {
        return Err(OnnxError::Invalid(format!(
            "initializer `{}`: {} bytes of data for dims {:?} (expected {expected})",
            tensor.name,
            raw.len(),
            tensor.dims
        )));
    }
    tensor.raw_data = raw;
    tensor.float_data.clear();
    tensor.double_data.clear();
    tensor.int64_data.clear();
    tensor.uint64_data.clear();
    tensor.int32_data.clear();
    Ok(())
}

/// A float32 tensor's values.
pub fn f32_data(tensor: &TensorProto) -> Result<Vec<f32>> {
    if tensor.data_type != DataType::Float as i32 {
        return Err(OnnxError::Invalid(format!(
            "initializer `{}`: expected float32 data, found data type {}",
            tensor.name, tensor.data_type
        )));
    }
    if !tensor.float_data.is_empty() {
        return Ok(tensor.float_data.clone());
    }
    if tensor.raw_data.len() != numel(tensor).saturating_mul(4) {
        return Err(OnnxError::Invalid(format!(
            "initializer `{}`: {} bytes of data for dims {:?}",
            tensor.name,
            tensor.raw_data.len(),
            tensor.dims
        )));
    }
    Ok(tensor
        .raw_data
        .chunks_exact(4)
        .filter_map(|c| c.try_into().ok().map(f32::from_le_bytes))
        .collect())
}

/// An int64 tensor's values.
pub fn i64_data(tensor: &TensorProto) -> Option<Vec<i64>> {
    if tensor.data_type != DataType::Int64 as i32 {
        return None;
    }
    if !tensor.int64_data.is_empty() {
        return Some(tensor.int64_data.clone());
    }
    Some(
        tensor
            .raw_data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect(),
    )
}

/// The subgraphs held in a node's attributes (Scan/Loop bodies, If branches).
pub fn subgraphs(node: &NodeProto) -> impl Iterator<Item = &GraphProto> {
    node.attribute
        .iter()
        .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
}

/// Mutable access to the subgraphs of a node.
pub fn subgraphs_mut(node: &mut NodeProto) -> impl Iterator<Item = &mut GraphProto> {
    node.attribute
        .iter_mut()
        .flat_map(|a| a.g.iter_mut().chain(a.graphs.iter_mut()))
}

/// Names a subgraph reads from its enclosing scopes (used but not defined inside it).
pub fn outer_references(graph: &GraphProto) -> HashSet<String> {
    let mut defined: HashSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    for node in &graph.node {
        defined.extend(node.output.iter().map(String::as_str));
    }
    let mut used = HashSet::new();
    for node in &graph.node {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if !defined.contains(input.as_str()) {
                used.insert(input.clone());
            }
        }
        for sub in subgraphs(node) {
            for name in outer_references(sub) {
                if !defined.contains(name.as_str()) {
                    used.insert(name);
                }
            }
        }
    }
    for output in &graph.output {
        if !defined.contains(output.name.as_str()) {
            used.insert(output.name.clone());
        }
    }
    used
}

/// Every value a node reads: its inputs and what its subgraphs read from outside.
pub fn node_reads(node: &NodeProto) -> Vec<String> {
    let mut reads: Vec<String> = node
        .input
        .iter()
        .filter(|i| !i.is_empty())
        .cloned()
        .collect();
    for sub in subgraphs(node) {
        reads.extend(outer_references(sub));
    }
    reads
}

/// How many times each value is read in `graph` (node inputs, subgraph references, graph outputs).
pub fn use_counts(graph: &GraphProto) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for node in &graph.node {
        for name in node_reads(node) {
            *counts.entry(name).or_default() += 1;
        }
    }
    for output in &graph.output {
        *counts.entry(output.name.clone()).or_default() += 1;
    }
    counts
}

/// Removes nodes whose outputs nobody reads and initializers nobody reads, to a fixed point.
pub fn remove_dead(graph: &mut GraphProto) {
    loop {
        let used = use_counts(graph);
        let before = graph.node.len() + graph.initializer.len();
        graph.node.retain(|n| {
            n.output
                .iter()
                .any(|o| !o.is_empty() && used.contains_key(o))
        });
        graph.initializer.retain(|t| used.contains_key(&t.name));
        if graph.node.len() + graph.initializer.len() == before {
            break;
        }
    }
    let used = use_counts(graph);
    graph.value_info.retain(|v| used.contains_key(&v.name));
}

/// Replaces every read of `from` by `to` in `graph`'s nodes and its subgraphs (where not
/// shadowed). Graph outputs keep their names: callers check [`is_graph_output`] first.
pub fn replace_uses(graph: &mut GraphProto, from: &str, to: &str) {
    for node in &mut graph.node {
        for input in node.input.iter_mut().filter(|i| *i == from) {
            *input = to.to_string();
        }
        for sub in subgraphs_mut(node) {
            let shadowed = sub.input.iter().any(|v| v.name == from)
                || sub.initializer.iter().any(|t| t.name == from)
                || sub.node.iter().any(|n| n.output.iter().any(|o| o == from));
            if !shadowed {
                replace_uses(sub, from, to);
            }
        }
    }
}

/// Whether `name` is one of the graph's outputs.
pub fn is_graph_output(graph: &GraphProto, name: &str) -> bool {
    graph.output.iter().any(|o| o.name == name)
}

/// Every value name defined anywhere in the model (inputs, initializers, node outputs, also inside
/// subgraphs): fresh names must avoid them all.
pub fn all_names(graph: &GraphProto, names: &mut HashSet<String>) {
    names.extend(graph.input.iter().map(|v| v.name.clone()));
    names.extend(graph.initializer.iter().map(|t| t.name.clone()));
    for node in &graph.node {
        names.extend(node.output.iter().cloned());
        names.insert(node.name.clone());
        for sub in subgraphs(node) {
            all_names(sub, names);
        }
    }
}

/// Makes names that collide with nothing in the model.
pub struct Namer {
    taken: HashSet<String>,
}

impl Namer {
    pub fn new(graph: &GraphProto) -> Self {
        let mut taken = HashSet::new();
        all_names(graph, &mut taken);
        Namer { taken }
    }

    /// `base`, or `base_2`, `base_3`, … if taken.
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 1;
        while self.taken.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        self.taken.insert(name.clone());
        name
    }
}

/// A tensor value of an element type with no shape given (loop-body inputs and outputs).
pub fn typed(name: &str, elem_type: DataType) -> crate::proto::pb::ValueInfoProto {
    use crate::proto::pb::{TypeProto, type_proto};
    crate::proto::pb::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: None,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A node with the given inputs, outputs and attributes.
pub fn node(
    op_type: &str,
    name: String,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op_type.to_string(),
        name,
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
        ..Default::default()
    }
}

/// A contrib-op node in ONNX Runtime's `com.microsoft` domain.
pub fn ms_node(
    op_type: &str,
    name: String,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        domain: MS_DOMAIN.to_string(),
        ..node(op_type, name, inputs, outputs, attribute)
    }
}

/// A node's name and operator, for errors: `node `name` (Op)`.
pub fn describe(node: &NodeProto) -> String {
    format!("node `{}` ({})", node.name, node.op_type)
}

/// Input `k` of `node`, or an error naming the node (graphs from elsewhere may lack inputs
/// their operator needs).
pub fn input(node: &NodeProto, k: usize) -> Result<&str> {
    node.input.get(k).map(String::as_str).ok_or_else(|| {
        OnnxError::Invalid(format!(
            "{} has {} inputs, needs input {k}",
            describe(node),
            node.input.len()
        ))
    })
}

/// Output `k` of `node`, or an error naming the node.
pub fn output(node: &NodeProto, k: usize) -> Result<&str> {
    node.output.get(k).map(String::as_str).ok_or_else(|| {
        OnnxError::Invalid(format!(
            "{} has {} outputs, needs output {k}",
            describe(node),
            node.output.len()
        ))
    })
}

/// ONNX Runtime's contrib-op domain.
pub const MS_DOMAIN: &str = "com.microsoft";

/// An attribute's integer value.
pub fn attr_i(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute
        .iter()
        .find(|a| a.name == name && a.r#type == AttributeType::Int as i32)
        .map(|a| a.i)
}

/// An attribute's integer list.
pub fn attr_is<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    node.attribute
        .iter()
        .find(|a| a.name == name && a.r#type == AttributeType::Ints as i32)
        .map(|a| a.ints.as_slice())
}

/// Nodes in topological order (stable: the file's order wherever it is already valid). Values
/// defined outside the graph (inputs, initializers, outer scope) count as available.
pub fn topological_order(graph: &GraphProto) -> Result<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for output in node.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(output, i);
        }
    }
    // Per node: how many of its producers are not placed yet, and which nodes read it.
    let mut waiting: Vec<usize> = Vec::with_capacity(graph.node.len());
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        let deps: HashSet<usize> = node_reads(node)
            .iter()
            .filter_map(|name| producer.get(name.as_str()).copied())
            .filter(|&p| p != i)
            .collect();
        waiting.push(deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(i);
        }
    }
    // Kahn's algorithm, always taking the ready node that comes first in the file.
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = waiting
        .iter()
        .enumerate()
        .filter(|&(_, &w)| w == 0)
        .map(|(i, _)| std::cmp::Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(graph.node.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in dependents.get(&i).into_iter().flatten() {
            if let Some(w) = waiting.get_mut(d) {
                *w -= 1;
                if *w == 0 {
                    ready.push(std::cmp::Reverse(d));
                }
            }
        }
    }
    if order.len() != graph.node.len() {
        return Err(OnnxError::Invalid(
            "the graph has a cycle (or a node reads its own output)".into(),
        ));
    }
    Ok(order)
}

/// Puts the graph's nodes in topological order.
pub fn sort_nodes(graph: &mut GraphProto) -> Result<()> {
    let order = topological_order(graph)?;
    let mut nodes: Vec<Option<NodeProto>> = std::mem::take(&mut graph.node)
        .into_iter()
        .map(Some)
        .collect();
    graph.node = order
        .into_iter()
        .filter_map(|i| nodes.get_mut(i).and_then(Option::take))
        .collect();
    Ok(())
}
