//! Fine-tuning for the HF task heads, from CSV or JSON lines:
//!
//! * [`sequence`]: sequence classification (HF `AlbertForSequenceClassification`: the pooled
//!   `[CLS]` vector through dropout and a linear layer), single texts or pairs; accuracy.
//! * [`tokens`]: token classification (`AlbertForTokenClassification`: every token's hidden
//!   state through dropout and a linear layer), words with one tag each, the label on each word's
//!   first piece; entity F1 for BIO tags, else word accuracy.
//! * [`answers`]: extractive question answering (`AlbertForQuestionAnswering`: start and end
//!   logits per token), SQuAD-style data, long contexts in overlapping windows; SQuAD exact
//!   match and F1.
//!
//! One loop for all three: AdamW with warm-up and linear decay, validation every epoch, early
//! stopping on the task's metric, the best epoch kept in the HF layout (with `id2label` /
//! `label2id` for the classifiers and the tokenizer beside it), `metrics.jsonl` and `curves.svg`.

pub mod answers;
mod data;
pub mod metrics;
pub mod sequence;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use albert_core::{AlbertConfig, Checkpoint, Head};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use tch::{Device, Tensor, nn};

pub use answers::{QaColumns, QaExample, read_qa_examples};
pub use sequence::{Columns, Example, read_examples};
pub use tokens::{TagColumns, TaggedExample, read_tagged_examples};

use crate::error::{Result, TrainError};
use crate::metrics_log::{self, FinetuneEval, FinetuneStep};
use crate::model::AlbertModel;
use crate::optim::{Optimizer, OptimizerKind, OptimizerOptions, Schedule};

/// The examples of one task: training, validation (early stopping, best epoch) and test (scored
/// once, with the best epoch's weights; may be empty).
#[derive(Debug, Clone)]
pub enum TaskData {
    /// Sequence classification.
    Sequence {
        train: Vec<Example>,
        validation: Vec<Example>,
        test: Vec<Example>,
    },
    /// Token classification.
    Tokens {
        train: Vec<TaggedExample>,
        validation: Vec<TaggedExample>,
        test: Vec<TaggedExample>,
    },
    /// Extractive question answering.
    Answers {
        train: Vec<QaExample>,
        validation: Vec<QaExample>,
        test: Vec<QaExample>,
        /// Tokens shared by consecutive windows of a long context (HF's `doc_stride`).
        doc_stride: usize,
        /// Longest answer considered at evaluation, in tokens (HF's `max_answer_length`).
        max_answer_length: usize,
    },
}

impl TaskData {
    /// The head this data trains.
    pub fn head(&self) -> Head {
        match self {
            TaskData::Sequence { .. } => Head::SequenceClassification,
            TaskData::Tokens { .. } => Head::TokenClassification,
            TaskData::Answers { .. } => Head::QuestionAnswering,
        }
    }

    /// (training, validation, test) example counts.
    pub fn sizes(&self) -> (usize, usize, usize) {
        match self {
            TaskData::Sequence {
                train,
                validation,
                test,
            } => (train.len(), validation.len(), test.len()),
            TaskData::Tokens {
                train,
                validation,
                test,
            } => (train.len(), validation.len(), test.len()),
            TaskData::Answers {
                train,
                validation,
                test,
                ..
            } => (train.len(), validation.len(), test.len()),
        }
    }
}

/// Options of [`finetune`].
#[derive(Debug, Clone)]
pub struct FinetuneOptions {
    /// The starting checkpoint (ours or HF's), with its tokenizer.json.
    pub model: PathBuf,
    pub data: TaskData,
    pub output: PathBuf,
    pub max_seq_length: usize,
    pub batch_size: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub warmup_fraction: f64,
    pub weight_decay: f64,
    /// Stop after this many epochs without a better validation metric.
    pub patience: usize,
    pub seed: u64,
    pub device: Device,
    pub progress: bool,
}

/// Validation figures of one epoch.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub loss: f64,
    /// The metrics, by name; the first is the one early stopping watches.
    pub metrics: Vec<(&'static str, f64)>,
}

impl Evaluation {
    /// Its line of metrics.jsonl (`step`: validation's step; the test set has none).
    fn record(&self, step: Option<u64>, epoch: usize) -> FinetuneEval {
        FinetuneEval {
            step,
            epoch,
            loss: self.loss,
            metrics: self.metrics.iter().copied().collect(),
        }
    }

