//! `albert-train pretrain`: MLM with n-gram masking and SOP/NSP, checkpoints, resume.

use std::path::PathBuf;

use albert_core::params::{self};
use albert_train::DeviceChoice;
use anyhow::{Context, Result};
use clap::Args;

use crate::model_args::ModelArgs;
use crate::params::thousands;

#[derive(Args)]
pub(crate) struct PretrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Training text: one sentence per line, a blank line between documents.
    #[arg(long, required = true, num_args = 1..)]
    train: Vec<PathBuf>,
    /// Held-out text, same format, evaluated every --eval-every steps.
    #[arg(long, num_args = 1..)]
    eval: Vec<PathBuf>,
    /// tokenizer.json (see `albert-train tokenizer`); V is taken from it unless --config sets it.
    #[arg(long)]
    tokenizer: PathBuf,
    /// Output directory (checkpoints, metrics.jsonl, curves.svg).
    #[arg(short, long)]
    output: PathBuf,
    /// Sentence objective: sop, nsp or none.
    #[arg(long, default_value = "sop")]
    objective: albert_train::data::Objective,
    #[arg(long, default_value_t = 128)]
    max_seq_length: usize,
    #[arg(long, default_value_t = 20)]
    max_predictions: usize,
    #[arg(long, default_value_t = 0.1)]
    short_seq_prob: f64,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Micro-batches per optimizer step (effective batch = batch-size × accumulation).
    #[arg(long, default_value_t = 1)]
    accumulation: usize,
    /// Optimizer steps (the learning-rate schedule's length).
    #[arg(long)]
    steps: u64,
    /// Stop after this step with a checkpoint, keeping the --steps schedule (--resume finishes it).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    stop_after: Option<u64>,
    /// lamb or adamw.
    #[arg(long, default_value = "lamb")]
    optimizer: albert_train::optim::OptimizerKind,
    /// Peak learning rate (the paper: 0.00176 at batch 4096).
    #[arg(long, default_value_t = 0.00176)]
    lr: f64,
    /// Linear warm-up steps [default: 2% of --steps].
    #[arg(long)]
    warmup_steps: Option<u64>,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    #[arg(long, default_value_t = 500)]
    eval_every: u64,
    #[arg(long, default_value_t = 20)]
    eval_batches: usize,
    #[arg(long, default_value_t = 1000)]
    save_every: u64,
    /// Checkpoints to keep.
    #[arg(long, default_value_t = 3)]
    keep: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Continue from the newest checkpoint in --output (optimizer, step, data position).
    #[arg(long)]
    resume: bool,
    /// Start from this checkpoint's weights (trained with the same --tokenizer) with a fresh
    /// optimizer and schedule: continued pretraining.
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Export the final checkpoint to ONNX (<output>/onnx) at the end.
    #[arg(long)]
    export: bool,
    /// Mixed precision: bf16 matrix products, f32 weights, norms and losses (meant for CUDA).
    #[arg(long)]
    bf16: bool,
}

pub(crate) fn pretrain_command(args: &PretrainArgs) -> Result<()> {
    use albert_train::data::{InstanceOptions, MaskingOptions};
    use albert_train::optim::OptimizerOptions;
    use albert_train::pretrain::{PretrainOptions, pretrain};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let tokenizer = albert_core::tokenizer::load(&args.tokenizer)?;
    let mut config = args.model.config()?;
    if args.model.config.is_none() && args.model.vocab_size.is_none() {
        config.vocab_size = tokenizer.get_vocab_size(true);
    }
    config.max_position_embeddings = config.max_position_embeddings.max(args.max_seq_length);
    let device = args.device.resolve()?;
    let options = PretrainOptions {
        config,
        tokenizer: args.tokenizer.clone(),
        train_files: args.train.clone(),
        eval_files: args.eval.clone(),
        output: args.output.clone(),
        instances: InstanceOptions {
            max_seq_length: args.max_seq_length,
            short_seq_prob: args.short_seq_prob,
            objective: args.objective,
            masking: MaskingOptions {
                max_predictions: args.max_predictions,
                ..MaskingOptions::default()
            },
        },
        batch_size: args.batch_size,
        accumulation: args.accumulation,
        steps: args.steps,
        stop_after: args.stop_after,
        optimizer: OptimizerOptions {
            kind: args.optimizer,
            weight_decay: args.weight_decay,
            ..OptimizerOptions::default()
        },
        learning_rate: args.lr,
        warmup_steps: args.warmup_steps.unwrap_or(args.steps / 50),
        clip: args.clip,
        eval_every: args.eval_every,
        eval_batches: args.eval_batches,
        save_every: args.save_every,
        keep: args.keep,
        seed: args.seed,
        device,
        resume: args.resume,
        init_from: args.init_from.clone(),
        progress: true,
        bf16: args.bf16,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        // Ctrl-C, and with ctrlc's `termination` feature SIGTERM and SIGHUP (`kill`, a closed
        // terminal, a machine shutting down): the run stops at a step boundary with a checkpoint.
        eprintln!(
            "\nstopping after this step (a checkpoint is saved first; Ctrl-C again to quit now)"
        );
    })
    .context("installing the Ctrl-C / termination handler")?;
    println!(
        "pretraining on {device:?}: {} parameters, objective {}, {} optimizer steps of {} × {} sequences of ≤ {} tokens",
        thousands(
            params::count(&params::inventory(
                &options.config,
                &albert_train::pretrain::parts_for(args.objective)
            ))
            .total
        ),
        args.objective,
        args.steps,
        args.batch_size,
        args.accumulation,
        args.max_seq_length
    );
    let summary = pretrain(&options, Arc::clone(&stop))?;
    println!(
        "{} at step {}: train loss {:.3}, MLM accuracy {:.3}, {} accuracy {:.3}; {:.0} tokens/s",
        if summary.stopped_early {
            "stopped"
        } else {
            "done"
        },
        summary.steps,
        summary.train.loss,
        summary.train.mlm_accuracy,
        args.objective,
        summary.train.sentence_accuracy,
        summary.tokens_per_second
    );
    if let Some(eval) = summary.eval {
        println!(
            "held-out: loss {:.3}, MLM accuracy {:.3}, {} accuracy {:.3}",
            eval.loss, eval.mlm_accuracy, args.objective, eval.sentence_accuracy
        );
    }
    println!("checkpoint: {}", summary.last_checkpoint.display());
    println!(
        "curves: {}",
        args.output
            .join(albert_train::pretrain::CHART_FILE)
            .display()
    );
    if args.export && !summary.stopped_early {
        let out = args.output.join("onnx");
        let exported = albert_onnx::export_dir(
            &summary.last_checkpoint,
            &out,
            &albert_onnx::ExportOptions::default(),
        )?;
        println!(
            "exported {} ({}, {} bytes)",
            exported.model_path.display(),
            exported.task,
            exported.file_bytes
        );
    }
    if stop.load(Ordering::SeqCst) {
        // Interrupted (not --stop-after): exit as a signal would, so that scripts stop too.
        eprintln!("interrupted; --resume continues from the checkpoint");
        std::process::exit(130);
    }
    Ok(())
}
