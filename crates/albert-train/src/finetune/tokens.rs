//! Token classification (HF `AlbertForTokenClassification`: each token's hidden state through
//! dropout and a linear layer). The data are words with one tag each (CoNLL style); a word's tag
//! trains its first piece and the other pieces are ignored (label -100, as HF's `run_ner` with
//! `label_all_tokens = False`), and a word is predicted from its first piece, as the runtime's
//! `token-classify` does. Validation: entity-level F1 when the tags are BIO (`O`, `B-X`,
//! `I-X`), word accuracy otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Kind, Tensor};

use super::data::{bad, read_rows};
use super::metrics::{entity_f1, is_bio};
use super::{
    Evaluation, Inputs, Prepared, Split, Task, encode_splits, label_ids, most_frequent, pad,
    pad_id, truncate_to,
};
use crate::error::{Result, TrainError};
use crate::model::AlbertModel;

/// HF's ignore index: positions with this label add nothing to the loss.
const IGNORE: i64 = -100;

/// Words with one tag each.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedExample {
    pub words: Vec<String>,
    pub tags: Vec<String>,
}

/// Which columns hold the words and the tags: JSON arrays in JSON lines, whitespace-separated
/// in a CSV cell.
#[derive(Debug, Clone)]
pub struct TagColumns {
    pub words: String,
    pub tags: String,
}

/// Reads tagged examples from a `.csv` or `.jsonl` file; every row needs as many tags as words.
pub fn read_tagged_examples(path: &Path, columns: &TagColumns) -> Result<Vec<TaggedExample>> {
    let table = read_rows(path)?;
    table.require(&[&columns.words, &columns.tags])?;
    table
        .rows
        .iter()
        .map(|row| {
            let words = row.strings(&columns.words)?;
            let tags = row.strings(&columns.tags)?;
            if words.len() != tags.len() || words.is_empty() {
                return Err(bad(
                    "data",
                    format!(
                        "{}: {} word(s) in `{}` but {} tag(s) in `{}`; each word needs one tag",
                        row.origin,
                        words.len(),
                        columns.words,
                        tags.len(),
                        columns.tags
                    ),
                ));
            }
            Ok(TaggedExample { words, tags })
        })
        .collect()
}

struct Feature {
    inputs: Inputs,
    /// Per token: the word's tag id on its first piece, else [`IGNORE`].
    labels: Vec<i64>,
    /// Per token: the word whose first piece it is.
    first_piece_of: Vec<Option<usize>>,
    /// Gold tag ids of every word (truncated ones included: they count as missed).
    gold: Vec<i64>,
}

struct TokenTask {
    train: Vec<Feature>,
    /// Validation, test.
    held_out: [Vec<Feature>; 2],
    labels: Vec<String>,
    bio: bool,
    majority: i64,
    pad: i64,
}

