//! The OpenAPI document of every route (`GET /openapi.json`), made from the handlers' and types'
//! annotations. The error answers every route shares are added here once rather than on each
//! handler; and since the untagged request and answer forms are read in order (a text, else a
//! list, …) and may overlap (an empty list is any list), they are `anyOf`, not `oneOf`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorType};
use crate::routes::{info, openai, tasks, tei, v2};
use crate::state::AppState;

/// The annotated routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "albert-serve",
        description = "ALBERT over HTTP: OpenAI- and TEI-compatible embeddings, the HF Inference API's tasks, and the Open Inference Protocol v2. See docs/serving.md."
    ),
    paths(
        openai::embeddings,
        openai::models,
        tei::embed,
        tei::predict,
        tei::tokenize,
        tasks::fill_mask,
        tasks::token_classification,
        tasks::question_answering,
        v2::server_metadata,
        v2::live,
        v2::ready,
        v2::model_metadata,
        v2::model_ready,
        v2::infer,
        info::health,
        info::info,
        info::metrics,
    ),
    components(schemas(ErrorBody, ErrorType))
)]
struct ApiDoc;

/// Routes open without a key and during shutdown.
fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/metrics") || path.starts_with("/v2/health")
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

fn rename_one_of(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(choices) = map.remove("oneOf") {
                map.insert("anyOf".into(), choices);
            }
            map.values_mut().for_each(rename_one_of);
        }
        Value::Array(items) => items.iter_mut().for_each(rename_one_of),
        _ => {}
    }
}

/// The document as JSON.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    rename_one_of(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description));
                };
                if !is_probe(path) {
                    add(
                        "401",
                        "`--api-key` is set and the bearer key is missing or wrong",
                    );
                    add("503", "Shutting down, or past `--request-timeout`");
                }
                if path.contains("{model}") {
                    add("404", "No such model");
                }
                if method == "post" {
                    add("404", "No such model");
                    add(
                        "413",
                        "More inputs than `--max-client-batch-size`, or a body over `--payload-limit`",
                    );
                    add(
                        "422",
                        "Malformed JSON, a field of the wrong type, a text too long without `truncate`, or a task the model cannot do (the message says which)",
                    );
                    add("429", "More than `--max-concurrent-requests` in flight");
                    add("500", "The engine failed");
                }
            }
        }
    }
    doc
}

/// The document for a server serving `models`: the `{model}` path parameters and the `model`
/// fields of request bodies list their names, so that clients (and generated tests) know them.
pub fn document_for(models: &[String]) -> Value {
    let mut doc = document();
    let names: Vec<Value> = models.iter().map(|m| Value::from(m.as_str())).collect();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths
            .values_mut()
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            for param in operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if param["name"] == "model" && param["in"] == "path" {
                    param["schema"]["enum"] = Value::from(names.clone());
                }
            }
        }
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            if let Some(model) = schema.pointer_mut("/properties/model") {
                let mut choices = names.clone();
                choices.push(Value::Null);
                model["enum"] = Value::from(choices);
            }
        }
    }
    doc
}

/// `GET /openapi.json`.
pub async fn serve(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut names: Vec<String> = Vec::new();
    for model in &state.models {
        if !names.contains(&model.name) {
            names.push(model.name.clone());
        }
    }
    Json(document_for(&names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_errors() {
        let doc = document();
        let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or(0);
        assert_eq!(paths, 17, "{doc:#}");
        assert_eq!(
            doc["paths"]["/embed"]["post"]["responses"]["429"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(
            doc["paths"]["/health"]["get"]["responses"]
                .get("401")
                .is_none()
        );
        assert!(!doc.to_string().contains("oneOf"));
    }

    #[test]
    fn the_served_models_are_named_in_the_document() {
        let doc = document_for(&["tiny".to_string()]);
        let param = &doc["paths"]["/v2/models/{model}/infer"]["post"]["parameters"][0];
        assert_eq!(param["schema"]["enum"], json!(["tiny"]));
        assert_eq!(
            doc["components"]["schemas"]["EmbedRequest"]["properties"]["model"]["enum"],
            json!(["tiny", null])
        );
    }
}
