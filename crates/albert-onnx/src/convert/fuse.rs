//! Fuse: the composite pieces of a transformer layer into single operators.
//!
//! * **LayerNorm**: the `ReduceMean → Sub → Mul/Pow → ReduceMean → Add(ε) → Sqrt → Div → Mul(γ) →
//!   Add(β)` chain (ours, dynamo's) → `LayerNormalization` (opset 17), both flavours.
//! * **GELU**: any arrangement of the erf or tanh formula over one input (recognized by evaluating
//!   the candidate subgraph at sample points against both formulas, so operand order, `Div` vs
//!   `Mul` and `Pow` vs products do not matter) → in the `ort` flavour ONNX Runtime's
//!   `com.microsoft` `Gelu` / `FastGelu`, the preceding bias `Add` folded in; in the `portable`
//!   flavour standard ONNX only: the `Gelu` op from opset 20 (`approximate = "tanh"` for the tanh
//!   formula), and below opset 20 the formula written out in standard ops in the one arrangement
//!   ONNX Runtime fuses into its GELU kernels when it loads the model ([`standard_gelu`]).
//! * **SkipLayerNorm** (`ort` flavour): `Add(x, residual) → LayerNormalization` →
//!   `com.microsoft.SkipLayerNormalization`.
//! * **Attention** (`ort` flavour): Q, K, V projections of one input, the heads split, scaled
//!   scores plus the mask bias, softmax, context, heads merged → `com.microsoft.Attention` with
//!   one packed `[H, 3H]` weight per distinct (Q, K, V) — stored once however many layers read it
//!   — and the attention mask as `mask_index`.
//!
//! The `portable` flavour writes standard ONNX only, which tract runs too (DESIGN.md: tract's
//! `Attention` is the opset-23 op and its `MultiHeadAttention` takes no mask, so attention stays
//! unfused there). The `ort` flavour's contrib ops need the `com.microsoft` opset import, which
//! [`super::convert`] adds whenever the graph uses that domain.

// Graphs from third parties: every access is checked (`.get()`), a malformed node is an error
// naming it (crate::convert::arity runs first) or a pattern that does not match, never a panic.
#![deny(clippy::indexing_slicing)]

use std::collections::HashMap;

use crate::error::Result;
use crate::graph::{self, Namer, is_graph_output};
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{GraphProto, NodeProto, TensorProto};
use crate::proto::{attr_float, attr_int, attr_string};

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

fn fuse_layer_norms(graph: &mut GraphProto, outer: &[TensorProto], namer: &mut Namer) -> usize {
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
fn fuse_gelus(
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

fn fuse_skip_layer_norms(
    graph: &mut GraphProto,
    outer: &[TensorProto],
    namer: &mut Namer,
) -> usize {
    let mut fused = 0;
    loop {
        let ix = Index::new(graph);
        let found = graph.node.iter().enumerate().find_map(|(i, n)| {
            if !is_op(n, "LayerNormalization")
                || graph::attr_i(n, "axis").unwrap_or(-1) != -1
                || n.output.len() != 1
            {
                return None;
            }
            let x = n.input.first()?;
            let &p = ix.producer.get(x)?;
            let add = graph.node.get(p)?;
            let ([a, b], [_, gamma, ..], [output]) = (
                add.input.as_slice(),
                n.input.as_slice(),
                n.output.as_slice(),
            ) else {
                return None;
            };
            let both_dynamic =
                is_op(add, "Add") && [a, b].iter().all(|v| init(graph, outer, v).is_none());
            (both_dynamic && ix.single_use(graph, x)).then(|| {
                let beta = n.input.get(2).cloned().unwrap_or_default();
                (i, p, [a, b, gamma, &beta, output].map(|v| v.clone()))
            })
        });
        let Some((ln, add, [a, b, gamma, beta, output])) = found else {
            break;
        };
        let Some(ln_node) = graph.node.get(ln) else {
            break;
        };
        let eps = ln_node
            .attribute
            .iter()
            .find(|x| x.name == "epsilon")
            .map_or(1e-5, |x| x.f);
        let node = graph::ms_node(
            "SkipLayerNormalization",
            namer.fresh("/fuse/SkipLayerNormalization"),
            &[&a, &b, &gamma, &beta],
            &[&output],
            vec![attr_float("epsilon", eps)],
        );
        splice(graph, &[ln, add], vec![node]);
        fused += 1;
    }
    fused
}

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
    let rows: usize = lead.iter().map(|&d| d as usize).product();
    let widths: Vec<usize> = parts
        .iter()
        .map(|p| *p.dims.last().unwrap_or(&0) as usize)
        .collect();
    let data: Vec<Vec<f32>> = parts
        .iter()
        .map(|p| graph::f32_data(p).ok())
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(rows * widths.iter().sum::<usize>());
    for r in 0..rows {
        for (d, &w) in data.iter().zip(&widths) {
            out.extend_from_slice(d.get(r * w..(r + 1) * w)?);
        }
    }
    let mut dims: Vec<usize> = lead.iter().map(|&d| d as usize).collect();
    dims.push(widths.iter().sum());
    Some(crate::proto::tensor_f32(name, &dims, &out))
}

fn fuse_attentions(
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
        stats.layer_norms += fuse_layer_norms(graph, outer, namer);
    }
    stats.gelus += fuse_gelus(graph, outer, namer, flavour, opset);
    if flavour == FuseFlavour::Ort {
        stats.skip_layer_norms += fuse_skip_layer_norms(graph, outer, namer);
        if let Some(mask) = state.mask.clone() {
            let before = state.packed.len();
            stats.attentions += fuse_attentions(
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
