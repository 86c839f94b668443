//! `albert-train`: the ALBERT trainer's command line.

use std::path::PathBuf;

use albert_core::params::{self, Component, Parts};
use albert_core::{AlbertConfig, Head, Preset, Sharing, Task};
use albert_train::{AlbertModel, DeviceChoice};
use anyhow::{Context, Result, bail};
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
    /// Pretrain with MLM (n-gram masking) and SOP, NSP or no sentence objective.
    Pretrain(Box<PretrainArgs>),
    /// Fine-tune a checkpoint for sequence classification (texts or pairs), token classification
    /// or question answering from CSV or JSON lines, keeping the best epoch by validation metric.
    Finetune(Box<FinetuneArgs>),
    /// Held-out MLM accuracy, and SOP and NSP accuracy with the model's own head and with a
    /// linear probe on frozen [CLS] features (the paper's Table 5 measurements).
    Evaluate(EvaluateArgs),
    /// Draw the held-out curves (MLM accuracy and loss, SOP/NSP accuracy) of several runs into
    /// one SVG chart, to compare them.
    Curves(CurvesArgs),
}

#[derive(Args)]
struct CurvesArgs {
    /// A run to draw, as LABEL=PATH: a pretraining output directory (its metrics.jsonl) or a
    /// metrics.jsonl file. Repeat for each run; the legend keeps this order.
    #[arg(long = "run", required = true, value_name = "LABEL=PATH")]
    runs: Vec<String>,
    /// The SVG file to write.
    #[arg(short, long)]
    output: PathBuf,
}

fn curves_command(args: &CurvesArgs) -> Result<()> {
    use albert_train::chart::{ChartRun, write_comparison_chart};
    let mut runs = Vec::new();
    for item in &args.runs {
        let Some((label, path)) = item
            .split_once('=')
            .filter(|(l, p)| !l.is_empty() && !p.is_empty())
        else {
            bail!("--run {item:?}: expected LABEL=PATH (e.g. sop=runs/experiments/objective-sop)");
        };
        let path = PathBuf::from(path);
        let metrics = if path.is_dir() {
            path.join(albert_train::pretrain::METRICS_FILE)
        } else {
            path
        };
        if !metrics.is_file() {
            bail!(
                "--run {item:?}: {} not found (expected a run directory with metrics.jsonl, or the file)",
                metrics.display()
            );
        }
        runs.push(ChartRun {
            label: label.to_string(),
            metrics,
        });
    }
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {} for --output", parent.display()))?;
    }
    write_comparison_chart(&runs, &args.output).map_err(anyhow::Error::msg)?;
    println!("wrote {}", args.output.display());
    Ok(())
}

