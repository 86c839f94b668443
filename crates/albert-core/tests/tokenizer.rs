//! The trained ALBERT-style tokenizer: special-token layout and how `[MASK]` in text tokenizes
//! (as HF's `AlbertTokenizerFast` does: the mask takes the space before it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::Path;

use albert_core::tokenizer::{SPECIAL_TOKENS, load, save, train_unigram};

fn trained() -> tokenizers::Tokenizer {
    let text =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/corpus/small-sample.txt");
    train_unigram(&[text.as_path()], 400).unwrap()
}

#[test]
fn special_tokens_have_albert_base_v2_ids() {
    let tokenizer = trained();
    for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
        assert_eq!(tokenizer.token_to_id(token), Some(id as u32), "{token}");
    }
    let pair = tokenizer.encode(("the model", "runs"), true).unwrap();
    assert_eq!(pair.get_ids()[0], 2, "[CLS] first");
    assert_eq!(
        pair.get_ids().iter().filter(|&&i| i == 3).count(),
        2,
        "two [SEP]"
    );
    assert_eq!(
        *pair.get_type_ids().last().unwrap(),
        1,
        "segment B has type 1"
    );
}

#[test]
fn mask_in_text_takes_the_space_before_it_and_survives_a_save() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tokenizer.json");
    save(&trained(), &path).unwrap();
    let tokenizer = load(&path).unwrap();
    let masked = tokenizer
        .encode("the [MASK] of the government.", false)
        .unwrap();
    let plain = tokenizer
        .encode("the government of the government.", false)
        .unwrap();
    let tokens = masked.get_tokens();
    // One token, id 4 (its text holds the space it took, as in HF).
    let at = masked
        .get_ids()
        .iter()
        .position(|&id| id == 4)
        .unwrap_or_else(|| panic!("[MASK] is one token: {tokens:?}"));
    assert_eq!(tokens[at].trim(), "[MASK]");
    assert_eq!(masked.get_ids().iter().filter(|&&id| id == 4).count(), 1);
    assert_eq!(
        tokens[at - 1],
        "▁the",
        "no lone ▁ piece before the mask: {tokens:?}"
    );
    assert!(!tokens.iter().any(|t| t == "▁"), "{tokens:?}");
    // Everything but the masked word tokenizes as in the unmasked sentence.
    let word = plain
        .get_tokens()
        .iter()
        .position(|t| t == "▁government")
        .unwrap();
    assert_eq!(word, at);
    assert_eq!(tokens[..at], plain.get_tokens()[..at]);
    assert_eq!(tokens[at + 1..], plain.get_tokens()[word + 1..]);
    // The other special tokens keep their spaces (HF: only the mask strips).
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for added in json["added_tokens"].as_array().unwrap() {
        let is_mask = added["content"] == "[MASK]";
        assert_eq!(added["lstrip"], is_mask, "{added}");
    }
}
