//! Every sharing strategy and group layout in the tch model: the variables are exactly the
//! inventory (shared tensors stored once), every stored tensor takes part in the forward pass,
//! checkpoints round-trip bit-identically, and bad inputs are errors, not aborts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use albert_core::params::{count, inventory};
use albert_core::{AlbertConfig, Checkpoint, Head, Preset, Sharing};
use albert_train::{AlbertModel, DeviceChoice, TrainError};
use tch::{Device, Kind, Tensor, nn};

fn tiny(sharing: Sharing, layers: usize, groups: usize, inner: usize) -> AlbertConfig {
    let config = AlbertConfig {
        vocab_size: 50,
        embedding_size: 8,
        hidden_size: 16,
        num_hidden_layers: layers,
        num_hidden_groups: groups,
        inner_group_num: inner,
        num_attention_heads: 2,
        intermediate_size: 24,
        max_position_embeddings: 16,
        ..AlbertConfig::default()
    };
    config.with_sharing(sharing)
}

fn layouts() -> Vec<AlbertConfig> {
    let mut configs = Vec::new();
    for sharing in Sharing::ALL {
        for (layers, groups, inner) in [(3, 1, 1), (4, 2, 1), (3, 1, 2), (5, 2, 2)] {
            configs.push(tiny(sharing, layers, groups, inner));
        }
    }
    configs
}

fn batch() -> (Tensor, Tensor, Tensor) {
    let ids = Tensor::from_slice(&[2i64, 7, 9, 11, 3, 0, 2, 8, 3, 5, 6, 3]).view([2, 6]);
    let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]).view([2, 6]);
    let types = Tensor::from_slice(&[0i64, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1]).view([2, 6]);
    (ids, mask, types)
}

#[test]
fn variables_are_the_inventory_and_all_of_them_are_used() {
    for config in layouts() {
        let what = format!(
            "sharing={} L={} G={} I={}",
            config.sharing,
            config.num_hidden_layers,
            config.num_hidden_groups,
            config.inner_group_num
        );
        let parts = Head::Pretraining.parts();
        let specs = inventory(&config, &parts);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::new(&vs, &config, parts).expect("model");
        let variables = vs.variables();
        assert_eq!(variables.len(), specs.len(), "{what}");
        for spec in &specs {
            let v = &variables[&spec.name];
            let shape: Vec<usize> = v.size().iter().map(|&d| d as usize).collect();
            assert_eq!(shape, spec.shape, "{what}: {}", spec.name);
        }
        assert_eq!(model.num_parameters(), count(&specs).total, "{what}");

        let (ids, mask, types) = batch();
        let out = model
            .forward(&ids, Some(&mask), Some(&types), false)
            .expect("forward");
        let loss = out.mlm_logits.unwrap().square().mean(Kind::Float)
            + out.sentence_logits.unwrap().square().mean(Kind::Float);
        loss.backward();
        for spec in &specs {
            let grad = variables[&spec.name].grad();
            assert!(grad.defined(), "{what}: {} got no gradient", spec.name);
            if spec.name == "albert.embeddings.word_embeddings.weight"
                || spec.name.ends_with("position_embeddings.weight")
            {
                continue; // rows not in the batch have zero gradient by design
            }
            let norm = grad.abs().sum(Kind::Float).double_value(&[]);
            assert!(norm > 0.0, "{what}: {} has an all-zero gradient", spec.name);
        }
    }
}

#[test]
fn shared_tensor_receives_the_sum_of_its_layers_gradients() {
    // With all layers sharing, perturbing the one stored FFN weight changes every layer; with
    // nothing shared, changing layer 0's copy leaves later layers' tensors alone. Checked via the
    // gradient: shared grads equal the sum over the equivalent unshared model's per-layer grads.
    let shared_cfg = tiny(Sharing::All, 3, 1, 1);
    let unshared_cfg = tiny(Sharing::None, 3, 1, 1);
    tch::manual_seed(7);
    let vs_shared = nn::VarStore::new(Device::Cpu);
    let shared = AlbertModel::new(&vs_shared, &shared_cfg, Head::Base.parts()).unwrap();
    let vs_unshared = nn::VarStore::new(Device::Cpu);
    let unshared = AlbertModel::new(&vs_unshared, &unshared_cfg, Head::Base.parts()).unwrap();
    // Give the unshared model three copies of the shared layer.
    let ck = shared.to_checkpoint().unwrap();
    let mut tensors = std::collections::BTreeMap::new();
    for (name, t) in &ck.tensors {
        if name.contains("albert_layer_groups.0.") {
            for g in 0..3 {
                tensors.insert(
                    name.replace(
                        "albert_layer_groups.0.",
                        &format!("albert_layer_groups.{g}."),
                    ),
                    t.clone(),
                );
            }
        } else {
            tensors.insert(name.clone(), t.clone());
        }
    }
    unshared.load_tensors(&tensors).unwrap();

    let (ids, mask, types) = batch();
    let run = |m: &AlbertModel| {
        let out = m.forward(&ids, Some(&mask), Some(&types), false).unwrap();
        out.pooler_output.unwrap().sum(Kind::Float)
    };
    let (a, b) = (run(&shared), run(&unshared));
    assert!((a.double_value(&[]) - b.double_value(&[])).abs() < 1e-5);
    a.backward();
    b.backward();
    let name =
        |g: usize| format!("albert.encoder.albert_layer_groups.{g}.albert_layers.0.ffn.weight");
    let shared_grad = vs_shared.variables()[&name(0)].grad();
    let vars = vs_unshared.variables();
    let summed = vars[&name(0)].grad() + vars[&name(1)].grad() + vars[&name(2)].grad();
    let diff = (shared_grad - summed).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "max diff {diff}");
}

