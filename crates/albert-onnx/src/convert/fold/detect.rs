//! Finding the repetition: local signatures of nodes, candidate runs of equal signature
//! sequences, and the check that the blocks are truly isomorphic and chained (see `mod.rs`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::graph;
use crate::proto::pb::{GraphProto, TensorProto};

use super::*;

/// The local signature of every node (see the module comment).
pub(super) fn signatures(graph: &GraphProto, inits: &HashMap<&str, &TensorProto>) -> Vec<u64> {
    graph
        .node
        .iter()
        .map(|node| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            node.op_type.hash(&mut h);
            node.domain.hash(&mut h);
            attributes_key(&node.attribute).hash(&mut h);
            node.output.len().hash(&mut h);
            for input in &node.input {
                match inits.get(input.as_str()) {
                    _ if input.is_empty() => 0u8.hash(&mut h),
                    Some(t) if is_weight(t) => {
                        1u8.hash(&mut h);
                        t.dims.hash(&mut h);
                    }
                    Some(t) => {
                        2u8.hash(&mut h);
                        t.data_type.hash(&mut h);
                        t.dims.hash(&mut h);
                        t.raw_data.hash(&mut h);
                    }
                    None => 3u8.hash(&mut h),
                }
            }
            h.finish()
        })
        .collect()
}

/// Where an input of a block's node comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Source {
    /// The output `1` of the node at position `0` of the same block.
    Internal(usize, usize),
    /// The output of the node at this position of the previous block (carried state).
    Carried(usize, usize),
    /// A value defined before the run (or a graph input), the same for every block.
    Invariant(String),
    /// An initializer (a weight or constant); names may differ between blocks.
    Initializer,
    Empty,
}

/// A run of `count` blocks of `len` nodes starting at node `start`, checked to be chained.
pub(super) struct Chain {
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) count: usize,
    /// `sources[j][q]`: where input `q` of the block's node `j` comes from (for blocks ≥ 1).
    pub(super) sources: Vec<Vec<Source>>,
    /// Carried state: (node, output) positions in a block, in a fixed order.
    pub(super) states: Vec<(usize, usize)>,
    /// Initial value of each state (what block 0 reads in its place).
    pub(super) initial: Vec<String>,
}

impl Chain {
    pub(super) fn node(&self, block: usize, j: usize) -> usize {
        self.start + block * self.len + j
    }
}

/// Checks that blocks `[start + k·len, start + (k+1)·len)`, `k < count`, are chained copies.
/// What every candidate check reads, computed once per graph: the (node, output) making each
/// value, and the values each node reads (inputs and what its subgraphs read from outside).
pub(super) struct Dataflow<'g> {
    pub(super) producer: HashMap<&'g str, (usize, usize)>,
    pub(super) reads: Vec<Vec<String>>,
}

impl<'g> Dataflow<'g> {
    pub(super) fn new(graph: &'g GraphProto) -> Self {
        let mut producer = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for (o, out) in node.output.iter().enumerate() {
                producer.insert(out.as_str(), (i, o));
            }
        }
        Dataflow {
            producer,
            reads: graph.node.iter().map(graph::node_reads).collect(),
        }
    }
}