#[derive(Args)]
struct EvaluateArgs {
    /// A pretrained checkpoint with its tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// Held-out text: one sentence per line, a blank line between documents.
    #[arg(long, required = true, num_args = 1..)]
    eval: Vec<PathBuf>,
    /// Text the SOP and NSP probes are trained on (e.g. the training corpus).
    #[arg(long, required = true, num_args = 1..)]
    probe_train: Vec<PathBuf>,
    #[arg(long, default_value_t = 128)]
    max_seq_length: usize,
    /// Held-out examples per measurement (at most).
    #[arg(long, default_value_t = 2000)]
    examples: usize,
    /// Probe-training examples per task (at most).
    #[arg(long, default_value_t = 4000)]
    probe_examples: usize,
    /// Full-batch Adam steps of each probe.
    #[arg(long, default_value_t = 300)]
    probe_steps: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn evaluate_command(args: &EvaluateArgs) -> Result<()> {
    use albert_train::evaluate::{EvaluateOptions, evaluate};
    let options = EvaluateOptions {
        model: args.model.clone(),
        eval_files: args.eval.clone(),
        probe_train_files: args.probe_train.clone(),
        max_seq_length: args.max_seq_length,
        examples: args.examples,
        probe_examples: args.probe_examples,
        probe_steps: args.probe_steps,
        batch_size: args.batch_size,
        seed: args.seed,
        device: args.device.resolve()?,
    };
    let report = evaluate(&options)?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "task",
        "own head",
        "other task's head",
        "linear probe",
        "chance",
        "held-out examples",
    ]);
    let figure = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    table.add_row(vec![
        Cell::new("MLM"),
        Cell::new(figure(report.mlm_accuracy)).set_alignment(CellAlignment::Right),
        Cell::new("-"),
        Cell::new("-"),
        Cell::new("-"),
        Cell::new(format!("{} predictions", report.mlm_predictions)),
    ]);
    for (name, s) in [("SOP", report.sop), ("NSP", report.nsp)] {
        table.add_row(vec![
            Cell::new(name),
            Cell::new(figure(s.head)).set_alignment(CellAlignment::Right),
            Cell::new(figure(s.other_head)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.4}", s.probe)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.4}", s.chance)).set_alignment(CellAlignment::Right),
            Cell::new(s.held_out_examples).set_alignment(CellAlignment::Right),
        ]);
    }
    println!(
        "{} (trained objective: {})",
        args.model.display(),
        report.trained_objective
    );
    println!("{table}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        albert_core::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `--task`: one of the tasks fine-tuning trains a head for (`Task::FINE_TUNING`).
fn finetune_task() -> impl clap::builder::TypedValueParser<Value = Task> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Task::FINE_TUNING.map(Task::name))
        .try_map(|name| name.parse::<Task>())
}

