//! ALBERT's other tasks in the HF Inference API's JSON shapes: `POST /fill-mask`,
//! `POST /token-classification`, `POST /question-answering`.

use std::sync::Arc;
use std::time::Instant;

use albert_runtime::{ModelOutputs, WordLabel};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokenizers::Encoding;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::infer::{self, ApiJson, Input, Timing};
use crate::models::Capability;
use crate::routes::inputs::texts;
use crate::state::AppState;

/// `parameters` of `/fill-mask`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct FillMaskParameters {
    /// Candidates per mask [default: 5].
    pub top_k: Option<usize>,
}

/// `POST /fill-mask`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FillMaskRequest {
    /// A text with one or more `[MASK]`, or a list of such texts.
    #[schema(value_type = crate::routes::inputs::TextOrTexts)]
    pub inputs: serde_json::Value,
    /// Options.
    #[serde(default)]
    pub parameters: FillMaskParameters,
    /// Cut texts longer than the model takes instead of failing [default: false].
    #[serde(default)]
    pub truncate: bool,
    /// The served model (optional when one model is served).
    pub model: Option<String>,
}

/// One candidate for a mask, as HF's fill-mask pipeline gives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillMaskCandidate {
    /// Its probability.
    score: f32,
    /// The token id.
    token: u32,
    /// The token as text.
    token_str: String,
    /// The text with this mask filled by it.
    sequence: String,
}

/// The candidates for one text: a list for one mask, a list per mask for several (HF's shapes).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FillMaskText {
    /// The text has one mask.
    Candidates(Vec<FillMaskCandidate>),
    /// The text has several masks: a list each.
    PerMask(Vec<Vec<FillMaskCandidate>>),
}

/// `/fill-mask`'s answer: for one text its candidates, for a list of texts a list of those.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum FillMaskResponse {
    /// For one text.
    One(FillMaskText),
    /// For a list of texts.
    Many(Vec<FillMaskText>),
}

/// Most candidates per mask a request may ask for.
const MAX_TOP_K: usize = 100;

/// `POST /fill-mask`: for a text with one mask, its candidates; with several masks, a list per
/// mask; for a list of texts, a list of those (HF's shapes).
#[utoipa::path(post, path = "/fill-mask", tag = "Tasks", request_body = FillMaskRequest,
    responses((status = 200, description = "The likeliest tokens at each mask", body = FillMaskResponse)))]