pub(super) fn check_chain(
    graph: &GraphProto,
    inits: &HashMap<&str, &TensorProto>,
    flow: &Dataflow,
    start: usize,
    len: usize,
    count: usize,
) -> std::result::Result<Chain, String> {
    let end = start + len * count;
    let producer = &flow.producer;
    let block_of =
        |i: usize| (i >= start && i < end).then(|| ((i - start) / len, (i - start) % len));
    let mut sources: Vec<Vec<Source>> = Vec::with_capacity(len);
    let mut states: Vec<(usize, usize)> = Vec::new();
    let mut initial: Vec<String> = Vec::new();
    for j in 0..len {
        let template = node_at(graph, start + j)?;
        if graph::subgraphs(template).next().is_some() {
            return Err(format!("node `{}` holds a subgraph", template.name));
        }
        let mut slot_sources = Vec::with_capacity(template.input.len());
        for q in 0..template.input.len() {
            let mut per_block = Vec::with_capacity(count);
            for k in 0..count {
                let node = node_at(graph, start + k * len + j)?;
                let name = input_of(node, q)?.as_str();
                let source = if name.is_empty() {
                    Source::Empty
                } else if inits.contains_key(name) {
                    Source::Initializer
                } else {
                    match producer.get(name).map(|&(i, o)| (block_of(i), o)) {
                        Some((Some((b, jj)), o)) if b == k => Source::Internal(jj, o),
                        Some((Some((b, jj)), o)) if b + 1 == k => Source::Carried(jj, o),
                        Some((Some(_), _)) => {
                            return Err(format!(
                                "node `{}` reads `{name}` from a block further back",
                                node.name
                            ));
                        }
                        _ => Source::Invariant(name.to_string()),
                    }
                };
                per_block.push(source);
            }
            let (Some(block0), Some(block1)) = (per_block.first(), per_block.get(1)) else {
                return Err(format!("a chain of {count} blocks is too short"));
            };
            let differs = per_block.iter().skip(2).any(|s| s != block1);
            if differs {
                return Err(format!(
                    "input {q} of node `{}` is wired differently in later blocks",
                    template.name
                ));
            }
            let slot = match (block0, block1) {
                (Source::Invariant(first), Source::Carried(jj, o)) => {
                    let state = (*jj, *o);
                    match states
                        .iter()
                        .position(|s| *s == state)
                        .and_then(|p| initial.get(p))
                    {
                        Some(start) if start != first => {
                            return Err(format!(
                                "state {state:?} starts from both `{start}` and `{first}`"
                            ));
                        }
                        Some(_) => {}
                        None => {
                            states.push(state);
                            initial.push(first.clone());
                        }
                    }
                    block1.clone()
                }
                (a, b) if a == b => a.clone(),
                (a, b) => {
                    return Err(format!(
                        "input {q} of node `{}` differs between the first blocks ({a:?} vs {b:?})",
                        template.name
                    ));
                }
            };
            slot_sources.push(slot);
        }
        sources.push(slot_sources);
    }
    if states.is_empty() {
        return Err("the blocks do not feed each other".into());
    }
    // Readers of each block's values: only the same block, the next block at a carried slot, or
    // (for the last block's states) anything after the run.
    for (i, names) in flow.reads.iter().enumerate() {
        for name in names {
            let Some(&(p, o)) = producer.get(name.as_str()) else {
                continue;
            };
            let Some((pb, pj)) = block_of(p) else {
                continue;
            };
            let ok = match block_of(i) {
                Some((b, _)) if b == pb => true,
                Some((b, _)) if b == pb + 1 => states.contains(&(pj, o)),
                Some(_) => false,
                None => i >= end && pb + 1 == count && states.contains(&(pj, o)),
            };
            if !ok {
                return Err(format!(
                    "`{name}` (block {pb}) is read by node `{}`, outside the chain",
                    graph.node.get(i).map_or("", |n| n.name.as_str())
                ));
            }
        }
    }
    for output in &graph.output {
        if let Some(&(p, o)) = producer.get(output.name.as_str())
            && let Some((pb, pj)) = block_of(p)
            && !(pb + 1 == count && states.contains(&(pj, o)))
        {
            return Err(format!(
                "graph output `{}` is made inside block {pb}",
                output.name
            ));
        }
    }
    let has_weight = graph
        .node
        .iter()
        .skip(start)
        .take(len)
        .flat_map(|node| &node.input)
        .any(|n| inits.get(n.as_str()).is_some_and(|t| is_weight(t)));
    if !has_weight {
        return Err("the repeated blocks read no weights".into());
    }
    Ok(Chain {
        start,
        len,
        count,
        sources,
        states,
        initial,
    })
}

