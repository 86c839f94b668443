//! Checkpoint → ONNX. The graph is written the way ALBERT is: each shared tensor is one
//! initializer that every layer using it reads directly (no Identity, no per-layer copies), the
//! MLM decoder reads the word-embedding initializer itself, and only standard ONNX ops are used
//! (opset 17 by default), so ONNX Runtime and tract both run it.
//!
//! The graph is built in the same named steps, in the same order, as ALBERT's two other forms —
//! the tch model the trainer runs (crates/albert-train/src/model/) and the f64 reference
//! ([`crate::reference`]) — so the three read side by side. Each step is one method of
//! `AlbertGraph`, whose nodes are named under the HF module it builds (`/albert/embeddings/…`):
//!
//! 1. `embeddings`: word + position + token-type tables of width E, summed, LayerNorm
//!    (§3.1 factorized embedding parameterization; HF `AlbertEmbeddings`).
//! 2. `encoder` (HF `AlbertTransformer`): the additive `mask_bias`,
//!    `embedding_hidden_mapping_in` (the E→H projection), then the shared `layer` applied
//!    `num_hidden_layers` × `inner_group_num` times, each application reading its group's
//!    initializers under the config's sharing (§3.1 cross-layer parameter sharing;
//!    [`albert_core::params::layer_names`]). A `layer` is `attention` then `feed_forward`
//!    (HF `AlbertLayer`, `AlbertAttention`).
//! 3. The heads: `pooler`, `mlm_head` (decoder tied to the word embeddings), `sentence_head`
//!    (SOP, §3.1 inter-sentence coherence loss, or NSP), `classifier`, `qa_head`; `heads` picks
//!    the ones the task outputs and declares the graph outputs.
//!
//! Inputs: `input_ids`, `attention_mask`, `token_type_ids`, int64 [batch_size, sequence_length]
//! (all three required, as optimum exports ALBERT). Outputs by task, named as optimum / HF name them:
//! base → `last_hidden_state` (+ `pooler_output` when the checkpoint has a pooler); masked-lm →
//! `logits`; pretraining → `prediction_logits`, `sop_logits` (or `nsp_logits`);
//! sequence-classification and token-classification → `logits`; question-answering →
//! `start_logits`, `end_logits`.
//!
//! Linear weights are stored as MatMul takes them, [in, out] (HF stores [out, in]); embedding
//! tables, LayerNorm parameters and biases as in the checkpoint. Metadata props record the task,
//! the config and the source checkpoint's SHA-256.

use std::path::{Path, PathBuf};

use albert_core::checkpoint::{MODEL_FILE, WEIGHTS_FILE, checked_companions};
use albert_core::params::{self, LayerNames, LayerSlot, SentenceHead, names};
use albert_core::{AlbertConfig, Checkpoint, Parts, TensorF32};
use sha2::{Digest, Sha256};

use crate::builder::GraphBuilder;
use crate::error::{OnnxError, Result};
use crate::proto::pb::tensor_proto::DataType;
use crate::proto::pb::{GraphProto, ModelProto, OperatorSetIdProto, ValueInfoProto};
use crate::proto::{self, Dim, attr_int, attr_ints, tensor_f32, value_info};

pub const DEFAULT_OPSET: i64 = 17;
pub const BATCH: &str = "batch_size";
pub const SEQUENCE: &str = "sequence_length";
const BATCH_DIM: Dim = Dim::Symbol(BATCH);
const SEQUENCE_DIM: Dim = Dim::Symbol(SEQUENCE);

pub use albert_core::Task;

/// Checks that the checkpoint has the heads `task` needs.
pub fn check_task(task: Task, parts: &Parts) -> Result<()> {
    match task.missing_heads(parts) {
        None => Ok(()),
        Some(needs) => Err(OnnxError::TaskHeads {
            task: task.name().to_string(),
            needs: needs.to_string(),
            has: parts.describe(),
        }),
    }
}

/// Builds the ONNX model of `checkpoint` for `task`.
pub fn build_model(
    checkpoint: &Checkpoint,
    task: Task,
    opset: i64,
    source_sha256: &str,
) -> Result<ModelProto> {
    build_model_from(checkpoint.clone(), task, opset, source_sha256)
}