pub async fn fill_mask(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<FillMaskRequest>,
) -> Result<(HeaderMap, Json<FillMaskResponse>), ApiError> {
    let mut timing = Timing::start();
    let model = state.model(request.model.as_deref(), Capability::FillMask)?;
    let top_k = request.parameters.top_k.unwrap_or(5);
    if top_k == 0 || top_k > MAX_TOP_K {
        return Err(ApiError::validation(format!(
            "field `parameters.top_k`: {top_k} is not between 1 and {MAX_TOP_K}"
        )));
    }
    let (texts, list) = texts(&request.inputs, "inputs")?;
    let inputs = texts.iter().cloned().map(Input::Text).collect();
    let rows = infer::run(&state, model, inputs, request.truncate, false, &mut timing).await?;
    let pipeline = model.pipeline.clone();
    let answers = infer::blocking(move || {
        rows.iter()
            .zip(&texts)
            .enumerate()
            .map(|(i, (row, text))| {
                let predictions = pipeline
                    .fill_mask_row(&row.outputs, row.row, &row.encoding, top_k)
                    .map_err(|e| ApiError::from_runtime(&e, Some(i)))?;
                let chars: Vec<char> = text.chars().collect();
                let per_mask: Vec<Vec<FillMaskCandidate>> = predictions
                    .into_iter()
                    .map(|prediction| {
                        let (mut start, end) = row
                            .encoding
                            .get_offsets()
                            .get(prediction.position)
                            .copied()
                            .unwrap_or((0, 0));
                        // SentencePiece-style offsets take in the space before the mask.
                        while start < end && chars.get(start).is_some_and(|c| c.is_whitespace()) {
                            start += 1;
                        }
                        prediction
                            .candidates
                            .into_iter()
                            .map(|c| {
                                let mut sequence: String =
                                    chars[..start.min(chars.len())].iter().collect();
                                sequence.push_str(c.text.trim());
                                sequence.extend(&chars[end.min(chars.len())..]);
                                FillMaskCandidate {
                                    score: c.score,
                                    token: c.id,
                                    token_str: c.text.trim().to_string(),
                                    sequence,
                                }
                            })
                            .collect()
                    })
                    .collect();
                Ok(match <[_; 1]>::try_from(per_mask) {
                    Ok([one]) => FillMaskText::Candidates(one),
                    Err(many) => FillMaskText::PerMask(many),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    let response = match (list, answers.len()) {
        (false, 1) => answers
            .into_iter()
            .next()
            .map(FillMaskResponse::One)
            .ok_or_else(|| ApiError::backend("no answer"))?,
        _ => FillMaskResponse::Many(answers),
    };
    Ok((timing.headers(), Json(response)))
}

/// `POST /token-classification`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenClassificationRequest {
    /// A text or a list of texts.
    #[schema(value_type = crate::routes::inputs::TextOrTexts)]
    pub inputs: serde_json::Value,
    /// Cut texts longer than the model takes instead of failing [default: false].
    #[serde(default)]
    pub truncate: bool,
    /// The served model (optional when one model is served).
    pub model: Option<String>,
}

/// An entity: consecutive words of one label, as HF's `aggregation_strategy="simple"` groups
/// them (`B-X` starts an entity, `I-X` continues one; `O` words are left out).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Entity {
    /// The label without its `B-`/`I-` prefix.
    pub entity_group: String,
    /// The mean probability of its words' labels.
    pub score: f32,
    /// The entity as it appears in the text.
    pub word: String,
    /// Character offset of its start.
    pub start: usize,
    /// Character offset just past its end.
    pub end: usize,
}

/// `/token-classification`'s answer: a text's entities, or a list of those for a list of texts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TokenClassificationResponse {
    /// For one text.
    One(Vec<Entity>),
    /// For a list of texts.
    Many(Vec<Vec<Entity>>),
}

/// Groups labelled words into entities.
pub fn group_entities(text: &str, words: &[WordLabel]) -> Vec<Entity> {
    let chars: Vec<char> = text.chars().collect();
    let mut entities: Vec<(Entity, usize)> = Vec::new();
    for word in words {
        if word.label == "O" {
            // An `O` ends any open entity.
            if let Some(last) = entities.last_mut() {
                last.1 = usize::MAX;
            }
            continue;
        }
        let (begins, group) = match word.label.split_once('-') {
            Some(("B", group)) => (true, group),
            Some(("I", group)) => (false, group),
            _ => (false, word.label.as_str()),
        };
        let continues = !begins
            && entities
                .last()
                .is_some_and(|(e, open)| *open != usize::MAX && e.entity_group == group);
        if continues && let Some((entity, words_in)) = entities.last_mut() {
            entity.score = (entity.score * *words_in as f32 + word.score) / (*words_in + 1) as f32;
            *words_in += 1;
            entity.end = word.end;
            entity.word = chars[entity.start.min(chars.len())..entity.end.min(chars.len())]
                .iter()
                .collect();
        } else {
            entities.push((
                Entity {
                    entity_group: group.to_string(),
                    score: word.score,
                    word: word.word.clone(),
                    start: word.start,
                    end: word.end,
                },
                1,
            ));
        }
    }
    entities.into_iter().map(|(e, _)| e).collect()
}

/// `POST /token-classification`: the entities of a text; a list of those for a list of texts.
#[utoipa::path(post, path = "/token-classification", tag = "Tasks", request_body = TokenClassificationRequest,
    responses((status = 200, description = "The entities of each text", body = TokenClassificationResponse)))]
pub async fn token_classification(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<TokenClassificationRequest>,
) -> Result<(HeaderMap, Json<TokenClassificationResponse>), ApiError> {
    let mut timing = Timing::start();
    let model = state.model(request.model.as_deref(), Capability::TokenClassification)?;
    let (texts, list) = texts(&request.inputs, "inputs")?;
    let inputs = texts.iter().cloned().map(Input::Text).collect();
    let rows = infer::run(&state, model, inputs, request.truncate, false, &mut timing).await?;
    let pipeline = model.pipeline.clone();
    let mut all = infer::blocking(move || {
        rows.iter()
            .zip(&texts)
            .enumerate()
            .map(|(i, (row, text))| {
                let words = pipeline
                    .token_classify_row(&row.outputs, row.row, text, &row.encoding)
                    .map_err(|e| ApiError::from_runtime(&e, Some(i)))?;
                Ok(group_entities(text, &words))
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    let response = if list {
        TokenClassificationResponse::Many(all)
    } else {
        TokenClassificationResponse::One(all.pop().unwrap_or_default())
    };
    Ok((timing.headers(), Json(response)))
}

/// A question and the context to find its answer in.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuestionContext {
    /// The question.
    pub question: String,
    /// The text the answer is taken from.
    pub context: String,
}

/// `POST /question-answering`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QuestionAnsweringRequest {
    /// The question and its context.
    pub inputs: QuestionContext,
    /// Accepted for compatibility and ignored: a context longer than the model takes is read
    /// in overlapping windows, so nothing is cut [default: false].
    #[serde(default)]
    pub truncate: bool,
    /// The served model (optional when one model is served).
    pub model: Option<String>,
}

/// The best answer span, with character offsets into the context (`end` exclusive).
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerResponse {
    score: f32,
    start: usize,
    end: usize,
    answer: String,
}

/// `POST /question-answering`: the best span of the context.
#[utoipa::path(post, path = "/question-answering", tag = "Tasks", request_body = QuestionAnsweringRequest,
    responses((status = 200, description = "The best answer span", body = AnswerResponse)))]
pub async fn question_answering(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<QuestionAnsweringRequest>,
) -> Result<(HeaderMap, Json<AnswerResponse>), ApiError> {
    let mut timing = Timing::start();
    let model = state.model(request.model.as_deref(), Capability::QuestionAnswering)?;
    let QuestionContext { question, context } = request.inputs;
    for (field, value) in [("question", &question), ("context", &context)] {
        if value.trim().is_empty() {
            return Err(ApiError::validation(format!(
                "field `inputs.{field}`: the text is empty"
            )));
        }
    }
    // A long context is read in overlapping windows, as fine-tuning reads it (albert_core::qa);
    // each window is one row for the batcher.
    let pipeline = model.pipeline.clone();
    let started = Instant::now();
    let tokenizing = model.batcher.pending();
    let windows = infer::blocking({
        let context = context.clone();
        move || pipeline.answer_windows(&question, &context)
    })
    .await?
    .map_err(|e| ApiError::from_runtime(&e, None))?;
    timing.tokenization = started.elapsed();
    let limit = state.limits.max_client_batch_size;
    if windows.len() > limit {
        return Err(ApiError::too_large(format!(
            "the context needs {} windows of {} tokens, more than --max-client-batch-size {limit}",
            windows.len(),
            model.pipeline.max_length()
        )));
    }
    let encodings = windows.into_iter().map(Arc::new).collect();
    let rows = infer::run_encoded(model, encodings, tokenizing, &mut timing).await?;
    let pipeline = model.pipeline.clone();
    let answer = infer::blocking(move || {
        let outputs: Vec<(&ModelOutputs, usize)> =
            rows.iter().map(|r| (&*r.outputs, r.row)).collect();
        let windows: Vec<&Encoding> = rows.iter().map(|r| &*r.encoding).collect();
        pipeline
            .best_answer(&outputs, &windows, &context)
            .map_err(|e| ApiError::from_runtime(&e, None))
    })
    .await??;
    Ok((
        timing.headers(),
        Json(AnswerResponse {
            score: answer.score,
            start: answer.start,
            end: answer.end,
            answer: answer.text,
        }),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn word(text: &str, label: &str, score: f32, start: usize) -> WordLabel {
        WordLabel {
            word: text.into(),
            label: label.into(),
            score,
            start,
            end: start + text.chars().count(),
        }
    }

    #[test]
    fn words_group_into_entities_as_hf_simple_aggregation_does() {
        let text = "Ada Lovelace met Charles Babbage in London";
        let words = [
            word("Ada", "B-PER", 0.9, 0),
            word("Lovelace", "I-PER", 0.7, 4),
            word("met", "O", 0.99, 13),
            word("Charles", "B-PER", 0.8, 17),
            word("Babbage", "B-PER", 0.6, 25),
            word("in", "O", 0.99, 33),
            word("London", "I-LOC", 0.5, 36),
        ];
        let entities = group_entities(text, &words);
        let got: Vec<(&str, &str, usize, usize)> = entities
            .iter()
            .map(|e| (e.entity_group.as_str(), e.word.as_str(), e.start, e.end))
            .collect();
        assert_eq!(
            got,
            vec![
                ("PER", "Ada Lovelace", 0, 12),
                ("PER", "Charles", 17, 24),
                ("PER", "Babbage", 25, 32),
                ("LOC", "London", 36, 42),
            ]
        );
        assert!((entities[0].score - 0.8).abs() < 1e-6);
    }
}
