//! LayerNorm: the `ReduceMean → Sub → Mul/Pow → ReduceMean → Add(ε) → Sqrt → Div → Mul(γ) →
//! Add(β)` chain (ours, dynamo's) → `LayerNormalization` (opset 17), in both flavours. The
//! intermediate values must serve this LayerNorm only.

// Graphs from third parties: every access is checked (`.get()`); see `super`.
#![deny(clippy::indexing_slicing)]

use crate::graph::{self, Namer};
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};
use crate::proto::{attr_float, attr_int};

use super::{Index, init, is_op, scalar, splice, split_const};

fn reduce_mean_last(graph: &GraphProto, outer: &[TensorProto], node: &NodeProto) -> bool {
    if !is_op(node, "ReduceMean") || graph::attr_i(node, "keepdims").unwrap_or(1) != 1 {
        return false;
    }
    let axes = graph::attr_is(node, "axes")
        .map(<[i64]>::to_vec)
        .or_else(|| {
            node.input
                .get(1)
                .and_then(|a| init(graph, outer, a))
                .and_then(graph::i64_data)
        });
    axes.as_deref() == Some(&[-1])
}

/// A matched LayerNorm: (x, γ, β, ε, the output value, the nodes it replaces).
struct LayerNormMatch {
    x: String,
    gamma: String,
    beta: String,
    eps: f64,
    nodes: Vec<usize>,
}

fn match_layer_norm(
    graph: &GraphProto,
    outer: &[TensorProto],
    ix: &Index,
    end: usize,
) -> Option<LayerNormMatch> {
    let add_beta = graph.node.get(end)?;
    if !is_op(add_beta, "Add") {
        return None;
    }
    let (scaled, beta) = split_const(graph, outer, add_beta)?;
    let mul_gamma = ix.node(graph, scaled).filter(|n| is_op(n, "Mul"))?;
    let (normalized, gamma) = split_const(graph, outer, mul_gamma)?;
    let div = ix.node(graph, normalized).filter(|n| is_op(n, "Div"))?;
    let (centered, std) = (div.input.first()?, div.input.get(1)?);
    let sqrt = ix.node(graph, std).filter(|n| is_op(n, "Sqrt"))?;
    let add_eps = ix
        .node(graph, sqrt.input.first()?)
        .filter(|n| is_op(n, "Add"))?;
    let (variance, eps) = split_const(graph, outer, add_eps)?;
    let eps = scalar(graph, outer, eps)?;
    let var_mean = ix
        .node(graph, variance)
        .filter(|n| reduce_mean_last(graph, outer, n))?;
    let square = ix.node(graph, var_mean.input.first()?)?;
    let squares_centered = (is_op(square, "Mul")
        && square.input.first() == Some(centered)
        && square.input.get(1) == Some(centered))
        || (is_op(square, "Pow")
            && square.input.first() == Some(centered)
            && square.input.get(1).and_then(|p| scalar(graph, outer, p)) == Some(2.0));
    if !squares_centered {
        return None;
    }
    let sub = ix.node(graph, centered).filter(|n| is_op(n, "Sub"))?;
    let (x, mean) = (sub.input.first()?, sub.input.get(1)?);
    let mean_node = ix
        .node(graph, mean)
        .filter(|n| reduce_mean_last(graph, outer, n))?;
    if mean_node.input.first() != Some(x) {
        return None;
    }
    // The intermediate values must serve this LayerNorm only.
    let (root, squared) = (sqrt.input.first()?, var_mean.input.first()?);
    let inner_single = [
        scaled,
        normalized,
        std,
        root.as_str(),
        variance,
        squared,
        mean,
    ]
    .iter()
    .all(|v| ix.single_use(graph, v));
    let centered_uses = ix.uses.get(centered.as_str()).copied().unwrap_or(0);
    let centered_ok = centered_uses == if is_op(square, "Mul") { 3 } else { 2 };
    if !inner_single || !centered_ok {
        return None;
    }
    let nodes = [
        scaled, normalized, std, root, variance, squared, centered, mean,
    ]
    .iter()
    .filter_map(|v| ix.producer.get(*v).copied())
    .chain([end])
    .collect();
    Some(LayerNormMatch {
        x: x.clone(),
        gamma: gamma.to_string(),
        beta: beta.to_string(),
        eps,
        nodes,
    })
}

pub(super) fn fuse_layer_norms(
    graph: &mut GraphProto,
    outer: &[TensorProto],
    namer: &mut Namer,
) -> usize {
    let mut fused = 0;
    loop {
        let ix = Index::new(graph);
        let found = (0..graph.node.len())
            .find_map(|i| match_layer_norm(graph, outer, &ix, i).map(|m| (i, m)));
        let Some(output) = found
            .and_then(|(end, m)| Some((graph.node.get(end)?, m)))
            .and_then(|(end, m)| Some((end.output.first()?.clone(), m)))
        else {
            break;
        };
        let (output, m) = output;
        let node = graph::node(
            "LayerNormalization",
            namer.fresh("/fuse/LayerNormalization"),
            &[&m.x, &m.gamma, &m.beta],
            &[&output],
            vec![attr_int("axis", -1), attr_float("epsilon", m.eps as f32)],
        );
        splice(graph, &m.nodes, vec![node]);
        fused += 1;
    }
    fused
}
