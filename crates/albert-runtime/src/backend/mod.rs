//! Engines behind one trait: ONNX Runtime ([`ort`], CPU / CUDA / TensorRT) and tract ([`tract`],
//! CPU). A backend takes a batch of int64 inputs and returns f32 outputs by name.

#[cfg(feature = "ort")]
pub mod ort;
mod output;
#[cfg(feature = "tract")]
pub mod tract;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// One batch of model inputs, each `[batch, sequence_length]` (the graph library's type, so that
/// `albert-onnx`'s reference forward pass and the engines take the same batch).
pub use albert_onnx::ModelInputs;

use crate::error::{Result, RuntimeError};

pub use output::{OutputTensor, output};

/// Outputs by name (`last_hidden_state`, `logits`, …).
pub type ModelOutputs = BTreeMap<String, OutputTensor>;

/// What actually runs a model (after any fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutionTarget {
    /// tract on the CPU.
    TractCpu,
    /// ONNX Runtime's CPU execution provider.
    OrtCpu,
    /// ONNX Runtime's CUDA execution provider on this device.
    OrtCuda {
        /// The CUDA device index.
        device: i32,
    },
    /// ONNX Runtime's TensorRT execution provider on this device.
    OrtTensorRt {
        /// The CUDA device index.
        device: i32,
    },
}

impl fmt::Display for ExecutionTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutionTarget::TractCpu => f.write_str("tract (cpu)"),
            ExecutionTarget::OrtCpu => f.write_str("onnxruntime (cpu)"),
            ExecutionTarget::OrtCuda { device } => write!(f, "onnxruntime (cuda:{device})"),
            ExecutionTarget::OrtTensorRt { device } => write!(f, "onnxruntime (tensorrt:{device})"),
        }
    }
}

/// An engine with a loaded model. Implementations are `Send + Sync`: [`Backend::run`] may be
/// called from many threads at once.
pub trait Backend: Send + Sync {
    /// What runs the model, after any provider fallback.
    fn target(&self) -> ExecutionTarget;

    /// The model's output names, in graph order.
    fn output_names(&self) -> &[String];

    /// Runs one batch.
    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs>;
}

/// Which engine to load a model with, and its options.
#[derive(Debug, Clone)]
pub enum BackendChoice {
    /// ONNX Runtime (CPU, CUDA or TensorRT), with its options.
    #[cfg(feature = "ort")]
    Ort(ort::OrtOptions),
    /// tract (pure Rust, CPU).
    #[cfg(feature = "tract")]
    Tract(tract::TractOptions),
}

impl Default for BackendChoice {
    /// ONNX Runtime on the CPU when compiled in, else tract.
    fn default() -> Self {
        #[cfg(feature = "ort")]
        return BackendChoice::Ort(ort::OrtOptions::default());
        #[cfg(all(not(feature = "ort"), feature = "tract"))]
        return BackendChoice::Tract(tract::TractOptions::default());
    }
}

/// Loads `model.onnx` with the chosen engine. Its external data, if any, is first confined to
/// the model's directory by our own check, before either engine opens a file the model names
/// (`albert_onnx::proto::check_external_data`; CVE-2024-27318 is the same traversal in the ONNX
/// project's loader).
pub fn load(model: &Path, choice: &BackendChoice) -> Result<Box<dyn Backend>> {
    if !model.exists() {
        return Err(RuntimeError::io(
            model,
            std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
        ));
    }
    #[cfg_attr(not(feature = "ort"), allow(unused_variables))]
    let proto = albert_onnx::proto::check_external_data(model)?;
    // An engine's message does not always say which file it could not load (tract: "model proto
    // does not contain a graph" for an empty or cut-short model.onnx).
    let name = model.display().to_string();
    let named = |e: RuntimeError| match e {
        RuntimeError::Tract(m) if !m.contains(&name) => RuntimeError::Tract(format!("{name}: {m}")),
        RuntimeError::OnnxRuntime(m) if !m.contains(&name) => {
            RuntimeError::OnnxRuntime(format!("{name}: {m}"))
        }
        other => other,
    };
    match choice {
        #[cfg(feature = "ort")]
        BackendChoice::Ort(options) => {
            warn_once_if_int8_saturates(&proto, model);
            Ok(Box::new(
                ort::OrtBackend::load(model, options).map_err(named)?,
            ))
        }
        #[cfg(feature = "tract")]
        BackendChoice::Tract(options) => Ok(Box::new(
            tract::TractBackend::load(model, options).map_err(named)?,
        )),
    }
}

/// The warning for an int8 model whose weights ONNX Runtime's u8×s8 kernels saturate on this CPU
/// (x86-64 without VNNI, `albert_core::cpu`); `None` where they do not. Every provider counts:
/// integer products run on ONNX Runtime's CPU kernels even in a CUDA session (DESIGN.md, "Known
/// traps").
pub fn int8_saturation_warning(
    weights: Option<albert_onnx::convert::Int8Weights>,
    cpu: &albert_core::cpu::CpuInfo,
) -> Option<String> {
    let weights = weights?;
    (weights.saturates_without_vnni() && cpu.u8s8_saturates()).then(|| {
        format!(
            "warning: this model's int8 weights are {} range, on which ONNX Runtime's integer \
             matrix products saturate on x86-64 CPUs without VNNI like this one ({cpu}): expect \
             lost accuracy; reconvert it with `albert-convert --quantize int8 --int8-weights \
             reduced` (the default), or run it in tract",
            weights.name()
        )
    })
}

/// Says [`int8_saturation_warning`] on stderr, once per process (a server loads many sessions).
#[cfg(feature = "ort")]
fn warn_once_if_int8_saturates(proto: &albert_onnx::proto::pb::ModelProto, path: &Path) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let weights = albert_onnx::convert::int8_weights_of(proto);
    if let Some(warning) = int8_saturation_warning(weights, albert_core::cpu::cpu()) {
        WARNED.call_once(|| eprintln!("{}: {warning}", path.display()));
    }
}

/// Checks that a graph takes exactly ALBERT's three inputs (in any order).
pub(crate) fn check_input_names(names: &[String]) -> Result<()> {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    if sorted == ["attention_mask", "input_ids", "token_type_ids"] {
        Ok(())
    } else {
        Err(RuntimeError::UnexpectedInputs {
            found: names.join(", "),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use albert_core::cpu::CpuInfo;
    use albert_onnx::convert::Int8Weights;

    use super::int8_saturation_warning;

    fn cpu(vnni: bool) -> CpuInfo {
        CpuInfo {
            model: "AMD EPYC 7551 32-Core Processor".into(),
            arch: "x86_64",
            avx2: true,
            fma: true,
            avx512f: false,
            avx512_vnni: false,
            avx_vnni: vnni,
            amx_int8: false,
        }
    }

    #[test]
    fn only_full_range_int8_on_a_cpu_without_vnni_is_warned_about() {
        let warning = int8_saturation_warning(Some(Int8Weights::Full), &cpu(false)).unwrap();
        assert!(
            warning.contains("full") && warning.contains("AMD EPYC 7551"),
            "{warning}"
        );
        assert!(warning.contains("--int8-weights reduced"), "{warning}");
        assert_eq!(
            int8_saturation_warning(Some(Int8Weights::Full), &cpu(true)),
            None
        );
        for weights in [Some(Int8Weights::Reduced), Some(Int8Weights::Uint8), None] {
            assert_eq!(int8_saturation_warning(weights, &cpu(false)), None);
        }
    }
}
