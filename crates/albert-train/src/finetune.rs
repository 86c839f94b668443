//! Fine-tuning for sequence classification (HF `AlbertForSequenceClassification`: the pooled
//! `[CLS]` vector through dropout and a linear layer, cross-entropy over the labels), single texts
//! or pairs, from CSV or JSON lines; validation every epoch, early stopping on validation
//! accuracy, the best checkpoint kept in the HF layout with `id2label` / `label2id`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use albert_core::{AlbertConfig, Checkpoint, Head};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::json;
use tch::{Device, Kind, Tensor, nn};

use crate::error::{Result, TrainError};
use crate::model::AlbertModel;
use crate::optim::{Optimizer, OptimizerKind, OptimizerOptions, Schedule};

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub pair: Option<String>,
    pub label: String,
}

/// Which columns (CSV header names or JSON keys) hold what.
#[derive(Debug, Clone)]
pub struct Columns {
    pub text: String,
    pub pair: Option<String>,
    pub label: String,
}

fn bad(name: &'static str, message: String) -> TrainError {
    TrainError::BadInput { name, message }
}

/// Reads examples from a `.csv` (with a header) or `.jsonl` file.
pub fn read_examples(path: &Path, columns: &Columns) -> Result<Vec<Example>> {
    let is_jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json" || e == "ndjson");
    let mut out = Vec::new();
    if is_jsonl {
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                bad(
                    "data",
                    format!("{}:{}: not JSON: {e}", path.display(), n + 1),
                )
            })?;
            let field = |key: &str| -> Result<String> {
                match &value[key] {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    serde_json::Value::Null => Err(bad(
                        "data",
                        format!("{}:{}: no field `{key}`", path.display(), n + 1),
                    )),
                    other => Ok(other.to_string()),
                }
            };
            out.push(Example {
                text: field(&columns.text)?,
                pair: columns.pair.as_deref().map(field).transpose()?,
                label: field(&columns.label)?,
            });
        }
    } else {
        let mut reader = csv::Reader::from_path(path)
            .map_err(|e| bad("data", format!("{}: {e}", path.display())))?;
        let headers = reader
            .headers()
            .map_err(|e| bad("data", format!("{}: {e}", path.display())))?
            .clone();
        let index = |name: &str| -> Result<usize> {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                bad(
                    "data",
                    format!(
                        "{}: no column `{name}` (columns: {})",
                        path.display(),
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        };
        let (t, l) = (index(&columns.text)?, index(&columns.label)?);
        let p = columns.pair.as_deref().map(index).transpose()?;
        for (n, record) in reader.records().enumerate() {
            let record = record
                .map_err(|e| bad("data", format!("{}: row {}: {e}", path.display(), n + 2)))?;
            let get = |i: usize| record.get(i).unwrap_or_default().to_string();
            out.push(Example {
                text: get(t),
                pair: p.map(get),
                label: get(l),
            });
        }
    }
    if out.is_empty() {
        return Err(bad("data", format!("{}: no examples", path.display())));
    }
    Ok(out)
}

fn io(path: &Path, e: std::io::Error) -> TrainError {
    TrainError::Core(albert_core::AlbertError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Options of [`finetune`].
#[derive(Debug, Clone)]
pub struct FinetuneOptions {
    /// The starting checkpoint (ours or HF's), with its tokenizer.json.
    pub model: PathBuf,
    pub train: Vec<Example>,
    pub validation: Vec<Example>,
    pub output: PathBuf,
    pub max_seq_length: usize,
    pub batch_size: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    pub warmup_fraction: f64,
    pub weight_decay: f64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: usize,
    pub seed: u64,
    pub device: Device,
    pub progress: bool,
}

/// What [`finetune`] did.
#[derive(Debug, Clone)]
pub struct FinetuneSummary {
    pub labels: Vec<String>,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_accuracy: f64,
    pub best_checkpoint: PathBuf,
    /// Validation accuracy of always answering the most frequent training label.
    pub majority_accuracy: f64,
    pub train_losses: Vec<f64>,
}

struct Encoded {
    ids: Vec<i64>,
    types: Vec<i64>,
    label: i64,
}

fn encode(
    tokenizer: &tokenizers::Tokenizer,
    examples: &[Example],
    labels: &BTreeMap<String, i64>,
    file: &str,
) -> Result<Vec<Encoded>> {
    examples
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let label = *labels.get(&e.label).ok_or_else(|| {
                bad(
                    "data",
                    format!(
                        "{file}: example {}: label `{}` is not among the training labels ({})",
                        n + 1,
                        e.label,
                        labels.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let encoding = match &e.pair {
                Some(p) => tokenizer.encode((e.text.as_str(), p.as_str()), true),
                None => tokenizer.encode(e.text.as_str(), true),
            }
            .map_err(|err| bad("tokenizer", err.to_string()))?;
            Ok(Encoded {
                ids: encoding.get_ids().iter().map(|&i| i64::from(i)).collect(),
                types: encoding
                    .get_type_ids()
                    .iter()
                    .map(|&i| i64::from(i))
                    .collect(),
                label,
            })
        })
        .collect()
}

/// Pads a batch to its longest example: (input_ids, attention_mask, token_type_ids, labels).
fn batch(items: &[&Encoded], pad: i64, device: Device) -> (Tensor, Tensor, Tensor, Tensor) {
    let rows = items.len();
    let seq = items.iter().map(|e| e.ids.len()).max().unwrap_or(1);
    let mut ids = vec![pad; rows * seq];
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
    let labels: Vec<i64> = items.iter().map(|e| e.label).collect();
    (
        Tensor::from_slice(&ids).view(shape).to_device(device),
        Tensor::from_slice(&mask).view(shape).to_device(device),
        Tensor::from_slice(&types).view(shape).to_device(device),
        Tensor::from_slice(&labels).to_device(device),
    )
}

/// Classifier logits of a batch.
fn logits(
    model: &AlbertModel,
    ids: &Tensor,
    mask: &Tensor,
    types: &Tensor,
    train: bool,
) -> Result<Tensor> {
    model
        .forward(ids, Some(mask), Some(types), train)?
        .classifier_logits
        .ok_or(TrainError::MissingHead("classifier"))
}

/// (loss, accuracy) over a set, in batches, without dropout.
fn evaluate(
    model: &AlbertModel,
    set: &[Encoded],
    batch_size: usize,
    pad: i64,
    device: Device,
) -> Result<(f64, f64)> {
    let _guard = tch::no_grad_guard();
    let (mut loss, mut correct) = (0.0, 0.0);
    for chunk in set.chunks(batch_size.max(1)) {
        let refs: Vec<&Encoded> = chunk.iter().collect();
        let (ids, mask, types, labels) = batch(&refs, pad, device);
        let out = logits(model, &ids, &mask, &types, false)?;
        loss += out.cross_entropy_for_logits(&labels).double_value(&[]) * chunk.len() as f64;
        correct += out
            .argmax(-1, false)
            .eq_tensor(&labels)
            .to_kind(Kind::Float)
            .sum(Kind::Float)
            .double_value(&[]);
    }
    let n = set.len().max(1) as f64;
    Ok((loss / n, correct / n))
}

fn append(path: &Path, line: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    writeln!(f, "{line}").map_err(|e| io(path, e))
}

/// Fine-tunes `options.model` on the examples (see the module comment).
pub fn finetune(options: &FinetuneOptions, stop: Arc<AtomicBool>) -> Result<FinetuneSummary> {
    let base = Checkpoint::read_dir(&options.model)?;
    let tokenizer_path = options.model.join(albert_core::checkpoint::TOKENIZER_FILE);
    let mut tokenizer = albert_core::tokenizer::load(&tokenizer_path)?;
    let max_length = options
        .max_seq_length
        .min(base.config.max_position_embeddings);
    tokenizer
        .with_truncation(Some(tokenizers::TruncationParams {
            max_length,
            ..Default::default()
        }))
        .map_err(|e| bad("tokenizer", e.to_string()))?;
    let pad = tokenizer.token_to_id("<pad>").map_or(0, i64::from);

    // Labels: the training set's, sorted, as HF's id2label / label2id.
    let names: std::collections::BTreeSet<&String> =
        options.train.iter().map(|e| &e.label).collect();
    if names.len() < 2 {
        return Err(bad(
            "data",
            format!(
                "the training set has {} label(s); classification needs 2 or more",
                names.len()
            ),
        ));
    }
    let labels: Vec<String> = names.into_iter().cloned().collect();
    let label2id: BTreeMap<String, i64> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), i as i64))
        .collect();
    let mut config: AlbertConfig = base.config.clone();
    config.id2label = Some(
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.clone()))
            .collect(),
    );
    config.label2id = Some(label2id.clone());

    let train = encode(&tokenizer, &options.train, &label2id, "training data")?;
    let validation = encode(
        &tokenizer,
        &options.validation,
        &label2id,
        "validation data",
    )?;
    let mut counts = vec![0usize; labels.len()];
    for e in &train {
        counts[e.label as usize] += 1;
    }
    let majority = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .map_or(0, |(i, _)| i) as i64;
    let majority_accuracy = validation.iter().filter(|e| e.label == majority).count() as f64
        / validation.len().max(1) as f64;

    // The model: the base's embeddings, encoder and pooler; a new classifier (HF's init).
    tch::manual_seed(options.seed as i64);
    let vs = nn::VarStore::new(options.device);
    let model = AlbertModel::new(&vs, &config, Head::SequenceClassification.parts())?;
    let mut tensors = model.to_checkpoint()?.tensors;
    for (name, tensor) in base.tensors {
        if tensors.get(&name).is_some_and(|t| t.shape == tensor.shape)
            && !name.starts_with("classifier.")
        {
            tensors.insert(name, tensor);
        }
    }
    model.load_tensors(&tensors)?;

    std::fs::create_dir_all(&options.output).map_err(|e| io(&options.output, e))?;
    let metrics = options.output.join(crate::pretrain::METRICS_FILE);
    let _ = std::fs::remove_file(&metrics);
    let steps_per_epoch = train.len().div_ceil(options.batch_size.max(1));
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
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps [{elapsed} < {eta}, {per_sec}] {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut best_accuracy, mut best_epoch, mut epochs_run) = (f64::NEG_INFINITY, 0, 0);
    let best_dir = options.output.join("best");
    let mut train_losses = Vec::new();
    let mut step = 0u64;
    'epochs: for epoch in 1..=options.epochs {
        order.shuffle(&mut rng);
        for chunk in order.chunks(options.batch_size.max(1)) {
            if stop.load(Ordering::SeqCst) {
                break 'epochs;
            }
            let items: Vec<&Encoded> = chunk.iter().map(|&i| &train[i]).collect();
            let (ids, mask, types, y) = batch(&items, pad, options.device);
            optimizer.zero_grad();
            let out = logits(&model, &ids, &mask, &types, true)?;
            let loss = out.cross_entropy_for_logits(&y);
            loss.backward();
            optimizer.clip_grad_norm(1.0);
            step += 1;
            let lr = schedule.lr(step);
            optimizer.step(lr);
            let value = loss.double_value(&[]);
            train_losses.push(value);
            append(
                &metrics,
                &json!({"split": "train", "step": step, "loss": value, "lr": lr}),
            )?;
            if let Some(bar) = &bar {
                bar.inc(1);
                bar.set_message(format!("epoch {epoch} loss {value:.4}"));
            }
        }
        epochs_run = epoch;
        let (loss, accuracy) =
            evaluate(&model, &validation, options.batch_size, pad, options.device)?;
        append(
            &metrics,
            &json!({"split": "eval", "step": step, "epoch": epoch, "loss": loss, "accuracy": accuracy}),
        )?;
        if let Some(bar) = &bar {
            bar.println(format!(
                "epoch {epoch}: validation loss {loss:.4}, accuracy {accuracy:.4}"
            ));
        }
        if accuracy > best_accuracy {
            best_accuracy = accuracy;
            best_epoch = epoch;
            let tmp = options
                .output
                .join(format!(".best.tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            model.to_checkpoint()?.write_dir(&tmp)?;
            std::fs::copy(
                &tokenizer_path,
                tmp.join(albert_core::checkpoint::TOKENIZER_FILE),
            )
            .map_err(|e| io(&tokenizer_path, e))?;
            let _ = std::fs::remove_dir_all(&best_dir);
            std::fs::rename(&tmp, &best_dir).map_err(|e| io(&best_dir, e))?;
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
    Ok(FinetuneSummary {
        labels,
        epochs_run,
        best_epoch,
        best_accuracy,
        best_checkpoint: best_dir,
        majority_accuracy,
        train_losses,
    })
}
