//! Sequence classification (HF `AlbertForSequenceClassification`): the pooled `[CLS]` vector
//! through dropout and a linear layer, cross-entropy over the labels; validation accuracy.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::data::{bad, read_rows};
use super::{
    Evaluation, Inputs, Prepared, Split, Task, encode_splits, label_ids, most_frequent, pad,
    pad_id, truncate_to,
};
use crate::error::{Result, TrainError};
use crate::model::AlbertModel;

/// One labelled text (or pair of texts).
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

/// Reads examples from a `.csv` (with a header) or `.jsonl` file.
pub fn read_examples(path: &Path, columns: &Columns) -> Result<Vec<Example>> {
    let table = read_rows(path)?;
    let mut wanted = vec![columns.text.as_str(), columns.label.as_str()];
    wanted.extend(columns.pair.as_deref());
    table.require(&wanted)?;
    table
        .rows
        .iter()
        .map(|row| {
            Ok(Example {
                text: row.string(&columns.text)?,
                pair: columns.pair.as_deref().map(|p| row.string(p)).transpose()?,
                label: row.string(&columns.label)?,
            })
        })
        .collect()
}

struct Feature {
    inputs: Inputs,
    label: i64,
}

struct SequenceTask {
    train: Vec<Feature>,
    /// Validation, test.
    held_out: [Vec<Feature>; 2],
    pad: i64,
}

fn encode(
    tokenizer: &tokenizers::Tokenizer,
    examples: &[Example],
    labels: &BTreeMap<String, i64>,
    file: &str,
) -> Result<Vec<Feature>> {
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
            Ok(Feature {
                inputs: Inputs::from_encoding(&encoding),
                label,
            })
        })
        .collect()
}

pub(crate) fn prepare(
    mut tokenizer: tokenizers::Tokenizer,
    max_length: usize,
    train: &[Example],
    held_out: [&[Example]; 2],
) -> Result<Prepared> {
    truncate_to(&mut tokenizer, max_length)?;
    let (labels, ids) = label_ids(train.iter().map(|e| &e.label), "label")?;
    let (train, [validation, test]) = encode_splits(train, held_out, |examples, split| {
        encode(&tokenizer, examples, &ids, split)
    })?;
    let majority = most_frequent(train.iter().map(|f| f.label), labels.len());
    let majority_accuracy = validation.iter().filter(|f| f.label == majority).count() as f64
        / validation.len().max(1) as f64;
    let baseline = Some((
        format!(
            "accuracy of always answering `{}`",
            labels[majority as usize]
        ),
        majority_accuracy,
    ));
    let pad = pad_id(&tokenizer);
    Ok(Prepared {
        task: Box::new(SequenceTask {
            train,
            held_out: [validation, test],
            pad,
        }),
        labels,
        baseline,
    })
}

impl SequenceTask {
    fn logits(
        &self,
        model: &AlbertModel,
        items: &[&Feature],
        device: Device,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let inputs: Vec<&Inputs> = items.iter().map(|f| &f.inputs).collect();
        let (ids, mask, types) = pad(&inputs, self.pad, device);
        let labels: Vec<i64> = items.iter().map(|f| f.label).collect();
        let logits = model
            .forward(&ids, Some(&mask), Some(&types), train)?
            .classifier_logits
            .ok_or(TrainError::MissingHead("classifier"))?;
        Ok((logits, Tensor::from_slice(&labels).to_device(device)))
    }
}

impl Task for SequenceTask {
    fn len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, model: &AlbertModel, batch: &[usize], device: Device) -> Result<Tensor> {
        let items: Vec<&Feature> = batch.iter().map(|&i| &self.train[i]).collect();
        let (logits, labels) = self.logits(model, &items, device, true)?;
        Ok(logits.cross_entropy_for_logits(&labels))
    }

    fn evaluate(
        &self,
        model: &AlbertModel,
        split: Split,
        batch_size: usize,
        device: Device,
    ) -> Result<Evaluation> {
        let _guard = tch::no_grad_guard();
        let set = &self.held_out[split as usize];
        let (mut loss, mut correct) = (0.0, 0.0);
        for chunk in set.chunks(batch_size) {
            let items: Vec<&Feature> = chunk.iter().collect();
            let (logits, labels) = self.logits(model, &items, device, false)?;
            loss += logits.cross_entropy_for_logits(&labels).double_value(&[]) * chunk.len() as f64;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&labels)
                .to_kind(Kind::Float)
                .sum(Kind::Float)
                .double_value(&[]);
        }
        let n = set.len().max(1) as f64;
        Ok(Evaluation {
            loss: loss / n,
            metrics: vec![("accuracy", correct / n)],
        })
    }
}
