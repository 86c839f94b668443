//! The server's one error type, sent as JSON `{error, error_type}` with the status code clients
//! expect from TEI (429 overloaded, 413 too large, 422 validation and tokenization, 503 not ready
//! or timed out) and OpenAI-style clients (401 for a missing or wrong key).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use albert_runtime::RuntimeError;

/// What kind of failure a response reports (the `error_type` field, and the `reason` label of
/// the failure metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// Too many requests in flight (429).
    Overloaded,
    /// The request, a field or a text is invalid (413, 422).
    Validation,
    /// No such model (404) or route.
    NotFound,
    /// A text could not be tokenized, or is too long (422).
    Tokenizer,
    /// Missing or wrong API key (401).
    Unauthorized,
    /// The server is shutting down, or the request took longer than `--request-timeout` (503).
    Unavailable,
    /// The engine failed (500).
    Backend,
}

impl ErrorType {
    /// The label used in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::Overloaded => "overloaded",
            ErrorType::Validation => "validation",
            ErrorType::NotFound => "not_found",
            ErrorType::Tokenizer => "tokenizer",
            ErrorType::Unauthorized => "unauthorized",
            ErrorType::Unavailable => "unavailable",
            ErrorType::Backend => "backend",
        }
    }
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What kind of failure.
    pub kind: ErrorType,
    /// What went wrong, naming the field, input or model at fault.
    pub message: String,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// What kind of failure (`overloaded`, `validation`, …).
    pub error_type: ErrorType,
}

impl ApiError {
    fn new(status: StatusCode, kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
        }
    }

    /// 422: an invalid field or input.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Validation,
            message,
        )
    }

    /// 413: too many inputs, or a body over the payload limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorType::Validation,
            message,
        )
    }

    /// 404: no such model.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorType::NotFound, message)
    }

    /// 429: too many requests in flight.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorType::Overloaded,
            message,
        )
    }

    /// 401: missing or wrong API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorType::Unauthorized, message)
    }

    /// 503: shutting down or timed out.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Unavailable,
            message,
        )
    }

    /// 500: the engine failed.
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::Backend,
            message,
        )
    }

    /// The response for a runtime error met while serving input number `index` of a request
    /// (`None` when the error is not about one input): tokenization and length errors are the
    /// client's (422), anything from the engine is ours (500).
    pub fn from_runtime(e: &RuntimeError, index: Option<usize>) -> Self {
        let at = |message: String| match index {
            Some(i) => format!("input {i}: {message}"),
            None => message,
        };
        match e {
            RuntimeError::TooLong { tokens, limit, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorType::Tokenizer,
                at(format!(
                    "{tokens} tokens, more than the model's limit of {limit} (set `truncate` to true, or send a shorter text)"
                )),
            ),
            RuntimeError::Tokenize { message, .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorType::Tokenizer,
                at(format!("cannot tokenize: {message}")),
            ),
            RuntimeError::Empty(what) => Self::validation(at(format!("empty input: {what}"))),
            RuntimeError::InvalidInput(message) | RuntimeError::NoMaskToken(message) => {
                Self::validation(at(message.clone()))
            }
            RuntimeError::MissingOutput { .. } => Self::validation(e.to_string()),
            other => Self::backend(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("albert_request_failures_total", "reason" => self.kind.name())
            .increment(1);
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.message,
                error_type: self.kind,
            }),
        )
            .into_response();
        match self.status {
            // Clients back off and retry on these (see DESIGN.md, "Known traps").
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}
