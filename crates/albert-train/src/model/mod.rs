//! ALBERT in tch, faithful to HF transformers `modeling_albert.py`: factorized embeddings, the
//! E→H mapping, the grouped/shared post-LN encoder under every sharing strategy, the pooler, and
//! the heads (MLM tied to the word embeddings, SOP, NSP, classifiers, QA).
//!
//! The same steps, in the same order (embeddings → E→H mapping → the shared layer applied per
//! layer slot → heads), are `albert_onnx`'s graph builder (`export.rs`, `AlbertGraph`) and its f64
//! reference (`reference.rs`, `AlbertReference`): read the three side by side.

mod activation;
mod embeddings;
mod encoder;
mod heads;
mod params;
pub mod precision;

use std::collections::BTreeMap;

use albert_core::params::{Parts, SentenceHead, inventory, names};
use albert_core::{AlbertConfig, Checkpoint, TensorF32};
use tch::{Device, Kind, Tensor, nn};

use crate::error::{Result, TrainError};
use embeddings::Embeddings;
use encoder::Encoder;
use heads::{Classifier, MlmHead, Pooler};
pub use params::ParamTable;

/// What a forward pass returns; a field is `Some` when the model has that head.
pub struct AlbertOutput {
    /// [batch, seq, H]
    pub last_hidden_state: Tensor,
    /// [batch, H]
    pub pooler_output: Option<Tensor>,
    /// [batch, seq, V]
    pub mlm_logits: Option<Tensor>,
    /// SOP or NSP logits, [batch, 2]
    pub sentence_logits: Option<Tensor>,
    /// [batch, num_labels] with a pooler (sequence classification), else [batch, seq, num_labels]
    pub classifier_logits: Option<Tensor>,
    /// [batch, seq] each (question answering)
    pub start_logits: Option<Tensor>,
    pub end_logits: Option<Tensor>,
}

pub struct AlbertModel {
    config: AlbertConfig,
    parts: Parts,
    table: ParamTable,
    embeddings: Embeddings,
    encoder: Encoder,
    pooler: Option<Pooler>,
    mlm: Option<MlmHead>,
    sentence: Option<Classifier>,
    classifier: Option<Classifier>,
    qa: Option<params::Linear>,
}

impl AlbertModel {
    /// Creates the variables in `vs` (names = canonical HF names), initialized as HF does.
    pub fn new(vs: &nn::VarStore, config: &AlbertConfig, parts: Parts) -> Result<Self> {
        config.validate()?;
        let specs = inventory(config, &parts);
        let table = ParamTable::create(vs, config, &specs);
        let embeddings = Embeddings::new(&table, config);
        if let Some(pad) = config.pad_token_id {
            // nn.Embedding(padding_idx=pad) starts with a zero row.
            tch::no_grad(|| {
                let _ = embeddings.word.get(pad).zero_();
            });
        }
        let classifier_dropout = config
            .classifier_dropout_prob
            .unwrap_or(config.hidden_dropout_prob);
        let sentence_prefix = match parts.sentence {
            Some(SentenceHead::Sop) => Some(names::SOP_CLASSIFIER),
            Some(SentenceHead::Nsp) => Some(names::NSP_CLASSIFIER),
            None => None,
        };
        Ok(AlbertModel {
            encoder: Encoder::new(&table, config),
            pooler: parts.pooler.then(|| Pooler::new(&table)),
            mlm: parts.mlm.then(|| MlmHead::new(&table, config)),
            sentence: sentence_prefix.map(|p| Classifier::new(&table, p, classifier_dropout)),
            classifier: parts
                .classifier
                .then(|| Classifier::new(&table, names::CLASSIFIER, classifier_dropout)),
            qa: parts.qa.then(|| {
                params::Linear::new(&table, &albert_core::params::linear(names::QA_OUTPUTS))
            }),
            embeddings,
            table,
            config: config.clone(),
            parts,
        })
    }