    /// The metric early stopping watches: (name, value).
    pub fn main(&self) -> (&'static str, f64) {
        self.metrics
            .first()
            .copied()
            .unwrap_or(("loss", -self.loss))
    }
}

/// What [`finetune`] did.
#[derive(Debug, Clone)]
pub struct FinetuneSummary {
    pub head: Head,
    /// The classifier's labels in id order (empty for question answering).
    pub labels: Vec<String>,
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// The best epoch's validation figures.
    pub best: Evaluation,
    /// The test set's figures with the best epoch's weights (when there is a test set).
    pub test: Option<Evaluation>,
    pub best_checkpoint: PathBuf,
    /// What a model that ignores its input scores on the validation metric, with what it does
    /// (e.g. always the most frequent label), where there is such a baseline.
    pub baseline: Option<(String, f64)>,
    pub train_losses: Vec<f64>,
    /// Training features: examples, or windows of long QA contexts.
    pub train_features: usize,
}

/// Inputs of one encoded sequence, unpadded.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub ids: Vec<i64>,
    pub types: Vec<i64>,
}

impl Inputs {
    pub fn from_encoding(encoding: &tokenizers::Encoding) -> Self {
        Inputs {
            ids: encoding.get_ids().iter().map(|&i| i64::from(i)).collect(),
            types: encoding
                .get_type_ids()
                .iter()
                .map(|&i| i64::from(i))
                .collect(),
        }
    }
}

/// A batch padded to its longest sequence: (input_ids, attention_mask, token_type_ids).
pub(crate) fn pad(items: &[&Inputs], pad_id: i64, device: Device) -> (Tensor, Tensor, Tensor) {
    let rows = items.len();
    let seq = items.iter().map(|e| e.ids.len()).max().unwrap_or(1);
    let mut ids = vec![pad_id; rows * seq];
    let mut mask = vec![0i64; rows * seq];
    let mut types = vec![0i64; rows * seq];
    for (r, e) in items.iter().enumerate() {
        for c in 0..e.ids.len() {
            ids[r * seq + c] = e.ids[c];
            mask[r * seq + c] = 1;
            types[r * seq + c] = e.types[c];
        }
    }
    let shape = [rows as i64, seq as i64];
    (
        Tensor::from_slice(&ids).view(shape).to_device(device),
        Tensor::from_slice(&mask).view(shape).to_device(device),
        Tensor::from_slice(&types).view(shape).to_device(device),
    )
}

/// The held-out sets a task is scored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    Validation,
    Test,
}

/// A fine-tuning task over encoded features: its loss on a training batch and its scores.
pub(crate) trait Task {
    /// The number of training features.
    fn len(&self) -> usize;
    /// The mean loss over training features `batch` (dropout on).
    fn loss(&self, model: &AlbertModel, batch: &[usize], device: Device) -> Result<Tensor>;
    /// Loss and metrics on a held-out set (dropout off, no gradients).
    fn evaluate(
        &self,
        model: &AlbertModel,
        split: Split,
        batch_size: usize,
        device: Device,
    ) -> Result<Evaluation>;
}

/// A task made ready: the encoded task, its labels and baseline.
pub(crate) struct Prepared {
    pub task: Box<dyn Task>,
    pub labels: Vec<String>,
    pub baseline: Option<(String, f64)>,
}

/// Tokenizes the task's data into training and held-out features, for sequences of
/// `max_length` tokens.
fn prepare(
    data: &TaskData,
    tokenizer: tokenizers::Tokenizer,
    max_length: usize,
) -> Result<Prepared> {
    match data {
        TaskData::Sequence {
            train,
            validation,
            test,
        } => sequence::prepare(
            tokenizer,
            max_length,
            train,
            [validation, test].map(Vec::as_slice),
        ),
        TaskData::Tokens {
            train,
            validation,
            test,
        } => tokens::prepare(
            tokenizer,
            max_length,
            train,
            [validation, test].map(Vec::as_slice),
        ),
        TaskData::Answers {
            train,
            validation,
            test,
            doc_stride,
            max_answer_length,
        } => answers::prepare(
            tokenizer,
            max_length,
            *doc_stride,
            *max_answer_length,
            train,
            [validation, test].map(Vec::as_slice),
        ),
    }
}

