//! Rewriting a run of blocks as one `Scan`: the body is the first block, weights equal in every
//! block are read from the outer graph, the ones that differ are stacked and sliced per iteration.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::graph::{self, Namer};
use crate::proto::pb::attribute_proto::AttributeType;
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};

use super::detect::{Chain, Source};
use super::*;

/// The element type of a value, from the graph's declared types; float if undeclared (ALBERT's
/// carried hidden state).
pub(super) fn elem_type(graph: &GraphProto, name: &str) -> i32 {
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

pub(super) fn elem(data_type: i32) -> DataType {
    DataType::try_from(data_type).unwrap_or(DataType::Float)
}

pub(super) fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Graph as i32,
        g: Some(g),
        ..Default::default()
    }
}

/// One `Scan` replacing blocks `[first, first + count)` of the chain.
pub(super) struct Loop {
    pub(super) node: NodeProto,
    pub(super) new_initializers: Vec<TensorProto>,
    pub(super) shared: HashSet<String>,
    pub(super) stacked: usize,
}

pub(super) fn make_loop(
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
