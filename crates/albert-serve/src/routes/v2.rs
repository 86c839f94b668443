//! The Open Inference Protocol (v2), which KServe and Triton clients speak: health, server and
//! model metadata, and `POST /v2/models/{m}/infer` with a BYTES input `TEXT` of shape `[N]`
//! (`TEXT_PAIR` for pairs, `QUESTION` and `CONTEXT` for question answering), answered with the
//! export's own output tensors under their names (FP32, row-major). Per-token outputs are padded
//! with zeros to the request's longest text. A model name that serves two exports (a checkpoint:
//! its head and `base`) answers with the outputs of both, as the Triton ensemble of the same model
//! does. Tensor data comes as JSON or in the binary tensor data extension (the `tritonclient`
//! default: a JSON header of `Inference-Header-Content-Length` bytes, then the raw tensors).

use std::sync::Arc;

use albert_core::Task;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::infer::{self, Input, Row, Timing};
use crate::models::ServedModel;
use crate::state::AppState;

/// The header that gives the JSON part's length in the binary tensor data extension.
const HEADER_LENGTH: &str = "inference-header-content-length";

/// `GET /v2`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    #[schema(value_type = String)]
    name: &'static str,
    #[schema(value_type = String)]
    version: &'static str,
    #[schema(value_type = Vec<String>)]
    extensions: Vec<&'static str>,
}

/// `GET /v2`: the server's metadata.
#[utoipa::path(get, path = "/v2", tag = "Open Inference Protocol v2",
    responses((status = 200, description = "The server", body = ServerMetadata)))]
pub async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "albert-serve",
        version: env!("CARGO_PKG_VERSION"),
        extensions: vec!["binary_tensor_data"],
    })
}

/// `GET /v2/health/live`: the process is up.
#[utoipa::path(get, path = "/v2/health/live", tag = "Open Inference Protocol v2",
    responses((status = 200, description = "Live")))]
pub async fn live() -> StatusCode {
    StatusCode::OK
}

/// `GET /v2/health/ready`: 200 while serving, 503 once shutdown has begun.
#[utoipa::path(get, path = "/v2/health/ready", tag = "Open Inference Protocol v2",
    responses((status = 200, description = "Ready"), (status = 503, description = "Shutting down")))]
pub async fn ready(State(state): State<Arc<AppState>>) -> StatusCode {
    if state.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

fn exports<'a>(state: &'a AppState, name: &str) -> Result<Vec<&'a ServedModel>, ApiError> {
    let found: Vec<&ServedModel> = state.models.iter().filter(|m| m.name == name).collect();
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "model `{name}` is not served here"
        )));
    }
    Ok(found)
}

/// `GET /v2/models/{m}/ready`.
#[utoipa::path(get, path = "/v2/models/{model}/ready", tag = "Open Inference Protocol v2",
    params(("model" = String, Path, description = "A served model's name")),
    responses((status = 200, description = "Ready"), (status = 503, description = "Shutting down")))]
pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    exports(&state, &name)?;
    Ok(if state.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    })
}

/// A tensor's description in metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct TensorMetadata {
    name: String,
    #[schema(value_type = String)]
    datatype: &'static str,
    shape: Vec<i64>,
}

/// The text inputs a task takes.
fn input_names(task: Task) -> &'static [&'static str] {
    match task {
        Task::QuestionAnswering => &["QUESTION", "CONTEXT"],
        Task::SequenceClassification | Task::Pretraining => &["TEXT", "TEXT_PAIR"],
        _ => &["TEXT"],
    }
}

/// An output's shape with -1 for the batch and sequence dimensions.
fn output_shape(model: &ServedModel, output: &str) -> Vec<i64> {
    let config = model.pipeline.config();
    let last = match output {
        "last_hidden_state" | "pooler_output" => Some(config.hidden_size as i64),
        "prediction_logits" => Some(config.vocab_size as i64),
        "sop_logits" | "nsp_logits" => Some(2),
        "logits" if model.task == Task::MaskedLm => Some(config.vocab_size as i64),
        "logits" => Some(config.num_labels() as i64),
        _ => None,
    };
    let mut shape = vec![-1];
    if model.task.is_per_token(output) {
        shape.push(-1);
    }
    shape.extend(last);
    shape
}

