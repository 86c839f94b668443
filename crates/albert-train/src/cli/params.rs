//! `albert-train params`: the parameter breakdown of a configuration, with the paper's figure.

use albert_core::params::{self, Component, Parts};
use anyhow::Result;
use clap::Args;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::model_args::ModelArgs;

#[derive(Args)]
pub(crate) struct ParamsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `params --json`: the breakdown the table shows.
#[derive(Serialize)]
struct ParamsJson {
    model: String,
    head: &'static str,
    components: Vec<ComponentJson>,
    total: usize,
    tensors: usize,
    layer_applications: usize,
    stored_attention_blocks: usize,
    stored_ffn_blocks: usize,
    /// The paper's figure for this configuration, if it gives one.
    paper: Option<&'static str>,
}

#[derive(Serialize)]
struct ComponentJson {
    component: String,
    parameters: usize,
}

pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn params_command(args: &ParamsArgs) -> Result<()> {
    let config = args.model.config()?;
    let parts: Parts = args.model.head.parts();
    let specs = params::inventory(&config, &parts);
    let counts = params::count(&specs);
    let paper = params::paper_figure(&config, &parts);
    let layer_applications = config.num_hidden_layers * config.inner_group_num;
    let stored = |needle: &str| {
        specs
            .iter()
            .filter(|s| s.component == Component::Encoder && s.name.ends_with(needle))
            .count()
    };
    let (attention_blocks, ffn_blocks) = (stored(".attention.query.weight"), stored(".ffn.weight"));

    if args.json {
        let breakdown = ParamsJson {
            model: args.model.describe(&config),
            head: args.model.head.name(),
            components: counts
                .by_component
                .iter()
                .map(|&(c, parameters)| ComponentJson {
                    component: format!("{c:?}"),
                    parameters,
                })
                .collect(),
            total: counts.total,
            tensors: specs.len(),
            layer_applications,
            stored_attention_blocks: attention_blocks,
            stored_ffn_blocks: ffn_blocks,
            paper,
        };
        println!("{}", serde_json::to_string_pretty(&breakdown)?);
        return Ok(());
    }

    println!("{}", args.model.describe(&config));
    println!("heads: {} ({})", args.model.head, parts.describe());
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["component", "parameters"]);
    for (component, n) in &counts.by_component {
        table.add_row([
            Cell::new(component.label()),
            Cell::new(thousands(*n)).set_alignment(CellAlignment::Right),
        ]);
    }
    table.add_row([
        Cell::new("total"),
        Cell::new(thousands(counts.total)).set_alignment(CellAlignment::Right),
    ]);
    println!("{table}");
    println!(
        "{} tensors; {layer_applications} layer applications use {attention_blocks} stored attention block(s) and {ffn_blocks} feed-forward block(s)",
        specs.len()
    );
    match paper {
        Some(figure) => println!("paper: {figure}"),
        None => println!("paper: no figure for this configuration"),
    }
    Ok(())
}
