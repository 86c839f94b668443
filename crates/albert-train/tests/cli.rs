//! The `albert-train` binary as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "../../../tests/support/docs_commands.rs"]
mod docs_commands;

use std::process::Command;

fn albert_train(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_albert-train"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run albert-train")
}

#[test]
fn params_prints_breakdown_total_and_paper_figure() {
    let out = albert_train(&["params", "--preset", "base", "--sharing", "ffn"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("37,686,528"), "{text}");
    assert!(text.contains("38M (Table 3)"), "{text}");
    assert!(text.contains("embedding mapping"), "{text}");

    let out = albert_train(&["params", "--preset", "large", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["total"], 17_683_968);
    assert_eq!(json["paper"], "18M (Table 1)");
}

#[test]
fn params_reads_a_config_file() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/hf/pretraining_groups/config.json"
    );
    let out = albert_train(&[
        "params",
        "--config",
        config,
        "--head",
        "pretraining",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["total"], 21_251); // HF num_parameters() of that fixture
}

#[test]
fn init_writes_a_loadable_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/hf/pretraining_inner/config.json"
    );
    let out = albert_train(&[
        "init",
        "--config",
        config,
        "--sharing",
        "attention",
        "--head",
        "pretraining",
        "--device",
        "cpu",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checkpoint = albert_core::Checkpoint::read_dir(&dir).unwrap();
    assert_eq!(checkpoint.config.sharing, albert_core::Sharing::Attention);
    assert!(
        checkpoint
            .tensors
            .contains_key("albert.encoder.unshared_layers.2.albert_layers.1.ffn.weight")
    );
}

#[test]
fn user_errors_are_messages_not_panics() {
    let out = albert_train(&["params", "--config", "/nonexistent/config.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/config.json") && !err.contains("panicked"),
        "{err}"
    );

    let out = albert_train(&["params", "--sharing", "half"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("all, attention, ffn, none"), "{err}");

    if !tch::Cuda::is_available() {
        let tmp = tempfile::tempdir().unwrap();
        let out = albert_train(&[
            "init",
            "--device",
            "cuda",
            "-o",
            tmp.path().to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no CUDA device") && !err.contains("panicked"),
            "{err}"
        );
    }
}

#[test]
fn curves_draws_runs_side_by_side_and_names_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    // Two hand-written runs: one with a sentence objective, one without (sentence loss logged as 0).
    let run = |name: &str, sentence_loss: f64| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut lines = String::new();
        for step in [100, 200, 300] {
            let acc = step as f64 / 1000.0;
            lines.push_str(&format!(
                "{{\"split\":\"train\",\"step\":{step},\"loss\":5.0,\"mlm_accuracy\":0.5}}\n\
                 {{\"split\":\"eval\",\"step\":{step},\"loss\":4.0,\"mlm_loss\":4.0,\
                 \"mlm_accuracy\":{acc},\"sentence_loss\":{sentence_loss},\"sentence_accuracy\":0.6}}\n"
            ));
        }
        lines.push_str("{\"split\":\"eval\",\"step\":4"); // a run still writing its last line
        std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
        dir
    };
    let with_sop = run("with-sop", 0.7);
    let without = run("without", 0.0);
    let svg = tmp.path().join("chart.svg");
    let arg = |label: &str, dir: &std::path::Path| format!("{label}={}", dir.display());
    let out = albert_train(&[
        "curves",
        "--run",
        &arg("sop-run", &with_sop),
        "--run",
        &arg("plain-run", &without.join("metrics.jsonl")),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    for title in [
        "held-out MLM accuracy",
        "held-out MLM loss",
        "held-out SOP/NSP accuracy",
    ] {
        assert!(text.contains(title), "{title}");
    }
    // Legends: the SOP run in all three panels, the run without a sentence objective in two.
    assert_eq!(text.matches("\nsop-run\n</text>").count(), 3);
    assert_eq!(text.matches("\nplain-run\n</text>").count(), 2);
    // No temporary file of the chart is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("chart.svg") && n != "chart.svg")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let err = |args: &[&str]| {
        let out = albert_train(args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    let e = err(&["curves", "--run", "no-label", "-o", svg.to_str().unwrap()]);
    assert!(
        e.contains("\"no-label\"") && e.contains("LABEL=PATH"),
        "{e}"
    );
    let missing = tmp.path().join("missing");
    let e = err(&[
        "curves",
        "--run",
        &arg("x", &missing),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(e.contains("missing") && e.contains("not found"), "{e}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("metrics.jsonl"), "").unwrap();
    let e = err(&[
        "curves",
        "--run",
        &arg("x", &empty),
        "-o",
        svg.to_str().unwrap(),
    ]);
    assert!(e.contains("no held-out evaluation"), "{e}");
}

/// A two-layer ALBERT config (E 16, H 32) with `vocab_size`, written to `dir/config.json`.
fn tiny_config(dir: &std::path::Path, vocab_size: usize) -> std::path::PathBuf {
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"model_type": "albert", "vocab_size": {vocab_size}, "embedding_size": 16, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 48, "max_position_embeddings": 64}}"#
        ),
    )
    .unwrap();
    config
}

#[test]
fn pretrain_runs_end_to_end_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let tokenizer = tmp.path().join("tokenizer.json");
    let out = albert_train(&[
        "tokenizer",
        "--corpus",
        &format!("{root}/tests/fixtures/corpus/heldout-sample.txt"),
        "--vocab-size",
        "500",
        "-o",
        tokenizer.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = tiny_config(tmp.path(), 500);
    let run = tmp.path().join("run");
    let out = albert_train(&[
        "pretrain",
        "--config",
        config.to_str().unwrap(),
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--train",
        &format!("{root}/tests/fixtures/corpus/heldout-sample.txt"),
        "--eval",
        &format!("{root}/tests/fixtures/corpus/heldout-sample.txt"),
        "--steps",
        "6",
        "--batch-size",
        "4",
        "--max-seq-length",
        "32",
        "--eval-every",
        "3",
        "--eval-batches",
        "2",
        "--objective",
        "nsp",
        "--device",
        "cpu",
        "--export",
        "-o",
        run.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("done at step 6") && stdout.contains("held-out"),
        "{stdout}"
    );
    let checkpoint = run.join("checkpoint-00000006");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        assert!(checkpoint.join(file).exists(), "{file}");
    }
    let loaded = albert_core::Checkpoint::read_dir(&checkpoint).unwrap();
    assert_eq!(loaded.parts.sentence, Some(albert_core::SentenceHead::Nsp));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"train\"")).count(),
        6
    );
    assert_eq!(
        metrics.lines().filter(|l| l.contains("\"eval\"")).count(),
        2
    );
    let svg = std::fs::read_to_string(run.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("accuracy"));
    assert!(run.join("onnx/model.onnx").exists());
}

/// `tools/experiments.py all --quick` (the paper's Tables 3 and 5, as one command each) runs
/// end to end on a tiny model, tiny corpus and tiny downstream task, and writes both tables with
/// a row per objective and per sharing strategy, training two runs at a time. The numbers of such a
/// run mean nothing; what is checked is that every step runs and lands in the document, listed in
/// table order whatever order the concurrent runs took.
#[test]
fn experiments_script_writes_both_tables() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"vocab_size": 300, "embedding_size": 16, "hidden_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 48, "max_position_embeddings": 64,
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}"#,
    )
    .unwrap();
    // Held-out text: the first 40 sentences of the first four held-out documents (small, so the
    // debug binaries tokenize it quickly).
    let sample =
        std::fs::read_to_string(root.join("tests/fixtures/corpus/heldout-sample.txt")).unwrap();
    let documents: Vec<String> = sample
        .split("\n\n")
        .take(4)
        .map(|d| d.lines().take(40).collect::<Vec<_>>().join("\n"))
        .collect();
    let heldout = tmp.path().join("heldout.txt");
    std::fs::write(&heldout, documents.join("\n\n") + "\n").unwrap();
    // A downstream task: the first word decides the label.
    let lines: Vec<String> = sample
        .lines()
        .filter(|l| l.split_whitespace().count() >= 4)
        .take(120)
        .map(|l| l.replace('"', ""))
        .collect();
    let downstream = tmp.path().join("downstream");
    std::fs::create_dir_all(&downstream).unwrap();
    for (file, rows) in [("train.csv", &lines[..80]), ("test.csv", &lines[80..])] {
        let mut csv = String::from("text,label\n");
        for (i, l) in rows.iter().enumerate() {
            let (word, label) = if i % 2 == 0 {
                ("yes", "a")
            } else {
                ("no", "b")
            };
            csv.push_str(&format!("\"{word} {l}\",{label}\n"));
        }
        std::fs::write(downstream.join(file), csv).unwrap();
    }
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_albert-train"))
        .parent()
        .unwrap();
    let doc = tmp.path().join("experiments.md");
    let experiments = |extra: &[&str]| {
        let out = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tools/experiments.py"))
            .arg("all")
            .arg("--quick")
            .args(extra)
            .args([
                "--vocab-size",
                "300",
                "--max-seq-length",
                "48",
                "--device",
                "cpu",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--train")
            .arg(root.join("tests/fixtures/corpus/small-sample.txt"))
            .arg("--heldout")
            .arg(&heldout)
            .arg("--downstream")
            .arg(&downstream)
            .arg("--bin")
            .arg(bin)
            .arg("--out")
            .arg(tmp.path().join("runs"))
            .arg("--doc")
            .arg(&doc)
            .output()
            .expect("run tools/experiments.py");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // --report-only before anything is trained: every row is there, pending, and nothing ran.
    experiments(&["--report-only"]);
    let tables =
        |t: &str| t[t.find("## Table 5").unwrap()..t.find("## Commands").unwrap()].to_string();
    let pending = std::fs::read_to_string(&doc).unwrap();
    // 3 objectives × 6 figures, 4 sharing strategies × 4 figures.
    assert_eq!(
        tables(&pending).matches("not finished").count(),
        3 * 6 + 4 * 4,
        "{pending}"
    );
    assert!(!tmp.path().join("runs/objective-none").exists());
    assert!(
        pending.contains("Not finished: objective-none (not started), objective-nsp (not started)"),
        "{pending}"
    );
    // Two runs at a time (--jobs 2), each with its output in its own log.
    experiments(&["--jobs", "2"]);
    let text = std::fs::read_to_string(&doc).unwrap();
    assert!(
        text.contains("## Table 5") && text.contains("## Table 3"),
        "{text}"
    );
    assert!(text.contains("2 run(s) at a time"), "{text}");
    for run in ["objective-none", "objective-nsp", "sharing-ffn"] {
        let log = std::fs::read_to_string(tmp.path().join(format!("runs/{run}.log"))).unwrap();
        assert!(
            log.contains("albert-train pretrain ") && log.contains("albert-train finetune "),
            "{run}.log:\n{log}"
        );
    }
    for row in [
        "| none |",
        "| nsp |",
        "| sop |",
        "| all |",
        "| attention |",
        "| ffn |",
    ] {
        assert!(text.contains(row), "{row} missing:\n{text}");
    }
    assert!(!text.to_lowercase().contains("not finished"), "{text}");
    // Each table's runs side by side in a chart beside the document.
    for (table, labels) in [
        ("table5", &["none", "nsp", "sop"][..]),
        ("table3", &["all", "attention", "ffn", "none"][..]),
    ] {
        assert!(
            text.contains(&format!("](experiments-{table}.svg)")),
            "{text}"
        );
        let svg =
            std::fs::read_to_string(tmp.path().join(format!("experiments-{table}.svg"))).unwrap();
        for label in labels {
            assert!(
                svg.contains(&format!("\n{label}\n</text>")),
                "{label} not in {table}"
            );
        }
    }
    // The commands in table order, wherever the concurrent runs took them.
    let commands = &text[text.find("## Commands").unwrap()..];
    let at = |run: &str| commands.find(&format!("runs/{run}/checkpoint-")).unwrap();
    assert!(
        at("objective-none") < at("objective-nsp")
            && at("objective-nsp") < at("sharing-attention")
            && at("sharing-ffn") < at("sharing-none"),
        "{commands}"
    );
    // The all-shared SOP model is trained once and serves both tables.
    let pretrain_runs = text.matches("albert-train pretrain ").count();
    assert_eq!(pretrain_runs, 6, "{text}");
    // A second invocation reuses every finished step and reports the same tables.
    experiments(&["--report-only"]);
    let again = std::fs::read_to_string(&doc).unwrap();
    assert_eq!(tables(&again), tables(&text));
    assert_eq!(
        again.matches("# finished earlier").count(),
        6 * 3 + 1,
        "{again}"
    );
}

/// `pretrain` arguments for the tiny config on the corpus sample: `steps` steps of 2 × 32 tokens
/// on the CPU into `run`, without evaluation or periodic checkpoints.
fn tiny_pretrain_args(config: &std::path::Path, run: &std::path::Path, steps: u64) -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    [
        "pretrain".to_string(),
        "--config".into(),
        config.display().to_string(),
        "--tokenizer".into(),
        format!("{root}/models/albert-tiny-en/tokenizer.json"),
        "--train".into(),
        format!("{root}/tests/fixtures/corpus/heldout-sample.txt"),
        "--steps".into(),
        steps.to_string(),
        "--batch-size".into(),
        "2".into(),
        "--max-seq-length".into(),
        "32".into(),
        "--eval-every".into(),
        "0".into(),
        "--save-every".into(),
        "0".into(),
        "--device".into(),
        "cpu".into(),
        "-o".into(),
        run.display().to_string(),
    ]
    .into()
}

/// `kill` (SIGTERM) stops pretraining at a step boundary with a checkpoint, like Ctrl-C: exit code
/// 130, and `--resume` continues the same schedule from it.
#[test]
fn sigterm_saves_a_checkpoint_that_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), 8000);
    let run = tmp.path().join("run");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = tiny_pretrain_args(&config, &run, 100_000);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let child = Command::new(env!("CARGO_BIN_EXE_albert-train"))
        .args(args(&[]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = run.join("metrics.jsonl");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 3 {
        assert!(
            started.elapsed().as_secs() < 300,
            "no training steps in 5 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let checkpoints: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint-"))
        .collect();
    assert_eq!(checkpoints.len(), 1, "{checkpoints:?}");
    let step: u64 = checkpoints[0]["checkpoint-".len()..].parse().unwrap();
    assert!((3..100_000).contains(&step), "{step}");

    let next = (step + 1).to_string();
    let out = albert_train(
        &args(&["--resume", "--stop-after", &next])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run.join(format!("checkpoint-{:08}", step + 1)).exists());
}

/// A second trainer on the same output directory (a double launch) is refused, naming the
/// directory, and writes nothing there; the running one's lock is what refuses it (held here by
/// the test, as another process would hold it).
#[test]
fn a_run_directory_takes_one_trainer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), 8000);
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let lock = albert_train::run_lock::lock_run_dir(&run, "--output").unwrap();
    let pretrain = || {
        Command::new(env!("CARGO_BIN_EXE_albert-train"))
            .args(tiny_pretrain_args(&config, &run, 2))
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    };
    let refused = pretrain();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("--output")
            && stderr.contains("another albert-train process")
            && stderr.contains(&run.display().to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let written: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != albert_train::run_lock::LOCK_FILE)
        .collect();
    assert!(written.is_empty(), "{written:?}");
    // Once the lock is released, the same command trains.
    drop(lock);
    let trained = pretrain();
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    assert!(run.join("metrics.jsonl").exists());
}

/// Every `albert-train` command line in the README, docs/ and the crate READMEs uses a subcommand and
/// flags the binary has.
#[test]
fn documented_albert_train_commands_exist() {
    docs_commands::check(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        "albert-train",
        std::path::Path::new(env!("CARGO_BIN_EXE_albert-train")),
    );
}
