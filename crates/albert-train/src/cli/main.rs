//! `albert-train`: the ALBERT trainer's command line, one module per subcommand.

mod curves;
mod evaluate;
mod finetune;
mod init;
mod model_args;
mod params;
mod pretrain;
mod tokenizer;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::curves::{CurvesArgs, curves_command};
use crate::evaluate::{EvaluateArgs, evaluate_command};
use crate::finetune::{FinetuneArgs, finetune_command};
use crate::init::{InitArgs, init_command};
use crate::params::{ParamsArgs, params_command};
use crate::pretrain::{PretrainArgs, pretrain_command};
use crate::tokenizer::{TokenizerArgs, tokenizer_command};

#[derive(Parser)]
#[command(
    name = "albert-train",
    version,
    about = "Train ALBERT (Lan et al. 2019) on libtorch, CPU or CUDA"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the parameter breakdown of a configuration, with the paper's figure beside it.
    Params(ParamsArgs),
    /// Write a randomly initialized checkpoint (config.json + model.safetensors, HF layout).
    Init(InitArgs),
    /// Train an ALBERT-style SentencePiece unigram tokenizer (tokenizer.json) on text files.
    Tokenizer(TokenizerArgs),
    /// Pretrain with MLM (n-gram masking) and SOP, NSP or no sentence objective.
    Pretrain(Box<PretrainArgs>),
    /// Fine-tune a checkpoint for sequence classification (texts or pairs), token classification
    /// or question answering from CSV or JSON lines, keeping the best epoch by validation metric.
    Finetune(Box<FinetuneArgs>),
    /// Held-out MLM accuracy, and SOP and NSP accuracy with the model's own head and with a
    /// linear probe on frozen [CLS] features (the paper's Table 5 measurements).
    Evaluate(EvaluateArgs),
    /// Draw the held-out curves (MLM accuracy and loss, SOP/NSP accuracy) of several runs into
    /// one SVG chart, to compare them.
    Curves(CurvesArgs),
}

fn main() -> Result<()> {
    // Before libtorch starts its worker threads, so that they inherit it (see the module).
    albert_train::denormals::flush_denormals_to_zero();
    let cli = Cli::parse();
    match &cli.command {
        Command::Params(args) => params_command(args),
        Command::Init(args) => init_command(args),
        Command::Tokenizer(args) => tokenizer_command(args),
        Command::Pretrain(args) => pretrain_command(args),
        Command::Finetune(args) => finetune_command(args),
        Command::Evaluate(args) => evaluate_command(args),
        Command::Curves(args) => curves_command(args),
    }
}
