//! GELU: any arrangement of the erf or tanh formula over one input, recognized by evaluating the
//! candidate subgraph at sample points against both formulas (so operand order, `Div` vs `Mul`
//! and `Pow` vs products do not matter). It becomes, in the `ort` flavour, ONNX Runtime's
//! `com.microsoft` `Gelu` / `FastGelu`, the preceding bias `Add` folded in; in the `portable`
//! flavour standard ONNX only: the `Gelu` op from opset 20 (`approximate = "tanh"` for the tanh
//! formula), and below opset 20 the formula written out in standard ops in the one arrangement
//! ONNX Runtime fuses into its GELU kernels when it loads the model ([`standard_gelu`]).

// Graphs from third parties: every access is checked (`.get()`); see `super`.
#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use crate::graph::{self, Namer, is_graph_output};
use crate::proto::attr_string;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};

use super::{FuseFlavour, Index, init, is_op, scalar, splice, split_const};

/// Evaluates an elementwise subgraph at `x` (values by name; constants are scalars).
fn evaluate(
    graph: &GraphProto,
    outer: &[TensorProto],
    nodes: &[usize],
    input: &str,
    output: &str,
    x: f64,
) -> Option<f64> {
    let mut values: HashMap<&str, f64> = HashMap::from([(input, x)]);
    for &i in nodes {
        let n = graph.node.get(i)?;
        let arg = |k: usize| -> Option<f64> {
            let name = n.input.get(k)?;
            values
                .get(name.as_str())
                .copied()
                .or_else(|| scalar(graph, outer, name))
        };
        let v = match n.op_type.as_str() {
            "Add" => arg(0)? + arg(1)?,
            "Sub" => arg(0)? - arg(1)?,
            "Mul" => arg(0)? * arg(1)?,
            "Div" => arg(0)? / arg(1)?,
            "Pow" => arg(0)?.powf(arg(1)?),
            "Sqrt" => arg(0)?.sqrt(),
            "Tanh" => arg(0)?.tanh(),
            "Erf" => libm::erf(arg(0)?),
            _ => return None,
        };
        values.insert(n.output.first()?.as_str(), v);
    }
    values.get(output).copied()
}

const ELEMENTWISE: [&str; 8] = ["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Tanh", "Erf"];

/// Which GELU a subgraph computes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GeluKind {
    Erf,
    Tanh,
}

fn gelu_erf(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

struct GeluMatch {
    x: String,
    kind: GeluKind,
    nodes: Vec<usize>,
    output: String,
}

/// Around an `Erf` or `Tanh` node: the input `x` is the one non-constant value that the backward
/// elementwise cone starts from; the output is the furthest single-consumer elementwise node
/// forward whose value is a GELU of `x`.
fn match_gelu(
    graph: &GraphProto,
    outer: &[TensorProto],
    ix: &Index,
    center: usize,
) -> Option<GeluMatch> {
    let elementwise =
        |n: &NodeProto| ELEMENTWISE.contains(&n.op_type.as_str()) && n.domain.is_empty();
    // Backward cone.
    let mut region: Vec<usize> = vec![center];
    let mut frontier: Vec<String> = Vec::new();
    let center_node = graph.node.get(center)?;
    let mut stack: Vec<String> = center_node.input.clone();
    while let Some(v) = stack.pop() {
        if init(graph, outer, &v).is_some() {
            continue;
        }
        match ix
            .producer
            .get(&v)
            .and_then(|&p| Some((p, graph.node.get(p)?)))
        {
            Some((p, producer))
                if elementwise(producer)
                    && region.len() < 16
                    && producer.input.iter().all(|i| {
                        init(graph, outer, i).is_none() || scalar(graph, outer, i).is_some()
                    }) =>
            {
                if !region.contains(&p) {
                    region.push(p);
                    stack.extend(producer.input.iter().cloned());
                }
            }
            _ => {
                if !frontier.contains(&v) {
                    frontier.push(v);
                }
            }
        }
    }
    if frontier.len() != 1 {
        return None;
    }
    let x = frontier.remove(0);
    // Forward: grow through consumers whose other inputs are x, constants or region values.
    let mut best: Option<GeluMatch> = None;
    let mut current = center_node.output.first()?.clone();
    for _ in 0..6 {
        let consumers: Vec<usize> = graph
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.input.contains(&current))
            .map(|(i, _)| i)
            .collect();
        let &[next] = consumers.as_slice() else {
            break;
        };
        let Some(node) = graph.node.get(next) else {
            break;
        };
        if !elementwise(node) {
            break;
        }
        // Side inputs computed from x alone (e.g. 0.5·x) join the region.
        for input in node.input.iter().filter(|i| **i != current && **i != x) {
            if init(graph, outer, input).is_some() {
                continue;
            }
            match ix
                .producer
                .get(input)
                .and_then(|&p| Some((p, graph.node.get(p)?)))
            {
                Some((p, producer))
                    if elementwise(producer)
                        && producer
                            .input
                            .iter()
                            .all(|i| *i == x || scalar(graph, outer, i).is_some()) =>
                {
                    if !region.contains(&p) {
                        region.push(p);
                    }
                }
                _ => return best,
            }
        }
        region.push(next);
        let Some(output) = node.output.first() else {
            break;
        };
        current = output.clone();
        let mut ordered = region.clone();
        ordered.sort_unstable();
        let samples = [-5.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.7, 1.5, 3.0, 6.0];
        for (kind, f) in [
            (GeluKind::Erf, gelu_erf as fn(f64) -> f64),
            (GeluKind::Tanh, gelu_tanh),
        ] {
            let matches = samples.iter().all(|&s| {
                evaluate(graph, outer, &ordered, &x, &current, s)
                    .is_some_and(|v| (v - f(s)).abs() <= 1e-5 * (1.0 + f(s).abs()))
            });
            if matches {
                // Every value inside the region must be read only inside it.
                let inside: Vec<&String> = ordered
                    .iter()
                    .filter_map(|&i| graph.node.get(i))
                    .flat_map(|n| &n.output)
                    .collect();
                let private = inside.iter().filter(|v| ***v != current).all(|v| {
                    let readers = graph
                        .node
                        .iter()
                        .enumerate()
                        .filter(|(i, n)| n.input.contains(v) && !ordered.contains(i))
                        .count();
                    readers == 0 && !is_graph_output(graph, v)
                });
                if private {
                    best = Some(GeluMatch {
                        x: x.clone(),
                        kind,
                        nodes: ordered.clone(),
                        output: current.clone(),
                    });
                }
            }
        }
    }
    best
}

