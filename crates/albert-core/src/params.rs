//! The parameter inventory: for a config and a set of heads, every tensor's canonical name, shape,
//! initialization and the layers that use it. The trainer creates its variables from it, the
//! checkpoint reader validates files against it, the exporter writes initializers from it.
//!
//! Names are those of HF transformers `modeling_albert.py` (`AlbertForPreTraining` and friends):
//!
//! ```text
//! albert.embeddings.{word_embeddings,position_embeddings,token_type_embeddings}.weight
//! albert.embeddings.LayerNorm.{weight,bias}
//! albert.encoder.embedding_hidden_mapping_in.{weight,bias}
//! albert.encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.{query,key,value,dense}.{weight,bias}
//! albert.encoder.albert_layer_groups.{g}.albert_layers.{i}.attention.LayerNorm.{weight,bias}
//! albert.encoder.albert_layer_groups.{g}.albert_layers.{i}.{ffn,ffn_output}.{weight,bias}
//! albert.encoder.albert_layer_groups.{g}.albert_layers.{i}.full_layer_layer_norm.{weight,bias}
//! albert.pooler.{weight,bias}
//! predictions.{bias,dense.weight,dense.bias,LayerNorm.weight,LayerNorm.bias}   (decoder tied, see below)
//! sop_classifier.classifier.{weight,bias}      classifier.{weight,bias}      qa_outputs.{weight,bias}
//! ```
//!
//! Our extensions, for what HF cannot express:
//! * the block of a layer that is *not* shared under `sharing = attention` (its feed-forward block) or
//!   `sharing = ffn` (its attention block) lives at
//!   `albert.encoder.unshared_layers.{l}.albert_layers.{i}.<the same suffix as in HF>`, one per
//!   layer application `l` (0..num_hidden_layers) and inner layer `i`; the shared block keeps the
//!   HF group name. So `sharing = ffn` holds `albert_layer_groups.0.albert_layers.0.ffn.weight` once
//!   and `unshared_layers.{0..L}.albert_layers.0.attention.query.weight` L times.
//! * the NSP head (BERT's next-sentence prediction, for comparison with SOP) is
//!   `nsp_classifier.classifier.{weight,bias}`, shaped like HF's SOP head.
//!
//! The MLM decoder is tied as in HF: `predictions.decoder.weight` *is* the word-embedding matrix and
//! `predictions.decoder.bias` *is* `predictions.bias`; neither is in the inventory nor written.

use std::fmt;
use std::str::FromStr;

use crate::config::{AlbertConfig, Sharing};
use crate::error::{AlbertError, Result};

/// The part of the model a tensor belongs to, for the parameter breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    Embeddings,
    Mapping,
    Encoder,
    Pooler,
    MlmHead,
    SopHead,
    NspHead,
    Classifier,
    QaHead,
}

impl Component {
    pub fn label(self) -> &'static str {
        match self {
            Component::Embeddings => "embeddings (V×E + P×E + T×E + LayerNorm)",
            Component::Mapping => "embedding mapping E→H",
            Component::Encoder => "encoder layers",
            Component::Pooler => "pooler",
            Component::MlmHead => "MLM head (decoder tied)",
            Component::SopHead => "SOP head",
            Component::NspHead => "NSP head",
            Component::Classifier => "classifier",
            Component::QaHead => "QA span head",
        }
    }
}

/// How a tensor is initialized (HF `_init_weights`: normal(0, initializer_range) for Linear and
/// Embedding weights, zeros for biases and the padding row, ones/zeros for LayerNorm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Normal,
    Zeros,
    Ones,
}

/// One application of a transformer layer: repetition `layer` (0..num_hidden_layers) and, inside its
/// group, inner layer `inner` (0..inner_group_num).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerSlot {
    pub layer: usize,
    pub inner: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub component: Component,
    pub init: Init,
    /// The layer applications that use this tensor (empty outside the encoder layers).
    pub used_by: Vec<LayerSlot>,
}

