//! Byte offsets of log files, keyed by content fingerprint, persisted
//! atomically in the state dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::write_atomically;

/// File name of the checkpoints inside the state dir.
pub const CHECKPOINT_FILE: &str = "checkpoints.json";

/// Entries not touched for this long are forgotten.
const RETENTION_DAYS: i64 = 30;

/// Where reading of one file stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Bytes of the file already handed on.
    pub offset: u64,
    /// The path the file had when last read (informational).
    pub path: PathBuf,
    /// When this entry last changed.
    pub updated: DateTime<Utc>,
}

/// All checkpoints of one agent.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoints {
    /// Fingerprint (hex) → checkpoint.
    pub files: BTreeMap<String, Checkpoint>,
}

impl Checkpoints {
    /// Reads the checkpoints; an absent file is an empty set, a damaged one an error.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(CHECKPOINT_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "damaged checkpoint file {}: {e}; move it away to re-read all logs from the start",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Persists the checkpoints atomically.
    pub fn save(&mut self, state_dir: &Path) -> anyhow::Result<()> {
        let cutoff = Utc::now() - Duration::days(RETENTION_DAYS);
        self.files.retain(|_, c| c.updated > cutoff);
        let json = serde_json::to_vec_pretty(self)?;
        write_atomically(&state_dir.join(CHECKPOINT_FILE), &json, 0o600)
    }

    /// The offset stored for a fingerprint.
    pub fn offset(&self, fingerprint: &str) -> Option<u64> {
        self.files.get(fingerprint).map(|c| c.offset)
    }

    /// Records an offset.
    pub fn set(&mut self, fingerprint: &str, offset: u64, path: &Path) {
        self.files.insert(
            fingerprint.to_string(),
            Checkpoint {
                offset,
                path: path.to_owned(),
                updated: Utc::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Checkpoints::default();
        c.set("abcd", 42, Path::new("/var/log/auth.log"));
        c.save(dir.path()).unwrap();
        let back = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(back.offset("abcd"), Some(42));
        assert_eq!(back.offset("ffff"), None);
    }

    #[test]
    fn damaged_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"{not json").unwrap();
        let err = Checkpoints::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("damaged checkpoint"));
    }
}
