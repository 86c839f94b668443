//! Fuzz targets for the trainer's data readers (`.csv` and JSON lines: sequence labels, word
//! tags, SQuAD-style answers), as the workspace's tests/tests/fuzz.rs does for the other loaders
//! (`albert_e2e::fuzz`); here so that the test finds libtorch (this crate's build.rs rpath).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use albert_e2e::fuzz::{self, Verdict};
use albert_train::finetune::{
    Columns, QaColumns, TagColumns, read_examples, read_qa_examples, read_tagged_examples,
};
use proptest::prelude::*;

/// Runs the three readers on the same bytes as a file named `name` (the extension picks the
/// format): an error, or examples that hold what the reader promises.
fn check(name: &str, bytes: &[u8]) -> Verdict {
    let (_dir, path) = fuzz::in_file(name, bytes);
    let columns = Columns {
        text: "text".into(),
        pair: Some("pair".into()),
        label: "label".into(),
    };
    if let Ok(examples) = read_examples(&path, &columns)
        && examples.is_empty()
    {
        return Err("no examples, and no error".into());
    }
    let tags = TagColumns {
        words: "tokens".into(),
        tags: "tags".into(),
    };
    if let Ok(examples) = read_tagged_examples(&path, &tags)
        && let Some(e) = examples
            .iter()
            .find(|e| e.words.len() != e.tags.len() || e.words.is_empty())
    {
        return Err(format!(
            "{} words with {} tags",
            e.words.len(),
            e.tags.len()
        ));
    }
    let qa = QaColumns {
        question: "question".into(),
        context: "context".into(),
        answers: "answers".into(),
    };
    if let Ok(examples) = read_qa_examples(&path, &qa) {
        for e in examples {
            for (text, start) in &e.answers {
                let found: String = e
                    .context
                    .chars()
                    .skip(*start)
                    .take(text.chars().count())
                    .collect();
                if found != *text {
                    return Err(format!(
                        "answer `{text}` is not at {start} of `{}`",
                        e.context
                    ));
                }
            }
        }
    }
    Ok(())
}

/// One row of each reader's columns, so each reader gets past its column check.
const CSV_SEED: &str = "text,pair,label,tokens,tags,question,context,answers\n\
    hello there,how are you,positive,the cat sat,O B-ANIMAL O,Who sat?,the cat sat,\"{\"\"text\"\": [\"\"cat\"\"], \"\"answer_start\"\": [4]}\"\n\
    \"quoted, with comma\",\"\",negative,a b,O O,What?,\"line\nbreak\",\"{\"\"text\"\": [], \"\"answer_start\"\": []}\"\n";

const JSONL_SEED: &str = r#"{"text": "hello there", "pair": "how are you", "label": "positive", "tokens": ["the", "cat", "sat"], "tags": ["O", "B-ANIMAL", "O"], "question": "Who sat?", "context": "the cat sat", "answers": {"text": ["cat"], "answer_start": [4]}}
{"text": "naïve café", "pair": null, "label": 1, "tokens": ["a"], "tags": ["O"], "question": "What?", "context": "", "answers": {"text": "x", "answer_start": 0}}
"#;

/// Byte edits of a seed, and rows whose cells are drawn from awkward values.
fn rows(seed: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        Just(String::new()),
        "[a-z ,\"\n]{0,12}",
        any::<String>(),
        Just("{\"text\": [\"a\"], \"answer_start\": [18446744073709551615]}".to_string()),
        Just("{\"text\": [\"a\", \"b\"], \"answer_start\": [1]}".to_string()),
        Just("\u{feff}".to_string()),
    ];
    prop_oneof![
        fuzz::mutated_bytes(vec![seed.as_bytes().to_vec()], 8),
        (
            fuzz::mutated_bytes(vec![seed.as_bytes().to_vec()], 2),
            prop::collection::vec(prop::collection::vec(cell, 0..10), 0..4)
        )
            .prop_map(move |(mut bytes, extra)| {
                let json = seed.starts_with('{');
                for row in extra {
                    let line = if json {
                        let names = [
                            "text", "pair", "label", "tokens", "tags", "question", "context",
                            "answers",
                        ];
                        let map: serde_json::Map<String, serde_json::Value> = names
                            .iter()
                            .zip(row)
                            .map(|(k, v)| {
                                let value = serde_json::from_str(&v)
                                    .unwrap_or(serde_json::Value::String(v));
                                (k.to_string(), value)
                            })
                            .collect();
                        serde_json::Value::Object(map).to_string()
                    } else {
                        row.iter()
                            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    bytes.extend(line.as_bytes());
                    bytes.push(b'\n');
                }
                bytes
            }),
    ]
}

#[test]
fn train_csv() {
    fuzz::run(
        "train_csv",
        rows(CSV_SEED),
        |b| b.clone(),
        |b| check("data.csv", b),
    );
}

#[test]
fn train_jsonl() {
    fuzz::run(
        "train_jsonl",
        rows(JSONL_SEED),
        |b| b.clone(),
        |b| check("data.jsonl", b),
    );
}
