//! The f64 reference forward pass of ALBERT (Lan et al. 2019), straight from the checkpoint's
//! tensors with ndarray: independent of the ONNX graph (it shares only the parameter names with
//! [`crate::export`]), so that `--verify` can judge an export without libtorch. It is itself
//! checked against HF transformers' outputs (tests/fixtures/hf) in this crate's tests.
//!
//! The model is written in the same named steps, in the same order, as its two other forms —
//! the tch model the trainer runs (crates/albert-train/src/model/) and the ONNX graph builder
//! (`AlbertGraph` in crates/albert-onnx/src/export.rs) — so the three read side by side:
//!
//! 1. `embeddings`: word + position + token-type tables of width E, summed, LayerNorm
//!    (§3.1 factorized embedding parameterization; HF `AlbertEmbeddings`; tch
//!    `model/embeddings.rs`).
//! 2. `encoder` (HF `AlbertTransformer`; tch `model/encoder.rs`):
//!    `embedding_hidden_mapping_in`, the E→H projection, then the shared `layer` applied
//!    `num_hidden_layers` × `inner_group_num` times, each application reading its group's
//!    tensors under the config's sharing (§3.1 cross-layer parameter sharing;
//!    [`albert_core::params::layer_names`]). A `layer` is `attention` then `feed_forward`
//!    (HF `AlbertLayer`, `AlbertAttention`).
//! 3. The heads (tch `model/heads.rs`): `pooler`, `mlm_head` (decoder tied to the word
//!    embeddings), `sentence_head` (SOP, §3.1 inter-sentence coherence loss, or NSP),
//!    `classifier`, `qa_head`; `heads` picks the ones a task's graph outputs.
//!
//! Unlike the other two forms, steps 1–2 run one sequence at a time ([seq, ·] matrices; the rows
//! of a batch are independent) and the heads on the stacked batch. Dropout is the identity
//! (inference), as in the exported graph.

use std::collections::{BTreeMap, HashMap};

use albert_core::params::{self, LayerNames, SentenceHead, names};
use albert_core::{Activation, AlbertConfig, Checkpoint, Parts};
use ndarray::{
    Array1, Array2, Array3, ArrayBase, ArrayD, ArrayView1, ArrayViewD, Axis, Data, Ix2, IxDyn, s,
};

use crate::error::{OnnxError, Result};
use crate::export::Task;

/// One batch of model inputs, each [batch, sequence_length].
pub use crate::inputs::ModelInputs as Inputs;

pub type Outputs = BTreeMap<String, ArrayD<f32>>;

/// Runs the checkpoint on `inputs` and returns the outputs the exported graph of `task` has, by name.
pub fn run(checkpoint: &Checkpoint, task: Task, inputs: &Inputs) -> Result<Outputs> {
    crate::export::check_task(task, &checkpoint.parts)?;
    check_inputs(&checkpoint.config, inputs)?;
    let mut model = AlbertReference {
        config: &checkpoint.config,
        parts: checkpoint.parts,
        weights: Weights {
            checkpoint,
            cache: HashMap::new(),
        },
    };
    let hidden = model.last_hidden_state(inputs)?;
    model.heads(task, hidden)
}

/// Ids within the vocabulary and type sizes, a mask shaped like the ids, and no more positions
/// than the position table has.
fn check_inputs(config: &AlbertConfig, inputs: &Inputs) -> Result<()> {
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
    Ok(())
}

/// ALBERT over one checkpoint's tensors: the steps, in forward order.
struct AlbertReference<'a> {
    config: &'a AlbertConfig,
    parts: Parts,
    weights: Weights<'a>,
}

