//! Structured fuzzing of every loader of untrusted input (issue #19, docs/hardening.md).
//!
//! A target is a test that runs a loader on inputs that proptest generates, mostly mutations of
//! real files (byte edits, JSON edits, ONNX graph edits). The property is always the same: the
//! loader returns an error or a correct result; it never panics, hangs, or allocates far beyond
//! the input's size.
//!
//! [`run`] re-executes the test binary for just that test in a child process under a memory limit
//! (`ulimit -v`, so no `unsafe` here): an allocation the limit refuses aborts the child, which the
//! parent reports as a failure. Before each case the child writes the input to an in-flight file;
//! when the child aborts, or stops making progress for [`HANG_SECS_VAR`] seconds (a hang), the
//! parent keeps that input. A panic is caught by proptest, which shrinks the input first. Either
//! way the failing input is saved under `tests/fixtures/fuzz/<target>/`, and every later run of
//! the target replays those files before generating new inputs (the regression fixtures).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test harness: a panic is the failure report

use std::fmt::Debug;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

/// Inputs per target (default [`DEFAULT_CASES`], the `make test` slice; `make fuzz` sets more).
pub const CASES_VAR: &str = "ALBERT_FUZZ_CASES";
/// Stop a target after this many seconds even if [`CASES_VAR`] inputs are not done (unset: none).
pub const SECS_VAR: &str = "ALBERT_FUZZ_SECS";
/// The generator's seed (default: fixed, so the `make test` slice is the same inputs every run).
pub const SEED_VAR: &str = "ALBERT_FUZZ_SEED";
/// The child's address-space limit in MiB (default [`DEFAULT_MEM_MIB`]).
pub const MEM_VAR: &str = "ALBERT_FUZZ_MEM_MIB";
/// Seconds without a finished case after which the child counts as hung (default 60).
pub const HANG_SECS_VAR: &str = "ALBERT_FUZZ_HANG_SECS";

pub const DEFAULT_CASES: u64 = 500;
/// Far beyond any input here (at most a few MB) and far below what a header claiming a huge
/// tensor asks for, yet above what the test binary maps (tract, ONNX Runtime, thread stacks).
pub const DEFAULT_MEM_MIB: u64 = 3072;
const DEFAULT_SEED: u64 = 19;
/// Cases per proptest runner; each chunk has its own seed so a time limit can stop between them.
const CHUNK: u64 = 250;

const CHILD_VAR: &str = "ALBERT_FUZZ_CHILD";
const INFLIGHT_VAR: &str = "ALBERT_FUZZ_INFLIGHT";

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
    )
}

/// The repository's regression fixtures of a target.
pub fn fixtures_dir(target: &str) -> PathBuf {
    crate::root().join("tests/fixtures/fuzz").join(target)
}

/// What a check says about one input: `Ok` when the loader refused it or returned a correct
/// result, `Err(why)` when the result is wrong.
pub type Verdict = std::result::Result<(), String>;

/// Runs fuzz target `target` (the name of the calling test function, which must be at the test
/// binary's top level): `strategy` generates inputs, `render` turns one into the bytes that are
/// saved and replayed, `check` runs the loader on bytes.
pub fn run<S>(
    target: &str,
    strategy: S,
    render: fn(&S::Value) -> Vec<u8>,
    check: fn(&[u8]) -> Verdict,
) where
    S: Strategy,
    S::Value: Debug,
{
    if std::env::var(CHILD_VAR).as_deref() == Ok(target) {
        child(target, strategy, render, check);
    } else {
        parent(target);
    }
}

