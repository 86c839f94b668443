//! tract (0.23, pure Rust, CPU). The model is optimized once at load with symbolic `batch_size`
//! and `sequence_length`; each run makes its own state, so runs from many threads proceed in
//! parallel. tract runs each model single-threaded.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{Backend, ExecutionTarget, ModelInputs, ModelOutputs, check_input_names};
use crate::error::{Result, RuntimeError};

/// Options of the tract backend (none yet).
#[derive(Debug, Clone, Default)]
pub struct TractOptions {}

fn tract_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Tract(format!("{e:#}"))
}

/// A model loaded and optimized in tract, run on the CPU.
pub struct TractBackend {
    plan: Arc<TypedRunnableModel>,
    /// Positions of input_ids, attention_mask, token_type_ids among the graph's inputs.
    input_order: [usize; 3],
    outputs: Vec<String>,
}

impl TractBackend {
    /// Loads and optimizes an ONNX model, checking that it takes ALBERT's three inputs.
    pub fn load(model: &Path, options: &TractOptions) -> Result<Self> {
        // tract can panic on graphs it misreads (e.g. ONNX Runtime's `com.microsoft.Attention`,
        // which it parses as the opset-23 op of the same name): a panic is an error here, not a
        // crash of the application.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::load_unguarded(model, options)
        }))
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(RuntimeError::Tract(format!(
                "{}: tract cannot read this graph (it panicked: {message})",
                model.display()
            )))
        })
    }

    fn load_unguarded(model: &Path, _options: &TractOptions) -> Result<Self> {
        let inference = tract_onnx::onnx()
            .model_for_path(model)
            .map_err(tract_err)?;
        let input_names: Vec<String> = inference
            .input_outlets()
            .map_err(tract_err)?
            .iter()
            .map(|o| inference.node(o.node).name.clone())
            .collect();
        check_input_names(&input_names)?;
        let position = |name: &str| input_names.iter().position(|n| n == name).unwrap_or(0);
        let input_order = [
            position("input_ids"),
            position("attention_mask"),
            position("token_type_ids"),
        ];
        let outputs: Vec<String> = inference
            .output_outlets()
            .map_err(tract_err)?
            .iter()
            .map(|o| {
                inference
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| inference.node(o.node).name.clone())
            })
            .collect();
        let plan = inference
            .into_optimized()
            .map_err(tract_err)?
            .into_runnable()
            .map_err(tract_err)?;
        Ok(TractBackend {
            plan,
            input_order,
            outputs,
        })
    }
}

impl Backend for TractBackend {
    fn target(&self) -> ExecutionTarget {
        ExecutionTarget::TractCpu
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs> {
        let arrays = [
            &inputs.input_ids,
            &inputs.attention_mask,
            &inputs.token_type_ids,
        ];
        let mut feed: Vec<(usize, TValue)> = self
            .input_order
            .iter()
            .zip(arrays)
            .map(|(&pos, a)| (pos, a.clone().into_dyn().into_tensor().into_tvalue()))
            .collect();
        feed.sort_by_key(|(pos, _)| *pos);
        let values = self
            .plan
            .run(feed.into_iter().map(|(_, v)| v).collect())
            .map_err(tract_err)?;
        let mut result = ModelOutputs::new();
        for (name, value) in self.outputs.iter().zip(values) {
            // Moved out without a copy when tract holds the only reference.
            let array = value
                .into_tensor()
                .into_plain_array::<f32>()
                .map_err(tract_err)?;
            result.insert(name.clone(), array.into());
        }
        Ok(result)
    }
}
