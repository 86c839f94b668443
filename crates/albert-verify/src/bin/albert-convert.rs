//! `albert-convert`: any ALBERT ONNX model (ours or a third party's) → a smaller or faster one:
//! dedupe (always), fold the shared layer into a `Scan` loop or unfold it, int8 quantization; with
//! a report of size and of the drift against the source, printed and written as JSON.

use std::path::PathBuf;

use albert_core::checkpoint::{MODEL_FILE, TOKENIZER_FILE, checked_companions};
use albert_onnx::convert::report::{ModelStats, model_file_bytes};
use albert_onnx::convert::{
    self, ConvertOptions, FuseFlavour, Int8Weights, LoopMode, QuantFormat, QuantizeOptions,
};
use albert_onnx::proto::{self, EXTERNAL_DATA_THRESHOLD};
use albert_verify::conversion::{self, DriftCheck, DriftReport, InputSizes, TextSample, Verdict};
use albert_verify::display::{human_bytes, spinner};
use albert_verify::drift::{DriftRow, TextDrift};
use albert_verify::verify::Engine;
use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum QuantizeArg {
    Int8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PrecisionArg {
    Fp32,
    Fp16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FuseArg {
    None,
    Ort,
    Portable,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum EngineArg {
    Onnxruntime,
    Tract,
}

#[derive(Parser)]
#[command(
    name = "albert-convert",
    version,
    about = "Fold, dedupe and quantize an ALBERT ONNX model, reporting size and accuracy drift",
    long_about = "Fold, dedupe and quantize an ALBERT ONNX model (ours or a third party's), \
                  reporting size and accuracy drift.\n\nWith no pass flags it applies the lossless \
                  clean-up only: Constant nodes to initializers, Identity nodes bypassed, duplicate \
                  weights (also transposed copies) and nodes merged, dead nodes removed."
)]
struct Cli {
    /// A model directory (model.onnx [+ config.json, tokenizer.json]) or a .onnx file.
    input: PathBuf,
    /// Output: a .onnx file, or a directory (model.onnx plus the input's config and tokenizer, each
    /// loaded and checked first: the tokenizer's ids must fit the config's vocab_size).
    #[arg(short, long)]
    output: PathBuf,
    /// Fold the repeated layers into a Scan loop (node count independent of the layer count).
    #[arg(long, conflicts_with = "unfold")]
    fold: bool,
    /// Inline Scan loops again (for engines where a loop is slow).
    #[arg(long)]
    unfold: bool,
    /// Fuse LayerNorm, GELU (both flavours), SkipLayerNorm and attention (ort only). `ort` may use
    /// every ONNX Runtime contrib op (com.microsoft Gelu/FastGelu, SkipLayerNormalization,
    /// Attention; ONNX Runtime only). `portable` writes standard ONNX only, which tract runs too:
    /// LayerNormalization, and the GELU as the Gelu op from opset 20 or, below (the export's
    /// default 17), written out in standard ops in the form ONNX Runtime fuses when it loads.
    #[arg(long, value_enum, default_value_t = FuseArg::None)]
    fuse: FuseArg,
    /// If the layers cannot be folded, write the graph unfolded instead of failing.
    #[arg(long)]
    best_effort: bool,
    /// Quantize the weights.
    #[arg(long, value_enum)]
    quantize: Option<QuantizeArg>,
    /// Compute precision: fp16 runs the graph in float16 (for GPUs; LayerNorm statistics and
    /// softmax stay float32; outputs stay float32). Not with --quantize.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Fp32)]
    precision: PrecisionArg,
    /// int8 operator form: portable (DynamicQuantizeLinear + MatMulInteger: ONNX Runtime and
    /// tract) or ort (com.microsoft.DynamicQuantizeMatMul: ONNX Runtime CPU only).
    #[arg(long, default_value = "portable")]
    int8_format: QuantFormat,
    /// int8 weight encoding: reduced (7 bits, [-63, 63]: accurate in ONNX Runtime on every CPU),
    /// full ([-127, 127]: one bit more, but ONNX Runtime's kernels saturate on x86-64 CPUs
    /// without VNNI, e.g. AVX2-only Xeons and AMD Zen 1–3), or uint8 (u8×u8 in ONNX Runtime: 8
    /// bits without saturation, slower). See docs/export-and-convert.md, "int8 weights and the CPU".
    #[arg(long, default_value = "reduced")]
    int8_weights: Int8Weights,
    /// Keep the word-embedding table in float32 (by default it is int8 too).
    #[arg(long)]
    keep_embeddings_fp32: bool,
    /// Keep in float32 the nodes or weights whose name contains this (repeatable).
    #[arg(long)]
    keep: Vec<String>,
    /// Compare the output with the input on sample inputs (and on --text) in the --engines.
    #[arg(long)]
    verify: bool,
    /// Engines for --verify (the source always runs in ONNX Runtime).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [EngineArg::Onnxruntime, EngineArg::Tract])]
    engines: Vec<EngineArg>,
    /// Max-abs tolerance of --verify for lossless passes (not applied to int8 or fp16 output).
    #[arg(long, default_value_t = 1e-4)]
    tolerance: f64,
    /// Real text for --verify (one sentence per line), tokenized with the input's tokenizer.json.
    #[arg(long)]
    text: Option<PathBuf>,
    /// Sentences of --text to use.
    #[arg(long, default_value_t = 256)]
    sentences: usize,
    /// Measure the drift against this model instead of the input (e.g. the float32 export, when
    /// the input is already quantized by another tool).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// libonnxruntime.so [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long)]
    ort_library: Option<PathBuf>,
}

struct Paths {
    input_model: PathBuf,
    input_dir: Option<PathBuf>,
    output_model: PathBuf,
    output_dir: Option<PathBuf>,
    report: PathBuf,
}

fn paths(cli: &Cli) -> Result<Paths> {
    let (input_model, input_dir) = if cli.input.is_dir() {
        (cli.input.join(MODEL_FILE), Some(cli.input.clone()))
    } else {
        (cli.input.clone(), None)
    };
    if !input_model.exists() {
        bail!(
            "{}: not found (expected a .onnx file or a directory holding {MODEL_FILE})",
            input_model.display()
        );
    }
    let is_file = cli.output.extension().is_some_and(|e| e == "onnx");
    let (output_model, output_dir, report) = if is_file {
        let report = cli.output.with_extension("report.json");
        (cli.output.clone(), None, report)
    } else {
        (
            cli.output.join(MODEL_FILE),
            Some(cli.output.clone()),
            cli.output.join("convert-report.json"),
        )
    };
    if output_model.canonicalize().ok() == input_model.canonicalize().ok() && output_model.exists()
    {
        bail!(
            "--output would overwrite the input model {}",
            input_model.display()
        );
    }
    Ok(Paths {
        input_model,
        input_dir,
        output_model,
        output_dir,
        report,
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let paths = paths(&cli)?;
    let options = convert_options(&cli);
    // What an output directory gets beside the model is checked before anything is written.
    let companions = match (&paths.input_dir, &paths.output_dir) {
        (Some(input_dir), Some(_)) => checked_companions(input_dir)?,
        _ => Vec::new(),
    };

    let mut model = proto::read_model(&paths.input_model)
        .with_context(|| format!("reading {}", paths.input_model.display()))?;
    let source_stats = ModelStats::of(&model, model_file_bytes(&paths.input_model));
    let sizes = InputSizes::of(&model, paths.input_dir.as_deref());
    let bar = spinner(&format!("converting {}", paths.input_model.display()));
    let log = convert::convert(&mut model, &options);
    bar.finish_and_clear();
    let log = log.with_context(|| format!("converting {}", paths.input_model.display()))?;
    for line in &log {
        println!("{:>9}: {}", line.pass, line.summary);
    }

    if let Some(dir) = &paths.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(input_dir) = &paths.input_dir {
            for file in &companions {
                let from = input_dir.join(file);
                albert_core::write_atomic(&dir.join(file), &std::fs::read(&from)?)
                    .with_context(|| format!("copying {}", from.display()))?;
            }
        }
    }
    let stats_model = model.clone();
    let written = proto::write_model(&paths.output_model, model, EXTERNAL_DATA_THRESHOLD)?;
    let out_stats = ModelStats::of(&stats_model, written);

    println!("{}", size_table(&source_stats, &out_stats));
    println!("wrote {}", paths.output_model.display());

    // `--fuse ort` and `--int8-format ort` write ONNX Runtime contrib ops tract does not run.
    let ort_only = options.fuse == Some(FuseFlavour::Ort)
        || options
            .quantize
            .as_ref()
            .is_some_and(|q| q.format == QuantFormat::Ort);
    let mut drift = DriftReport::default();
    if cli.verify {
        let text = match (
            &cli.text,
            paths.input_dir.as_ref().map(|d| d.join(TOKENIZER_FILE)),
        ) {
            (Some(text), Some(tokenizer)) if tokenizer.exists() => Some(TextSample::load(
                &tokenizer,
                text,
                cli.sentences,
                sizes.max_length,
            )?),
            (Some(_), _) => {
                bail!("--text needs the input to be a model directory with {TOKENIZER_FILE}")
            }
            _ => None,
        };
        let engines: Vec<Engine> = cli
            .engines
            .iter()
            .map(|e| match e {
                EngineArg::Onnxruntime => Engine::OnnxRuntime,
                EngineArg::Tract => Engine::Tract,
            })
            .collect();
        let bar = spinner("comparing the converted model with the source");
        let reference_model = cli.reference.as_ref().unwrap_or(&paths.input_model);
        drift = conversion::check(&DriftCheck {
            source: &paths.input_model,
            reference: reference_model,
            converted: &paths.output_model,
            engines: &engines,
            ort_library: cli.ort_library.as_deref(),
            ort_only,
            sizes,
            text: text.as_ref(),
        })
        .with_context(|| format!("loading {} in ONNX Runtime", reference_model.display()))?;
        bar.finish_and_clear();
        if let Some(q) = &options.quantize {
            println!("{}", int8_weights_line(q.weights));
        }
        print_drift(&drift);
    }

    let report_json = json!({
        "input": paths.input_model,
        "output": paths.output_model,
        "passes": log.iter().map(|l| json!({"pass": l.pass, "summary": l.summary})).collect::<Vec<_>>(),
        "source": source_stats.to_json(),
        "converted": out_stats.to_json(),
        "size_ratio": out_stats.file_bytes as f64 / source_stats.file_bytes.max(1) as f64,
        "int8_weights": options.quantize.as_ref().map(|q| q.weights.name()),
        "drift": drift.rows.iter().map(DriftRow::to_json).collect::<Vec<_>>(),
        "text": drift.text.iter().map(TextDrift::to_json).collect::<Vec<_>>(),
        "engines_skipped": drift
            .skipped
            .iter()
            .map(|(e, m)| json!({"engine": e.name(), "reason": m}))
            .collect::<Vec<_>>(),
        "engine_errors": drift.errors.iter().map(|(e, m)| json!({"engine": e.name(), "error": m})).collect::<Vec<_>>(),
    });
    albert_core::write_atomic(
        &paths.report,
        serde_json::to_string_pretty(&report_json)?.as_bytes(),
    )
    .with_context(|| format!("writing {}", paths.report.display()))?;
    println!("report: {}", paths.report.display());

    if cli.verify {
        let lossy = options.quantize.is_some() || options.float16;
        match drift.verdict(cli.tolerance, lossy, cli.reference.is_some())? {
            Verdict::Lossy => {
                println!("lossy conversion: the drift above is reported, not held to --tolerance")
            }
            Verdict::Verified { worst } => println!(
                "verified: worst max-abs difference {worst:.2e} ≤ {:e}",
                cli.tolerance
            ),
            Verdict::AgainstReference => {}
        }
    }
    Ok(())
}

/// The passes the flags ask for.
fn convert_options(cli: &Cli) -> ConvertOptions {
    ConvertOptions {
        loops: if cli.fold {
            LoopMode::Fold
        } else if cli.unfold {
            LoopMode::Unfold
        } else {
            LoopMode::Keep
        },
        fuse: match cli.fuse {
            FuseArg::None => None,
            FuseArg::Ort => Some(FuseFlavour::Ort),
            FuseArg::Portable => Some(FuseFlavour::Portable),
        },
        best_effort: cli.best_effort,
        float16: cli.precision == PrecisionArg::Fp16,
        quantize: cli.quantize.map(|QuantizeArg::Int8| QuantizeOptions {
            format: cli.int8_format,
            weights: cli.int8_weights,
            embeddings: !cli.keep_embeddings_fp32,
            keep: cli.keep.clone(),
        }),
    }
}

/// What the int8 weight encoding means for the drift printed next, on this machine.
fn int8_weights_line(weights: Int8Weights) -> String {
    let cpu = albert_core::cpu::cpu();
    let here = if weights.saturates_without_vnni() && cpu.u8s8_saturates() {
        "ONNX Runtime's u8×s8 kernels saturate on them on this CPU (no VNNI): expect lost accuracy"
    } else if weights.saturates_without_vnni() {
        "accurate on this CPU (VNNI); ONNX Runtime on x86-64 CPUs without VNNI would saturate"
    } else {
        "no ONNX Runtime kernel saturates on them"
    };
    format!("int8 weights: {}; {here}; {cpu}", weights.name())
}

/// Size and node counts of the source and the converted model, side by side.
fn size_table(source_stats: &ModelStats, out_stats: &ModelStats) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["", "source", "converted", "ratio"]);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    let ratio = |a: f64, b: f64| right(format!("{:.3}", b / a.max(1.0)));
    table.add_row([
        Cell::new("file size"),
        right(human_bytes(source_stats.file_bytes)),
        right(human_bytes(out_stats.file_bytes)),
        ratio(source_stats.file_bytes as f64, out_stats.file_bytes as f64),
    ]);
    table.add_row([
        Cell::new("initializer bytes"),
        right(source_stats.initializer_bytes.to_string()),
        right(out_stats.initializer_bytes.to_string()),
        ratio(
            source_stats.initializer_bytes as f64,
            out_stats.initializer_bytes as f64,
        ),
    ]);
    table.add_row([
        Cell::new("nodes (main graph)"),
        right(source_stats.nodes.to_string()),
        right(out_stats.nodes.to_string()),
        ratio(source_stats.nodes as f64, out_stats.nodes as f64),
    ]);
    table.add_row([
        Cell::new("nodes (with loop bodies)"),
        right(source_stats.nodes_with_subgraphs.to_string()),
        right(out_stats.nodes_with_subgraphs.to_string()),
        ratio(
            source_stats.nodes_with_subgraphs as f64,
            out_stats.nodes_with_subgraphs as f64,
        ),
    ]);
    table
}

/// The drift rows, the text agreement and the engines that failed or were skipped.
fn print_drift(drift: &DriftReport) {
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["engine", "inputs", "output", "max |Δ|", "cosine"]);
    for r in &drift.rows {
        table.add_row([
            Cell::new(r.engine),
            Cell::new(&r.inputs),
            Cell::new(&r.output),
            right(format!("{:.2e}", r.drift.max_abs)),
            right(format!("{:.6}", r.drift.cosine)),
        ]);
    }
    println!("{table}");
    for t in &drift.text {
        println!(
            "{}: {} sentences of real text: embedding cosine mean {} min {}; MLM top-1 agreement {} over {} masked positions",
            t.engine,
            t.sentences,
            t.embedding_cosine_mean
                .map_or("-".into(), |v| format!("{v:.5}")),
            t.embedding_cosine_min
                .map_or("-".into(), |v| format!("{v:.5}")),
            t.mlm_top1_agreement
                .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
            t.masked_positions
        );
    }
    for (engine, error) in &drift.errors {
        println!("{}: cannot run the converted model: {error}", engine.name());
    }
    for (engine, reason) in &drift.skipped {
        println!("{}: skipped: {reason}", engine.name());
    }
}
