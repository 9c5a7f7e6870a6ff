//! Files: reading, hashing and YARA-scanning files under web roots, the
//! one-shot recursive scan behind `ward-agent scan`, and (in [`watch`]) the
//! `[[files]]` watcher with its integrity baseline.
//!
//! Reading is defensive: only regular files are opened, never through a
//! symlink; a file larger than the size limit is skipped, a file that
//! vanishes or cannot be read is counted, never a panic; files are read into
//! memory (no mmap, so a file truncated while scanned cannot SIGBUS).

pub mod baseline;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::alert_id;
use crate::engine::yara::{FileContext, RuleMatch, ScanFailure, ScanSession, YaraRules};
use crate::wire::{Alert, MAX_EVIDENCE_LINES, cap_evidence_line};

/// Default largest file scanned, in bytes.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 32 * 1024 * 1024;

/// A file that was read, hashed and scanned.
#[derive(Debug, Clone, Serialize)]
pub struct ScannedFile {
    /// Its path.
    pub path: String,
    /// Bytes read (the file's size).
    pub size: u64,
    /// SHA-256 of the bytes read, hex; empty when the file was read with
    /// [`Hashing::WhenMatched`] and nothing matched.
    pub sha256: String,
    /// Owner's user name, or the numeric uid when unknown.
    pub owner: String,
    /// Modification time, nanoseconds since the epoch.
    #[serde(skip)]
    pub mtime_ns: i128,
    /// Inode number.
    #[serde(skip)]
    pub inode: u64,
    /// Rules that matched (empty when clean or when not scanned).
    pub matches: Vec<RuleMatch>,
}

/// Why a file was not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Not a regular file (socket, fifo, device, symlink).
    Special,
    /// Larger than the size limit.
    TooLarge,
    /// Gone between listing and reading.
    Vanished,
    /// Permission denied or another read error.
    Unreadable,
    /// The scan hit its timeout.
    Timeout,
    /// yara-x reported another error.
    ScanError,
}

impl SkipReason {
    /// Name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Special => "special",
            SkipReason::TooLarge => "too_large",
            SkipReason::Vanished => "vanished",
            SkipReason::Unreadable => "unreadable",
            SkipReason::Timeout => "timeout",
            SkipReason::ScanError => "scan_error",
        }
    }
}

/// The outcome for one file.
#[derive(Debug)]
pub enum FileOutcome {
    /// Read (and scanned, when a scanner was given).
    Scanned(ScannedFile),
    /// Not scanned, and why.
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: SkipReason,
        /// Details (the OS error).
        detail: String,
    },
}

/// Which files [`read_and_scan`] hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// Every file read (the integrity baseline needs every hash).
    Always,
    /// Only files a rule matched (a one-shot scan reports hashes of findings
    /// only; SHA-256 of every file would be a tenth of the scan's CPU).
    WhenMatched,
}

/// Reads a file (without following a final symlink), hashes it and, with a
/// scan session, runs YARA over it. `buf` is reused between calls.
pub fn read_and_scan(
    path: &Path,
    max_size: u64,
    session: Option<&mut ScanSession<'_>>,
    buf: &mut Vec<u8>,
    hashing: Hashing,
) -> FileOutcome {
    let skipped = |reason, detail: String| FileOutcome::Skipped {
        path: path.to_owned(),
        reason,
        detail,
    };
    let io_skip = |e: std::io::Error| {
        let reason = if e.kind() == std::io::ErrorKind::NotFound {
            SkipReason::Vanished
        } else {
            SkipReason::Unreadable
        };
        skipped(reason, e.to_string())
    };
    // lstat first: never open a symlink, a fifo (would block) or a device.
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return io_skip(e),
    };
    if !meta.file_type().is_file() {
        return skipped(SkipReason::Special, "not a regular file".into());
    }
    if meta.len() > max_size {
        return skipped(
            SkipReason::TooLarge,
            format!("{} bytes; the limit is {max_size}", meta.len()),
        );
    }
    let file = match open_no_follow(path) {
        Ok(f) => f,
        Err(e) => return io_skip(e),
    };
    // The file may have been replaced between lstat and open.
    let meta = match file.metadata() {
        Ok(m) if m.file_type().is_file() => m,
        Ok(_) => return skipped(SkipReason::Special, "not a regular file".into()),
        Err(e) => return io_skip(e),
    };
    buf.clear();
    // Read at most the limit, even if the file grows while being read.
    if let Err(e) = file.take(max_size).read_to_end(buf) {
        return io_skip(e);
    }
    let owner = owner_name(meta.uid());
    let path_str = path.to_string_lossy().into_owned();
    let matches = match session {
        Some(session) => {
            let ctx = FileContext {
                path: &path_str,
                owner: &owner,
            };
            match session.scan(buf, &ctx) {
                Ok(m) => m,
                Err(ScanFailure::Timeout) => {
                    return skipped(SkipReason::Timeout, "scan timed out".into());
                }
                Err(e) => return skipped(SkipReason::ScanError, e.to_string()),
            }
        }
        None => Vec::new(),
    };
    let sha256 = if hashing == Hashing::Always || !matches.is_empty() {
        hex::encode(Sha256::digest(&buf[..]))
    } else {
        String::new()
    };
    FileOutcome::Scanned(ScannedFile {
        path: path_str,
        size: buf.len() as u64,
        sha256,
        owner,
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        inode: meta.ino(),
        matches,
    })
}

fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW | O_NONBLOCK: a symlink swapped in fails, a fifo swapped in
    // does not block the open.
    const O_NOFOLLOW: i32 = 0o400_000;
    const O_NONBLOCK: i32 = 0o4000;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK)
        .open(path)
}

/// The user name of a uid (from `/etc/passwd`), or the uid as text.
pub fn owner_name(uid: u32) -> String {
    static USERS: OnceLock<HashMap<u32, String>> = OnceLock::new();
    let users = USERS.get_or_init(|| {
        std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let uid = f.nth(1)?.parse().ok()?;
                Some((uid, name.to_string()))
            })
            .collect()
    });
    users.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
}

/// The rule id alerts of a YARA rule carry.
pub fn yara_rule_id(m: &RuleMatch) -> String {
    format!("yara:{}:{}", m.namespace, m.rule)
}

/// One alert for one rule matching one file. The id depends on the host,
/// the path, the content hash and the rule, so re-scanning the same content
/// never makes a second alert.
pub fn yara_alert(host: &str, file: &ScannedFile, m: &RuleMatch) -> Alert {
    let rule_id = yara_rule_id(m);
    let origin = format!("file:{}:{}", file.path, file.sha256);
    let mut entities = BTreeMap::new();
    entities.insert("path".to_string(), file.path.clone());
    entities.insert("sha256".to_string(), file.sha256.clone());
    let mut evidence = vec![cap_evidence_line(&format!(
        "YARA rule {} matched {} ({} bytes, sha256 {}, owner {})",
        m.rule, file.path, file.size, file.sha256, file.owner
    ))];
    for s in m.strings.iter().take(MAX_EVIDENCE_LINES - 1) {
        evidence.push(cap_evidence_line(&format!(
            "{} at offset {}: {}",
            s.id, s.offset, s.data
        )));
    }
    Alert {
        id: alert_id(host, &origin, &rule_id),
        rule_id,
        title: m.title.clone(),
        severity: m.severity,
        time: chrono::Utc::now(),
        host: host.to_string(),
        entities,
        evidence,
        tags: m.tags.clone(),
        source: format!("file:{}", file.path),
        packets: Vec::new(),
        drill_id: None,
    }
}

/// One JSON line of `ward-agent scan`.
#[derive(Debug, Serialize)]
pub struct Finding<'a> {
    /// The file.
    pub path: &'a str,
    /// The rule.
    pub rule: &'a str,
    /// The rule's namespace (its file's stem).
    pub namespace: &'a str,
    /// The rule's description, or its name.
    pub title: &'a str,
    /// Severity from the rule's metadata.
    pub severity: crate::wire::Severity,
    /// The rule's tags.
    pub tags: &'a [String],
    /// SHA-256 of the file.
    pub sha256: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// Matched strings, capped and escaped.
    pub strings: &'a [crate::engine::yara::MatchedString],
}

/// Counters of a scan.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Files listed by the walk.
    pub found: AtomicU64,
    /// Bytes of the files listed.
    pub found_bytes: AtomicU64,
    /// Files scanned.
    pub scanned: AtomicU64,
    /// Bytes scanned.
    pub scanned_bytes: AtomicU64,
    /// Files with at least one match.
    pub matched_files: AtomicU64,
    /// Rule matches.
    pub matches: AtomicU64,
    /// Files skipped, by reason.
    pub skipped: Mutex<BTreeMap<SkipReason, u64>>,
    /// Directories the walk could not enter or loops it refused.
    pub walk_errors: AtomicU64,
}