fn encode(
    tokenizer: &tokenizers::Tokenizer,
    examples: &[TaggedExample],
    ids: &BTreeMap<String, i64>,
    file: &str,
) -> Result<Vec<Feature>> {
    examples
        .iter()
        .enumerate()
        .map(|(n, e)| {
            let gold = e
                .tags
                .iter()
                .map(|t| {
                    ids.get(t).copied().ok_or_else(|| {
                        bad(
                            "data",
                            format!(
                                "{file}: example {}: tag `{t}` is not among the training tags ({})",
                                n + 1,
                                ids.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<i64>>>()?;
            let words: Vec<&str> = e.words.iter().map(String::as_str).collect();
            let encoding = tokenizer
                .encode(&words[..], true)
                .map_err(|err| bad("tokenizer", err.to_string()))?;
            let mut previous = None;
            let mut labels = Vec::with_capacity(encoding.len());
            let mut first_piece_of = Vec::with_capacity(encoding.len());
            for (t, word) in encoding.get_word_ids().iter().enumerate() {
                let special = encoding.get_special_tokens_mask()[t] == 1;
                let word = word.map(|w| w as usize).filter(|_| !special);
                let first = word.filter(|w| previous != Some(*w));
                if word.is_some() {
                    previous = word;
                }
                labels.push(first.map_or(IGNORE, |w| gold[w]));
                first_piece_of.push(first);
            }
            Ok(Feature {
                inputs: Inputs::from_encoding(&encoding),
                labels,
                first_piece_of,
                gold,
            })
        })
        .collect()
}

pub(crate) fn prepare(
    mut tokenizer: tokenizers::Tokenizer,
    max_length: usize,
    train: &[TaggedExample],
    held_out: [&[TaggedExample]; 2],
) -> Result<Prepared> {
    truncate_to(&mut tokenizer, max_length)?;
    let (labels, ids) = label_ids(train.iter().flat_map(|e| &e.tags), "tag")?;
    let bio = is_bio(&labels);
    let (train, [validation, test]) = encode_splits(train, held_out, |examples, split| {
        encode(&tokenizer, examples, &ids, split)
    })?;
    let majority = most_frequent(
        train.iter().flat_map(|f| f.gold.iter().copied()),
        labels.len(),
    );
    let pad = pad_id(&tokenizer);
    let task = TokenTask {
        train,
        held_out: [validation, test],
        labels: labels.clone(),
        bio,
        majority,
        pad,
    };
    // The baseline tags every word with the most frequent training tag.
    let validation = &task.held_out[Split::Validation as usize];
    let constant: Vec<Vec<i64>> = validation
        .iter()
        .map(|f| vec![majority; f.gold.len()])
        .collect();
    let (name, value) = task.metrics(validation, &constant)[0];
    let baseline = Some((
        format!(
            "{name} of tagging every word `{}`",
            labels[majority as usize]
        ),
        value,
    ));
    Ok(Prepared {
        task: Box::new(task),
        labels,
        baseline,
    })
}

impl TokenTask {
    /// Logits [batch, seq, tags] and labels [batch, seq] of some features.
    fn logits(
        &self,
        model: &AlbertModel,
        items: &[&Feature],
        device: Device,
        train: bool,
    ) -> Result<(Tensor, Tensor)> {
        let inputs: Vec<&Inputs> = items.iter().map(|f| &f.inputs).collect();
        let (ids, mask, types) = pad(&inputs, self.pad, device);
        let seq = ids.size()[1] as usize;
        let mut labels = vec![IGNORE; items.len() * seq];
        for (r, f) in items.iter().enumerate() {
            labels[r * seq..r * seq + f.labels.len()].copy_from_slice(&f.labels);
        }
        let logits = model
            .forward(&ids, Some(&mask), Some(&types), train)?
            .classifier_logits
            .ok_or(TrainError::MissingHead("classifier"))?;
        let labels = Tensor::from_slice(&labels)
            .view([items.len() as i64, seq as i64])
            .to_device(device);
        Ok((logits, labels))
    }

    /// Mean cross-entropy over the labelled positions (HF's `CrossEntropyLoss` with its
    /// ignore index).
    fn loss_of(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        let tags = self.labels.len() as i64;
        logits.view([-1, tags]).cross_entropy_loss::<Tensor>(
            &labels.view([-1]),
            None,
            tch::Reduction::Mean,
            IGNORE,
            0.0,
        )
    }

    /// (main metric, others) of predicted word tags against the gold of `set`.
    fn metrics(&self, set: &[Feature], predicted: &[Vec<i64>]) -> Vec<(&'static str, f64)> {
        let (mut right, mut words) = (0usize, 0usize);
        for (f, p) in set.iter().zip(predicted) {
            right += f.gold.iter().zip(p).filter(|(g, p)| g == p).count();
            words += f.gold.len();
        }
        let accuracy = right as f64 / words.max(1) as f64;
        if !self.bio {
            return vec![("accuracy", accuracy)];
        }
        let names = |ids: &[i64]| -> Vec<&str> {
            ids.iter()
                .map(|&i| self.labels[i as usize].as_str())
                .collect()
        };
        let gold: Vec<Vec<&str>> = set.iter().map(|f| names(&f.gold)).collect();
        let predicted: Vec<Vec<&str>> = predicted.iter().map(|p| names(p)).collect();
        let (precision, recall, f1) = entity_f1(&gold, &predicted);
        vec![
            ("f1", f1),
            ("precision", precision),
            ("recall", recall),
            ("accuracy", accuracy),
        ]
    }
}

impl Task for TokenTask {
    fn len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, model: &AlbertModel, batch: &[usize], device: Device) -> Result<Tensor> {
        let items: Vec<&Feature> = batch.iter().map(|&i| &self.train[i]).collect();
        let (logits, labels) = self.logits(model, &items, device, true)?;
        Ok(self.loss_of(&logits, &labels))
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
        let (mut loss, mut labelled) = (0.0, 0.0);
        let mut predicted = Vec::with_capacity(set.len());
        for chunk in set.chunks(batch_size) {
            let items: Vec<&Feature> = chunk.iter().collect();
            let (logits, labels) = self.logits(model, &items, device, false)?;
            let n = labels.ne(IGNORE).sum(Kind::Float).double_value(&[]);
            if n > 0.0 {
                loss += self.loss_of(&logits, &labels).double_value(&[]) * n;
                labelled += n;
            }
            let best = Vec::<Vec<i64>>::try_from(logits.argmax(-1, false).to_device(Device::Cpu))?;
            for (f, row) in chunk.iter().zip(best) {
                // Words cut off by truncation get the most frequent tag, so they still count.
                let mut words = vec![self.majority; f.gold.len()];
                for (t, word) in f.first_piece_of.iter().enumerate() {
                    if let Some(w) = word {
                        words[*w] = row[t];
                    }
                }
                predicted.push(words);
            }
        }
        Ok(Evaluation {
            loss: loss / labelled.max(1.0),
            metrics: self.metrics(set, &predicted),
        })
    }
}
