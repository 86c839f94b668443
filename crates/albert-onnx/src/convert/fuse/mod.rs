//! Fuse: the composite pieces of a transformer layer into single operators, one file per fusion,
//! run in this order on the main graph and on each loop body:
//!
//! * `layer_norm.rs`: the LayerNorm chain → `LayerNormalization` (opset 17), both flavours;
//! * `gelu.rs`: any arrangement of the erf or tanh GELU formula → `com.microsoft` `Gelu` /
//!   `FastGelu` (`ort`), the opset-20 `Gelu` or standard ops ONNX Runtime fuses (`portable`);
//! * `skip_layer_norm.rs` (`ort` flavour): `Add(x, residual) → LayerNormalization` →
//!   `com.microsoft.SkipLayerNormalization`;
//! * `attention.rs` (`ort` flavour): the self-attention block → `com.microsoft.Attention`.
//!
//! This file holds what they share: the flavour, the statistics, the index of producers and
//! consumers, the constant and operator tests, the splice of a match into one node, and the
//! pass's entry point [`fuse`].
//!
//! The `portable` flavour writes standard ONNX only, which tract runs too (DESIGN.md: tract's
//! `Attention` is the opset-23 op and its `MultiHeadAttention` takes no mask, so attention stays
//! unfused there). The `ort` flavour's contrib ops need the `com.microsoft` opset import, which
//! [`super::convert`] adds whenever the graph uses that domain.

// Graphs from third parties: every access is checked (`.get()`), a malformed node is an error
// naming it (crate::convert::arity runs first) or a pattern that does not match, never a panic.
#![deny(clippy::indexing_slicing)]

mod attention;
mod gelu;
mod layer_norm;
mod skip_layer_norm;

use std::collections::HashMap;

use crate::error::Result;
use crate::graph::{self, Namer, is_graph_output};
use crate::proto::attr_int;
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};

/// Which operator set fused nodes may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuseFlavour {
    /// Every ONNX Runtime contrib op (CPU and CUDA).
    Ort,
    /// Only what tract runs too.
    Portable,
}

impl std::str::FromStr for FuseFlavour {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ort" => Ok(FuseFlavour::Ort),
            "portable" => Ok(FuseFlavour::Portable),
            _ => Err(format!(
                "unknown fusion flavour `{s}`: expected ort or portable"
            )),
        }
    }
}

/// What fusion made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FuseStats {
    pub layer_norms: usize,
    pub gelus: usize,
    pub skip_layer_norms: usize,
    pub attentions: usize,
    /// Packed Q/K/V weights created (one per distinct projection triple).
    pub packed_weights: usize,
}

/// Producers and consumers of the values of one graph.
struct Index {
    producer: HashMap<String, usize>,
    uses: HashMap<String, usize>,
}

impl Index {
    fn new(graph: &GraphProto) -> Self {
        let mut producer = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for o in &n.output {
                producer.insert(o.clone(), i);
            }
        }
        Index {
            producer,
            uses: graph::use_counts(graph),
        }
    }

    fn node<'g>(&self, graph: &'g GraphProto, value: &str) -> Option<&'g NodeProto> {
        self.producer.get(value).and_then(|&i| graph.node.get(i))
    }

    fn single_use(&self, graph: &GraphProto, value: &str) -> bool {
        self.uses.get(value).copied().unwrap_or(0) == 1 && !is_graph_output(graph, value)
    }
}

fn init<'g>(
    graph: &'g GraphProto,
    outer: &'g [TensorProto],
    name: &str,
) -> Option<&'g TensorProto> {
    graph
        .initializer
        .iter()
        .chain(outer)
        .find(|t| t.name == name)
}

fn scalar(graph: &GraphProto, outer: &[TensorProto], name: &str) -> Option<f64> {
    let t = init(graph, outer, name)?;
    if graph::numel(t) != 1 || t.data_type != DataType::Float as i32 {
        return None;
    }
    graph::f32_data(t).ok()?.first().map(|&v| f64::from(v))
}

fn is_op(node: &NodeProto, op: &str) -> bool {
    node.op_type == op && (node.domain.is_empty() || node.domain == "ai.onnx")
}