/// Candidate runs `(start, len, count)`, best (most nodes covered, then shortest block) first.
pub(super) fn candidates(sig: &[u64]) -> Vec<(usize, usize, usize)> {
    let n = sig.len();
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for len in 1..=n / 2 {
        let mut i = 0;
        while i + len < n {
            if sig.get(i) != sig.get(i + len) {
                i += 1;
                continue;
            }
            let a = i;
            while i + len < n && sig.get(i) == sig.get(i + len) {
                i += 1;
            }
            let matched = i - a; // sig[a..a+matched] == sig[a+len..a+len+matched]
            let count = matched / len + 1;
            if count >= 2 {
                for shift in 0..=(matched - (count - 1) * len).min(len) {
                    out.push((a + shift, len, count));
                }
                if count > 2 {
                    for shift in 0..len.min(matched + 1) {
                        out.push((a + shift, len, count - 1));
                    }
                }
            }
        }
    }
    out.sort_by_key(|&(start, len, count)| (std::cmp::Reverse(len * count), len, start));
    out.dedup();
    out
}

/// Blocks in runs of two or more with the same weights (what shared loops can fold).
pub(super) fn shared_blocks(
    graph: &GraphProto,
    inits: &HashMap<&str, &TensorProto>,
    chain: &Chain,
) -> usize {
    let runs = runs(graph, inits, chain);
    runs.iter().filter(|&&(_, c)| c >= 2).map(|&(_, c)| c).sum()
}

/// How many reads of the carried state each block makes: among equally good phases, the block
/// boundary is put where the state fans out most (ALBERT: the LayerNorm output that feeds Q, K, V
/// and the residual), not one node earlier or later.
pub(super) fn fanout(chain: &Chain) -> usize {
    chain
        .sources
        .iter()
        .flatten()
        .filter(|s| matches!(s, Source::Carried(..)))
        .count()
}

/// (blocks in shared runs, nodes covered, fewer states, state fan-out): higher is better.
type Score = (usize, usize, std::cmp::Reverse<usize>, usize);

pub(super) fn find_chain(
    graph: &GraphProto,
    inits: &HashMap<&str, &TensorProto>,
) -> std::result::Result<Chain, String> {
    let sig = signatures(graph, inits);
    let flow = Dataflow::new(graph);
    let mut first_error: Option<String> = None;
    let mut best: Option<(Score, Chain)> = None;
    let mut best_cover = None;
    for (tried, (start, len, count)) in candidates(&sig).into_iter().enumerate() {
        if tried > 4000 || len * count < 8 {
            break;
        }
        if let Some((cover, best_len)) = best_cover
            && (len * count < cover || len != best_len)
        {
            break;
        }
        match check_chain(graph, inits, &flow, start, len, count) {
            Ok(chain) => {
                best_cover = Some((len * count, len));
                let score = (
                    shared_blocks(graph, inits, &chain),
                    len * count,
                    std::cmp::Reverse(chain.states.len()),
                    fanout(&chain),
                );
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, chain));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    best.map(|(_, chain)| chain)
        .ok_or_else(|| first_error.unwrap_or_else(|| "no repeated layers were found".to_string()))
}

/// Runs `(first block, count)` of consecutive blocks bound to the same initializers.
pub(super) fn runs(
    graph: &GraphProto,
    inits: &HashMap<&str, &TensorProto>,
    chain: &Chain,
) -> Vec<(usize, usize)> {
    let binding = |k: usize| -> Vec<&str> {
        (0..chain.len)
            .filter_map(|j| graph.node.get(chain.node(k, j)))
            .flat_map(|node| {
                node.input
                    .iter()
                    .filter(|n| inits.contains_key(n.as_str()))
                    .map(String::as_str)
            })
            .collect()
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for k in 0..chain.count {
        match runs.last_mut() {
            Some((first, count)) if binding(*first) == binding(k) => *count += 1,
            _ => runs.push((k, 1)),
        }
    }
    runs
}