fn parent(target: &str) {
    let mem_mib = env_u64(MEM_VAR).unwrap_or(DEFAULT_MEM_MIB);
    let hang = Duration::from_secs(env_u64(HANG_SECS_VAR).unwrap_or(60));
    let work = tempfile::tempdir().unwrap();
    let inflight = work.path().join("inflight");
    let exe = std::env::current_exe().unwrap();
    // `ulimit -v` is inherited by the test binary that `exec` starts: every allocation of the
    // target then counts against the limit, and one the limit refuses aborts the child.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {} && exec \"$0\" \"$@\"",
            mem_mib * 1024
        ))
        .arg(&exe)
        .args([target, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, target)
        .env(INFLIGHT_VAR, &inflight)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let last = std::fs::metadata(&inflight)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        if last.elapsed().unwrap_or_default() > hang {
            let _ = child.kill();
            let _ = child.wait();
            let saved = keep(target, &std::fs::read(&inflight).unwrap_or_default());
            panic!(
                "fuzz target `{target}`: no progress for {hang:?} (a hang); input saved as {}",
                saved.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if status.success() {
        return;
    }
    // A panic was shrunk and saved by the child itself; anything else (an abort on a refused
    // allocation, a stack overflow) left the input in flight.
    if status.code() == Some(101) {
        panic!("fuzz target `{target}` failed (its input is saved above)");
    }
    let saved = keep(target, &std::fs::read(&inflight).unwrap_or_default());
    panic!(
        "fuzz target `{target}`: the child died ({status}; an allocation beyond {mem_mib} MiB, a \
         stack overflow or an abort); input saved as {}",
        saved.display()
    );
}

/// Saves a failing input as a regression fixture, named by its content.
fn keep(target: &str, bytes: &[u8]) -> PathBuf {
    let dir = fixtures_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    // FNV-1a: a stable name, so the same input is saved once.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = dir.join(format!("{hash:016x}.bin"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn child<S>(
    target: &str,
    strategy: S,
    render: fn(&S::Value) -> Vec<u8>,
    check: fn(&[u8]) -> Verdict,
) where
    S: Strategy,
    S::Value: Debug,
{
    let inflight = PathBuf::from(std::env::var_os(INFLIGHT_VAR).unwrap());
    let mark = |bytes: &[u8]| {
        // Written (not only touched) so the parent can keep the input if this case kills us.
        let mut file = std::fs::File::create(&inflight).unwrap();
        file.write_all(bytes).unwrap();
    };
    let started = Instant::now();

    let mut replayed = 0;
    if let Ok(entries) = std::fs::read_dir(fixtures_dir(target)) {
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            mark(&bytes);
            if let Err(why) = check(&bytes) {
                panic!("regression fixture {}: {why}", file.display());
            }
            replayed += 1;
        }
    }

    let cases = env_u64(CASES_VAR).unwrap_or(DEFAULT_CASES);
    let deadline = env_u64(SECS_VAR).map(Duration::from_secs);
    let seed = env_u64(SEED_VAR).unwrap_or(DEFAULT_SEED);
    let tried = std::cell::Cell::new(0u64);
    let mut chunk = 0;
    while tried.get() < cases && deadline.is_none_or(|d| started.elapsed() < d) {
        let config = Config {
            cases: (cases - tried.get()).min(CHUNK) as u32,
            failure_persistence: None,
            rng_seed: RngSeed::Fixed(seed.wrapping_mul(1_000_003).wrapping_add(chunk)),
            max_shrink_time: 120_000,
            ..Config::default()
        };
        chunk += 1;
        let mut runner = TestRunner::new(config);
        let result = runner.run(&strategy, |value| {
            let bytes = render(&value);
            mark(&bytes);
            tried.set(tried.get() + 1);
            check(&bytes).map_err(TestCaseError::fail)
        });
        match result {
            Ok(()) => {}
            Err(TestError::Fail(why, value)) => {
                let saved = keep(target, &render(&value));
                panic!(
                    "fuzz target `{target}` (seed {seed}): {why}\ninput saved as {}\n{value:?}",
                    saved.display()
                );
            }
            Err(TestError::Abort(why)) => panic!("fuzz target `{target}`: aborted: {why}"),
        }
    }
    println!(
        "fuzz target `{target}`: {replayed} regression fixtures, {} generated inputs (seed {seed}) \
         in {:.1} s",
        tried.get(),
        started.elapsed().as_secs_f64()
    );
}

/// Writes `bytes` as `name` in a fresh temporary directory (for loaders that read a path).
pub fn in_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

// ---------------------------------------------------------------------------------------------
// Mutations of bytes

/// Values that often sit at a boundary of a length or an offset, little-endian in the edit.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 40,
    (1 << 53) + 1,
    i64::MAX as u64,
    u64::MAX,
];

/// One edit of a byte string; positions are taken relative to its length when applied.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    Set(Index, u8),
    /// An [`INTERESTING`] value written over 1, 2, 4 or 8 bytes.
    Number(Index, Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
    /// A copy of a slice of the input, inserted elsewhere (repeats structure).
    Repeat(Index, usize, Index),
}

pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        (
            any::<Index>(),
            any::<Index>(),
            prop::sample::select(vec![1u8, 2, 4, 8])
        )
            .prop_map(|(i, v, w)| ByteEdit::Number(i, v, w)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
        any::<Index>().prop_map(ByteEdit::Truncate),
        (any::<Index>(), 1usize..256, any::<Index>())
            .prop_map(|(i, n, j)| ByteEdit::Repeat(i, n, j)),
    ]
}

fn at(index: &Index, len: usize) -> usize {
    // `Index::index` wants a non-empty range; position `len` (the end) is a valid place too.
    index.index(len + 1)
}

pub fn apply_bytes(bytes: &mut Vec<u8>, edits: &[ByteEdit]) {
    for edit in edits {
        let len = bytes.len();
        match edit {
            ByteEdit::Set(i, b) => {
                if len > 0 {
                    bytes[i.index(len)] = *b;
                }
            }
            ByteEdit::Number(i, v, width) => {
                let value = INTERESTING[v.index(INTERESTING.len())].to_le_bytes();
                let start = at(i, len);
                let end = (start + usize::from(*width)).min(len);
                bytes[start..end].copy_from_slice(&value[..end - start]);
            }
            ByteEdit::Insert(i, b) => {
                let start = at(i, len);
                bytes.splice(start..start, b.iter().copied());
            }
            ByteEdit::Remove(i, n) => {
                let start = at(i, len);
                bytes.drain(start..(start + n).min(len));
            }
            ByteEdit::Truncate(i) => bytes.truncate(at(i, len)),
            ByteEdit::Repeat(i, n, j) => {
                let start = at(i, len);
                let piece = bytes[start..(start + n).min(len)].to_vec();
                let to = at(j, len);
                bytes.splice(to..to, piece);
            }
        }
    }
}

