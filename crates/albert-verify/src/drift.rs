//! A converted model's outputs against its source model's, in an engine: max-abs and cosine on
//! sample inputs, and on real text (when a tokenizer and text are given) the cosine of
//! mean-pooled embeddings and, for masked-LM models, top-1 agreement of the predictions at
//! masked positions. (Sizes and node counts, which need no engine, are
//! `albert_onnx::convert::report`.)

use std::collections::BTreeMap;
use std::path::Path;

use albert_core::compare::{self, Drift};
use albert_runtime::backend::{Backend, ModelInputs};
use ndarray::{Array2, ArrayD, Axis};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::error::{Result, VerifyError};
use crate::verify::{self, Engine};

/// One output of the converted model on one engine against the source.
#[derive(Debug, Clone, Serialize)]
pub struct DriftRow {
    pub engine: &'static str,
    pub inputs: String,
    pub output: String,
    /// In JSON as the row's `max_abs`, `cosine` and `fault` fields ([`drift_fields`]).
    #[serde(flatten, serialize_with = "drift_fields")]
    pub drift: Drift,
}

/// `max_abs` and `cosine` are null (JSON has no infinities) when the outputs are not comparable;
/// `fault` says why.
fn drift_fields<S: Serializer>(drift: &Drift, serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(3))?;
    map.serialize_entry("max_abs", &drift.max_abs)?;
    map.serialize_entry("cosine", &drift.cosine)?;
    map.serialize_entry("fault", &drift.fault.as_ref().map(ToString::to_string))?;
    map.end()
}

/// Loads a model in an engine.
pub fn load(engine: Engine, model: &Path, ort_library: Option<&Path>) -> Result<Box<dyn Backend>> {
    match engine {
        Engine::OnnxRuntime => verify::load_onnxruntime(model, ort_library),
        Engine::Tract => verify::load_tract(model),
    }
}

fn run_all(backend: &dyn Backend, inputs: &ModelInputs) -> Result<BTreeMap<String, ArrayD<f32>>> {
    backend
        .run(inputs)?
        .into_iter()
        .map(|(name, value)| Ok((name, value.to_array()?)))
        .collect()
}

/// Compares every output the two models share, on each input batch.
pub fn drift(
    source: &dyn Backend,
    converted: &dyn Backend,
    engine: Engine,
    batches: &[(String, ModelInputs)],
) -> Result<Vec<DriftRow>> {
    let mut rows = Vec::new();
    for (label, inputs) in batches {
        let want = run_all(source, inputs)?;
        let got = run_all(converted, inputs)?;
        for (name, reference) in &want {
            if let Some(value) = got.get(name) {
                rows.push(DriftRow {
                    engine: engine.name(),
                    inputs: label.clone(),
                    output: name.clone(),
                    drift: compare::drift(reference, value),
                });
            }
        }
    }
    Ok(rows)
}

/// Agreement on real text.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TextDrift {
    pub engine: &'static str,
    pub sentences: usize,
    /// Mean and minimum cosine of mean-pooled `last_hidden_state` per sentence.
    pub embedding_cosine_mean: Option<f64>,
    pub embedding_cosine_min: Option<f64>,
    /// Fraction of masked positions where both models predict the same token.
    pub mlm_top1_agreement: Option<f64>,
    pub masked_positions: usize,
}

