//! Checks that every command line the documentation shows for one of our binaries uses a
//! subcommand and flags that binary has, as its `--help` lists them (issue #20: the README's
//! commands must exist). Included with `#[path]` by each binary's CLI tests, which know where
//! cargo put the binary (`CARGO_BIN_EXE_*`).
//!
//! Scanned: `README.md`, `docs/*.md` and `crates/*/README.md`: every line of fenced blocks
//! marked `sh`, `bash` or `shell`, and the `$ `-prompted lines of unmarked, `console` and `text`
//! blocks (transcripts, whose other lines are output). A command is such a line (`\`
//! continuations joined, the prompt dropped) split at `|`, `&&`, `||` and `;`; it is ours when its
//! first word, after `NAME=value` assignments, ends in `/<binary>` or is `<binary>`. Optional
//! flags written as `[--flag …]` and alternatives as `--flag a|b` count as `--flag`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helper: a panic is the report

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One command line for the binary, where it was found.
#[derive(Debug)]
pub struct Shown {
    pub file: PathBuf,
    pub line: usize,
    pub words: Vec<String>,
}

/// The repository root, from a crate's tests (`crates/<name>`) or the e2e package (`tests/`).
fn repository_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the workspace root holds Cargo.lock")
        .to_path_buf()
}

/// The Markdown files the check reads.
pub fn documents(manifest_dir: &Path) -> Vec<PathBuf> {
    let root = repository_root(manifest_dir);
    let mut files = vec![root.join("README.md")];
    for dir in [root.join("docs"), root.join("crates")] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .flat_map(|path| {
                if path.is_dir() {
                    vec![path.join("README.md")]
                } else {
                    vec![path]
                }
            })
            .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "md"))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// Shell-like words: quotes group and are removed, an unquoted `#` starting a word ends the line.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None if c == '#' && !in_word => break,
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Every command line for `binary` in `file`.
pub fn commands_in(file: &Path, binary: &str) -> Vec<Shown> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut shown = Vec::new();
    // Inside a fence: Some(true) for a script (every line a command), Some(false) for a
    // transcript (only `$ ` lines), None outside or in other languages' blocks.
    let mut block: Option<Option<bool>> = None;
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            block = match block {
                Some(_) => None,
                None => Some(match info.trim() {
                    "sh" | "bash" | "shell" => Some(true),
                    "" | "console" | "text" => Some(false),
                    _ => None,
                }),
            };
            continue;
        }
        let Some(Some(script)) = block else { continue };
        let line = match (trimmed.strip_prefix("$ "), &pending) {
            (Some(command), _) => command,
            (None, Some(_)) => trimmed, // a continuation line
            (None, None) if script => trimmed,
            (None, None) => continue, // a transcript's output
        };
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if let Some(continued) = line.strip_suffix('\\') {
            joined.push_str(continued);
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(line);
        let all = words(&joined);
        for command in all.split(|w| matches!(w.as_str(), "|" | "&&" | "||" | ";")) {
            let mut rest = command.iter().skip_while(|w| {
                w.split_once('=').is_some_and(|(name, _)| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                })
            });
            let Some(program) = rest.next() else { continue };
            if program == binary || program.ends_with(&format!("/{binary}")) {
                shown.push(Shown {
                    file: file.to_path_buf(),
                    line: start,
                    words: rest.cloned().collect(),
                });
            }
        }
    }
    shown
}

fn help(binary: &Path, subcommand: Option<&str>) -> String {
    let mut command = Command::new(binary);
    command.args(subcommand).arg("--help");
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{} {subcommand:?} --help: {}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a clap `--help` lists under `Commands:`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Whether `help` lists `flag` (`--name` or `-x`) as a flag, not as part of a longer one.
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let before = help[..at].chars().next_back();
        let after = help[at + flag.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '-')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

/// The flag a documented word names: `--fuse`, from `[--fuse`, `--fuse=ort`, `--a|b]`.
fn flag_of(word: &str) -> Option<String> {
    let word = word.trim_start_matches('[');
    let dashes = if word.starts_with("--") {
        2
    } else if word.starts_with('-') {
        1
    } else {
        return None;
    };
    let name: String = word[dashes..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!name.is_empty() && name.chars().next().is_some_and(|c| c.is_alphabetic()))
        .then(|| format!("{}{name}", &word[..dashes]))
}

/// Checks every documented command line of `binary_name` against `binary --help`; panics with
/// every mismatch. Also fails when the documents show no command for it at all, so a renamed
/// binary or a moved document cannot make the check pass by finding nothing.
pub fn check(manifest_dir: &Path, binary_name: &str, binary: &Path) {
    let shown: Vec<Shown> = documents(manifest_dir)
        .iter()
        .flat_map(|file| commands_in(file, binary_name))
        .collect();
    assert!(
        !shown.is_empty(),
        "no command line for {binary_name} in the documentation"
    );
    let top = help(binary, None);
    let commands = subcommands(&top);
    let mut helps: HashMap<Option<String>, String> = HashMap::new();
    let mut problems = Vec::new();
    for command in &shown {
        let at = format!("{}:{}", command.file.display(), command.line);
        let mut words = command.words.iter().peekable();
        let subcommand = if commands.is_empty() {
            None
        } else {
            match words.peek() {
                Some(word) if !word.starts_with('-') && !word.starts_with('[') => {
                    let word = words.next().unwrap().clone();
                    if !commands.contains(&word) {
                        problems.push(format!("{at}: `{binary_name} {word}`: no such subcommand"));
                        continue;
                    }
                    Some(word)
                }
                _ => None,
            }
        };
        let text = helps
            .entry(subcommand.clone())
            .or_insert_with(|| help(binary, subcommand.as_deref()));
        for word in words {
            if let Some(flag) = flag_of(word)
                && flag != "--help"
                && !lists_flag(text, &flag)
            {
                let name = match &subcommand {
                    Some(s) => format!("{binary_name} {s}"),
                    None => binary_name.to_string(),
                };
                problems.push(format!("{at}: `{name}` has no flag {flag}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "documented commands that do not exist:\n{}",
        problems.join("\n")
    );
}
