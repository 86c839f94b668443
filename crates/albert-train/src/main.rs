//! `albert-train`: the ALBERT trainer's command line.

use std::path::PathBuf;

use albert_core::params::{self, Component, Parts};
use albert_core::{AlbertConfig, Head, Preset, Sharing};
use albert_train::{AlbertModel, DeviceChoice};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

#[derive(Parser)]
#[command(
    name = "albert-train",
    version,
    about = "Train ALBERT (Lan et al. 2019) on libtorch, CPU or CUDA"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the parameter breakdown of a configuration, with the paper's figure beside it.
    Params(ParamsArgs),
    /// Write a randomly initialized checkpoint (config.json + model.safetensors, HF layout).
    Init(InitArgs),
    /// Train an ALBERT-style SentencePiece unigram tokenizer (tokenizer.json) on text files.
    Tokenizer(TokenizerArgs),
}

#[derive(Args)]
struct TokenizerArgs {
    /// Text files (one sentence or paragraph per line).
    #[arg(long, required = true, num_args = 1..)]
    corpus: Vec<PathBuf>,
    /// Vocabulary size, special tokens included.
    #[arg(long, default_value_t = 30000)]
    vocab_size: usize,
    /// Output tokenizer.json.
    #[arg(short, long)]
    output: PathBuf,
}

/// Which model: a preset or a config.json, with overrides.
#[derive(Args)]
struct ModelArgs {
    /// Paper size (Table 1): base, large, xlarge, xxlarge [default: base].
    #[arg(long, conflicts_with = "config")]
    preset: Option<Preset>,
    /// A Hugging Face ALBERT config.json (or a model directory holding one).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Embedding size E (the factorized embedding's width).
    #[arg(long)]
    embedding_size: Option<usize>,
    /// Cross-layer sharing: all, attention, ffn, none (paper Table 3).
    #[arg(long)]
    sharing: Option<Sharing>,
    /// Vocabulary size V.
    #[arg(long)]
    vocab_size: Option<usize>,
    /// Heads: base, masked-lm, pretraining, pretraining-nsp, sequence-classification,
    /// token-classification, question-answering.
    #[arg(long, default_value = "base")]
    head: Head,
    /// Number of labels of a classification head (sets id2label to LABEL_0..).
    #[arg(long)]
    num_labels: Option<usize>,
}

impl ModelArgs {
    fn config(&self) -> Result<AlbertConfig> {
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

    fn describe(&self, config: &AlbertConfig) -> String {
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

#[derive(Args)]
struct ParamsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output model directory.
    #[arg(short, long)]
    output: PathBuf,
    /// Random seed of the initialization.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn params_command(args: &ParamsArgs) -> Result<()> {
    let config = args.model.config()?;
    let parts: Parts = args.model.head.parts();
    let specs = params::inventory(&config, &parts);
    let counts = params::count(&specs);
    let paper = params::paper_figure(&config, &parts);
    let layer_applications = config.num_hidden_layers * config.inner_group_num;
    let stored = |needle: &str| {
        specs
            .iter()
            .filter(|s| s.component == Component::Encoder && s.name.ends_with(needle))
            .count()
    };
    let (attention_blocks, ffn_blocks) = (stored(".attention.query.weight"), stored(".ffn.weight"));

    if args.json {
        let value = serde_json::json!({
            "model": args.model.describe(&config),
            "head": args.model.head.name(),
            "components": counts.by_component.iter().map(|(c, n)| serde_json::json!({"component": format!("{c:?}"), "parameters": n})).collect::<Vec<_>>(),
            "total": counts.total,
            "tensors": specs.len(),
            "layer_applications": layer_applications,
            "stored_attention_blocks": attention_blocks,
            "stored_ffn_blocks": ffn_blocks,
            "paper": paper,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }

    println!("{}", args.model.describe(&config));
    println!("heads: {} ({})", args.model.head, parts.describe());
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["component", "parameters"]);
    for (component, n) in &counts.by_component {
        table.add_row([
            Cell::new(component.label()),
            Cell::new(thousands(*n)).set_alignment(CellAlignment::Right),
        ]);
    }
    table.add_row([
        Cell::new("total"),
        Cell::new(thousands(counts.total)).set_alignment(CellAlignment::Right),
    ]);
    println!("{table}");
    println!(
        "{} tensors; {layer_applications} layer applications use {attention_blocks} stored attention block(s) and {ffn_blocks} feed-forward block(s)",
        specs.len()
    );
    match paper {
        Some(figure) => println!("paper: {figure}"),
        None => println!("paper: no figure for this configuration"),
    }
    Ok(())
}

fn init_command(args: &InitArgs) -> Result<()> {
    let config = args.model.config()?;
    let device = args.device.resolve()?;
    tch::manual_seed(args.seed);
    let vs = tch::nn::VarStore::new(device);
    let model = AlbertModel::new(&vs, &config, args.model.head.parts())?;
    let checkpoint = model.to_checkpoint()?;
    checkpoint
        .write_dir(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} parameters, heads: {}, device: {device:?})",
        args.output.display(),
        thousands(model.num_parameters()),
        model.parts().describe()
    );
    Ok(())
}

fn tokenizer_command(args: &TokenizerArgs) -> Result<()> {
    let files: Vec<&std::path::Path> = args.corpus.iter().map(PathBuf::as_path).collect();
    let tokenizer = albert_core::tokenizer::train_unigram(&files, args.vocab_size)?;
    albert_core::tokenizer::save(&tokenizer, &args.output)?;
    println!(
        "wrote {} ({} pieces; <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4)",
        args.output.display(),
        tokenizer.get_vocab_size(true)
    );
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Params(args) => params_command(args),
        Command::Init(args) => init_command(args),
        Command::Tokenizer(args) => tokenizer_command(args),
    }
}
