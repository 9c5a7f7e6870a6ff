//! The `[[files]]` watcher: notify (inotify) on the watched trees is the
//! trigger, a periodic full pass is the safety net (notify drops events
//! under load and asks for a rescan). New and changed files are hashed and
//! YARA-scanned; YARA matches become [`Alert`]s, and changes against the
//! integrity [`Baseline`] become file [`Event`]s (`action` = `created`,
//! `modified`, `deleted`) that Sigma rules judge.
//!
//! Runs on its own OS thread: a `yara_x::Scanner` is not `Send`, and
//! hashing and scanning are blocking work.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::baseline::{Baseline, Entry};
use super::{
    FileOutcome, Hashing, ScanCounters, ScannedFile, SkipReason, read_and_scan, yara_alert,
};
use crate::config::{AgentConfig, FilesInput};
use crate::engine::yara::{ScanLimits, ScanSession, YaraRules};
use crate::event::Event;
use crate::pipeline::Pushed;
use crate::wire::{Alert, Severity};

/// Name of the quarantine directory in the state dir.
pub const QUARANTINE_DIR: &str = "quarantine";

/// How long notifications are gathered before a batch is processed.
const DEBOUNCE: Duration = Duration::from_millis(250);

struct Root {
    path: PathBuf,
    exclude: Vec<glob::Pattern>,
    max_size: u64,
    quarantine: bool,
}

impl Root {
    fn new(f: &FilesInput) -> Root {
        // Canonical, so notify's absolute paths and the walk's agree.
        let path = std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
        Root {
            path,
            exclude: f
                .exclude
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect(),
            max_size: f.max_file_size,
            quarantine: f.quarantine,
        }
    }

    fn excluded(&self, p: &Path) -> bool {
        self.exclude.iter().any(|g| g.matches_path(p))
    }

