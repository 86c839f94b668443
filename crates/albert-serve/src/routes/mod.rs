//! The HTTP routes and the layers around them.

pub mod info;
pub mod inputs;
pub mod openai;
pub mod tasks;
pub mod tei;
pub mod v2;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::middleware;
use crate::state::AppState;

/// The server's routes: the inference routes behind the concurrency limit and the timeout, all
/// behind the API key (probes excepted), the shutdown gate and request metrics.
pub fn router(state: Arc<AppState>) -> Router {
    let inference = Router::new()
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/embed", post(tei::embed))
        .route("/predict", post(tei::predict))
        .route("/tokenize", post(tei::tokenize))
        .route("/fill-mask", post(tasks::fill_mask))
        .route("/token-classification", post(tasks::token_classification))
        .route("/question-answering", post(tasks::question_answering))
        .route("/v2/models/{model}/infer", post(v2::infer))
        .layer(from_fn_with_state(state.clone(), middleware::timeout))
        .layer(from_fn_with_state(
            state.clone(),
            middleware::limit_concurrency,
        ));
    let open = Router::new()
        .route("/health", get(info::health))
        .route("/info", get(info::info))
        .route("/metrics", get(info::metrics))
        .route("/v1/models", get(openai::models))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{model}", get(v2::model_metadata))
        .route("/v2/models/{model}/ready", get(v2::model_ready));
    Router::new()
        .merge(inference)
        .merge(open)
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .layer(DefaultBodyLimit::max(state.limits.payload_limit))
        .layer(from_fn_with_state(state.clone(), middleware::require_key))
        .layer(from_fn_with_state(state.clone(), middleware::shutdown_gate))
        .layer(axum::middleware::from_fn(middleware::record))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
