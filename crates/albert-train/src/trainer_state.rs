//! `trainer_state.json`: where a pretraining run stood when it saved a checkpoint, the part of
//! exact resume that is not tensors (the weights and the optimizer's moments are safetensors
//! beside it). One typed definition, written by the checkpoint writer and read by `--resume`; a
//! damaged file fails naming the file and the field instead of resuming from defaults.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// The file's name inside a checkpoint directory.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";

/// The contents of `trainer_state.json`. Every field is required and no other is accepted: a
/// field this version does not know means a file from another program or a newer layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// Optimizer steps of the schedule done (the checkpoint's `checkpoint-<step>` name).
    pub step: u64,
    /// Epoch of the training stream's next example.
    pub epoch: u64,
    /// Index of that example within its epoch.
    pub index: usize,
    /// The run's `--seed` (masking, shuffling, dropout and initialization derive from it).
    pub seed: u64,
    /// Steps the optimizer has taken (its bias correction depends on them).
    pub optimizer_steps: u64,
    /// The pretraining objective (`sop`, `nsp`, `none`).
    pub objective: String,
}

impl TrainerState {
    /// Writes `dir/trainer_state.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainError::BadInput {
            name: TRAINER_STATE_FILE,
            message: e.to_string(),
        })?;
        albert_core::write_atomic(&dir.join(TRAINER_STATE_FILE), text.as_bytes())?;
        Ok(())
    }

    /// Reads `dir/trainer_state.json`; errors name the file and the field at fault.
    pub fn read(dir: &Path) -> Result<Self> {
        Ok(albert_core::fsutil::read_json(
            &dir.join(TRAINER_STATE_FILE),
        )?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = TrainerState {
            step: 8,
            epoch: 1,
            index: 17,
            seed: 5,
            optimizer_steps: 8,
            objective: "sop".into(),
        };
        state.write(dir.path()).unwrap();
        assert_eq!(TrainerState::read(dir.path()).unwrap(), state);
    }

    #[test]
    fn an_unknown_field_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(TRAINER_STATE_FILE),
            r#"{"step":1,"epoch":0,"index":0,"seed":1,"optimizer_steps":1,"objective":"sop","epochs":3}"#,
        )
        .unwrap();
        let err = TrainerState::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(TRAINER_STATE_FILE) && err.contains("epochs"),
            "{err}"
        );
    }
}
