//! `albert-serve`: ALBERT over HTTP. OpenAI- and TEI-compatible embeddings, TEI's classification
//! and tokenization, the HF Inference API's task routes; batches formed by token budget across
//! requests; limits that answer 429/413/422/503 instead of queueing without end; Prometheus
//! metrics. See docs/serving.md.

pub mod batcher;
pub mod error;
pub mod infer;
pub mod middleware;
pub mod models;
pub mod openapi;
pub mod routes;
pub mod state;

// The README's examples compile as doc tests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
