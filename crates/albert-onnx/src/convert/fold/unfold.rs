//! Unfolding: every `Scan` with a known iteration count inlined again, one copy of its body per
//! iteration.

use std::collections::HashMap;

use crate::error::Result;
use crate::graph::{self, Namer};
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};

use super::*;

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

pub(super) fn inline_scan(
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
