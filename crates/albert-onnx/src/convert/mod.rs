//! `albert-convert`'s passes: composable transformations of any ALBERT ONNX model (ours, or a
//! third party's: torch legacy and dynamo exports, ONNX Runtime-optimized graphs).
//!
//! * [`arity`]: first, every node has the inputs and outputs its operator needs;
//! * [`cleanup`]: `Constant` → initializers, `Identity` bypassed, dead nodes removed (lossless);
//! * [`dedupe`]: one copy of each weight, identical nodes merged (lossless);
//! * [`fuse`]: LayerNorm, GELU, SkipLayerNorm and attention as single operators (`portable`:
//!   standard ONNX only, the GELU written out in standard ops below opset 20);
//! * [`fold`]: the repeated shared layer as a `Scan` loop, and back ([`fold::unfold`]);
//! * [`quantize`]: int8 weights per output channel, dynamic int8 activations;
//! * [`precision`]: the graph in float16 for GPU execution, LayerNorm and softmax in float32;
//! * [`report`]: size and node counts (`albert-verify` measures the drift against the source).

// The passes read graphs they did not make (third-party exports): every access to a node's
// inputs, outputs or a tensor's data is checked and fails naming the node, never panics.
#![deny(clippy::indexing_slicing)]

pub mod arity;
pub mod cleanup;
pub mod dedupe;
pub mod fold;
pub mod fuse;
pub mod precision;
pub mod quantize;
pub mod report;

use crate::error::{OnnxError, Result};
use crate::graph::{self, MS_DOMAIN};
use crate::proto::pb::{GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};

pub use fold::FoldStats;
pub use fuse::FuseFlavour;
pub use quantize::{
    INT8_WEIGHTS_KEY, Int8Weights, QuantFormat, QuantizeOptions, QuantizeStats, int8_weights_of,
};

/// What to do with the layer loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoopMode {
    /// Leave the graph as it is.
    #[default]
    Keep,
    /// Fold the repeated layers into `Scan` loops.
    Fold,
    /// Inline `Scan` loops (for engines where a loop is slow).
    Unfold,
}

/// The passes to run, in the order they run.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub loops: LoopMode,
    /// Fuse composite operators (before folding, so every layer is fused alike).
    pub fuse: Option<FuseFlavour>,
    /// When the layers cannot be folded, go on with the graph unfolded instead of failing.
    pub best_effort: bool,
    pub quantize: Option<QuantizeOptions>,
    /// Run the graph in float16 (for GPUs). Not with `quantize`.
    pub float16: bool,
}

/// One line of the conversion log (and of the conversion report's `passes`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PassLog {
    pub pass: &'static str,
    pub summary: String,
}

/// The lowest default-domain opset the converted graph needs (`DynamicQuantizeLinear`: 11).
const MIN_OPSET: i64 = 11;

/// Whether `graph` or one of its loop bodies has a node of `domain`.
fn uses_domain(graph: &GraphProto, domain: &str) -> bool {
    graph
        .node
        .iter()
        .any(|n| n.domain == domain || graph::subgraphs(n).any(|g| uses_domain(g, domain)))
}

/// Raises the default-domain opset to what the passes need, and declares `com.microsoft` when a
/// node uses it (the ONNX checker rejects a contrib op without its domain's import; loop bodies
/// have no imports of their own and use the model's).
fn ensure_opsets(model: &mut ModelProto) {
    let microsoft = model
        .graph
        .as_ref()
        .is_some_and(|g| uses_domain(g, MS_DOMAIN));
    for import in model
        .opset_import
        .iter_mut()
        .filter(|o| o.domain.is_empty() || o.domain == "ai.onnx")
    {
        import.version = import.version.max(MIN_OPSET);
    }
    if microsoft && !model.opset_import.iter().any(|o| o.domain == MS_DOMAIN) {
        model.opset_import.push(OperatorSetIdProto {
            domain: MS_DOMAIN.to_string(),
            version: 1,
        });
    }
}

