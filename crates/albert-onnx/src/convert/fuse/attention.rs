//! Attention (`ort` flavour): Q, K, V projections of one input, the heads split, scaled scores
//! plus the mask bias, softmax, context, heads merged → `com.microsoft.Attention` with one packed
//! `[H, 3H]` weight per distinct (Q, K, V) — stored once however many layers read it — and the
//! attention mask as `mask_index` (the int32 cast of it is written by [`super::fuse`]).

// Graphs from third parties: every access is checked (`.get()`); see `super`.
#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use crate::graph::{self, Namer, is_graph_output};
use crate::proto::attr_int;
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{GraphProto, TensorProto};

use super::{Index, init, is_op, scalar, splice, split_const};

/// A linear projection `Add(MatMul(x, W), b)` (either operand order of the Add).
fn projection(
    graph: &GraphProto,
    outer: &[TensorProto],
    ix: &Index,
    value: &str,
) -> Option<(String, String, String, Vec<usize>)> {
    let &a = ix.producer.get(value)?;
    let add = graph.node.get(a)?;
    if !is_op(add, "Add") {
        return None;
    }
    let (product, bias) = split_const(graph, outer, add)?;
    let &m = ix.producer.get(product)?;
    let matmul = graph.node.get(m)?;
    if !is_op(matmul, "MatMul")
        || init(graph, outer, matmul.input.get(1)?).is_none_or(|t| t.dims.len() != 2)
    {
        return None;
    }
    Some((
        matmul.input.first()?.clone(),
        matmul.input.get(1)?.clone(),
        bias.to_string(),
        vec![m, a],
    ))
}

/// `Transpose(Reshape(v, [0, 0, heads, size]), perm)`: returns (v, heads, size, nodes), either
/// of heads and size possibly -1 (inferred).
fn split_heads(
    graph: &GraphProto,
    outer: &[TensorProto],
    ix: &Index,
    value: &str,
    perm: &[i64],
) -> Option<(String, i64, i64, Vec<usize>)> {
    let &t = ix.producer.get(value)?;
    let transpose = graph.node.get(t)?;
    if !is_op(transpose, "Transpose") || graph::attr_is(transpose, "perm") != Some(perm) {
        return None;
    }
    let &r = ix.producer.get(transpose.input.first()?)?;
    let reshape = graph.node.get(r)?;
    if !is_op(reshape, "Reshape") {
        return None;
    }
    // The target shape: a constant [0, 0, heads, size] (ours), or a Concat of the batch and
    // sequence sizes read from Shape with constant heads and size (torch exports).
    let shape_name = reshape.input.get(1)?;
    // HF writes `view(batch, seq, -1, head_size)`: the heads are then hidden / head_size.
    let (heads, size) = match init(graph, outer, shape_name) {
        Some(t) => {
            let shape = graph::i64_data(t)?;
            let &[_, _, heads, size] = shape.as_slice() else {
                return None;
            };
            (heads, size)
        }
        None => {
            let concat = ix.node(graph, shape_name).filter(|n| is_op(n, "Concat"))?;
            if concat.input.len() != 4 {
                return None;
            }
            let dim = |k: usize| -> Option<i64> {
                graph::i64_data(init(graph, outer, concat.input.get(k)?)?)?
                    .first()
                    .copied()
            };
            (dim(2)?, dim(3)?)
        }
    };
    Some((reshape.input.first()?.clone(), heads, size, vec![r, t]))
}

struct AttentionMatch {
    x: String,
    weights: [String; 3],
    biases: [String; 3],
    heads: i64,
    output: String,
    nodes: Vec<usize>,
}