impl ParamSpec {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether decoupled weight decay (and LAMB's trust ratio) applies: not to biases, not to
    /// LayerNorm parameters (the BERT/ALBERT convention).
    pub fn decays(&self) -> bool {
        !(self.name.ends_with(".bias")
            || self.name.contains("LayerNorm")
            || self.name.contains("layer_norm"))
    }
}

/// Whether weight decay and LAMB's trust ratio apply to a parameter: not to biases, not to
/// LayerNorm parameters (ALBERT's `exclude_from_weight_decay = ["LayerNorm", "layer_norm", "bias"]`).
pub fn decays(name: &str) -> bool {
    !(name.contains("LayerNorm") || name.contains("layer_norm") || name.contains("bias"))
}

/// The sentence-level pretraining objective head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SentenceHead {
    /// Sentence-order prediction (ALBERT): `sop_classifier.classifier.*`.
    Sop,
    /// Next-sentence prediction (BERT): `nsp_classifier.classifier.*`.
    Nsp,
}

/// Which heads sit on the encoder. HF model classes are particular combinations ([`Head`]);
/// checkpoints found in the wild are others (`albert-base-v2` holds a pooler and an MLM head).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Parts {
    pub pooler: bool,
    pub mlm: bool,
    pub sentence: Option<SentenceHead>,
    /// `classifier.{weight,bias}` (num_labels × H): on the pooled output for sequence
    /// classification, on every token for token classification.
    pub classifier: bool,
    /// `qa_outputs.{weight,bias}` (2 × H).
    pub qa: bool,
}

/// The heads of the HF model classes (and NSP pretraining, ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Head {
    /// `AlbertModel`: embeddings, mapping, encoder, pooler.
    Base,
    /// `AlbertForMaskedLM` (no pooler, as in HF).
    MaskedLm,
    /// `AlbertForPreTraining`: pooler, MLM head, SOP head.
    Pretraining,
    /// Like `Pretraining` with the NSP head in place of SOP.
    PretrainingNsp,
    /// `AlbertForSequenceClassification`: pooler + classifier.
    SequenceClassification,
    /// `AlbertForTokenClassification` (no pooler).
    TokenClassification,
    /// `AlbertForQuestionAnswering` (no pooler).
    QuestionAnswering,
}

impl Head {
    pub const ALL: [Head; 7] = [
        Head::Base,
        Head::MaskedLm,
        Head::Pretraining,
        Head::PretrainingNsp,
        Head::SequenceClassification,
        Head::TokenClassification,
        Head::QuestionAnswering,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Head::Base => "base",
            Head::MaskedLm => "masked-lm",
            Head::Pretraining => "pretraining",
            Head::PretrainingNsp => "pretraining-nsp",
            Head::SequenceClassification => "sequence-classification",
            Head::TokenClassification => "token-classification",
            Head::QuestionAnswering => "question-answering",
        }
    }

    /// The HF class name written to `architectures` (ours for NSP pretraining).
    pub fn hf_architecture(self) -> &'static str {
        match self {
            Head::Base => "AlbertModel",
            Head::MaskedLm => "AlbertForMaskedLM",
            Head::Pretraining => "AlbertForPreTraining",
            Head::PretrainingNsp => "AlbertForPreTrainingNsp",
            Head::SequenceClassification => "AlbertForSequenceClassification",
            Head::TokenClassification => "AlbertForTokenClassification",
            Head::QuestionAnswering => "AlbertForQuestionAnswering",
        }
    }

    pub fn parts(self) -> Parts {
        let base = Parts::default();
        match self {
            Head::Base => Parts {
                pooler: true,
                ..base
            },
            Head::MaskedLm => Parts { mlm: true, ..base },
            Head::Pretraining => Parts {
                pooler: true,
                mlm: true,
                sentence: Some(SentenceHead::Sop),
                ..base
            },
            Head::PretrainingNsp => Parts {
                pooler: true,
                mlm: true,
                sentence: Some(SentenceHead::Nsp),
                ..base
            },
            Head::SequenceClassification => Parts {
                pooler: true,
                classifier: true,
                ..base
            },
            Head::TokenClassification => Parts {
                classifier: true,
                ..base
            },
            Head::QuestionAnswering => Parts { qa: true, ..base },
        }
    }
}

impl FromStr for Head {
    type Err = AlbertError;