/// Runs the clean-up, dedupe, then the chosen passes, on `model` in place.
pub fn convert(model: &mut ModelProto, options: &ConvertOptions) -> Result<Vec<PassLog>> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| OnnxError::Invalid("the model has no graph".into()))?;
    arity::check(graph)?;
    if options.float16 && options.quantize.is_some() {
        return Err(OnnxError::Invalid(
            "--precision fp16 and --quantize int8 do not combine: choose one".into(),
        ));
    }
    let mut log = Vec::new();
    let nodes = graph.node.len();
    let c = cleanup::cleanup(graph)?;
    log.push(PassLog {
        pass: "cleanup",
        summary: format!(
            "{} Constant nodes → initializers, {} Identity nodes bypassed, {nodes} → {} nodes",
            c.constants_to_initializers,
            c.identities_removed,
            graph.node.len()
        ),
    });
    let d = dedupe::dedupe(graph)?;
    log.push(PassLog {
        pass: "dedupe",
        summary: format!(
            "{} identical, {} transposed and {} concatenated weight copies merged, {} duplicate \
             nodes merged; initializers {} → {} bytes",
            d.identical, d.transposed, d.concatenated, d.nodes, d.bytes_before, d.bytes_after
        ),
    });
    // float16 wants each LayerNorm as one operator, which keeps its statistics in float32; int8
    // runs faster with LayerNorm and GELU fused first (ALBERT-base, ONNX Runtime CPU, 2 threads:
    // 23.5 vs 31.0 ms at batch 1). Portable fusion is standard ONNX, run by both engines.
    let fuse = options
        .fuse
        .or((options.float16 || options.quantize.is_some()).then_some(FuseFlavour::Portable));
    if let Some(flavour) = fuse {
        let f = fuse::fuse(graph, flavour, opset)?;
        log.push(PassLog {
            pass: "fuse",
            summary: format!(
                "{flavour:?}: {} LayerNormalization, {} GELU, {} SkipLayerNormalization, \
                 {} Attention ({} packed QKV weights)",
                f.layer_norms, f.gelus, f.skip_layer_norms, f.attentions, f.packed_weights
            ),
        });
    }
    match options.loops {
        LoopMode::Keep => {}
        LoopMode::Fold => match fold::fold(graph) {
            Ok(f) => log.push(PassLog {
                pass: "fold",
                summary: format!(
                    "{} blocks of {} nodes → {} Scan loop(s); {} weights shared, {} stacked per layer",
                    f.blocks, f.block_nodes, f.loops, f.shared_weights, f.stacked_weights
                ),
            }),
            Err(e @ OnnxError::CannotFold(_)) if options.best_effort => log.push(PassLog {
                pass: "fold",
                summary: format!("skipped (best effort): {e}"),
            }),
            Err(e) => return Err(e),
        },
        LoopMode::Unfold => {
            let n = fold::unfold(graph)?;
            log.push(PassLog {
                pass: "unfold",
                summary: format!("{n} Scan loop(s) inlined; {} nodes", graph.node.len()),
            });
        }
    }
    if let Some(q) = &options.quantize {
        let s = quantize::quantize(graph, q)?;
        log.push(PassLog {
            pass: "quantize",
            summary: format!(
                "int8 ({:?}, {} weights): {} matrix products over {} weights, {} embedding lookups, {} kept in float32",
                q.format,
                q.weights.name(),
                s.matmuls,
                s.weights,
                s.embedding_lookups,
                s.kept
            ),
        });
    }
    if options.float16 {
        let p = precision::to_float16(graph)?;
        log.push(PassLog {
            pass: "precision",
            summary: format!(
                "float16: {} initializers, {} casts retargeted, {} softmax kept in float32, {} outputs cast back to float32",
                p.initializers, p.casts, p.softmax_guards, p.outputs
            ),
        });
    }
    ensure_opsets(model);
    if let Some(q) = &options.quantize {
        // The runtime reads it to warn where these weights saturate (albert_core::cpu).
        model.metadata_props.retain(|e| e.key != INT8_WEIGHTS_KEY);
        model.metadata_props.push(StringStringEntryProto {
            key: INT8_WEIGHTS_KEY.to_string(),
            value: q.weights.name().to_string(),
        });
    }
    Ok(log)
}
