//! `albert-convert`: any ALBERT ONNX model (ours or a third party's) → a smaller or faster one:
//! dedupe (always), fold the shared layer into a `Scan` loop or unfold it, int8 quantization; with
//! a report of size and of the drift against the source, printed and written as JSON.

use std::path::PathBuf;

use albert_onnx::convert::report::ModelStats;
use albert_onnx::convert::{
    ConvertOptions, FuseFlavour, Int8Weights, LoopMode, QuantFormat, QuantizeOptions,
};
use albert_verify::conversion::{DriftReport, Verdict};
use albert_verify::convert_job::{ConvertJob, DriftOptions};
use albert_verify::display::{human_bytes, spinner};
use albert_verify::verify::Engine;
use anyhow::Result;
use clap::{Parser, ValueEnum};
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

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
    #[arg(long, default_value_t = DriftOptions::default().tolerance)]
    tolerance: f64,
    /// Real text for --verify (one sentence per line), tokenized with the input's tokenizer.json.
    #[arg(long)]
    text: Option<PathBuf>,
    /// Sentences of --text to use.
    #[arg(long, default_value_t = DriftOptions::default().sentences)]
    sentences: usize,
    /// Measure the drift against this model instead of the input (e.g. the float32 export, when
    /// the input is already quantized by another tool).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// libonnxruntime.so [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long)]
    ort_library: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let job = ConvertJob::new(&cli.input, &cli.output, convert_options(&cli))?;
    let drift_options = cli.verify.then(|| drift_options(&cli));

    let bar = spinner(&format!("converting {}", job.paths.input_model.display()));
    let converted = job.convert();
    bar.finish_and_clear();
    let converted = converted?;
    for line in &converted.log {
        println!("{:>9}: {}", line.pass, line.summary);
    }

    let output = job.write(&converted)?;
    println!("{}", size_table(&converted.source, &output));
    println!("wrote {}", job.paths.output_model.display());

    let mut drift = DriftReport::default();
    if let Some(options) = &drift_options {
        let bar = spinner("comparing the converted model with the source");
        drift = job.check_drift(&converted, options)?;
        bar.finish_and_clear();
        if let Some(q) = &job.options.quantize {
            println!("{}", int8_weights_line(q.weights));
        }
        print_drift(&drift);
    }
    let verdict = drift_options
        .as_ref()
        .map(|options| job.verdict(&drift, options));

    job.write_report(&job.report(converted, output, drift))?;
    println!("report: {}", job.paths.report.display());

    match verdict.transpose()? {
        Some(Verdict::Lossy) => {
            println!("lossy conversion: the drift above is reported, not held to --tolerance")
        }
        Some(Verdict::Verified { worst }) => println!(
            "verified: worst max-abs difference {worst:.2e} ≤ {:e}",
            cli.tolerance
        ),
        Some(Verdict::AgainstReference) | None => {}
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

/// What `--verify` compares, and against what.
fn drift_options(cli: &Cli) -> DriftOptions {
    DriftOptions {
        engines: cli
            .engines
            .iter()
            .map(|e| match e {
                EngineArg::Onnxruntime => Engine::OnnxRuntime,
                EngineArg::Tract => Engine::Tract,
            })
            .collect(),
        tolerance: cli.tolerance,
        text: cli.text.clone(),
        sentences: cli.sentences,
        reference: cli.reference.clone(),
        ort_library: cli.ort_library.clone(),
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
    for e in &drift.errors {
        println!(
            "{}: cannot run the converted model: {}",
            e.engine.name(),
            e.error
        );
    }
    for s in &drift.skipped {
        println!("{}: skipped: {}", s.engine.name(), s.reason);
    }
}
