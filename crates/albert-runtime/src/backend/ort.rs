//! ONNX Runtime through `ort` (2.0.0-rc.15, `load-dynamic`).
//!
//! The shared library is found from [`OrtOptions::library`], then `ORT_DYLIB_PATH`, then the
//! project venv (`.venv/onnxruntime.so`, made by tools/setup.sh). Execution providers are tried in
//! the caller's order with an explicit policy: [`FallbackPolicy::Require`] fails when the first
//! cannot be registered; [`FallbackPolicy::Fallback`] moves on to the next and says so on stderr.
//! Either way [`Backend::target`] reports what actually runs — ONNX Runtime itself would silently
//! fall back to the CPU.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::ep::{self, ExecutionProviderDispatch};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::{Backend, ExecutionTarget, ModelInputs, ModelOutputs, OutputTensor, check_input_names};
use crate::error::{Result, RuntimeError};

/// An ONNX Runtime execution provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// The CPU execution provider (ONNX Runtime's default; always available).
    Cpu,
    /// The CUDA execution provider (needs onnxruntime-gpu).
    Cuda {
        /// The CUDA device index.
        device: i32,
    },
    /// The TensorRT execution provider (needs onnxruntime-gpu and TensorRT).
    TensorRt {
        /// The CUDA device index.
        device: i32,
        /// Let TensorRT build fp16 engines.
        fp16: bool,
        /// Where TensorRT caches built engines (builds take minutes; the cache makes them once).
        engine_cache: Option<PathBuf>,
    },
}

impl Provider {
    /// A short name for messages: `cpu`, `cuda:N` or `tensorrt:N`.
    pub fn name(&self) -> String {
        match self {
            Provider::Cpu => "cpu".into(),
            Provider::Cuda { device } => format!("cuda:{device}"),
            Provider::TensorRt { device, .. } => format!("tensorrt:{device}"),
        }
    }

    fn target(&self) -> ExecutionTarget {
        match self {
            Provider::Cpu => ExecutionTarget::OrtCpu,
            Provider::Cuda { device } => ExecutionTarget::OrtCuda { device: *device },
            Provider::TensorRt { device, .. } => ExecutionTarget::OrtTensorRt { device: *device },
        }
    }

    fn dispatch(&self) -> Option<ExecutionProviderDispatch> {
        match self {
            Provider::Cpu => None,
            Provider::Cuda { device } => Some(
                ep::CUDA::default()
                    .with_device_id(*device)
                    .build()
                    .error_on_failure(),
            ),
            Provider::TensorRt {
                device,
                fp16,
                engine_cache,
            } => {
                let mut trt = ep::TensorRT::default()
                    .with_device_id(*device)
                    .with_fp16(*fp16);
                if let Some(dir) = engine_cache {
                    trt = trt
                        .with_engine_cache(true)
                        .with_engine_cache_path(dir.display())
                        .with_timing_cache(true)
                        .with_timing_cache_path(dir.display());
                }
                Some(trt.build().error_on_failure())
            }
        }
    }
}

/// The `--provider` flag of the binaries (`albert-run`, `albert-serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum ProviderFlag {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// CUDA (needs onnxruntime-gpu and a GPU).
    Cuda,
    /// TensorRT (needs onnxruntime-gpu, TensorRT and a GPU).
    Tensorrt,
}

impl ProviderFlag {
    /// The provider on GPU `device` (ignored for the CPU).
    pub fn provider(self, device: i32) -> Provider {
        match self {
            ProviderFlag::Cpu => Provider::Cpu,
            ProviderFlag::Cuda => Provider::Cuda { device },
            ProviderFlag::Tensorrt => Provider::TensorRt {
                device,
                fp16: false,
                engine_cache: None,
            },
        }
    }
}

/// What to do when a requested provider cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FallbackPolicy {
    /// Fail with [`RuntimeError::ProviderUnavailable`].
    #[default]
    Require,
    /// Try the next provider in the list (the CPU last), with a warning on stderr.
    Fallback,
}

