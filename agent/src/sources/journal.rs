//! journald through `journalctl --output=json --follow`, one child process
//! per `[[journal]]` entry, resumed from a checkpointed cursor.
//!
//! A reader thread per entry runs journalctl, reads its stdout line by line
//! (each line bounded by [`MAX_ENTRY_BYTES`]; longer ones are counted and
//! skipped), parses the entries and hands them to [`Journal::poll`] through
//! a bounded queue, so a slow engine makes journalctl wait instead of
//! memory grow. When journalctl exits it is started again after a backoff
//! (0.5 s doubling to 30 s), after the last entry read. Dropping the
//! [`Journal`] kills the children.
//!
//! Cursors move like file offsets: [`Journal::commit`] records the cursor
//! of the last entry of each batch once the caller has handed the
//! resulting alerts on, written tmp → fsync → rename to
//! `STATE/journal-cursors.json`. A restart resumes with `--after-cursor`, so
//! it neither skips nor repeats entries; a crash between delivery and commit
//! re-reads (alert ids come from the cursor, so the coordinator drops the
//! repeats).
//!
//! A source never read before has no cursor and starts `--since` a time
//! stored for it in the same file when it is first seen: the agent's
//! enrollment (the identity file's time) when that was less than a day
//! ago, else the moment the source was first configured. A fresh install
//! thus misses nothing written after enrollment, and a long-enrolled agent
//! that gains a `[[journal]]` entry does not replay years of history.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{error, info, warn};

use super::write_atomically;
use crate::config::JournalInput;
use crate::decode::journal::{JournalEntry, JournalError, MAX_ENTRY_BYTES, parse_entry};

/// File name of the journal cursors inside the state dir.
pub const CURSOR_FILE: &str = "journal-cursors.json";
/// Entries queued per source between its reader and the pipeline.
const QUEUE: usize = 1024;
/// Most entries taken from one source per poll.
const MAX_PER_POLL: usize = 4096;
/// An enrollment older than this does not set where a new source starts.
const RECENT_ENROLLMENT: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// Restart delays of a journalctl that exited.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Bytes of journalctl's stderr kept per run, for the exit message.
const STDERR_KEEP: usize = 4096;

/// Where reading of one `[[journal]]` entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCursor {
    /// The cursor of the last entry handed on, if any.
    pub cursor: Option<String>,
    /// Where to start while there is no cursor.
    pub since: DateTime<Utc>,
    /// When this record last changed.
    pub updated: DateTime<Utc>,
}

/// All journal cursors of one agent, keyed by [`JournalInput::describe`].
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JournalCursors {
    /// Source key → cursor.
    pub sources: BTreeMap<String, SourceCursor>,
}

impl JournalCursors {
    /// Reads the cursors; an absent file is an empty set, a damaged one an error.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let path = state_dir.join(CURSOR_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "damaged journal cursor file {}: {e}; move it away to start the journal sources again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Persists the cursors atomically.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        write_atomically(&state_dir.join(CURSOR_FILE), &json, 0o600)
    }
}

/// Where a source never read before starts: the enrollment when it is
/// recent (`enrolled`, from the identity file's time), else `now`.
pub fn first_start(enrolled: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    match enrolled {
        Some(t) if t <= now && now - t <= RECENT_ENROLLMENT => t,
        _ => now,
    }
}

/// When the agent in `state_dir` was enrolled: the identity file's mtime.
pub fn enrollment_time(state_dir: &Path) -> Option<DateTime<Utc>> {
    let meta = std::fs::metadata(crate::identity::Identity::path(state_dir)).ok()?;
    meta.modified().ok().map(DateTime::<Utc>::from)
}

