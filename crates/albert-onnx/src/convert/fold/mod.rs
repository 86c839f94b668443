//! Fold: ALBERT applies one layer's weights L times (paper §3.1, cross-layer parameter sharing),
//! and every exporter unrolls that into L copies of the layer's nodes. This pass finds the
//! repetition in any ALBERT graph (ours or a third party's) and replaces it by ONNX `Scan` loops
//! whose body is the layer, so the node count no longer depends on `num_hidden_layers`:
//!
//! * blocks with the same weights (`sharing: all`, or each group of `num_hidden_groups`) become one
//!   `Scan` per run of equal blocks, the weights read once from the outer graph;
//! * blocks whose weights differ in some places (`attention`, `ffn` or `none` sharing) become one
//!   `Scan` whose differing weights are stacked along a new first axis and sliced per iteration,
//!   the equal ones still read once from the outer graph.
//!
//! `Scan` and not `Loop`: tract has no `Loop`; both engines run `Scan`, including bodies that read
//! outer-scope values (DESIGN.md "Known traps"). [`unfold`] inlines the loops again.
//!
//! How the repetition is found: nodes in topological order get a local signature (op, attributes,
//! and for each input whether it is a weight of some shape, a constant of some content, or a
//! computed value); the longest run of blocks with equal signature sequences is a candidate, and it
//! is accepted only if the blocks are truly isomorphic and chained: each block reads the previous
//! block's outputs at the same places (the carried state), values from before the run that are
//! the same for every block (the attention-mask bias) and weights, and nothing after the run reads
//! anything but the last block's carried state.
//!
//! The pass in three files: `detect.rs` finds the chain of repeated blocks (signatures,
//! candidates, the isomorphism and chaining check); `rewrite.rs` turns a run of blocks into one
//! `Scan` (its body, the shared and stacked weights); `unfold.rs` inlines loops again.

mod detect;
mod rewrite;
mod unfold;

use std::collections::{HashMap, HashSet};

use prost::Message;

use crate::error::{OnnxError, Result};
use crate::graph::{self, Namer, numel};
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

use detect::{find_chain, runs};
use rewrite::{Loop, make_loop};
pub use unfold::unfold;

/// What folding did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FoldStats {
    /// Blocks (layers, or groups of inner layers) folded, in all loops.
    pub blocks: usize,
    /// Nodes in one block.
    pub block_nodes: usize,
    /// `Scan` loops made.
    pub loops: usize,
    /// Weights read once from the outer graph by every iteration.
    pub shared_weights: usize,
    /// Weights stacked along a new axis, one slice per iteration.
    pub stacked_weights: usize,
}

pub(super) fn cannot(message: impl Into<String>) -> OnnxError {
    OnnxError::CannotFold(message.into())
}

// Positions below are ones this pass computed in the graph's own node list (`Chain::node`,
// signatures of equal arity), and `arity::check` ran first; still, a malformed graph from
// elsewhere must give an error naming the node, never a panic (convert/mod.rs denies indexing).

/// The node at `position` of `graph`.
pub(super) fn node_at(
    graph: &GraphProto,
    position: usize,
) -> std::result::Result<&NodeProto, String> {
    graph
        .node
        .get(position)
        .ok_or_else(|| format!("internal: no node at position {position}"))
}

/// Input `q` of `node`.
pub(super) fn input_of(node: &NodeProto, q: usize) -> std::result::Result<&String, String> {
    node.input
        .get(q)
        .ok_or_else(|| format!("node `{}` ({}) has no input {q}", node.name, node.op_type))
}

/// Output `o` of `node`.
pub(super) fn output_of(node: &NodeProto, o: usize) -> std::result::Result<&String, String> {
    node.output
        .get(o)
        .ok_or_else(|| format!("node `{}` ({}) has no output {o}", node.name, node.op_type))
}

/// A float tensor with more than one element: a weight that may differ between blocks. Anything
/// else (integer shapes, axes, scalar constants) must be identical in every block.
pub(super) fn is_weight(t: &TensorProto) -> bool {
    t.data_type == DataType::Float as i32 && numel(t) > 1
}

pub(super) fn attributes_key(attrs: &[AttributeProto]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attrs {
        a.encode(&mut out).ok();
    }
    out
}

/// Folds the repeated layers of the main graph into `Scan` loops.
pub fn fold(graph: &mut GraphProto) -> Result<FoldStats> {
    if graph.node.iter().any(|n| n.op_type == "Scan") {
        return Err(cannot("the graph is already folded (it has a Scan)"));
    }
    graph::sort_nodes(graph)?;
    let inits: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let chain = find_chain(graph, &inits).map_err(cannot)?;

    // Runs of consecutive blocks bound to the same weights share a loop; if no two neighbours
    // share, one loop stacks whatever differs.
    let mut runs = runs(graph, &inits, &chain);
    if runs.iter().all(|&(_, count)| count == 1) {
        runs = vec![(0, chain.count)];
    }
    let mut namer = Namer::new(graph);
    let mut loops: Vec<(usize, Loop)> = Vec::new();
    for (index, &(first, count)) in runs.iter().enumerate() {
        if count < 2 {
            continue; // a lone block stays as it is
        }
        let made = make_loop(graph, &chain, &inits, first, count, &mut namer, index)?;
        loops.push((first, made));
    }
    let mut shared: HashSet<&str> = HashSet::new();
    for (_, made) in &loops {
        shared.extend(made.shared.iter().map(String::as_str));
    }
    let stats = FoldStats {
        blocks: runs.iter().filter(|&&(_, c)| c >= 2).map(|&(_, c)| c).sum(),
        block_nodes: chain.len,
        loops: loops.len(),
        shared_weights: shared.len(),
        stacked_weights: loops.iter().map(|(_, l)| l.stacked).sum(),
    };
    // Rebuild the node list: folded blocks out, each loop where its first block began.
    let folded: HashSet<usize> = runs
        .iter()
        .filter(|&&(_, c)| c >= 2)
        .flat_map(|&(first, count)| {
            (chain.node(first, 0)..chain.node(first + count - 1, chain.len - 1) + 1)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut at: HashMap<usize, NodeProto> = HashMap::new();
    for (first, made) in loops {
        at.insert(chain.node(first, 0), made.node);
        graph.initializer.extend(made.new_initializers);
    }
    let nodes = std::mem::take(&mut graph.node);
    for (i, node) in nodes.into_iter().enumerate() {
        if let Some(scan) = at.remove(&i) {
            graph.node.push(scan);
        }
        if !folded.contains(&i) {
            graph.node.push(node);
        }
    }
    graph::remove_dead(graph);
    graph::sort_nodes(graph)?;
    Ok(stats)
}