/// Like [`build_model`], consuming the checkpoint: its tensors move into the initializers one by
/// one, so memory peaks near one copy of the weights (what large models need).
pub fn build_model_from(
    checkpoint: Checkpoint,
    task: Task,
    opset: i64,
    source_sha256: &str,
) -> Result<ModelProto> {
    if !(17..=21).contains(&opset) {
        return Err(OnnxError::Opset(opset));
    }
    check_task(task, &checkpoint.parts)?;
    let Checkpoint {
        config,
        parts,
        tensors,
    } = checkpoint;
    let mut g = AlbertGraph {
        b: GraphBuilder::new(opset),
        config: &config,
        parts,
        tensors,
    };
    let embedded = g.embeddings()?;
    let hidden = g.encoder(&embedded)?;
    let outputs = g.heads(task, &hidden)?;
    let inputs = ["input_ids", "attention_mask", "token_type_ids"]
        .iter()
        .map(|name| value_info(name, DataType::Int64, &[BATCH_DIM, SEQUENCE_DIM]))
        .collect();
    let graph = g.b.finish("albert", inputs, outputs);
    Ok(model_proto(
        graph,
        &config,
        parts,
        task,
        opset,
        source_sha256,
    ))
}

/// Graph construction over a checkpoint's tensors. Each tensor is moved out of the map when it
/// becomes an initializer (initializers are made once per name), so the model is never held twice.
struct AlbertGraph<'a> {
    b: GraphBuilder,
    config: &'a AlbertConfig,
    parts: Parts,
    tensors: std::collections::BTreeMap<String, TensorF32>,
}

