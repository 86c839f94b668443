//! Intrinsic evaluation of a pretrained checkpoint, as the paper's Table 5 reports it: held-out
//! MLM accuracy and accuracy on both sentence tasks, SOP and NSP, whichever objective the model
//! was trained with.
//!
//! * MLM: n-gram masking as in pretraining, on held-out examples built without a sentence
//!   objective (segments in order), so every model is scored on the same inputs.
//! * SOP and NSP, with the model's own head when it has one for that task (on the held-out
//!   examples pretraining evaluates on, masked likewise), and with the head trained for the
//!   *other* task: both heads answer "is B the natural continuation of A?" (label 1: swapped or
//!   random, 0: in order), so an NSP head can be scored on SOP examples and an SOP head on NSP
//!   ones. This is how the paper's Table 5 reads: the NSP-trained model's 52.0 % on SOP, the
//!   SOP-trained model's 78.9 % on NSP.
//! * SOP and NSP with a **linear probe** for every model, so a model that never trained a head
//!   for a task is measured too: logistic regression on the frozen final hidden state of `[CLS]`
//!   (features standardized with the probe-training statistics), trained on examples from the
//!   training text, scored on the held-out examples. The encoder is not updated.

use std::path::{Path, PathBuf};

use albert_core::Checkpoint;
use albert_core::params::SentenceHead;
use tch::nn::{Module, OptimizerConfig};
use tch::{Device, Kind, Tensor, nn};

use crate::data::{
    Batch, Corpus, Instance, InstanceOptions, Objective, SpecialIds, create_instances,
};
use crate::error::{Result, TrainError};
use crate::model::AlbertModel;
use crate::pretrain::batch_metrics;

/// Seed offsets: held-out examples as pretraining's evaluation draws them; probe-training ones.
pub const HELD_OUT_SEED: u64 = 0xE7A1;
const PROBE_SEED: u64 = 0x960BE;

#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    /// A checkpoint directory with its tokenizer.json.
    pub model: PathBuf,
    /// Held-out text (one sentence per line, blank lines between documents).
    pub eval_files: Vec<PathBuf>,
    /// Text the probes are trained on (the training corpus, say).
    pub probe_train_files: Vec<PathBuf>,
    pub max_seq_length: usize,
    /// Held-out examples per measurement (at most).
    pub examples: usize,
    /// Probe-training examples per task (at most).
    pub probe_examples: usize,
    /// Full-batch Adam steps of each probe.
    pub probe_steps: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub device: Device,
}

/// One sentence task's accuracies.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SentenceScores {
    /// With the model's own head for this task, if it has one.
    pub head: Option<f64>,
    /// With the head the model trained for the other sentence task (its "not a continuation"
    /// class read as this task's label 1), if it has that one instead.
    pub other_head: Option<f64>,
    /// With the linear probe on frozen `[CLS]` features.
    pub probe: f64,
    /// Of always answering the held-out examples' more frequent label.
    pub chance: f64,
    pub held_out_examples: usize,
    pub probe_train_examples: usize,
}

/// What [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvaluationReport {
    pub model: PathBuf,
    /// The sentence head the checkpoint has (`sop`, `nsp`) or `none`.
    pub trained_objective: String,
    /// None when the checkpoint has no MLM head.
    pub mlm_accuracy: Option<f64>,
    pub mlm_predictions: usize,
    pub sop: SentenceScores,
    pub nsp: SentenceScores,
}

fn files(v: &[PathBuf]) -> Vec<&Path> {
    v.iter().map(PathBuf::as_path).collect()
}

/// Final `[CLS]` hidden states [n, H] of `instances`, in batches, without gradients.
fn cls_features(
    model: &AlbertModel,
    instances: &[Instance],
    batch_size: usize,
    pad: u32,
    device: Device,
) -> Result<Tensor> {
    let _guard = tch::no_grad_guard();
    let mut parts = Vec::new();
    for chunk in instances.chunks(batch_size.max(1)) {
        let refs: Vec<&Instance> = chunk.iter().collect();
        let batch = Batch::new(&refs, pad, device);
        let (hidden, _) = model.encode(
            &batch.input_ids,
            &batch.attention_mask,
            &batch.token_type_ids,
            false,
        )?;
        parts.push(hidden.select(1, 0).to_device(Device::Cpu));
    }
    Ok(Tensor::cat(&parts, 0))
}