/// A seed with up to `max_edits` byte edits.
pub fn mutated_bytes(seeds: Vec<Vec<u8>>, max_edits: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(byte_edit(), 0..=max_edits),
    )
        .prop_map(|(mut bytes, edits)| {
            apply_bytes(&mut bytes, &edits);
            bytes
        })
}

// ---------------------------------------------------------------------------------------------
// Mutations of JSON documents

/// JSON values a careless or hostile writer puts where a field is expected.
pub fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(INTERESTING.to_vec()).prop_map(|v| json!(v)),
        prop::sample::select(vec![-1i64, -2, i64::MIN, 2, 3, 4, 5, 7, 8, 16, 64, 512])
            .prop_map(|v| json!(v)),
        prop::sample::select(vec![0.5f64, -0.0, 1e308, -1e308, 1e-320, 3.0]).prop_map(|v| json!(v)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "",
            "[CLS]",
            "[SEP]",
            "[MASK]",
            "<pad>",
            "<unk>",
            "F32",
            "F16",
            "BF16",
            "I64",
            "U8",
            "gelu",
            "gelu_new",
            "relu",
            "all",
            "none",
            "Unigram",
            "BPE",
            "WordPiece",
        ])
        .prop_map(|s| Value::String(s.to_string())),
        prop::collection::vec(prop::sample::select(INTERESTING.to_vec()), 0..4)
            .prop_map(|v| json!(v)),
        Just(json!({})),
        Just(json!([])),
    ]
}

/// One edit of a JSON document at a node chosen among all of its nodes (in document order).
#[derive(Debug, Clone)]
pub enum JsonEdit {
    Replace(Index, serde_json::Value),
    Remove(Index),
    /// A new member (objects) or element (arrays) in the chosen container.
    Add(Index, String, serde_json::Value),
}

pub fn json_edit() -> impl Strategy<Value = JsonEdit> {
    prop_oneof![
        4 => (any::<Index>(), json_leaf()).prop_map(|(i, v)| JsonEdit::Replace(i, v)),
        2 => any::<Index>().prop_map(JsonEdit::Remove),
        1 => (any::<Index>(), "[a-z_]{1,12}", json_leaf()).prop_map(|(i, k, v)| JsonEdit::Add(i, k, v)),
    ]
}

fn pointers(value: &serde_json::Value, here: String, out: &mut Vec<String>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{here}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{here}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(here);
}

pub fn apply_json(doc: &mut serde_json::Value, edits: &[JsonEdit]) {
    use serde_json::Value;
    for edit in edits {
        let mut all = Vec::new();
        pointers(doc, String::new(), &mut all);
        let pick = |i: &Index| all[i.index(all.len())].clone();
        match edit {
            JsonEdit::Replace(i, v) => {
                if let Some(node) = doc.pointer_mut(&pick(i)) {
                    *node = v.clone();
                }
            }
            JsonEdit::Remove(i) => {
                let pointer = pick(i);
                let Some((parent, last)) = pointer.rsplit_once('/') else {
                    continue;
                };
                let key = last.replace("~1", "/").replace("~0", "~");
                match doc.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&key);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(n) = key.parse::<usize>()
                            && n < items.len()
                        {
                            items.remove(n);
                        }
                    }
                    _ => {}
                }
            }
            JsonEdit::Add(i, k, v) => match doc.pointer_mut(&pick(i)) {
                Some(Value::Object(map)) => {
                    map.insert(k.clone(), v.clone());
                }
                Some(Value::Array(items)) => items.push(v.clone()),
                _ => {}
            },
        }
    }
}

/// A JSON seed with up to `max_edits` JSON edits, then (one case in four) a few byte edits of its
/// text.
pub fn mutated_json(
    seeds: Vec<serde_json::Value>,
    max_edits: usize,
) -> impl Strategy<Value = (serde_json::Value, Vec<JsonEdit>, Vec<ByteEdit>)> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(json_edit(), 0..=max_edits),
        prop_oneof![3 => Just(Vec::new()), 1 => prop::collection::vec(byte_edit(), 1..4)],
    )
}

pub fn render_json(input: &(serde_json::Value, Vec<JsonEdit>, Vec<ByteEdit>)) -> Vec<u8> {
    let (seed, json_edits, byte_edits) = input;
    let mut doc = seed.clone();
    apply_json(&mut doc, json_edits);
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap();
    apply_bytes(&mut bytes, byte_edits);
    bytes
}
