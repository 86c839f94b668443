//! The OpenAPI document of a live `albert-serve` validates (PyPI `openapi-spec-validator`), and
//! Schemathesis (PyPI `schemathesis`) drives every route from it with generated valid and invalid
//! bodies: no 5xx, no crash, only documented status codes and content types, every answer matching
//! its documented schema. Both tools live in `.venv-checks` (tools/setup.sh). The number of
//! examples per route is `ALBERT_SERVE_FUZZ_EXAMPLES` (25 here; `make fuzz-serve` runs 500).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;

use common::{Server, exports, model_args};

fn checks_bin(name: &str) -> std::path::PathBuf {
    albert_e2e::root().join(".venv-checks/bin").join(name)
}

#[test]
fn the_openapi_document_validates_and_schemathesis_finds_no_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let models = exports(tmp.path());
    let server = Server::start(
        &model_args(&models),
        &["--max-client-batch-size", "8", "--payload-limit", "64KB"],
        &tmp.path().join("cache"),
    );
    let schema = server.at("/openapi.json");

    let validated = Command::new(checks_bin("python"))
        .args([
            "-c",
            "import json, sys, urllib.request\n\
             from openapi_spec_validator import validate\n\
             doc = json.load(urllib.request.urlopen(sys.argv[1]))\n\
             validate(doc)\n\
             print(len(doc['paths']), 'paths valid')",
            &schema,
        ])
        .output()
        .expect("run openapi-spec-validator (tools/setup.sh makes .venv-checks)");
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&validated.stdout).trim(),
        "17 paths valid"
    );

    let examples = std::env::var("ALBERT_SERVE_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".to_string());
    let out = Command::new(checks_bin("schemathesis"))
        .current_dir(tmp.path())
        .args(["run", &schema, "--url", &server.url, "--max-examples", &examples])
        .args(["--seed", "20261203", "--workers", "1", "--checks", "all"])
        // Not checked: that every schema-valid body is accepted (a text's token count and the
        // model's vocabulary are limits no schema can state; their 422 is documented), and the
        // checks of stateful APIs with resources and authorization (this server has neither).
        .args([
            "--exclude-checks",
            "positive_data_acceptance,ignored_auth,use_after_free,ensure_resource_availability,object_level_authorization",
        ])
        .output()
        .expect("run schemathesis (tools/setup.sh makes .venv-checks)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let summary = report
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_default();
    eprintln!("schemathesis: {}", summary.trim());
    assert!(summary.contains("passed"), "{report}");
}
