//! Clients nobody here wrote, against `albert-serve`: the official `openai` Python client on
//! `/v1/embeddings` (installed by tools/setup.sh). And the engine flags as `albert-run` has them:
//! an unavailable GPU provider is a clear error, or the CPU with `--fallback`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../../tests/support/docs_commands.rs"]
mod docs_commands;

mod common;

use std::process::Command;

use albert_core::Task;
use albert_core::compare;
use albert_runtime::{EmbedOptions, Pipeline, PipelineOptions, Pooling};
use common::Server;
use serde_json::Value;

const TEXTS: [&str; 3] = [
    "ALBERT shares one set of layer weights across all layers.",
    "Short text.",
    "Sentence order prediction asks whether two segments are swapped.",
];

/// Serves a tiny base export as `albert-tiny` and runs `tools/serve_client_check.py CLIENT`
/// against it on [`TEXTS`]: the export's directory (for references) and what the client got.
fn check_with(client: &str, seed: u64) -> (tempfile::TempDir, std::path::PathBuf, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, seed).1;
    let server = Server::start(
        &[format!("albert-tiny={}", dir.display())],
        &[],
        &tmp.path().join("cache"),
    );
    let out = Command::new(albert_e2e::root().join(".venv/bin/python"))
        .arg(albert_e2e::root().join("tools/serve_client_check.py"))
        .args([client, &server.url, "albert-tiny"])
        .args(TEXTS)
        .output()
        .expect("run the client (tools/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    (tmp, dir, serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn the_official_openai_client_gets_the_runtimes_embeddings() {
    let (_tmp, dir, got) = check_with("openai", 21);
    let pipeline = Pipeline::load(&dir, &PipelineOptions::default()).unwrap();
    let want = pipeline
        .embed(
            &TEXTS,
            EmbedOptions {
                pooling: Pooling::Mean,
                normalize: true,
            },
        )
        .unwrap();
    assert_eq!(got["model"], "albert-tiny");
    assert_eq!(got["indices"], serde_json::json!([0, 1, 2]));
    for format in ["base64", "float"] {
        for (i, vector) in got[format].as_array().unwrap().iter().enumerate() {
            let vector = common::floats(vector);
            assert!(
                compare::max_abs_diff(&vector, &want[i]) <= 1e-5,
                "{format} {i}"
            );
            assert!(compare::cosine(&vector, &want[i]) >= 0.9999, "{format} {i}");
        }
    }
    let tokens: usize = TEXTS
        .iter()
        .map(|t| pipeline.tokenizer().encode(*t, true).unwrap().len())
        .sum();
    assert_eq!(got["usage"]["prompt_tokens"], tokens);
}

#[test]
fn an_unavailable_gpu_provider_fails_clearly_or_falls_back_with_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, 22).1;
    // This machine's ONNX Runtime is the CPU build: CUDA cannot be registered.
    let out = Command::new(env!("CARGO_BIN_EXE_albert-serve"))
        .arg(&dir)
        .args(["--port", "0", "--provider", "cuda", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("execution provider cuda:0 is unavailable"),
        "{stderr}"
    );

    let server = Server::start(
        &[dir.display().to_string()],
        &["--provider", "cuda", "--fallback"],
        &tmp.path().join("cache"),
    );
    let info: Value = reqwest::blocking_get(&server.at("/info"));
    assert_eq!(info["models"][0]["engine"], "onnxruntime (cpu)", "{info}");
}

mod reqwest {
    /// A GET from a synchronous test, on a small runtime of its own.
    pub fn blocking_get(url: &str) -> serde_json::Value {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}

#[test]
fn tritonclient_speaks_the_v2_protocol_and_gets_the_runtimes_tensors() {
    let (_tmp, dir, got) = check_with("triton", 23);
    assert_eq!(got["live"], true);
    assert_eq!(got["ready"], true);
    assert_eq!(got["model_ready"], true);
    assert_eq!(got["server"]["name"], "albert-serve");
    assert_eq!(got["model"]["inputs"][0]["name"], "TEXT");
    assert_eq!(got["model"]["inputs"][0]["datatype"], "BYTES");
    assert_eq!(got["id"], "check-1");

    let pipeline = Pipeline::load(&dir, &PipelineOptions::default()).unwrap();
    let hidden = pipeline.config().hidden_size;
    let encodings: Vec<_> = TEXTS
        .iter()
        .map(|t| pipeline.tokenizer().encode(*t, true).unwrap())
        .collect();
    let longest = encodings.iter().map(|e| e.len()).max().unwrap();
    for form in ["binary", "json"] {
        let tensors = &got[form];
        assert_eq!(
            tensors["last_hidden_state"]["shape"],
            serde_json::json!([TEXTS.len(), longest, hidden])
        );
        assert_eq!(
            tensors["pooler_output"]["shape"],
            serde_json::json!([TEXTS.len(), hidden])
        );
        let states = common::floats(&tensors["last_hidden_state"]["data"]);
        let pooled = common::floats(&tensors["pooler_output"]["data"]);
        for (i, encoding) in encodings.iter().enumerate() {
            // The reference: this text alone, unpadded.
            let alone = pipeline.run_encodings(&[encoding]).unwrap();
            let want_states = alone["last_hidden_state"].to_array().unwrap();
            let want_pooled = alone["pooler_output"].to_array().unwrap();
            let row = &states[i * longest * hidden..(i + 1) * longest * hidden];
            let len = encoding.len();
            assert!(
                compare::max_abs_diff(&row[..len * hidden], want_states.as_slice().unwrap())
                    <= 1e-5,
                "{form} text {i}"
            );
            assert!(
                row[len * hidden..].iter().all(|&v| v == 0.0),
                "{form} text {i}: padding is zeros"
            );
            assert!(
                compare::max_abs_diff(
                    &pooled[i * hidden..(i + 1) * hidden],
                    want_pooled.as_slice().unwrap()
                ) <= 1e-5,
                "{form} text {i}"
            );
        }
    }
}

#[test]
fn every_flag_reads_its_environment_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, 24).1;
    // As a container deployment sets it: no arguments at all.
    let mut child = Command::new(env!("CARGO_BIN_EXE_albert-serve"))
        .env("ALBERT_SERVE_MODELS", format!("envmodel={}", dir.display()))
        .env("ALBERT_SERVE_HOST", "127.0.0.1")
        .env("ALBERT_SERVE_PORT", "0")
        .env("ALBERT_SERVE_CACHE_DIR", tmp.path().join("cache"))
        .env("ALBERT_SERVE_API_KEY", "from-env")
        .env("ALBERT_SERVE_MAX_CLIENT_BATCH_SIZE", "3")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (unauthorized, info) = runtime.block_on(async {
        let client = ::reqwest::Client::new();
        let unauthorized = client
            .get(format!("{url}/info"))
            .send()
            .await
            .unwrap()
            .status();
        let info: Value = client
            .get(format!("{url}/info"))
            .bearer_auth("from-env")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (unauthorized, info)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(unauthorized, 401);
    assert_eq!(info["models"][0]["name"], "envmodel", "{info}");
    assert_eq!(info["limits"]["max_client_batch_size"], 3, "{info}");
}

/// Every `albert-serve` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_serve_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-serve",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-serve")),
    );
}
