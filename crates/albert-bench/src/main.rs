//! `albert-bench`: an ALBERT export (or checkpoint) across engines and providers, variants made
//! with the converter, batch sizes, sequence lengths and threads. Per cell: load time, latency
//! percentiles over a time budget after warm-up, throughput, peak memory, achieved GFLOP/s (from
//! the config's FLOP count) against the machine's measured GEMM rate, and drift against float32.
//! Providers that cannot run here are listed as skipped with the reason.

mod cell;
mod compare;
mod flops;
mod inputs;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use albert_core::AlbertConfig;
use albert_core::checkpoint::{CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use albert_core::compare::Drift;
use albert_onnx::convert::{self, ConvertOptions, FuseFlavour, LoopMode, QuantizeOptions};
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_onnx::proto::{self, EXTERNAL_DATA_THRESHOLD};
use albert_runtime::{
    Backend, BackendChoice, ModelInputs, ModelOutputs, OrtOptions, Provider, TractOptions,
};
use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderArg {
    Tract,
    OrtCpu,
    /// ONNX Runtime's CPU provider without flushing subnormal floats to zero (ONNX Runtime's own
    /// default; `ort-cpu` flushes them, as the runtime does by default): the two side by side
    /// show what the flush is worth on a model.
    OrtCpuKeepDenormals,
    OrtCuda,
    OrtTensorrt,
}

impl ProviderArg {
    pub fn name(self) -> &'static str {
        match self {
            ProviderArg::Tract => "tract",
            ProviderArg::OrtCpu => "ort-cpu",
            ProviderArg::OrtCpuKeepDenormals => "ort-cpu-keep-denormals",
            ProviderArg::OrtCuda => "ort-cuda",
            ProviderArg::OrtTensorrt => "ort-tensorrt",
        }
    }

    /// ONNX Runtime's CPU provider, whether it flushes subnormals or not.
    fn ort_cpu(self) -> bool {
        matches!(self, ProviderArg::OrtCpu | ProviderArg::OrtCpuKeepDenormals)
    }

    fn gpu(self) -> bool {
        matches!(self, ProviderArg::OrtCuda | ProviderArg::OrtTensorrt)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantArg {
    /// The export as it is.
    Fp32,
    /// `--fold`: the shared layer as a Scan loop.
    Folded,
    /// `--fuse portable` (LayerNormalization, Gelu/FastGelu).
    Fused,
    /// `--quantize int8` (portable format).
    Int8,
    /// `--precision fp16`.
    Fp16,
}

impl VariantArg {
    pub fn name(self) -> &'static str {
        match self {
            VariantArg::Fp32 => "fp32",
            VariantArg::Folded => "folded",
            VariantArg::Fused => "fused",
            VariantArg::Int8 => "int8",
            VariantArg::Fp16 => "fp16",
        }
    }

    fn options(self) -> ConvertOptions {
        let mut options = ConvertOptions::default();
        match self {
            VariantArg::Fp32 => {}
            VariantArg::Folded => options.loops = LoopMode::Fold,
            VariantArg::Fused => options.fuse = Some(FuseFlavour::Portable),
            VariantArg::Int8 => options.quantize = Some(QuantizeOptions::default()),
            VariantArg::Fp16 => options.float16 = true,
        }
        options
    }
}

#[derive(Parser)]
#[command(
    name = "albert-bench",
    version,
    about = "Benchmark an ALBERT model across engines, providers, variants, batch sizes, lengths and threads"
)]
struct Cli {
    /// An export directory (model.onnx, config.json, tokenizer.json) or a checkpoint directory
    /// (model.safetensors: exported first).
    model: PathBuf,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ProviderArg::Tract, ProviderArg::OrtCpu, ProviderArg::OrtCuda, ProviderArg::OrtTensorrt])]
    providers: Vec<ProviderArg>,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [VariantArg::Fp32, VariantArg::Folded, VariantArg::Int8])]
    variants: Vec<VariantArg>,
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    batch: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_values_t = [128usize])]
    seq: Vec<usize>,
    /// ONNX Runtime intra-op threads [default: the number of cores]; tract is single-threaded.
    #[arg(long, value_delimiter = ',')]
    threads: Option<Vec<usize>>,
    /// Timed seconds per cell (after warm-up); at least --min-runs runs.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Time the cells of each batch size and length in turns (quarter-second slices, round after
    /// round) instead of one after another, so that a shared machine's drift falls on all of
    /// them alike; their peak memory is then not measured.
    #[arg(long)]
    interleave: bool,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[arg(long, default_value_t = 5)]
    min_runs: usize,
    /// Real text for the inputs (one sentence per line) [default: the committed corpus sample].
    #[arg(long)]
    text: Option<PathBuf>,
    /// Write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write report.md, results.json and SVG charts into this directory (also where variants
    /// and exports are made) [default: bench-report].
    #[arg(long, default_value = "bench-report")]
    report: PathBuf,
    /// libonnxruntime.so [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long)]
    ort_library: Option<PathBuf>,
    /// Also measure external anchors in this run (tools/bench_anchors.py in the project venv:
    /// HF PyTorch eager, ONNX Runtime Python on torch.onnx.export output, with its transformer
    /// optimizer and with its int8 quantize_dynamic) and report our best variant's ratio to each.
    #[arg(long)]
    compare: bool,
    /// Python for --compare [default: the first .venv/bin/python above the current directory, else python3].
    #[arg(long)]
    python: Option<PathBuf>,
    /// CUDA device for ort-cuda and ort-tensorrt.
    #[arg(long, default_value_t = 0)]
    device: i32,
}

