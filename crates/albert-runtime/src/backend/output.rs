//! A model output, kept where the engine wrote it.
//!
//! Copying outputs out of the engine was a measurable share of a run: the MLM logits of a batch of
//! 8 × 128 tokens over an 8,000-piece vocabulary are 33 MB, and copying and freeing them took
//! 6.5 ms of a 38 ms int8 run on ONNX Runtime (2 cores). An [`OutputTensor`] holds ONNX Runtime's
//! own value (or an owned array, as tract hands its results over) and gives views of it.

use std::fmt;

use ndarray::{ArrayD, ArrayViewD};

use super::ModelOutputs;
use crate::error::{Result, RuntimeError};

/// One float32 output of a run.
pub struct OutputTensor(Storage);

enum Storage {
    Array(ArrayD<f32>),
    /// An ONNX Runtime value, checked at construction to be a float32 tensor.
    #[cfg(feature = "ort")]
    Ort(::ort::value::DynValue),
}

impl OutputTensor {
    /// Wraps an ONNX Runtime output; fails (naming it) unless it is a float32 tensor.
    #[cfg(feature = "ort")]
    pub(crate) fn from_ort(name: &str, value: ::ort::value::DynValue) -> Result<Self> {
        value.try_extract_array::<f32>().map_err(|e| {
            RuntimeError::OnnxRuntime(format!("output `{name}` is not a float32 tensor: {e}"))
        })?;
        Ok(OutputTensor(Storage::Ort(value)))
    }

    /// A view of the values.
    pub fn view(&self) -> Result<ArrayViewD<'_, f32>> {
        match &self.0 {
            Storage::Array(array) => Ok(array.view()),
            #[cfg(feature = "ort")]
            Storage::Ort(value) => value
                .try_extract_array::<f32>()
                .map_err(|e| RuntimeError::OnnxRuntime(e.to_string())),
        }
    }

    /// The shape.
    pub fn shape(&self) -> Result<Vec<usize>> {
        Ok(self.view()?.shape().to_vec())
    }

    /// An owned copy of the values.
    pub fn to_array(&self) -> Result<ArrayD<f32>> {
        Ok(self.view()?.to_owned())
    }
}

impl From<ArrayD<f32>> for OutputTensor {
    fn from(array: ArrayD<f32>) -> Self {
        OutputTensor(Storage::Array(array))
    }
}

impl fmt::Debug for OutputTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape() {
            Ok(shape) => write!(f, "OutputTensor(f32 {shape:?})"),
            Err(e) => write!(f, "OutputTensor(unreadable: {e})"),
        }
    }
}

/// A view of the output `name`, or an error naming it and what the model has.
pub fn output<'a>(outputs: &'a ModelOutputs, name: &str) -> Result<ArrayViewD<'a, f32>> {
    outputs
        .get(name)
        .ok_or_else(|| {
            RuntimeError::InvalidInput(format!(
                "the backend returned no `{name}` (it returned: {})",
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?
        .view()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_output_is_named_with_what_there_is() {
        let mut outputs = ModelOutputs::new();
        outputs.insert(
            "logits".into(),
            ArrayD::from_shape_vec(vec![1, 2], vec![0.5, -1.0])
                .unwrap()
                .into(),
        );
        assert_eq!(
            output(&outputs, "logits").unwrap().as_slice().unwrap(),
            &[0.5, -1.0]
        );
        let message = output(&outputs, "pooler_output").unwrap_err().to_string();
        assert!(
            message.contains("`pooler_output`") && message.contains("logits"),
            "{message}"
        );
        assert_eq!(
            format!("{:?}", outputs["logits"]),
            "OutputTensor(f32 [1, 2])"
        );
    }
}