fn labels(instances: &[Instance]) -> Tensor {
    let v: Vec<i64> = instances
        .iter()
        .map(|i| i64::from(i.sentence_label))
        .collect();
    Tensor::from_slice(&v)
}

fn accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// Fits a logistic-regression probe on (`train`, `train_labels`) — features standardized with
/// the training statistics, full-batch Adam (lr 0.01, weight decay 1e-4) for `steps` — and
/// returns its accuracy on (`test`, `test_labels`).
pub fn linear_probe(
    train: &Tensor,
    train_labels: &Tensor,
    test: &Tensor,
    test_labels: &Tensor,
    steps: usize,
    seed: u64,
) -> Result<f64> {
    tch::manual_seed(seed as i64);
    let mean = train.mean_dim(0, true, Kind::Float);
    let std = train.std_dim(0, false, true) + 1e-6;
    let standardize = |x: &Tensor| (x - &mean) / &std;
    let (x, x_test) = (standardize(train), standardize(test));
    let width = train.size()[1];
    let classes = train_labels.max().int64_value(&[]).max(1) + 1;
    let vs = nn::VarStore::new(Device::Cpu);
    let probe = nn::linear(vs.root(), width, classes, Default::default());
    let mut adam = nn::Adam {
        wd: 1e-4,
        ..Default::default()
    }
    .build(&vs, 1e-2)?;
    for _ in 0..steps {
        let loss = probe.forward(&x).cross_entropy_for_logits(train_labels);
        adam.backward_step(&loss);
    }
    let _guard = tch::no_grad_guard();
    Ok(accuracy(&probe.forward(&x_test), test_labels))
}

fn chance(instances: &[Instance]) -> f64 {
    let ones = instances.iter().filter(|i| i.sentence_label == 1).count();
    let n = instances.len().max(1);
    ones.max(n - ones) as f64 / n as f64
}

