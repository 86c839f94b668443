//! `albert-train tokenizer`: an ALBERT-style unigram tokenizer trained on text files.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub(crate) struct TokenizerArgs {
    /// Text files (one sentence or paragraph per line).
    #[arg(long, required = true, num_args = 1..)]
    corpus: Vec<PathBuf>,
    /// Vocabulary size, special tokens included.
    #[arg(long, default_value_t = 30000)]
    vocab_size: usize,
    /// Output tokenizer.json.
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn tokenizer_command(args: &TokenizerArgs) -> Result<()> {
    let files: Vec<&std::path::Path> = args.corpus.iter().map(PathBuf::as_path).collect();
    let tokenizer = albert_core::tokenizer::train_unigram(&files, args.vocab_size)?;
    albert_core::tokenizer::save(&tokenizer, &args.output)?;
    println!(
        "wrote {} ({} pieces; <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4)",
        args.output.display(),
        tokenizer.get_vocab_size(true)
    );
    Ok(())
}
