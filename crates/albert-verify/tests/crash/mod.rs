//! Crash safety, shared by the tests that kill our tools (albert-verify's `crash_safety.rs` for
//! `albert-export` and `albert-convert`, albert-train's for `albert-train`): a tool is started,
//! killed with SIGKILL at a moment drawn from a seeded schedule within the span of its writes,
//! and what it left on disk is checked: every file that was complete before is intact (the same
//! bytes) or replaced by its new complete version (the bytes of an uninterrupted run), every file
//! with a final name parses, and no directory with a final name is missing a file. Temporary names
//! are hidden (dot-prefixed, albert-core's fsutil), so "final name" means "not hidden".
//!
//! The seed is printed first and in every failure; `ALBERT_CRASH_SEED=<n>` draws another schedule.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// SplitMix64 (Steele, Lea and Flood 2014): a small seeded generator, enough for a schedule.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi.saturating_sub(lo)).mul_f64(unit)
    }
}

/// The schedule's seed: `ALBERT_CRASH_SEED`, else 19 (this number). The moments are
/// offsets from each start, so the same seed on another machine kills at the same offsets, not
/// necessarily in the same write.
pub fn seed() -> u64 {
    let seed = std::env::var("ALBERT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(19);
    println!("crash schedule seed {seed} (replay with ALBERT_CRASH_SEED={seed})");
    seed
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Every file under `dir` with a final name (no hidden component), by path relative to `dir`,
/// with its bytes.
pub fn final_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if hidden(&path) {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, found);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(dir, dir, &mut found);
    found
}

/// Whether the file at `path` parses as what its name says it is.
pub fn parses(path: &Path) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = || std::fs::read_to_string(path).map_err(|e| e.to_string());
    match name.as_str() {
        "config.json" => albert_core::AlbertConfig::from_file(path)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "tokenizer.json" => albert_core::tokenizer::load(path)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ if name.ends_with(".onnx") => albert_onnx::proto::read_model(path)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ if name.ends_with(".safetensors") => albert_core::checkpoint::read_safetensors(path)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ if name.ends_with(".json") => serde_json::from_str::<serde_json::Value>(&text()?)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        // An append-only log: whole lines, but for a last one a kill may cut short (its readers
        // skip it; albert-train's `--resume` rewrites the log with whole lines).
        _ if name.ends_with(".jsonl") => {
            let text = text()?;
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for (i, line) in lines.iter().enumerate() {
                let whole = line.ends_with('\n');
                if let Err(e) = serde_json::from_str::<serde_json::Value>(line.trim_end())
                    && (whole || i + 1 != lines.len())
                {
                    return Err(format!("line {}: {e}", i + 1));
                }
            }
            Ok(())
        }
        _ if name.ends_with(".svg") => {
            if text()?.trim_end().ends_with("</svg>") {
                Ok(())
            } else {
                Err("the SVG does not end with </svg>".into())
            }
        }
        // Read through the model that names it.
        _ if name.ends_with(".onnx.data") => Ok(()),
        _ => Err("a file this check does not know".into()),
    }
}

/// One tool's kill schedule, against the output of an uninterrupted run.
pub struct Schedule<'a> {
    pub seed: u64,
    /// The tool, for messages.
    pub label: &'a str,
    /// A fresh command for each run (the same every time).
    pub command: &'a dyn Fn() -> Command,
    /// The directory the tool writes.
    pub out: &'a Path,
    /// Files the tool reads, which must never change.
    pub inputs: &'a [PathBuf],
    /// Files (by name) that legitimately change from run to run (a log, a chart): only parsed.
    pub volatile: &'a [&'a str],
}