/// One row of the results.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub provider: &'static str,
    pub variant: &'static str,
    pub batch: usize,
    pub seq: usize,
    pub threads: usize,
    pub status: String,
    pub load_seconds: Option<f64>,
    #[serde(flatten)]
    pub timing: Option<cell::Timing>,
    pub sequences_per_second: Option<f64>,
    pub tokens_per_second: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub gflops: Option<f64>,
    /// Achieved GFLOP/s over the machine's measured single-GEMM rate at the same threads.
    pub gemm_efficiency: Option<f64>,
    /// Infinite (null in JSON) when the outputs are not comparable: see `drift_fault`.
    pub max_abs_vs_fp32: Option<f64>,
    pub cosine_vs_fp32: Option<f64>,
    /// Why the outputs are not comparable with the float32 reference's (NaN, an infinity,
    /// another shape).
    pub drift_fault: Option<String>,
    pub model_bytes: Option<u64>,
}

impl Row {
    fn skipped(
        provider: ProviderArg,
        variant: VariantArg,
        batch: usize,
        seq: usize,
        threads: usize,
        reason: String,
    ) -> Row {
        Row {
            provider: provider.name(),
            variant: variant.name(),
            batch,
            seq,
            threads,
            status: format!("skipped: {reason}"),
            load_seconds: None,
            timing: None,
            sequences_per_second: None,
            tokens_per_second: None,
            peak_rss_mb: None,
            gflops: None,
            gemm_efficiency: None,
            max_abs_vs_fp32: None,
            cosine_vs_fp32: None,
            drift_fault: None,
            model_bytes: None,
        }
    }
}

/// The committed held-out corpus sample, built into the binary: real sentences for the inputs
/// wherever the binary runs (no path of the build machine).
const HELDOUT_SAMPLE: &str = include_str!("../../../tests/fixtures/corpus/heldout-sample.txt");

/// The export directory to benchmark: the input, or its export when it is a checkpoint.
fn export_of(model: &Path, work: &Path) -> Result<PathBuf> {
    if model.join(MODEL_FILE).exists() {
        return Ok(model.to_path_buf());
    }
    if !model.join(WEIGHTS_FILE).exists() {
        bail!(
            "{}: neither an export ({MODEL_FILE}) nor a checkpoint ({WEIGHTS_FILE})",
            model.display()
        );
    }
    let out = work.join("export");
    eprintln!(
        "exporting the checkpoint {} to {}",
        model.display(),
        out.display()
    );
    export_dir(model, &out, &ExportOptions::default())
        .with_context(|| format!("exporting {}", model.display()))?;
    Ok(out)
}

fn make_variant(source: &Path, variant: VariantArg, work: &Path) -> Result<PathBuf> {
    if variant == VariantArg::Fp32 {
        return Ok(source.join(MODEL_FILE));
    }
    let out = work.join("variants").join(variant.name());
    std::fs::create_dir_all(&out)?;
    let mut model = proto::read_model(&source.join(MODEL_FILE))?;
    convert::convert(&mut model, &variant.options())
        .with_context(|| format!("making the {} variant", variant.name()))?;
    let path = out.join(MODEL_FILE);
    proto::write_model(&path, model, EXTERNAL_DATA_THRESHOLD)?;
    Ok(path)
}

