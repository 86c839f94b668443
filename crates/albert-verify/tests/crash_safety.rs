//! `albert-export` and `albert-convert` killed (SIGKILL) at seeded moments while they write over
//! a complete earlier output: what was complete stays intact or becomes the new complete file,
//! and every file with a final name parses (see `crash/mod.rs`). The model is a few MB, so that
//! writing it takes long enough for kills to land inside the writes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod crash;

use std::path::{Path, PathBuf};
use std::process::Command;

use albert_core::{AlbertConfig, Checkpoint, Head};

/// Kills per tool.
const KILLS: usize = 8;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A random-weight masked-LM checkpoint over the bundled tokenizer's 8,000 pieces (about 6 MB of
/// weights), with that tokenizer.
fn checkpoint(dir: &Path, seed: u64) -> PathBuf {
    let config = AlbertConfig {
        vocab_size: 8000,
        embedding_size: 128,
        hidden_size: 128,
        num_hidden_layers: 2,
        num_hidden_groups: 2,
        num_attention_heads: 4,
        intermediate_size: 512,
        max_position_embeddings: 128,
        ..AlbertConfig::default()
    };
    Checkpoint::random(&config, Head::MaskedLm.parts(), seed)
        .unwrap()
        .write_dir(dir)
        .unwrap();
    std::fs::copy(
        repo("models/albert-tiny-en/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    dir.to_path_buf()
}

fn run_to_end(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn killed_export_and_convert_leave_only_complete_files() {
    let seed = crash::seed();
    let mut rng = crash::Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let first = checkpoint(&tmp.path().join("first"), 1);
    let second = checkpoint(&tmp.path().join("second"), 2);
    let exported = tmp.path().join("exported");

    // albert-export over a complete export of another checkpoint.
    let export = |source: &Path, out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_albert-export"));
        c.arg(source).arg("-o").arg(out);
        c
    };
    run_to_end(&mut export(&first, &exported));
    let command = || export(&second, &exported);
    let inputs: Vec<PathBuf> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| second.join(f))
        .collect();
    let schedule = crash::Schedule {
        seed,
        label: "albert-export",
        command: &command,
        out: &exported,
        inputs: &inputs,
        volatile: &[],
    };
    let reference = schedule.reference(&tmp.path().join("export-reference"));
    let export_hits = schedule.run(&mut rng, KILLS, &reference);

    // albert-convert (int8) over a complete folded conversion of the same export.
    run_to_end(&mut export(&second, &exported));
    let converted = tmp.path().join("converted");
    let convert = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_albert-convert"));
        c.arg(&exported).arg("-o").arg(&converted).args(args);
        c
    };
    run_to_end(&mut convert(&["--fold"]));
    let command = || convert(&["--quantize", "int8"]);
    let inputs: Vec<PathBuf> = ["config.json", "model.onnx", "tokenizer.json"]
        .iter()
        .map(|f| exported.join(f))
        .collect();
    let schedule = crash::Schedule {
        seed,
        label: "albert-convert",
        command: &command,
        out: &converted,
        inputs: &inputs,
        // Its timings differ from run to run.
        volatile: &["convert-report.json"],
    };
    let reference = schedule.reference(&tmp.path().join("convert-reference"));
    let convert_hits = schedule.run(&mut rng, KILLS, &reference);
    println!(
        "kills before the end: albert-export {export_hits}/{KILLS}, albert-convert {convert_hits}/{KILLS}"
    );
    // A schedule whose kills all came after the tools finished would have tested nothing.
    assert!(
        export_hits > 0 && convert_hits > 0,
        "no kill landed while a tool ran (seed {seed})"
    );
}

/// The checks catch what they are there for: a writer that overwrites `model.onnx` in place (as
/// `std::fs::write` would), here cut in two by a pause so that the kills land inside the write,
/// fails them.
#[test]
fn a_writer_that_overwrites_in_place_is_caught() {
    let seed = crash::seed();
    let mut rng = crash::Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let model = repo("tests/fixtures/runtime/tiny-base/model.onnx");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(&model, out.join("model.onnx")).unwrap();
    let script = format!(
        "head -c 1000 '{m}' > '{o}/model.onnx'; sleep 0.3; cat '{m}' > '{o}/model.onnx'",
        m = model.display(),
        o = out.display()
    );
    let command = || {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let schedule = crash::Schedule {
        seed,
        label: "an in-place writer",
        command: &command,
        out: &out,
        inputs: std::slice::from_ref(&model),
        volatile: &[],
    };
    let reference = schedule.reference(&tmp.path().join("reference"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        schedule.run(&mut rng, 4, &reference)
    }))
    .expect_err("a model.onnx cut short under its final name went unnoticed");
    let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("model.onnx") && message.contains(&format!("seed {seed}")),
        "{message}"
    );
}
