//! Atomic writes: a reader — or a run restarted after a crash — never sees a half-written model
//! file or checkpoint under its final name.
//!
//! Files are written to a temporary name beside their destination, synced, then renamed over it
//! ([`write_atomic`], [`write_atomic_with`]); `rename` within one directory replaces the name in
//! one step, so the name shows the old complete file or the new complete file. Directories
//! (checkpoints) are staged the same way and swapped in by [`replace_dir`], which never leaves a
//! moment without a complete copy: the old one is moved aside before the new one moves in, and
//! [`recover_dir`] puts an aside copy back when a crash came between the two renames.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use crate::error::{AlbertError, Result};

/// A name beside `path` that no other writer uses: hidden (dot-prefixed, so no listing of final
/// names shows it), with the process id and a per-process counter (two threads of one process
/// may write the same file).
pub fn temp_path(path: &Path, tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    dir.join(format!(".{name}.{tag}-{}-{n}", std::process::id()))
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, then renames it over `path`.
/// On any error the temporary file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        let mut file = std::fs::File::create(tmp).map_err(|e| AlbertError::io(path, e))?;
        file.write_all(bytes).map_err(|e| AlbertError::io(path, e))
    })
}

/// Like [`write_atomic`] for writers that stream to a path of their own (safetensors, an ONNX
/// model with external data, a drawn chart): `write` creates and fills the temporary path it is
/// given; the file is then synced and renamed over `path`. On any error the temporary file is
/// removed and `path` is left as it was.
pub fn write_atomic_with<E: From<AlbertError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let tmp = temp_path(path, "tmp");
    let result = write(&tmp).and_then(|()| {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| E::from(AlbertError::io(path, e)))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Where [`replace_dir`] keeps the previous copy of `target` while it swaps in a new one.
fn aside_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dir".to_string());
    target.with_file_name(format!(".{name}.old"))
}

/// A fresh, empty temporary directory beside `target` to stage its next copy in (hand it to
/// [`replace_dir`] once complete).
pub fn staging_dir(target: &Path) -> Result<PathBuf> {
    let staged = temp_path(target, "tmp");
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(&staged).map_err(|e| AlbertError::io(&staged, e))?;
    Ok(staged)
}

/// Moves the complete directory `staged` to `target`, replacing any previous `target` so that a
/// complete copy exists at every moment: the old copy is renamed aside, the new one renamed into
/// place, and only then is the old one deleted. A crash between the two renames leaves the old
/// copy aside, which [`recover_dir`] restores.
pub fn replace_dir(staged: &Path, target: &Path) -> Result<()> {
    replace_dir_steps(staged, target, |_| false)
}

/// [`replace_dir`]'s steps, stopping before step `i` (0, 1 or 2) where `crash(i)` says so, as a
/// killed process would: the crash-safety tests below stop it at each step.
fn replace_dir_steps(
    staged: &Path,
    target: &Path,
    mut crash: impl FnMut(usize) -> bool,
) -> Result<()> {
    let aside = aside_path(target);
    if crash(0) {
        return Ok(());
    }
    let had_target = target.exists();
    if had_target {
        // An aside copy left by an earlier crash is older than `target` (recover_dir restores it
        // only when `target` is missing).
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(target, &aside).map_err(|e| AlbertError::io(target, e))?;
    }
    if crash(1) {
        return Ok(());
    }
    if let Err(e) = std::fs::rename(staged, target) {
        if had_target {
            let _ = std::fs::rename(&aside, target);
        }
        return Err(AlbertError::io(target, e));
    }
    if crash(2) {
        return Ok(());
    }
    match std::fs::remove_dir_all(&aside) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AlbertError::io(&aside, e)),
        _ => Ok(()),
    }
}

/// Finishes a [`replace_dir`] that a crash interrupted: when `target` is missing and its previous
/// copy is aside, puts that copy back; when both exist, removes the aside copy. Returns whether a
/// copy was restored.
pub fn recover_dir(target: &Path) -> Result<bool> {
    let aside = aside_path(target);
    if !aside.exists() {
        return Ok(false);
    }
    if target.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| AlbertError::io(&aside, e))?;
        return Ok(false);
    }
    std::fs::rename(&aside, target).map_err(|e| AlbertError::io(target, e))?;
    Ok(true)
}

/// Parses a JSON document of type `T`; errors name `origin` and the field at fault (its path, as
/// `epoch` or `layers[2].name`), whether it is missing, of the wrong type or cut short.
pub fn parse_json<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(de).map_err(|e| AlbertError::ConfigField {
        path: origin.to_path_buf(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    Ok(value)
}

/// Reads and parses the JSON file `path` (see [`parse_json`]).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| AlbertError::io(path, e))?;
    parse_json(&text, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn staged_with(target: &Path, text: &str) -> PathBuf {
        let staged = staging_dir(target).unwrap();
        std::fs::write(staged.join("weights"), text).unwrap();
        staged
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(AlbertError::io(tmp, std::io::Error::other("disk full")))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["config.json"]);
    }

    #[test]
    fn replace_dir_swaps_in_the_new_copy_and_removes_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("best");
        replace_dir(&staged_with(&target, "1"), &target).unwrap();
        replace_dir(&staged_with(&target, "2"), &target).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("weights")).unwrap(),
            "2"
        );
        assert_eq!(names(dir.path()), ["best"]);
    }

    /// A crash before each step of the swap (as SIGKILL would stop it), then start-up recovery:
    /// a complete copy — the old or the new — is always there. Deleting the old copy before
    /// renaming the new one in (what fine-tuning did) fails this at the crash before step 1.
    #[test]
    fn a_crash_at_any_step_of_the_swap_leaves_a_complete_copy_after_recovery() {
        for crash_at in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("best");
            replace_dir(&staged_with(&target, "1"), &target).unwrap();
            let staged = staged_with(&target, "2");
            replace_dir_steps(&staged, &target, |step| step == crash_at).unwrap();
            recover_dir(&target).unwrap();
            let kept = std::fs::read_to_string(target.join("weights"))
                .unwrap_or_else(|e| panic!("crash before step {crash_at}: no best copy ({e})"));
            assert_eq!(kept, if crash_at < 2 { "1" } else { "2" }, "{crash_at}");
            assert!(!aside_path(&target).exists(), "{crash_at}");
            // The next save swaps cleanly over whatever the crash left.
            replace_dir(&staged_with(&target, "3"), &target).unwrap();
            assert_eq!(
                std::fs::read_to_string(target.join("weights")).unwrap(),
                "3"
            );
            assert!(!aside_path(&target).exists(), "{crash_at}");
        }
    }

    #[test]
    fn json_errors_name_the_file_and_the_field() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct State {
            step: u64,
            epoch: u64,
        }
        let origin = Path::new("run/trainer_state.json");
        let missing = parse_json::<State>(r#"{"step": 1}"#, origin).unwrap_err();
        let typed = parse_json::<State>(r#"{"step": 1, "epoch": "x"}"#, origin).unwrap_err();
        for (err, field) in [(missing, "epoch"), (typed, "epoch")] {
            let text = err.to_string();
            assert!(
                text.contains("trainer_state.json") && text.contains(field),
                "{text}"
            );
        }
    }
}
