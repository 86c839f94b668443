//! Dedupe: one tensor per distinct weight. Exporters that unroll ALBERT's shared layer often store
//! its weights once per layer, byte for byte, or transposed (a legacy torch export folds each
//! layer's `W.t()` into a new initializer; DESIGN.md "Known traps", onnxruntime#10340). This pass
//! merges byte-identical initializers, turns transposed copies into a `Transpose` of the one kept
//! tensor, and merges identical nodes (common-subexpression elimination), to a fixed point.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::graph::{self, Namer, is_graph_output, replace_uses};
use crate::proto::attr_ints;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};

/// What dedupe changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DedupeStats {
    /// Initializers merged into an identical one.
    pub identical: usize,
    /// Initializers found to be the transpose of another.
    pub transposed: usize,
    /// Initializers found to be a concatenation of others (packed Q/K/V).
    pub concatenated: usize,
    /// Nodes merged into an identical node.
    pub nodes: usize,
    pub bytes_before: usize,
    pub bytes_after: usize,
}

fn content_key(t: &TensorProto) -> (i32, Vec<i64>, [u8; 32]) {
    let digest: [u8; 32] = Sha256::digest(&t.raw_data).into();
    (t.data_type, t.dims.clone(), digest)
}

/// The bytes and dims of a 2-D tensor's transpose; `None` unless it is 2-D with as many bytes
/// as its dims say.
fn transposed_2d(t: &TensorProto, element: usize) -> Option<(Vec<u8>, Vec<i64>)> {
    let &[rows, cols] = t.dims.as_slice() else {
        return None;
    };
    let cells: Vec<&[u8]> = t.raw_data.chunks_exact(element.max(1)).collect();
    let (r, c) = (usize::try_from(rows).ok()?, usize::try_from(cols).ok()?);
    if cells.len() != r.checked_mul(c)? || t.raw_data.len() != cells.len() * element {
        return None;
    }
    let mut out = Vec::with_capacity(t.raw_data.len());
    for j in 0..c {
        for i in 0..r {
            out.extend_from_slice(cells.get(i * c + j)?);
        }
    }
    Some((out, vec![cols, rows]))
}

/// Merges initializers with the same type, shape and bytes. Returns how many were merged.
fn merge_identical(graph: &mut GraphProto) -> usize {
    let mut first: HashMap<(i32, Vec<i64>, [u8; 32]), String> = HashMap::new();
    let mut renames: Vec<(String, String)> = Vec::new();
    for t in &graph.initializer {
        if is_graph_output(graph, &t.name) || graph.input.iter().any(|i| i.name == t.name) {
            continue; // an overridable input or an output keeps its own tensor
        }
        match first.entry(content_key(t)) {
            std::collections::hash_map::Entry::Occupied(e) => {
                renames.push((t.name.clone(), e.get().clone()))
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(t.name.clone());
            }
        }
    }
    for (from, to) in &renames {
        replace_uses(graph, from, to);
    }
    let merged: std::collections::HashSet<&String> = renames.iter().map(|(f, _)| f).collect();
    graph.initializer.retain(|t| !merged.contains(&t.name));
    renames.len()
}

/// Finds 2-D initializers that are the transpose of another and reads them through a `Transpose`
/// of the one kept (ONNX Runtime folds the transpose at load; the file stores one copy).
fn merge_transposed(graph: &mut GraphProto, namer: &mut Namer) -> usize {
    let mut by_content: HashMap<(i32, Vec<i64>, [u8; 32]), String> = HashMap::new();
    for t in graph.initializer.iter().filter(|t| t.dims.len() == 2) {
        by_content.insert(content_key(t), t.name.clone());
    }
    let mut replaced: Vec<(String, String)> = Vec::new();
    for t in graph.initializer.iter().filter(|t| t.dims.len() == 2) {
        if t.dims.iter().all(|&d| d <= 1) {
            continue;
        }
        let Some(element) = graph::element_size(t.data_type) else {
            continue;
        };
        if replaced.iter().any(|(_, kept)| *kept == t.name) {
            continue; // already the kept side of a pair
        }
        let Some((bytes, dims)) = transposed_2d(t, element) else {
            continue;
        };
        let key = (t.data_type, dims, Sha256::digest(&bytes).into());
        if let Some(other) = by_content.get(&key)
            && *other != t.name
            && !replaced.iter().any(|(gone, _)| gone == other)
            && !is_graph_output(graph, &t.name)
        {
            replaced.push((t.name.clone(), other.clone()));
        }
    }
    for (gone, kept) in &replaced {
        let out = namer.fresh(&format!("{kept}_transposed"));
        graph.node.insert(
            0,
            graph::node(
                "Transpose",
                namer.fresh(&format!("/dedupe/Transpose_{kept}")),
                &[kept],
                &[&out],
                vec![attr_ints("perm", &[1, 0])],
            ),
        );
        replace_uses(graph, gone, &out);
    }
    let gone: std::collections::HashSet<&String> = replaced.iter().map(|(g, _)| g).collect();
    graph.initializer.retain(|t| !gone.contains(&t.name));
    replaced.len()
}