fn load(
    provider: ProviderArg,
    model: &Path,
    threads: usize,
    cli: &Cli,
) -> Result<Box<dyn Backend>> {
    let options = |p: Provider| OrtOptions {
        library: cli.ort_library.clone(),
        providers: vec![p],
        intra_threads: threads,
        ..OrtOptions::default()
    };
    let ort = |p: Provider| BackendChoice::Ort(options(p));
    let choice = match provider {
        ProviderArg::Tract => BackendChoice::Tract(TractOptions::default()),
        ProviderArg::OrtCpu => ort(Provider::Cpu),
        ProviderArg::OrtCpuKeepDenormals => BackendChoice::Ort(OrtOptions {
            flush_denormals: false,
            ..options(Provider::Cpu)
        }),
        ProviderArg::OrtCuda => ort(Provider::Cuda { device: cli.device }),
        ProviderArg::OrtTensorrt => ort(Provider::TensorRt {
            device: cli.device,
            fp16: false,
            engine_cache: Some(cli.report.join("tensorrt-cache")),
        }),
    };
    Ok(albert_runtime::backend::load(model, &choice)?)
}

/// The machine's fp32 GEMM rate through ONNX Runtime's CPU provider at `threads`: one
/// 1024×1024×1024 MatMul, timed for a second.
fn gemm_gflops(work: &Path, threads: usize, cli: &Cli) -> Result<f64> {
    use albert_onnx::proto::pb::tensor_proto::DataType;
    use albert_onnx::proto::{Dim, tensor_f32, value_info};
    let n = 1024usize;
    let path = work.join("gemm.onnx");
    if !path.exists() {
        let b: Vec<f32> = (0..n * n)
            .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
            .collect();
        let graph = albert_onnx::proto::pb::GraphProto {
            name: "gemm".into(),
            node: vec![albert_onnx::graph::node(
                "MatMul",
                "MatMul".into(),
                &["x", "b"],
                &["y"],
                vec![],
            )],
            initializer: vec![tensor_f32("b", &[n, n], &b)],
            input: vec![value_info(
                "x",
                DataType::Float,
                &[Dim::Fixed(n), Dim::Fixed(n)],
            )],
            output: vec![value_info(
                "y",
                DataType::Float,
                &[Dim::Fixed(n), Dim::Fixed(n)],
            )],
            ..Default::default()
        };
        let model = albert_onnx::proto::pb::ModelProto {
            ir_version: 8,
            opset_import: vec![albert_onnx::proto::pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(graph),
            ..Default::default()
        };
        proto::write_model(&path, model, EXTERNAL_DATA_THRESHOLD)?;
    }
    let x = ndarray::ArrayD::from_shape_fn(vec![n, n], |i| ((i[0] + 3 * i[1]) % 13) as f32 / 13.0);
    let options = OrtOptions {
        library: cli.ort_library.clone(),
        intra_threads: threads,
        ..OrtOptions::default()
    };
    let seconds = albert_runtime::backend::ort::seconds_per_run(&path, &options, x, 1.0)?;
    Ok(2.0 * (n as f64).powi(3) / seconds / 1e9)
}

/// What the export computes: its `albert.task` metadata (our exports), else read from its outputs
/// (`logits` over the vocabulary per token is masked-LM, per token otherwise token
/// classification, per sequence sequence classification).
fn export_task(model: &proto::pb::ModelProto, config: &AlbertConfig) -> Result<Task> {
    if let Some(task) = proto::metadata_value(model, "albert.task") {
        return task
            .parse()
            .map_err(|e| anyhow::anyhow!("the export's albert.task metadata: {e}"));
    }
    let outputs: Vec<&proto::pb::ValueInfoProto> =
        model.graph.iter().flat_map(|g| g.output.iter()).collect();
    let has = |name: &str| outputs.iter().any(|o| o.name == name);
    Ok(if has("prediction_logits") {
        Task::Pretraining
    } else if has("start_logits") {
        Task::QuestionAnswering
    } else if let Some(logits) = outputs.iter().find(|o| o.name == "logits") {
        let dims = proto::dims(logits);
        match (dims.len(), dims.last().copied().flatten()) {
            (3, Some(v)) if v == config.vocab_size as i64 => Task::MaskedLm,
            (3, _) => Task::TokenClassification,
            _ => Task::SequenceClassification,
        }
    } else {
        Task::Base
    })
}

/// Drift of the first output against the float32 reference (NaN, an infinity or another shape
/// is an `albert_core::compare::Fault`: infinite max-abs, and the row says why).
fn drift(reference: &ModelOutputs, got: &ModelOutputs) -> Option<Drift> {
    let (name, want) = reference.iter().next()?;
    Some(albert_core::compare::drift(
        want.view().ok()?,
        got.get(name)?.view().ok()?,
    ))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if cli.compare {
        compare::check_python(&cli)?;
    }
    std::fs::create_dir_all(&cli.report)
        .with_context(|| format!("creating {}", cli.report.display()))?;
    let export = export_of(&cli.model, &cli.report)?;
    let config = AlbertConfig::from_file(&export.join(CONFIG_FILE))?;
    let tokenizer_path = export.join(TOKENIZER_FILE);
    if !tokenizer_path.exists() {
        bail!(
            "{}: the benchmark feeds real text and needs the model's tokenizer",
            tokenizer_path.display()
        );
    }
    let tokenizer = albert_core::tokenizer::load(&tokenizer_path)?;
    let special = |t: &str| tokenizer.token_to_id(t).map(i64::from);
    let (cls, sep) = (
        special(albert_core::tokenizer::CLS).unwrap_or(2),
        special(albert_core::tokenizer::SEP).unwrap_or(3),
    );
    let stream = match &cli.text {
        Some(path) => {
            let content = std::fs::read_to_string(path)
                .with_context(|| format!("reading --text {}", path.display()))?;
            inputs::token_stream(&tokenizer, &content, &format!("--text {}", path.display()))?
        }
        None => inputs::token_stream(&tokenizer, HELDOUT_SAMPLE, "the held-out corpus sample")?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cli.threads.clone().unwrap_or_else(|| vec![cores]);

    // Variants, made once with the converter.
    let mut variants: Vec<(VariantArg, Result<PathBuf, String>)> = Vec::new();
    for &v in &cli.variants {
        variants.push((
            v,
            make_variant(&export, v, &cli.report).map_err(|e| format!("{e:#}")),
        ));
    }
    let task = export_task(&proto::read_model(&export.join(MODEL_FILE))?, &config)?;
    let head = match task {
        Task::MaskedLm | Task::Pretraining => flops::Head::MaskedLm,
        _ => flops::Head::Base,
    };

    // The machine's GEMM rate per thread count (ONNX Runtime CPU).
    let mut gemm: Vec<(usize, f64)> = Vec::new();
    if cli.providers.iter().any(|p| p.ort_cpu()) {
        for &t in &threads {
            match gemm_gflops(&cli.report, t, &cli) {
                Ok(rate) => gemm.push((t, rate)),
                Err(e) => eprintln!("GEMM calibration at {t} threads failed: {e:#}"),
            }
        }
    }

    // The cells in the order of the rows: provider, variant, threads, batch, length.
    let mut keys: Vec<CellKey> = Vec::new();
    for &provider in &cli.providers {
        let thread_counts: Vec<usize> = if provider == ProviderArg::Tract {
            vec![1]
        } else {
            threads.clone()
        };
        for (variant, _) in &variants {
            for &threads in &thread_counts {
                for &batch in &cli.batch {
                    for &seq in &cli.seq {
                        keys.push(CellKey {
                            provider,
                            variant: *variant,
                            threads,
                            batch,
                            seq,
                        });
                    }
                }
            }
        }
    }
    let bar = ProgressBar::new(keys.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} cells [{elapsed} < {eta}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // float32 reference outputs per shape (the fp32 export on ORT CPU, else tract).
    let mut references: Vec<((usize, usize), ModelOutputs)> = Vec::new();
    let reference_backend = load(ProviderArg::OrtCpu, &export.join(MODEL_FILE), cores, &cli)
        .or_else(|_| load(ProviderArg::Tract, &export.join(MODEL_FILE), 1, &cli))
        .context("loading the float32 export for the drift reference")?;
    for &batch in &cli.batch {
        for &seq in &cli.seq {
            if seq > config.max_position_embeddings {
                bail!(
                    "--seq {seq} exceeds the model's max_position_embeddings {}",
                    config.max_position_embeddings
                );
            }
            let feed = inputs::packed(&stream, cls, sep, batch, seq);
            references.push(((batch, seq), reference_backend.run(&feed)?));
        }
    }
    drop(reference_backend);

    let matrix = Matrix {
        cli: &cli,
        variants: &variants,
        stream: &stream,
        cls_sep: (cls, sep),
        references: &references,
        config: &config,
        head,
        gemm: &gemm,
    };
    let rows: Vec<Row> = if cli.interleave {
        matrix.run_interleaved(&keys, &bar)
    } else {
        keys.iter()
            .map(|&key| {
                bar.set_message(key.label());
                let row = matrix.run_alone(key);
                bar.inc(1);
                row
            })
            .collect()
    };
    bar.finish_and_clear();

    println!("{}", report::table(&rows));
    for line in report::skipped_summary(&rows) {
        println!("{line}");
    }
    if !gemm.is_empty() {
        for (t, rate) in &gemm {
            println!(
                "machine GEMM rate (ONNX Runtime CPU, 1024³ fp32 MatMul, {t} threads): {rate:.1} GFLOP/s"
            );
        }
    }
    let comparisons = if cli.compare {
        let ours: Vec<(&str, PathBuf)> = variants
            .iter()
            .filter_map(|(v, path)| Some((v.name(), path.as_ref().ok()?.clone())))
            .collect();
        let anchors = compare::run_anchors(&cli, &export.join(CONFIG_FILE), task, &ours, &threads)?;
        let ratios = compare::ratios(&rows, &anchors);
        let graph_ratios = compare::graph_ratios(&anchors);
        println!("{}", compare::table(&ratios));
        println!(
            "our graphs and torch.onnx.export's, both in ONNX Runtime Python, interleaved in one process:"
        );
        println!("{}", compare::table(&graph_ratios));
        Some((anchors, ratios, graph_ratios))
    } else {
        None
    };
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "anchors": comparisons.as_ref().map(|c| &c.0),
        "ratios": comparisons.as_ref().map(|c| &c.1),
        "graph_ratios": comparisons.as_ref().map(|c| &c.2),
        "task": task.name(),
        "interleaved": cli.interleave,
        "model": export,
        "config": {"hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers, "vocab_size": config.vocab_size},
        "gemm_gflops": gemm.iter().map(|(t, r)| serde_json::json!({"threads": t, "gflops": r})).collect::<Vec<_>>(),
        "rows": rows,
    }))?;
    if let Some(path) = &cli.json {
        albert_core::write_atomic(path, json.as_bytes())?;
    }
    albert_core::write_atomic(&cli.report.join("results.json"), json.as_bytes())?;
    report::write(
        &cli.report,
        &rows,
        &gemm,
        comparisons
            .as_ref()
            .map(|c| (c.1.as_slice(), c.2.as_slice())),
        cli.interleave,
    )?;
    println!("report: {}", cli.report.join("report.md").display());
    Ok(())
}

/// Where a cell sits in the matrix.
#[derive(Debug, Clone, Copy)]
struct CellKey {
    provider: ProviderArg,
    variant: VariantArg,
    threads: usize,
    batch: usize,
    seq: usize,
}

impl CellKey {
    fn label(self) -> String {
        format!(
            "{} {} b{} s{} {}t",
            self.provider.name(),
            self.variant.name(),
            self.batch,
            self.seq,
            self.threads
        )
    }
}

/// A cell ready to be timed: its backend loaded, its inputs packed.
struct Prepared {
    backend: Box<dyn Backend>,
    load_seconds: f64,
    feed: ModelInputs,
    path: PathBuf,
}

/// What every cell of one benchmark run shares.
struct Matrix<'a> {
    cli: &'a Cli,
    variants: &'a [(VariantArg, Result<PathBuf, String>)],
    stream: &'a [i64],
    cls_sep: (i64, i64),
    references: &'a [((usize, usize), ModelOutputs)],
    config: &'a AlbertConfig,
    head: flops::Head,
    gemm: &'a [(usize, f64)],
}

