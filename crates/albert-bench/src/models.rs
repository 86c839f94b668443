//! The model files a run measures: the export (made from a checkpoint when given one), its
//! variants (made with the converter), the task it computes, and loading one into an engine.

use std::path::{Path, PathBuf};

use albert_core::checkpoint::{MODEL_FILE, WEIGHTS_FILE};
use albert_core::{AlbertConfig, OutputShape};
use albert_onnx::convert;
use albert_onnx::export::{ExportOptions, Task, export_dir};
use albert_onnx::proto::{self, EXTERNAL_DATA_THRESHOLD};
use albert_runtime::{Backend, BackendChoice, OrtOptions, Provider, TractOptions};
use anyhow::{Context, Result, bail};

use crate::cli::{Cli, ProviderArg, VariantArg};

/// The export directory to benchmark: the input, or its export when it is a checkpoint.
pub fn export_of(model: &Path, work: &Path) -> Result<PathBuf> {
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

pub fn make_variant(source: &Path, variant: VariantArg, work: &Path) -> Result<PathBuf> {
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

pub fn load(
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

/// What the export computes: its `albert.task` metadata (our exports), else what its outputs'
/// names and ranks say ([`Task::from_outputs`], the runtime's rule; symbolic dims count as 0).
pub fn export_task(model: &proto::pb::ModelProto, config: &AlbertConfig) -> Result<Task> {
    if let Some(task) = proto::metadata_value(model, "albert.task") {
        return task
            .parse()
            .map_err(|e| anyhow::anyhow!("the export's albert.task metadata: {e}"));
    }
    let outputs: Vec<OutputShape> = model
        .graph
        .iter()
        .flat_map(|g| g.output.iter())
        .map(|o| OutputShape {
            name: o.name.clone(),
            dims: proto::dims(o)
                .into_iter()
                .map(|d| d.and_then(|d| usize::try_from(d).ok()).unwrap_or(0))
                .collect(),
        })
        .collect();
    Task::from_outputs(&outputs, config.vocab_size).ok_or_else(|| {
        anyhow::anyhow!(
            "the export's outputs ({}) are no ALBERT task's",
            outputs
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
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
}
