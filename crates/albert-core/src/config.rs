//! `AlbertConfig`: the Hugging Face ALBERT `config.json`, read and written unchanged, plus our one
//! extension, the cross-layer sharing strategy of the paper (Lan et al. 2019, Table 3).
//!
//! Defaults are those of HF `configuration_albert.py` (which are ALBERT-xxlarge's), so a minimal
//! `config.json` means what it means to HF. Fields we do not model (`architectures`,
//! `transformers_version`, `torch_dtype`, …) are kept in `extra` and written back as they were.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::activation::{Activation, HiddenAct};
use crate::error::{AlbertError, Result};

/// How the L transformer layers share parameters (paper, Section 3.1 and Table 3).
///
/// * `all` — HF semantics exactly: layer `l` uses group `floor(l / (L / G))` of
///   `num_hidden_groups` = G groups, each of `inner_group_num` layers (ALBERT's default, G = 1).
/// * `attention` — only the attention block (Q, K, V, output dense, its LayerNorm) follows the
///   groups; the feed-forward block (ffn, ffn_output, full_layer_layer_norm) is per layer.
/// * `ffn` — only the feed-forward block follows the groups; attention is per layer.
/// * `none` — nothing shared. HF expresses this as G = L, and that is what we require, so a
///   not-shared checkpoint of ours is a plain HF ALBERT checkpoint.
///
/// The names of the per-layer tensors of `attention` and `ffn` are documented in [`crate::params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    #[default]
    All,
    Attention,
    Ffn,
    None,
}

impl Sharing {
    pub const ALL: [Sharing; 4] = [
        Sharing::All,
        Sharing::Attention,
        Sharing::Ffn,
        Sharing::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Sharing::All => "all",
            Sharing::Attention => "attention",
            Sharing::Ffn => "ffn",
            Sharing::None => "none",
        }
    }

    /// Whether HF transformers can load a checkpoint with this sharing (its names and structure).
    pub fn hf_expressible(self) -> bool {
        matches!(self, Sharing::All | Sharing::None)
    }

    fn is_all(&self) -> bool {
        *self == Sharing::All
    }
}

impl FromStr for Sharing {
    type Err = AlbertError;

    fn from_str(s: &str) -> Result<Self> {
        Sharing::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| AlbertError::UnknownName {
                what: "sharing strategy",
                found: s.to_string(),
                expected: "all, attention, ffn, none".to_string(),
            })
    }
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The ALBERT sizes of the paper's Table 1 (as published on the HF hub as `albert-*-v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    Base,
    Large,
    Xlarge,
    Xxlarge,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::Base, Preset::Large, Preset::Xlarge, Preset::Xxlarge];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Base => "base",
            Preset::Large => "large",
            Preset::Xlarge => "xlarge",
            Preset::Xxlarge => "xxlarge",
        }
    }

    /// The configuration: V = 30000, E = 128 and the paper's L, H, heads, FFN size.
    pub fn config(self) -> AlbertConfig {
        // (layers, hidden, heads, intermediate) from Table 1 and the HF v2 configs.
        let (l, h, a, i) = match self {
            Preset::Base => (12, 768, 12, 3072),
            Preset::Large => (24, 1024, 16, 4096),
            Preset::Xlarge => (24, 2048, 16, 8192),
            Preset::Xxlarge => (12, 4096, 64, 16384),
        };
        AlbertConfig {
            num_hidden_layers: l,
            hidden_size: h,
            num_attention_heads: a,
            intermediate_size: i,
            ..AlbertConfig::default()
        }
    }
}

impl FromStr for Preset {
    type Err = AlbertError;

    fn from_str(s: &str) -> Result<Self> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| AlbertError::UnknownName {
                what: "preset",
                found: s.to_string(),
                expected: "base, large, xlarge, xxlarge".to_string(),
            })
    }
}

/// `eos_token_id` is an integer or a list of integers in HF configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(i64),
    Many(Vec<i64>),
}

/// The largest size a config may give (vocabulary, widths, positions): far above any published
/// model (ALBERT-xxlarge: 16384), and small enough that every parameter count of a valid config
/// fits in a `usize` without overflow.
pub const MAX_DIM: usize = 1 << 24;
/// The most layers, and layer modules (`num_hidden_groups × inner_group_num`), a config may have:
/// the parameter inventory lists each module's tensors, so a `config.json` claiming 2^40 layers
/// would otherwise make every loader spin building it.
pub const MAX_LAYERS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlbertConfig {
    pub model_type: String,
    pub vocab_size: usize,
    pub embedding_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_hidden_groups: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub inner_group_num: usize,
    pub hidden_act: HiddenAct,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub initializer_range: f64,
    pub layer_norm_eps: f64,
    pub classifier_dropout_prob: Option<f64>,
    pub pad_token_id: Option<i64>,
    pub bos_token_id: Option<i64>,
    pub eos_token_id: Option<TokenIds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, i64>>,
    /// Our extension (absent from HF configs, which then mean `all`); written only when not `all`.
    #[serde(skip_serializing_if = "Sharing::is_all")]
    pub sharing: Sharing,
    /// Every other field, kept as read.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl Default for AlbertConfig {
    /// HF `AlbertConfig()` defaults (ALBERT-xxlarge sizes).
    fn default() -> Self {
        AlbertConfig {
            model_type: "albert".to_string(),
            vocab_size: 30000,
            embedding_size: 128,
            hidden_size: 4096,
            num_hidden_layers: 12,
            num_hidden_groups: 1,
            num_attention_heads: 64,
            intermediate_size: 16384,
            inner_group_num: 1,
            hidden_act: HiddenAct::new(Activation::GeluTanh),
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            classifier_dropout_prob: Some(0.1),
            pad_token_id: Some(0),
            bos_token_id: Some(2),
            eos_token_id: Some(TokenIds::One(3)),
            id2label: None,
            label2id: None,
            sharing: Sharing::All,
            extra: serde_json::Map::new(),
        }
    }
}

