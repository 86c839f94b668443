//! The command line: what to measure (providers, variants, shapes, threads) and how.

use std::path::PathBuf;

use albert_onnx::convert::{ConvertOptions, FuseFlavour, LoopMode, QuantizeOptions};
use clap::{Parser, ValueEnum};
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
    pub fn ort_cpu(self) -> bool {
        matches!(self, ProviderArg::OrtCpu | ProviderArg::OrtCpuKeepDenormals)
    }

    pub fn gpu(self) -> bool {
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

    pub fn options(self) -> ConvertOptions {
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
pub struct Cli {
    /// An export directory (model.onnx, config.json, tokenizer.json) or a checkpoint directory
    /// (model.safetensors: exported first).
    pub model: PathBuf,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [ProviderArg::Tract, ProviderArg::OrtCpu, ProviderArg::OrtCuda, ProviderArg::OrtTensorrt])]
    pub providers: Vec<ProviderArg>,
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [VariantArg::Fp32, VariantArg::Folded, VariantArg::Int8])]
    pub variants: Vec<VariantArg>,
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8])]
    pub batch: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_values_t = [128usize])]
    pub seq: Vec<usize>,
    /// ONNX Runtime intra-op threads [default: the number of cores]; tract is single-threaded.
    #[arg(long, value_delimiter = ',')]
    pub threads: Option<Vec<usize>>,
    /// Timed seconds per cell (after warm-up); at least --min-runs runs.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Time the cells of each batch size and length in turns (quarter-second slices, round after
    /// round) instead of one after another, so that a shared machine's drift falls on all of
    /// them alike; their peak memory is then not measured.
    #[arg(long)]
    pub interleave: bool,
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 5)]
    pub min_runs: usize,
    /// Real text for the inputs (one sentence per line) [default: the committed corpus sample].
    #[arg(long)]
    pub text: Option<PathBuf>,
    /// Write the rows as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write report.md, results.json and SVG charts into this directory (also where variants
    /// and exports are made) [default: bench-report].
    #[arg(long, default_value = "bench-report")]
    pub report: PathBuf,
    /// libonnxruntime.so [default: $ORT_DYLIB_PATH, then the project's .venv].
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
    /// Also measure external anchors in this run (tools/bench_anchors.py in the project venv:
    /// HF PyTorch eager, ONNX Runtime Python on torch.onnx.export output, with its transformer
    /// optimizer and with its int8 quantize_dynamic) and report our best variant's ratio to each.
    #[arg(long)]
    pub compare: bool,
    /// Python for --compare [default: the first .venv/bin/python above the current directory, else python3].
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// CUDA device for ort-cuda and ort-tensorrt.
    #[arg(long, default_value_t = 0)]
    pub device: i32,
}