    fn name(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

enum Note {
    Path(PathBuf),
    Rescan,
}

/// What the watcher counts since start; the agent reports it in heartbeats.
#[derive(Debug, Default)]
pub struct WatchStats {
    /// Files scanned, bytes, matches, skips by reason.
    pub scan: ScanCounters,
    /// Integrity events (created, modified, deleted) pushed.
    pub integrity_events: AtomicU64,
    /// Full passes over the watched trees.
    pub full_passes: AtomicU64,
    /// Notification overflows (or notify errors) answered by a full pass.
    pub notify_overflows: AtomicU64,
}

impl WatchStats {
    /// Copies the counters into a heartbeat.
    pub fn fill(&self, hb: &mut crate::wire::Heartbeat) {
        hb.files_scanned_total = self.scan.scanned.load(Ordering::Relaxed);
        hb.files_scanned_bytes_total = self.scan.scanned_bytes.load(Ordering::Relaxed);
        hb.yara_matches_total = self.scan.matches.load(Ordering::Relaxed);
        hb.integrity_events_total = self.integrity_events.load(Ordering::Relaxed);
        hb.files_skipped = self.scan.skipped_by_reason();
        hb.files_full_passes_total = self.full_passes.load(Ordering::Relaxed);
        hb.files_notify_overflows_total = self.notify_overflows.load(Ordering::Relaxed);
    }
}

/// The watcher's state: roots, baseline, scanner limits, where to push.
pub struct FileWatcher {
    roots: Vec<Root>,
    rules: YaraRules,
    host: String,
    state_dir: PathBuf,
    baseline: Baseline,
    limits: ScanLimits,
    tx: mpsc::Sender<Pushed>,
    rescan: Duration,
    /// Counters of files read, scanned and skipped, passes and overflows.
    pub stats: Arc<WatchStats>,
    /// The read buffer, reused for every file.
    buf: Vec<u8>,
}

/// Starts the watcher thread for the config's `[[files]]` entries. Returns
/// `None` when there are none. The thread ends when `stop` is set or the
/// pipeline's queue closes. It counts into `stats`.
pub fn spawn(
    config: &AgentConfig,
    host: String,
    rules: YaraRules,
    tx: mpsc::Sender<Pushed>,
    stop: Arc<AtomicBool>,
    stats: Arc<WatchStats>,
) -> anyhow::Result<Option<std::thread::JoinHandle<()>>> {
    if config.files.is_empty() {
        return Ok(None);
    }
    let mut watcher = FileWatcher::new(config, host, rules, tx)?;
    watcher.stats = stats;
    let handle = std::thread::Builder::new()
        .name("ward-files".into())
        .spawn(move || watcher.run(&stop))?;
    Ok(Some(handle))
}

impl FileWatcher {
    /// A watcher over the config's `[[files]]` entries.
    pub fn new(
        config: &AgentConfig,
        host: String,
        rules: YaraRules,
        tx: mpsc::Sender<Pushed>,
    ) -> anyhow::Result<FileWatcher> {
        let baseline = Baseline::load(&config.state_dir)?;
        let roots: Vec<Root> = config.files.iter().map(Root::new).collect();
        let limits = ScanLimits {
            max_size: roots.iter().map(|r| r.max_size).max().unwrap_or(0),
            timeout: Duration::from_secs(
                config
                    .files
                    .iter()
                    .map(|f| f.scan_timeout_s)
                    .max()
                    .unwrap_or(10)
                    .max(1),
            ),
        };
        Ok(FileWatcher {
            roots,
            rules,
            host,
            // Canonical, so a state dir inside a watched tree can be left out.
            state_dir: std::fs::canonicalize(&config.state_dir)
                .unwrap_or_else(|_| config.state_dir.clone()),
            baseline,
            limits,
            tx,
            rescan: Duration::from_secs(config.files_rescan_interval_s.max(1)),
            stats: Arc::new(WatchStats::default()),
            buf: Vec::new(),
        })
    }

    /// The watch loop.
    pub fn run(&mut self, stop: &AtomicBool) {
        let scanner = self.rules.scanner(self.limits);
        let mut session = scanner.session();
        let (ntx, nrx) = std::sync::mpsc::channel::<Note>();
        let watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(ev) => {
                    if ev.need_rescan() {
                        let _ = ntx.send(Note::Rescan);
                    }
                    for p in ev.paths {
                        let _ = ntx.send(Note::Path(p));
                    }
                }
                Err(_) => {
                    let _ = ntx.send(Note::Rescan);
                }
            });
        let _watcher = match watcher {
            Ok(mut w) => {
                for r in &self.roots {
                    if let Err(e) = w.watch(&r.path, RecursiveMode::Recursive) {
                        warn!(error = %e, path = %r.path.display(), "cannot watch directory; relying on full passes");
                    }
                }
                Some(w)
            }
            Err(e) => {
                warn!(error = %e, "file notifications unavailable; relying on full passes");
                None
            }
        };
        // First start: build the baseline quietly (no integrity events), but
        // scan everything. New rules: rescan everything.
        let emit = self.baseline.existed();
        let force = self.baseline.rules_version() != self.rules.version;
        let started = Instant::now();
        if !self.full_pass(&mut session, emit, force) {
            return;
        }
        self.baseline.set_rules_version(&self.rules.version.clone());
        self.save();
        info!(
            files = self.baseline.len(),
            roots = self.roots.len(),
            scanned = self.stats.scan.scanned.load(Ordering::Relaxed),
            skipped = self.stats.scan.skipped_total(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "file baseline ready"
        );
        let mut next_full = Instant::now() + self.rescan;
        while !stop.load(Ordering::Relaxed) {
            let wait = next_full
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            let first = match nrx.recv_timeout(wait) {
                Ok(n) => n,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() >= next_full {
                        if !self.full_pass(&mut session, true, false) {
                            return;
                        }
                        self.save();
                        info!(
                            files = self.baseline.len(),
                            scanned_total = self.stats.scan.scanned.load(Ordering::Relaxed),
                            skipped_total = self.stats.scan.skipped_total(),
                            "full pass over watched files done"
                        );
                        next_full = Instant::now() + self.rescan;
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                    continue;
                }
            };
            let mut paths = BTreeSet::new();
            let mut rescan = false;
            let mut note = Some(first);
            let until = Instant::now() + DEBOUNCE;
            while let Some(n) = note.take() {
                match n {
                    Note::Path(p) => {
                        paths.insert(p);
                    }
                    Note::Rescan => rescan = true,
                }
                if paths.len() >= 10_000 {
                    rescan = true;
                    break;
                }
                note = nrx
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                    .ok();
            }
            let ok = if rescan {
                self.stats.notify_overflows.fetch_add(1, Ordering::Relaxed);
                warn!("file notifications overflowed; doing a full pass");
                self.full_pass(&mut session, true, false)
            } else {
                paths.into_iter().all(|p| self.check_path(&mut session, &p))
            };
            if !ok {
                return;
            }
            self.save();
        }
    }

    fn save(&mut self) {
        if let Err(e) = self.baseline.save() {
            warn!(error = %e, "cannot save the file baseline");
        }
    }

    fn root_of(&self, p: &Path) -> Option<usize> {
        self.roots
            .iter()
            .enumerate()
            .filter(|(_, r)| p.starts_with(&r.path))
            .max_by_key(|(_, r)| r.path.as_os_str().len())
            .map(|(i, _)| i)
    }

    /// Walks every root. Returns false when the pipeline is gone.
    fn full_pass(&mut self, session: &mut ScanSession<'_>, emit: bool, force: bool) -> bool {
        self.stats.full_passes.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.roots.len() {
            let dir = self.roots[i].path.clone();
            if !self.pass_dir(session, i, &dir, emit, force) {
                return false;
            }
        }
        true
    }

    /// Checks every file under `dir` (in root `ri`) and notices deletions.
    fn pass_dir(
        &mut self,
        session: &mut ScanSession<'_>,
        ri: usize,
        dir: &Path,
        emit: bool,
        force: bool,
    ) -> bool {
        let mut files = Vec::new();
        super::walk(
            &[dir.to_owned()],
            &self.stats.scan,
            |p, _| {
                files.push(p);
                true
            },
            |e| debug!(error = %e, "walk error"),
        );
        let mut seen = BTreeSet::new();
        for p in files {
            if self.roots[ri].excluded(&p) || p.starts_with(&self.state_dir) {
                continue;
            }
            let key = p.to_string_lossy().into_owned();
            if !self.check_file(session, ri, &p, emit, force) {
                return false;
            }
            seen.insert(key);
        }
        let dir_key = dir.to_string_lossy().into_owned();
        for gone in self.baseline.paths_under(&dir_key) {
            if !seen.contains(&gone) && !Path::new(&gone).is_file() {
                let root = self.roots[ri].name();
                if !self.deleted(&gone, &root, emit) {
                    return false;
                }
            }
        }
        true
    }

    /// Handles one notified path. Returns false when the pipeline is gone.
    fn check_path(&mut self, session: &mut ScanSession<'_>, p: &Path) -> bool {
        let Some(ri) = self.root_of(p) else {
            return true;
        };
        // The agent's own state (baseline, quarantine) is never watched.
        if self.roots[ri].excluded(p) || p.starts_with(&self.state_dir) {
            return true;
        }
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => self.pass_dir(session, ri, p, true, false),
            Ok(m) if m.is_file() => self.check_file(session, ri, p, true, false),
            _ => {
                // Gone, or replaced by something that is not a file.
                let root = self.roots[ri].name();
                let key = p.to_string_lossy().into_owned();
                for gone in self.baseline.paths_under(&key) {
                    if !self.deleted(&gone, &root, true) {
                        return false;
                    }
                }
                true
            }
        }
    }

