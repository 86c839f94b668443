//! Reading the input fields that take several forms (a text, a list of texts, token ids, pairs),
//! with errors that name the field and the item at fault.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::infer::Input;

/// The forms `input`/`inputs` of the embedding routes take (for the OpenAPI document; the
/// routes read them with [`texts_or_ids`] for errors that name the item at fault).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TextsOrIds {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// One text as token ids (special tokens included).
    Ids(Vec<u32>),
    /// Several texts as token ids.
    IdLists(Vec<Vec<u32>>),
}

/// A text or a list of texts (for the OpenAPI document; read with [`texts`]).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TextOrTexts {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
}

/// `/predict`'s inputs (for the OpenAPI document; read with [`predict_inputs`]): a text, a pair,
/// or a list of texts (as one-element lists) and pairs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PredictInputs {
    /// One text.
    Text(String),
    /// One text or pair, as a list of one or two texts.
    Pair(Vec<String>),
    /// Several texts and pairs.
    Batch(Vec<Vec<String>>),
}

fn text(value: &Value, at: &str) -> Result<String, ApiError> {
    match value.as_str() {
        Some("") => Err(ApiError::validation(format!(
            "field `{at}`: the text is empty"
        ))),
        Some(s) => Ok(s.to_string()),
        None => Err(ApiError::validation(format!(
            "field `{at}`: expected a string, found {}",
            kind(value)
        ))),
    }
}

fn ids(items: &[Value], at: &str) -> Result<Vec<u32>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "field `{at}[{i}]`: expected a token id (a whole number from 0), found {v}"
                    ))
                })
        })
        .collect()
}

/// What kind of JSON value this is, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string, a list of strings, a list of token ids, or a list of token-id lists.
pub fn texts_or_ids(value: &Value, field: &str) -> Result<Vec<Input>, ApiError> {
    let expected = "a string, a list of strings, a list of token ids or a list of token-id lists";
    match value {
        Value::String(_) => Ok(vec![Input::Text(text(value, field)?)]),
        Value::Array(items) if items.is_empty() => Err(ApiError::validation(format!(
            "field `{field}`: the list is empty"
        ))),
        Value::Array(items) => match &items[0] {
            Value::String(_) => items
                .iter()
                .enumerate()
                .map(|(i, v)| text(v, &format!("{field}[{i}]")).map(Input::Text))
                .collect(),
            Value::Number(_) => Ok(vec![Input::Ids(ids(items, field)?)]),
            Value::Array(_) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let at = format!("{field}[{i}]");
                    match v.as_array() {
                        Some(list) if !list.is_empty() => Ok(Input::Ids(ids(list, &at)?)),
                        Some(_) => Err(ApiError::validation(format!(
                            "field `{at}`: the token-id list is empty"
                        ))),
                        None => Err(ApiError::validation(format!(
                            "field `{at}`: expected a token-id list, found {}",
                            kind(v)
                        ))),
                    }
                })
                .collect(),
            other => Err(ApiError::validation(format!(
                "field `{field}[0]`: expected a string, a token id or a token-id list, found {}",
                kind(other)
            ))),
        },
        other => Err(ApiError::validation(format!(
            "field `{field}`: expected {expected}, found {}",
            kind(other)
        ))),
    }
}

/// A string or a list of strings.
pub fn texts(value: &Value, field: &str) -> Result<(Vec<String>, bool), ApiError> {
    match value {
        Value::String(_) => Ok((vec![text(value, field)?], false)),
        Value::Array(items) if items.is_empty() => Err(ApiError::validation(format!(
            "field `{field}`: the list is empty"
        ))),
        Value::Array(items) => Ok((
            items
                .iter()
                .enumerate()
                .map(|(i, v)| text(v, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?,
            true,
        )),
        other => Err(ApiError::validation(format!(
            "field `{field}`: expected a string or a list of strings, found {}",
            kind(other)
        ))),
    }
}

/// TEI's `/predict` inputs: a text; a pair `[a, b]`; or a list of those (`[[a], [b, c]]`).
/// Returns the inputs and whether the request was a list.
pub fn predict_inputs(value: &Value, field: &str) -> Result<(Vec<Input>, bool), ApiError> {
    let one = |v: &Value, at: &str| -> Result<Input, ApiError> {
        match v {
            Value::String(_) => Ok(Input::Text(text(v, at)?)),
            Value::Array(items) => match items.as_slice() {
                [a] => Ok(Input::Text(text(a, &format!("{at}[0]"))?)),
                [a, b] => Ok(Input::Pair(
                    text(a, &format!("{at}[0]"))?,
                    text(b, &format!("{at}[1]"))?,
                )),
                _ => Err(ApiError::validation(format!(
                    "field `{at}`: expected a text or a pair of texts, found a list of {}",
                    items.len()
                ))),
            },
            other => Err(ApiError::validation(format!(
                "field `{at}`: expected a text or a pair of texts, found {}",
                kind(other)
            ))),
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Err(ApiError::validation(format!(
            "field `{field}`: the list is empty"
        ))),
        // A list of lists is a batch; a list of strings is one pair (or one text), as in TEI.
        Value::Array(items) if items.iter().all(Value::is_array) => Ok((
            items
                .iter()
                .enumerate()
                .map(|(i, v)| one(v, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?,
            true,
        )),
        _ => Ok((vec![one(value, field)?], false)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn every_form_of_input_is_read_and_errors_name_the_item() {
        assert_eq!(texts_or_ids(&json!("a"), "input").unwrap().len(), 1);
        assert_eq!(texts_or_ids(&json!(["a", "b"]), "input").unwrap().len(), 2);
        assert!(matches!(
            texts_or_ids(&json!([2, 7, 3]), "input").unwrap()[..],
            [Input::Ids(ref ids)] if ids == &[2, 7, 3]
        ));
        assert_eq!(
            texts_or_ids(&json!([[2, 3], [2, 9, 3]]), "input")
                .unwrap()
                .len(),
            2
        );
        for (value, needle) in [
            (json!(["a", 3]), "`input[1]`"),
            (json!([2, -1]), "`input[1]`"),
            (json!([[2], []]), "`input[1]`"),
            (json!(["a", ""]), "`input[1]`: the text is empty"),
            (json!({"a": 1}), "found an object"),
            (json!([]), "empty"),
        ] {
            let err = texts_or_ids(&value, "input").unwrap_err();
            assert_eq!(err.status, 422);
            assert!(err.message.contains(needle), "{value}: {}", err.message);
        }
    }

    #[test]
    fn predict_takes_texts_pairs_and_lists_of_them() {
        let (inputs, list) = predict_inputs(&json!("a"), "inputs").unwrap();
        assert!(!list && matches!(inputs[..], [Input::Text(_)]));
        let (inputs, list) = predict_inputs(&json!(["a", "b"]), "inputs").unwrap();
        assert!(!list && matches!(inputs[..], [Input::Pair(_, _)]));
        let (inputs, list) = predict_inputs(&json!([["a", "b"], ["c"]]), "inputs").unwrap();
        assert!(list && matches!(inputs[..], [Input::Pair(_, _), Input::Text(_)]));
        let err = predict_inputs(&json!([["a", "b", "c"]]), "inputs").unwrap_err();
        assert!(err.message.contains("`inputs[0]`"), "{}", err.message);
    }
}
