//! Tailing log files: globs, content fingerprints, rotation, checkpoints.
//!
//! Files are identified by a fingerprint of their first line (not by path
//! or inode), so a renamed file keeps its offset and a new file at the same
//! path starts at byte 0. Reading stops at the last complete line; a partial
//! last line waits until its newline arrives. [`Tailer::poll`] returns what
//! was read and [`Tailer::commit`] moves the offsets once the caller has
//! handed the resulting alerts on, so a crash re-reads rather than skips.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tracing::{debug, info, warn};

use super::checkpoint::Checkpoints;
use crate::config::LogInput;
use crate::decode::{LogFormat, MAX_LINE_BYTES};

/// Bytes of the first line used for the fingerprint.
const FINGERPRINT_BYTES: usize = 4096;
/// Most bytes read from one file in one poll.
const MAX_READ_PER_POLL: usize = 4 * 1024 * 1024;

/// One complete line read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The text, without the newline; invalid UTF-8 replaced.
    pub text: String,
    /// `file:<fingerprint>:<offset>`, unique per host.
    pub origin: String,
}

/// New lines of one file, and where to resume once they are handed on.
#[derive(Debug)]
pub struct Chunk {
    /// The file's path now.
    pub path: PathBuf,
    /// Its fingerprint.
    pub fingerprint: String,
    /// How its lines are decoded.
    pub format: LogFormat,
    /// The complete lines read.
    pub lines: Vec<Line>,
    /// Lines longer than [`MAX_LINE_BYTES`] that were skipped.
    pub oversized: u64,
    /// Offset after the last complete line (or after skipped bytes of an
    /// oversized line).
    pub end: u64,
    /// Whether `end` is inside an oversized line still being skipped.
    skipping: bool,
    key: (u64, u64),
}

#[derive(Debug)]
struct Tracked {
    path: PathBuf,
    file: File,
    fingerprint: String,
    format: LogFormat,
    /// Offset handed on (committed).
    offset: u64,
    /// Whether the glob still matches this file.
    matched: bool,
    /// Inside an oversized line: discard up to the next newline.
    skipping: bool,
}

#[cfg(unix)]
fn file_key(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}
#[cfg(not(unix))]
fn file_key(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Follows the files of the `[[logs]]` inputs.
pub struct Tailer {
    inputs: Vec<LogInput>,
    state_dir: PathBuf,
    checkpoints: Checkpoints,
    tracked: HashMap<(u64, u64), Tracked>,
}

impl Tailer {
    /// A tailer whose checkpoints live in `state_dir`.
    pub fn new(inputs: Vec<LogInput>, state_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state_dir)?;
        Ok(Tailer {
            inputs,
            state_dir: state_dir.to_owned(),
            checkpoints: Checkpoints::load(state_dir)?,
            tracked: HashMap::new(),
        })
    }

    /// Directories whose changes should wake the tailer up.
    pub fn watch_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .inputs
            .iter()
            .filter_map(|i| {
                let mut dir = PathBuf::new();
                for comp in Path::new(&i.path).components() {
                    let s = comp.as_os_str().to_string_lossy();
                    if s.contains(['*', '?', '[']) {
                        return Some(dir);
                    }
                    dir.push(comp);
                }
                dir.parent().map(Path::to_owned)
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Finds files, notices rotation and truncation, and reads new complete
    /// lines. Nothing moves until [`Tailer::commit`].
    pub fn poll(&mut self) -> Vec<Chunk> {
        self.discover();
        let mut chunks = Vec::new();
        let mut gone = Vec::new();
        for (key, t) in self.tracked.iter_mut() {
            match read_new_lines(*key, t) {
                Ok(Some(chunk)) => chunks.push(chunk),
                Ok(None) => {
                    if !t.matched {
                        // Rotated away or deleted, and read to the end.
                        gone.push(*key);
                    }
                }
                Err(e) => {
                    warn!(error = %e, path = %t.path.display(), "could not read log file");
                    if !t.matched {
                        gone.push(*key);
                    }
                }
            }
        }
        for key in gone {
            if let Some(t) = self.tracked.remove(&key) {
                debug!(path = %t.path.display(), "stopped following file");
            }
        }
        chunks
    }

    /// Marks the chunks' lines as handed on and persists the offsets.
    pub fn commit(&mut self, chunks: &[Chunk]) -> anyhow::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        for c in chunks {
            if let Some(t) = self.tracked.get_mut(&c.key)
                && t.fingerprint == c.fingerprint
            {
                t.offset = c.end;
                t.skipping = c.skipping;
            }
            self.checkpoints.set(&c.fingerprint, c.end, &c.path);
        }
        self.checkpoints.save(&self.state_dir)
    }

    fn discover(&mut self) {
        for t in self.tracked.values_mut() {
            t.matched = false;
            // Truncated in place (copytruncate) — shorter than what was read,
            // or a different first line: start over, as a new file.
            let truncated = t.file.metadata().is_ok_and(|m| m.len() < t.offset)
                || (!t.fingerprint.is_empty()
                    && fingerprint(&mut t.file).as_deref() != Some(t.fingerprint.as_str()));
            if truncated {
                info!(path = %t.path.display(), old = t.offset, "file truncated; reading it from the start");
                t.offset = 0;
                t.skipping = false;
                t.fingerprint = fingerprint(&mut t.file).unwrap_or_default();
            }
        }
        for input in &self.inputs {
            let paths = match glob::glob(&input.path) {
                Ok(p) => p,
                Err(e) => {
                    warn!(error = %e, pattern = %input.path, "bad glob");
                    continue;
                }
            };
            for path in paths.flatten() {
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                let key = file_key(&meta);
                if let Some(t) = self.tracked.get_mut(&key) {
                    t.matched = true;
                    t.path = path;
                    continue;
                }
                let mut file = match File::open(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        warn!(error = %e, path = %path.display(), "could not open log file");
                        continue;
                    }
                };
                let Some(fingerprint) = fingerprint(&mut file) else {
                    // No complete first line yet: try again next poll.
                    continue;
                };
                if self.tracked.values().any(|t| t.fingerprint == fingerprint) {
                    // A copy of a file being followed (copytruncate): it is
                    // read once the original is truncated or gone.
                    continue;
                }
                let offset = self.checkpoints.offset(&fingerprint).unwrap_or(0);
                info!(path = %path.display(), %fingerprint, offset, "following file");
                self.tracked.insert(
                    key,
                    Tracked {
                        path,
                        file,
                        fingerprint,
                        format: input.format,
                        offset,
                        matched: true,
                        skipping: false,
                    },
                );
            }
        }
    }
}

