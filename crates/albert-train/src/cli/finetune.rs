//! `albert-train finetune`: a new task head trained on CSV or JSON lines, the best epoch kept.

use std::path::PathBuf;

use albert_core::Task;
use albert_train::DeviceChoice;
use anyhow::{Result, bail};
use clap::Args;

/// `--task`: one of the tasks fine-tuning trains a head for (`Task::FINE_TUNING`).
fn finetune_task() -> impl clap::builder::TypedValueParser<Value = Task> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Task::FINE_TUNING.map(Task::name))
        .try_map(|name| name.parse::<Task>())
}

#[derive(Args)]
pub(crate) struct FinetuneArgs {
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

pub(crate) fn finetune_command(args: &FinetuneArgs) -> Result<()> {
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
