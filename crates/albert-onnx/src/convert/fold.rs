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

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use prost::Message;

use crate::error::{OnnxError, Result};
use crate::graph::{self, Namer, numel};
use crate::proto::pb::attribute_proto::AttributeType;
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};

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

fn cannot(message: impl Into<String>) -> OnnxError {
    OnnxError::CannotFold(message.into())
}

// Positions below are ones this pass computed in the graph's own node list (`Chain::node`,
// signatures of equal arity), and `arity::check` ran first; still, a malformed graph from
// elsewhere must give an error naming the node, never a panic (convert/mod.rs denies indexing).

/// The node at `position` of `graph`.
fn node_at(graph: &GraphProto, position: usize) -> std::result::Result<&NodeProto, String> {
    graph
        .node
        .get(position)
        .ok_or_else(|| format!("internal: no node at position {position}"))
}

/// Input `q` of `node`.
fn input_of(node: &NodeProto, q: usize) -> std::result::Result<&String, String> {
    node.input
        .get(q)
        .ok_or_else(|| format!("node `{}` ({}) has no input {q}", node.name, node.op_type))
}

/// Output `o` of `node`.
fn output_of(node: &NodeProto, o: usize) -> std::result::Result<&String, String> {
    node.output
        .get(o)
        .ok_or_else(|| format!("node `{}` ({}) has no output {o}", node.name, node.op_type))
}

/// A float tensor with more than one element: a weight that may differ between blocks. Anything
/// else (integer shapes, axes, scalar constants) must be identical in every block.
fn is_weight(t: &TensorProto) -> bool {
    t.data_type == DataType::Float as i32 && numel(t) > 1
}

fn attributes_key(attrs: &[AttributeProto]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attrs {
        a.encode(&mut out).ok();
    }
    out
}

