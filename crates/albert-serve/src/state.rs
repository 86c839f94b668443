//! What every handler shares: the models, the limits, and whether the server is shutting down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::models::{Capability, ServedModel};

/// The limits a server enforces (each has a command-line flag).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Limits {
    /// Requests in flight on the inference routes before 429.
    pub max_concurrent_requests: usize,
    /// Inputs in one request before 413.
    pub max_client_batch_size: usize,
    /// Body bytes before 413.
    pub payload_limit: usize,
    /// Padded tokens per batch.
    pub max_batch_tokens: usize,
    /// Texts per batch.
    pub max_batch_requests: usize,
    /// Milliseconds a batch waits for more texts.
    pub max_batch_delay_ms: u64,
    /// Seconds before a request gets 503.
    #[serde(serialize_with = "seconds")]
    #[schema(value_type = f64)]
    pub request_timeout: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The server's shared state.
pub struct AppState {
    /// The models, in command-line order.
    pub models: Vec<ServedModel>,
    /// The limits.
    pub limits: Limits,
    /// The bearer token clients must send, if any.
    pub api_key: Option<String>,
    /// Permits for requests in flight on the inference routes.
    pub permits: Arc<Semaphore>,
    /// Renders `/metrics` (absent when another recorder was installed first).
    pub metrics: Option<PrometheusHandle>,
    shutting_down: AtomicBool,
}

impl AppState {
    /// The state for these models and limits.
    pub fn new(
        models: Vec<ServedModel>,
        limits: Limits,
        api_key: Option<String>,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        AppState {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            models,
            limits,
            api_key,
            metrics,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Whether the server has begun shutting down (readiness is false from then on).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Marks the server as shutting down: readiness goes false and new requests get 503.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The model a request names, or the only one that can do what the route asks when it
    /// names none. A checkpoint served under one name can be two exports (e.g. fill-mask and
    /// embeddings): the one that can do what the route asks answers.
    pub fn model(&self, name: Option<&str>, needs: Capability) -> Result<&ServedModel, ApiError> {
        let served = || {
            self.models
                .iter()
                .map(|m| format!("{} ({})", m.name, m.capability()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let able = |m: &&ServedModel| m.capability() == needs;
        match name {
            Some(name) => {
                let named: Vec<&ServedModel> =
                    self.models.iter().filter(|m| m.name == name).collect();
                if named.is_empty() {
                    return Err(ApiError::not_found(format!(
                        "model `{name}` is not served here (served: {})",
                        served()
                    )));
                }
                named.iter().copied().find(|m| able(m)).ok_or_else(|| {
                    ApiError::validation(format!(
                        "model `{name}` cannot do {needs}: it serves {}",
                        named
                            .iter()
                            .map(|m| format!("{} (a {} export)", m.capability(), m.task))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            }
            None => {
                let mut candidates = self.models.iter().filter(able);
                match (candidates.next(), candidates.next()) {
                    (Some(model), None) => Ok(model),
                    (Some(_), Some(_)) => Err(ApiError::validation(format!(
                        "field `model`: required when several models can do {needs} (served: {})",
                        served()
                    ))),
                    (None, _) => Err(ApiError::validation(format!(
                        "no served model can do {needs} (served: {})",
                        served()
                    ))),
                }
            }
        }
    }
}