impl AlbertGraph<'_> {
    /// Factorized embeddings (paper §3.1, HF `AlbertEmbeddings`): the word, token-type and
    /// position vectors of width E summed, then LayerNorm. [batch, seq, E].
    fn embeddings(&mut self) -> Result<String> {
        self.b.set_scope("/albert/embeddings");
        let word = self.stored(names::WORD_EMBEDDINGS)?;
        let types = self.stored(names::TOKEN_TYPE_EMBEDDINGS)?;
        let positions = self.stored(names::POSITION_EMBEDDINGS)?;
        let words = self.b.op("Gather", &[&word, "input_ids"], vec![]);
        let type_vectors = self.b.op("Gather", &[&types, "token_type_ids"], vec![]);
        let shape = self.b.op("Shape", &["input_ids"], vec![]);
        let one = self.b.const_i64(&[], &[1]);
        let seq_len = self
            .b
            .op("Gather", &[&shape, &one], vec![attr_int("axis", 0)]);
        let zero = self.b.const_i64(&[], &[0]);
        let position_ids = self.b.op("Range", &[&zero, &seq_len, &one], vec![]);
        let position_vectors = self.b.op("Gather", &[&positions, &position_ids], vec![]);
        let sum = self.b.op("Add", &[&words, &type_vectors], vec![]);
        let sum = self.b.op("Add", &[&sum, &position_vectors], vec![]);
        self.layer_norm(&sum, &params::norm(names::EMBEDDINGS_NORM))
    }

    /// The factorized projection E→H (paper §3.1; HF `embedding_hidden_mapping_in`, the first
    /// module of `AlbertTransformer`). [batch, seq, E] → [batch, seq, H].
    fn embedding_hidden_mapping_in(&mut self, embedded: &str) -> Result<String> {
        self.b.set_scope("/albert/encoder");
        self.linear(embedded, &params::linear(names::MAPPING))
    }

    /// The encoder (HF `AlbertTransformer`): the E→H projection, then the shared layer applied
    /// once per layer slot; [`params::layer_names`] maps each application to its group's
    /// initializers (paper §3.1, cross-layer parameter sharing), so every sharing strategy is
    /// this loop and a shared tensor is one initializer read by every application.
    fn encoder(&mut self, embedded: &str) -> Result<String> {
        let mask_bias = self.mask_bias();
        let mut hidden = self.embedding_hidden_mapping_in(embedded)?;
        for slot in params::layer_slots(self.config).collect::<Vec<_>>() {
            hidden = self.layer(&hidden, &mask_bias, slot)?;
        }
        Ok(hidden)
    }

    /// (1 − mask)·min(f32), shaped [batch, 1, 1, seq] (HF's additive attention mask).
    fn mask_bias(&mut self) -> String {
        self.b.set_scope("/albert/mask");
        let mask = self.b.op(
            "Cast",
            &["attention_mask"],
            vec![attr_int("to", DataType::Float as i64)],
        );
        let one = self.b.scalar_f32(1.0);
        let inverted = self.b.op("Sub", &[&one, &mask], vec![]);
        let min = self.b.scalar_f32(f32::MIN);
        let bias = self.b.op("Mul", &[&inverted, &min], vec![]);
        let axes = self.b.const_i64(&[2], &[1, 2]);
        self.b.op("Unsqueeze", &[&bias, &axes], vec![])
    }

    /// One application of the shared transformer layer (HF `AlbertLayer`): attention, then the
    /// feed-forward block, each post-LN with a residual.
    fn layer(&mut self, x: &str, mask_bias: &str, slot: LayerSlot) -> Result<String> {
        let n = params::layer_names(self.config, slot);
        let attended = self.attention(x, mask_bias, slot, &n)?;
        self.feed_forward(&attended, slot, &n)
    }

    /// Multi-head self-attention with its output projection, residual and LayerNorm (HF
    /// `AlbertAttention`): softmax(q·kᵀ/√d + mask)·v, the heads split by Reshape + Transpose.
    fn attention(
        &mut self,
        x: &str,
        mask_bias: &str,
        slot: LayerSlot,
        n: &LayerNames,
    ) -> Result<String> {
        let heads = self.config.num_attention_heads as i64;
        let head_size = self.config.head_size() as i64;
        let hidden = self.config.hidden_size as i64;
        self.b.set_scope(format!(
            "/albert/encoder/layer.{}.{}/attention",
            slot.layer, slot.inner
        ));
        let split_shape = self.b.const_i64(&[4], &[0, 0, heads, head_size]);
        let q = self.linear(x, &n.query)?;
        let k = self.linear(x, &n.key)?;
        let v = self.linear(x, &n.value)?;
        // [batch, heads, seq, head_size]; k transposed once more for q·kᵀ.
        let q = self.split_heads(&q, &split_shape, &[0, 2, 1, 3]);
        let k = self.split_heads(&k, &split_shape, &[0, 2, 3, 1]);
        let v = self.split_heads(&v, &split_shape, &[0, 2, 1, 3]);
        let scores = self.b.op("MatMul", &[&q, &k], vec![]);
        let scaling = self.b.scalar_f32((head_size as f64).powf(-0.5) as f32);
        let scores = self.b.op("Mul", &[&scores, &scaling], vec![]);
        let scores = self.b.op("Add", &[&scores, mask_bias], vec![]);
        let probs = self.b.op("Softmax", &[&scores], vec![attr_int("axis", -1)]);
        let context = self.b.op("MatMul", &[&probs, &v], vec![]);
        let context = self.b.op(
            "Transpose",
            &[&context],
            vec![attr_ints("perm", &[0, 2, 1, 3])],
        );
        let merge_shape = self.b.const_i64(&[3], &[0, 0, hidden]);
        let context = self.b.op("Reshape", &[&context, &merge_shape], vec![]);
        let projected = self.linear(&context, &n.attention_dense)?;
        let residual = self.b.op("Add", &[x, &projected], vec![]);
        self.layer_norm(&residual, &n.attention_norm)
    }

    /// [batch, seq, H] → [batch, seq, heads, head_size], then transposed by `perm`.
    fn split_heads(&mut self, x: &str, split_shape: &str, perm: &[i64]) -> String {
        let split = self.b.op("Reshape", &[x, split_shape], vec![]);
        self.b
            .op("Transpose", &[&split], vec![attr_ints("perm", perm)])
    }

    /// The feed-forward block (HF `AlbertLayer.ff_chunk`): H→I, `hidden_act`, I→H, residual,
    /// LayerNorm.
    fn feed_forward(&mut self, attended: &str, slot: LayerSlot, n: &LayerNames) -> Result<String> {
        self.b.set_scope(format!(
            "/albert/encoder/layer.{}.{}/ffn",
            slot.layer, slot.inner
        ));
        let up = self.linear(attended, &n.ffn)?;
        let activated = self.b.activation(self.config.activation(), &up);
        let down = self.linear(&activated, &n.ffn_output)?;
        let residual = self.b.op("Add", &[&down, attended], vec![]);
        self.layer_norm(&residual, &n.output_norm)
    }

    /// The pooler (HF `AlbertModel.pooler`): `tanh(W·h[CLS] + b)`. [batch, seq, H] → [batch, H].
    fn pooler(&mut self, hidden: &str) -> Result<String> {
        self.b.set_scope("/albert/pooler");
        let zero = self.b.const_i64(&[], &[0]);
        let first = self
            .b
            .op("Gather", &[hidden, &zero], vec![attr_int("axis", 1)]);
        let dense = self.linear(&first, &params::linear(names::POOLER))?;
        Ok(self.b.op("Tanh", &[&dense], vec![]))
    }

    /// The MLM head (HF `AlbertMLMHead`): H→E dense, `hidden_act`, LayerNorm, then the decoder
    /// tied to the word embeddings (E→V) plus `predictions.bias`, into graph output `output`.
    ///
    /// The decoder reads the word-embedding initializer itself through a `Transpose` (the table
    /// is stored once; engines fold the transpose when loading), as a `MatMul` on the
    /// [batch, seq, E] states and an `Add` of the bias. An earlier `Gemm` with `transB` on
    /// flattened states was ~15 % slower on ONNX Runtime CPU at the bundled model's size: Gemm
    /// fills its output with the broadcast bias before accumulating, and reshaping the
    /// [batch·seq, V] logits back to 3-D copied them.
    fn mlm_head(&mut self, hidden: &str, output: &str) -> Result<()> {
        self.b.set_scope("/predictions");
        let dense = self.linear(hidden, &params::linear(names::MLM_DENSE))?;
        let activated = self.b.activation(self.config.activation(), &dense);
        let normed = self.layer_norm(&activated, &params::norm(names::MLM_NORM))?;
        let word = self.stored(names::WORD_EMBEDDINGS)?;
        let decoder = self
            .b
            .op("Transpose", &[&word], vec![attr_ints("perm", &[1, 0])]);
        let bias = self.stored(names::MLM_BIAS)?;
        self.b.linear_into(&normed, &decoder, &bias, output);
        Ok(())
    }

    /// The sentence-pair head on the pooled output: SOP (paper §3.1, inter-sentence coherence
    /// loss; HF `AlbertSOPHead`) or BERT's NSP, into its graph output; returns that output.
    fn sentence_head(&mut self, pooled: &str) -> Result<ValueInfoProto> {
        let (prefix, name, width) = match self.parts.sentence {
            Some(SentenceHead::Nsp) => (names::NSP_CLASSIFIER, "nsp_logits", 2),
            _ => (
                names::SOP_CLASSIFIER,
                "sop_logits",
                self.config.num_labels(),
            ),
        };
        self.b
            .set_scope(format!("/{}", prefix.split('.').next().unwrap_or(prefix)));
        self.linear_into(pooled, &params::linear(prefix), name)?;
        Ok(float_output(name, &[BATCH_DIM, Dim::Fixed(width)]))
    }

    /// A linear classifier over the last axis (HF `AlbertFor*Classification.classifier`; dropout
    /// is the identity in inference), into graph output `logits`: on the pooled output for
    /// sequences, on the hidden states for tokens.
    fn classifier(&mut self, x: &str) -> Result<()> {
        self.b.set_scope("/classifier");
        self.linear_into(x, &params::linear(names::CLASSIFIER), "logits")
    }

    /// The span head (HF `AlbertForQuestionAnswering.qa_outputs`): a linear layer H→2 on each
    /// token, split into graph outputs `start_logits` and `end_logits`, [batch, seq] each.
    fn qa_head(&mut self, hidden: &str) -> Result<Vec<ValueInfoProto>> {
        self.b.set_scope("/qa_outputs");
        let logits = self.linear(hidden, &params::linear(names::QA_OUTPUTS))?;
        let split = self.b.const_i64(&[2], &[1, 1]);
        let halves = self
            .b
            .op_n("Split", &[&logits, &split], vec![attr_int("axis", -1)], 2);
        let axes = self.b.const_i64(&[1], &[-1]);
        let mut outputs = Vec::new();
        for (half, name) in halves.iter().zip(["start_logits", "end_logits"]) {
            self.b.op_into("Squeeze", &[half, &axes], vec![], name);
            outputs.push(float_output(name, &[BATCH_DIM, SEQUENCE_DIM]));
        }
        Ok(outputs)
    }

    /// The heads `task`'s graph has, on the last hidden state; returns the graph outputs.
    fn heads(&mut self, task: Task, hidden: &str) -> Result<Vec<ValueInfoProto>> {
        let (h, v) = (self.config.hidden_size, self.config.vocab_size);
        let labels = self.config.num_labels();
        let (b, s) = (BATCH_DIM, SEQUENCE_DIM);
        let outputs = match task {
            Task::Base => {
                self.b.rename_value(hidden, "last_hidden_state");
                let mut outputs = vec![float_output("last_hidden_state", &[b, s, Dim::Fixed(h)])];
                if self.parts.pooler {
                    let pooled = self.pooler("last_hidden_state")?;
                    self.b.rename_value(&pooled, "pooler_output");
                    outputs.push(float_output("pooler_output", &[b, Dim::Fixed(h)]));
                }
                outputs
            }
            Task::MaskedLm => {
                self.mlm_head(hidden, "logits")?;
                vec![float_output("logits", &[b, s, Dim::Fixed(v)])]
            }
            Task::Pretraining => {
                self.mlm_head(hidden, "prediction_logits")?;
                let prediction = float_output("prediction_logits", &[b, s, Dim::Fixed(v)]);
                let pooled = self.pooler(hidden)?;
                vec![prediction, self.sentence_head(&pooled)?]
            }
            Task::SequenceClassification => {
                let pooled = self.pooler(hidden)?;
                self.classifier(&pooled)?;
                vec![float_output("logits", &[b, Dim::Fixed(labels)])]
            }
            Task::TokenClassification => {
                self.classifier(hidden)?;
                vec![float_output("logits", &[b, s, Dim::Fixed(labels)])]
            }
            Task::QuestionAnswering => self.qa_head(hidden)?,
        };
        Ok(outputs)
    }

    fn take(&mut self, name: &str) -> Result<TensorF32> {
        self.tensors
            .remove(name)
            .ok_or_else(|| OnnxError::Invalid(format!("checkpoint has no tensor `{name}`")))
    }

    /// A checkpoint tensor as an initializer, as stored (embedding tables, norms, biases).
    fn stored(&mut self, name: &str) -> Result<String> {
        if !self.b.has_initializer(name) {
            let t = self.take(name)?;
            let proto = tensor_f32(name, &t.shape, &t.data);
            self.b.initializer(name, || proto);
        }
        Ok(name.to_string())
    }

    /// A linear weight ([out, in] in the checkpoint) as an [in, out] initializer, written once.
    fn weight_t(&mut self, name: &str) -> Result<String> {
        if !self.b.has_initializer(name) {
            let t = self.take(name)?;
            let (out, inp) = (t.shape[0], t.shape[1]);
            let mut data = vec![0f32; t.data.len()];
            for o in 0..out {
                for i in 0..inp {
                    data[i * out + o] = t.data[o * inp + i];
                }
            }
            let proto = tensor_f32(name, &[inp, out], &data);
            self.b.initializer(name, || proto);
        }
        Ok(name.to_string())
    }

    /// x·W + b over the checkpoint's linear layer `names`.
    fn linear(&mut self, x: &str, names: &params::LinearNames) -> Result<String> {
        let w = self.weight_t(&names.weight)?;
        let bias = self.stored(&names.bias)?;
        Ok(self.b.linear(x, &w, &bias))
    }

    /// Like [`AlbertGraph::linear`], into the graph output `output`.
    fn linear_into(&mut self, x: &str, names: &params::LinearNames, output: &str) -> Result<()> {
        let w = self.weight_t(&names.weight)?;
        let bias = self.stored(&names.bias)?;
        self.b.linear_into(x, &w, &bias, output);
        Ok(())
    }

    fn layer_norm(&mut self, x: &str, names: &params::NormNames) -> Result<String> {
        let w = self.stored(&names.weight)?;
        let bias = self.stored(&names.bias)?;
        Ok(self.b.layer_norm(x, &w, &bias, self.config.layer_norm_eps))
    }
}