    fn from_str(s: &str) -> Result<Self> {
        Head::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| AlbertError::UnknownName {
                what: "head",
                found: s.to_string(),
                expected: Head::ALL.map(Head::name).join(", "),
            })
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Parts {
    /// The HF class these parts are, if they are exactly one.
    pub fn head(&self) -> Option<Head> {
        Head::ALL.into_iter().find(|h| h.parts() == *self)
    }

    /// A short description, e.g. `pooler + MLM + SOP`.
    pub fn describe(&self) -> String {
        let mut parts = vec!["encoder"];
        if self.pooler {
            parts.push("pooler");
        }
        if self.mlm {
            parts.push("MLM");
        }
        match self.sentence {
            Some(SentenceHead::Sop) => parts.push("SOP"),
            Some(SentenceHead::Nsp) => parts.push("NSP"),
            None => {}
        }
        if self.classifier {
            parts.push("classifier");
        }
        if self.qa {
            parts.push("QA");
        }
        parts.join(" + ")
    }
}

/// Names of a linear layer's tensors (`weight` is out × in, as in PyTorch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearNames {
    pub weight: String,
    pub bias: String,
}

/// Names of a LayerNorm's tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormNames {
    pub weight: String,
    pub bias: String,
}

impl LinearNames {
    fn at(prefix: &str) -> Self {
        LinearNames {
            weight: format!("{prefix}.weight"),
            bias: format!("{prefix}.bias"),
        }
    }
}

impl NormNames {
    fn at(prefix: &str) -> Self {
        NormNames {
            weight: format!("{prefix}.weight"),
            bias: format!("{prefix}.bias"),
        }
    }
}

/// The tensors one layer application reads (HF `AlbertLayer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNames {
    pub query: LinearNames,
    pub key: LinearNames,
    pub value: LinearNames,
    pub attention_dense: LinearNames,
    pub attention_norm: NormNames,
    pub ffn: LinearNames,
    pub ffn_output: LinearNames,
    pub output_norm: NormNames,
}

/// Canonical names outside the encoder layers.
pub mod names {
    pub const WORD_EMBEDDINGS: &str = "albert.embeddings.word_embeddings.weight";
    pub const POSITION_EMBEDDINGS: &str = "albert.embeddings.position_embeddings.weight";
    pub const TOKEN_TYPE_EMBEDDINGS: &str = "albert.embeddings.token_type_embeddings.weight";
    pub const EMBEDDINGS_NORM: &str = "albert.embeddings.LayerNorm";
    pub const MAPPING: &str = "albert.encoder.embedding_hidden_mapping_in";
    pub const POOLER: &str = "albert.pooler";
    pub const MLM_BIAS: &str = "predictions.bias";
    pub const MLM_DENSE: &str = "predictions.dense";
    pub const MLM_NORM: &str = "predictions.LayerNorm";
    /// Tied to [`WORD_EMBEDDINGS`]; accepted when reading, never written.
    pub const MLM_DECODER_WEIGHT: &str = "predictions.decoder.weight";
    /// Tied to [`MLM_BIAS`]; accepted when reading, never written.
    pub const MLM_DECODER_BIAS: &str = "predictions.decoder.bias";
    pub const SOP_CLASSIFIER: &str = "sop_classifier.classifier";
    pub const NSP_CLASSIFIER: &str = "nsp_classifier.classifier";
    pub const CLASSIFIER: &str = "classifier";
    pub const QA_OUTPUTS: &str = "qa_outputs";
    /// The prefix HF's `AlbertFor*` classes put before the base model's tensors.
    pub const BASE_PREFIX: &str = "albert.";
}

pub fn linear(prefix: &str) -> LinearNames {
    LinearNames::at(prefix)
}

pub fn norm(prefix: &str) -> NormNames {
    NormNames::at(prefix)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Attention,
    FeedForward,
}

fn block_prefix(config: &AlbertConfig, block: Block, slot: LayerSlot) -> String {
    let shared = matches!(
        (config.sharing, block),
        (Sharing::All | Sharing::None, _)
            | (Sharing::Attention, Block::Attention)
            | (Sharing::Ffn, Block::FeedForward)
    );
    if shared {
        format!(
            "albert.encoder.albert_layer_groups.{}.albert_layers.{}",
            config.group_of_layer(slot.layer),
            slot.inner
        )
    } else {
        format!(
            "albert.encoder.unshared_layers.{}.albert_layers.{}",
            slot.layer, slot.inner
        )
    }
}