impl ScanCounters {
    fn skip(&self, reason: SkipReason) {
        *self
            .skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Files skipped, by reason, as heartbeats report them.
    pub fn skipped_by_reason(&self) -> crate::wire::FilesSkipped {
        let map = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        let n = |r| map.get(&r).copied().unwrap_or(0);
        crate::wire::FilesSkipped {
            too_large: n(SkipReason::TooLarge),
            unreadable: n(SkipReason::Unreadable),
            vanished: n(SkipReason::Vanished),
            special: n(SkipReason::Special),
            timeout: n(SkipReason::Timeout),
            scan_error: n(SkipReason::ScanError),
        }
    }

    /// Files skipped, all reasons.
    pub fn skipped_total(&self) -> u64 {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

/// Lists regular files under `roots` (files given directly are listed as
/// they are). Symlinks inside the trees are not followed, so a symlink loop
/// cannot trap the walk; they are counted as special files.
pub fn walk(
    roots: &[PathBuf],
    counters: &ScanCounters,
    mut on_file: impl FnMut(PathBuf, u64) -> bool,
    mut on_error: impl FnMut(String),
) {
    for root in roots {
        // A root given as a symlink is scanned where it points (files are
        // never opened through a symlink).
        let resolved;
        let root = if std::fs::symlink_metadata(root).is_ok_and(|m| m.file_type().is_symlink()) {
            resolved = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
            &resolved
        } else {
            root
        };
        let walker = walkdir::WalkDir::new(root)
            .follow_links(false)
            .follow_root_links(true)
            .same_file_system(false);
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    counters.walk_errors.fetch_add(1, Ordering::Relaxed);
                    on_error(e.to_string());
                    continue;
                }
            };
            let ft = entry.file_type();
            if ft.is_dir() {
                continue;
            }
            let root_file = entry.depth() == 0 && entry.path().is_file();
            if !(ft.is_file() || root_file) {
                counters.skip(SkipReason::Special);
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            counters.found.fetch_add(1, Ordering::Relaxed);
            counters.found_bytes.fetch_add(size, Ordering::Relaxed);
            if !on_file(entry.into_path(), size) {
                return;
            }
        }
    }
}

/// What the scan's consumer is told.
pub enum ScanEvent {
    /// A file was read and scanned (possibly with matches).
    File(ScannedFile),
    /// A file was skipped.
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: SkipReason,
        /// Details.
        detail: String,
    },
}