#[derive(Args)]
struct FinetuneArgs {
    /// The starting checkpoint (ours or Hugging Face's), with its tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// What to train: a label per text (or pair), a tag per word, or an answer span.
    #[arg(long, value_parser = finetune_task(), default_value = "sequence-classification")]
    task: Task,
    /// Training examples: .csv (with a header) or .jsonl.
    #[arg(long)]
    train: PathBuf,
    /// Validation examples [default: --validation-fraction of --train, split with --seed].
    #[arg(long)]
    validation: Option<PathBuf>,
    #[arg(long, default_value_t = 0.1)]
    validation_fraction: f64,
    /// Test examples, scored once with the best epoch's weights (never used to choose it).
    #[arg(long)]
    test: Option<PathBuf>,
    /// sequence-classification: the text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// sequence-classification: the second text of pairs (omit for single texts).
    #[arg(long)]
    pair_column: Option<String>,
    /// sequence-classification: the label.
    #[arg(long, default_value = "label")]
    label_column: String,
    /// token-classification: the words (a JSON array, or whitespace-separated in CSV).
    #[arg(long, default_value = "tokens")]
    tokens_column: String,
    /// token-classification: one tag per word (same forms), e.g. BIO tags.
    #[arg(long, default_value = "tags")]
    tags_column: String,
    /// question-answering: the question.
    #[arg(long, default_value = "question")]
    question_column: String,
    /// question-answering: the context the answer is taken from.
    #[arg(long, default_value = "context")]
    context_column: String,
    /// question-answering: SQuAD's {"text": [...], "answer_start": [...]} (JSON text in CSV).
    #[arg(long, default_value = "answers")]
    answers_column: String,
    /// question-answering: tokens shared by consecutive windows of a long context.
    #[arg(long, default_value_t = albert_core::qa::DOC_STRIDE)]
    doc_stride: usize,
    /// question-answering: longest answer considered at validation, in tokens.
    #[arg(long, default_value_t = 30)]
    max_answer_length: usize,
    /// Output directory (best/, metrics.jsonl, curves.svg).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, default_value_t = 128)]
    max_seq_length: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 0.1)]
    warmup_fraction: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Stop after this many epochs without a better validation metric (accuracy, entity F1 or
    /// SQuAD F1).
    #[arg(long, default_value_t = 2)]
    patience: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Export the best checkpoint to ONNX (<output>/onnx, the task's head).
    #[arg(long)]
    export: bool,
}

/// Reads `--train`, `--validation` and `--test` with `read`; without `--validation`, splits
/// `--validation-fraction` off the training examples (shuffled with `--seed`).
fn read_splits<T>(
    args: &FinetuneArgs,
    read: impl Fn(&std::path::Path) -> albert_train::Result<Vec<T>>,
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut train = read(&args.train)?;
    let validation = match &args.validation {
        Some(path) => read(path)?,
        None => {
            if !(0.0..1.0).contains(&args.validation_fraction) || args.validation_fraction == 0.0 {
                bail!(
                    "--validation-fraction must lie in (0, 1), got {}",
                    args.validation_fraction
                );
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x5eed);
            train.shuffle(&mut rng);
            let n = ((train.len() as f64) * args.validation_fraction)
                .round()
                .max(1.0) as usize;
            if n >= train.len() {
                bail!(
                    "{}: {} example(s) are too few to split off a validation set",
                    args.train.display(),
                    train.len()
                );
            }
            train.split_off(train.len() - n)
        }
    };
    let test = match &args.test {
        Some(path) => read(path)?,
        None => Vec::new(),
    };
    Ok((train, validation, test))
}

fn finetune_command(args: &FinetuneArgs) -> Result<()> {
    use albert_train::finetune::{
        Columns, FinetuneOptions, QaColumns, TagColumns, TaskData, finetune, read_examples,
        read_qa_examples, read_tagged_examples,
    };
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    let data = match args.task {
        Task::SequenceClassification => {
            let columns = Columns {
                text: args.text_column.clone(),
                pair: args.pair_column.clone(),
                label: args.label_column.clone(),
            };
            let (train, validation, test) = read_splits(args, |p| read_examples(p, &columns))?;
            TaskData::Sequence {
                train,
                validation,
                test,
            }
        }
        Task::TokenClassification => {
            let columns = TagColumns {
                words: args.tokens_column.clone(),
                tags: args.tags_column.clone(),
            };
            let (train, validation, test) =
                read_splits(args, |p| read_tagged_examples(p, &columns))?;
            TaskData::Tokens {
                train,
                validation,
                test,
            }
        }
        Task::QuestionAnswering => {
            let columns = QaColumns {
                question: args.question_column.clone(),
                context: args.context_column.clone(),
                answers: args.answers_column.clone(),
            };
            let (train, validation, test) = read_splits(args, |p| read_qa_examples(p, &columns))?;
            TaskData::Answers {
                train,
                validation,
                test,
                doc_stride: args.doc_stride,
                max_answer_length: args.max_answer_length,
            }
        }
        Task::Base | Task::MaskedLm | Task::Pretraining => bail!(
            "--task {}: fine-tuning trains one of {}",
            args.task.name(),
            Task::FINE_TUNING.map(Task::name).join(", ")
        ),
    };
    let device = args.device.resolve()?;
    let (n_train, n_validation, n_test) = data.sizes();
    let options = FinetuneOptions {
        model: args.model.clone(),
        data,
        output: args.output.clone(),
        max_seq_length: args.max_seq_length,
        batch_size: args.batch_size,
        epochs: args.epochs,
        learning_rate: args.lr,
        warmup_fraction: args.warmup_fraction,
        weight_decay: args.weight_decay,
        patience: args.patience,
        seed: args.seed,
        device,
        progress: true,
    };
    println!(
        "fine-tuning {} for {} on {device:?}: {n_train} training, {n_validation} validation and {n_test} test examples",
        args.model.display(),
        options.data.head().name(),
    );
    let summary = finetune(&options, Arc::new(AtomicBool::new(false)))?;
    if !summary.labels.is_empty() {
        println!("labels: {}", summary.labels.join(", "));
    }
    let (metric, value) = summary.best.main();
    let others: Vec<String> = summary.best.metrics[1..]
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    println!(
        "best validation {metric} {value:.4} at epoch {} of {}{}",
        summary.best_epoch,
        summary.epochs_run,
        if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join(", "))
        }
    );
    if let Some(test) = &summary.test {
        let figures: Vec<String> = test
            .metrics
            .iter()
            .map(|(n, v)| format!("{n} {v:.4}"))
            .collect();
        println!("test (best epoch): {}", figures.join(", "));
    }
    if let Some((what, score)) = &summary.baseline {
        println!("baseline (validation): {what}: {score:.4}");
    }
    println!("best checkpoint: {}", summary.best_checkpoint.display());
    if args.export {
        let out = args.output.join("onnx");
        let exported = albert_onnx::export_dir(
            &summary.best_checkpoint,
            &out,
            &albert_onnx::ExportOptions::default(),
        )?;
        println!(
            "exported {} ({})",
            exported.model_path.display(),
            exported.task
        );
    }
    Ok(())
}