/// The non-constant input and the constant input of a binary node, in either order.
fn split_const<'n>(
    graph: &GraphProto,
    outer: &[TensorProto],
    node: &'n NodeProto,
) -> Option<(&'n str, &'n str)> {
    let (a, b) = (node.input.first()?, node.input.get(1)?);
    match (
        init(graph, outer, a).is_some(),
        init(graph, outer, b).is_some(),
    ) {
        (false, true) => Some((a, b)),
        (true, false) => Some((b, a)),
        _ => None,
    }
}

/// Replaces `nodes` (by index) with `replacement`, placed where the last of them was.
fn splice(graph: &mut GraphProto, nodes: &[usize], replacement: Vec<NodeProto>) {
    let last = nodes.iter().copied().max().unwrap_or(0);
    let mut out = Vec::with_capacity(graph.node.len());
    for (i, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if i == last {
            out.extend(replacement.iter().cloned());
        }
        if !nodes.contains(&i) {
            out.push(node);
        }
    }
    graph.node = out;
}

/// What fusing the main graph and its loop bodies shares.
struct FuseState {
    /// Packed (weight, bias) per distinct (Q, K, V) weight triple.
    packed: HashMap<[String; 3], (String, String)>,
    /// Initializers to add to the main graph.
    new_inits: Vec<TensorProto>,
    /// The int32 attention mask for `Attention`'s `mask_index`, when the graph has the input.
    mask: Option<String>,
}

fn fuse_graph(
    graph: &mut GraphProto,
    outer: &[TensorProto],
    flavour: FuseFlavour,
    namer: &mut Namer,
    state: &mut FuseState,
    opset: i64,
    stats: &mut FuseStats,
) -> Result<()> {
    if opset >= 17 {
        stats.layer_norms += layer_norm::fuse_layer_norms(graph, outer, namer);
    }
    stats.gelus += gelu::fuse_gelus(graph, outer, namer, flavour, opset);
    if flavour == FuseFlavour::Ort {
        stats.skip_layer_norms += skip_layer_norm::fuse_skip_layer_norms(graph, outer, namer);
        if let Some(mask) = state.mask.clone() {
            let before = state.packed.len();
            stats.attentions += attention::fuse_attentions(
                graph,
                outer,
                namer,
                &mut state.packed,
                &mut state.new_inits,
                &mask,
            );
            stats.packed_weights += state.packed.len() - before;
        }
    }
    Ok(())
}

/// Fuses the main graph and the bodies of its loops.
pub fn fuse(graph: &mut GraphProto, flavour: FuseFlavour, opset: i64) -> Result<FuseStats> {
    let mut namer = Namer::new(graph);
    let mut stats = FuseStats::default();
    // ORT's Attention takes the 0/1 mask as int32 `mask_index`.
    let mask =
        if flavour == FuseFlavour::Ort && graph.input.iter().any(|i| i.name == "attention_mask") {
            let name = namer.fresh("attention_mask.int32");
            Some(name)
        } else {
            None
        };
    let mut state = FuseState {
        packed: HashMap::new(),
        new_inits: Vec::new(),
        mask: mask.clone(),
    };
    let outer: Vec<TensorProto> = Vec::new();
    fuse_graph(
        graph, &outer, flavour, &mut namer, &mut state, opset, &mut stats,
    )?;
    // Loop bodies read the outer graph's initializers.
    let outer_inits = std::mem::take(&mut graph.initializer);
    for node in graph.node.iter_mut().filter(|n| n.op_type == "Scan") {
        for body in graph::subgraphs_mut(node) {
            fuse_graph(
                body,
                &outer_inits,
                flavour,
                &mut namer,
                &mut state,
                opset,
                &mut stats,
            )?;
        }
    }
    graph.initializer = outer_inits;
    graph.initializer.extend(state.new_inits);
    if let Some(mask) = mask
        && stats.attentions > 0
    {
        graph.node.insert(
            0,
            graph::node(
                "Cast",
                namer.fresh("/fuse/Cast_mask"),
                &["attention_mask"],
                &[&mask],
                vec![attr_int("to", DataType::Int32 as i64)],
            ),
        );
    }
    graph::remove_dead(graph);
    graph::sort_nodes(graph)?;
    Ok(stats)
}
