//! `GET /health`, `GET /info` and `GET /metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::{AppState, Limits};

/// `GET /health`: 200 while serving, 503 once shutdown has begun (a readiness probe).
#[utoipa::path(get, path = "/health", tag = "Operations",
    responses((status = 200, description = "Serving"), (status = 503, description = "Shutting down", body = crate::error::ErrorBody)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.is_shutting_down() {
        ApiError::unavailable("the server is shutting down").into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// A served model, as `/info` describes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    name: String,
    source: String,
    task: String,
    capability: String,
    engine: String,
    outputs: Vec<String>,
    max_length: usize,
    hidden_size: usize,
    vocab_size: usize,
    queued: usize,
}

/// `GET /info`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Info {
    #[schema(value_type = String)]
    version: &'static str,
    models: Vec<ModelInfo>,
    limits: Limits,
}

/// `GET /info`: the models, their tasks, the engine and provider actually in use, the limits.
#[utoipa::path(get, path = "/info", tag = "Operations",
    responses((status = 200, description = "The server and its models", body = Info)))]
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        models: state
            .models
            .iter()
            .map(|m| ModelInfo {
                name: m.name.clone(),
                source: m.source.display().to_string(),
                task: m.task.to_string(),
                capability: m.capability().to_string(),
                engine: m.pipeline.target().to_string(),
                outputs: m.pipeline.output_names().to_vec(),
                max_length: m.pipeline.max_length(),
                hidden_size: m.pipeline.config().hidden_size,
                vocab_size: m.pipeline.config().vocab_size,
                queued: m.batcher.queued(),
            })
            .collect(),
        limits: state.limits.clone(),
    })
}

/// `GET /metrics`: Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::not_found("metrics are not recorded by this process").into_response(),
    }
}
