//! OpenAI-compatible embeddings: `POST /v1/embeddings` and `GET /v1/models`, in the shapes the
//! official `openai` client sends and reads (it asks for base64 by default: little-endian float32
//! bytes, which it decodes itself).

use std::sync::Arc;

use albert_runtime::{EmbedOptions, Pooling};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::infer::{self, ApiJson, Timing};
use crate::models::Capability;
use crate::routes::inputs::texts_or_ids;
use crate::state::AppState;

/// `POST /v1/embeddings`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EmbeddingsRequest {
    /// A string, a list of strings, a list of token ids, or a list of token-id lists.
    #[schema(value_type = crate::routes::inputs::TextsOrIds)]
    pub input: serde_json::Value,
    /// The served model's name (optional when one model is served).
    pub model: Option<String>,
    /// `float` (default) or `base64`.
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    /// Accepted only when equal to the model's size.
    pub dimensions: Option<usize>,
    /// Accepted and ignored (an end-user id, for OpenAI's abuse monitoring).
    #[allow(dead_code)]
    pub user: Option<String>,
}

/// How vectors are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// A JSON list of numbers.
    #[default]
    Float,
    /// Base64 of the little-endian float32 bytes.
    Base64,
}

/// One vector.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingData {
    #[schema(value_type = String)]
    object: &'static str,
    /// The vector (`float`), or base64 of its little-endian float32 bytes (`base64`).
    #[schema(value_type = Embedding)]
    embedding: serde_json::Value,
    index: usize,
}

/// Tokens counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// `POST /v1/embeddings`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    #[schema(value_type = String)]
    object: &'static str,
    data: Vec<EmbeddingData>,
    model: String,
    usage: Usage,
}

/// A vector as `/v1/embeddings` writes it (for the OpenAPI document).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Embedding {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

/// `POST /v1/embeddings`: mean-pooled, unit-length vectors (cosine is a dot product, as with
/// OpenAI's embeddings).
#[utoipa::path(post, path = "/v1/embeddings", tag = "OpenAI", request_body = EmbeddingsRequest,
    responses((status = 200, description = "One vector per input", body = EmbeddingsResponse)))]
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    ApiJson(request): ApiJson<EmbeddingsRequest>,
) -> Result<(HeaderMap, Json<EmbeddingsResponse>), ApiError> {
    let mut timing = Timing::start();
    let model = state.model(request.model.as_deref(), Capability::Embeddings)?;
    let width = model.pipeline.config().hidden_size;
    if let Some(dimensions) = request.dimensions
        && dimensions != width
    {
        return Err(ApiError::validation(format!(
            "field `dimensions`: {dimensions} is not supported: model `{}` gives vectors of {width}",
            model.name
        )));
    }
    let inputs = texts_or_ids(&request.input, "input")?;
    let rows = infer::run(&state, model, inputs, false, false, &mut timing).await?;
    let pipeline = model.pipeline.clone();
    let format = request.encoding_format;
    let (data, tokens) = infer::blocking(move || -> Result<_, ApiError> {
        let options = EmbedOptions {
            pooling: Pooling::Mean,
            normalize: true,
        };
        let mut tokens = 0;
        let mut data = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            tokens += row.encoding.len();
            let vector = pipeline
                .embed_row(&row.outputs, row.row, &row.encoding, options)
                .map_err(|e| ApiError::from_runtime(&e, Some(index)))?;
            data.push(EmbeddingData {
                object: "embedding",
                embedding: encode_vector(&vector, format),
                index,
            });
        }
        Ok((data, tokens))
    })
    .await??;
    Ok((
        timing.headers(),
        Json(EmbeddingsResponse {
            object: "list",
            data,
            model: model.name.clone(),
            usage: Usage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        }),
    ))
}

fn encode_vector(vector: &[f32], format: EncodingFormat) -> serde_json::Value {
    match format {
        EncodingFormat::Float => serde_json::Value::from(vector.to_vec()),
        EncodingFormat::Base64 => {
            let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
            serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
    }
}

/// One served model, as `GET /v1/models` lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCard {
    id: String,
    #[schema(value_type = String)]
    object: &'static str,
    created: u64,
    #[schema(value_type = String)]
    owned_by: &'static str,
}

/// `GET /v1/models`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    #[schema(value_type = String)]
    object: &'static str,
    data: Vec<ModelCard>,
}

/// `GET /v1/models`: every served model (of any task).
#[utoipa::path(get, path = "/v1/models", tag = "OpenAI",
    responses((status = 200, description = "The served models", body = ModelList)))]
pub async fn models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state
            .models
            .iter()
            .enumerate()
            // A checkpoint served as two exports is one model to clients.
            .filter(|(i, m)| !state.models[..*i].iter().any(|o| o.name == m.name))
            .map(|(_, m)| ModelCard {
                id: m.name.clone(),
                object: "model",
                created: 0,
                owned_by: "albert-serve",
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_vectors_are_little_endian_float32() {
        let value = encode_vector(&[1.0, -2.5], EncodingFormat::Base64);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
    }
}