fn float_output(name: &str, dims: &[Dim]) -> ValueInfoProto {
    value_info(name, DataType::Float, dims)
}

/// The model around `graph`: opset, IR version, and metadata props recording the task, the
/// config and the source checkpoint's SHA-256.
fn model_proto(
    graph: GraphProto,
    config: &AlbertConfig,
    parts: Parts,
    task: Task,
    opset: i64,
    source_sha256: &str,
) -> ModelProto {
    let ir_version = match opset {
        17 | 18 => 8,
        19 | 20 => 9,
        _ => 10,
    };
    ModelProto {
        ir_version,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "albert-export".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: format!("ALBERT ({}), task {}", parts.describe(), task),
        graph: Some(graph),
        metadata_props: proto::metadata(&[
            ("albert.task", task.name().to_string()),
            ("albert.config", config.to_json_string()),
            ("albert.source_sha256", source_sha256.to_string()),
            (
                "albert.linear_weight_layout",
                "[in, out] (HF stores [out, in])".to_string(),
            ),
        ]),
        ..Default::default()
    }
}

/// What [`export_dir`] did.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    pub model_path: PathBuf,
    pub task: Task,
    pub opset: i64,
    pub parameters: usize,
    pub initializers: usize,
    pub nodes: usize,
    pub file_bytes: u64,
    pub external_data: bool,
    pub source_sha256: String,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub task: Option<Task>,
    pub opset: i64,
    /// Initializer bytes above which weights go to `model.onnx.data`.
    pub external_threshold: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            task: None,
            opset: DEFAULT_OPSET,
            external_threshold: proto::EXTERNAL_DATA_THRESHOLD,
        }
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    // Streamed: checkpoints can be many gigabytes, already held once in memory as tensors.
    let mut file = std::fs::File::open(path).map_err(|e| OnnxError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut file, &mut chunk).map_err(|e| OnnxError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn copy_atomic(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).map_err(|e| OnnxError::io(from, e))?;
    albert_core::write_atomic(to, &bytes)?;
    Ok(())
}