/// CRC32 of the first line (up to [`FINGERPRINT_BYTES`]), or `None` when
/// the file has no complete first line yet.
fn fingerprint(file: &mut File) -> Option<String> {
    let mut buf = vec![0u8; FINGERPRINT_BYTES];
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    let head = &buf[..filled];
    let first = match head.iter().position(|&b| b == b'\n') {
        Some(nl) => &head[..nl],
        None if filled == FINGERPRINT_BYTES => head,
        None => return None,
    };
    Some(format!(
        "{:08x}{:04x}",
        crc32fast::hash(first),
        first.len() as u16
    ))
}

fn read_new_lines(key: (u64, u64), t: &mut Tracked) -> std::io::Result<Option<Chunk>> {
    if t.fingerprint.is_empty() {
        // Truncated to nothing earlier: identify it once a line is complete.
        match fingerprint(&mut t.file) {
            Some(fp) => t.fingerprint = fp,
            None => return Ok(None),
        }
    }
    let len = t.file.metadata()?.len();
    if len <= t.offset {
        return Ok(None);
    }
    let want = ((len - t.offset) as usize).min(MAX_READ_PER_POLL);
    let mut buf = vec![0u8; want];
    t.file.seek(SeekFrom::Start(t.offset))?;
    let mut filled = 0;
    while filled < want {
        match t.file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    let mut lines = Vec::new();
    let mut oversized = 0;
    let mut start = 0usize;
    let mut skipping = t.skipping;
    if skipping {
        match buf.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                start = nl + 1;
                skipping = false;
            }
            None => start = buf.len(),
        }
    }
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        let raw = &buf[start..start + nl];
        let origin = format!("file:{}:{}", t.fingerprint, t.offset + start as u64);
        if raw.len() > MAX_LINE_BYTES {
            oversized += 1;
        } else if !raw.is_empty() {
            lines.push(Line {
                text: crate::decode::line_text(raw).into_owned(),
                origin,
            });
        }
        start += nl + 1;
    }
    if !skipping && start == 0 && buf.len() == MAX_READ_PER_POLL {
        // One line longer than a whole read: count it and skip to its end.
        oversized += 1;
        start = buf.len();
        skipping = true;
    }
    if start == 0 {
        return Ok(None);
    }
    Ok(Some(Chunk {
        path: t.path.clone(),
        fingerprint: t.fingerprint.clone(),
        format: t.format,
        lines,
        oversized,
        end: t.offset + start as u64,
        skipping,
        key,
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tailer(dir: &Path, pattern: &str) -> Tailer {
        Tailer::new(
            vec![LogInput {
                path: dir.join(pattern).display().to_string(),
                format: LogFormat::Syslog,
            }],
            &dir.join("state"),
        )
        .unwrap()
    }

    fn texts(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| c.lines.iter().map(|l| l.text.clone()))
            .collect()
    }

    fn append(path: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn partial_lines_wait_and_restart_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "one\ntwo\nthr");
        let mut t = tailer(dir.path(), "auth.log");
        let c = t.poll();
        assert_eq!(texts(&c), ["one", "two"]);
        t.commit(&c).unwrap();
        append(&log, "ee\n");
        let c = t.poll();
        assert_eq!(texts(&c), ["three"]);
        // Not committed: a new tailer (a restarted agent) reads it again.
        let mut t2 = tailer(dir.path(), "auth.log");
        let c2 = t2.poll();
        assert_eq!(texts(&c2), ["three"]);
        t2.commit(&c2).unwrap();
        let mut t3 = tailer(dir.path(), "auth.log");
        assert!(t3.poll().is_empty());
    }

    #[test]
    fn rename_rotation_reads_old_to_end_then_new_from_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "a1\n");
        let mut t = tailer(dir.path(), "auth.log");
        let c = t.poll();
        t.commit(&c).unwrap();
        append(&log, "a2\n");
        std::fs::rename(&log, dir.path().join("auth.log.1")).unwrap();
        append(&log, "b1\n");
        let c = t.poll();
        let mut got = texts(&c);
        got.sort();
        assert_eq!(got, ["a2", "b1"]);
        t.commit(&c).unwrap();
        assert!(t.poll().is_empty());
    }

    #[test]
    fn copytruncate_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("auth.log");
        append(&log, "old line one\nold line two\n");
        let mut t = tailer(dir.path(), "auth.log");
        let c = t.poll();
        t.commit(&c).unwrap();
        std::fs::write(&log, "new\n").unwrap();
        let c = t.poll();
        assert_eq!(texts(&c), ["new"]);
        assert_ne!(c[0].lines[0].origin, "file:x:0");
    }

    #[test]
    fn watch_dirs_are_the_glob_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let t = tailer(dir.path(), "*.log");
        assert_eq!(t.watch_dirs(), vec![dir.path().to_owned()]);
    }
}
