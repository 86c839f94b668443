//! Tokenizers: loading any HF `tokenizer.json`, and training an ALBERT-style SentencePiece unigram
//! model with the `tokenizers` crate: ALBERT's normalization (the `` / '' quote replacements, NFKD,
//! accents stripped, lowercase), `▁`-prefixed pieces, and the special tokens laid out as
//! `albert-base-v2`'s (`<pad>` = 0, `<unk>` = 1, `[CLS]` = 2, `[SEP]` = 3, `[MASK]` = 4), with
//! `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` templates (segment B has token type 1).

use std::path::Path;

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::normalizers::{Lowercase, NFKD, Replace, Sequence, StripAccents};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{AlbertError, Result};

pub const PAD: &str = "<pad>";
pub const UNK: &str = "<unk>";
pub const CLS: &str = "[CLS]";
pub const SEP: &str = "[SEP]";
pub const MASK: &str = "[MASK]";
/// In id order: `<pad>` = 0 … `[MASK]` = 4.
pub const SPECIAL_TOKENS: [&str; 5] = [PAD, UNK, CLS, SEP, MASK];

fn tokenizer_error(path: &Path, e: impl std::fmt::Display) -> AlbertError {
    AlbertError::Tokenizer {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Loads a `tokenizer.json` (ours or any HF one).
pub fn load(path: &Path) -> Result<Tokenizer> {
    if !path.exists() {
        return Err(AlbertError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer file not found"),
        ));
    }
    // tokenizers 0.22.2 panics on some malformed `decoder` sections (an unwrap in
    // decoders/mod.rs) instead of returning its error: a broken file must be an error here, not a
    // crash of the program that loads it (tests/fixtures/fuzz/tokenizer).
    std::panic::catch_unwind(|| Tokenizer::from_file(path))
        .map_err(|_| tokenizer_error(path, "the tokenizers crate panicked while reading it"))?
        .map_err(|e| tokenizer_error(path, e))
}

/// The first of `ids` outside a model's vocabulary of `vocab_size` (config.json's): the one rule
/// for a tokenizer that is not the model's. The runtime applies it to each encoding, the exporter
/// and the converter to every id a tokenizer has ([`load_for`]) before copying it.
pub fn id_outside_vocab(ids: impl IntoIterator<Item = u32>, vocab_size: usize) -> Option<u32> {
    ids.into_iter().find(|&id| id as usize >= vocab_size)
}

/// Loads a `tokenizer.json` and checks that every id it has (added tokens included) fits a
/// model's vocabulary of `vocab_size`; the error names the file, the token and the id.
pub fn load_for(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    let tokenizer = load(path)?;
    let vocab = tokenizer.get_vocab(true);
    let outside = id_outside_vocab(vocab.values().copied().max(), vocab_size);
    if let Some(id) = outside {
        let token = tokenizer.id_to_token(id).unwrap_or_default();
        return Err(tokenizer_error(
            path,
            format!(
                "{} tokens, the highest id {id} (`{token}`) is outside the model's vocabulary of \
                 {vocab_size} (config.json vocab_size); is it the model's tokenizer?",
                vocab.len()
            ),
        ));
    }
    Ok(tokenizer)
}

/// Trains an ALBERT-style unigram tokenizer of `vocab_size` pieces (special tokens included) on
/// text files. The trainer's choice among equally likely single-character pieces is not
/// deterministic, so ids of a fresh vocabulary may differ from run to run.
pub fn train_unigram(files: &[&Path], vocab_size: usize) -> Result<Tokenizer> {
    let origin = files.first().copied().unwrap_or(Path::new("<no corpus>"));
    let err = |e: tokenizers::Error| tokenizer_error(origin, e);
    let mut tokenizer = Tokenizer::new(Unigram::default());
    tokenizer.with_normalizer(Some(Sequence::new(vec![
        Replace::new("``", "\"").map_err(err)?.into(),
        Replace::new("''", "\"").map_err(err)?.into(),
        NFKD.into(),
        StripAccents.into(),
        Lowercase.into(),
    ])));
    tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::Always, true)));
    tokenizer.with_decoder(Some(MetaspaceDecoder::new(
        '▁',
        PrependScheme::Always,
        true,
    )));
    // `[MASK]` takes the space before it, as in HF's `AlbertTokenizerFast` (`lstrip=True`): in
    // "the [MASK]." the space would otherwise become a lone `▁` piece before the mask, which
    // pretraining never shows the model (it masks whole pieces, `▁` included), and fill-mask
    // answers degrade to punctuation.
    let specials: Vec<AddedToken> = SPECIAL_TOKENS
        .iter()
        .map(|t| AddedToken::from(*t, true).lstrip(*t == MASK))
        .collect();
    let mut trainer: TrainerWrapper = UnigramTrainer::builder()
        .vocab_size(vocab_size as u32)
        .special_tokens(specials)
        .unk_token(Some(UNK.to_string()))
        .show_progress(false)
        .build()
        .map_err(|e| tokenizer_error(origin, e))?
        .into();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    for f in files {
        if !f.exists() {
            return Err(AlbertError::io(
                *f,
                std::io::Error::new(std::io::ErrorKind::NotFound, "corpus file not found"),
            ));
        }
    }
    tokenizer
        .train_from_files(&mut trainer, names)
        .map_err(err)?;
    for (expected, token) in SPECIAL_TOKENS.iter().enumerate() {
        if tokenizer.token_to_id(token) != Some(expected as u32) {
            return Err(tokenizer_error(
                origin,
                format!("special token {token} did not get id {expected}"),
            ));
        }
    }
    let template = TemplateProcessing::builder()
        .try_single(format!("{CLS} $A {SEP}"))
        .map_err(|e| tokenizer_error(origin, e))?
        .try_pair(format!("{CLS} $A {SEP} $B:1 {SEP}:1"))
        .map_err(|e| tokenizer_error(origin, e))?
        .special_tokens(vec![(CLS, 2), (SEP, 3)])
        .build()
        .map_err(|e| tokenizer_error(origin, e))?;
    tokenizer.with_post_processor(Some(template));
    Ok(tokenizer)
}

/// Saves a tokenizer as `tokenizer.json`, atomically.
pub fn save(tokenizer: &Tokenizer, path: &Path) -> Result<()> {
    let json = tokenizer
        .to_string(true)
        .map_err(|e| tokenizer_error(path, e))?;
    crate::write_atomic(path, json.as_bytes())
}