/// Options of the ONNX Runtime backend.
#[derive(Debug, Clone)]
pub struct OrtOptions {
    /// `libonnxruntime.so` to load; see the module docs for the search order.
    pub library: Option<PathBuf>,
    /// Providers in order of preference. The CPU is always the last resort under `Fallback`.
    pub providers: Vec<Provider>,
    /// What to do when a provider cannot be registered [default: `Require`].
    pub policy: FallbackPolicy,
    /// Threads inside one operator (0: ONNX Runtime's default, one per core).
    pub intra_threads: usize,
    /// Threads across independent operators (0: default).
    pub inter_threads: usize,
    /// ONNX Runtime's graph optimization level [default: `All`, as ONNX Runtime's own default;
    /// `ort` calls ONNX Runtime's level 3, `ORT_ENABLE_LAYOUT`, `Level3`].
    pub optimization_level: GraphOptimizationLevel,
    /// Flush subnormal floats to zero in the session's worker threads (ONNX Runtime's
    /// `session.set_denormal_as_zero`, off in ONNX Runtime itself) [default: true]. A model's
    /// attention can drift into subnormal probabilities (4.5 % of them in our NSP experiment),
    /// and each operation on one takes a microcode assist on x86; below 1.2e-38 they change no
    /// output (identical outputs on that model, and it ran 1.20× faster at 2 threads;
    /// docs/benchmarking.md, "Subnormal floats"). The calling thread keeps the application's own flags.
    pub flush_denormals: bool,
    /// Let the intra-op threads spin-wait for work between runs (ONNX Runtime's
    /// `session.intra_op.allow_spinning`) [default: true, as ONNX Runtime]. Spinning shaves a
    /// little latency off back-to-back runs but holds the cores while idle: a server that
    /// tokenizes and answers HTTP on the same cores turns it off.
    pub intra_op_spinning: bool,
}

impl Default for OrtOptions {
    fn default() -> Self {
        OrtOptions {
            library: None,
            providers: vec![Provider::Cpu],
            policy: FallbackPolicy::Require,
            intra_threads: 0,
            inter_threads: 0,
            optimization_level: GraphOptimizationLevel::All,
            flush_denormals: true,
            intra_op_spinning: true,
        }
    }
}

impl OrtOptions {
    /// `provider` first, then the CPU when `fallback` allows it (the binaries' `--provider`,
    /// `--device` and `--fallback`); everything else as [`OrtOptions::default`].
    pub fn for_provider(provider: Provider, fallback: bool) -> Self {
        OrtOptions {
            providers: vec![provider, Provider::Cpu],
            policy: if fallback {
                FallbackPolicy::Fallback
            } else {
                FallbackPolicy::Require
            },
            ..OrtOptions::default()
        }
    }
}

/// The ONNX Runtime shared library's file name on this platform (`libonnxruntime.so` on Linux).
fn library_file_name() -> String {
    format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Where the library is looked for, in order (docs/runtime.md, "Where ONNX Runtime is looked
/// for"): the explicit path (`OrtOptions::library`, `--ort-library`); `$ORT_DYLIB_PATH`; beside
/// the executable and in `../lib` from it (a shipped binary); then a development venv
/// (`.venv/onnxruntime.so`, the link tools/setup.sh makes), walking up from the current
/// directory and then from the executable (`target/<profile>/<exe>` sits inside the checkout).
/// Nothing here is a path of the machine the crate was built on.
pub fn library_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(p));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join(library_file_name()));
        candidates.push(dir.join("../lib").join(library_file_name()));
    }
    let venv_library = Path::new(".venv").join("onnxruntime.so");
    if let Ok(cwd) = std::env::current_dir() {
        candidates.extend(cwd.ancestors().map(|dir| dir.join(&venv_library)));
    }
    if let Some(dir) = &exe_dir {
        candidates.extend(dir.ancestors().take(4).map(|dir| dir.join(&venv_library)));
    }
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|path| seen.insert(path.clone()));
    candidates
}

/// The process's ONNX Runtime environment: ONNX Runtime allows one per process, so it is made
/// once, from the library found for the first caller.
pub fn environment(explicit: Option<&Path>) -> Result<&'static ort::environment::Environment> {
    static ENVIRONMENT: OnceLock<
        std::result::Result<ort::environment::Environment, RuntimeErrorText>,
    > = OnceLock::new();
    let env = ENVIRONMENT.get_or_init(|| {
        let candidates = library_candidates(explicit);
        let Some(path) = candidates.iter().find(|p| p.exists()) else {
            return Err(RuntimeErrorText::NotFound(
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        };
        let builder = ort::init_from(path)
            .map_err(|e| RuntimeErrorText::Other(format!("loading {}: {e}", path.display())))?;
        builder
            .with_name("albert")
            .build()
            .map_err(|e| RuntimeErrorText::Other(format!("creating the environment: {e}")))
    });
    match env {
        Ok(env) => Ok(env),
        Err(RuntimeErrorText::NotFound(looked)) => Err(RuntimeError::OrtLibraryNotFound {
            looked: looked.clone(),
        }),
        Err(RuntimeErrorText::Other(message)) => Err(RuntimeError::OnnxRuntime(message.clone())),
    }
}

/// A cached environment failure (errors are not `Clone`).
#[derive(Debug)]
enum RuntimeErrorText {
    NotFound(String),
    Other(String),
}

fn ort_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::OnnxRuntime(e.to_string())
}

/// A model loaded in ONNX Runtime. `ort` runs a session through `&mut`, so concurrent calls take
/// turns on one session (each run is itself parallel over `intra_threads`).
pub struct OrtBackend {
    session: Mutex<Session>,
    target: ExecutionTarget,
    outputs: Vec<String>,
}

