//! Every route of `albert-serve` against `albert-runtime`'s own results for the same texts, on
//! both engines. Tolerances: vectors and scores ≤ 1e-5 max-abs (the server batches texts with
//! others, the reference one call per list; only padding and summation order differ).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use albert_core::Task;
use albert_core::compare;
use albert_runtime::{
    BackendChoice, EmbedOptions, OrtOptions, Pipeline, PipelineOptions, Pooling, TractOptions,
};
use base64::Engine as _;
use common::{Server, exports, floats, model_args};
use serde_json::{Value, json};

const TEXTS: [&str; 4] = [
    "ALBERT shares one set of layer weights across all layers.",
    "Short text.",
    "The exporter stores each shared tensor once, and the runtime loads it.",
    "Yes.",
];

fn pipeline(dir: &std::path::Path, backend: &str) -> Pipeline {
    let backend = match backend {
        "ort" => BackendChoice::Ort(OrtOptions::default()),
        _ => BackendChoice::Tract(TractOptions::default()),
    };
    Pipeline::load(
        dir,
        &PipelineOptions {
            backend,
            ..PipelineOptions::default()
        },
    )
    .unwrap()
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let response = client.post(&url).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    for header in [
        "x-total-time",
        "x-tokenization-time",
        "x-queue-time",
        "x-inference-time",
    ] {
        if status == 200 && !url.ends_with("/tokenize") {
            assert!(
                response.headers().contains_key(header),
                "{url}: no {header}"
            );
        }
    }
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_matches_the_runtime_on_both_engines() {
    let tmp = tempfile::tempdir().unwrap();
    let models = exports(tmp.path());
    let dir = |task: Task| models.iter().find(|(t, _)| *t == task).unwrap().1.clone();
    let client = reqwest::Client::new();
    for backend in ["ort", "tract"] {
        let server = Server::start(
            &model_args(&models),
            &["--backend", backend],
            &tmp.path().join("cache"),
        );

        // /info names each model's task and the engine in use.
        let info: Value = client
            .get(server.at("/info"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (task, _) in &models {
            let model = info["models"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == task.name())
                .unwrap();
            assert_eq!(model["task"], task.name(), "{info}");
            let engine = if backend == "ort" {
                "onnxruntime (cpu)"
            } else {
                "tract (cpu)"
            };
            assert_eq!(model["engine"], engine);
        }

        // Embeddings: OpenAI (float and base64) and TEI (each pooling, normalized or not).
        let base = pipeline(&dir(Task::Base), backend);
        let want = base
            .embed(
                &TEXTS,
                EmbedOptions {
                    pooling: Pooling::Mean,
                    normalize: true,
                },
            )
            .unwrap();
        let (status, body) = post(
            &client,
            server.at("/v1/embeddings"),
            json!({"model": "base", "input": TEXTS}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "list");
        assert_eq!(body["model"], "base");
        let tokens: usize = TEXTS
            .iter()
            .map(|t| base.tokenizer().encode(*t, true).unwrap().len())
            .sum();
        assert_eq!(body["usage"]["prompt_tokens"], tokens);
        for (i, item) in body["data"].as_array().unwrap().iter().enumerate() {
            assert_eq!(item["index"], i);
            let diff = compare::max_abs_diff(&floats(&item["embedding"]), &want[i]);
            assert!(diff <= 1e-5, "{backend} /v1/embeddings {i}: {diff:e}");
        }
        let (status, body) = post(
            &client,
            server.at("/v1/embeddings"),
            json!({"model": "base", "input": TEXTS[0], "encoding_format": "base64"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let vector: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert!(compare::max_abs_diff(&vector, &want[0]) <= 1e-5);
        // Token ids, as /tokenize gives them, embed like the text.
        let ids: Vec<u32> = base
            .tokenizer()
            .encode(TEXTS[2], true)
            .unwrap()
            .get_ids()
            .to_vec();
        let (status, body) = post(
            &client,
            server.at("/v1/embeddings"),
            json!({"model": "base", "input": [ids]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(compare::max_abs_diff(&floats(&body["data"][0]["embedding"]), &want[2]) <= 1e-5);

        for (pooling, name, normalize) in [
            (Pooling::Mean, "mean", true),
            (Pooling::Cls, "cls", false),
            (Pooling::Pooler, "pooler", true),
        ] {
            let want = base
                .embed(&TEXTS, EmbedOptions { pooling, normalize })
                .unwrap();
            let (status, body) = post(
                &client,
                server.at("/embed"),
                json!({"model": "base", "inputs": TEXTS, "pooling": name, "normalize": normalize}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            for (i, got) in body.as_array().unwrap().iter().enumerate() {
                let diff = compare::max_abs_diff(&floats(got), &want[i]);
                assert!(diff <= 1e-5, "{backend} /embed {name} {i}: {diff:e}");
            }
        }

        // /predict: texts and pairs; every label, most probable first.
        let classifier = pipeline(&dir(Task::SequenceClassification), backend);
        let singles = classifier.classify(&TEXTS).unwrap();
        let pairs = classifier.classify_pairs(&[(TEXTS[0], TEXTS[1])]).unwrap();
        let (status, body) = post(
            &client,
            server.at("/predict"),
            json!({"model": "sequence-classification", "inputs": [[TEXTS[0]], [TEXTS[1]], [TEXTS[2]], [TEXTS[3]], [TEXTS[0], TEXTS[1]]]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let lists = body.as_array().unwrap();
        for (got, want) in lists.iter().zip(singles.iter().chain(&pairs)) {
            let got = got.as_array().unwrap();
            assert_eq!(got.len(), want.scores.len());
            assert_eq!(got[0]["label"], want.label.as_str());
            for label in &want.scores {
                let item = got
                    .iter()
                    .find(|g| g["label"] == label.label.as_str())
                    .unwrap();
                assert!((item["score"].as_f64().unwrap() as f32 - label.score).abs() <= 1e-5);
            }
            let scores: Vec<f64> = got.iter().map(|g| g["score"].as_f64().unwrap()).collect();
            assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        }
        let (status, body) = post(
            &client,
            server.at("/predict"),
            json!({"model": "sequence-classification", "inputs": TEXTS[1]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body[0]["label"], singles[1].label.as_str());

        // /token-classification: the runtime's word labels, grouped into entities.
        let tagger = pipeline(&dir(Task::TokenClassification), backend);
        let words = tagger.token_classify(&TEXTS[..2]).unwrap();
        let (status, body) = post(
            &client,
            server.at("/token-classification"),
            json!({"model": "token-classification", "inputs": &TEXTS[..2]}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        for (i, got) in body.as_array().unwrap().iter().enumerate() {
            let want = albert_serve::routes::tasks::group_entities(TEXTS[i], &words[i]);
            let got = got.as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{backend} text {i}: {got:?}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g["entity_group"], w.entity_group.as_str());
                assert_eq!(g["word"], w.word.as_str());
                assert_eq!(
                    (g["start"].as_u64().unwrap(), g["end"].as_u64().unwrap()),
                    (w.start as u64, w.end as u64)
                );
                assert!((g["score"].as_f64().unwrap() as f32 - w.score).abs() <= 1e-5);
            }
        }

        // /question-answering: a short context, and one longer than the model takes, which
        // is read in windows, the same as the runtime reads it (it used to be a 422).
        let reader = pipeline(&dir(Task::QuestionAnswering), backend);
        let question = "What is shared?";
        let mut long_context = TEXTS.join(" ");
        while reader
            .tokenizer()
            .encode(long_context.as_str(), true)
            .unwrap()
            .len()
            <= 2 * reader.max_length()
        {
            long_context = format!("{long_context} {}", TEXTS.join(" "));
        }
        assert!(
            reader
                .answer_windows(question, &long_context)
                .unwrap()
                .len()
                > 2
        );
        for context in [TEXTS[0], long_context.as_str()] {
            let want = reader.answer(question, context).unwrap();
            let (status, body) = post(
                &client,
                server.at("/question-answering"),
                json!({"model": "question-answering", "inputs": {"question": question, "context": context}}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["answer"], want.text.as_str());
            assert_eq!(
                (
                    body["start"].as_u64().unwrap(),
                    body["end"].as_u64().unwrap()
                ),
                (want.start as u64, want.end as u64)
            );
            assert!((body["score"].as_f64().unwrap() as f32 - want.score).abs() <= 1e-5);
            assert_eq!(
                &context.chars().collect::<Vec<_>>()[want.start..want.end]
                    .iter()
                    .collect::<String>(),
                body["answer"].as_str().unwrap()
            );
        }

        // /fill-mask: one mask gives a flat list of candidates, HF's shape.
        let filler = pipeline(&dir(Task::MaskedLm), backend);
        let text = "ALBERT shares one set of [MASK] weights.";
        let want = filler.fill_mask(text, 3).unwrap();
        let (status, body) = post(
            &client,
            server.at("/fill-mask"),
            json!({"model": "masked-lm", "inputs": text, "parameters": {"top_k": 3}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let got = body.as_array().unwrap();
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(&want[0].candidates) {
            assert_eq!(g["token"], w.id);
            assert!((g["score"].as_f64().unwrap() as f32 - w.score).abs() <= 1e-5);
            let sequence = g["sequence"].as_str().unwrap();
            assert!(
                sequence.starts_with("ALBERT shares one set of ")
                    && sequence.ends_with(" weights.")
                    && !sequence.contains("[MASK]"),
                "{sequence}"
            );
        }

        // /tokenize: the tokenizer's ids, with character offsets.
        let (status, body) =
            post(&client, server.at("/tokenize"), json!({"inputs": TEXTS[1]})).await;
        assert_eq!(status, 200, "{body}");
        let encoding = base.tokenizer().encode(TEXTS[1], true).unwrap();
        let ids: Vec<u64> = body[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        assert_eq!(
            ids,
            encoding
                .get_ids()
                .iter()
                .map(|&i| u64::from(i))
                .collect::<Vec<_>>()
        );
        assert_eq!(body[0][0]["special"], true);

        // /v1/models lists every model.
        let list: Value = client
            .get(server.at("/v1/models"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["data"].as_array().unwrap().len(), models.len());
    }
}
