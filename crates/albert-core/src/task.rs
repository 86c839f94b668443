//! What an exported ALBERT graph computes — its task — with the heads it needs and the output
//! names it has. Defined once here for the exporter (which task to build), the runtime and the
//! server (which tasks a loaded model can do), the trainer and the bench. Output names follow HF
//! optimum's ONNX exports (`last_hidden_state`, `pooler_output`, `logits`, `start_logits`, …).

use std::fmt;
use std::str::FromStr;

use crate::error::{AlbertError, Result};
use crate::params::{Parts, SentenceHead};

/// What an exported graph computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// `AlbertModel`: `last_hidden_state` (and `pooler_output` when the checkpoint has a pooler).
    Base,
    /// `AlbertForMaskedLM`: `logits` over the vocabulary for every token.
    MaskedLm,
    /// `AlbertForPreTraining`: `prediction_logits` and `sop_logits` (or `nsp_logits`).
    Pretraining,
    /// `AlbertForSequenceClassification`: `logits` per text.
    SequenceClassification,
    /// `AlbertForTokenClassification`: `logits` per token.
    TokenClassification,
    /// `AlbertForQuestionAnswering`: `start_logits` and `end_logits` per token.
    QuestionAnswering,
}

/// An output of a loaded graph as seen by an engine: its name and the shape of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputShape {
    /// The output's name, e.g. `logits`.
    pub name: String,
    /// Its dimensions in that run.
    pub dims: Vec<usize>,
}

impl Task {
    /// Every task, in the order `--help` lists them.
    pub const ALL: [Task; 6] = [
        Task::Base,
        Task::MaskedLm,
        Task::Pretraining,
        Task::SequenceClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
    ];

    /// The tasks fine-tuning trains a new head for (`albert-train finetune --task`).
    pub const FINE_TUNING: [Task; 3] = [
        Task::SequenceClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
    ];

    /// The name used on command lines, in metadata (`albert.task`) and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Task::Base => "base",
            Task::MaskedLm => "masked-lm",
            Task::Pretraining => "pretraining",
            Task::SequenceClassification => "sequence-classification",
            Task::TokenClassification => "token-classification",
            Task::QuestionAnswering => "question-answering",
        }
    }

    /// The richest task a checkpoint's heads allow.
    pub fn default_for(parts: &Parts) -> Task {
        if parts.qa {
            Task::QuestionAnswering
        } else if parts.classifier && parts.pooler {
            Task::SequenceClassification
        } else if parts.classifier {
            Task::TokenClassification
        } else if parts.mlm && parts.pooler && parts.sentence.is_some() {
            Task::Pretraining
        } else if parts.mlm {
            Task::MaskedLm
        } else {
            Task::Base
        }
    }

    /// `None` when a checkpoint with these heads can be exported for this task, else what it
    /// lacks.
    pub fn missing_heads(self, parts: &Parts) -> Option<&'static str> {
        let (ok, needs) = match self {
            Task::Base => (true, ""),
            Task::MaskedLm => (parts.mlm, "an MLM head (predictions.*)"),
            Task::Pretraining => (
                parts.mlm && parts.pooler && parts.sentence.is_some(),
                "a pooler, an MLM head and an SOP or NSP head",
            ),
            Task::SequenceClassification => (
                parts.classifier && parts.pooler,
                "a pooler and a classifier (classifier.*)",
            ),
            Task::TokenClassification => (
                parts.classifier && !parts.pooler,
                "a token classifier (classifier.* without a pooler)",
            ),
            Task::QuestionAnswering => (parts.qa, "a span head (qa_outputs.*)"),
        };
        (!ok).then_some(needs)
    }

    /// Output names, in graph order, for a checkpoint with these heads.
    pub fn outputs(self, parts: &Parts) -> Vec<&'static str> {
        match self {
            Task::Base if parts.pooler => vec!["last_hidden_state", "pooler_output"],
            Task::Base => vec!["last_hidden_state"],
            Task::MaskedLm | Task::SequenceClassification | Task::TokenClassification => {
                vec!["logits"]
            }
            Task::Pretraining => match parts.sentence {
                Some(SentenceHead::Nsp) => vec!["prediction_logits", "nsp_logits"],
                _ => vec!["prediction_logits", "sop_logits"],
            },
            Task::QuestionAnswering => vec!["start_logits", "end_logits"],
        }
    }

    /// Whether output `output` of this task has a value per token (`[batch, sequence, …]`)
    /// rather than per text.
    pub fn is_per_token(self, output: &str) -> bool {
        match output {
            "last_hidden_state" | "prediction_logits" | "start_logits" | "end_logits" => true,
            "logits" => matches!(self, Task::MaskedLm | Task::TokenClassification),
            _ => false,
        }
    }

    /// The task of a graph from its outputs, for models that carry no `albert.task` metadata
    /// (third-party exports): `prediction_logits` is pretraining, `start_logits` question
    /// answering, `last_hidden_state` base; `logits` per token over the whole vocabulary is
    /// masked-LM, per token otherwise token classification, and per text sequence
    /// classification. `None` when the outputs are none of these.
    pub fn from_outputs(outputs: &[OutputShape], vocab_size: usize) -> Option<Task> {
        let find = |name: &str| outputs.iter().find(|o| o.name == name);
        if find("prediction_logits").is_some() {
            Some(Task::Pretraining)
        } else if find("start_logits").is_some() && find("end_logits").is_some() {
            Some(Task::QuestionAnswering)
        } else if let Some(logits) = find("logits") {
            match logits.dims.as_slice() {
                [_, _, v] if *v == vocab_size => Some(Task::MaskedLm),
                [_, _, _] => Some(Task::TokenClassification),
                [_, _] => Some(Task::SequenceClassification),
                _ => None,
            }
        } else if find("last_hidden_state").is_some() {
            Some(Task::Base)
        } else {
            None
        }
    }
}