/// The bias `Add` right before `x` (`x = Add(y, bias)` with a 1-D constant bias); the caller
/// checks that only the fused op reads `x`.
fn bias_before(
    graph: &GraphProto,
    outer: &[TensorProto],
    x: &str,
) -> Option<(usize, String, String)> {
    let p = graph
        .node
        .iter()
        .position(|n| n.output.first().is_some_and(|o| o == x))?;
    let node = graph.node.get(p)?;
    if !is_op(node, "Add") {
        return None;
    }
    let (input, bias) = split_const(graph, outer, node)?;
    (init(graph, outer, bias)?.dims.len() == 1).then(|| (p, input.to_string(), bias.to_string()))
}

/// A float32 scalar initializer of `graph` holding `value`, made once per graph.
fn constant(
    graph: &mut GraphProto,
    namer: &mut Namer,
    made: &mut HashMap<u32, String>,
    value: f32,
) -> String {
    made.entry(value.to_bits())
        .or_insert_with(|| {
            let name = namer.fresh(&format!("/fuse/Gelu/const_{value}"));
            graph
                .initializer
                .push(crate::proto::tensor_f32(&name, &[], &[value]));
            name
        })
        .clone()
}

/// The standard-ops GELU of the portable flavour below opset 20, in the arrangements ONNX
/// Runtime's own fusions recognize (onnxruntime/core/optimizer/fast_gelu_fusion.cc, its first
/// formula, which is HF's `FastGELUActivation`; gelu_fusion.cc for erf) and so run as one kernel
/// there: tanh `0.5·x · (1 + tanh(√(2/π)·x · (1 + 0.044715·x·x)))`, erf
/// `0.5·x · (1 + erf(x / √2))`. tract runs the tanh form as elementwise products, as it ran
/// `FastGelu` (tract-onnx expands that op to the same products).
fn standard_gelu(
    graph: &mut GraphProto,
    namer: &mut Namer,
    made: &mut HashMap<u32, String>,
    kind: GeluKind,
    x: &str,
    output: &str,
) -> Vec<NodeProto> {
    let one = constant(graph, namer, made, 1.0);
    let half = constant(graph, namer, made, 0.5);
    let mut nodes = Vec::new();
    let mut op = |namer: &mut Namer, op_type: &str, inputs: &[&str], out: Option<&str>| {
        let value = match out {
            Some(o) => o.to_string(),
            None => namer.fresh(&format!("/fuse/Gelu/{op_type}_output_0")),
        };
        nodes.push(graph::node(
            op_type,
            namer.fresh(&format!("/fuse/Gelu/{op_type}")),
            inputs,
            &[&value],
            vec![],
        ));
        value
    };
    let one_plus = match kind {
        GeluKind::Tanh => {
            let c = constant(graph, namer, made, 0.044715);
            let k = constant(graph, namer, made, (2.0 / std::f32::consts::PI).sqrt());
            let cx = op(namer, "Mul", &[x, &c], None);
            let cx2 = op(namer, "Mul", &[&cx, x], None);
            let poly = op(namer, "Add", &[&cx2, &one], None);
            let kx = op(namer, "Mul", &[x, &k], None);
            let inner = op(namer, "Mul", &[&kx, &poly], None);
            let t = op(namer, "Tanh", &[&inner], None);
            op(namer, "Add", &[&t, &one], None)
        }
        GeluKind::Erf => {
            let root2 = constant(graph, namer, made, std::f32::consts::SQRT_2);
            let scaled = op(namer, "Div", &[x, &root2], None);
            let e = op(namer, "Erf", &[&scaled], None);
            op(namer, "Add", &[&e, &one], None)
        }
    };
    let half_x = op(namer, "Mul", &[x, &half], None);
    op(namer, "Mul", &[&half_x, &one_plus], Some(output));
    nodes
}

