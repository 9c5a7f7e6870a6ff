//! The tailer against real files: rotation by rename and by copytruncate
//! under a fast writer, deletion while open, oversized lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ward_agent::config::LogInput;
use ward_agent::decode::LogFormat;
use ward_agent::sources::tail::{Chunk, Tailer};

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

fn open_append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn texts(chunks: &[Chunk]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| c.lines.iter().map(|l| l.text.clone()))
        .collect()
}

/// Polls and commits until nothing new arrives twice in a row.
fn drain(t: &mut Tailer) -> (Vec<String>, u64) {
    let mut out = Vec::new();
    let mut oversized = 0;
    let mut quiet = 0;
    while quiet < 2 {
        let chunks = t.poll();
        if chunks.is_empty() {
            quiet += 1;
        } else {
            quiet = 0;
        }
        oversized += chunks.iter().map(|c| c.oversized).sum::<u64>();
        out.extend(texts(&chunks));
        t.commit(&chunks).unwrap();
    }
    (out, oversized)
}

#[test]
fn a_file_deleted_while_open_is_read_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut f = open_append(&log);
    writeln!(f, "first").unwrap();
    let mut t = tailer(dir.path(), "app.log");
    assert_eq!(drain(&mut t).0, ["first"]);
    writeln!(f, "second").unwrap();
    writeln!(f, "third").unwrap();
    std::fs::remove_file(&log).unwrap();
    assert_eq!(drain(&mut t).0, ["second", "third"]);
    writeln!(f, "after the tailer let go").unwrap();
    assert!(drain(&mut t).0.is_empty());
}

#[test]
fn oversized_lines_are_counted_and_skipped_and_the_rest_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut f = open_append(&log);
    writeln!(f, "before").unwrap();
    let mut t = tailer(dir.path(), "app.log");
    assert_eq!(drain(&mut t).0, ["before"]);
    // A 10 MB line arriving in pieces, then normal lines.
    let piece = "y".repeat(1024 * 1024);
    let mut oversized = 0;
    for _ in 0..10 {
        f.write_all(piece.as_bytes()).unwrap();
        let (lines, n) = drain(&mut t);
        assert!(lines.is_empty());
        oversized += n;
    }
    writeln!(f).unwrap();
    writeln!(f, "after").unwrap();
    writeln!(f, "{}", "z".repeat(70_000)).unwrap();
    writeln!(f, "last").unwrap();
    let (lines, n) = drain(&mut t);
    oversized += n;
    assert_eq!(lines, ["after", "last"]);
    assert_eq!(oversized, 2, "the 10 MB line and the 70 kB line, once each");
}

#[test]
fn copytruncate_with_the_rotated_name_in_the_glob_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let mut f = open_append(&log);
    writeln!(f, "a1").unwrap();
    let mut t = tailer(dir.path(), "app.log*");
    assert_eq!(drain(&mut t).0, ["a1"]);
    // Written, then rotated before the tailer looked again.
    writeln!(f, "a2").unwrap();
    std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
    f.set_len(0).unwrap();
    writeln!(f, "b1 a much longer first line than before").unwrap();
    let mut got = drain(&mut t).0;
    got.sort();
    assert_eq!(got, ["a2", "b1 a much longer first line than before"]);
}

#[test]
fn rotation_under_a_fast_writer_delivers_every_line_exactly_once() {
    const TOTAL: usize = 60_000;
    const ROTATE_EVERY: usize = 6_000;
    const RATE: f64 = 20_000.0; // lines per second
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        let start = Instant::now();
        let mut f = open_append(&writer_log);
        for i in 0..TOTAL {
            writeln!(
                f,
                "Nov 22 04:00:00 host app[1]: seq={i:06} payload={}",
                "x".repeat(40)
            )
            .unwrap();
            if i % 200 == 199 {
                let due = Duration::from_secs_f64((i + 1) as f64 / RATE);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            if (i + 1) % ROTATE_EVERY == 0 {
                let n = (i + 1) / ROTATE_EVERY;
                let rotated = writer_log.with_extension(format!("log.{n}"));
                if n.is_multiple_of(2) {
                    std::fs::rename(&writer_log, &rotated).unwrap();
                    f = open_append(&writer_log);
                } else {
                    std::fs::copy(&writer_log, &rotated).unwrap();
                    f.set_len(0).unwrap();
                }
            }
        }
        start.elapsed()
    });

    let mut t = tailer(dir.path(), "app.log*");
    let mut seen = vec![0u32; TOTAL];
    let mut record = |chunks: &[Chunk]| {
        for line in texts(chunks) {
            let seq: usize = line
                .split("seq=")
                .nth(1)
                .and_then(|s| s.get(..6))
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("damaged line: {line:?}"));
            seen[seq] += 1;
        }
    };
    while !writer.is_finished() {
        let chunks = t.poll();
        record(&chunks);
        t.commit(&chunks).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = writer.join().unwrap();
    let mut quiet = 0;
    while quiet < 3 {
        let chunks = t.poll();
        quiet = if chunks.is_empty() { quiet + 1 } else { 0 };
        record(&chunks);
        t.commit(&chunks).unwrap();
    }
    let rate = TOTAL as f64 / elapsed.as_secs_f64();
    assert!(
        rate >= 10_000.0,
        "the writer managed only {rate:.0} lines/s"
    );
    let missing: Vec<usize> = (0..TOTAL).filter(|&i| seen[i] == 0).collect();
    let doubled: Vec<usize> = (0..TOTAL).filter(|&i| seen[i] > 1).collect();
    assert!(
        missing.is_empty() && doubled.is_empty(),
        "{} missing (first {:?}), {} duplicated (first {:?})",
        missing.len(),
        missing.first(),
        doubled.len(),
        doubled.first()
    );
}
