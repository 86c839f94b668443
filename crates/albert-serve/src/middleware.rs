//! What wraps the routes: request metrics, the shutdown gate, the API key, the concurrency limit
//! (429 past it, never a queue) and the request timeout (503).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Routes that stay open without an API key and during shutdown (probes and scrapes).
fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/metrics") || path.starts_with("/v2/health")
}

/// Counts requests by route and status, and times them.
pub async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status();
    let outcome = if status.is_success() {
        "success"
    } else if status.is_client_error() {
        "client_error"
    } else {
        "server_error"
    };
    metrics::counter!(
        "albert_requests_total",
        "route" => route.clone(),
        "outcome" => outcome,
        "status" => status.as_str().to_string()
    )
    .increment(1);
    metrics::histogram!("albert_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// After shutdown has begun, new requests get 503 (probes say not ready).
pub async fn shutdown_gate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.is_shutting_down() && !is_probe(request.uri().path()) {
        return ApiError::unavailable("the server is shutting down").into_response();
    }
    next.run(request).await
}

/// With `--api-key`, every route but the probes needs `Authorization: Bearer <key>`.
pub async fn require_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = state.api_key.as_deref() else {
        return next.run(request).await;
    };
    if is_probe(request.uri().path()) {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), key.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::unauthorized("the API key is wrong").into_response(),
        None => ApiError::unauthorized(
            "an API key is required: send the header `Authorization: Bearer <key>`",
        )
        .into_response(),
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the key.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Takes a permit per request; past `--max-concurrent-requests` the answer is 429 at once.
pub async fn limit_concurrency(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = state.permits.clone().try_acquire_owned() else {
        return ApiError::overloaded(format!(
            "more than --max-concurrent-requests {} requests in flight; retry later",
            state.limits.max_concurrent_requests
        ))
        .into_response();
    };
    let _in_flight = InFlight::new();
    next.run(request).await
}

/// Counts a request in `albert_requests_in_flight` until it ends, however it ends (a client
/// that disconnects drops the request's future).
struct InFlight;

impl InFlight {
    fn new() -> Self {
        metrics::gauge!("albert_requests_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("albert_requests_in_flight").decrement(1.0);
    }
}

/// A request still running after `--request-timeout` gets 503; its queued work is dropped.
pub async fn timeout(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(format!(
            "the request took longer than --request-timeout {}",
            humantime::format_duration(limit)
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