/// `GET /v2/models/{m}`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMetadata {
    name: String,
    #[schema(value_type = Vec<String>)]
    versions: Vec<&'static str>,
    #[schema(value_type = String)]
    platform: &'static str,
    inputs: Vec<TensorMetadata>,
    outputs: Vec<TensorMetadata>,
}

/// `GET /v2/models/{m}`: the model's inputs and outputs.
#[utoipa::path(get, path = "/v2/models/{model}", tag = "Open Inference Protocol v2",
    params(("model" = String, Path, description = "A served model's name")),
    responses((status = 200, description = "The model's tensors", body = ModelMetadata)))]
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ModelMetadata>, ApiError> {
    let exports = exports(&state, &name)?;
    let mut inputs: Vec<TensorMetadata> = Vec::new();
    let mut outputs = Vec::new();
    for model in &exports {
        for input in input_names(model.task) {
            if !inputs.iter().any(|i| i.name == *input) {
                inputs.push(TensorMetadata {
                    name: input.to_string(),
                    datatype: "BYTES",
                    shape: vec![-1],
                });
            }
        }
        for output in model.pipeline.output_names() {
            outputs.push(TensorMetadata {
                name: output.clone(),
                datatype: "FP32",
                shape: output_shape(model, output),
            });
        }
    }
    Ok(Json(ModelMetadata {
        name,
        versions: vec!["1"],
        platform: "albert-serve",
        inputs,
        outputs,
    }))
}

/// One input tensor of an infer request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InferInput {
    /// `TEXT`, `TEXT_PAIR`, `QUESTION` or `CONTEXT`.
    pub name: String,
    /// `[N]`.
    pub shape: Vec<i64>,
    /// `BYTES`.
    pub datatype: String,
    /// The texts (absent when they come as binary data).
    #[schema(value_type = Option<Vec<String>>)]
    pub data: Option<Value>,
    /// `binary_data_size` when the data follows the JSON header.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: serde_json::Map<String, Value>,
}

/// An output asked for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InferOutput {
    /// The output's name.
    pub name: String,
    /// `binary_data: true` to get it as raw bytes after the JSON header.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: serde_json::Map<String, Value>,
}

/// `POST /v2/models/{m}/infer`'s body (its JSON part).
#[derive(Debug, Deserialize, ToSchema)]
pub struct InferRequest {
    /// Echoed back.
    pub id: Option<String>,
    /// `truncate: true` cuts over-long texts; `binary_data_output: true` asks for every output
    /// as binary data.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: serde_json::Map<String, Value>,
    /// The text tensors.
    pub inputs: Vec<InferInput>,
    /// The outputs wanted [default: all].
    #[serde(default)]
    pub outputs: Vec<InferOutput>,
}

