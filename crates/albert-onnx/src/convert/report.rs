//! What a conversion did to size and structure: file and initializer bytes, stored float
//! parameters and node counts, of the source and of the converted model. The drift of its
//! outputs needs the engines and is measured by `albert-verify` (`albert_verify::drift`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::graph;
use crate::proto::external_data_name;
use crate::proto::pb::{GraphProto, ModelProto};

/// The bytes of a model file and of the external data file written beside it (`<model>.data`),
/// if any.
pub fn model_file_bytes(model: &Path) -> u64 {
    let data = model.with_file_name(external_data_name(model));
    [model, data.as_path()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Size and structure of one model (the conversion report's `source` and `converted`).
#[derive(Debug, Clone, Serialize)]
pub struct ModelStats {
    pub file_bytes: u64,
    pub initializer_bytes: usize,
    /// Float parameters stored (elements of float initializers of more than one element).
    pub stored_float_elements: usize,
    /// Nodes in the main graph.
    pub nodes: usize,
    /// Nodes including those inside loop bodies.
    pub nodes_with_subgraphs: usize,
    pub op_counts: BTreeMap<String, usize>,
}

fn count_nodes(graph: &GraphProto, ops: &mut BTreeMap<String, usize>) -> usize {
    let mut n = 0;
    for node in &graph.node {
        n += 1;
        *ops.entry(node.op_type.clone()).or_default() += 1;
        for sub in graph::subgraphs(node) {
            n += count_nodes(sub, ops);
        }
    }
    n
}

impl ModelStats {
    pub fn of(model: &ModelProto, file_bytes: u64) -> ModelStats {
        let empty = GraphProto::default();
        let graph = model.graph.as_ref().unwrap_or(&empty);
        let mut op_counts = BTreeMap::new();
        let nodes_with_subgraphs = count_nodes(graph, &mut op_counts);
        ModelStats {
            file_bytes,
            initializer_bytes: crate::proto::graph_initializer_bytes(graph),
            stored_float_elements: graph
                .initializer
                .iter()
                .filter(|t| {
                    t.data_type == crate::proto::pb::tensor_proto::DataType::Float as i32
                        && graph::numel(t) > 1
                })
                .map(graph::numel)
                .sum(),
            nodes: graph.node.len(),
            nodes_with_subgraphs,
            op_counts,
        }
    }
}