/// The local signature of every node (see the module comment).
fn signatures(graph: &GraphProto, inits: &HashMap<&str, &TensorProto>) -> Vec<u64> {
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
enum Source {
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
struct Chain {
    start: usize,
    len: usize,
    count: usize,
    /// `sources[j][q]`: where input `q` of the block's node `j` comes from (for blocks ≥ 1).
    sources: Vec<Vec<Source>>,
    /// Carried state: (node, output) positions in a block, in a fixed order.
    states: Vec<(usize, usize)>,
    /// Initial value of each state (what block 0 reads in its place).
    initial: Vec<String>,
}

impl Chain {
    fn node(&self, block: usize, j: usize) -> usize {
        self.start + block * self.len + j
    }
}

/// Checks that blocks `[start + k·len, start + (k+1)·len)`, `k < count`, are chained copies.
/// What every candidate check reads, computed once per graph: the (node, output) making each
/// value, and the values each node reads (inputs and what its subgraphs read from outside).
struct Dataflow<'g> {
    producer: HashMap<&'g str, (usize, usize)>,
    reads: Vec<Vec<String>>,
}

impl<'g> Dataflow<'g> {
    fn new(graph: &'g GraphProto) -> Self {
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

fn check_chain(
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
fn candidates(sig: &[u64]) -> Vec<(usize, usize, usize)> {
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
fn shared_blocks(graph: &GraphProto, inits: &HashMap<&str, &TensorProto>, chain: &Chain) -> usize {
    let runs = runs(graph, inits, chain);
    runs.iter().filter(|&&(_, c)| c >= 2).map(|&(_, c)| c).sum()
}

/// How many reads of the carried state each block makes: among equally good phases, the block
/// boundary is put where the state fans out most (ALBERT: the LayerNorm output that feeds Q, K, V
/// and the residual), not one node earlier or later.
fn fanout(chain: &Chain) -> usize {
    chain
        .sources
        .iter()
        .flatten()
        .filter(|s| matches!(s, Source::Carried(..)))
        .count()
}

/// (blocks in shared runs, nodes covered, fewer states, state fan-out): higher is better.
type Score = (usize, usize, std::cmp::Reverse<usize>, usize);

fn find_chain(
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
fn runs(
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

/// The element type of a value, from the graph's declared types; float if undeclared (ALBERT's
/// carried hidden state).
fn elem_type(graph: &GraphProto, name: &str) -> i32 {
    let declared = graph
        .input
        .iter()
        .chain(&graph.value_info)
        .chain(&graph.output)
        .find(|v| v.name == name)
        .and_then(|v| v.r#type.as_ref())
        .and_then(|t| match &t.value {
            Some(crate::proto::pb::type_proto::Value::TensorType(t)) => Some(t.elem_type),
            _ => None,
        });
    declared
        .or_else(|| {
            graph
                .initializer
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.data_type)
        })
        .unwrap_or(DataType::Float as i32)
}

fn elem(data_type: i32) -> DataType {
    DataType::try_from(data_type).unwrap_or(DataType::Float)
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Graph as i32,
        g: Some(g),
        ..Default::default()
    }
}

/// One `Scan` replacing blocks `[first, first + count)` of the chain.
struct Loop {
    node: NodeProto,
    new_initializers: Vec<TensorProto>,
    shared: HashSet<String>,
    stacked: usize,
}

fn make_loop(
    graph: &GraphProto,
    chain: &Chain,
    inits: &HashMap<&str, &TensorProto>,
    first: usize,
    count: usize,
    namer: &mut Namer,
    index: usize,
) -> Result<Loop> {
    let prefix = format!("/fold/loop{index}");
    // Initializer slots: (node, input) → names per block in the loop.
    let mut stacked_slots: Vec<((usize, usize), String)> = Vec::new();
    let mut stacked_names: HashMap<Vec<String>, String> = HashMap::new();
    let mut new_initializers = Vec::new();
    let mut shared: HashSet<String> = HashSet::new();
    let mut scan_inputs: Vec<(String, String)> = Vec::new(); // (outer tensor, body input)
    for (j, slots) in chain.sources.iter().enumerate() {
        for (q, source) in slots.iter().enumerate() {
            if *source != Source::Initializer {
                continue;
            }
            let names: Vec<String> = (first..first + count)
                .map(|k| input_of(node_at(graph, chain.node(k, j))?, q).cloned())
                .collect::<std::result::Result<_, String>>()
                .map_err(cannot)?;
            let Some(name0) = names.first().cloned() else {
                continue;
            };
            if names.iter().all(|n| *n == name0) {
                shared.insert(name0);
                continue;
            }
            let body_name = match stacked_names.get(&names) {
                Some(b) => b.clone(),
                None => {
                    let tensors: Vec<&TensorProto> = names
                        .iter()
                        .map(|n| {
                            inits.get(n.as_str()).copied().ok_or_else(|| {
                                cannot(format!("internal: `{n}` is not an initializer"))
                            })
                        })
                        .collect::<Result<_>>()?;
                    let Some(&tensor0) = tensors.first() else {
                        continue;
                    };
                    if tensors
                        .iter()
                        .any(|t| t.dims != tensor0.dims || t.data_type != tensor0.data_type)
                    {
                        return Err(cannot(format!(
                            "weights {names:?} differ in shape between blocks"
                        )));
                    }
                    let outer = namer.fresh(&format!("{name0}.stacked"));
                    let mut dims = vec![count as i64];
                    dims.extend(&tensor0.dims);
                    new_initializers.push(TensorProto {
                        name: outer.clone(),
                        dims,
                        data_type: tensor0.data_type,
                        raw_data: tensors.iter().flat_map(|t| t.raw_data.clone()).collect(),
                        ..Default::default()
                    });
                    let body = namer.fresh(&format!("{prefix}/{name0}"));
                    scan_inputs.push((outer, body.clone()));
                    stacked_names.insert(names, body.clone());
                    body
                }
            };
            stacked_slots.push(((j, q), body_name));
        }
    }
    // Without a stacked weight, a scan input of `count` zeros sets the iteration count. tract
    // drops scan inputs the body does not read and then rejects a Scan without any, so the body
    // adds the zero to the carried state (exact, and negligible next to the layer's products).
    let marker = scan_inputs.is_empty().then(|| {
        let outer = namer.fresh(&format!("{prefix}/iteration_zeros"));
        new_initializers.push(crate::proto::tensor_f32(
            &outer,
            &[count],
            &vec![0.0; count],
        ));
        let body = namer.fresh(&format!("{prefix}/body/iteration_zero"));
        scan_inputs.push((outer, body.clone()));
        body
    });

    // The body: block `first`'s nodes, internal values renamed, reads rewired.
    let template = first;
    let mut rename: HashMap<String, String> = HashMap::new();
    for j in 0..chain.len {
        for out in &node_at(graph, chain.node(template, j))
            .map_err(cannot)?
            .output
        {
            if !out.is_empty() {
                rename.insert(out.clone(), namer.fresh(&format!("{prefix}/body/{out}")));
            }
        }
    }
    let state_inputs: Vec<String> = (0..chain.states.len())
        .map(|s| namer.fresh(&format!("{prefix}/body/state_{s}")))
        .collect();
    let mut body_nodes = Vec::with_capacity(chain.len);
    // Values renamed into the body (every non-empty output of the template block is in `rename`).
    let renamed = |name: &str| {
        rename
            .get(name)
            .cloned()
            .ok_or_else(|| cannot(format!("internal: `{name}` was not renamed into the body")))
    };
    for (j, slots) in chain.sources.iter().enumerate() {
        let original = node_at(graph, chain.node(template, j)).map_err(cannot)?;
        let mut node = original.clone();
        node.name = namer.fresh(&format!("{prefix}/body/{}", original.name));
        for (q, input) in node.input.iter_mut().enumerate() {
            let source = slots.get(q).ok_or_else(|| {
                cannot(format!(
                    "node `{}` ({}) has more inputs than its block's template",
                    original.name, original.op_type
                ))
            })?;
            match source {
                Source::Internal(..) => *input = renamed(input)?,
                Source::Carried(jj, o) => {
                    *input = chain
                        .states
                        .iter()
                        .position(|st| *st == (*jj, *o))
                        .and_then(|s| state_inputs.get(s))
                        .ok_or_else(|| cannot("internal: unknown state"))?
                        .clone();
                }
                Source::Initializer => {
                    if let Some((_, body)) = stacked_slots.iter().find(|(slot, _)| *slot == (j, q))
                    {
                        *input = body.clone();
                    }
                }
                Source::Invariant(_) | Source::Empty => {}
            }
        }
        for out in node.output.iter_mut().filter(|o| !o.is_empty()) {
            *out = renamed(out)?;
        }
        body_nodes.push(node);
    }
    // The output `o` of block `k`'s node `j`.
    let block_output = |k: usize, j: usize, o: usize| {
        node_at(graph, chain.node(k, j))
            .and_then(|node| output_of(node, o))
            .map_err(cannot)
    };
    let body_outputs: Vec<String> = chain
        .states
        .iter()
        .map(|&(j, o)| renamed(block_output(template, j, o)?))
        .collect::<Result<_>>()?;
    let state_types: Vec<i32> = chain
        .initial
        .iter()
        .map(|name| elem_type(graph, name))
        .collect();
    let mut body_inputs: Vec<ValueInfoProto> = state_inputs
        .iter()
        .zip(&state_types)
        .map(|(n, &t)| graph::typed(n, elem(t)))
        .collect();
    if let (Some(zero), Some(state0), Some(input0)) =
        (&marker, state_inputs.first(), body_inputs.first_mut())
    {
        let raw = namer.fresh(&format!("{prefix}/body/state_0_in"));
        body_nodes.insert(
            0,
            graph::node(
                "Add",
                namer.fresh(&format!("{prefix}/body/Add_iteration_zero")),
                &[&raw, zero],
                &[state0],
                vec![],
            ),
        );
        input0.name = raw;
    }
    for (outer, body) in &scan_inputs {
        let t = new_initializers
            .iter()
            .find(|t| t.name == *outer)
            .map(|t| t.data_type)
            .unwrap_or(DataType::Float as i32);
        body_inputs.push(graph::typed(body, elem(t)));
    }
    let body = GraphProto {
        name: format!("{prefix}/body"),
        node: body_nodes,
        input: body_inputs,
        output: body_outputs
            .iter()
            .zip(&state_types)
            .map(|(n, &t)| graph::typed(n, elem(t)))
            .collect(),
        ..Default::default()
    };

    // Outer wiring: initial states in; the last block's state values out, under their own names,
    // so whatever read them after the run reads the loop's outputs unchanged.
    let initial: Vec<String> = chain
        .states
        .iter()
        .enumerate()
        .map(|(s, &(j, o))| {
            if first == 0 {
                chain
                    .initial
                    .get(s)
                    .cloned()
                    .ok_or_else(|| cannot("internal: a state without its initial value"))
            } else {
                block_output(first - 1, j, o).cloned()
            }
        })
        .collect::<Result<_>>()?;
    let outputs: Vec<String> = chain
        .states
        .iter()
        .map(|&(j, o)| block_output(first + count - 1, j, o).cloned())
        .collect::<Result<_>>()?;
    let mut inputs: Vec<&str> = initial.iter().map(String::as_str).collect();
    inputs.extend(scan_inputs.iter().map(|(outer, _)| outer.as_str()));
    let outputs_ref: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let num_scan_inputs = scan_inputs.len() as i64;
    let node = graph::node(
        "Scan",
        namer.fresh(&format!("{prefix}/Scan")),
        &inputs,
        &outputs_ref,
        vec![
            graph_attr("body", body),
            crate::proto::attr_int("num_scan_inputs", num_scan_inputs),
        ],
    );
    Ok(Loop {
        node,
        new_initializers,
        shared,
        stacked: stacked_names.len(),
    })
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

/// Inlines every `Scan` of the main graph whose iteration count is known from an initializer
/// (the loops [`fold`] makes, and others of that form). Returns the loops inlined.
pub fn unfold(graph: &mut GraphProto) -> Result<usize> {
    let mut namer = Namer::new(graph);
    let mut inlined = 0;
    let mut i = 0;
    while let Some(node) = graph.node.get(i) {
        if node.op_type != "Scan" || !node.domain.is_empty() {
            i += 1;
            continue;
        }
        let scan = graph.node.remove(i);
        let (nodes, initializers) = inline_scan(graph, &scan, &mut namer, inlined)?;
        let added = nodes.len();
        for (k, node) in nodes.into_iter().enumerate() {
            graph.node.insert(i + k, node);
        }
        graph.initializer.extend(initializers);
        i += added;
        inlined += 1;
    }
    if inlined > 0 {
        graph::remove_dead(graph);
        graph::sort_nodes(graph)?;
    }
    Ok(inlined)
}

fn inline_scan(
    graph: &GraphProto,
    scan: &NodeProto,
    namer: &mut Namer,
    index: usize,
) -> Result<(Vec<NodeProto>, Vec<TensorProto>)> {
    let body = graph::subgraphs(scan)
        .next()
        .ok_or_else(|| cannot(format!("Scan `{}` has no body", scan.name)))?;
    let num_scan = graph::attr_i(scan, "num_scan_inputs").unwrap_or(0) as usize;
    let states = scan.input.len().saturating_sub(num_scan);
    let plain_axes = [
        "scan_input_axes",
        "scan_input_directions",
        "scan_output_axes",
    ]
    .iter()
    .all(|a| graph::attr_is(scan, a).is_none_or(|v| v.iter().all(|&x| x == 0)));
    if num_scan == 0 || body.output.len() != states || scan.output.len() != states || !plain_axes {
        return Err(cannot(format!(
            "Scan `{}` is not of the folded-layer form (states only, scan inputs on axis 0)",
            scan.name
        )));
    }
    let (state_inputs, scan_inputs) = scan.input.split_at(states.min(scan.input.len()));
    let (body_states, body_scanned) = body
        .input
        .split_at_checked(states)
        .filter(|(_, scanned)| scanned.len() == scan_inputs.len())
        .ok_or_else(|| {
            cannot(format!(
                "Scan `{}`: its body takes {} inputs, the loop gives {}",
                scan.name,
                body.input.len(),
                scan.input.len()
            ))
        })?;
    let scanned: Vec<&TensorProto> = scan_inputs
        .iter()
        .map(|name| {
            graph
                .initializer
                .iter()
                .find(|t| t.name == *name)
                .ok_or_else(|| cannot(format!("Scan input `{name}` is not an initializer")))
        })
        .collect::<Result<_>>()?;
    let iterations = scanned
        .first()
        .and_then(|t| t.dims.first())
        .copied()
        .unwrap_or(0) as usize;
    let mut nodes = Vec::new();
    let mut initializers = Vec::new();
    let mut current: Vec<String> = state_inputs.to_vec();
    for t in 0..iterations {
        let mut rename: HashMap<String, String> = HashMap::new();
        for (input, value) in body_states.iter().zip(&current) {
            rename.insert(input.name.clone(), value.clone());
        }
        for (input, tensor) in body_scanned.iter().zip(&scanned) {
            let slice_len = tensor.raw_data.len() / iterations.max(1);
            let name = namer.fresh(&format!("{}/{t}", tensor.name.trim_end_matches(".stacked")));
            let raw_data = tensor
                .raw_data
                .get(t * slice_len..(t + 1) * slice_len)
                .ok_or_else(|| {
                    cannot(format!(
                        "Scan input `{}` has no raw data for iteration {t}",
                        tensor.name
                    ))
                })?
                .to_vec();
            initializers.push(TensorProto {
                name: name.clone(),
                dims: tensor.dims.iter().skip(1).copied().collect(),
                data_type: tensor.data_type,
                raw_data,
                ..Default::default()
            });
            rename.insert(input.name.clone(), name);
        }
        for init in &body.initializer {
            let name = namer.fresh(&format!("/unfold{index}/{t}/{}", init.name));
            initializers.push(TensorProto {
                name: name.clone(),
                ..init.clone()
            });
            rename.insert(init.name.clone(), name);
        }
        let last = t + 1 == iterations;
        for (output, loop_output) in body.output.iter().zip(&scan.output) {
            let produced = body.node.iter().any(|n| n.output.contains(&output.name));
            if last && produced {
                rename.insert(output.name.clone(), loop_output.clone());
            }
        }
        for node in &body.node {
            let mut node = node.clone();
            node.name = namer.fresh(&format!("/unfold{index}/{t}{}", node.name));
            for input in node.input.iter_mut().filter(|n| !n.is_empty()) {
                if let Some(r) = rename.get(input.as_str()) {
                    *input = r.clone();
                }
            }
            for output in node.output.iter_mut().filter(|n| !n.is_empty()) {
                let r = rename
                    .entry(output.clone())
                    .or_insert_with(|| namer.fresh(&format!("/unfold{index}/{t}/{output}")))
                    .clone();
                *output = r;
            }
            nodes.push(node);
        }
        current = body
            .output
            .iter()
            .map(|o| {
                rename
                    .get(&o.name)
                    .cloned()
                    .unwrap_or_else(|| o.name.clone())
            })
            .collect();
    }
    // States the body passes through unchanged (or all of them, with no iteration): an Identity
    // gives the loop's output its name.
    for (value, loop_output) in current.iter().zip(&scan.output) {
        if value != loop_output {
            nodes.push(graph::node(
                "Identity",
                namer.fresh(&format!("/unfold{index}/Identity")),
                &[value],
                &[loop_output],
                vec![],
            ));
        }
    }
    Ok((nodes, initializers))
}