/// Replaces each GELU subgraph with the flavour's form: `com.microsoft` `Gelu` / `FastGelu`
/// (`ort`, the bias `Add` before a tanh GELU folded in); the standard `Gelu` from opset 20
/// (`portable`); below opset 20, where ONNX has no GELU op, [`standard_gelu`] (`portable`).
pub(super) fn fuse_gelus(
    graph: &mut GraphProto,
    outer: &[TensorProto],
    namer: &mut Namer,
    flavour: FuseFlavour,
    opset: i64,
) -> usize {
    let mut fused = 0;
    let mut skip: Vec<String> = Vec::new();
    let mut constants: HashMap<u32, String> = HashMap::new();
    loop {
        let ix = Index::new(graph);
        let candidates: Vec<usize> = (0..graph.node.len())
            .filter(|&i| {
                graph.node.get(i).is_some_and(|n| {
                    (is_op(n, "Erf") || is_op(n, "Tanh"))
                        && n.output.first().is_some_and(|o| !skip.contains(o))
                })
            })
            .collect();
        let mut found = None;
        for i in candidates {
            match match_gelu(graph, outer, &ix, i) {
                Some(m) => {
                    found = Some(m);
                    break;
                }
                None => skip.extend(graph.node.get(i).and_then(|n| n.output.first()).cloned()),
            }
        }
        let Some(m) = found else { break };
        let mut nodes = m.nodes.clone();
        let replacement = match flavour {
            FuseFlavour::Ort => {
                let (op, mut inputs) = match m.kind {
                    GeluKind::Erf => ("Gelu", vec![m.x.clone()]),
                    GeluKind::Tanh => ("FastGelu", vec![m.x.clone()]),
                };
                // FastGelu takes the bias: y = gelu(x + bias) in one pass.
                let x_read_outside = graph
                    .node
                    .iter()
                    .enumerate()
                    .any(|(i, n)| !m.nodes.contains(&i) && n.input.contains(&m.x))
                    || is_graph_output(graph, &m.x);
                if m.kind == GeluKind::Tanh
                    && !x_read_outside
                    && let Some((add, input, bias)) = bias_before(graph, outer, &m.x)
                {
                    inputs = vec![input, bias];
                    nodes.push(add);
                }
                let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                vec![graph::ms_node(
                    op,
                    namer.fresh(&format!("/fuse/{op}")),
                    &refs,
                    &[&m.output],
                    vec![],
                )]
            }
            // ONNX `Gelu` (opset 20): `approximate = "tanh"` is the tanh formula.
            FuseFlavour::Portable if opset >= 20 => vec![graph::node(
                "Gelu",
                namer.fresh("/fuse/Gelu"),
                &[&m.x],
                &[&m.output],
                match m.kind {
                    GeluKind::Erf => vec![],
                    GeluKind::Tanh => vec![attr_string("approximate", "tanh")],
                },
            )],
            FuseFlavour::Portable => {
                let chain = standard_gelu(graph, namer, &mut constants, m.kind, &m.x, &m.output);
                // The written-out GELU is the canonical form: not matched again.
                skip.extend(
                    chain
                        .iter()
                        .filter(|n| is_op(n, "Erf") || is_op(n, "Tanh"))
                        .filter_map(|n| n.output.first().cloned()),
                );
                chain
            }
        };
        splice(graph, &nodes, replacement);
        fused += 1;
    }
    fused
}