/// Batches of tokenized sentences, every 7th word-piece (after [CLS]) replaced by `[MASK]` so
/// masked-LM models have positions to predict (the same positions for both models).
pub fn text_batches(
    tokenizer: &tokenizers::Tokenizer,
    sentences: &[String],
    batch: usize,
    max_length: usize,
) -> Result<Vec<ModelInputs>> {
    let mask_id = tokenizer
        .token_to_id(albert_core::tokenizer::MASK)
        .map(i64::from);
    let pad = tokenizer
        .token_to_id(albert_core::tokenizer::PAD)
        .map_or(0, i64::from);
    let mut out = Vec::new();
    for chunk in sentences.chunks(batch.max(1)) {
        let encoded: Vec<Vec<i64>> = chunk
            .iter()
            .map(|s| {
                tokenizer
                    .encode(s.as_str(), true)
                    .map(|e| {
                        let mut ids: Vec<i64> = e.get_ids().iter().map(|&i| i64::from(i)).collect();
                        ids.truncate(max_length);
                        ids
                    })
                    .map_err(|e| VerifyError::Invalid(format!("tokenizer: {e}")))
            })
            .collect::<Result<_>>()?;
        let length = encoded.iter().map(Vec::len).max().unwrap_or(1);
        let mut input_ids = Array2::<i64>::from_elem((chunk.len(), length), pad);
        let mut attention_mask = Array2::<i64>::zeros((chunk.len(), length));
        for (r, ids) in encoded.iter().enumerate() {
            for (c, &id) in ids.iter().enumerate() {
                let masked = mask_id.is_some() && c > 0 && c + 1 < ids.len() && c % 7 == 3;
                input_ids[[r, c]] = if masked { mask_id.unwrap_or(id) } else { id };
                attention_mask[[r, c]] = 1;
            }
        }
        out.push(ModelInputs {
            token_type_ids: Array2::zeros((chunk.len(), length)),
            input_ids,
            attention_mask,
        });
    }
    Ok(out)
}

/// Embedding cosine and MLM agreement of `converted` against `source` over text batches.
pub fn text_drift(
    source: &dyn Backend,
    converted: &dyn Backend,
    engine: Engine,
    batches: &[ModelInputs],
    mask_id: Option<i64>,
) -> Result<TextDrift> {
    let mut cosines = Vec::new();
    let (mut agree, mut masked) = (0usize, 0usize);
    let mut has_logits = false;
    for inputs in batches {
        let want = run_all(source, inputs)?;
        let got = run_all(converted, inputs)?;
        if let (Some(a), Some(b)) = (want.get("last_hidden_state"), got.get("last_hidden_state")) {
            for r in 0..inputs.input_ids.nrows() {
                let mask = inputs.attention_mask.row(r);
                let pool = |h: &ArrayD<f32>| -> Vec<f32> {
                    let h = h.index_axis(Axis(0), r);
                    let mut sum = vec![0f64; h.shape()[1]];
                    for (p, row) in h.outer_iter().enumerate() {
                        if mask[p] == 1 {
                            for (s, &v) in sum.iter_mut().zip(row.iter()) {
                                *s += f64::from(v);
                            }
                        }
                    }
                    sum.into_iter().map(|v| v as f32).collect()
                };
                // A NaN in either pooled vector makes this -inf, and so the mean and minimum.
                cosines.push(compare::cosine(&pool(a), &pool(b)));
            }
        }
        if let (Some(a), Some(b), Some(mask_id)) = (want.get("logits"), got.get("logits"), mask_id)
            && a.ndim() == 3
        {
            has_logits = true;
            for ((r, c), &id) in inputs.input_ids.indexed_iter() {
                if id != mask_id {
                    continue;
                }
                let argmax = |t: &ArrayD<f32>| {
                    t.index_axis(Axis(0), r)
                        .index_axis(Axis(0), c)
                        .iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                            if v > best.1 { (i, v) } else { best }
                        })
                        .0
                };
                masked += 1;
                agree += usize::from(argmax(a) == argmax(b));
            }
        }
    }
    Ok(TextDrift {
        engine: engine.name(),
        sentences: batches.iter().map(|b| b.input_ids.nrows()).sum(),
        embedding_cosine_mean: (!cosines.is_empty())
            .then(|| cosines.iter().sum::<f64>() / cosines.len() as f64),
        embedding_cosine_min: cosines.iter().copied().reduce(f64::min),
        mlm_top1_agreement: (has_logits && masked > 0).then(|| agree as f64 / masked as f64),
        masked_positions: masked,
    })
}