fn match_attention(
    graph: &GraphProto,
    outer: &[TensorProto],
    ix: &Index,
    softmax: usize,
) -> Option<AttentionMatch> {
    let node = graph.node.get(softmax)?;
    if !is_op(node, "Softmax") || graph::attr_i(node, "axis").unwrap_or(-1) != -1 {
        return None;
    }
    let &add_mask = ix.producer.get(node.input.first()?)?;
    let add = graph.node.get(add_mask)?;
    if !is_op(add, "Add") {
        return None;
    }
    // One side is the scaled scores, the other the mask bias (computed outside the layer).
    let [left, right] = add.input.as_slice() else {
        return None;
    };
    let scaled = [left, right].into_iter().find(|v| {
        ix.node(graph, v)
            .is_some_and(|n| is_op(n, "Mul") || is_op(n, "Div"))
    })?;
    let &sc = ix.producer.get(scaled)?;
    let scale_node = graph.node.get(sc)?;
    let (scores, factor) = split_const(graph, outer, scale_node)?;
    let factor = scalar(graph, outer, factor)?;
    let scale = if is_op(scale_node, "Div") {
        1.0 / factor
    } else {
        factor
    };
    let &qk = ix.producer.get(scores)?;
    let qk_node = graph.node.get(qk)?;
    if !is_op(qk_node, "MatMul") {
        return None;
    }
    let (q, heads, size, q_nodes) =
        split_heads(graph, outer, ix, qk_node.input.first()?, &[0, 2, 1, 3])?;
    let (k, _, _, k_nodes) = split_heads(graph, outer, ix, qk_node.input.get(1)?, &[0, 2, 3, 1])?;
    let probs = node.output.first()?;
    let (ctx_i, ctx) = graph
        .node
        .iter()
        .enumerate()
        .find(|(_, n)| is_op(n, "MatMul") && n.input.first() == Some(probs))?;
    let (v, _, _, v_nodes) = split_heads(graph, outer, ix, ctx.input.get(1)?, &[0, 2, 1, 3])?;
    let (qx, qw, qb, qp) = projection(graph, outer, ix, &q)?;
    let (kx, kw, kb, kp) = projection(graph, outer, ix, &k)?;
    let (vx, vw, vb, vp) = projection(graph, outer, ix, &v)?;
    if qx != kx || qx != vx {
        return None;
    }
    let hidden = *init(graph, outer, &qw)?.dims.get(1)?;
    let heads = match (heads, size) {
        (h, _) if h > 0 => h,
        (_, s) if s > 0 && hidden % s == 0 => hidden / s,
        _ => return None,
    };
    let head_size = hidden / heads;
    if (scale - (head_size as f64).powf(-0.5)).abs() > 1e-6 * scale.abs() {
        return None;
    }
    // Merge heads: Transpose [0, 2, 1, 3] then Reshape to [.., .., H].
    let context = ctx.output.first()?;
    let merged_t = graph.node.iter().position(|n| {
        is_op(n, "Transpose")
            && n.input.first() == Some(context)
            && graph::attr_is(n, "perm") == Some(&[0, 2, 1, 3][..])
    })?;
    let transposed = graph.node.get(merged_t)?.output.first()?;
    let merged_r = graph
        .node
        .iter()
        .position(|n| is_op(n, "Reshape") && n.input.first() == Some(transposed))?;
    let mut nodes: Vec<usize> = [q_nodes, k_nodes, v_nodes, qp, kp, vp].concat();
    nodes.extend([sc, qk, add_mask, softmax, ctx_i, merged_t, merged_r]);
    // Every intermediate value is private to the pattern.
    for &i in &nodes {
        if i == merged_r {
            continue;
        }
        for out in &graph.node.get(i)?.output {
            let readers = graph
                .node
                .iter()
                .enumerate()
                .filter(|(j, n)| n.input.contains(out) && !nodes.contains(j))
                .count();
            if readers > 0 || is_graph_output(graph, out) {
                return None;
            }
        }
    }
    Some(AttentionMatch {
        x: qx,
        weights: [qw, kw, vw],
        biases: [qb, kb, vb],
        heads,
        output: graph.node.get(merged_r)?.output.first()?.clone(),
        nodes,
    })
}

fn concat_last(parts: &[&TensorProto], name: &str) -> Option<TensorProto> {
    let (_, lead) = parts.first()?.dims.split_last()?;
    if parts.iter().any(|p| {
        p.dims.split_last().map(|(_, l)| l) != Some(lead) || p.data_type != DataType::Float as i32
    }) {
        return None;
    }
    // Dims come from a file: negative or overflowing ones, or data that does not fill them,
    // leave the attention unfused rather than panic or allocate what the file does not hold.
    let lead: Vec<usize> = lead
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<_>>()?;
    let rows = lead.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
    let widths: Vec<usize> = parts
        .iter()
        .map(|p| p.dims.last().and_then(|&d| usize::try_from(d).ok()))
        .collect::<Option<_>>()?;
    let data: Vec<Vec<f32>> = parts
        .iter()
        .map(|p| graph::f32_data(p).ok())
        .collect::<Option<_>>()?;
    for (d, &w) in data.iter().zip(&widths) {
        if rows.checked_mul(w) != Some(d.len()) {
            return None;
        }
    }
    let mut out = Vec::with_capacity(data.iter().map(Vec::len).sum());
    for r in 0..rows {
        for (d, &w) in data.iter().zip(&widths) {
            out.extend_from_slice(d.get(r * w..(r + 1) * w)?);
        }
    }
    let mut dims = lead;
    dims.push(widths.iter().sum());
    Some(crate::proto::tensor_f32(name, &dims, &out))
}

pub(super) fn fuse_attentions(
    graph: &mut GraphProto,
    outer: &[TensorProto],
    namer: &mut Namer,
    packed: &mut HashMap<[String; 3], (String, String)>,
    new_inits: &mut Vec<TensorProto>,
    mask_index: &str,
) -> usize {
    let mut fused = 0;
    loop {
        let ix = Index::new(graph);
        let found = (0..graph.node.len()).find_map(|i| match_attention(graph, outer, &ix, i));
        let Some(m) = found else { break };
        let (w, b) = match packed.get(&m.weights) {
            Some(p) => p.clone(),
            None => {
                let find = |n: &str| {
                    init(graph, outer, n).or_else(|| new_inits.iter().find(|t| t.name == n))
                };
                let ws: Option<Vec<&TensorProto>> = m.weights.iter().map(|n| find(n)).collect();
                let bs: Option<Vec<&TensorProto>> = m.biases.iter().map(|n| find(n)).collect();
                let ([q_weight, ..], [q_bias, ..]) = (&m.weights, &m.biases);
                let w_name = namer.fresh(&format!("{q_weight}.qkv_packed"));
                let b_name = namer.fresh(&format!("{q_bias}.qkv_packed"));
                let (Some(w), Some(b)) = (
                    ws.and_then(|ws| concat_last(&ws, &w_name)),
                    bs.and_then(|bs| concat_last(&bs, &b_name)),
                ) else {
                    break;
                };
                new_inits.push(w);
                new_inits.push(b);
                packed.insert(m.weights.clone(), (w_name.clone(), b_name.clone()));
                (w_name, b_name)
            }
        };
        let node = graph::ms_node(
            "Attention",
            namer.fresh("/fuse/Attention"),
            &[&m.x, &w, &b, mask_index],
            &[&m.output],
            vec![attr_int("num_heads", m.heads)],
        );
        splice(graph, &m.nodes, vec![node]);
        fused += 1;
    }
    fused
}