/// Evaluates `options.model` (see the module comment).
pub fn evaluate(options: &EvaluateOptions) -> Result<EvaluationReport> {
    let checkpoint = Checkpoint::read_dir(&options.model)?;
    let tokenizer =
        albert_core::tokenizer::load(&options.model.join(albert_core::checkpoint::TOKENIZER_FILE))?;
    let ids = SpecialIds::from_tokenizer(&tokenizer)?;
    let max_seq_length = options
        .max_seq_length
        .min(checkpoint.config.max_position_embeddings);
    let vs = nn::VarStore::new(options.device);
    let model = AlbertModel::from_checkpoint(&vs, &checkpoint)?;
    let parts = model.parts();
    let held_out = Corpus::load(&files(&options.eval_files), &tokenizer)?;
    let probe_text = Corpus::load(&files(&options.probe_train_files), &tokenizer)?;
    let instances = |corpus: &Corpus, objective: Objective, seed: u64, n: usize| {
        let options = InstanceOptions {
            max_seq_length,
            objective,
            ..InstanceOptions::default()
        };
        let mut all = create_instances(corpus, &ids, &options, seed, 0);
        all.truncate(n);
        all
    };
    let seed = options.seed;
    let batch_size = options.batch_size.max(1);

    // MLM on order-preserving examples, the same for every model.
    let (mlm_accuracy, mlm_predictions) = if parts.mlm {
        let set = instances(
            &held_out,
            Objective::None,
            seed ^ HELD_OUT_SEED,
            options.examples,
        );
        let (mut right, mut total) = (0.0, 0usize);
        tch::no_grad(|| -> Result<()> {
            for chunk in set.chunks(batch_size) {
                let refs: Vec<&Instance> = chunk.iter().collect();
                let batch = Batch::new(&refs, ids.pad, options.device);
                let (_, m) = batch_metrics(&model, &batch, Objective::None, false)?;
                let n = chunk
                    .iter()
                    .map(|i| i.masked_positions.len())
                    .sum::<usize>();
                right += m.mlm_accuracy * n as f64;
                total += n;
            }
            Ok(())
        })?;
        (Some(right / total.max(1) as f64), total)
    } else {
        (None, 0)
    };

    let mut scores = Vec::new();
    for (objective, head) in [
        (Objective::Sop, SentenceHead::Sop),
        (Objective::Nsp, SentenceHead::Nsp),
    ] {
        let test = instances(&held_out, objective, seed ^ HELD_OUT_SEED, options.examples);
        let train = instances(
            &probe_text,
            objective,
            seed ^ PROBE_SEED,
            options.probe_examples,
        );
        if test.is_empty() || train.is_empty() {
            return Err(TrainError::BadInput {
                name: "text",
                message: format!(
                    "no {objective} examples could be made (held-out: {}, probe training: {}); the text needs documents of two or more sentences",
                    test.len(),
                    train.len()
                ),
            });
        }
        // The model's sentence head, whichever task it was trained for (see the module comment).
        let head_accuracy = if parts.sentence.is_some() && parts.pooler {
            let mut right = 0.0;
            tch::no_grad(|| -> Result<()> {
                for chunk in test.chunks(batch_size) {
                    let refs: Vec<&Instance> = chunk.iter().collect();
                    let batch = Batch::new(&refs, ids.pad, options.device);
                    let (_, m) = batch_metrics(&model, &batch, objective, false)?;
                    right += m.sentence_accuracy * chunk.len() as f64;
                }
                Ok(())
            })?;
            Some(right / test.len() as f64)
        } else {
            None
        };
        let train_x = cls_features(&model, &train, batch_size, ids.pad, options.device)?;
        let test_x = cls_features(&model, &test, batch_size, ids.pad, options.device)?;
        let probe = linear_probe(
            &train_x,
            &labels(&train),
            &test_x,
            &labels(&test),
            options.probe_steps,
            seed,
        )?;
        let own = parts.sentence == Some(head);
        scores.push(SentenceScores {
            head: head_accuracy.filter(|_| own),
            other_head: head_accuracy.filter(|_| !own),
            probe,
            chance: chance(&test),
            held_out_examples: test.len(),
            probe_train_examples: train.len(),
        });
    }
    Ok(EvaluationReport {
        model: options.model.clone(),
        trained_objective: match parts.sentence {
            Some(SentenceHead::Sop) => "sop",
            Some(SentenceHead::Nsp) => "nsp",
            None => "none",
        }
        .into(),
        mlm_accuracy,
        mlm_predictions,
        sop: scores[0],
        nsp: scores[1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_finds_a_linear_signal_and_not_a_missing_one() {
        tch::manual_seed(3);
        let n = 400;
        let x = Tensor::randn([2 * n, 16], (Kind::Float, Device::Cpu));
        // Label = sign of a fixed direction: linearly decodable.
        let w = Tensor::randn([16], (Kind::Float, Device::Cpu));
        let y = x.matmul(&w).gt(0.0).to_kind(Kind::Int64);
        let (train, test) = (x.narrow(0, 0, n), x.narrow(0, n, n));
        let (ytr, yte) = (y.narrow(0, 0, n), y.narrow(0, n, n));
        let acc = linear_probe(&train, &ytr, &test, &yte, 300, 0).expect("probe");
        assert!(acc > 0.95, "separable: {acc}");
        // Labels independent of the features: chance on held-out data.
        let noise = Tensor::randint(2, [2 * n], (Kind::Int64, Device::Cpu));
        let acc = linear_probe(
            &train,
            &noise.narrow(0, 0, n),
            &test,
            &noise.narrow(0, n, n),
            300,
            0,
        )
        .expect("probe");
        assert!((0.4..0.6).contains(&acc), "noise: {acc}");
    }
}
