//! The model flags `params` and `init` share: a preset or a config, and what to change in it.

use std::path::PathBuf;

use albert_core::{AlbertConfig, Head, Preset, Sharing};
use anyhow::{Context, Result};
use clap::Args;

/// Which model: a preset or a config.json, with overrides.
#[derive(Args)]
pub(crate) struct ModelArgs {
    /// Paper size (Table 1): base, large, xlarge, xxlarge [default: base].
    #[arg(long, conflicts_with = "config")]
    pub(crate) preset: Option<Preset>,
    /// A Hugging Face ALBERT config.json (or a model directory holding one).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Embedding size E (the factorized embedding's width).
    #[arg(long)]
    pub(crate) embedding_size: Option<usize>,
    /// Cross-layer sharing: all, attention, ffn, none (paper Table 3).
    #[arg(long)]
    pub(crate) sharing: Option<Sharing>,
    /// Vocabulary size V.
    #[arg(long)]
    pub(crate) vocab_size: Option<usize>,
    /// Heads: base, masked-lm, pretraining, pretraining-nsp, sequence-classification,
    /// token-classification, question-answering.
    #[arg(long, default_value = "base")]
    pub(crate) head: Head,
    /// Number of labels of a classification head (sets id2label to LABEL_0..).
    #[arg(long)]
    pub(crate) num_labels: Option<usize>,
}

impl ModelArgs {
    pub(crate) fn config(&self) -> Result<AlbertConfig> {
        let mut config = match &self.config {
            Some(path) => AlbertConfig::from_file(path)?,
            None => self.preset.unwrap_or(Preset::Base).config(),
        };
        if let Some(e) = self.embedding_size {
            config = config.with_embedding_size(e);
        }
        if let Some(v) = self.vocab_size {
            config.vocab_size = v;
        }
        if let Some(sharing) = self.sharing {
            config = config.with_sharing(sharing);
        }
        if let Some(n) = self.num_labels {
            config.id2label = Some(
                (0..n)
                    .map(|i| (i.to_string(), format!("LABEL_{i}")))
                    .collect(),
            );
            config.label2id = Some((0..n).map(|i| (format!("LABEL_{i}"), i as i64)).collect());
        }
        config
            .validate()
            .context("the resulting configuration is invalid")?;
        Ok(config)
    }

    pub(crate) fn describe(&self, config: &AlbertConfig) -> String {
        let origin = match (&self.config, self.preset) {
            (Some(p), _) => p.display().to_string(),
            (None, p) => format!("ALBERT {}", p.unwrap_or(Preset::Base).name()),
        };
        format!(
            "{origin}: V={} E={} H={} L={} heads={} FFN={} groups={} inner={} sharing={} act={}",
            config.vocab_size,
            config.embedding_size,
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            config.intermediate_size,
            config.num_hidden_groups,
            config.inner_group_num,
            config.sharing,
            config.hidden_act.name
        )
    }
}
