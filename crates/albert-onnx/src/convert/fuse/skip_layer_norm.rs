//! SkipLayerNorm (`ort` flavour): `Add(x, residual) → LayerNormalization`, both operands of the
//! `Add` computed and the sum read by the LayerNorm only → `com.microsoft.SkipLayerNormalization`
//! (its epsilon carried over). Runs after [`super::layer_norm`], so the `LayerNormalization`
//! nodes that pass writes are candidates too.

// Graphs from third parties: every access is checked (`.get()`); see `super`.
#![deny(clippy::indexing_slicing)]

use crate::graph::{self, Namer};
use crate::proto::attr_float;
use crate::proto::pb::{GraphProto, TensorProto};

use super::{Index, init, is_op, splice};

pub(super) fn fuse_skip_layer_norms(
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
