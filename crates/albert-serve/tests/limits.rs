//! `albert-serve`'s limits, errors, overload and shutdown, as clients meet them. Every loop here
//! is bounded in requests and time, and every server listens on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::sync::Arc;
use std::time::Duration;

use albert_core::Task;
use albert_core::compare;
use common::{Server, exports, floats, model_args};
use serde_json::{Value, json};

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn assert_error(status: u16, body: &Value, want_status: u16, error_type: &str, needles: &[&str]) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    let message = body["error"].as_str().unwrap();
    for needle in needles {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_has_its_status_and_says_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let models = exports(tmp.path());
    let server = Server::start(
        &model_args(&models),
        &["--max-client-batch-size", "4", "--payload-limit", "4KB"],
        &tmp.path().join("cache"),
    );
    let client = reqwest::Client::new();
    let embed = |body: Value| client.post(server.at("/embed")).json(&body);

    let (status, _, body) = send(embed(json!({"model": "nope", "inputs": "a"}))).await;
    assert_error(
        status,
        &body,
        404,
        "not_found",
        &["`nope`", "base (embeddings)"],
    );

    let (status, _, body) = send(embed(json!({"model": "masked-lm", "inputs": "a"}))).await;
    assert_error(
        status,
        &body,
        422,
        "validation",
        &["cannot do embeddings", "fill-mask"],
    );

    let (status, _, body) = send(embed(json!({"inputs": "a"}))).await;
    assert_eq!(
        status, 200,
        "one embedding model: `model` may be left out ({body})"
    );

    let (status, _, body) = send(embed(
        json!({"model": "base", "inputs": ["a", "b", "c", "d", "e"]}),
    ))
    .await;
    assert_error(
        status,
        &body,
        413,
        "validation",
        &["5 inputs", "--max-client-batch-size 4"],
    );

    let big = "word ".repeat(2000);
    let (status, _, body) = send(embed(json!({"model": "base", "inputs": big}))).await;
    assert_error(status, &body, 413, "validation", &["payload limit"]);

    // The tiny test model takes 64 tokens.
    let long = "one two three four five six seven eight nine ten ".repeat(5);
    let (status, _, body) = send(embed(json!({"model": "base", "inputs": ["short", long]}))).await;
    assert_error(
        status,
        &body,
        422,
        "tokenizer",
        &["input 1", "tokens", "limit of 64", "truncate"],
    );
    let (status, _, body) = send(embed(
        json!({"model": "base", "inputs": ["short", long], "truncate": true}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, _, body) = send(
        client
            .post(server.at("/embed"))
            .body("{\"inputs\": [\"a\","),
    )
    .await;
    assert_error(status, &body, 422, "validation", &["invalid JSON"]);
    let (status, _, body) = send(embed(
        json!({"model": "base", "inputs": "a", "normalize": "yes"}),
    ))
    .await;
    assert_error(status, &body, 422, "validation", &["`normalize`"]);
    let (status, _, body) = send(embed(json!({"model": "base", "inputs": ["a", 7]}))).await;
    assert_error(status, &body, 422, "validation", &["`inputs[1]`"]);
    let (status, _, body) = send(embed(json!({"model": "base"}))).await;
    assert_error(status, &body, 422, "validation", &["inputs"]);
    let (status, _, body) = send(embed(json!({"model": "base", "inputs": [[2, 99999, 3]]}))).await;
    assert_error(
        status,
        &body,
        422,
        "validation",
        &["input 0", "99999", "vocabulary"],
    );

    let (status, _, body) = send(
        client
            .post(server.at("/v1/embeddings"))
            .json(&json!({"model": "base", "input": "a", "dimensions": 7})),
    )
    .await;
    assert_error(status, &body, 422, "validation", &["`dimensions`", "7"]);

    let (status, _, body) = send(
        client
            .post(server.at("/fill-mask"))
            .json(&json!({"model": "masked-lm", "inputs": "no mask here"})),
    )
    .await;
    assert_error(status, &body, 422, "validation", &["[MASK]"]);

    let (status, _, body) = send(client.post(server.at("/question-answering")).json(
        &json!({"model": "question-answering", "inputs": {"question": "what?", "context": " "}}),
    ))
    .await;
    assert_error(status, &body, 422, "validation", &["inputs.context"]);

    let (status, _, body) = send(client.get(server.at("/no-such-route"))).await;
    assert_error(status, &body, 404, "not_found", &["route"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_guards_all_but_the_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, 7).1;
    let server = Server::start(
        &[dir.display().to_string()],
        &["--api-key", "s3cret"],
        &tmp.path().join("cache"),
    );
    let client = reqwest::Client::new();
    let body = json!({"inputs": "a"});
    let (status, headers, body_) = send(client.post(server.at("/embed")).json(&body)).await;
    assert_error(
        status,
        &body_,
        401,
        "unauthorized",
        &["Authorization: Bearer"],
    );
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, body_) = send(
        client
            .post(server.at("/embed"))
            .bearer_auth("wrong")
            .json(&body),
    )
    .await;
    assert_error(status, &body_, 401, "unauthorized", &["wrong"]);
    let (status, _, _) = send(
        client
            .post(server.at("/embed"))
            .bearer_auth("s3cret")
            .json(&body),
    )
    .await;
    assert_eq!(status, 200);
    for open in ["/health", "/metrics"] {
        let (status, _, _) = send(client.get(server.at(open))).await;
        assert_eq!(status, 200, "{open}");
    }
    let (status, _, _) = send(client.get(server.at("/info"))).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_give_503_and_abandoned_work_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let client = reqwest::Client::new();
    // 32 long texts in batches of 2 on one thread take far longer than 100 ms.
    let body = json!({"model": "tiny", "inputs": common::long_texts(32), "truncate": true});
    {
        let server = common::slow_server(&cache, &["--request-timeout", "100ms"]);
        let (status, headers, answer) = send(client.post(server.at("/embed")).json(&body)).await;
        assert_error(
            status,
            &answer,
            503,
            "unavailable",
            &["--request-timeout 100ms"],
        );
        assert_eq!(headers["retry-after"], "1");
    }

    // A client that disconnects while its texts wait in the queue: they are dropped, not run.
    let server = common::slow_server(&cache, &[]);
    let metric = |name: &'static str| {
        let (client, url) = (client.clone(), server.at("/metrics"));
        async move {
            gauge(
                &client.get(url).send().await.unwrap().text().await.unwrap(),
                name,
            )
        }
    };
    let request = tokio::spawn(client.post(server.at("/embed")).json(&body).send());
    let mut queued = 0.0;
    for _ in 0..1000 {
        queued = metric("albert_queue_size").await;
        if queued >= 10.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(queued >= 10.0, "the queue never held 10 texts ({queued})");
    request.abort();
    let mut seen = 0.0;
    for _ in 0..400 {
        seen = metric("albert_requests_dropped_total").await;
        if seen >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        seen >= 1.0,
        "albert_requests_dropped_total stayed at {seen}"
    );
    let ran = metric("albert_batch_size_sum").await;
    assert!(
        ran + seen <= 32.0 + 1e-9 && ran < 32.0,
        "{ran} texts ran, {seen} dropped"
    );
}

/// The alone-and-unbatched vector of each text, from the server itself with batching off.
async fn embed_one(client: &reqwest::Client, url: &str, text: &str) -> Option<(u16, Vec<f32>)> {
    let response = client
        .post(url)
        .json(&json!({"inputs": text}))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.ok()?;
    Some((
        status,
        if status == 200 {
            floats(&body[0])
        } else {
            Vec::new()
        },
    ))
}

fn burst_texts() -> Vec<String> {
    (0..200)
        .map(|i| {
            let words = [
                "shared", "layers", "token", "budget", "albert", "batch", "model",
            ];
            (0..(1 + i % 9))
                .map(|j| words[(i + j) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overload_gets_429s_and_every_accepted_answer_is_right() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, 9).1;
    let alone = Server::start(
        &[dir.display().to_string()],
        &["--max-batch-requests", "1"],
        &tmp.path().join("cache"),
    );
    let server = Server::start(
        &[dir.display().to_string()],
        &[
            "--max-concurrent-requests",
            "4",
            "--max-batch-delay-ms",
            "5",
        ],
        &tmp.path().join("cache"),
    );
    let client = reqwest::Client::new();
    let texts = burst_texts();
    let mut reference = std::collections::HashMap::new();
    for text in &texts {
        if !reference.contains_key(text) {
            let (status, vector) = embed_one(&client, &alone.at("/embed"), text).await.unwrap();
            assert_eq!(status, 200);
            reference.insert(text.clone(), vector);
        }
    }
    // 200 requests from 64 concurrent clients.
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let url = server.at("/embed");
    let mut handles = Vec::new();
    for text in texts {
        let (client, url, gate) = (client.clone(), url.clone(), gate.clone());
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let result = embed_one(&client, &url, &text).await;
            (text, result)
        }));
    }
    let (mut ok, mut overloaded) = (0, 0);
    for handle in handles {
        let (text, result) = handle.await.unwrap();
        let (status, vector) = result.expect("no response");
        match status {
            200 => {
                ok += 1;
                let want = &reference[&text];
                assert!(
                    compare::max_abs_diff(&vector, want) <= 1e-5,
                    "{text}: {:e}",
                    compare::max_abs_diff(&vector, want)
                );
                assert!(compare::cosine(&vector, want) >= 0.9999);
            }
            429 => overloaded += 1,
            other => panic!("status {other} for {text}"),
        }
    }
    assert_eq!(ok + overloaded, 200);
    assert!(
        overloaded > 0,
        "64 clients against 4 permits never overloaded ({ok} ok)"
    );
    assert!(ok > 0);
    eprintln!("{ok} accepted, {overloaded} refused with 429");
}

/// The sum of a metric's samples (over its labels) in Prometheus text; 0 when absent.
fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_loses_no_accepted_request() {
    let tmp = tempfile::tempdir().unwrap();
    // 40 long texts in batches of 2 on one thread: seconds of work, so all 40 requests are
    // surely in flight at SIGTERM.
    let mut server = common::slow_server(&tmp.path().join("cache"), &["--shutdown-timeout", "60s"]);
    let client = reqwest::Client::new();
    let url = server.at("/embed");
    let texts = common::long_texts(40);
    let spawn = |text: String| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            client
                .post(&url)
                .json(&json!({"model": "tiny", "inputs": text, "truncate": true}))
                .send()
                .await
        })
    };
    let accepted: Vec<_> = texts.into_iter().map(spawn).collect();
    let mut in_flight = 0.0;
    for _ in 0..300 {
        let metrics = client
            .get(server.at("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        in_flight = gauge(&metrics, "albert_requests_in_flight");
        if in_flight >= 40.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(in_flight >= 40.0, "only {in_flight} requests in flight");
    server.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Requests after SIGTERM are not accepted: 503, or a refused connection.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let late = fresh
        .post(&url)
        .json(&json!({"model": "tiny", "inputs": "late"}))
        .send()
        .await;
    match late {
        Ok(response) => assert_eq!(response.status(), 503),
        Err(e) => assert!(e.is_connect() || e.is_request(), "{e}"),
    }
    for handle in accepted {
        let response = handle.await.unwrap().expect("an accepted request was lost");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(floats(&body[0]).len(), 256);
    }
    let status = server.wait(Duration::from_secs(60));
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_is_exported_at_start_and_the_export_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let bundled = albert_e2e::root().join("models/albert-tiny-en");
    let cache = tmp.path().join("cache");
    let arg = format!("tiny={}", bundled.display());
    let client = reqwest::Client::new();
    for round in 0..2 {
        let server = Server::start(std::slice::from_ref(&arg), &[], &cache);
        let info: Value = client
            .get(server.at("/info"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // A pretraining checkpoint is served as its pretraining export and a base export.
        assert_eq!(info["models"][0]["task"], "pretraining", "{info}");
        assert_eq!(info["models"][1]["task"], "base", "{info}");
        let (status, _, body) = send(
            client
                .post(server.at("/v1/embeddings"))
                .json(&json!({"model": "tiny", "input": "the cat sat."})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 256);
        let models: Value = client
            .get(server.at("/v1/models"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(models["data"].as_array().unwrap().len(), 1, "{models}");
        let (status, _, body) = send(
            client
                .post(server.at("/fill-mask"))
                .json(&json!({"inputs": "the cat sat on the [MASK]."})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.as_array().unwrap().len(), 5);
        let log = server.log();
        if round == 0 {
            assert!(log.contains("exporting the checkpoint"), "{log}");
        } else {
            assert!(log.contains("reusing the cached export"), "{log}");
        }
    }
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(entries.len(), 2, "the two exports in the cache, made once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_protocol_says_what_it_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let models = exports(tmp.path());
    let server = Server::start(&model_args(&models), &[], &tmp.path().join("cache"));
    let client = reqwest::Client::new();
    let infer = |model: &str, body: Value| {
        client
            .post(server.at(&format!("/v2/models/{model}/infer")))
            .json(&body)
    };
    let text = |name: &str, shape: Vec<i64>, data: Value| json!({"name": name, "shape": shape, "datatype": "BYTES", "data": data});

    let (status, _, body) = send(infer(
        "nope",
        json!({"inputs": [text("TEXT", vec![1], json!(["a"]))]}),
    ))
    .await;
    assert_error(status, &body, 404, "not_found", &["`nope`"]);
    let (status, _, body) = send(infer(
        "base",
        json!({"inputs": [text("TEXT", vec![2], json!(["a"]))]}),
    ))
    .await;
    assert_error(
        status,
        &body,
        422,
        "validation",
        &["inputs[TEXT]", "shape [2]", "1 texts"],
    );
    let (status, _, body) = send(infer(
        "question-answering",
        json!({"inputs": [text("TEXT", vec![1], json!(["a"]))]}),
    ))
    .await;
    assert_error(
        status,
        &body,
        422,
        "validation",
        &["`QUESTION`", "QUESTION, CONTEXT"],
    );
    let (status, _, body) = send(infer(
        "base",
        json!({"inputs": [{"name": "TEXT", "shape": [1], "datatype": "INT64", "data": [1]}]}),
    ))
    .await;
    assert_error(status, &body, 422, "validation", &["BYTES"]);
    let (status, _, body) = send(infer(
        "base",
        json!({"inputs": [text("TEXT", vec![1], json!(["a"]))], "outputs": [{"name": "logits"}]}),
    ))
    .await;
    assert_error(status, &body, 422, "validation", &["`logits`"]);
    let (status, _, body) = send(infer("base", json!({"inputs": "a"}))).await;
    assert_error(status, &body, 422, "validation", &["`inputs`"]);

    // Pairs and question answering run; outputs come under the export's names.
    let (status, _, body) = send(infer(
        "sequence-classification",
        json!({"id": "7", "inputs": [text("TEXT", vec![2], json!(["a", "b"])), text("TEXT_PAIR", vec![2], json!(["c", "d"]))]}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "7");
    assert_eq!(body["outputs"][0]["name"], "logits");
    assert_eq!(body["outputs"][0]["shape"], json!([2, 3]));
    let (status, _, body) = send(infer(
        "question-answering",
        json!({"inputs": [text("QUESTION", vec![1], json!(["what?"])), text("CONTEXT", vec![1], json!(["the model runs."]))]}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["start_logits", "end_logits"]);

    for (path, want) in [
        ("/v2/health/live", 200),
        ("/v2/health/ready", 200),
        ("/v2/models/base/ready", 200),
        ("/v2/models/nope/ready", 404),
        ("/v2/models/nope", 404),
    ] {
        let (status, _, _) = send(client.get(server.at(path))).await;
        assert_eq!(status, want, "{path}");
    }
}

/// A model directory with a corrupt `model.onnx` (cut short, as by an interrupted copy) or a
/// malformed `tokenizer.json`: start-up exits non-zero, naming the file, and does not panic.
#[test]
fn a_corrupt_model_file_stops_start_up_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = albert_e2e::exported(tmp.path(), Task::Base, 23).1;
    for (file, cut) in [("model.onnx", 2), ("tokenizer.json", 3)] {
        let path = dir.join(file);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() / cut]).unwrap();
        for backend in ["ort", "tract"] {
            let (status, stderr) = common::start_failure(
                &[dir.display().to_string()],
                &["--backend", backend],
                &tmp.path().join("cache"),
            );
            assert!(!status.success(), "{file} {backend}: {stderr}");
            assert!(
                stderr.contains(&path.display().to_string()) && !stderr.contains("panicked"),
                "{file} {backend}: {stderr}"
            );
        }
        std::fs::write(&path, good).unwrap();
    }
}