/// Exports a model directory (HF layout) to `out_dir`: `model.onnx` (+ `model.onnx.data` for
/// large models), `config.json`, and `tokenizer.json` when the source has one. Everything is built
/// in memory and validated before the first byte is written; files are replaced atomically.
pub fn export_dir(source: &Path, out_dir: &Path, options: &ExportOptions) -> Result<ExportSummary> {
    if !source.is_dir() {
        return Err(OnnxError::io(
            source,
            std::io::Error::new(std::io::ErrorKind::NotFound, "model directory not found"),
        ));
    }
    let checkpoint = Checkpoint::read_dir(source)?;
    // What is copied beside the model is checked before anything is written.
    let companions = checked_companions(source)?;
    let task = options
        .task
        .unwrap_or_else(|| Task::default_for(&checkpoint.parts));
    check_task(task, &checkpoint.parts)?;
    let sha = sha256_file(&source.join(WEIGHTS_FILE))?;
    let model = build_model_from(checkpoint, task, options.opset, &sha)?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Invalid("empty graph".into()))?;
    let parameters = graph
        .initializer
        .iter()
        .filter(|t| !t.name.starts_with("const_"))
        .map(|t| t.dims.iter().product::<i64>() as usize)
        .sum();
    let (initializers, nodes) = (graph.initializer.len(), graph.node.len());

    let created = !out_dir.exists();
    std::fs::create_dir_all(out_dir).map_err(|e| OnnxError::io(out_dir, e))?;
    let model_path = out_dir.join(MODEL_FILE);
    let external_data = proto::initializer_bytes(&model) > options.external_threshold;
    let written = (|| -> Result<u64> {
        // Config and tokenizer first: a model.onnx in place always has its config beside it.
        for file in &companions {
            copy_atomic(&source.join(file), &out_dir.join(file))?;
        }
        proto::write_model(&model_path, model, options.external_threshold)
    })();
    let file_bytes = match written {
        Ok(n) => n,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir_all(out_dir);
            }
            return Err(e);
        }
    };
    Ok(ExportSummary {
        model_path,
        task,
        opset: options.opset,
        parameters,
        initializers,
        nodes,
        file_bytes,
        external_data,
        source_sha256: sha,
    })
}
