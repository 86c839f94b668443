//! TEI-compatible routes (text-embeddings-inference): `POST /embed`, `POST /predict`,
//! `POST /tokenize`, with TEI's request fields and answer shapes.

use std::sync::Arc;

use albert_runtime::{EmbedOptions, Pooling};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::infer::{self, ApiJson, Timing};
use crate::models::Capability;
use crate::routes::inputs::{predict_inputs, texts, texts_or_ids};
use crate::state::AppState;

fn yes() -> bool {
    true
}

/// How `/embed` pools token vectors.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PoolingParam {
    /// The mean over the text's tokens (default).
    #[default]
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
    /// ALBERT's pooler (tanh of a dense layer on `[CLS]`), when the export has it.
    Pooler,
}

/// `POST /embed`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbedRequest {
    /// A text, a list of texts, token ids or a list of token-id lists.
    #[schema(value_type = crate::routes::inputs::TextsOrIds)]
    pub inputs: serde_json::Value,
    /// Scale vectors to unit length [default: true].
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub normalize: bool,
    /// Cut texts longer than the model takes instead of failing [default: false].
    #[serde(default)]
    pub truncate: bool,
    /// How token vectors are pooled [default: mean].
    #[serde(default)]
    pub pooling: PoolingParam,
    /// The served model (optional when one model is served).
    pub model: Option<String>,
}

/// `POST /embed`: one vector per input.
#[utoipa::path(post, path = "/embed", tag = "TEI", request_body = EmbedRequest,
    responses((status = 200, description = "One vector per input", body = Vec<Vec<f32>>)))]
pub async fn embed(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<EmbedRequest>,
) -> Result<(HeaderMap, Json<Vec<Vec<f32>>>), ApiError> {
    let mut timing = Timing::start();
    let model = state.model(request.model.as_deref(), Capability::Embeddings)?;
    let pooling = match request.pooling {
        PoolingParam::Mean => Pooling::Mean,
        PoolingParam::Cls => Pooling::Cls,
        PoolingParam::Pooler if model.has_pooler() => Pooling::Pooler,
        PoolingParam::Pooler => {
            return Err(ApiError::validation(format!(
                "field `pooling`: model `{}` has no pooler output; use mean or cls",
                model.name
            )));
        }
    };
    let inputs = texts_or_ids(&request.inputs, "inputs")?;
    let rows = infer::run(&state, model, inputs, request.truncate, false, &mut timing).await?;
    let pipeline = model.pipeline.clone();
    let options = EmbedOptions {
        pooling,
        normalize: request.normalize,
    };
    let vectors = infer::blocking(move || {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                pipeline
                    .embed_row(&row.outputs, row.row, &row.encoding, options)
                    .map_err(|e| ApiError::from_runtime(&e, Some(i)))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    Ok((timing.headers(), Json(vectors)))
}

/// `POST /predict`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PredictRequest {
    /// A text; a pair `[a, b]`; or a list of texts and pairs (`[["a"], ["b", "c"]]`).
    #[schema(value_type = crate::routes::inputs::PredictInputs)]
    pub inputs: serde_json::Value,
    /// Cut inputs longer than the model takes instead of failing [default: false].
    #[serde(default)]
    pub truncate: bool,
    /// The served model (optional when one model is served).
    pub model: Option<String>,
}

/// A label and its probability.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Prediction {
    label: String,
    score: f32,
}

/// `/predict`'s answer: every label, most probable first; a list of those for a list of inputs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PredictResponse {
    /// For one input.
    One(Vec<Prediction>),
    /// For a list of inputs.
    Many(Vec<Vec<Prediction>>),
}

/// `POST /predict`: sequence classification of texts or pairs.
#[utoipa::path(post, path = "/predict", tag = "TEI", request_body = PredictRequest,
    responses((status = 200, description = "Every label, most probable first (a list of those for a list of inputs)", body = PredictResponse)))]
pub async fn predict(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<PredictRequest>,
) -> Result<(HeaderMap, Json<PredictResponse>), ApiError> {
    let mut timing = Timing::start();
    let model = state.model(request.model.as_deref(), Capability::TextClassification)?;
    let (inputs, list) = predict_inputs(&request.inputs, "inputs")?;
    let rows = infer::run(&state, model, inputs, request.truncate, false, &mut timing).await?;
    let pipeline = model.pipeline.clone();
    let mut all = infer::blocking(move || {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let classification = pipeline
                    .classify_row(&row.outputs, row.row)
                    .map_err(|e| ApiError::from_runtime(&e, Some(i)))?;
                let mut predictions: Vec<Prediction> = classification
                    .scores
                    .into_iter()
                    .map(|s| Prediction {
                        label: s.label,
                        score: s.score,
                    })
                    .collect();
                predictions.sort_by(|a, b| b.score.total_cmp(&a.score));
                Ok(predictions)
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    let response = match (list, all.pop()) {
        (false, Some(one)) if all.is_empty() => PredictResponse::One(one),
        (_, last) => {
            all.extend(last);
            PredictResponse::Many(all)
        }
    };
    Ok((timing.headers(), Json(response)))
}

/// `POST /tokenize`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenizeRequest {
    /// A text or a list of texts.
    #[schema(value_type = crate::routes::inputs::TextOrTexts)]
    pub inputs: serde_json::Value,
    /// Add `[CLS]` and `[SEP]` [default: true].
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub add_special_tokens: bool,
    /// The served model (optional when one model is served).
    pub model: Option<String>,
}

/// One token, with character offsets into its text (`stop` exclusive).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    id: u32,
    text: String,
    special: bool,
    start: Option<usize>,
    stop: Option<usize>,
}

/// `POST /tokenize`: each text's tokens (any model).
#[utoipa::path(post, path = "/tokenize", tag = "TEI", request_body = TokenizeRequest,
    responses((status = 200, description = "Each text's tokens", body = Vec<Vec<Token>>)))]
pub async fn tokenize(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<TokenizeRequest>,
) -> Result<Json<Vec<Vec<Token>>>, ApiError> {
    let model = match request.model.as_deref() {
        Some(name) => state
            .models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ApiError::not_found(format!("model `{name}` is not served here")))?,
        None => state
            .models
            .first()
            .ok_or_else(|| ApiError::not_found("no model is served"))?,
    };
    let (texts, _) = texts(&request.inputs, "inputs")?;
    infer::check_count(&state, texts.len())?;
    let pipeline = model.pipeline.clone();
    let add_special = request.add_special_tokens;
    let tokens = infer::blocking(move || {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let encoding = pipeline
                    .tokenizer()
                    .encode_char_offsets(text.as_str(), add_special)
                    .map_err(|e| {
                        ApiError::from_runtime(
                            &albert_runtime::RuntimeError::Tokenize {
                                what: format!("text {i}"),
                                message: e.to_string(),
                            },
                            Some(i),
                        )
                    })?;
                Ok(encoding
                    .get_ids()
                    .iter()
                    .zip(encoding.get_tokens())
                    .zip(encoding.get_offsets())
                    .zip(encoding.get_special_tokens_mask())
                    .map(|(((&id, token), &(start, stop)), &special)| Token {
                        id,
                        text: token.clone(),
                        special: special == 1,
                        start: (special == 0).then_some(start),
                        stop: (special == 0).then_some(stop),
                    })
                    .collect())
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    Ok(Json(tokens))
}
