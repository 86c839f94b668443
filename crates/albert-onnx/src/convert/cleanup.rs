//! The lossless clean-up every conversion starts and ends with: `Constant` nodes become
//! initializers (legacy torch exports emit one per use), typed tensor data becomes raw data,
//! `Identity` nodes are bypassed (exporters route shared weights through them), and dead nodes and
//! unused initializers are removed.

use crate::error::Result;
use crate::graph::{self, is_graph_output, make_raw, replace_uses};
use crate::proto::pb::attribute_proto::AttributeType;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};

/// What the clean-up changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanupStats {
    pub constants_to_initializers: usize,
    pub identities_removed: usize,
    pub nodes_removed: usize,
    pub initializers_removed: usize,
}

/// The tensor a `Constant` node makes, if it is one of the forms we read.
fn constant_tensor(node: &NodeProto) -> Option<TensorProto> {
    let attr = node.attribute.first()?;
    let name = node.output.first()?.clone();
    let tensor = match AttributeType::try_from(attr.r#type).ok()? {
        AttributeType::Tensor if attr.name == "value" => TensorProto {
            name,
            ..attr.t.clone()?
        },
        AttributeType::Float if attr.name == "value_float" => {
            crate::proto::tensor_f32(&name, &[], &[attr.f])
        }
        AttributeType::Floats if attr.name == "value_floats" => {
            crate::proto::tensor_f32(&name, &[attr.floats.len()], &attr.floats)
        }
        AttributeType::Int if attr.name == "value_int" => {
            crate::proto::tensor_i64(&name, &[], &[attr.i])
        }
        AttributeType::Ints if attr.name == "value_ints" => {
            crate::proto::tensor_i64(&name, &[attr.ints.len()], &attr.ints)
        }
        _ => return None,
    };
    (node.attribute.len() == 1).then_some(tensor)
}

/// Runs the clean-up on the main graph (subgraphs are left as they are).
pub fn cleanup(graph: &mut GraphProto) -> Result<CleanupStats> {
    let mut stats = CleanupStats::default();
    let (nodes_before, inits_before) = (graph.node.len(), graph.initializer.len());

    // Constant nodes → initializers.
    let mut kept = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        match (node.op_type.as_str(), node.domain.as_str()) {
            ("Constant", "" | "ai.onnx") => match constant_tensor(&node) {
                Some(tensor) => {
                    graph.initializer.push(tensor);
                    stats.constants_to_initializers += 1;
                }
                None => kept.push(node),
            },
            _ => kept.push(node),
        }
    }
    graph.node = kept;
    for tensor in &mut graph.initializer {
        make_raw(tensor)?;
    }

    // Identity nodes: readers of the output read the input instead.
    let mut i = 0;
    while let Some(node) = graph.node.get(i) {
        let bypass = match (node.input.as_slice(), node.output.as_slice()) {
            ([to], [from])
                if node.op_type == "Identity"
                    && node.domain.is_empty()
                    && !is_graph_output(graph, from) =>
            {
                Some((from.clone(), to.clone()))
            }
            _ => None,
        };
        if let Some((from, to)) = bypass {
            graph.node.remove(i);
            replace_uses(graph, &from, &to);
            stats.identities_removed += 1;
        } else {
            i += 1;
        }
    }

    graph::remove_dead(graph);
    graph::sort_nodes(graph)?;
    stats.nodes_removed = nodes_before.saturating_sub(graph.node.len());
    stats.initializers_removed =
        (inits_before + stats.constants_to_initializers).saturating_sub(graph.initializer.len());
    Ok(stats)
}
