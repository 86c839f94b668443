//! The pretraining loop: MLM (+ SOP or NSP) on a corpus, with LAMB or AdamW, warm-up and
//! polynomial decay, gradient clipping and accumulation; held-out evaluation; metrics as JSON
//! lines and an SVG chart; checkpoints in the HF layout (plus optimizer and trainer state) written
//! atomically, the last K kept; exact resume; a clean stop (checkpoint first) on request.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use albert_core::params::{Parts, SentenceHead};
use albert_core::{AlbertConfig, Checkpoint};
use tch::{Device, Kind, Tensor, nn};

use crate::data::{
    Batch, Corpus, Instance, InstanceOptions, InstanceStream, Objective, SpecialIds,
    create_instances,
};
use crate::error::{Result, TrainError};
use crate::metrics_log::{self, METRICS_FILE, PretrainEval, PretrainStep, Split};
use crate::model::AlbertModel;
use crate::optim::{Optimizer, OptimizerOptions, Schedule};
use crate::trainer_state::TrainerState;

pub use crate::trainer_state::TRAINER_STATE_FILE;
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const CHART_FILE: &str = "curves.svg";

#[derive(Debug, Clone)]
pub struct PretrainOptions {
    pub config: AlbertConfig,
    pub tokenizer: PathBuf,
    pub train_files: Vec<PathBuf>,
    pub eval_files: Vec<PathBuf>,
    pub output: PathBuf,
    pub instances: InstanceOptions,
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub accumulation: usize,
    /// Optimizer steps: the length of the learning-rate schedule.
    pub steps: u64,
    /// Stop (evaluating and saving a checkpoint) after this step, before the schedule ends: a
    /// time-boxed run that `--resume` can later finish on the same schedule.
    pub stop_after: Option<u64>,
    pub optimizer: OptimizerOptions,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    /// Global gradient-norm clip (ALBERT: 1.0); 0 disables.
    pub clip: f64,
    pub eval_every: u64,
    pub eval_batches: usize,
    pub save_every: u64,
    pub keep: usize,
    pub seed: u64,
    pub device: Device,
    pub resume: bool,
    /// Start from this checkpoint's weights (same tokenizer; tensors matched by name and shape)
    /// with a fresh optimizer and schedule: continued pretraining. Excludes `resume`.
    pub init_from: Option<PathBuf>,
    /// Show a progress bar (off in tests).
    pub progress: bool,
    /// bf16 matrix products with f32 master weights ([`crate::model::precision`]).
    pub bf16: bool,
}

/// The parts a pretraining objective trains.
pub fn parts_for(objective: Objective) -> Parts {
    Parts {
        pooler: true,
        mlm: true,
        sentence: match objective {
            Objective::Sop => Some(SentenceHead::Sop),
            Objective::Nsp => Some(SentenceHead::Nsp),
            Objective::None => None,
        },
        ..Parts::default()
    }
}

/// Loss and accuracies of one batch (or averaged over several).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Metrics {
    pub loss: f64,
    pub mlm_loss: f64,
    pub mlm_accuracy: f64,
    pub sentence_loss: f64,
    pub sentence_accuracy: f64,
}

