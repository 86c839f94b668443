//! Reading and tokenizing a corpus.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::error::{Result, TrainError};

/// Documents of sentences of token ids (no special tokens).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Corpus {
    pub documents: Vec<Vec<Vec<u32>>>,
}

impl Corpus {
    /// Splits ALBERT-format text into documents of sentences: one sentence per line, documents
    /// separated by blank lines.
    pub fn split_documents(text: &str) -> Vec<Vec<&str>> {
        let mut documents = Vec::new();
        let mut current = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                if !current.is_empty() {
                    documents.push(std::mem::take(&mut current));
                }
            } else {
                current.push(line);
            }
        }
        if !current.is_empty() {
            documents.push(current);
        }
        documents
    }

    /// Reads and tokenizes text files; empty sentences (after tokenization) are dropped.
    pub fn load(files: &[&Path], tokenizer: &Tokenizer) -> Result<Self> {
        let mut documents = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|e| albert_core::AlbertError::Io {
                path: file.to_path_buf(),
                source: e,
            })?;
            for doc in Self::split_documents(&text) {
                let encodings =
                    tokenizer
                        .encode_batch(doc, false)
                        .map_err(|e| TrainError::BadInput {
                            name: "corpus",
                            message: format!("{}: tokenizing: {e}", file.display()),
                        })?;
                let sentences: Vec<Vec<u32>> = encodings
                    .into_iter()
                    .map(|e| e.get_ids().to_vec())
                    .filter(|ids| !ids.is_empty())
                    .collect();
                if !sentences.is_empty() {
                    documents.push(sentences);
                }
            }
        }
        if documents.is_empty() {
            return Err(TrainError::BadInput {
                name: "corpus",
                message: format!(
                    "no text in {}",
                    files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(Corpus { documents })
    }

    pub fn tokens(&self) -> usize {
        self.documents.iter().flatten().map(Vec::len).sum()
    }
}
