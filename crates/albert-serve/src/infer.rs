//! The path every inference request takes: its inputs are tokenized on a blocking worker thread,
//! queued on the model's batcher as one job per text, and collected back in their order with the
//! outputs of the batch each ran in; the route then turns each row into its answer, again off the
//! async threads. Timings of each stage go back in TEI's headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use albert_runtime::{ModelOutputs, Pipeline, TextInput, Truncation};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use tokenizers::Encoding;

use crate::batcher::{Job, Pending};
use crate::error::ApiError;
use crate::models::ServedModel;
use crate::state::AppState;

/// One input of a request.
#[derive(Debug, Clone)]
pub enum Input {
    /// A text.
    Text(String),
    /// Two texts encoded together (segment B has token type 1).
    Pair(String, String),
    /// Token ids as the model's tokenizer gives them, special tokens included.
    Ids(Vec<u32>),
}

/// A request body parsed as JSON, rejecting with 422 naming the field at fault (413 past the
/// payload limit). Any content type is accepted, as `curl -d` sends a form type.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(format!("the request body is over the payload limit: {e}"))
            } else {
                ApiError::validation(format!("cannot read the request body: {e}"))
            }
        })?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(deserializer)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.is_syntax() || inner.is_eof() || path == "." || path.is_empty() {
                    ApiError::validation(format!("invalid JSON body: {inner}"))
                } else {
                    ApiError::validation(format!("field `{path}`: {inner}"))
                }
            })
    }
}

/// Stage timings of one request.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    started: Instant,
    /// Tokenizing its inputs.
    pub tokenization: Duration,
    /// The longest wait of its texts in the queue.
    pub queue: Duration,
    /// The longest run of the batches its texts ran in.
    pub inference: Duration,
}

impl Timing {
    /// Starts timing a request now.
    pub fn start() -> Self {
        Timing {
            started: Instant::now(),
            tokenization: Duration::ZERO,
            queue: Duration::ZERO,
            inference: Duration::ZERO,
        }
    }

    /// TEI's timing headers, in milliseconds; `x-total-time` counts until now.
    pub fn headers(&self) -> HeaderMap {
        let total = self.started.elapsed();
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-total-time", total),
            ("x-tokenization-time", self.tokenization),
            ("x-queue-time", self.queue),
            ("x-inference-time", self.inference),
        ] {
            let ms = format!("{:.3}", value.as_secs_f64() * 1e3);
            if let Ok(value) = HeaderValue::from_str(&ms) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        metrics::histogram!("albert_tokenization_duration_seconds")
            .record(self.tokenization.as_secs_f64());
        metrics::histogram!("albert_queue_duration_seconds").record(self.queue.as_secs_f64());
        headers
    }
}

/// One input after its batch ran: its tokens and its row of the batch's outputs.
pub struct Row {
    /// The input's tokens.
    pub encoding: Arc<Encoding>,
    /// The outputs of the batch it ran in.
    pub outputs: Arc<ModelOutputs>,
    /// Its row in those outputs.
    pub row: usize,
}

/// Checks the number of inputs against `--max-client-batch-size`.
pub fn check_count(state: &AppState, count: usize) -> Result<(), ApiError> {
    if count == 0 {
        return Err(ApiError::validation("field `inputs`: no input given"));
    }
    let limit = state.limits.max_client_batch_size;
    if count > limit {
        return Err(ApiError::too_large(format!(
            "{count} inputs in one request, more than --max-client-batch-size {limit}"
        )));
    }
    Ok(())
}

/// Tokenizes one input (`only_second`: truncate only segment B, question answering's context).
fn encode(
    pipeline: &Pipeline,
    index: usize,
    input: &Input,
    truncation: Truncation,
    only_second: bool,
) -> Result<Encoding, ApiError> {
    let text = match input {
        Input::Text(t) => TextInput::Single(t),
        Input::Pair(a, b) => TextInput::Pair(a, b),
        Input::Ids(ids) => {
            return pipeline
                .encode_ids(index, ids, truncation)
                .map_err(|e| ApiError::from_runtime(&e, Some(index)));
        }
    };
    pipeline
        .encode_with(index, text, truncation, only_second)
        .map_err(|e| ApiError::from_runtime(&e, Some(index)))
}

/// Runs a request's inputs through the model's batcher and returns their rows in input order.
pub async fn run(
    state: &AppState,
    model: &ServedModel,
    inputs: Vec<Input>,
    truncate: bool,
    only_second: bool,
    timing: &mut Timing,
) -> Result<Vec<Row>, ApiError> {
    check_count(state, inputs.len())?;
    let truncation = if truncate {
        Truncation::Truncate
    } else {
        Truncation::Error
    };
    let pipeline = model.pipeline.clone();
    let started = Instant::now();
    // Counted as pending while it tokenizes, so the batcher waits for it (batcher.rs).
    let tokenizing = model.batcher.pending();
    let encodings = blocking(move || {
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| encode(&pipeline, i, input, truncation, only_second).map(Arc::new))
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await??;
    timing.tokenization = started.elapsed();
    run_encoded(model, encodings, tokenizing, timing).await
}

/// Runs encodings already made and checked (e.g. the windows of a long question-answering
/// context) through the model's batcher and returns their rows in order. `_pending` is the
/// request's `batcher.pending()` guard, taken before it tokenized, held until its rows are back.
pub async fn run_encoded(
    model: &ServedModel,
    encodings: Vec<Arc<Encoding>>,
    _pending: Pending,
    timing: &mut Timing,
) -> Result<Vec<Row>, ApiError> {
    let (reply, mut results) = tokio::sync::mpsc::unbounded_channel();
    let jobs = encodings
        .iter()
        .enumerate()
        .map(|(i, encoding)| Job::new(encoding.clone(), i, reply.clone()))
        .collect();
    drop(reply);
    if !model.batcher.submit(jobs) {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    let mut rows: Vec<Option<Row>> = (0..encodings.len()).map(|_| None).collect();
    while let Some(done) = results.recv().await {
        timing.queue = timing.queue.max(done.queue_time);
        timing.inference = timing.inference.max(done.inference_time);
        let (outputs, row) = done.result.map_err(|e| ApiError::from_runtime(&e, None))?;
        if let (Some(slot), Some(encoding)) = (rows.get_mut(done.index), encodings.get(done.index))
        {
            *slot = Some(Row {
                encoding: encoding.clone(),
                outputs,
                row,
            });
        }
    }
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            row.ok_or_else(|| {
                ApiError::backend(format!("input {i} was not run (the batcher stopped)"))
            })
        })
        .collect()
}

/// Runs CPU work on a blocking worker thread, off the async executor.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::backend(format!("a worker thread failed: {e}")))
}