impl Metrics {
    fn add(&mut self, other: &Metrics, weight: f64) {
        self.loss += other.loss * weight;
        self.mlm_loss += other.mlm_loss * weight;
        self.mlm_accuracy += other.mlm_accuracy * weight;
        self.sentence_loss += other.sentence_loss * weight;
        self.sentence_accuracy += other.sentence_accuracy * weight;
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct PretrainSummary {
    pub steps: u64,
    pub stopped_early: bool,
    pub last_checkpoint: PathBuf,
    pub train: Metrics,
    pub eval: Option<Metrics>,
    pub tokens_per_second: f64,
    /// Training losses of each optimizer step of this run (for tests of exact resume).
    pub losses: Vec<f64>,
}

/// Where the stream of training examples stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DataPosition {
    epoch: u64,
    index: usize,
}

/// Examples held in the shuffle buffer of the training stream.
const SHUFFLE_BUFFER: usize = 10_000;

fn stream_position(stream: &InstanceStream) -> DataPosition {
    let (epoch, index) = stream.position();
    DataPosition { epoch, index }
}

pub(crate) fn batch_metrics(
    model: &AlbertModel,
    batch: &Batch,
    objective: Objective,
    train: bool,
) -> Result<(Tensor, Metrics)> {
    let (hidden, pooled) = model.encode(
        &batch.input_ids,
        &batch.attention_mask,
        &batch.token_type_ids,
        train,
    )?;
    let width = hidden.size()[2];
    let masked = hidden
        .view([-1, width])
        .index_select(0, &batch.masked_index);
    let logits = model.mlm_logits(&masked)?;
    let mlm_loss = logits.cross_entropy_for_logits(&batch.masked_labels);
    let mlm_accuracy = logits
        .argmax(-1, false)
        .eq_tensor(&batch.masked_labels)
        .to_kind(Kind::Float)
        .mean(Kind::Float);
    let mut loss = mlm_loss.shallow_clone();
    let mut metrics = Metrics {
        mlm_loss: mlm_loss.double_value(&[]),
        mlm_accuracy: mlm_accuracy.double_value(&[]),
        ..Metrics::default()
    };
    if objective != Objective::None {
        let pooled = pooled.ok_or(TrainError::MissingHead("pooler"))?;
        let sentence = model.sentence_logits(&pooled, train)?;
        let sentence_loss = sentence.cross_entropy_for_logits(&batch.sentence_labels);
        metrics.sentence_loss = sentence_loss.double_value(&[]);
        metrics.sentence_accuracy = sentence
            .argmax(-1, false)
            .eq_tensor(&batch.sentence_labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        loss += sentence_loss;
    }
    metrics.loss = loss.double_value(&[]);
    Ok((loss, metrics))
}

fn evaluate(
    model: &AlbertModel,
    instances: &[Instance],
    options: &PretrainOptions,
    pad: u32,
) -> Result<Option<Metrics>> {
    if instances.is_empty() {
        return Ok(None);
    }
    let mut total = Metrics::default();
    let mut count = 0usize;
    tch::no_grad(|| -> Result<()> {
        for chunk in instances
            .chunks(options.batch_size)
            .take(options.eval_batches.max(1))
        {
            let refs: Vec<&Instance> = chunk.iter().collect();
            let batch = Batch::new(&refs, pad, options.device);
            let (_, m) = batch_metrics(model, &batch, options.instances.objective, false)?;
            total.add(&m, chunk.len() as f64);
            count += chunk.len();
        }
        Ok(())
    })?;
    let mut mean = Metrics::default();
    mean.add(&total, 1.0 / count.max(1) as f64);
    Ok(Some(mean))
}

/// Writes `model` with its tokenizer (and whatever `extra` adds) as the checkpoint directory `dir`:
/// staged in a temporary directory beside it, then swapped in with
/// [`albert_core::fsutil::replace_dir`], so that `dir` is always absent or complete and a previous
/// copy of it stays complete until the new one is in place.
pub(crate) fn write_checkpoint_dir(
    model: &AlbertModel,
    tokenizer: &Path,
    dir: &Path,
    extra: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let staged = albert_core::fsutil::staging_dir(dir)?;
    let written = (|| -> Result<()> {
        model.to_checkpoint()?.write_dir(&staged)?;
        std::fs::copy(
            tokenizer,
            staged.join(albert_core::checkpoint::TOKENIZER_FILE),
        )
        .map_err(|e| TrainError::io(tokenizer, e))?;
        extra(&staged)?;
        Ok(albert_core::fsutil::replace_dir(&staged, dir)?)
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    written
}

/// Saves `checkpoint-<step>` atomically ([`write_checkpoint_dir`]) and removes all but the newest
/// `keep`.
fn save_checkpoint(
    model: &AlbertModel,
    optimizer: &Optimizer,
    options: &PretrainOptions,
    step: u64,
    position: DataPosition,
) -> Result<PathBuf> {
    let final_dir = options.output.join(format!("checkpoint-{step:08}"));
    write_checkpoint_dir(model, &options.tokenizer, &final_dir, |staged| {
        let state: Vec<(String, Tensor)> = optimizer
            .state()
            .into_iter()
            .map(|(k, v)| (k, v.to_device(Device::Cpu)))
            .collect();
        let optimizer_file = staged.join(OPTIMIZER_FILE);
        albert_core::fsutil::write_atomic_with(&optimizer_file, |tmp| {
            Tensor::write_safetensors(&state, tmp).map_err(TrainError::from)
        })?;
        TrainerState {
            step,
            epoch: position.epoch,
            index: position.index,
            seed: options.seed,
            optimizer_steps: optimizer.steps,
            objective: options.instances.objective.to_string(),
        }
        .write(staged)
    })?;

    let mut existing = checkpoints(&options.output)?;
    while existing.len() > options.keep.max(1) {
        let oldest = existing.remove(0);
        let _ = std::fs::remove_dir_all(oldest.1);
    }
    Ok(final_dir)
}

/// Puts back any checkpoint that a crash in [`albert_core::fsutil::replace_dir`] left aside, and
/// removes checkpoints a crash left half-staged (hidden names under `output`). Runs under the
/// run directory's lock, so no other trainer is writing them.
fn recover_checkpoints(output: &Path) -> Result<()> {
    for entry in std::fs::read_dir(output).map_err(|e| TrainError::io(output, e))? {
        let name = entry
            .map_err(|e| TrainError::io(output, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let Some(hidden) = name.strip_prefix(".checkpoint-") else {
            continue;
        };
        if let Some(step) = hidden.strip_suffix(".old") {
            albert_core::fsutil::recover_dir(&output.join(format!("checkpoint-{step}")))?;
        } else if hidden.contains(".tmp-") {
            let staged = output.join(&name);
            std::fs::remove_dir_all(&staged).map_err(|e| TrainError::io(&staged, e))?;
        }
    }
    Ok(())
}

/// The checkpoints under `output`, oldest first, with their steps.
pub fn checkpoints(output: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    if !output.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(output).map_err(|e| TrainError::io(output, e))? {
        let path = entry.map_err(|e| TrainError::io(output, e))?.path();
        let step = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(step) = step
            && path.join(TRAINER_STATE_FILE).exists()
        {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

/// The first field (by name) of the model's definition in which two configs differ, with both
/// values: a run resumes only from a checkpoint of its own model.
fn config_difference(
    theirs: &AlbertConfig,
    ours: &AlbertConfig,
) -> Option<(String, serde_json::Value, serde_json::Value)> {
    // Other fields kept as read (`architectures`, which the checkpoint writer adds) describe the
    // file, not the model.
    let as_map = |c: &AlbertConfig| match serde_json::to_value(AlbertConfig {
        extra: serde_json::Map::new(),
        ..c.clone()
    }) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (theirs, ours) = (as_map(theirs), as_map(ours));
    let mut names: Vec<&String> = theirs.keys().chain(ours.keys()).collect();
    names.sort();
    names.dedup();
    names.into_iter().find_map(|name| {
        let (a, b) = (theirs.get(name), ours.get(name));
        (a != b).then(|| {
            let show = |v: Option<&serde_json::Value>| v.cloned().unwrap_or_default();
            (name.clone(), show(a), show(b))
        })
    })
}

/// Loads the weights of checkpoint `source` into `model` (tensors of the same name and shape),
/// after checking that it was trained with the same tokenizer.
fn init_from(model: &AlbertModel, source: &Path, options: &PretrainOptions) -> Result<()> {
    let bad = |message: String| TrainError::BadInput {
        name: "--init-from",
        message,
    };
    if options.resume {
        return Err(bad(
            "--init-from starts a new run from a checkpoint's weights, --resume continues a run: use one".into(),
        ));
    }
    let theirs = source.join(albert_core::checkpoint::TOKENIZER_FILE);
    let same_tokenizer = match (std::fs::read(&theirs), std::fs::read(&options.tokenizer)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same_tokenizer {
        return Err(bad(format!(
            "{} is not the same file as --tokenizer {}: the ids would not mean the same pieces",
            theirs.display(),
            options.tokenizer.display()
        )));
    }
    let checkpoint = Checkpoint::read_dir(source)?;
    if model.load_matching(checkpoint.tensors, |_| true)? == 0 {
        return Err(bad(format!(
            "{}: no tensor matches this model's names and shapes",
            source.display()
        )));
    }
    Ok(())
}

/// Runs pretraining. `stop` is polled after every step (Ctrl-C): a checkpoint is saved first.
pub fn pretrain(options: &PretrainOptions, stop: Arc<AtomicBool>) -> Result<PretrainSummary> {
    let tokenizer = albert_core::tokenizer::load(&options.tokenizer)?;
    let ids = SpecialIds::from_tokenizer(&tokenizer)?;
    check_sizes(options, &ids)?;
    let (corpus, eval_instances) = load_text(options, &tokenizer, &ids)?;
    std::fs::create_dir_all(&options.output).map_err(|e| TrainError::io(&options.output, e))?;
    let _lock = crate::run_lock::lock_run_dir(&options.output, "--output")?;
    recover_checkpoints(&options.output)?;

    let parts = parts_for(options.instances.objective);
    let vs = nn::VarStore::new(options.device);
    tch::manual_seed(options.seed as i64);
    let model = AlbertModel::new(&vs, &options.config, parts)?;
    let mut optimizer = Optimizer::new(model.named_parameters(), options.optimizer);
    let metrics_path = options.output.join(METRICS_FILE);
    if let Some(source) = &options.init_from {
        init_from(&model, source, options)?;
    }
    let (mut step, position) = if options.resume {
        let resumed = resume(&model, &mut optimizer, options, parts)?;
        metrics_log::truncate(&metrics_path, resumed.0)?;
        resumed
    } else {
        if metrics_path.exists() {
            std::fs::remove_file(&metrics_path).map_err(|e| TrainError::io(&metrics_path, e))?;
        }
        (0, DataPosition { epoch: 0, index: 0 })
    };

    let mut stream = InstanceStream::at(
        &corpus,
        &ids,
        options.instances,
        options.seed,
        position.epoch,
        position.index,
        SHUFFLE_BUFFER,
    )
    .ok_or_else(|| TrainError::BadInput {
        name: "corpus",
        message: "yields no training examples (documents too short?)".into(),
    })?;
    let schedule = Schedule {
        peak: options.learning_rate,
        warmup_steps: options.warmup_steps,
        total_steps: options.steps,
        power: 1.0,
    };
    let bar = if options.progress {
        let bar = crate::progress::bar(
            options.steps,
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        );
        bar.set_position(step);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    let started = Instant::now();
    let mut tokens_seen = 0usize;
    let mut last = Metrics::default();
    let mut last_eval = None;
    let mut losses = Vec::new();
    let mut last_checkpoint = PathBuf::new();
    let mut stopped_early = false;
    let sentence_name = match options.instances.objective {
        Objective::Sop => "sop",
        Objective::Nsp => "nsp",
        Objective::None => "-",
    };
    while step < options.steps {
        let lr = schedule.lr(step);
        let (metrics, grad_norm, tokens) =
            train_step(&model, &mut optimizer, &mut stream, options, &ids, step, lr)?;
        step += 1;
        tokens_seen += tokens;
        last = metrics;
        losses.push(metrics.loss);
        let rate = tokens_seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
        metrics_log::append(
            &metrics_path,
            Split::Train,
            &PretrainStep {
                step,
                lr,
                loss: last.loss,
                mlm_loss: last.mlm_loss,
                mlm_accuracy: last.mlm_accuracy,
                sentence_loss: last.sentence_loss,
                sentence_accuracy: last.sentence_accuracy,
                grad_norm,
                tokens_per_second: rate,
            },
        )?;
        bar.set_position(step);
        bar.set_message(format!(
            "loss {:.3} mlm acc {:.3} {sentence_name} acc {:.3} {:.0} tok/s",
            last.loss, last.mlm_accuracy, last.sentence_accuracy, rate
        ));
        // --stop-after ends a time-boxed run: evaluate there; Ctrl-C only saves, to quit promptly.
        let time_boxed = options.stop_after == Some(step);
        let stopping = stop.load(Ordering::SeqCst) || time_boxed;
        if options.eval_every > 0
            && (step.is_multiple_of(options.eval_every) || step == options.steps || time_boxed)
            && let Some(m) = evaluate(&model, &eval_instances, options, ids.pad)?
        {
            metrics_log::append(
                &metrics_path,
                Split::Eval,
                &PretrainEval {
                    step,
                    loss: m.loss,
                    mlm_loss: m.mlm_loss,
                    mlm_accuracy: m.mlm_accuracy,
                    sentence_loss: m.sentence_loss,
                    sentence_accuracy: m.sentence_accuracy,
                },
            )?;
            crate::progress::report(
                &bar,
                format!(
                    "step {step}: held-out loss {:.3}, MLM accuracy {:.3}, {sentence_name} accuracy {:.3}",
                    m.loss, m.mlm_accuracy, m.sentence_accuracy
                ),
            );
            last_eval = Some(m);
        }
        if stopping
            || step == options.steps
            || (options.save_every > 0 && step.is_multiple_of(options.save_every))
        {
            last_checkpoint =
                save_checkpoint(&model, &optimizer, options, step, stream_position(&stream))?;
        }
        if stopping {
            stopped_early = true;
            crate::progress::report(
                &bar,
                format!(
                    "stopped at step {step}; saved {}",
                    last_checkpoint.display()
                ),
            );
            break;
        }
    }
    bar.finish_and_clear();
    if let Err(e) =
        crate::chart::write_training_chart(&metrics_path, &options.output.join(CHART_FILE))
    {
        eprintln!("warning: could not draw the training chart: {e}");
    }
    if last_checkpoint.as_os_str().is_empty() {
        last_checkpoint =
            save_checkpoint(&model, &optimizer, options, step, stream_position(&stream))?;
    }
    Ok(PretrainSummary {
        steps: step,
        stopped_early,
        last_checkpoint,
        train: last,
        eval: last_eval,
        tokens_per_second: tokens_seen as f64 / started.elapsed().as_secs_f64().max(1e-9),
        losses,
    })
}

/// The tokenizer must be the config's vocabulary, and the sequences must fit its positions.
fn check_sizes(options: &PretrainOptions, ids: &SpecialIds) -> Result<()> {
    if ids.vocab_size as usize != options.config.vocab_size {
        return Err(TrainError::BadInput {
            name: "config",
            message: format!(
                "vocab_size is {} but the tokenizer {} has {} pieces",
                options.config.vocab_size,
                options.tokenizer.display(),
                ids.vocab_size
            ),
        });
    }
    if options.instances.max_seq_length > options.config.max_position_embeddings {
        return Err(TrainError::BadInput {
            name: "max_seq_length",
            message: format!(
                "{} exceeds max_position_embeddings {}",
                options.instances.max_seq_length, options.config.max_position_embeddings
            ),
        });
    }
    Ok(())
}

/// The training corpus, and the held-out examples (fixed: drawn once, in order) when there is
/// held-out text.
fn load_text(
    options: &PretrainOptions,
    tokenizer: &tokenizers::Tokenizer,
    ids: &SpecialIds,
) -> Result<(Corpus, Vec<Instance>)> {
    fn files(v: &[PathBuf]) -> Vec<&Path> {
        v.iter().map(PathBuf::as_path).collect()
    }
    let corpus = Corpus::load(&files(&options.train_files), tokenizer)?;
    let eval_instances = if options.eval_files.is_empty() {
        Vec::new()
    } else {
        let eval = Corpus::load(&files(&options.eval_files), tokenizer)?;
        create_instances(&eval, ids, &options.instances, options.seed ^ 0xE7A1, 0)
    };
    Ok((corpus, eval_instances))
}

/// `--resume`: the newest checkpoint's weights and optimizer state into `model` and
/// `optimizer`, after checking that it is this model's (config, heads) and that its
/// trainer_state.json is whole; returns its step and where in the data it stopped.
fn resume(
    model: &AlbertModel,
    optimizer: &mut Optimizer,
    options: &PretrainOptions,
    parts: Parts,
) -> Result<(u64, DataPosition)> {
    let Some((saved_step, dir)) = checkpoints(&options.output)?.pop() else {
        return Err(TrainError::BadInput {
            name: "--resume",
            message: format!("no checkpoint in {}", options.output.display()),
        });
    };
    let checkpoint = Checkpoint::read_dir(&dir)?;
    if let Some((field, theirs, ours)) = config_difference(&checkpoint.config, &options.config) {
        return Err(TrainError::BadInput {
            name: "--resume",
            message: format!(
                "{} is another model's checkpoint: its field `{field}` is {theirs}, --config has {ours}",
                dir.join(albert_core::checkpoint::CONFIG_FILE).display(),
            ),
        });
    }
    if checkpoint.parts != parts {
        return Err(TrainError::BadInput {
            name: "--resume",
            message: format!(
                "{} was trained with other heads (another --objective)",
                dir.display()
            ),
        });
    }
    model.load_tensors(&checkpoint.tensors)?;
    let state: std::collections::BTreeMap<String, Tensor> =
        Tensor::read_safetensors(dir.join(OPTIMIZER_FILE))?
            .into_iter()
            .collect();
    let trainer = TrainerState::read(&dir).map_err(|e| TrainError::BadInput {
        name: "--resume",
        message: e.to_string(),
    })?;
    if trainer.step != saved_step {
        return Err(TrainError::BadInput {
            name: "--resume",
            message: format!(
                "{}: field `step` is {}, but the directory is the checkpoint of step {saved_step}",
                dir.join(TRAINER_STATE_FILE).display(),
                trainer.step
            ),
        });
    }
    optimizer
        .load_state(&state, trainer.optimizer_steps)
        .map_err(|message| TrainError::BadInput {
            name: "--resume",
            message,
        })?;
    Ok((
        saved_step,
        DataPosition {
            epoch: trainer.epoch,
            index: trainer.index,
        },
    ))
}

/// One optimizer step at `lr`: `--accumulation` batches forward and backward, gradients clipped
/// to `--clip`. Returns the step's metrics (averaged over its batches), the gradient norm before
/// clipping (0 without clipping) and the tokens it read.
fn train_step(
    model: &AlbertModel,
    optimizer: &mut Optimizer,
    stream: &mut InstanceStream,
    options: &PretrainOptions,
    ids: &SpecialIds,
    step: u64,
    lr: f64,
) -> Result<(Metrics, f64, usize)> {
    // Dropout masks depend on (seed, step) only, so a resumed run continues exactly.
    tch::manual_seed(
        (options.seed as i64)
            .wrapping_mul(1_000_003)
            .wrapping_add(step as i64),
    );
    optimizer.zero_grad();
    let mut metrics = Metrics::default();
    let mut tokens = 0;
    let accumulation = options.accumulation.max(1);
    for _ in 0..accumulation {
        let instances: Vec<Instance> = (0..options.batch_size)
            .map(|_| stream.next_instance())
            .collect::<Option<_>>()
            .ok_or_else(|| TrainError::BadInput {
                name: "corpus",
                message: "yields no training examples".into(),
            })?;
        let refs: Vec<&Instance> = instances.iter().collect();
        let batch = Batch::new(&refs, ids.pad, options.device);
        tokens += batch.tokens;
        let (loss, m) = crate::model::precision::bf16_autocast(options.bf16, || {
            batch_metrics(model, &batch, options.instances.objective, true)
        })?;
        (loss / accumulation as f64).backward();
        metrics.add(&m, 1.0 / accumulation as f64);
    }
    let grad_norm = if options.clip > 0.0 {
        optimizer.clip_grad_norm(options.clip)
    } else {
        0.0
    };
    optimizer.step(lr);
    Ok((metrics, grad_norm, tokens))
}
