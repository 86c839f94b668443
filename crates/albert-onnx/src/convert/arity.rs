//! Before any pass: every node has the inputs and outputs its operator needs, in the main graph
//! and in loop bodies. The passes read graphs they did not make (third-party exports), and an
//! error naming the malformed node here is clearer than a pattern that silently does not match
//! (or, before this check, an index out of bounds).
//!
//! The minimum counts are the ONNX operator specification's (onnx/docs/Operators.md) and, for
//! the `com.microsoft` ops the passes read or write, ONNX Runtime's ContribOperators.md.

use crate::error::{OnnxError, Result};
use crate::graph::{self, MS_DOMAIN};
use crate::proto::pb::{GraphProto, NodeProto};

/// The fewest inputs an operator takes (1 for operators not listed: every operator but the
/// generators reads something).
fn min_inputs(node: &NodeProto) -> usize {
    let standard = node.domain.is_empty() || node.domain == "ai.onnx";
    match (standard, node.domain.as_str(), node.op_type.as_str()) {
        (true, _, "Constant" | "RandomNormal" | "RandomUniform") => 0,
        (
            true,
            _,
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "MatMul" | "Gemm" | "Gather" | "GatherND"
            | "Reshape" | "Expand" | "Equal" | "And" | "Or" | "Greater" | "GreaterOrEqual" | "Less"
            | "LessOrEqual" | "LayerNormalization" | "MatMulInteger" | "DequantizeLinear"
            | "QuantizeLinear",
        ) => 2,
        (true, _, "Where" | "Range") => 3,
        (false, MS_DOMAIN, "Attention" | "BiasGelu" | "FusedMatMul") => 2,
        (false, MS_DOMAIN, "SkipLayerNormalization" | "DynamicQuantizeMatMul") => 3,
        (false, MS_DOMAIN, "MatMulIntegerToFloat") => 4,
        _ => 1,
    }
}

/// Fails, naming the first node (depth first through loop bodies) with fewer inputs or outputs
/// than its operator needs. Every operator has at least one output.
pub fn check(graph: &GraphProto) -> Result<()> {
    for node in &graph.node {
        let needs = min_inputs(node);
        if node.input.len() < needs {
            return Err(OnnxError::Invalid(format!(
                "{} has {} inputs, its operator needs at least {needs}",
                graph::describe(node),
                node.input.len()
            )));
        }
        if node.output.is_empty() {
            return Err(OnnxError::Invalid(format!(
                "{} has no outputs",
                graph::describe(node)
            )));
        }
        for body in graph::subgraphs(node) {
            check(body)?;
        }
    }
    Ok(())
}