impl AlbertConfig {
    /// Parses a `config.json` text; `origin` names the file in errors.
    pub fn from_json_str(text: &str, origin: &Path) -> Result<Self> {
        let config: AlbertConfig = crate::fsutil::parse_json(text, origin)?;
        config.validate().map_err(|e| match e {
            AlbertError::InvalidConfig {
                field,
                expected,
                found,
            } => AlbertError::ConfigField {
                path: origin.to_path_buf(),
                field,
                message: format!("expected {expected}, found {found}"),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Reads a `config.json` file, or `config.json` inside a model directory.
    pub fn from_file(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            path.join("config.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&path).map_err(|e| AlbertError::io(&path, e))?;
        Self::from_json_str(&text, &path)
    }

    pub fn to_json_string(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Writes `config.json` atomically (temporary file in the same directory, then rename).
    pub fn write_file(&self, path: &Path) -> Result<()> {
        crate::fsutil::write_atomic(path, self.to_json_string().as_bytes())
    }

    /// Applies a sharing strategy. `none` sets `num_hidden_groups` to the number of layers, which
    /// is how HF expresses "not shared" (and what [`AlbertConfig::validate`] requires).
    pub fn with_sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = sharing;
        if sharing == Sharing::None {
            self.num_hidden_groups = self.num_hidden_layers;
        }
        self
    }

    pub fn with_embedding_size(mut self, embedding_size: usize) -> Self {
        self.embedding_size = embedding_size;
        self
    }

    pub fn activation(&self) -> Activation {
        self.hidden_act.activation
    }

    /// The number of labels of classification heads: the size of `id2label`, else HF's default 2.
    pub fn num_labels(&self) -> usize {
        self.id2label.as_ref().map_or(2, |m| m.len())
    }

    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// The group whose parameters layer `layer` uses, exactly as HF computes it
    /// (`int(i / (num_hidden_layers / num_hidden_groups))`, in floating point).
    pub fn group_of_layer(&self, layer: usize) -> usize {
        let per_group = self.num_hidden_layers as f64 / self.num_hidden_groups as f64;
        ((layer as f64 / per_group) as usize).min(self.num_hidden_groups - 1)
    }

    /// Checks the relations HF relies on; errors name the field, the expectation and the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, expected: String, found: String| {
            Err(AlbertError::InvalidConfig {
                field: field.to_string(),
                expected,
                found,
            })
        };
        if self.model_type != "albert" {
            return bad(
                "model_type",
                "\"albert\"".into(),
                format!("{:?}", self.model_type),
            );
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("embedding_size", self.embedding_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_hidden_groups", self.num_hidden_groups),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("inner_group_num", self.inner_group_num),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return bad(field, "a positive integer".into(), "0".into());
            }
            if value > MAX_DIM {
                return bad(field, format!("at most {MAX_DIM}"), value.to_string());
            }
        }
        let modules = self.num_hidden_groups.saturating_mul(self.inner_group_num);
        if self.num_hidden_layers > MAX_LAYERS || modules > MAX_LAYERS {
            return bad(
                "num_hidden_layers",
                format!(
                    "at most {MAX_LAYERS} layers and layer modules (num_hidden_groups × inner_group_num)"
                ),
                format!("{} layers, {modules} modules", self.num_hidden_layers),
            );
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(
                "num_attention_heads",
                format!("a divisor of hidden_size ({})", self.hidden_size),
                self.num_attention_heads.to_string(),
            );
        }
        if self.num_hidden_groups > self.num_hidden_layers {
            return bad(
                "num_hidden_groups",
                format!("at most num_hidden_layers ({})", self.num_hidden_layers),
                self.num_hidden_groups.to_string(),
            );
        }
        if self.sharing == Sharing::None && self.num_hidden_groups != self.num_hidden_layers {
            return bad(
                "num_hidden_groups",
                format!(
                    "num_hidden_layers ({}) when sharing is \"none\" (HF's way of saying not shared)",
                    self.num_hidden_layers
                ),
                self.num_hidden_groups.to_string(),
            );
        }
        for (field, p) in [
            ("hidden_dropout_prob", Some(self.hidden_dropout_prob)),
            (
                "attention_probs_dropout_prob",
                Some(self.attention_probs_dropout_prob),
            ),
            ("classifier_dropout_prob", self.classifier_dropout_prob),
        ] {
            if let Some(p) = p
                && !(0.0..1.0).contains(&p)
            {
                return bad(field, "a probability in [0, 1)".into(), p.to_string());
            }
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return bad(
                "layer_norm_eps",
                "a positive number".into(),
                self.layer_norm_eps.to_string(),
            );
        }
        if let Some(pad) = self.pad_token_id
            && (pad < 0 || pad as usize >= self.vocab_size)
        {
            return bad(
                "pad_token_id",
                format!("an id below vocab_size ({})", self.vocab_size),
                pad.to_string(),
            );
        }
        if let (Some(id2label), Some(label2id)) = (&self.id2label, &self.label2id)
            && id2label.len() != label2id.len()
        {
            return bad(
                "label2id",
                format!("as many labels as id2label ({})", id2label.len()),
                label2id.len().to_string(),
            );
        }
        if let Some(id2label) = &self.id2label {
            for key in id2label.keys() {
                match key.parse::<usize>() {
                    Ok(i) if i < id2label.len() => {}
                    _ => {
                        return bad(
                            "id2label",
                            format!("keys \"0\"..\"{}\"", id2label.len().saturating_sub(1)),
                            format!("key {key:?}"),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