    fn check_file(
        &mut self,
        session: &mut ScanSession<'_>,
        ri: usize,
        p: &Path,
        emit: bool,
        force: bool,
    ) -> bool {
        let key = p.to_string_lossy().into_owned();
        let prev = self.baseline.get(&key).cloned();
        if let (Some(prev), Ok(m)) = (&prev, std::fs::symlink_metadata(p))
            && !force
            && prev.size == m.len()
            && prev.inode == m.ino()
            && prev.mtime_ns == m.mtime() * 1_000_000_000 + m.mtime_nsec()
        {
            return true;
        }
        let root = self.roots[ri].name();
        let mut buf = std::mem::take(&mut self.buf);
        let outcome = read_and_scan(
            p,
            self.roots[ri].max_size,
            Some(session),
            &mut buf,
            Hashing::Always,
        );
        // Keep the allocation for the next file, unless one big file grew it
        // far beyond the usual.
        if buf.capacity() <= 4 * 1024 * 1024 {
            self.buf = buf;
        }
        match outcome {
            FileOutcome::Scanned(f) => {
                let counters = &self.stats.scan;
                counters.scanned.fetch_add(1, Ordering::Relaxed);
                counters.scanned_bytes.fetch_add(f.size, Ordering::Relaxed);
                if !f.matches.is_empty() {
                    counters.matched_files.fetch_add(1, Ordering::Relaxed);
                    counters
                        .matches
                        .fetch_add(f.matches.len() as u64, Ordering::Relaxed);
                }
                let action = match &prev {
                    None => Some("created"),
                    Some(e) if e.sha256 != f.sha256 => Some("modified"),
                    Some(_) => None,
                };
                if emit && let Some(action) = action {
                    let ev = file_event(
                        &self.host,
                        &root,
                        action,
                        &f,
                        prev.as_ref().map(|e| e.sha256.as_str()),
                    );
                    if self.tx.blocking_send(Pushed::Event(ev)).is_err() {
                        return false;
                    }
                    self.stats.integrity_events.fetch_add(1, Ordering::Relaxed);
                }
                let mut quarantined = None;
                if self.roots[ri].quarantine
                    && f.matches.iter().any(|m| m.severity >= Severity::High)
                {
                    match quarantine(&self.state_dir, &f) {
                        Ok(to) => quarantined = Some(to),
                        Err(e) => warn!(error = %e, path = %f.path, "cannot quarantine file"),
                    }
                }
                if action.is_some() || force {
                    for m in &f.matches {
                        let mut alert: Alert = yara_alert(&self.host, &f, m);
                        if let Some(to) = &quarantined {
                            alert
                                .evidence
                                .push(format!("file moved to quarantine: {}", to.display()));
                        }
                        info!(rule = %m.rule, path = %f.path, sha256 = %f.sha256, "YARA match");
                        if self.tx.blocking_send(Pushed::Alert(alert)).is_err() {
                            return false;
                        }
                    }
                }
                if quarantined.is_some() {
                    self.baseline.remove(&key);
                } else {
                    self.baseline.insert(
                        key,
                        Entry {
                            sha256: f.sha256,
                            size: f.size,
                            mtime_ns: i64::try_from(f.mtime_ns).unwrap_or(i64::MAX),
                            inode: f.inode,
                            owner: f.owner,
                        },
                    );
                }
                true
            }
            FileOutcome::Skipped {
                reason: SkipReason::Vanished,
                ..
            } => {
                self.stats.scan.skip(SkipReason::Vanished);
                if prev.is_some() {
                    return self.deleted(&key, &root, emit);
                }
                true
            }
            FileOutcome::Skipped {
                path,
                reason,
                detail,
            } => {
                self.stats.scan.skip(reason);
                debug!(path = %path.display(), reason = reason.as_str(), %detail, "file skipped");
                true
            }
        }
    }