/// The base's config with the task's labels as `id2label` / `label2id` (none for question
/// answering, which has no labels).
fn with_labels(mut config: AlbertConfig, labels: &[String]) -> AlbertConfig {
    if labels.is_empty() {
        config.id2label = None;
        config.label2id = None;
    } else {
        config.id2label = Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (i.to_string(), l.clone()))
                .collect(),
        );
        config.label2id = Some(
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), i as i64))
                .collect(),
        );
    }
    config
}

/// Fine-tunes `options.model` on `options.data` (see the module comment).
pub fn finetune(options: &FinetuneOptions, stop: Arc<AtomicBool>) -> Result<FinetuneSummary> {
    let base = Checkpoint::read_dir(&options.model)?;
    let tokenizer_path = options.model.join(albert_core::checkpoint::TOKENIZER_FILE);
    let tokenizer = albert_core::tokenizer::load(&tokenizer_path)?;
    let max_length = options
        .max_seq_length
        .min(base.config.max_position_embeddings);
    let head = options.data.head();
    let Prepared {
        task,
        labels,
        baseline,
    } = prepare(&options.data, tokenizer, max_length)?;
    let config = with_labels(base.config.clone(), &labels);

    // The model: the base's embeddings and encoder (and pooler); a new task head (HF's init).
    tch::manual_seed(options.seed as i64);
    let vs = nn::VarStore::new(options.device);
    let model = AlbertModel::new(&vs, &config, head.parts())?;
    model.load_matching(base.tensors, |name| {
        !(name.starts_with("classifier.") || name.starts_with("qa_outputs."))
    })?;

    std::fs::create_dir_all(&options.output).map_err(|e| TrainError::io(&options.output, e))?;
    let _lock = crate::run_lock::lock_run_dir(&options.output, "--output")?;
    // A crash while the best checkpoint was being replaced left the previous one aside.
    let best_dir = options.output.join("best");
    albert_core::fsutil::recover_dir(&best_dir)?;
    let metrics = options.output.join(metrics_log::METRICS_FILE);
    let _ = std::fs::remove_file(&metrics);
    let batch_size = options.batch_size.max(1);
    let steps_per_epoch = task.len().div_ceil(batch_size);
    let total = (steps_per_epoch * options.epochs) as u64;
    let schedule = Schedule {
        peak: options.learning_rate,
        warmup_steps: (total as f64 * options.warmup_fraction) as u64,
        total_steps: total,
        power: 1.0,
    };
    let mut optimizer = Optimizer::new(
        model.named_parameters(),
        OptimizerOptions {
            kind: OptimizerKind::AdamW,
            weight_decay: options.weight_decay,
            ..OptimizerOptions::default()
        },
    );
    let bar = options.progress.then(|| {
        crate::progress::bar(
            total,
            "{bar:30} {pos}/{len} steps [{elapsed} < {eta}, {per_sec}] {msg}",
        )
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..task.len()).collect();
    let (mut best, mut best_epoch, mut epochs_run) = (None::<Evaluation>, 0, 0);
    let mut train_losses = Vec::new();
    let mut step = 0u64;
    'epochs: for epoch in 1..=options.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(batch_size) {
            if stop.load(Ordering::SeqCst) {
                break 'epochs;
            }
            optimizer.zero_grad();
            let loss = task.loss(&model, chunk, options.device)?;
            loss.backward();
            optimizer.clip_grad_norm(1.0);
            step += 1;
            let lr = schedule.lr(step);
            optimizer.step(lr);
            let value = loss.double_value(&[]);
            train_losses.push(value);
            metrics_log::append(
                &metrics,
                metrics_log::Split::Train,
                &FinetuneStep {
                    step,
                    loss: value,
                    lr,
                },
            )?;
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(format!("epoch {epoch} loss {value:.4}"));
            }
        }
        epochs_run = epoch;
        let evaluation = task.evaluate(&model, Split::Validation, batch_size, options.device)?;
        metrics_log::append(
            &metrics,
            metrics_log::Split::Eval,
            &evaluation.record(Some(step), epoch),
        )?;
        if let Some(bar) = &bar {
            let figures: Vec<String> = evaluation
                .metrics
                .iter()
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect();
            crate::progress::report(
                bar,
                format!(
                    "epoch {epoch}: validation loss {:.4}, {}",
                    evaluation.loss,
                    figures.join(", ")
                ),
            );
        }
        let improved = best
            .as_ref()
            .is_none_or(|b| evaluation.main().1 > b.main().1);
        if improved {
            crate::pretrain::write_checkpoint_dir(&model, &tokenizer_path, &best_dir, |_| Ok(()))?;
            best = Some(evaluation);
            best_epoch = epoch;
        } else if epoch - best_epoch >= options.patience.max(1) {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let _ = crate::chart::write_training_chart(
        &metrics,
        &options.output.join(crate::pretrain::CHART_FILE),
    );
    let best = best.ok_or_else(|| {
        data::bad(
            "finetune",
            "stopped before the first epoch ended: no checkpoint was written".into(),
        )
    })?;
    // The test set, once, with the best epoch's weights.
    let test = if options.data.sizes().2 > 0 {
        model.load_tensors(&Checkpoint::read_dir(&best_dir)?.tensors)?;
        let evaluation = task.evaluate(&model, Split::Test, batch_size, options.device)?;
        metrics_log::append(
            &metrics,
            metrics_log::Split::Test,
            &evaluation.record(None, best_epoch),
        )?;
        Some(evaluation)
    } else {
        None
    };
    Ok(FinetuneSummary {
        head,
        labels,
        epochs_run,
        best_epoch,
        best,
        test,
        best_checkpoint: best_dir,
        baseline,
        train_losses,
        train_features: task.len(),
    })
}

