//! The file-integrity baseline: the last known size, mtime, inode and
//! SHA-256 of every watched file, persisted in the state dir as JSON
//! (written tmp → fsync → rename, so a crash leaves the old or the new one).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the baseline in the state dir.
pub const BASELINE_FILE: &str = "files-baseline.json";

/// What is known about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Inode number.
    pub inode: u64,
    /// Owner's name or uid.
    pub owner: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// Version of the YARA rules the files were last scanned with.
    rules_version: String,
    files: BTreeMap<String, Entry>,
}

/// The baseline of all watched trees.
#[derive(Debug)]
pub struct Baseline {
    path: PathBuf,
    stored: Stored,
    dirty: bool,
    existed: bool,
}

impl Baseline {
    /// Loads the baseline from `state_dir`, or starts an empty one. A damaged
    /// file is set aside (`.damaged`) and the baseline starts over, so the
    /// agent keeps running.
    pub fn load(state_dir: &Path) -> std::io::Result<Baseline> {
        let path = state_dir.join(BASELINE_FILE);
        let (stored, existed) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => (s, true),
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "file baseline is damaged; starting a new one");
                    let _ = std::fs::rename(&path, path.with_extension("json.damaged"));
                    (Stored::default(), false)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Stored::default(), false),
            Err(e) => return Err(e),
        };
        Ok(Baseline {
            path,
            stored,
            dirty: false,
            existed,
        })
    }

    /// Whether a baseline was on disk (false on the first start).
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The YARA rules version the files were last scanned with.
    pub fn rules_version(&self) -> &str {
        &self.stored.rules_version
    }

    /// Records the YARA rules version.
    pub fn set_rules_version(&mut self, v: &str) {
        if self.stored.rules_version != v {
            self.stored.rules_version = v.to_string();
            self.dirty = true;
        }
    }

    /// The entry of a path.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.stored.files.get(path)
    }

    /// Sets the entry of a path.
    pub fn insert(&mut self, path: String, entry: Entry) {
        if self.stored.files.get(&path) != Some(&entry) {
            self.stored.files.insert(path, entry);
            self.dirty = true;
        }
    }

    /// Removes a path.
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        let e = self.stored.files.remove(path);
        self.dirty |= e.is_some();
        e
    }

    /// Paths at or under `dir`.
    pub fn paths_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.stored
            .files
            .range(dir.to_string()..)
            .take_while(|(k, _)| k.starts_with(dir))
            .filter(|(k, _)| k.as_str() == dir || k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Number of files known.
    pub fn len(&self) -> usize {
        self.stored.files.len()
    }

    /// Whether no file is known.
    pub fn is_empty(&self) -> bool {
        self.stored.files.is_empty()
    }

    /// Writes the baseline if it changed.
    pub fn save(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(&self.stored)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.dirty = false;
        self.existed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha: &str) -> Entry {
        Entry {
            sha256: sha.into(),
            size: 1,
            mtime_ns: 2,
            inode: 3,
            owner: "root".into(),
        }
    }

    #[test]
    fn round_trips_and_lists_subtrees() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Baseline::load(dir.path()).unwrap();
        assert!(!b.existed());
        b.insert("/w/a".into(), entry("1"));
        b.insert("/w/a/x".into(), entry("2"));
        b.insert("/w/a-b".into(), entry("3"));
        b.insert("/w/b/y".into(), entry("4"));
        b.set_rules_version("v1");
        b.save().unwrap();
        let b = Baseline::load(dir.path()).unwrap();
        assert!(b.existed());
        assert_eq!(b.len(), 4);
        assert_eq!(b.rules_version(), "v1");
        assert_eq!(b.paths_under("/w/a"), vec!["/w/a", "/w/a/x"]);
        assert_eq!(b.get("/w/b/y"), Some(&entry("4")));
    }

    #[test]
    fn a_damaged_baseline_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BASELINE_FILE), "{not json").unwrap();
        let b = Baseline::load(dir.path()).unwrap();
        assert!(!b.existed());
        assert!(b.is_empty());
    }
}