impl FromStr for Task {
    type Err = AlbertError;

    fn from_str(s: &str) -> Result<Self> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| AlbertError::UnknownName {
                what: "task",
                found: s.to_string(),
                expected: Task::ALL.map(Task::name).join(", "),
            })
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shape(name: &str, dims: &[usize]) -> OutputShape {
        OutputShape {
            name: name.into(),
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for task in Task::ALL {
            assert_eq!(task.name().parse::<Task>().unwrap(), task);
        }
        let err = "embeddings".parse::<Task>().unwrap_err().to_string();
        assert!(
            err.contains("`embeddings`") && err.contains("question-answering"),
            "{err}"
        );
    }

    #[test]
    fn the_task_is_read_from_output_names_and_shapes() {
        let vocab = 30000;
        let cases = [
            (
                vec![shape("last_hidden_state", &[1, 3, 768])],
                Some(Task::Base),
            ),
            (
                vec![
                    shape("last_hidden_state", &[1, 3, 768]),
                    shape("pooler_output", &[1, 768]),
                ],
                Some(Task::Base),
            ),
            (vec![shape("logits", &[1, 3, vocab])], Some(Task::MaskedLm)),
            (
                vec![shape("logits", &[1, 3, 9])],
                Some(Task::TokenClassification),
            ),
            (
                vec![shape("logits", &[1, 2])],
                Some(Task::SequenceClassification),
            ),
            (
                vec![
                    shape("prediction_logits", &[1, 3, vocab]),
                    shape("sop_logits", &[1, 2]),
                ],
                Some(Task::Pretraining),
            ),
            (
                vec![shape("start_logits", &[1, 3]), shape("end_logits", &[1, 3])],
                Some(Task::QuestionAnswering),
            ),
            (vec![shape("start_logits", &[1, 3])], None),
            (vec![shape("scores", &[1, 3])], None),
        ];
        for (outputs, want) in cases {
            assert_eq!(Task::from_outputs(&outputs, vocab), want, "{outputs:?}");
        }
    }

    #[test]
    fn each_head_set_exports_its_default_task() {
        for head in crate::Head::ALL {
            let parts = head.parts();
            let task = Task::default_for(&parts);
            assert_eq!(task.missing_heads(&parts), None, "{head}");
        }
        let base = crate::Head::Base.parts();
        assert!(Task::QuestionAnswering.missing_heads(&base).is_some());
    }
}