    fn deleted(&mut self, path: &str, root: &str, emit: bool) -> bool {
        let Some(prev) = self.baseline.remove(path) else {
            return true;
        };
        if !emit {
            return true;
        }
        let mut ev = Event::new(
            Utc::now(),
            &self.host,
            format!("file:{path}:deleted:{}", prev.sha256),
        );
        set_path_fields(&mut ev, path, root);
        ev.set("action", "deleted");
        ev.set("previous_sha256", prev.sha256.clone());
        ev.set("size", prev.size.to_string());
        ev.set("owner", prev.owner.clone());
        ev.raw = format!(
            "file deleted: {path} (was {} bytes, sha256 {})",
            prev.size, prev.sha256
        );
        if self.tx.blocking_send(Pushed::Event(ev)).is_err() {
            return false;
        }
        self.stats.integrity_events.fetch_add(1, Ordering::Relaxed);
        true
    }
}

fn set_path_fields(ev: &mut Event, path: &str, root: &str) {
    let p = Path::new(path);
    ev.set("path", path);
    ev.set(
        "file_name",
        p.file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    ev.set(
        "extension",
        p.extension()
            .map(|s| s.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default(),
    );
    ev.set("watch_root", root);
}

/// The integrity event for a created or modified file.
pub fn file_event(
    host: &str,
    root: &str,
    action: &str,
    f: &ScannedFile,
    previous_sha256: Option<&str>,
) -> Event {
    let mut ev = Event::new(
        Utc::now(),
        host,
        format!("file:{}:{}:{}", f.path, action, f.sha256),
    );
    set_path_fields(&mut ev, &f.path, root);
    ev.set("action", action);
    ev.set("sha256", f.sha256.clone());
    ev.set("size", f.size.to_string());
    ev.set("owner", f.owner.clone());
    if let Some(prev) = previous_sha256 {
        ev.set("previous_sha256", prev);
    }
    ev.raw = format!(
        "file {action}: {} ({} bytes, sha256 {}, owner {})",
        f.path, f.size, f.sha256, f.owner
    );
    ev
}

/// Moves a file into `STATE/quarantine/<sha256>` (dir 0700, file 0600) with
/// a JSON note of where it came from. Returns the new path.
pub fn quarantine(state_dir: &Path, f: &ScannedFile) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = state_dir.join(QUARANTINE_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let to = dir.join(&f.sha256);
    if std::fs::rename(&f.path, &to).is_err() {
        // Another file system: copy, then remove the original.
        std::fs::copy(&f.path, &to)?;
        std::fs::remove_file(&f.path)?;
    }
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))?;
    let note = serde_json::json!({
        "path": f.path,
        "sha256": f.sha256,
        "size": f.size,
        "owner": f.owner,
        "rules": f.matches.iter().map(|m| m.rule.clone()).collect::<Vec<_>>(),
        "time": Utc::now(),
    });
    std::fs::write(
        dir.join(format!("{}.json", f.sha256)),
        serde_json::to_vec_pretty(&note)?,
    )?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(state: &Path, root: &Path, quarantine: bool) -> AgentConfig {
        toml::from_str(&format!(
            "state_dir = {:?}\n[[files]]\npath = {:?}\nquarantine = {quarantine}\nexclude = [\"*/cache/*\"]\n",
            state.display().to_string(),
            root.display().to_string()
        ))
        .unwrap()
    }

    fn drain(rx: &mut mpsc::Receiver<Pushed>) -> (Vec<Event>, Vec<Alert>) {
        let mut evs = Vec::new();
        let mut alerts = Vec::new();
        while let Ok(p) = rx.try_recv() {
            match p {
                Pushed::Event(e) => evs.push(e),
                Pushed::Alert(a) => alerts.push(a),
            }
        }
        (evs, alerts)
    }

    #[test]
    fn passes_report_created_modified_deleted_and_yara_matches() {
        let state = tempfile::tempdir().unwrap();
        let web = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(web.path()).unwrap();
        std::fs::write(root.join("index.html"), "<html>hello</html>").unwrap();
        std::fs::create_dir(root.join("cache")).unwrap();
        std::fs::write(root.join("cache/x.php"), "<?php eval($_POST['a']); ?>").unwrap();
        let rules = YaraRules::shipped().unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let cfg = config(state.path(), &root, false);
        let mut w = FileWatcher::new(&cfg, "h".into(), rules.clone(), tx).unwrap();
        let scanner = rules.scanner(w.limits);
        let mut session = scanner.session();
        // First pass: baseline only, no integrity events; excluded dir ignored.
        assert!(w.full_pass(&mut session, false, false));
        let (evs, alerts) = drain(&mut rx);
        assert!(evs.is_empty() && alerts.is_empty(), "{evs:?} {alerts:?}");
        assert_eq!(w.baseline.len(), 1);

        std::fs::create_dir(root.join("uploads")).unwrap();
        std::fs::write(root.join("uploads/a.php"), "<?php @eval($_POST['x']); ?>").unwrap();
        std::fs::write(root.join("index.html"), "<html>hacked by someone</html>").unwrap();
        assert!(w.full_pass(&mut session, true, false));
        let (evs, alerts) = drain(&mut rx);
        let actions: BTreeSet<(String, String)> = evs
            .iter()
            .map(|e| {
                (
                    e.get("file_name").unwrap().to_string(),
                    e.get("action").unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            actions.contains(&("a.php".into(), "created".into())),
            "{actions:?}"
        );
        assert!(
            actions.contains(&("index.html".into(), "modified".into())),
            "{actions:?}"
        );
        let shell = alerts
            .iter()
            .find(|a| a.entities["path"].ends_with("uploads/a.php"))
            .expect("the webshell alerts");
        assert_eq!(shell.entities["sha256"].len(), 64);
        assert!(
            alerts.iter().any(|a| a.rule_id.contains("defacement")),
            "{alerts:?}"
        );
        // Counters: index.html twice, a.php once; every alert is a match;
        // two integrity events; two passes.
        let stats = &w.stats;
        assert_eq!(stats.scan.scanned.load(Ordering::Relaxed), 3);
        assert_eq!(
            stats.scan.matches.load(Ordering::Relaxed),
            alerts.len() as u64
        );
        assert_eq!(
            stats.integrity_events.load(Ordering::Relaxed),
            evs.len() as u64
        );
        assert_eq!(stats.full_passes.load(Ordering::Relaxed), 2);
        let mut hb = crate::wire::Heartbeat::default();
        stats.fill(&mut hb);
        assert_eq!(hb.files_scanned_total, 3);
        assert_eq!(hb.yara_matches_total, alerts.len() as u64);
        assert!(hb.files_scanned_bytes_total > 0);
        assert_eq!(hb.files_skipped.total(), 0);

        // Unchanged files: nothing new. Deleted file: a deleted event.
        std::fs::remove_file(root.join("uploads/a.php")).unwrap();
        assert!(w.full_pass(&mut session, true, false));
        let (evs, alerts) = drain(&mut rx);
        assert!(alerts.is_empty());
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].get("action"), Some("deleted"));
        assert_eq!(w.stats.integrity_events.load(Ordering::Relaxed), 3);

        // A file too large for the root's limit and a fifo are counted by reason.
        let mut cfg = config(state.path(), &root, false);
        cfg.files[0].max_file_size = 10;
        let (tx, _rx) = mpsc::channel(100);
        let mut w = FileWatcher::new(&cfg, "h".into(), rules.clone(), tx).unwrap();
        std::fs::write(root.join("big.txt"), "more than ten bytes").unwrap();
        let fifo = root.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(w.full_pass(&mut session, true, false));
        let skipped = w.stats.scan.skipped_by_reason();
        assert_eq!(skipped.too_large, 2, "{skipped:?}");
        if made.is_ok_and(|s| s.success()) {
            assert_eq!(skipped.special, 1, "{skipped:?}");
        }
    }

    #[test]
    fn a_state_dir_inside_the_web_root_is_not_watched() {
        let web = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(web.path()).unwrap();
        let state = root.join(".ward-state");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(root.join("index.php"), "<?php echo 1;").unwrap();
        let rules = YaraRules::shipped().unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let cfg = config(&state, &root, false);
        let mut w = FileWatcher::new(&cfg, "h".into(), rules.clone(), tx).unwrap();
        let scanner = rules.scanner(w.limits);
        let mut session = scanner.session();
        assert!(w.full_pass(&mut session, false, false));
        w.save();
        assert!(state.join(super::super::baseline::BASELINE_FILE).is_file());
        assert!(w.full_pass(&mut session, true, false));
        assert!(w.check_path(
            &mut session,
            &state.join(super::super::baseline::BASELINE_FILE)
        ));
        let (evs, alerts) = drain(&mut rx);
        assert!(evs.is_empty() && alerts.is_empty(), "{evs:?} {alerts:?}");
        assert_eq!(w.baseline.len(), 1);
    }

    #[test]
    fn quarantine_moves_matching_files_to_a_private_dir() {
        use std::os::unix::fs::PermissionsExt;
        let state = tempfile::tempdir().unwrap();
        let web = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(web.path()).unwrap();
        let rules = YaraRules::shipped().unwrap();
        let (tx, mut rx) = mpsc::channel(100);
        let cfg = config(state.path(), &root, true);
        let mut w = FileWatcher::new(&cfg, "h".into(), rules.clone(), tx).unwrap();
        let scanner = rules.scanner(w.limits);
        let mut session = scanner.session();
        assert!(w.full_pass(&mut session, false, false));
        std::fs::write(root.join("s.php"), "<?php system($_GET['c']); ?>").unwrap();
        assert!(w.check_path(&mut session, &root.join("s.php")));
        let (_, alerts) = drain(&mut rx);
        assert!(!alerts.is_empty());
        assert!(!root.join("s.php").exists());
        let sha = &alerts[0].entities["sha256"];
        let q = state.path().join(QUARANTINE_DIR);
        assert!(q.join(sha).is_file());
        assert!(q.join(format!("{sha}.json")).is_file());
        let mode = std::fs::metadata(&q).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(alerts[0].evidence.iter().any(|e| e.contains("quarantine")));
    }
}
