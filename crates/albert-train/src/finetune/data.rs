//! Rows of fine-tuning data from `.csv` (with a header) or JSON lines (`.jsonl`, `.json`,
//! `.ndjson`), with field accessors whose errors name the file, the line and the field.

use std::path::Path;

use serde_json::Value;

use crate::error::{Result, TrainError};

pub(crate) fn bad(name: &'static str, message: String) -> TrainError {
    TrainError::BadInput { name, message }
}

/// One record: where it came from (`file:line`) and its fields. CSV cells are strings; JSON
/// values are kept as they are.
pub(crate) struct Row {
    pub origin: String,
    pub fields: serde_json::Map<String, Value>,
    /// CSV rows: cells are text, so lists and objects arrive as text to be parsed.
    pub from_csv: bool,
}

impl Row {
    fn field(&self, key: &str) -> Result<&Value> {
        match self.fields.get(key) {
            Some(Value::Null) | None => {
                Err(bad("data", format!("{}: no field `{key}`", self.origin)))
            }
            Some(value) => Ok(value),
        }
    }

    /// A text field (numbers and booleans as written).
    pub fn string(&self, key: &str) -> Result<String> {
        Ok(match self.field(key)? {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// A list of strings: a JSON array, or (CSV) the cell split at whitespace.
    pub fn strings(&self, key: &str) -> Result<Vec<String>> {
        match self.field(key)? {
            Value::Array(items) => Ok(items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()),
            Value::String(s) if self.from_csv => {
                Ok(s.split_whitespace().map(str::to_string).collect())
            }
            other => Err(bad(
                "data",
                format!(
                    "{}: field `{key}` must be a list of strings, found {other}",
                    self.origin
                ),
            )),
        }
    }

    /// A JSON value: as it is in JSON lines, parsed from the cell's text in CSV.
    pub fn json(&self, key: &str) -> Result<Value> {
        let value = self.field(key)?;
        match value {
            Value::String(s) if self.from_csv => serde_json::from_str(s).map_err(|e| {
                bad(
                    "data",
                    format!("{}: field `{key}` is not JSON ({e}): {s}", self.origin),
                )
            }),
            other => Ok(other.clone()),
        }
    }
}

/// The rows of one file, and (CSV) its header's columns.
pub(crate) struct Table {
    pub rows: Vec<Row>,
    path: std::path::PathBuf,
    columns: Option<Vec<String>>,
}

impl Table {
    /// Checks that a CSV file has the named columns, naming the ones it has (JSON lines are
    /// checked row by row as fields are read).
    pub fn require(&self, wanted: &[&str]) -> Result<()> {
        let Some(have) = &self.columns else {
            return Ok(());
        };
        match wanted.iter().find(|w| !have.iter().any(|h| h == *w)) {
            Some(missing) => Err(bad(
                "data",
                format!(
                    "{}: no column `{missing}` (columns: {})",
                    self.path.display(),
                    have.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }
}

/// Reads every row of a `.csv` or JSON-lines file; an empty file is an error.
pub(crate) fn read_rows(path: &Path) -> Result<Table> {
    let is_jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "json" || e == "ndjson");
    let mut rows = Vec::new();
    let mut columns = None;
    if is_jsonl {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let origin = format!("{}:{}", path.display(), n + 1);
            let fields = match serde_json::from_str(line) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(bad("data", format!("{origin}: not a JSON object"))),
                Err(e) => return Err(bad("data", format!("{origin}: not JSON: {e}"))),
            };
            rows.push(Row {
                origin,
                fields,
                from_csv: false,
            });
        }
    } else {
        let mut reader = csv::Reader::from_path(path)
            .map_err(|e| bad("data", format!("{}: {e}", path.display())))?;
        let headers = reader
            .headers()
            .map_err(|e| bad("data", format!("{}: {e}", path.display())))?
            .clone();
        for (n, record) in reader.records().enumerate() {
            let origin = format!("{}:{}", path.display(), n + 2);
            let record = record.map_err(|e| bad("data", format!("{origin}: {e}")))?;
            let fields = headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
                .collect();
            rows.push(Row {
                origin,
                fields,
                from_csv: true,
            });
        }
        columns = Some(headers.iter().map(str::to_string).collect());
    }
    let table = Table {
        rows,
        path: path.to_path_buf(),
        columns,
    };
    if table.rows.is_empty() {
        return Err(bad("data", format!("{}: no examples", path.display())));
    }
    Ok(table)
}