fn flag(parameters: &serde_json::Map<String, Value>, name: &str) -> bool {
    parameters
        .get(name)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The strings of one BYTES tensor, from JSON data (nested lists allowed) or from its binary
/// data (each element a 4-byte little-endian length and its bytes).
fn strings(input: &InferInput, binary: &mut &[u8]) -> Result<Vec<String>, ApiError> {
    let at = format!("inputs[{}]", input.name);
    if input.datatype != "BYTES" {
        return Err(ApiError::validation(format!(
            "{at}: datatype must be BYTES (UTF-8 texts), found {}",
            input.datatype
        )));
    }
    let mut texts = Vec::new();
    if let Some(size) = input.parameters.get("binary_data_size") {
        let size = size
            .as_u64()
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| ApiError::validation(format!("{at}: bad binary_data_size {size}")))?;
        if size > binary.len() {
            return Err(ApiError::validation(format!(
                "{at}: binary_data_size {size} is past the end of the body"
            )));
        }
        let (mut data, rest) = binary.split_at(size);
        *binary = rest;
        while !data.is_empty() {
            let (length, tail) = data
                .split_at_checked(4)
                .ok_or_else(|| ApiError::validation(format!("{at}: a truncated element length")))?;
            let length = u32::from_le_bytes([length[0], length[1], length[2], length[3]]) as usize;
            let (bytes, tail) = tail.split_at_checked(length).ok_or_else(|| {
                ApiError::validation(format!("{at}: an element runs past its data"))
            })?;
            texts.push(String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::validation(format!("{at}: element {} is not UTF-8", texts.len()))
            })?);
            data = tail;
        }
    } else {
        fn flatten(value: &Value, out: &mut Vec<String>, at: &str) -> Result<(), ApiError> {
            match value {
                Value::String(s) => {
                    out.push(s.clone());
                    Ok(())
                }
                Value::Array(items) => items.iter().try_for_each(|v| flatten(v, out, at)),
                other => Err(ApiError::validation(format!(
                    "{at}: expected texts, found {}",
                    crate::routes::inputs::kind(other)
                ))),
            }
        }
        let data = input
            .data
            .as_ref()
            .ok_or_else(|| ApiError::validation(format!("{at}: no data")))?;
        flatten(data, &mut texts, &at)?;
    }
    let declared: i64 = input.shape.iter().product();
    if input.shape.is_empty() || declared != texts.len() as i64 {
        return Err(ApiError::validation(format!(
            "{at}: shape {:?} does not match its {} texts",
            input.shape,
            texts.len()
        )));
    }
    Ok(texts)
}

/// The request's texts as inputs for a task.
fn task_inputs(
    task: Task,
    tensors: &[(String, Vec<String>)],
) -> Result<(Vec<Input>, bool), ApiError> {
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t);
    let need = |name: &str| {
        get(name).ok_or_else(|| {
            ApiError::validation(format!(
                "input `{name}` is required (this model takes {})",
                input_names(task).join(", ")
            ))
        })
    };
    let pairs = |a: &Vec<String>, b: &Vec<String>, names: (&str, &str)| {
        if a.len() != b.len() {
            return Err(ApiError::validation(format!(
                "inputs `{}` and `{}` have {} and {} texts",
                names.0,
                names.1,
                a.len(),
                b.len()
            )));
        }
        Ok(a.iter()
            .zip(b)
            .map(|(a, b)| Input::Pair(a.clone(), b.clone()))
            .collect())
    };
    if task == Task::QuestionAnswering {
        let (q, c) = (need("QUESTION")?, need("CONTEXT")?);
        return Ok((pairs(q, c, ("QUESTION", "CONTEXT"))?, true));
    }
    let text = need("TEXT")?;
    Ok(match get("TEXT_PAIR") {
        Some(pair) => (pairs(text, pair, ("TEXT", "TEXT_PAIR"))?, false),
        None => (text.iter().cloned().map(Input::Text).collect(), false),
    })
}

/// An output tensor of the answer.
struct Tensor {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// One output over the request's rows, per-token outputs padded to the longest text.
fn gather(task: Task, name: &str, rows: &[Row]) -> Result<Tensor, ApiError> {
    let per_token = task.is_per_token(name);
    let longest = rows.iter().map(|r| r.encoding.len()).max().unwrap_or(0);
    let mut shape = Vec::new();
    let mut data = Vec::new();
    for row in rows {
        let all = albert_runtime::output(&row.outputs, name)
            .map_err(|e| ApiError::from_runtime(&e, None))?;
        let mine = all.index_axis(ndarray::Axis(0), row.row);
        let mut dims = mine.shape().to_vec();
        if per_token && !dims.is_empty() {
            let width: usize = dims[1..].iter().product();
            let length = row.encoding.len().min(dims[0]);
            let values: Vec<f32> = mine.iter().copied().collect();
            data.extend_from_slice(&values[..length * width]);
            data.resize(data.len() + (longest - length) * width, 0.0);
            dims[0] = longest;
        } else {
            data.extend(mine.iter().copied());
        }
        shape = dims;
    }
    let mut full = vec![rows.len()];
    full.extend(shape);
    Ok(Tensor {
        name: name.to_string(),
        shape: full,
        data,
    })
}

/// An output tensor of an infer answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct InferOutputTensor {
    name: String,
    #[schema(value_type = String)]
    datatype: &'static str,
    shape: Vec<usize>,
    /// The values, row-major (absent when sent as binary data).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Vec<f32>>,
    /// `binary_data_size` when the values follow the JSON part.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
}