/// The names of the tensors that layer application `slot` reads, under the config's sharing.
pub fn layer_names(config: &AlbertConfig, slot: LayerSlot) -> LayerNames {
    let att = block_prefix(config, Block::Attention, slot);
    let ffn = block_prefix(config, Block::FeedForward, slot);
    LayerNames {
        query: linear(&format!("{att}.attention.query")),
        key: linear(&format!("{att}.attention.key")),
        value: linear(&format!("{att}.attention.value")),
        attention_dense: linear(&format!("{att}.attention.dense")),
        attention_norm: norm(&format!("{att}.attention.LayerNorm")),
        ffn: linear(&format!("{ffn}.ffn")),
        ffn_output: linear(&format!("{ffn}.ffn_output")),
        output_norm: norm(&format!("{ffn}.full_layer_layer_norm")),
    }
}

/// Every layer application in forward order: `num_hidden_layers` repetitions, each running the
/// `inner_group_num` layers of its group (HF `AlbertTransformer.forward`).
pub fn layer_slots(config: &AlbertConfig) -> impl Iterator<Item = LayerSlot> + '_ {
    (0..config.num_hidden_layers).flat_map(move |layer| {
        (0..config.inner_group_num).map(move |inner| LayerSlot { layer, inner })
    })
}

struct InventoryBuilder {
    specs: Vec<ParamSpec>,
}

impl InventoryBuilder {
    fn push(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        component: Component,
        init: Init,
        slot: Option<LayerSlot>,
    ) {
        if let Some(existing) = self.specs.iter_mut().find(|s| s.name == name) {
            if let Some(slot) = slot {
                existing.used_by.push(slot);
            }
            return;
        }
        self.specs.push(ParamSpec {
            name: name.to_string(),
            shape,
            component,
            init,
            used_by: slot.into_iter().collect(),
        });
    }

    fn linear(
        &mut self,
        names: &LinearNames,
        out: usize,
        inp: usize,
        component: Component,
        slot: Option<LayerSlot>,
    ) {
        self.push(&names.weight, vec![out, inp], component, Init::Normal, slot);
        self.push(&names.bias, vec![out], component, Init::Zeros, slot);
    }

    fn norm(
        &mut self,
        names: &NormNames,
        size: usize,
        component: Component,
        slot: Option<LayerSlot>,
    ) {
        self.push(&names.weight, vec![size], component, Init::Ones, slot);
        self.push(&names.bias, vec![size], component, Init::Zeros, slot);
    }
}

/// The full inventory, in a stable order (embeddings, mapping, layers in first-use order, heads).
pub fn inventory(config: &AlbertConfig, parts: &Parts) -> Vec<ParamSpec> {
    let (v, e, h, i) = (
        config.vocab_size,
        config.embedding_size,
        config.hidden_size,
        config.intermediate_size,
    );
    let mut b = InventoryBuilder { specs: Vec::new() };
    let emb = Component::Embeddings;
    b.push(names::WORD_EMBEDDINGS, vec![v, e], emb, Init::Normal, None);
    b.push(
        names::POSITION_EMBEDDINGS,
        vec![config.max_position_embeddings, e],
        emb,
        Init::Normal,
        None,
    );
    b.push(
        names::TOKEN_TYPE_EMBEDDINGS,
        vec![config.type_vocab_size, e],
        emb,
        Init::Normal,
        None,
    );
    b.norm(&norm(names::EMBEDDINGS_NORM), e, emb, None);
    b.linear(&linear(names::MAPPING), h, e, Component::Mapping, None);

    for slot in layer_slots(config) {
        let n = layer_names(config, slot);
        let enc = Component::Encoder;
        let s = Some(slot);
        b.linear(&n.query, h, h, enc, s);
        b.linear(&n.key, h, h, enc, s);
        b.linear(&n.value, h, h, enc, s);
        b.linear(&n.attention_dense, h, h, enc, s);
        b.norm(&n.attention_norm, h, enc, s);
        b.linear(&n.ffn, i, h, enc, s);
        b.linear(&n.ffn_output, h, i, enc, s);
        b.norm(&n.output_norm, h, enc, s);
    }

    if parts.pooler {
        b.linear(&linear(names::POOLER), h, h, Component::Pooler, None);
    }
    if parts.mlm {
        let c = Component::MlmHead;
        b.push(names::MLM_BIAS, vec![v], c, Init::Zeros, None);
        b.linear(&linear(names::MLM_DENSE), e, h, c, None);
        b.norm(&norm(names::MLM_NORM), e, c, None);
    }
    match parts.sentence {
        Some(SentenceHead::Sop) => b.linear(
            &linear(names::SOP_CLASSIFIER),
            config.num_labels(),
            h,
            Component::SopHead,
            None,
        ),
        Some(SentenceHead::Nsp) => b.linear(
            &linear(names::NSP_CLASSIFIER),
            2,
            h,
            Component::NspHead,
            None,
        ),
        None => {}
    }
    if parts.classifier {
        b.linear(
            &linear(names::CLASSIFIER),
            config.num_labels(),
            h,
            Component::Classifier,
            None,
        );
    }
    if parts.qa {
        b.linear(&linear(names::QA_OUTPUTS), 2, h, Component::QaHead, None);
    }
    b.specs
}