impl Matrix<'_> {
    fn skipped(&self, key: CellKey, reason: String) -> Row {
        Row::skipped(
            key.provider,
            key.variant,
            key.batch,
            key.seq,
            key.threads,
            reason,
        )
    }

    /// Loads the cell's variant on its provider (timed), or says why it cannot run.
    fn prepare(&self, key: CellKey) -> Result<Prepared, String> {
        let path = match self.variants.iter().find(|(v, _)| *v == key.variant) {
            Some((_, Ok(path))) => path.clone(),
            Some((_, Err(e))) => return Err(format!("the variant could not be made: {e}")),
            None => return Err("the variant was not made".into()),
        };
        if key.provider.gpu() && key.variant == VariantArg::Int8 {
            return Err("DynamicQuantizeLinear + MatMulInteger run on the CPU only".into());
        }
        let start = Instant::now();
        let backend =
            load(key.provider, &path, key.threads, self.cli).map_err(|e| format!("{e:#}"))?;
        let (cls, sep) = self.cls_sep;
        Ok(Prepared {
            backend,
            load_seconds: start.elapsed().as_secs_f64(),
            feed: inputs::packed(self.stream, cls, sep, key.batch, key.seq),
            path,
        })
    }

    /// The row of a timed cell: throughput, GFLOP/s, drift against the float32 reference.
    fn finish(
        &self,
        key: CellKey,
        cell: &Prepared,
        timing: cell::Timing,
        outputs: &ModelOutputs,
        peak_rss_mb: Option<f64>,
    ) -> Row {
        let seconds = timing.p50_ms / 1e3;
        let flops = flops::forward_flops(self.config, self.head, key.batch, key.seq);
        let gflops = flops / seconds / 1e9;
        let gemm_rate = self
            .gemm
            .iter()
            .find(|(t, _)| *t == key.threads)
            .map(|(_, r)| *r);
        let drift = self
            .references
            .iter()
            .find(|(shape, _)| *shape == (key.batch, key.seq))
            .and_then(|(_, reference)| drift(reference, outputs));
        Row {
            provider: key.provider.name(),
            variant: key.variant.name(),
            batch: key.batch,
            seq: key.seq,
            threads: key.threads,
            status: "ok".into(),
            load_seconds: Some(cell.load_seconds),
            sequences_per_second: Some(key.batch as f64 / seconds),
            tokens_per_second: Some((key.batch * key.seq) as f64 / seconds),
            peak_rss_mb,
            gflops: Some(gflops),
            gemm_efficiency: gemm_rate
                .filter(|_| key.provider.ort_cpu())
                .map(|r| gflops / r),
            max_abs_vs_fp32: drift.as_ref().map(|d| d.max_abs),
            cosine_vs_fp32: drift.as_ref().map(|d| d.cosine),
            drift_fault: drift.and_then(|d| d.fault).map(|f| f.to_string()),
            model_bytes: std::fs::metadata(&cell.path).ok().map(|m| m.len()),
            timing: Some(timing),
        }
    }

    /// One cell on its own: loaded, warmed up, timed for `--seconds`, with its peak memory (the
    /// process peak is reset before it loads).
    fn run_alone(&self, key: CellKey) -> Row {
        let reset = cell::reset_peak_rss();
        let prepared = match self.prepare(key) {
            Ok(p) => p,
            Err(reason) => return self.skipped(key, reason),
        };
        // One cell taking turns alone: a single turn of the whole budget (more while it has
        // fewer than --min-runs runs).
        let budget = Duration::from_secs_f64(self.cli.seconds);
        let cells = [(prepared.backend.as_ref(), &prepared.feed)];
        let result =
            cell::time_interleaved(&cells, self.cli.warmup, self.cli.min_runs, budget, budget)
                .pop()
                .unwrap_or_else(|| Err(anyhow::anyhow!("no timing")));
        match result {
            Ok((timing, outputs)) => {
                let rss = if reset { cell::peak_rss_mb() } else { None };
                self.finish(key, &prepared, timing, &outputs, rss)
            }
            Err(e) => self.skipped(key, format!("run failed: {e:#}")),
        }
    }

    /// `--interleave`: the cells of each batch size and length are loaded together and timed
    /// in turns (`cell::time_interleaved`), so that their ratios are not the drift between
    /// minutes. Peak memory is not measured then (all of a shape's cells are resident at once).
    /// Rows come back in the order of `keys`.
    fn run_interleaved(&self, keys: &[CellKey], bar: &ProgressBar) -> Vec<Row> {
        let mut rows: Vec<Option<Row>> = vec![None; keys.len()];
        let mut shapes: Vec<(usize, usize)> = Vec::new();
        for key in keys {
            if !shapes.contains(&(key.batch, key.seq)) {
                shapes.push((key.batch, key.seq));
            }
        }
        for (batch, seq) in shapes {
            let mut ready: Vec<(usize, Prepared)> = Vec::new();
            for (i, &key) in keys.iter().enumerate() {
                if (key.batch, key.seq) != (batch, seq) {
                    continue;
                }
                match self.prepare(key) {
                    Ok(p) => ready.push((i, p)),
                    Err(reason) => {
                        rows[i] = Some(self.skipped(key, reason));
                        bar.inc(1);
                    }
                }
            }
            bar.set_message(format!("b{batch} s{seq}: {} cells in turns", ready.len()));
            let cells: Vec<(&dyn Backend, &ModelInputs)> = ready
                .iter()
                .map(|(_, p)| (p.backend.as_ref(), &p.feed))
                .collect();
            let budget = Duration::from_secs_f64(self.cli.seconds);
            let results = cell::time_interleaved(
                &cells,
                self.cli.warmup,
                self.cli.min_runs,
                budget,
                budget.min(Duration::from_millis(250)),
            );
            for ((i, prepared), result) in ready.iter().zip(results) {
                rows[*i] = Some(match result {
                    Ok((timing, outputs)) => {
                        self.finish(keys[*i], prepared, timing, &outputs, None)
                    }
                    Err(e) => self.skipped(keys[*i], format!("run failed: {e:#}")),
                });
                bar.inc(1);
            }
        }
        rows.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use albert_onnx::proto::pb::tensor_proto::DataType;
    use albert_onnx::proto::{Dim, value_info};

    fn model(outputs: &[(&str, &[Dim])], task: Option<&str>) -> proto::pb::ModelProto {
        proto::pb::ModelProto {
            graph: Some(proto::pb::GraphProto {
                output: outputs
                    .iter()
                    .map(|(name, dims)| value_info(name, DataType::Float, dims))
                    .collect(),
                ..Default::default()
            }),
            metadata_props: task.map_or_else(Vec::new, |t| {
                proto::metadata(&[("albert.task", t.to_string())])
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_task_comes_from_the_metadata_else_from_the_outputs() {
        let config = albert_core::Preset::Base.config();
        let (b, s) = (Dim::Symbol("batch"), Dim::Symbol("seq"));
        let task = |outputs: &[(&str, &[Dim])], meta| export_task(&model(outputs, meta), &config);
        let per_token_vocab = [b, s, Dim::Fixed(config.vocab_size)];
        assert_eq!(
            task(&[("x", &[])], Some("masked-lm")).ok(),
            Some(Task::MaskedLm)
        );
        assert!(task(&[], Some("summarize")).is_err());
        assert_eq!(
            task(&[("logits", &per_token_vocab)], None).ok(),
            Some(Task::MaskedLm)
        );
        let per_token_labels = [b, s, Dim::Fixed(9)];
        assert_eq!(
            task(&[("logits", &per_token_labels)], None).ok(),
            Some(Task::TokenClassification)
        );
        assert_eq!(
            task(&[("logits", &[b, Dim::Fixed(2)])], None).ok(),
            Some(Task::SequenceClassification)
        );
        let pair = [
            ("prediction_logits", &per_token_vocab[..]),
            ("sop_logits", &[b, Dim::Fixed(2)]),
        ];
        assert_eq!(task(&pair, None).ok(), Some(Task::Pretraining));
        assert_eq!(
            task(&[("start_logits", &[b, s]), ("end_logits", &[b, s])], None).ok(),
            Some(Task::QuestionAnswering)
        );
        assert_eq!(
            task(&[("last_hidden_state", &[b, s, Dim::Fixed(768)])], None).ok(),
            Some(Task::Base)
        );
    }

    /// A NaN output is never close to the float32 reference: the row's drift fails both the
    /// lossless bound and the int8 cosine bound that `tests/cli.rs` holds rows to.
    #[test]
    fn a_nan_output_drifts() {
        let outputs = |v: f32| -> ModelOutputs {
            let array = ndarray::ArrayD::from_elem(vec![2, 3], v);
            [("last_hidden_state".to_string(), array.into())].into()
        };
        let reference = outputs(0.5);
        for bad in [f32::NAN, f32::INFINITY] {
            let d = drift(&reference, &outputs(bad)).expect("the output is there");
            assert!(!d.within(1e-4), "{bad}: {d:?}");
            assert!(d.cosine < 0.999, "{bad}: {d:?}");
            assert!(d.fault.is_some(), "{bad}: {d:?}");
        }
    }
}