#[test]
fn every_layout_round_trips_through_a_checkpoint() {
    for config in layouts() {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::new(&vs, &config, Head::Pretraining.parts()).unwrap();
        let checkpoint = model.to_checkpoint().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        checkpoint.write_dir(tmp.path()).unwrap();
        let reread = Checkpoint::read_dir(tmp.path()).unwrap();
        assert_eq!(reread, checkpoint, "sharing={}", config.sharing);
        let vs2 = nn::VarStore::new(Device::Cpu);
        let model2 = AlbertModel::from_checkpoint(&vs2, &reread).unwrap();
        let (ids, mask, types) = batch();
        let a = model
            .forward(&ids, Some(&mask), Some(&types), false)
            .unwrap();
        let b = model2
            .forward(&ids, Some(&mask), Some(&types), false)
            .unwrap();
        assert!(a.last_hidden_state.equal(&b.last_hidden_state));
    }
}

#[test]
fn paper_base_model_counts_equal_the_inventory() {
    for sharing in Sharing::ALL {
        let config = Preset::Base.config().with_sharing(sharing);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AlbertModel::new(&vs, &config, Head::Base.parts()).unwrap();
        let expected = count(&inventory(&config, &Head::Base.parts())).total;
        assert_eq!(model.num_parameters(), expected, "{sharing}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let config = tiny(Sharing::All, 2, 1, 1);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = AlbertModel::new(&vs, &config, Head::Base.parts()).unwrap();
    let too_big = Tensor::from_slice(&[2i64, 50]).view([1, 2]);
    let err = model
        .forward(&too_big, None, None, false)
        .err()
        .expect("error");
    assert!(
        matches!(
            err,
            TrainError::BadInput {
                name: "input_ids",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("[0, 50)"), "{err}");
    let too_long = Tensor::zeros([1, 17], (Kind::Int64, Device::Cpu));
    let err = model
        .forward(&too_long, None, None, false)
        .err()
        .expect("error");
    assert!(
        err.to_string().contains("max_position_embeddings 16"),
        "{err}"
    );
    let ids = Tensor::zeros([1, 4], (Kind::Int64, Device::Cpu));
    let bad_types = Tensor::full([1, 4], 2, (Kind::Int64, Device::Cpu));
    let err = model
        .forward(&ids, None, Some(&bad_types), false)
        .err()
        .expect("error");
    assert!(
        matches!(
            err,
            TrainError::BadInput {
                name: "token_type_ids",
                ..
            }
        ),
        "{err}"
    );
    let bad_mask = Tensor::ones([1, 3], (Kind::Int64, Device::Cpu));
    let err = model
        .forward(&ids, Some(&bad_mask), None, false)
        .err()
        .expect("error");
    assert!(
        matches!(
            err,
            TrainError::BadInput {
                name: "attention_mask",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn cuda_choice_matches_what_libtorch_sees() {
    assert_eq!("auto".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
    assert_eq!("cuda:1".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(1)));
    assert!("gpu".parse::<DeviceChoice>().is_err());
    assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), Device::Cpu);
    if tch::Cuda::is_available() {
        assert_eq!(DeviceChoice::Cuda(0).resolve().unwrap(), Device::Cuda(0));
        assert_eq!(DeviceChoice::Auto.resolve().unwrap(), Device::Cuda(0));
    } else {
        let err = DeviceChoice::Cuda(0).resolve().unwrap_err();
        assert!(matches!(err, TrainError::CudaUnavailable { .. }), "{err}");
        assert_eq!(DeviceChoice::Auto.resolve().unwrap(), Device::Cpu);
    }
}
