//! Parameter counts from the inventory against HF's `AlbertModel(config).num_parameters()`
//! (V = 30000, encoder + embeddings + pooler), as listed in the foundation issue and the paper.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use albert_core::params::{count, inventory};
use albert_core::{Head, Preset, Sharing};

fn base_count(preset: Preset, embedding: Option<usize>, sharing: Sharing) -> usize {
    let mut config = preset.config().with_sharing(sharing);
    if let Some(e) = embedding {
        config = config.with_embedding_size(e);
    }
    config.validate().expect("valid");
    count(&inventory(&config, &Head::Base.parts())).total
}

#[test]
fn presets_match_hf_num_parameters() {
    assert_eq!(base_count(Preset::Base, None, Sharing::All), 11_683_584);
    assert_eq!(base_count(Preset::Large, None, Sharing::All), 17_683_968);
    assert_eq!(base_count(Preset::Xlarge, None, Sharing::All), 58_724_864);
    assert_eq!(base_count(Preset::Xxlarge, None, Sharing::All), 222_595_584);
}

#[test]
fn table3_sharing_strategies_e128() {
    let e = Some(128);
    assert_eq!(base_count(Preset::Base, e, Sharing::All), 11_683_584);
    assert_eq!(base_count(Preset::Base, e, Sharing::Attention), 63_647_232);
    assert_eq!(base_count(Preset::Base, e, Sharing::Ffn), 37_686_528);
    assert_eq!(base_count(Preset::Base, e, Sharing::None), 89_650_176);
}

#[test]
fn table3_sharing_strategies_e768() {
    let e = Some(768);
    assert_eq!(base_count(Preset::Base, e, Sharing::All), 31_705_344);
    assert_eq!(base_count(Preset::Base, e, Sharing::Attention), 83_668_992);
    assert_eq!(base_count(Preset::Base, e, Sharing::Ffn), 57_708_288);
    assert_eq!(base_count(Preset::Base, e, Sharing::None), 109_671_936);
}

#[test]
fn shared_tensors_are_listed_once_with_all_their_users() {
    let config = Preset::Base.config().with_sharing(Sharing::Ffn);
    let specs = inventory(&config, &Head::Base.parts());
    let ffn: Vec<_> = specs
        .iter()
        .filter(|s| s.name.ends_with(".ffn.weight"))
        .collect();
    assert_eq!(ffn.len(), 1, "one shared FFN weight");
    assert_eq!(ffn[0].used_by.len(), 12);
    let query: Vec<_> = specs
        .iter()
        .filter(|s| s.name.ends_with(".query.weight"))
        .collect();
    assert_eq!(query.len(), 12, "one attention block per layer");
    assert!(query.iter().all(|s| s.used_by.len() == 1));
    assert_eq!(
        query[3].name,
        "albert.encoder.unshared_layers.3.albert_layers.0.attention.query.weight"
    );
    let names: std::collections::HashSet<_> = specs.iter().map(|s| &s.name).collect();
    assert_eq!(names.len(), specs.len(), "names are unique");
}

#[test]
fn heads_add_what_hf_adds() {
    let config = Preset::Base.config();
    let base = count(&inventory(&config, &Head::Base.parts())).total;
    let (v, e, h) = (30000, 128, 768);
    let pooler = h * h + h;
    let mlm = v + h * e + e + 2 * e; // bias, dense, LayerNorm; decoder tied
    let sop = 2 * h + 2;
    let total = |head: Head| count(&inventory(&config, &head.parts())).total;
    assert_eq!(total(Head::MaskedLm), base - pooler + mlm);
    assert_eq!(total(Head::Pretraining), base + mlm + sop);
    assert_eq!(total(Head::PretrainingNsp), base + mlm + sop);
    assert_eq!(total(Head::SequenceClassification), base + sop);
    assert_eq!(total(Head::TokenClassification), base - pooler + sop);
    assert_eq!(total(Head::QuestionAnswering), base - pooler + sop);
}

#[test]
fn hf_group_assignment_uses_float_division() {
    // HF: int(i / (num_hidden_layers / num_hidden_groups)); 5 layers in 2 groups → 0,0,0,1,1.
    let mut config = Preset::Base.config();
    config.num_hidden_layers = 5;
    config.num_hidden_groups = 2;
    let groups: Vec<_> = (0..5).map(|l| config.group_of_layer(l)).collect();
    assert_eq!(groups, vec![0, 0, 0, 1, 1]);
}