/// The labels of a training set, sorted (as `id2label`), with each one's id; `what` names them
/// in the error when there are fewer than two.
pub(crate) fn label_ids<'a>(
    labels: impl Iterator<Item = &'a String>,
    what: &str,
) -> Result<(Vec<String>, std::collections::BTreeMap<String, i64>)> {
    let names: std::collections::BTreeSet<&String> = labels.collect();
    let sorted: Vec<String> = names.into_iter().cloned().collect();
    if sorted.len() < 2 {
        return Err(data::bad(
            "data",
            format!(
                "the training set has {} {what}(s); the task needs 2 or more",
                sorted.len()
            ),
        ));
    }
    let ids = sorted
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i as i64))
        .collect();
    Ok((sorted, ids))
}

/// The most frequent of `ids` (each below `n`); the smallest on a tie.
pub(crate) fn most_frequent(ids: impl Iterator<Item = i64>, n: usize) -> i64 {
    let mut counts = vec![0usize; n];
    for id in ids {
        counts[id as usize] += 1;
    }
    counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, c)| (*c, std::cmp::Reverse(i)))
        .map_or(0, |(i, _)| i as i64)
}

/// Encodes the training examples and the held-out ones (validation, test) with `encode`, which
/// is told which split it reads, for its errors.
pub(crate) fn encode_splits<E, T>(
    train: &[E],
    [validation, test]: [&[E]; 2],
    mut encode: impl FnMut(&[E], &str) -> Result<Vec<T>>,
) -> Result<(Vec<T>, [Vec<T>; 2])> {
    Ok((
        encode(train, "training data")?,
        [
            encode(validation, "validation data")?,
            encode(test, "test data")?,
        ],
    ))
}

/// The id batches are padded with: `<pad>`, or 0 when the vocabulary has none.
pub(crate) fn pad_id(tokenizer: &tokenizers::Tokenizer) -> i64 {
    tokenizer
        .token_to_id(albert_core::tokenizer::PAD)
        .map_or(0, i64::from)
}

/// Truncates every encoding to `max_length` tokens (pairs: the longest segment first).
pub(crate) fn truncate_to(tokenizer: &mut tokenizers::Tokenizer, max_length: usize) -> Result<()> {
    truncate(
        tokenizer,
        tokenizers::TruncationParams {
            max_length,
            ..Default::default()
        },
    )
}

/// Sets the tokenizer's truncation, reporting a bad setting as an input error.
pub(crate) fn truncate(
    tokenizer: &mut tokenizers::Tokenizer,
    params: tokenizers::TruncationParams,
) -> Result<()> {
    tokenizer
        .with_truncation(Some(params))
        .map(|_| ())
        .map_err(|e| data::bad("tokenizer", e.to_string()))
}
