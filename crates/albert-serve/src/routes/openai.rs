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

use crate::error::ApiError;
use crate::infer::{self, ApiJson, Timing};
use crate::models::Capability;
use crate::routes::inputs::texts_or_ids;
use crate::state::AppState;

/// `POST /v1/embeddings`'s body.
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    /// A string, a list of strings, a list of token ids, or a list of token-id lists.
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
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// A JSON list of numbers.
    #[default]
    Float,
    /// Base64 of the little-endian float32 bytes.
    Base64,
}

/// One vector.
#[derive(Debug, Serialize)]
pub struct EmbeddingData {
    object: &'static str,
    embedding: serde_json::Value,
    index: usize,
}

/// Tokens counted.
#[derive(Debug, Serialize)]
pub struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

/// `POST /v1/embeddings`'s answer.
#[derive(Debug, Serialize)]
pub struct EmbeddingsResponse {
    object: &'static str,
    data: Vec<EmbeddingData>,
    model: String,
    usage: Usage,
}

/// `POST /v1/embeddings`: mean-pooled, unit-length vectors (cosine is a dot product, as with
/// OpenAI's embeddings).
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
#[derive(Debug, Serialize)]
pub struct ModelCard {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

/// `GET /v1/models`'s answer.
#[derive(Debug, Serialize)]
pub struct ModelList {
    object: &'static str,
    data: Vec<ModelCard>,
}

/// `GET /v1/models`: every served model (of any task).
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
