//! A reference forward pass of ALBERT straight from the checkpoint's tensors, in f64 with ndarray:
//! independent of the ONNX graph (no shared code with [`crate::export`] but the parameter names),
//! so that `--verify` can judge an export without libtorch. It is itself checked against HF
//! transformers' outputs (tests/fixtures/hf) in this crate's tests.

use std::collections::{BTreeMap, HashMap};

use albert_core::params::{self, SentenceHead, names};
use albert_core::{Activation, AlbertConfig, Checkpoint};
use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn, s};

use crate::error::{OnnxError, Result};
use crate::export::Task;

/// One batch of model inputs, each [batch, sequence_length].
pub use crate::inputs::ModelInputs as Inputs;

pub type Outputs = BTreeMap<String, ArrayD<f32>>;

struct Weights<'a> {
    checkpoint: &'a Checkpoint,
    cache: HashMap<String, Array2<f64>>,
}

impl Weights<'_> {
    fn matrix(&mut self, name: &str) -> Result<&Array2<f64>> {
        if !self.cache.contains_key(name) {
            let t = self
                .checkpoint
                .tensor(name)
                .ok_or_else(|| OnnxError::Invalid(format!("checkpoint has no tensor `{name}`")))?;
            let (rows, cols) = match t.shape.as_slice() {
                [r, c] => (*r, *c),
                [n] => (1, *n),
                other => return Err(OnnxError::Invalid(format!("`{name}` has shape {other:?}"))),
            };
            let data: Vec<f64> = t.data.iter().map(|&v| f64::from(v)).collect();
            let array = Array2::from_shape_vec((rows, cols), data)
                .map_err(|e| OnnxError::Invalid(format!("`{name}`: {e}")))?;
            self.cache.insert(name.to_string(), array);
        }
        Ok(&self.cache[name])
    }

    fn vector(&mut self, name: &str) -> Result<Array1<f64>> {
        Ok(self.matrix(name)?.row(0).to_owned())
    }

    /// x·Wᵀ + b, W stored [out, in] as in the checkpoint.
    fn linear(&mut self, x: &Array2<f64>, names: &params::LinearNames) -> Result<Array2<f64>> {
        let bias = self.vector(&names.bias)?;
        let w = self.matrix(&names.weight)?;
        Ok(x.dot(&w.t()) + &bias)
    }

    fn layer_norm(
        &mut self,
        x: &Array2<f64>,
        names: &params::NormNames,
        eps: f64,
    ) -> Result<Array2<f64>> {
        let gamma = self.vector(&names.weight)?;
        let beta = self.vector(&names.bias)?;
        let mut out = x.clone();
        for mut row in out.rows_mut() {
            let mean = row.mean().unwrap_or(0.0);
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / row.len() as f64;
            let denom = (var + eps).sqrt();
            row.iter_mut()
                .zip(gamma.iter().zip(beta.iter()))
                .for_each(|(v, (g, b))| {
                    *v = (*v - mean) / denom * g + b;
                });
        }
        Ok(out)
    }
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn softplus(x: f64) -> f64 {
    // PyTorch's softplus (beta 1, threshold 20).
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

/// The scalar formulas of HF `activations.py`.
pub fn activate(activation: Activation, x: f64) -> f64 {
    use std::f64::consts::PI;
    match activation {
        Activation::Gelu => gelu(x),
        Activation::GeluTanh => {
            0.5 * x * (1.0 + ((2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        }
        Activation::GeluFast => {
            0.5 * x * (1.0 + (x * 0.797_884_560_8 * (1.0 + 0.044715 * x * x)).tanh())
        }
        Activation::Gelu10 => gelu(x).clamp(-10.0, 10.0),
        Activation::QuickGelu => x * sigmoid(1.702 * x),
        Activation::Relu => x.max(0.0),
        Activation::Relu2 => x.max(0.0).powi(2),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::LeakyRelu => {
            if x >= 0.0 {
                x
            } else {
                0.01 * x
            }
        }
        Activation::Silu => x * sigmoid(x),
        Activation::Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
        Activation::Mish => x * softplus(x).tanh(),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        #[allow(clippy::approx_constant)]
        Activation::Laplace => {
            0.5 * (1.0 + libm::erf((x - 0.707_107) / (0.282_095 * std::f64::consts::SQRT_2)))
        }
        Activation::SqrtSoftplus => softplus(x).sqrt(),
        Activation::Linear => x,
    }
}

fn softmax_rows(x: &mut Array2<f64>) {
    for mut row in x.rows_mut() {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
}

fn to_f32(array: ndarray::ArrayD<f64>) -> ArrayD<f32> {
    array.mapv(|v| v as f32)
}

/// Runs the checkpoint on `inputs` and returns the outputs the exported graph of `task` has, by name.
pub fn run(checkpoint: &Checkpoint, task: Task, inputs: &Inputs) -> Result<Outputs> {
    crate::export::check_task(task, &checkpoint.parts)?;
    let config: &AlbertConfig = &checkpoint.config;
    let parts = checkpoint.parts;
    let mut w = Weights {
        checkpoint,
        cache: HashMap::new(),
    };
    let (batch, seq) = inputs.input_ids.dim();
    for (name, ids, limit) in [
        ("input_ids", &inputs.input_ids, config.vocab_size),
        (
            "token_type_ids",
            &inputs.token_type_ids,
            config.type_vocab_size,
        ),
    ] {
        if ids.iter().any(|&id| id < 0 || id as usize >= limit) {
            return Err(OnnxError::Invalid(format!(
                "{name}: ids must lie in [0, {limit})"
            )));
        }
    }
    if seq > config.max_position_embeddings || inputs.attention_mask.dim() != (batch, seq) {
        return Err(OnnxError::Invalid(format!(
            "inputs of shape {:?} (mask {:?}) do not fit max_position_embeddings {}",
            (batch, seq),
            inputs.attention_mask.dim(),
            config.max_position_embeddings
        )));
    }
    let (h, heads) = (config.hidden_size, config.num_attention_heads);
    let head_size = config.head_size();
    let eps = config.layer_norm_eps;
    let scaling = (head_size as f64).powf(-0.5);

    let mut hidden_all = Vec::with_capacity(batch);
    for b in 0..batch {
        // Embeddings.
        let mut emb = Array2::<f64>::zeros((seq, config.embedding_size));
        for p in 0..seq {
            let id = inputs.input_ids[[b, p]] as usize;
            let tt = inputs.token_type_ids[[b, p]] as usize;
            let mut row = w.matrix(names::WORD_EMBEDDINGS)?.row(id).to_owned();
            row += &w.matrix(names::TOKEN_TYPE_EMBEDDINGS)?.row(tt);
            row += &w.matrix(names::POSITION_EMBEDDINGS)?.row(p);
            emb.row_mut(p).assign(&row);
        }
        let emb = w.layer_norm(&emb, &params::norm(names::EMBEDDINGS_NORM), eps)?;
        let mut x = w.linear(&emb, &params::linear(names::MAPPING))?;
        let mask_bias: Array1<f64> = inputs
            .attention_mask
            .row(b)
            .mapv(|m| (1.0 - m as f64) * f64::from(f32::MIN));

        for slot in params::layer_slots(config) {
            let n = params::layer_names(config, slot);
            let q = w.linear(&x, &n.query)?;
            let k = w.linear(&x, &n.key)?;
            let v = w.linear(&x, &n.value)?;
            let mut context = Array2::<f64>::zeros((seq, h));
            for head in 0..heads {
                let cols = s![.., head * head_size..(head + 1) * head_size];
                let mut scores = q.slice(cols).dot(&k.slice(cols).t()) * scaling + &mask_bias;
                softmax_rows(&mut scores);
                context.slice_mut(cols).assign(&scores.dot(&v.slice(cols)));
            }
            let attended = w.linear(&context, &n.attention_dense)? + &x;
            let attended = w.layer_norm(&attended, &n.attention_norm, eps)?;
            let up = w
                .linear(&attended, &n.ffn)?
                .mapv(|v| activate(config.activation(), v));
            let down = w.linear(&up, &n.ffn_output)? + &attended;
            x = w.layer_norm(&down, &n.output_norm, eps)?;
        }
        hidden_all.push(x);
    }

    let stack = |rows: &[Array2<f64>]| -> Result<ArrayD<f64>> {
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        ndarray::stack(Axis(0), &views)
            .map(|a| a.into_dyn())
            .map_err(|e| OnnxError::Invalid(e.to_string()))
    };
    let mut pooled_rows = Vec::new();
    if parts.pooler {
        for hidden in &hidden_all {
            let first = hidden.slice(s![0..1, ..]).to_owned();
            pooled_rows.push(
                w.linear(&first, &params::linear(names::POOLER))?
                    .mapv(f64::tanh),
            );
        }
    }
    let pooled = || -> Result<ArrayD<f64>> {
        let a = stack(&pooled_rows)?;
        let shape = [a.shape()[0], a.shape()[2]];
        a.into_shape_with_order(IxDyn(&shape))
            .map_err(|e| OnnxError::Invalid(e.to_string()))
    };
    let mlm = |w: &mut Weights| -> Result<ArrayD<f64>> {
        let mut rows = Vec::new();
        for hidden in &hidden_all {
            let x = w
                .linear(hidden, &params::linear(names::MLM_DENSE))?
                .mapv(|v| activate(config.activation(), v));
            let x = w.layer_norm(&x, &params::norm(names::MLM_NORM), eps)?;
            let bias = w.vector(names::MLM_BIAS)?;
            rows.push(x.dot(&w.matrix(names::WORD_EMBEDDINGS)?.t()) + &bias);
        }
        stack(&rows)
    };
    let head = |w: &mut Weights, x: &ArrayD<f64>, prefix: &str| -> Result<ArrayD<f64>> {
        let linear = params::linear(prefix);
        let shape = x.shape().to_vec();
        let flat = x
            .clone()
            .into_shape_with_order((
                shape[..shape.len() - 1].iter().product::<usize>(),
                shape[shape.len() - 1],
            ))
            .map_err(|e| OnnxError::Invalid(e.to_string()))?;
        let out = w.linear(&flat, &linear)?;
        let mut out_shape = shape[..shape.len() - 1].to_vec();
        out_shape.push(out.ncols());
        out.into_shape_with_order(IxDyn(&out_shape))
            .map_err(|e| OnnxError::Invalid(e.to_string()))
    };

    let mut outputs = Outputs::new();
    let hidden = stack(&hidden_all)?;
    match task {
        Task::Base => {
            outputs.insert("last_hidden_state".into(), to_f32(hidden));
            if parts.pooler {
                outputs.insert("pooler_output".into(), to_f32(pooled()?));
            }
        }
        Task::MaskedLm => {
            outputs.insert("logits".into(), to_f32(mlm(&mut w)?));
        }
        Task::Pretraining => {
            outputs.insert("prediction_logits".into(), to_f32(mlm(&mut w)?));
            let (prefix, name) = match parts.sentence {
                Some(SentenceHead::Nsp) => (names::NSP_CLASSIFIER, "nsp_logits"),
                _ => (names::SOP_CLASSIFIER, "sop_logits"),
            };
            let p = pooled()?;
            outputs.insert(name.into(), to_f32(head(&mut w, &p, prefix)?));
        }
        Task::SequenceClassification => {
            let p = pooled()?;
            outputs.insert(
                "logits".into(),
                to_f32(head(&mut w, &p, names::CLASSIFIER)?),
            );
        }
        Task::TokenClassification => {
            outputs.insert(
                "logits".into(),
                to_f32(head(&mut w, &hidden, names::CLASSIFIER)?),
            );
        }
        Task::QuestionAnswering => {
            let logits = head(&mut w, &hidden, names::QA_OUTPUTS)?;
            outputs.insert(
                "start_logits".into(),
                to_f32(logits.index_axis(Axis(2), 0).to_owned()),
            );
            outputs.insert(
                "end_logits".into(),
                to_f32(logits.index_axis(Axis(2), 1).to_owned()),
            );
        }
    }
    Ok(outputs)
}