impl Schedule<'_> {
    fn fail(&self, context: &str, message: String) -> ! {
        panic!(
            "{}: {context}: {message} (crash schedule seed {}; replay with ALBERT_CRASH_SEED={})",
            self.label, self.seed, self.seed
        )
    }

    fn is_volatile(&self, path: &Path) -> bool {
        path.file_name()
            .is_some_and(|n| self.volatile.contains(&n.to_string_lossy().as_ref()))
    }

    /// Runs the tool to the end into `reference` (an empty directory) and returns what it wrote
    /// and the span of its writes: from the first entry in the directory to the process's exit.
    pub fn reference(&self, reference: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, Duration, Duration) {
        std::fs::create_dir_all(reference).unwrap();
        let mut command = (self.command)();
        rebase(&mut command, self.out, reference);
        let started = Instant::now();
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = None;
        let status = loop {
            if first.is_none() && std::fs::read_dir(reference).unwrap().next().is_some() {
                first = Some(started.elapsed());
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        let end = started.elapsed();
        if !status.success() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            self.fail("the uninterrupted run", stderr);
        }
        (final_files(reference), first.unwrap_or(end), end)
    }

    /// Kills the tool at moments drawn from `rng` within [start, end] of its writes, checking
    /// the output after each kill against what was there before and the uninterrupted run's
    /// `reference` files, until `kills` kills have landed while it ran (or `2 × kills` runs).
    /// A run that ended before its kill moment narrows the window for the next ones (×0.7): on
    /// a shared machine a run can be much faster than the reference was. Returns how many kills
    /// came before the tool's end.
    pub fn run(
        &self,
        rng: &mut Rng,
        kills: usize,
        (reference, start, end): &(BTreeMap<PathBuf, Vec<u8>>, Duration, Duration),
    ) -> usize {
        let inputs: Vec<(PathBuf, Vec<u8>)> = self
            .inputs
            .iter()
            .map(|p| (p.clone(), std::fs::read(p).unwrap()))
            .collect();
        let mut before = final_files(self.out);
        let mut interrupted = 0;
        let mut scale = 1.0;
        for kill in 0..2 * kills {
            if interrupted == kills {
                break;
            }
            // A little before the first write too: a kill during start-up must change nothing.
            let at = rng.between(start.mul_f64(0.8 * scale), end.mul_f64(scale));
            let context = format!("kill {kill} at {:.1} ms", at.as_secs_f64() * 1e3);
            let mut child = (self.command)()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(at);
            if child.try_wait().unwrap().is_none() {
                interrupted += 1;
            } else {
                scale *= 0.7;
            }
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();

            for (path, bytes) in &inputs {
                if &std::fs::read(path).unwrap_or_default() != bytes {
                    self.fail(&context, format!("the input {} changed", path.display()));
                }
            }
            let after = final_files(self.out);
            for (name, bytes) in &after {
                let path = self.out.join(name);
                if let Err(e) = parses(&path) {
                    self.fail(&context, format!("{} does not parse: {e}", path.display()));
                }
                if self.is_volatile(name) {
                    continue;
                }
                let old = before.get(name) == Some(bytes);
                let new = reference.get(name) == Some(bytes);
                if !old && !new {
                    self.fail(
                        &context,
                        format!(
                            "{} is neither the complete file that was there before nor the new one",
                            path.display()
                        ),
                    );
                }
            }
            // A directory with a final name has every file the uninterrupted run put in it.
            for dir in after
                .keys()
                .filter_map(|n| n.parent())
                .filter(|d| !d.as_os_str().is_empty())
            {
                for expected in reference.keys().filter(|n| n.parent() == Some(dir)) {
                    if !after.contains_key(expected) {
                        self.fail(
                            &context,
                            format!("{} is missing from {}", expected.display(), dir.display()),
                        );
                    }
                }
            }
            // A complete file disappears only with its whole directory (a pruned checkpoint).
            for name in before.keys().filter(|n| !self.is_volatile(n)) {
                let dir_gone = name
                    .parent()
                    .is_some_and(|d| !d.as_os_str().is_empty() && !self.out.join(d).exists());
                if !after.contains_key(name) && !dir_gone {
                    self.fail(&context, format!("{} disappeared", name.display()));
                }
            }
            before = after;
        }
        interrupted
    }
}

/// Points `command`'s arguments at `to` instead of `from` (the reference run writes elsewhere).
fn rebase(command: &mut Command, from: &Path, to: &Path) {
    let program = command.get_program().to_owned();
    let from = from.to_string_lossy().into_owned();
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().replace(&from, &to.to_string_lossy()))
        .collect();
    let mut rebased = Command::new(program);
    rebased.args(args);
    *command = rebased;
}