impl AlbertReference<'_> {
    /// Embeddings then encoder for each sequence of the batch: [batch, seq, H].
    fn last_hidden_state(&mut self, inputs: &Inputs) -> Result<Array3<f64>> {
        let sequences = (0..inputs.input_ids.nrows())
            .map(|b| {
                let embedded =
                    self.embeddings(inputs.input_ids.row(b), inputs.token_type_ids.row(b))?;
                self.encoder(&embedded, inputs.attention_mask.row(b))
            })
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<_> = sequences.iter().map(|x| x.view()).collect();
        ndarray::stack(Axis(0), &views).map_err(|e| OnnxError::Invalid(e.to_string()))
    }

    /// Factorized embeddings (paper §3.1, HF `AlbertEmbeddings`): the word, token-type and
    /// position vectors of width E summed, then LayerNorm. Ids are range-checked.
    /// Returns [seq, E].
    fn embeddings(
        &mut self,
        input_ids: ArrayView1<i64>,
        token_type_ids: ArrayView1<i64>,
    ) -> Result<Array2<f64>> {
        let w = &mut self.weights;
        let mut embedded = Array2::<f64>::zeros((input_ids.len(), self.config.embedding_size));
        for p in 0..input_ids.len() {
            let mut row = w
                .matrix(names::WORD_EMBEDDINGS)?
                .row(input_ids[p] as usize)
                .to_owned();
            row += &w
                .matrix(names::TOKEN_TYPE_EMBEDDINGS)?
                .row(token_type_ids[p] as usize);
            row += &w.matrix(names::POSITION_EMBEDDINGS)?.row(p);
            embedded.row_mut(p).assign(&row);
        }
        self.layer_norm(&embedded, &params::norm(names::EMBEDDINGS_NORM))
    }

    /// The factorized projection E→H (paper §3.1; HF `embedding_hidden_mapping_in`, the first
    /// module of `AlbertTransformer`). [seq, E] → [seq, H].
    fn embedding_hidden_mapping_in(&mut self, embedded: &Array2<f64>) -> Result<Array2<f64>> {
        self.linear(embedded, &params::linear(names::MAPPING))
    }

    /// The encoder (HF `AlbertTransformer`): the E→H projection, then the shared layer applied
    /// once per layer slot; [`params::layer_names`] maps each application to its group's tensors
    /// (paper §3.1, cross-layer parameter sharing), so every sharing strategy is this loop.
    /// `attention_mask`: 1 for tokens, 0 for padding. [seq, E] → [seq, H].
    fn encoder(
        &mut self,
        embedded: &Array2<f64>,
        attention_mask: ArrayView1<i64>,
    ) -> Result<Array2<f64>> {
        // (1 − mask)·min(f32) added to every query's scores, as HF's eager attention mask.
        let mask_bias = attention_mask.mapv(|m| (1.0 - m as f64) * f64::from(f32::MIN));
        let mut hidden = self.embedding_hidden_mapping_in(embedded)?;
        for slot in params::layer_slots(self.config) {
            hidden = self.layer(&hidden, &mask_bias, &params::layer_names(self.config, slot))?;
        }
        Ok(hidden)
    }

    /// One application of the shared transformer layer (HF `AlbertLayer`): attention, then the
    /// feed-forward block, each post-LN with a residual.
    fn layer(
        &mut self,
        x: &Array2<f64>,
        mask_bias: &Array1<f64>,
        n: &LayerNames,
    ) -> Result<Array2<f64>> {
        let attended = self.attention(x, mask_bias, n)?;
        self.feed_forward(&attended, n)
    }

    /// Multi-head self-attention with its output projection, residual and LayerNorm (HF
    /// `AlbertAttention`): softmax(q·kᵀ/√d + mask)·v per head.
    fn attention(
        &mut self,
        x: &Array2<f64>,
        mask_bias: &Array1<f64>,
        n: &LayerNames,
    ) -> Result<Array2<f64>> {
        let (heads, head_size) = (self.config.num_attention_heads, self.config.head_size());
        let scaling = (head_size as f64).powf(-0.5);
        let q = self.linear(x, &n.query)?;
        let k = self.linear(x, &n.key)?;
        let v = self.linear(x, &n.value)?;
        let mut context = Array2::<f64>::zeros((x.nrows(), self.config.hidden_size));
        for head in 0..heads {
            let cols = s![.., head * head_size..(head + 1) * head_size];
            let mut scores = q.slice(cols).dot(&k.slice(cols).t()) * scaling + mask_bias;
            softmax_rows(&mut scores);
            context.slice_mut(cols).assign(&scores.dot(&v.slice(cols)));
        }
        let attended = self.linear(&context, &n.attention_dense)? + x;
        self.layer_norm(&attended, &n.attention_norm)
    }

    /// The feed-forward block (HF `AlbertLayer.ff_chunk`): H→I, `hidden_act`, I→H, residual,
    /// LayerNorm.
    fn feed_forward(&mut self, attended: &Array2<f64>, n: &LayerNames) -> Result<Array2<f64>> {
        let activation = self.config.activation();
        let up = self
            .linear(attended, &n.ffn)?
            .mapv(|v| activate(activation, v));
        let down = self.linear(&up, &n.ffn_output)? + attended;
        self.layer_norm(&down, &n.output_norm)
    }

    /// The pooler (HF `AlbertModel.pooler`): `tanh(W·h[CLS] + b)`. [batch, seq, H] → [batch, H].
    fn pooler(&mut self, hidden: &Array3<f64>) -> Result<Array2<f64>> {
        let mut rows = Vec::with_capacity(hidden.len_of(Axis(0)));
        for b in 0..hidden.len_of(Axis(0)) {
            let first = hidden.slice(s![b, 0..1, ..]).to_owned();
            rows.push(
                self.linear(&first, &params::linear(names::POOLER))?
                    .mapv(f64::tanh),
            );
        }
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| OnnxError::Invalid(e.to_string()))
    }

    /// The MLM head (HF `AlbertMLMHead`): H→E dense, `hidden_act`, LayerNorm, then the decoder
    /// tied to the word embeddings (E→V) plus `predictions.bias`. [batch, seq, H] → [batch, seq, V].
    fn mlm_head(&mut self, hidden: &Array3<f64>) -> Result<Array3<f64>> {
        let activation = self.config.activation();
        let mut rows = Vec::with_capacity(hidden.len_of(Axis(0)));
        for sequence in hidden.outer_iter() {
            let x = self
                .linear(&sequence, &params::linear(names::MLM_DENSE))?
                .mapv(|v| activate(activation, v));
            let x = self.layer_norm(&x, &params::norm(names::MLM_NORM))?;
            let bias = self.weights.vector(names::MLM_BIAS)?;
            rows.push(x.dot(&self.weights.matrix(names::WORD_EMBEDDINGS)?.t()) + &bias);
        }
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        ndarray::stack(Axis(0), &views).map_err(|e| OnnxError::Invalid(e.to_string()))
    }

    /// The sentence-pair head on the pooled output: SOP (paper §3.1, inter-sentence coherence
    /// loss; HF `AlbertSOPHead`) or BERT's NSP. Returns the graph output's name and its logits.
    fn sentence_head(&mut self, pooled: &Array2<f64>) -> Result<(&'static str, ArrayD<f64>)> {
        let (prefix, name) = match self.parts.sentence {
            Some(SentenceHead::Nsp) => (names::NSP_CLASSIFIER, "nsp_logits"),
            _ => (names::SOP_CLASSIFIER, "sop_logits"),
        };
        Ok((name, self.classifier(pooled.view().into_dyn(), prefix)?))
    }

    /// A linear classifier over the last axis (HF `AlbertFor*Classification.classifier`; dropout
    /// is the identity here): on the pooled output [batch, H] for sequences, on the hidden
    /// states [batch, seq, H] for tokens.
    fn classifier(&mut self, x: ArrayViewD<f64>, prefix: &str) -> Result<ArrayD<f64>> {
        let shape = x.shape().to_vec();
        let (leading, width) = shape.split_at(shape.len() - 1);
        let flat = x
            .to_owned()
            .into_shape_with_order((leading.iter().product::<usize>(), width[0]))
            .map_err(|e| OnnxError::Invalid(e.to_string()))?;
        let out = self.linear(&flat, &params::linear(prefix))?;
        let mut out_shape = leading.to_vec();
        out_shape.push(out.ncols());
        out.into_shape_with_order(IxDyn(&out_shape))
            .map_err(|e| OnnxError::Invalid(e.to_string()))
    }

    /// The span head (HF `AlbertForQuestionAnswering.qa_outputs`): a linear layer H→2 on each
    /// token, split into start and end logits, [batch, seq] each.
    fn qa_head(&mut self, hidden: &Array3<f64>) -> Result<(ArrayD<f64>, ArrayD<f64>)> {
        let logits = self.classifier(hidden.view().into_dyn(), names::QA_OUTPUTS)?;
        Ok((
            logits.index_axis(Axis(2), 0).to_owned(),
            logits.index_axis(Axis(2), 1).to_owned(),
        ))
    }

    /// The heads `task`'s graph has, applied to the last hidden state, by output name.
    fn heads(&mut self, task: Task, hidden: Array3<f64>) -> Result<Outputs> {
        let mut outputs = Outputs::new();
        let mut put = |name: &str, value: ArrayD<f64>| {
            outputs.insert(name.to_string(), value.mapv(|v| v as f32));
        };
        match task {
            Task::Base => {
                if self.parts.pooler {
                    put("pooler_output", self.pooler(&hidden)?.into_dyn());
                }
                put("last_hidden_state", hidden.into_dyn());
            }
            Task::MaskedLm => put("logits", self.mlm_head(&hidden)?.into_dyn()),
            Task::Pretraining => {
                put("prediction_logits", self.mlm_head(&hidden)?.into_dyn());
                let pooled = self.pooler(&hidden)?;
                let (name, logits) = self.sentence_head(&pooled)?;
                put(name, logits);
            }
            Task::SequenceClassification => {
                let pooled = self.pooler(&hidden)?;
                put(
                    "logits",
                    self.classifier(pooled.view().into_dyn(), names::CLASSIFIER)?,
                );
            }
            Task::TokenClassification => put(
                "logits",
                self.classifier(hidden.view().into_dyn(), names::CLASSIFIER)?,
            ),
            Task::QuestionAnswering => {
                let (start, end) = self.qa_head(&hidden)?;
                put("start_logits", start);
                put("end_logits", end);
            }
        }
        Ok(outputs)
    }

    /// x·Wᵀ + b with the checkpoint's [out, in] weight.
    fn linear<S: Data<Elem = f64>>(
        &mut self,
        x: &ArrayBase<S, Ix2>,
        names: &params::LinearNames,
    ) -> Result<Array2<f64>> {
        self.weights.linear(x, names)
    }

    fn layer_norm(&mut self, x: &Array2<f64>, names: &params::NormNames) -> Result<Array2<f64>> {
        self.weights
            .layer_norm(x, names, self.config.layer_norm_eps)
    }
}

/// The checkpoint's tensors as f64 matrices, converted on first use.
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
    fn linear<S: Data<Elem = f64>>(
        &mut self,
        x: &ArrayBase<S, Ix2>,
        names: &params::LinearNames,
    ) -> Result<Array2<f64>> {
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