/// The columns `[from, from + width)` of a row-major `[rows, cols]` tensor's bytes; `None` when
/// the tensor has fewer bytes than its dims say.
fn column_slice(t: &TensorProto, element: usize, from: usize, width: usize) -> Option<Vec<u8>> {
    let rows = if t.dims.len() == 2 {
        t.dims.first().copied().unwrap_or(1) as usize
    } else {
        1
    };
    let cols = *t.dims.last().unwrap_or(&0) as usize;
    // Dims of a malformed graph may overflow: such a tensor has fewer bytes than they say.
    let row_bytes = width.checked_mul(element)?;
    let mut out = Vec::with_capacity(rows.checked_mul(row_bytes)?.min(t.raw_data.len()));
    for r in 0..rows {
        let start = r
            .checked_mul(cols)?
            .checked_add(from)?
            .checked_mul(element)?;
        out.extend_from_slice(t.raw_data.get(start..start.checked_add(row_bytes)?)?);
    }
    Some(out)
}

/// (data type, leading dims, width of the last axis).
type PartKey = (i32, Vec<i64>, i64);

/// Finds initializers that are the concatenation, along the last axis, of other initializers
/// (ONNX Runtime's attention fusion packs Q, K and V weights and biases into one new tensor per
/// layer) and makes them a `Concat` of those: the file keeps the parts once.
fn merge_concatenated(graph: &mut GraphProto, namer: &mut Namer) -> usize {
    // Parts by (type, leading dims, width) → content → name.
    let mut parts: HashMap<PartKey, HashMap<[u8; 32], String>> = HashMap::new();
    for t in graph
        .initializer
        .iter()
        .filter(|t| (1..=2).contains(&t.dims.len()))
    {
        let Some((&width, lead)) = t.dims.split_last() else {
            continue;
        };
        parts
            .entry((t.data_type, lead.to_vec(), width))
            .or_default()
            .insert(Sha256::digest(&t.raw_data).into(), t.name.clone());
    }
    let mut replaced: Vec<(String, Vec<String>)> = Vec::new();
    for t in graph
        .initializer
        .iter()
        .filter(|t| (1..=2).contains(&t.dims.len()))
    {
        let Some(element) = graph::element_size(t.data_type) else {
            continue;
        };
        let Some((&total, lead)) = t.dims.split_last() else {
            continue;
        };
        let lead = lead.to_vec();
        let mut widths: Vec<i64> = parts
            .keys()
            .filter(|(dt, l, w)| *dt == t.data_type && *l == lead && *w < total && *w > 0)
            .map(|(_, _, w)| *w)
            .collect();
        widths.sort_unstable_by(|a, b| b.cmp(a));
        let mut pieces = Vec::new();
        let mut offset = 0;
        'cover: while offset < total {
            for &w in &widths {
                if offset + w > total {
                    continue;
                }
                let Some(columns) = column_slice(t, element, offset as usize, w as usize) else {
                    continue;
                };
                let digest: [u8; 32] = Sha256::digest(columns).into();
                if let Some(name) = parts
                    .get(&(t.data_type, lead.clone(), w))
                    .and_then(|by_digest| by_digest.get(&digest))
                    && *name != t.name
                {
                    pieces.push(name.clone());
                    offset += w;
                    continue 'cover;
                }
            }
            break;
        }
        // Packed attention projections: three different parts (Q, K, V).
        let distinct = matches!(pieces.as_slice(), [q, k, v] if q != k && k != v && q != v);
        if offset == total && distinct && !is_graph_output(graph, &t.name) {
            replaced.push((t.name.clone(), pieces));
        }
    }
    // A tensor used as a part of another is kept.
    let snapshot = replaced.clone();
    replaced.retain(|(gone, _)| !replaced_parts_contain(&snapshot, gone));
    for (gone, pieces) in &replaced {
        let out = namer.fresh(&format!("{gone}_concat"));
        let inputs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        graph.node.insert(
            0,
            graph::node(
                "Concat",
                namer.fresh(&format!("/dedupe/Concat_{gone}")),
                &inputs,
                &[&out],
                vec![crate::proto::attr_int("axis", -1)],
            ),
        );
        replace_uses(graph, gone, &out);
    }
    let gone: std::collections::HashSet<&String> = replaced.iter().map(|(g, _)| g).collect();
    graph.initializer.retain(|t| !gone.contains(&t.name));
    replaced.len()
}