#[derive(Args)]
struct PretrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Training text: one sentence per line, a blank line between documents.
    #[arg(long, required = true, num_args = 1..)]
    train: Vec<PathBuf>,
    /// Held-out text, same format, evaluated every --eval-every steps.
    #[arg(long, num_args = 1..)]
    eval: Vec<PathBuf>,
    /// tokenizer.json (see `albert-train tokenizer`); V is taken from it unless --config sets it.
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory (checkpoints, metrics.jsonl, curves.svg).
    #[arg(short, long)]
    output: PathBuf,
    /// Sentence objective: sop, nsp or none.
    #[arg(long, default_value = "sop")]
    objective: albert_train::data::Objective,
    #[arg(long, default_value_t = 128)]
    max_seq_length: usize,
    #[arg(long, default_value_t = 20)]
    max_predictions: usize,
    #[arg(long, default_value_t = 0.1)]
    short_seq_prob: f64,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Micro-batches per optimizer step (effective batch = batch-size × accumulation).
    #[arg(long, default_value_t = 1)]
    accumulation: usize,
    /// Optimizer steps (the learning-rate schedule's length).
    #[arg(long)]
    steps: u64,
    /// Stop after this step with a checkpoint, keeping the --steps schedule (--resume finishes it).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    stop_after: Option<u64>,
    /// lamb or adamw.
    #[arg(long, default_value = "lamb")]
    optimizer: albert_train::optim::OptimizerKind,
    /// Peak learning rate (the paper: 0.00176 at batch 4096).
    #[arg(long, default_value_t = 0.00176)]
    lr: f64,
    /// Linear warm-up steps [default: 2% of --steps].
    #[arg(long)]
    warmup_steps: Option<u64>,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    #[arg(long, default_value_t = 500)]
    eval_every: u64,
    #[arg(long, default_value_t = 20)]
    eval_batches: usize,
    #[arg(long, default_value_t = 1000)]
    save_every: u64,
    /// Checkpoints to keep.
    #[arg(long, default_value_t = 3)]
    keep: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Continue from the newest checkpoint in --output (optimizer, step, data position).
    #[arg(long)]
    resume: bool,
    /// Start from this checkpoint's weights (trained with the same --tokenizer) with a fresh
    /// optimizer and schedule: continued pretraining.
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Export the final checkpoint to ONNX (<output>/onnx) at the end.
    #[arg(long)]
    export: bool,
    /// Mixed precision: bf16 matrix products, f32 weights, norms and losses (meant for CUDA).
    #[arg(long)]
    bf16: bool,
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
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
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