/// `POST /v2/models/{m}/infer`'s answer (its JSON part).
#[derive(Debug, Serialize, ToSchema)]
pub struct InferResponse {
    model_name: String,
    #[schema(value_type = String)]
    model_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<InferOutputTensor>,
}

/// `POST /v2/models/{m}/infer`.
#[utoipa::path(post, path = "/v2/models/{model}/infer", tag = "Open Inference Protocol v2",
    params(("model" = String, Path, description = "A served model's name")),
    request_body = InferRequest,
    responses((status = 200, description = "The export's output tensors", body = InferResponse)))]
pub async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut timing = Timing::start();
    let exports = exports(&state, &name)?;
    let (json, mut binary) = match headers.get(HEADER_LENGTH) {
        Some(length) => {
            let length: usize = length
                .to_str()
                .ok()
                .and_then(|l| l.parse().ok())
                .filter(|&l| l <= body.len())
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "header {HEADER_LENGTH}: not a length within the body"
                    ))
                })?;
            body.split_at(length)
        }
        None => (&body[..], &[][..]),
    };
    let request: InferRequest =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(json))
            .map_err(|e| ApiError::validation(format!("field `{}`: {}", e.path(), e.inner())))?;
    let mut tensors = Vec::new();
    for input in &request.inputs {
        tensors.push((input.name.clone(), strings(input, &mut binary)?));
    }
    let wanted: Vec<&str> = request.outputs.iter().map(|o| o.name.as_str()).collect();
    for output in &wanted {
        if !exports
            .iter()
            .any(|m| m.pipeline.output_names().iter().any(|n| n == output))
        {
            return Err(ApiError::validation(format!(
                "output `{output}`: model `{name}` has no such output"
            )));
        }
    }
    let truncate = flag(&request.parameters, "truncate");
    let mut outputs = Vec::new();
    for model in exports {
        let names: Vec<String> = model
            .pipeline
            .output_names()
            .iter()
            .filter(|n| wanted.is_empty() || wanted.contains(&n.as_str()))
            .cloned()
            .collect();
        if names.is_empty() {
            continue;
        }
        let (inputs, only_second) = task_inputs(model.task, &tensors)?;
        let rows = infer::run(&state, model, inputs, truncate, only_second, &mut timing).await?;
        let task = model.task;
        let tensors = infer::blocking(move || {
            names
                .iter()
                .map(|n| gather(task, n, &rows))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await??;
        outputs.extend(tensors);
    }
    let all_binary = flag(&request.parameters, "binary_data_output");
    let binary_for = |name: &str| {
        all_binary
            || request
                .outputs
                .iter()
                .any(|o| o.name == name && flag(&o.parameters, "binary_data"))
    };
    let mut tail: Vec<u8> = Vec::new();
    let described: Vec<InferOutputTensor> = outputs
        .into_iter()
        .map(|t| {
            let binary = binary_for(&t.name);
            let mut out = InferOutputTensor {
                name: t.name,
                datatype: "FP32",
                shape: t.shape,
                data: None,
                parameters: None,
            };
            if binary {
                let bytes: Vec<u8> = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                out.parameters = Some(serde_json::json!({"binary_data_size": bytes.len()}));
                tail.extend(bytes);
            } else {
                out.data = Some(t.data);
            }
            out
        })
        .collect();
    let answer = InferResponse {
        model_name: name,
        model_version: "1",
        id: request.id,
        outputs: described,
    };
    let json = serde_json::to_vec(&answer).map_err(|e| ApiError::backend(e.to_string()))?;
    let mut response = if tail.is_empty() {
        ([(header::CONTENT_TYPE, "application/json")], json).into_response()
    } else {
        let length = json.len();
        let mut body = json;
        body.extend(tail);
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::HeaderName::from_static(HEADER_LENGTH),
                    length.to_string(),
                ),
            ],
            Body::from(body),
        )
            .into_response()
    };
    response.headers_mut().extend(timing.headers());
    Ok(response)
}