    /// Creates the model in `vs` and copies a checkpoint's tensors into it.
    pub fn from_checkpoint(vs: &nn::VarStore, checkpoint: &Checkpoint) -> Result<Self> {
        let model = AlbertModel::new(vs, &checkpoint.config, checkpoint.parts)?;
        model.load_tensors(&checkpoint.tensors)?;
        Ok(model)
    }

    /// Copies the tensors of `tensors` whose name and shape match one of this model's variables
    /// (and that `keep` accepts) into the variables, leaving the others as initialized; returns
    /// how many were copied. For starting from another checkpoint with other heads.
    pub fn load_matching(
        &self,
        tensors: BTreeMap<String, TensorF32>,
        keep: impl Fn(&str) -> bool,
    ) -> Result<usize> {
        let mut own = self.to_checkpoint()?.tensors;
        let mut copied = 0;
        for (name, tensor) in tensors {
            if keep(&name) && own.get(&name).is_some_and(|t| t.shape == tensor.shape) {
                own.insert(name, tensor);
                copied += 1;
            }
        }
        self.load_tensors(&own)?;
        Ok(copied)
    }

    /// Copies tensors (already validated against the inventory) into the variables.
    pub fn load_tensors(&self, tensors: &BTreeMap<String, TensorF32>) -> Result<()> {
        tch::no_grad(|| -> Result<()> {
            for (name, var) in self.table.iter() {
                let src = tensors.get(name).ok_or_else(|| {
                    TrainError::Core(albert_core::AlbertError::MissingTensor {
                        path: "<checkpoint>".into(),
                        name: name.clone(),
                        expected: var.size().iter().map(|&d| d as usize).collect(),
                        hint: String::new(),
                    })
                })?;
                let shape: Vec<i64> = src.shape.iter().map(|&d| d as i64).collect();
                let t = Tensor::f_from_slice(&src.data)?.f_view(shape.as_slice())?;
                var.shallow_clone().f_copy_(&t)?;
            }
            Ok(())
        })
    }