fn pretrain_command(args: &PretrainArgs) -> Result<()> {
    use albert_train::data::{InstanceOptions, MaskingOptions};
    use albert_train::optim::OptimizerOptions;
    use albert_train::pretrain::{PretrainOptions, pretrain};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let tokenizer = albert_core::tokenizer::load(&args.tokenizer)?;
    let mut config = args.model.config()?;
    if args.model.config.is_none() && args.model.vocab_size.is_none() {
        config.vocab_size = tokenizer.get_vocab_size(true);
    }
    config.max_position_embeddings = config.max_position_embeddings.max(args.max_seq_length);
    let device = args.device.resolve()?;
    let options = PretrainOptions {
        config,
        tokenizer: args.tokenizer.clone(),
        train_files: args.train.clone(),
        eval_files: args.eval.clone(),
        output: args.output.clone(),
        instances: InstanceOptions {
            max_seq_length: args.max_seq_length,
            short_seq_prob: args.short_seq_prob,
            objective: args.objective,
            masking: MaskingOptions {
                max_predictions: args.max_predictions,
                ..MaskingOptions::default()
            },
        },
        batch_size: args.batch_size,
        accumulation: args.accumulation,
        steps: args.steps,
        stop_after: args.stop_after,
        optimizer: OptimizerOptions {
            kind: args.optimizer,
            weight_decay: args.weight_decay,
            ..OptimizerOptions::default()
        },
        learning_rate: args.lr,
        warmup_steps: args.warmup_steps.unwrap_or(args.steps / 50),
        clip: args.clip,
        eval_every: args.eval_every,
        eval_batches: args.eval_batches,
        save_every: args.save_every,
        keep: args.keep,
        seed: args.seed,
        device,
        resume: args.resume,
        init_from: args.init_from.clone(),
        progress: true,
        bf16: args.bf16,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        // Ctrl-C, and with ctrlc's `termination` feature SIGTERM and SIGHUP (`kill`, a closed
        // terminal, a machine shutting down): the run stops at a step boundary with a checkpoint.
        eprintln!(
            "\nstopping after this step (a checkpoint is saved first; Ctrl-C again to quit now)"
        );
    })
    .context("installing the Ctrl-C / termination handler")?;
    println!(
        "pretraining on {device:?}: {} parameters, objective {}, {} optimizer steps of {} × {} sequences of ≤ {} tokens",
        thousands(
            params::count(&params::inventory(
                &options.config,
                &albert_train::pretrain::parts_for(args.objective)
            ))
            .total
        ),
        args.objective,
        args.steps,
        args.batch_size,
        args.accumulation,
        args.max_seq_length
    );
    let summary = pretrain(&options, Arc::clone(&stop))?;
    println!(
        "{} at step {}: train loss {:.3}, MLM accuracy {:.3}, {} accuracy {:.3}; {:.0} tokens/s",
        if summary.stopped_early {
            "stopped"
        } else {
            "done"
        },
        summary.steps,
        summary.train.loss,
        summary.train.mlm_accuracy,
        args.objective,
        summary.train.sentence_accuracy,
        summary.tokens_per_second
    );
    if let Some(eval) = summary.eval {
        println!(
            "held-out: loss {:.3}, MLM accuracy {:.3}, {} accuracy {:.3}",
            eval.loss, eval.mlm_accuracy, args.objective, eval.sentence_accuracy
        );
    }
    println!("checkpoint: {}", summary.last_checkpoint.display());
    println!(
        "curves: {}",
        args.output
            .join(albert_train::pretrain::CHART_FILE)
            .display()
    );
    if args.export && !summary.stopped_early {
        let out = args.output.join("onnx");
        let exported = albert_onnx::export_dir(
            &summary.last_checkpoint,
            &out,
            &albert_onnx::ExportOptions::default(),
        )?;
        println!(
            "exported {} ({}, {} bytes)",
            exported.model_path.display(),
            exported.task,
            exported.file_bytes
        );
    }
    if stop.load(Ordering::SeqCst) {
        // Interrupted (not --stop-after): exit as a signal would, so that scripts stop too.
        eprintln!("interrupted; --resume continues from the checkpoint");
        std::process::exit(130);
    }
    Ok(())
}

fn main() -> Result<()> {
    // Before libtorch starts its worker threads, so that they inherit it (see the module).
    albert_train::denormals::flush_denormals_to_zero();
    let cli = Cli::parse();
    match &cli.command {
        Command::Params(args) => params_command(args),
        Command::Init(args) => init_command(args),
        Command::Tokenizer(args) => tokenizer_command(args),
        Command::Pretrain(args) => pretrain_command(args),
        Command::Finetune(args) => finetune_command(args),
        Command::Evaluate(args) => evaluate_command(args),
        Command::Curves(args) => curves_command(args),
    }
}