fn replaced_parts_contain(replaced: &[(String, Vec<String>)], name: &str) -> bool {
    replaced
        .iter()
        .any(|(_, pieces)| pieces.iter().any(|p| p == name))
}

/// Ops whose output depends on their inputs and attributes only.
fn deterministic(node: &NodeProto) -> bool {
    !matches!(
        node.op_type.as_str(),
        "RandomNormal" | "RandomUniform" | "RandomNormalLike" | "RandomUniformLike" | "Multinomial"
    ) && graph::subgraphs(node).next().is_none()
}

/// Merges nodes with the same op, domain, attributes and inputs (in topological order, so chains
/// of duplicates collapse in one sweep).
fn merge_nodes(graph: &mut GraphProto) -> Result<usize> {
    use prost::Message;
    graph::sort_nodes(graph)?;
    let mut seen: HashMap<Vec<u8>, Vec<String>> = HashMap::new();
    let mut merged = 0;
    let mut i = 0;
    while let Some(node) = graph.node.get(i) {
        if !deterministic(node) || node.output.iter().any(|o| is_graph_output(graph, o)) {
            i += 1;
            continue;
        }
        let mut key_node = node.clone();
        key_node.name.clear();
        key_node.output.clear();
        key_node.doc_string.clear();
        let key = key_node.encode_to_vec();
        match seen.get(&key) {
            Some(outputs) => {
                let pairs: Vec<(String, String)> = node
                    .output
                    .iter()
                    .cloned()
                    .zip(outputs.iter().cloned())
                    .collect();
                graph.node.remove(i);
                for (from, to) in pairs {
                    replace_uses(graph, &from, &to);
                }
                merged += 1;
            }
            None => {
                seen.insert(key, node.output.clone());
                i += 1;
            }
        }
    }
    Ok(merged)
}

/// Materializes `Transpose` nodes over an initializer that nothing else reads (a transpose folded
/// into the weight is free at run time and lets later passes see the weight).
fn fold_transposes(graph: &mut GraphProto) -> usize {
    let uses = graph::use_counts(graph);
    let mut folded = 0;
    let mut i = 0;
    while let Some(node) = graph.node.get(i) {
        let transposes_2d = node.op_type == "Transpose"
            && node.domain.is_empty()
            && graph::attr_is(node, "perm") == Some(&[1, 0][..]);
        // (initializer index, its transpose, the Transpose's output)
        let folded_weight = match (node.input.as_slice(), node.output.as_slice()) {
            ([x], [y])
                if transposes_2d && uses.get(x) == Some(&1) && !is_graph_output(graph, y) =>
            {
                graph
                    .initializer
                    .iter()
                    .position(|t| t.name == *x)
                    .and_then(|t| {
                        let tensor = graph.initializer.get(t)?;
                        let element = graph::element_size(tensor.data_type)?;
                        Some((t, transposed_2d(tensor, element)?, y.clone()))
                    })
            }
            _ => None,
        };
        match folded_weight
            .and_then(|(t, transposed, y)| Some((graph.initializer.get_mut(t)?, transposed, y)))
        {
            Some((tensor, (bytes, dims), y)) => {
                tensor.raw_data = bytes;
                tensor.dims = dims;
                tensor.name = y;
                graph.node.remove(i);
                folded += 1;
            }
            None => i += 1,
        }
    }
    folded
}

/// Runs dedupe to a fixed point.
pub fn dedupe(graph: &mut GraphProto) -> Result<DedupeStats> {
    let mut stats = DedupeStats {
        bytes_before: crate::proto::graph_initializer_bytes(graph),
        ..Default::default()
    };
    let mut namer = Namer::new(graph);
    loop {
        let identical = merge_identical(graph);
        let transposed = merge_transposed(graph, &mut namer);
        let concatenated = merge_concatenated(graph, &mut namer);
        let nodes = merge_nodes(graph)?;
        stats.identical += identical;
        stats.transposed += transposed;
        stats.concatenated += concatenated;
        stats.nodes += nodes;
        if identical + transposed + concatenated + nodes == 0 {
            break;
        }
    }
    // A transposed pair whose kept side is read only through the transpose is stored the way it
    // is read.
    fold_transposes(graph);
    graph::remove_dead(graph);
    graph::sort_nodes(graph)?;
    stats.bytes_after = crate::proto::graph_initializer_bytes(graph);
    Ok(stats)
}
