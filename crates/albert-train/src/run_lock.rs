//! One trainer per output directory. Two `albert-train` processes writing the same run (a double
//! launch, a script started twice) would interleave their checkpoints and metric lines into a
//! run that neither of them trained; the second one is refused instead. The lock is an advisory
//! file lock (`flock` on Linux) on `.albert-train.lock` in the directory: the operating system
//! releases it when the process ends, however it ends, so a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::error::{Result, TrainError};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".albert-train.lock";

/// Holds the run directory's lock until it is dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock of `dir` (which must exist), or fails naming the directory when another
/// process holds it. `flag` is the command-line option that named the directory.
pub fn lock_run_dir(dir: &Path, flag: &'static str) -> Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| TrainError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(TrainError::BadInput {
            name: flag,
            message: format!(
                "{}: another albert-train process is writing to this directory (it holds {LOCK_FILE}); \
                 wait for it to finish or choose another directory",
                dir.display()
            ),
        }),
        Err(TryLockError::Error(e)) => Err(TrainError::io(&path, e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_run_dir(dir.path(), "--output").unwrap();
        // A second open file description conflicts with the first, as another process would.
        let err = lock_run_dir(dir.path(), "--output")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--output") && err.contains("another albert-train process"),
            "{err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        lock_run_dir(dir.path(), "--output").unwrap();
    }
}