impl OrtBackend {
    /// Loads an ONNX model into a session on the first provider that registers, per the
    /// fallback policy, and checks that it takes ALBERT's three inputs.
    pub fn load(model: &Path, options: &OrtOptions) -> Result<Self> {
        let env = environment(options.library.as_deref())?;
        let mut builder = Session::builder(env)
            .map_err(ort_err)?
            .with_optimization_level(options.optimization_level)
            .map_err(ort_err)?;
        if options.intra_threads > 0 {
            builder = builder
                .with_intra_threads(options.intra_threads)
                .map_err(ort_err)?;
        }
        if options.inter_threads > 0 {
            builder = builder
                .with_inter_threads(options.inter_threads)
                .map_err(ort_err)?;
        }
        if options.flush_denormals {
            builder = builder.with_flush_to_zero().map_err(ort_err)?;
        }
        if !options.intra_op_spinning {
            builder = builder.with_intra_op_spinning(false).map_err(ort_err)?;
        }

        let mut target = ExecutionTarget::OrtCpu;
        let mut registered = false;
        let providers = if options.providers.is_empty() {
            vec![Provider::Cpu]
        } else {
            options.providers.clone()
        };
        for provider in &providers {
            let Some(dispatch) = provider.dispatch() else {
                target = ExecutionTarget::OrtCpu;
                registered = true;
                break;
            };
            match builder.with_execution_providers([dispatch]) {
                Ok(b) => {
                    builder = b;
                    target = provider.target();
                    registered = true;
                    break;
                }
                Err(e) => {
                    let reason = e.to_string();
                    builder = e.recover();
                    match options.policy {
                        FallbackPolicy::Require => {
                            return Err(RuntimeError::ProviderUnavailable {
                                provider: provider.name(),
                                reason,
                            });
                        }
                        FallbackPolicy::Fallback => {
                            eprintln!(
                                "warning: execution provider {} is unavailable ({reason}); trying the next",
                                provider.name()
                            );
                        }
                    }
                }
            }
        }
        if !registered {
            eprintln!(
                "warning: no requested execution provider could be registered; running on the CPU"
            );
        }
        let session = builder.commit_from_file(model).map_err(ort_err)?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        check_input_names(&inputs)?;
        let outputs = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        Ok(OrtBackend {
            session: Mutex::new(session),
            target,
            outputs,
        })
    }
}

impl Backend for OrtBackend {
    fn target(&self) -> ExecutionTarget {
        self.target
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn run(&self, inputs: &ModelInputs) -> Result<ModelOutputs> {
        let tensor =
            |a: &ndarray::Array2<i64>| ort::value::Tensor::from_array(a.clone()).map_err(ort_err);
        let feed = ort::inputs![
            "input_ids" => tensor(&inputs.input_ids)?,
            "attention_mask" => tensor(&inputs.attention_mask)?,
            "token_type_ids" => tensor(&inputs.token_type_ids)?,
        ];
        let mut session = self.session.lock().map_err(|_| {
            RuntimeError::OnnxRuntime("a previous run panicked while holding the session".into())
        })?;
        let mut outputs = session.run(feed).map_err(ort_err)?;
        let mut result = ModelOutputs::new();
        for name in &self.outputs {
            // Taken, not copied: the values outlive the run (they hold their allocator).
            if let Some(value) = outputs.remove(name.as_str()) {
                result.insert(name.clone(), OutputTensor::from_ort(name, value)?);
            }
        }
        Ok(result)
    }
}

/// Calibration: runs a model with one float32 input named `x` (e.g. a single large `MatMul`)
/// for at least `min_seconds` after one warm-up run, and returns the mean seconds per run. Used by
/// `albert-bench` to measure the machine's GEMM rate through the same engine and threads.
pub fn seconds_per_run(
    model: &Path,
    options: &OrtOptions,
    x: ndarray::ArrayD<f32>,
    min_seconds: f64,
) -> Result<f64> {
    let env = environment(options.library.as_deref())?;
    let mut builder = Session::builder(env).map_err(ort_err)?;
    if options.intra_threads > 0 {
        builder = builder
            .with_intra_threads(options.intra_threads)
            .map_err(ort_err)?;
    }
    let mut session = builder.commit_from_file(model).map_err(ort_err)?;
    let mut run = || -> Result<()> {
        let tensor = ort::value::Tensor::from_array(x.clone()).map_err(ort_err)?;
        session.run(ort::inputs!["x" => tensor]).map_err(ort_err)?;
        Ok(())
    };
    run()?;
    let start = std::time::Instant::now();
    let mut runs = 0usize;
    while runs < 3 || start.elapsed().as_secs_f64() < min_seconds {
        run()?;
        runs += 1;
    }
    Ok(start.elapsed().as_secs_f64() / runs as f64)
}