/// Finds `journalctl` in `PATH` (in `/usr/bin` and `/bin` when `PATH` is not set).
pub fn find_journalctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("journalctl"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// New entries of one source, and the cursor to commit once they are handed on.
#[derive(Debug)]
pub struct JournalBatch {
    /// Index of the source in the configured `[[journal]]` entries.
    pub source: usize,
    /// The entries, in journal order.
    pub entries: Vec<JournalEntry>,
    /// Lines over [`MAX_ENTRY_BYTES`], skipped.
    pub oversized: u64,
    /// Lines that were not journal entries, skipped.
    pub malformed: u64,
}

enum Item {
    Entry(JournalEntry),
    Bad(JournalError),
}

struct Source {
    key: String,
    rx: Option<Receiver<Item>>,
    child: Arc<Mutex<Option<Child>>>,
    thread: Option<JoinHandle<()>>,
}

/// Follows the `[[journal]]` entries.
pub struct Journal {
    state_dir: PathBuf,
    cursors: JournalCursors,
    sources: Vec<Source>,
    stop: Arc<AtomicBool>,
}

/// What one reader needs to run journalctl.
struct Spec {
    program: PathBuf,
    input: JournalInput,
    key: String,
}

impl Spec {
    fn command(&self, start: &Start) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args([
            "--output=json",
            "--follow",
            "--all",
            "--no-pager",
            "--quiet",
        ]);
        if let Some(d) = &self.input.directory {
            cmd.arg("--directory").arg(d);
        }
        if let Some(f) = &self.input.file {
            cmd.arg("--file").arg(f);
        }
        for u in &self.input.units {
            cmd.arg("--unit").arg(u);
        }
        match start {
            Start::After(cursor) => cmd.arg(format!("--after-cursor={cursor}")),
            Start::Since(t) => cmd.arg(format!("--since=@{}", t.timestamp())),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

#[derive(Debug, Clone)]
enum Start {
    After(String),
    Since(DateTime<Utc>),
}

/// A cursor journalctl refused: start from the time in it (`t=` is the
/// entry's realtime in hex microseconds), else from now.
fn fallback_after_bad_cursor(cursor: &str) -> DateTime<Utc> {
    cursor
        .split(';')
        .find_map(|part| part.strip_prefix("t="))
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .and_then(DateTime::from_timestamp_micros)
        .unwrap_or_else(Utc::now)
}

impl Journal {
    /// Starts one journalctl per `[[journal]]` entry, with `journalctl`
    /// found in `PATH`. `first_start` is where sources never seen before
    /// begin (see [`first_start`]); `wake` is notified when entries arrive.
    pub fn start(
        inputs: &[JournalInput],
        state_dir: &Path,
        first_start: DateTime<Utc>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Journal> {
        if inputs.is_empty() {
            return Journal::start_with(
                Path::new("journalctl"),
                inputs,
                state_dir,
                first_start,
                wake,
            );
        }
        let Some(program) = find_journalctl() else {
            anyhow::bail!(
                "[[journal]] entry 1 ({}): journalctl was not found in PATH; \
                 install systemd's journalctl or remove the [[journal]] entries",
                inputs[0].describe()
            );
        };
        Journal::start_with(&program, inputs, state_dir, first_start, wake)
    }

    /// As [`Journal::start`], with the journalctl program given.
    pub fn start_with(
        program: &Path,
        inputs: &[JournalInput],
        state_dir: &Path,
        first_start: DateTime<Utc>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Journal> {
        if !inputs.is_empty() && !is_executable(program) {
            anyhow::bail!(
                "[[journal]] entry 1 ({}): {} is not an executable journalctl",
                inputs[0].describe(),
                program.display()
            );
        }
        std::fs::create_dir_all(state_dir)?;
        let mut cursors = JournalCursors::load(state_dir)?;
        let mut keys: Vec<String> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            let key = input.describe();
            if keys.contains(&key) {
                anyhow::bail!("[[journal]] entry {}: {key} is configured twice", i + 1);
            }
            keys.push(key);
        }
        let mut changed = false;
        for key in &keys {
            cursors.sources.entry(key.clone()).or_insert_with(|| {
                changed = true;
                SourceCursor {
                    cursor: None,
                    since: first_start,
                    updated: Utc::now(),
                }
            });
        }
        if changed {
            // The start of a new source must survive a restart before its
            // first commit, or entries between would be skipped.
            cursors.save(state_dir)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut sources = Vec::new();
        for (input, key) in inputs.iter().zip(keys) {
            let rec = &cursors.sources[&key];
            let start = match &rec.cursor {
                Some(c) => Start::After(c.clone()),
                None => Start::Since(rec.since),
            };
            let spec = Spec {
                program: program.to_owned(),
                input: input.clone(),
                key: key.clone(),
            };
            let (tx, rx) = sync_channel(QUEUE);
            let child = Arc::new(Mutex::new(None));
            let thread = {
                let child = child.clone();
                let stop = stop.clone();
                let wake = wake.clone();
                std::thread::Builder::new()
                    .name("ward-journal".into())
                    .spawn(move || reader(spec, start, tx, child, stop, wake))?
            };
            sources.push(Source {
                key,
                rx: Some(rx),
                child,
                thread: Some(thread),
            });
        }
        Ok(Journal {
            state_dir: state_dir.to_owned(),
            cursors,
            sources,
            stop,
        })
    }

    /// How many sources run.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether no source runs.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The process ids of the running journalctl children.
    pub fn child_pids(&self) -> Vec<u32> {
        self.sources
            .iter()
            .filter_map(|s| s.child.lock().ok()?.as_ref().map(Child::id))
            .collect()
    }

    /// Entries read since the last poll. Nothing is committed until
    /// [`Journal::commit`].
    pub fn poll(&mut self) -> Vec<JournalBatch> {
        let mut out = Vec::new();
        for (i, s) in self.sources.iter().enumerate() {
            let Some(rx) = &s.rx else { continue };
            let mut batch = JournalBatch {
                source: i,
                entries: Vec::new(),
                oversized: 0,
                malformed: 0,
            };
            let mut taken = 0;
            while taken < MAX_PER_POLL {
                match rx.try_recv() {
                    Ok(Item::Entry(e)) => batch.entries.push(e),
                    Ok(Item::Bad(JournalError::TooLong(_))) => batch.oversized += 1,
                    Ok(Item::Bad(JournalError::Malformed(_))) => batch.malformed += 1,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
                taken += 1;
            }
            if taken > 0 {
                out.push(batch);
            }
        }
        out
    }

    /// Records the cursor of each batch's last entry, atomically.
    pub fn commit(&mut self, batches: &[JournalBatch]) -> anyhow::Result<()> {
        let mut changed = false;
        for b in batches {
            let (Some(last), Some(source)) = (b.entries.last(), self.sources.get(b.source)) else {
                continue;
            };
            if let Some(rec) = self.cursors.sources.get_mut(&source.key) {
                rec.cursor = Some(last.cursor.clone());
                rec.updated = Utc::now();
                changed = true;
            }
        }
        if changed {
            self.cursors.save(&self.state_dir)?;
        }
        Ok(())
    }

    /// The committed cursor of the source with `key`.
    pub fn cursor(&self, key: &str) -> Option<&str> {
        self.cursors.sources.get(key)?.cursor.as_deref()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in &mut self.sources {
            if let Ok(mut child) = s.child.lock()
                && let Some(c) = child.as_mut()
            {
                let _ = c.kill();
            }
            // A reader blocked on a full queue sees it closed.
            s.rx = None;
        }
        for s in &mut self.sources {
            if let Some(t) = s.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// One line of a child's output.
enum LineRead {
    Line,
    TooLong(usize),
    Eof,
}

/// Reads up to the next newline into `buf` (without it), keeping at most
/// `max` bytes: a longer line is consumed to its end and reported with its
/// length. A last line without a newline (the writer died) is dropped.
fn read_bounded_line(
    r: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut len = 0usize;
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(LineRead::Eof);
        }
        let (part, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        len += part.len();
        if len <= max {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        let used = done.unwrap_or(part.len());
        r.consume(used);
        if done.is_some() {
            return Ok(if len > max {
                LineRead::TooLong(len)
            } else {
                LineRead::Line
            });
        }
    }
}

/// Sleeps `d` unless stopped first; returns whether to go on.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    !stop.load(Ordering::SeqCst)
}

fn reader(
    spec: Spec,
    mut start: Start,
    tx: SyncSender<Item>,
    slot: Arc<Mutex<Option<Child>>>,
    stop: Arc<AtomicBool>,
    wake: Arc<Notify>,
) {
    let mut delay = BACKOFF_MIN;
    let mut buf = Vec::with_capacity(8192);
    while !stop.load(Ordering::SeqCst) {
        let mut child = match spec.command(&start).spawn() {
            Ok(c) => c,
            Err(e) => {
                error!(source = %spec.key, program = %spec.program.display(), error = %e,
                    retry_in_ms = delay.as_millis() as u64, "cannot start journalctl");
                if !pause(delay, &stop) {
                    return;
                }
                delay = (delay * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let started = Instant::now();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        let pid = child.id();
        match slot.lock() {
            Ok(mut s) => *s = Some(child),
            Err(_) => return,
        }
        // Killed while it was starting up.
        if stop.load(Ordering::SeqCst) {
            kill_and_reap(&slot);
            return;
        }
        match &start {
            Start::After(c) => {
                info!(source = %spec.key, pid, after_cursor = %c, "following journal")
            }
            Start::Since(t) => {
                info!(source = %spec.key, pid, since = %t.to_rfc3339(), "following journal")
            }
        }
        let errors = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let _ = stderr.take(STDERR_KEEP as u64).read_to_end(&mut kept);
            String::from_utf8_lossy(&kept).trim().to_string()
        });
        let mut out = BufReader::with_capacity(64 * 1024, stdout);
        let mut entries = 0u64;
        let mut closed = false;
        loop {
            let item = match read_bounded_line(&mut out, &mut buf, MAX_ENTRY_BYTES) {
                Ok(LineRead::Line) => match parse_entry(&buf) {
                    Ok(entry) => {
                        start = Start::After(entry.cursor.clone());
                        entries += 1;
                        Item::Entry(entry)
                    }
                    Err(e) => {
                        warn!(source = %spec.key, error = %e, "skipped journal line");
                        Item::Bad(e)
                    }
                },
                Ok(LineRead::TooLong(n)) => {
                    warn!(source = %spec.key, bytes = n, "skipped an oversized journal entry");
                    Item::Bad(JournalError::TooLong(n))
                }
                Ok(LineRead::Eof) => break,
                Err(e) => {
                    warn!(source = %spec.key, error = %e, "reading journalctl failed");
                    break;
                }
            };
            if tx.send(item).is_err() {
                closed = true;
                break;
            }
            wake.notify_one();
        }
        drop(out);
        let status = kill_and_reap(&slot);
        let stderr_text = errors.join().unwrap_or_default();
        if closed || stop.load(Ordering::SeqCst) {
            return;
        }
        if let Start::After(c) = &start
            && stderr_text.contains("Failed to seek to cursor")
        {
            let since = fallback_after_bad_cursor(c);
            error!(source = %spec.key, cursor = %c, since = %since.to_rfc3339(),
                "journalctl refused the checkpointed cursor; starting from its time instead");
            start = Start::Since(since);
        }
        if entries > 0 || started.elapsed() >= BACKOFF_MAX {
            delay = BACKOFF_MIN;
        }
        warn!(source = %spec.key, status = %status.map_or("unknown".into(), |s| s.to_string()),
            stderr = %stderr_text, entries, retry_in_ms = delay.as_millis() as u64,
            "journalctl exited; restarting it");
        if !pause(delay, &stop) {
            return;
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Kills the child in `slot` (if it still runs) and reaps it.
fn kill_and_reap(slot: &Mutex<Option<Child>>) -> Option<std::process::ExitStatus> {
    let mut child = slot.lock().ok()?.take()?;
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = child.kill();
    child.wait().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines_count_long_ones_and_keep_going() {
        let data = b"short\n0123456789abcdef\nok\npartial";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 8),
            Ok(LineRead::Line)
        ));
        assert_eq!(buf, b"short");
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 8),
            Ok(LineRead::TooLong(16))
        ));
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 8),
            Ok(LineRead::Line)
        ));
        assert_eq!(buf, b"ok");
        assert!(matches!(
            read_bounded_line(&mut r, &mut buf, 8),
            Ok(LineRead::Eof)
        ));
    }

    #[test]
    fn a_new_source_starts_at_a_recent_enrollment_else_now() {
        let now = Utc::now();
        let hour_ago = now - chrono::TimeDelta::hours(1);
        assert_eq!(first_start(Some(hour_ago), now), hour_ago);
        assert_eq!(
            first_start(Some(now - chrono::TimeDelta::days(400)), now),
            now
        );
        assert_eq!(
            first_start(Some(now + chrono::TimeDelta::hours(1)), now),
            now
        );
        assert_eq!(first_start(None, now), now);
    }

    #[test]
    fn a_refused_cursor_falls_back_to_its_time() {
        let t = fallback_after_bad_cursor("s=9b8b;i=1;b=0123;m=3e9;t=6618de0f8d5fa;x=6f11");
        assert_eq!(t.timestamp_micros(), 0x6618de0f8d5fa);
        let before = Utc::now();
        assert!(fallback_after_bad_cursor("garbage") >= before);
    }

    #[test]
    fn a_missing_journalctl_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let input = JournalInput {
            units: vec![],
            directory: Some(dir.path().to_owned()),
            file: None,
        };
        let err = Journal::start_with(
            &dir.path().join("no-journalctl"),
            &[input],
            &dir.path().join("state"),
            Utc::now(),
            Arc::new(Notify::new()),
        )
        .err()
        .expect("an error")
        .to_string();
        assert!(err.contains("[[journal]] entry 1"), "{err}");
        assert!(err.contains("not an executable journalctl"), "{err}");
    }
}