    /// The model's tensors as a checkpoint (f32, on the CPU), ready for [`Checkpoint::write_dir`].
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let mut tensors = BTreeMap::new();
        for (name, var) in self.table.iter() {
            let cpu = var
                .f_to_kind(Kind::Float)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?;
            let shape: Vec<usize> = cpu.size().iter().map(|&d| d as usize).collect();
            let data = Vec::<f32>::try_from(cpu.f_flatten(0, -1)?)?;
            tensors.insert(name.clone(), TensorF32::new(name, shape, data)?);
        }
        Ok(Checkpoint::new(self.config.clone(), self.parts, tensors))
    }

    pub fn config(&self) -> &AlbertConfig {
        &self.config
    }

    pub fn parts(&self) -> Parts {
        self.parts
    }

    /// The number of distinct parameters (shared tensors counted once).
    pub fn num_parameters(&self) -> usize {
        self.table.iter().map(|(_, t)| t.numel()).sum()
    }

    /// Checks ids against the vocabulary and type sizes, so bad ids are an error, not a libtorch abort.
    fn check_inputs(
        &self,
        input_ids: &Tensor,
        token_type_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<()> {
        let size = input_ids.size();
        if size.len() != 2 {
            return Err(TrainError::BadInput {
                name: "input_ids",
                message: format!("expected shape [batch, sequence_length], found {size:?}"),
            });
        }
        for (name, t) in [
            ("attention_mask", attention_mask),
            ("token_type_ids", token_type_ids),
        ] {
            if t.size() != size {
                return Err(TrainError::BadInput {
                    name,
                    message: format!("shape {:?} differs from input_ids {size:?}", t.size()),
                });
            }
        }
        if size[1] as usize > self.config.max_position_embeddings {
            return Err(TrainError::BadInput {
                name: "input_ids",
                message: format!(
                    "sequence length {} exceeds max_position_embeddings {}",
                    size[1], self.config.max_position_embeddings
                ),
            });
        }
        if input_ids.numel() == 0 {
            return Err(TrainError::BadInput {
                name: "input_ids",
                message: "empty batch".into(),
            });
        }
        for (name, t, limit) in [
            ("input_ids", input_ids, self.config.vocab_size),
            (
                "token_type_ids",
                token_type_ids,
                self.config.type_vocab_size,
            ),
        ] {
            let (lo, hi) = (t.f_min()?.int64_value(&[]), t.f_max()?.int64_value(&[]));
            if lo < 0 || hi as usize >= limit {
                return Err(TrainError::BadInput {
                    name,
                    message: format!("ids must lie in [0, {limit}), found range [{lo}, {hi}]"),
                });
            }
        }
        Ok(())
    }

    /// The forward pass. `attention_mask` defaults to all ones and `token_type_ids` to zeros, as in
    /// HF. `train` switches dropout on.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
        train: bool,
    ) -> Result<AlbertOutput> {
        let ones = input_ids.ones_like();
        let zeros = input_ids.zeros_like();
        let attention_mask = attention_mask.unwrap_or(&ones);
        let token_type_ids = token_type_ids.unwrap_or(&zeros);
        self.check_inputs(input_ids, token_type_ids, attention_mask)?;

        let (hidden, pooled) =
            self.encode_checked(input_ids, attention_mask, token_type_ids, train);
        let mlm_logits = self
            .mlm
            .as_ref()
            .map(|m| m.forward(&hidden, &self.embeddings.word));
        let sentence_logits = match (&self.sentence, &pooled) {
            (Some(head), Some(p)) => Some(head.forward(p, train)),
            _ => None,
        };
        let classifier_logits = self.classifier.as_ref().map(|c| match &pooled {
            Some(p) => c.forward(p, train),
            None => c.forward(&hidden, train),
        });
        let (start_logits, end_logits) = match &self.qa {
            Some(qa) => {
                let logits = qa.forward(&hidden);
                (Some(logits.select(-1, 0)), Some(logits.select(-1, 1)))
            }
            None => (None, None),
        };
        Ok(AlbertOutput {
            last_hidden_state: hidden,
            pooler_output: pooled,
            mlm_logits,
            sentence_logits,
            classifier_logits,
            start_logits,
            end_logits,
        })
    }

    /// The encoder's last hidden state and (with a pooler) the pooled output, for training loops
    /// that apply heads to a subset of positions. Inputs as in [`AlbertModel::forward`], required.
    pub fn encode(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        self.check_inputs(input_ids, token_type_ids, attention_mask)?;
        Ok(self.encode_checked(input_ids, attention_mask, token_type_ids, train))
    }

    fn encode_checked(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        token_type_ids: &Tensor,
        train: bool,
    ) -> (Tensor, Option<Tensor>) {
        let embedded = self.embeddings.forward(input_ids, token_type_ids, train);
        let hidden = self.encoder.forward(&embedded, attention_mask, train);
        let pooled = self.pooler.as_ref().map(|p| p.forward(&hidden));
        (hidden, pooled)
    }

    /// MLM logits for hidden states of any leading shape ([..., H] → [..., V]), e.g. only the
    /// masked positions, which saves the V-wide projection of every other token.
    pub fn mlm_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let head = self.mlm.as_ref().ok_or(TrainError::MissingHead("MLM"))?;
        Ok(head.forward(hidden, &self.embeddings.word))
    }

    /// SOP or NSP logits from the pooled output.
    pub fn sentence_logits(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        let head = self
            .sentence
            .as_ref()
            .ok_or(TrainError::MissingHead("SOP/NSP"))?;
        Ok(head.forward(pooled, train))
    }

    /// The variables with their canonical names (shared tensors once), for optimizers.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.table
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    }
}