/// Most files handed to a worker at once.
const BATCH_FILES: usize = 64;
/// A batch is handed over once it holds this many bytes, so big files go
/// one by one and the workers stay evenly loaded.
const BATCH_BYTES: u64 = 1 << 20;
/// Outcomes are handed to the caller at least this often (progress).
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Scans every file under `roots` with `threads` workers (each with its own
/// scanner) and hands each outcome to `on_event` on the calling thread.
///
/// Paths go to the workers and outcomes come back in batches: one channel
/// hand-off per file cost two context switches per file, a third of the
/// CPU time of a tree of small files.
#[allow(clippy::too_many_arguments)]
pub fn scan_tree(
    rules: &YaraRules,
    roots: &[PathBuf],
    limits: crate::engine::yara::ScanLimits,
    threads: usize,
    hashing: Hashing,
    counters: &ScanCounters,
    mut on_event: impl FnMut(ScanEvent),
    on_walk_error: impl FnMut(String) + Send,
) {
    let threads = threads.max(1);
    let (path_tx, path_rx) = mpsc::sync_channel::<Vec<PathBuf>>(threads * 4);
    let path_rx = Mutex::new(path_rx);
    let (out_tx, out_rx) = mpsc::sync_channel::<Vec<ScanEvent>>(threads * 4);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut batch = Vec::with_capacity(BATCH_FILES);
            let mut batch_bytes = 0;
            let mut open = true;
            walk(
                roots,
                counters,
                |p, size| {
                    batch.push(p);
                    batch_bytes += size;
                    if batch.len() >= BATCH_FILES || batch_bytes >= BATCH_BYTES {
                        batch_bytes = 0;
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_FILES));
                        open = path_tx.send(full).is_ok();
                    }
                    open
                },
                on_walk_error,
            );
            if open && !batch.is_empty() {
                let _ = path_tx.send(batch);
            }
            drop(path_tx);
        });
        for _ in 0..threads {
            let out_tx = out_tx.clone();
            let path_rx = &path_rx;
            s.spawn(move || {
                let scanner = rules.scanner(limits);
                let mut session = scanner.session();
                let mut buf = Vec::new();
                let mut out = Vec::new();
                let mut flushed = std::time::Instant::now();
                loop {
                    let next = path_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(paths) = next else { break };
                    for path in paths {
                        let ev = match read_and_scan(
                            &path,
                            limits.max_size,
                            Some(&mut session),
                            &mut buf,
                            hashing,
                        ) {
                            FileOutcome::Scanned(f) => {
                                counters.scanned.fetch_add(1, Ordering::Relaxed);
                                counters.scanned_bytes.fetch_add(f.size, Ordering::Relaxed);
                                if !f.matches.is_empty() {
                                    counters.matched_files.fetch_add(1, Ordering::Relaxed);
                                    counters
                                        .matches
                                        .fetch_add(f.matches.len() as u64, Ordering::Relaxed);
                                }
                                ScanEvent::File(f)
                            }
                            FileOutcome::Skipped {
                                path,
                                reason,
                                detail,
                            } => {
                                counters.skip(reason);
                                ScanEvent::Skipped {
                                    path,
                                    reason,
                                    detail,
                                }
                            }
                        };
                        out.push(ev);
                        if out.len() >= BATCH_FILES || flushed.elapsed() >= FLUSH_EVERY {
                            flushed = std::time::Instant::now();
                            if out_tx.send(std::mem::take(&mut out)).is_err() {
                                return;
                            }
                        }
                    }
                }
                if !out.is_empty() {
                    let _ = out_tx.send(out);
                }
            });
        }
        drop(out_tx);
        for batch in out_rx {
            for ev in batch {
                on_event(ev);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        let missing = dir.path().join("nope");
        assert!(matches!(
            read_and_scan(&missing, 100, None, &mut buf, Hashing::Always),
            FileOutcome::Skipped {
                reason: SkipReason::Vanished,
                ..
            }
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/hostname", &link).unwrap();
        assert!(matches!(
            read_and_scan(&link, 100, None, &mut buf, Hashing::Always),
            FileOutcome::Skipped {
                reason: SkipReason::Special,
                ..
            }
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 200]).unwrap();
        assert!(matches!(
            read_and_scan(&big, 100, None, &mut buf, Hashing::Always),
            FileOutcome::Skipped {
                reason: SkipReason::TooLarge,
                ..
            }
        ));
        let FileOutcome::Scanned(f) = read_and_scan(&big, 1000, None, &mut buf, Hashing::Always)
        else {
            panic!("a readable file is read")
        };
        assert_eq!(f.size, 200);
        assert_eq!(f.sha256, hex::encode(Sha256::digest(vec![b'a'; 200])));
        // Hashing only matched files: nothing matched, no hash.
        let FileOutcome::Scanned(f) =
            read_and_scan(&big, 1000, None, &mut buf, Hashing::WhenMatched)
        else {
            panic!("a readable file is read")
        };
        assert_eq!((f.size, f.sha256.as_str()), (200, ""));
    }

    #[test]
    fn the_walk_survives_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x.php"), "<?php echo 1;").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("a/loop")).unwrap();
        let counters = ScanCounters::default();
        let mut files = Vec::new();
        walk(
            &[dir.path().to_owned()],
            &counters,
            |p, _| {
                files.push(p);
                true
            },
            |_| {},
        );
        assert_eq!(files, vec![dir.path().join("a/x.php")]);
        assert_eq!(counters.skipped_total(), 1);
        // A root that is a symlink to a file is followed.
        let link = dir.path().join("link.php");
        std::os::unix::fs::symlink(dir.path().join("a/x.php"), &link).unwrap();
        let mut files = Vec::new();
        walk(
            &[link],
            &counters,
            |p, _| {
                files.push(p);
                true
            },
            |_| {},
        );
        assert_eq!(
            files,
            vec![std::fs::canonicalize(dir.path().join("a/x.php")).unwrap()]
        );
    }
}
