//! `albert-train init`: a randomly initialized checkpoint in the HF layout.

use std::path::PathBuf;

use albert_train::{AlbertModel, DeviceChoice};
use anyhow::{Context, Result};
use clap::Args;

use crate::model_args::ModelArgs;
use crate::params::thousands;

#[derive(Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Output model directory.
    #[arg(short, long)]
    output: PathBuf,
    /// Random seed of the initialization.
    #[arg(long, default_value_t = 0)]
    seed: i64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

pub(crate) fn init_command(args: &InitArgs) -> Result<()> {
    let config = args.model.config()?;
    let device = args.device.resolve()?;
    tch::manual_seed(args.seed);
    let vs = tch::nn::VarStore::new(device);
    let model = AlbertModel::new(&vs, &config, args.model.head.parts())?;
    let checkpoint = model.to_checkpoint()?;
    checkpoint
        .write_dir(&args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} parameters, heads: {}, device: {device:?})",
        args.output.display(),
        thousands(model.num_parameters()),
        model.parts().describe()
    );
    Ok(())
}