/// Parameter count per component (only components present) and the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamCounts {
    pub by_component: Vec<(Component, usize)>,
    pub total: usize,
}

pub fn count(specs: &[ParamSpec]) -> ParamCounts {
    let mut by_component: Vec<(Component, usize)> = Vec::new();
    for spec in specs {
        match by_component.iter_mut().find(|(c, _)| *c == spec.component) {
            Some((_, n)) => *n += spec.numel(),
            None => by_component.push((spec.component, spec.numel())),
        }
    }
    by_component.sort_by_key(|(c, _)| *c);
    let total = by_component.iter().map(|(_, n)| n).sum();
    ParamCounts {
        by_component,
        total,
    }
}

/// The rounded figure the paper gives for this model (encoder + embeddings + pooler, V = 30000),
/// if it gives one: Table 1 for the four ALBERT sizes (all shared, E = 128), Table 3 for
/// ALBERT-base with E = 768 or 128 under each sharing strategy, and BERT-base (108M).
pub fn paper_figure(config: &AlbertConfig, parts: &Parts) -> Option<&'static str> {
    use crate::config::Preset;
    if *parts != Head::Base.parts() || config.vocab_size != 30000 || config.inner_group_num != 1 {
        return None;
    }
    let preset = Preset::ALL.into_iter().find(|p| {
        let c = p.config();
        c.num_hidden_layers == config.num_hidden_layers
            && c.hidden_size == config.hidden_size
            && c.num_attention_heads == config.num_attention_heads
            && c.intermediate_size == config.intermediate_size
            && c.max_position_embeddings == config.max_position_embeddings
            && c.type_vocab_size == config.type_vocab_size
    })?;
    let grouped = config.num_hidden_groups == 1 || config.sharing == Sharing::None;
    if !grouped {
        return None;
    }
    match (preset, config.sharing, config.embedding_size) {
        (Preset::Base, Sharing::All, 128) => Some("12M (Table 1, Table 3)"),
        (Preset::Large, Sharing::All, 128) => Some("18M (Table 1)"),
        (Preset::Xlarge, Sharing::All, 128) => Some("60M (Table 1)"),
        (Preset::Xxlarge, Sharing::All, 128) => Some("235M (Table 1)"),
        (Preset::Base, Sharing::All, 768) => Some("31M (Table 3)"),
        (Preset::Base, Sharing::Attention, 768) => Some("83M (Table 3)"),
        (Preset::Base, Sharing::Attention, 128) => Some("64M (Table 3)"),
        (Preset::Base, Sharing::Ffn, 768) => Some("57M (Table 3)"),
        (Preset::Base, Sharing::Ffn, 128) => Some("38M (Table 3)"),
        (Preset::Base, Sharing::None, 768) => Some("108M (Table 3; BERT-base)"),
        (Preset::Base, Sharing::None, 128) => Some("89M (Table 3)"),
        _ => None,
    }
}
