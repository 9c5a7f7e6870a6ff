//! The journald source against the real journalctl, on real journal files
//! that systemd-journal-remote writes from export-format entries: an SSH
//! brute force, a non-UTF-8 message, an oversized entry, restarts with and
//! without a commit, appends to the same file and a new file, a killed
//! journalctl, and no child left behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;
use ward_agent::config::JournalInput;
use ward_agent::decode::journal::{JournalDecoder, JournalEntry, MAX_ENTRY_BYTES};
use ward_agent::engine::{Detector, RulePack, SigmaDetector};
use ward_agent::sources::journal::{Journal, JournalBatch, find_journalctl};

const BRUTE_FORCE_RULE: &str = "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d";

/// systemd-journal-remote, or `None` (with a loud message) when it is
/// missing and cannot be installed here. `scripts/test` installs it when
/// run as root, so there a missing tool is a failure, not a skip.
fn journal_remote() -> Option<PathBuf> {
    let found = ["/lib/systemd", "/usr/lib/systemd"]
        .iter()
        .map(|d| Path::new(d).join("systemd-journal-remote"))
        .find(|p| p.exists());
    if found.is_some() && find_journalctl().is_some() {
        return found;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    assert!(
        !root,
        "systemd-journal-remote or journalctl is missing; scripts/test installs them as root \
         (apt-get install systemd systemd-journal-remote)"
    );
    eprintln!(
        "\n!!! SKIPPED: systemd-journal-remote/journalctl missing and not root; \
         the journald tests did not run !!!\n"
    );
    None
}

/// One entry in journal export format.
struct Entry {
    message: Vec<u8>,
    program: &'static str,
    unit: &'static str,
    pid: u32,
}

fn failed(ip: &str, n: u32, first_pid: u32) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            message: format!(
                "Failed password for root from {ip} port {} ssh2",
                50000 + first_pid + i
            )
            .into_bytes(),
            program: "sshd",
            unit: "ssh.service",
            pid: first_pid + i,
        })
        .collect()
}

/// Writes `entries` (realtime = now) into the journal file `file` with
/// systemd-journal-remote (appending when the file exists).
fn write_journal(tool: &Path, file: &Path, entries: &[Entry]) {
    let now = Utc::now().timestamp_micros();
    let mut export = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        write!(
            export,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _HOSTNAME=web01\nSYSLOG_IDENTIFIER={}\n_COMM={}\n_PID={}\n_SYSTEMD_UNIT={}\nPRIORITY=5\nSYSLOG_FACILITY=10\n",
            now + i as i64,
            now + i as i64,
            e.program,
            e.program,
            e.pid,
            e.unit
        )
        .unwrap();
        export.extend_from_slice(b"MESSAGE\n");
        export.extend_from_slice(&(e.message.len() as u64).to_le_bytes());
        export.extend_from_slice(&e.message);
        export.extend_from_slice(b"\n\n");
    }
    let mut child = Command::new(tool)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start(dir: &Path, state: &Path) -> Journal {
    Journal::start(
        &[JournalInput {
            units: vec![],
            directory: Some(dir.to_owned()),
            file: None,
        }],
        state,
        Utc::now() - chrono::TimeDelta::minutes(5),
        Arc::new(Notify::new()),
    )
    .unwrap()
}

struct Read {
    batches: Vec<JournalBatch>,
}

impl Read {
    fn entries(&self) -> Vec<&JournalEntry> {
        self.batches.iter().flat_map(|b| &b.entries).collect()
    }
    fn messages(&self) -> Vec<String> {
        self.entries()
            .iter()
            .map(|e| e.message.clone().unwrap_or_default())
            .collect()
    }
    fn oversized(&self) -> u64 {
        self.batches.iter().map(|b| b.oversized).sum()
    }
}

/// Polls until `want` entries arrived, then 500 ms more to catch extras.
fn read(j: &mut Journal, want: usize) -> Read {
    let mut batches = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet_since = None;
    loop {
        let got = j.poll();
        batches.extend(got);
        let n: usize = batches.iter().map(|b: &JournalBatch| b.entries.len()).sum();
        if n >= want {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_millis(500) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {want} journal entries arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Read { batches }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_brute_force_in_a_real_journal_alerts_and_restarts_neither_skip_nor_repeat() {
    let Some(tool) = journal_remote() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("remote");
    std::fs::create_dir_all(&dir).unwrap();
    let state = tmp.path().join("state");
    let file = dir.join("remote.journal");

    // Eight failed logins, a message that is not UTF-8, an oversized entry.
    let mut first = failed("203.0.113.7", 8, 100);
    first.push(Entry {
        message: b"Failed password for r\xffoot from 198.51.100.9 port 1 ssh2".to_vec(),
        program: "sshd",
        unit: "ssh.service",
        pid: 200,
    });
    first.push(Entry {
        message: vec![b'A'; MAX_ENTRY_BYTES + 10],
        program: "app",
        unit: "app.service",
        pid: 201,
    });
    first.push(Entry {
        message: b"session opened".to_vec(),
        program: "sshd",
        unit: "ssh.service",
        pid: 202,
    });
    write_journal(&tool, &file, &first);

    let pack = RulePack::shipped().unwrap();
    let mut detector = SigmaDetector::new(&pack).unwrap();
    let decoder = JournalDecoder::new("web01");

    let mut j = start(&dir, &state);
    let r = read(&mut j, 10);
    assert_eq!(r.oversized(), 1, "the oversized entry is counted");
    let messages = r.messages();
    assert_eq!(messages.len(), 10, "{messages:#?}");
    assert_eq!(
        messages[8],
        "Failed password for r\u{fffd}oot from 198.51.100.9 port 1 ssh2"
    );
    assert_eq!(messages[9], "session opened");
    let mut alerts = Vec::new();
    for e in r.entries() {
        let event = decoder.decode(e).unwrap();
        assert!(event.origin.starts_with("journal:s="), "{}", event.origin);
        alerts.extend(detector.process(&event));
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].rule_id, BRUTE_FORCE_RULE);
    assert_eq!(alerts[0].entities["src_ip"], "203.0.113.7");
    j.commit(&r.batches).unwrap();
    let committed = r.entries().last().unwrap().cursor.clone();
    let pids = j.child_pids();
    assert_eq!(pids.len(), 1);
    assert!(alive(pids[0]));
    drop(j);
    assert!(
        !alive(pids[0]),
        "journalctl {} outlived the source",
        pids[0]
    );

    // Appended to the same file and written to a new one while stopped.
    write_journal(&tool, &file, &failed("198.51.100.23", 3, 300));
    write_journal(
        &tool,
        &dir.join("second.journal"),
        &failed("198.51.100.23", 2, 400),
    );
    let mut j = start(&dir, &state);
    let r = read(&mut j, 5);
    let pids: Vec<String> = r.entries().iter().map(|e| e.pid.clone().unwrap()).collect();
    assert_eq!(
        pids,
        ["300", "301", "302", "400", "401"],
        "exactly the new entries"
    );
    let mut alerts = Vec::new();
    for e in r.entries() {
        alerts.extend(detector.process(&decoder.decode(e).unwrap()));
    }
    assert_eq!(alerts.len(), 1, "five new failures: a second brute force");
    assert_eq!(alerts[0].entities["src_ip"], "198.51.100.23");

    // Not committed: a restart reads the same entries again.
    drop(j);
    let mut j = start(&dir, &state);
    let again = read(&mut j, 5);
    let again_pids: Vec<String> = again
        .entries()
        .iter()
        .map(|e| e.pid.clone().unwrap())
        .collect();
    assert_eq!(again_pids, pids);
    j.commit(&again.batches).unwrap();
    let key = format!("directory:{}", dir.display());
    assert_ne!(j.cursor(&key), Some(committed.as_str()));
    assert_eq!(
        j.cursor(&key),
        Some(again.entries().last().unwrap().cursor.as_str())
    );

    // Followed live; a killed journalctl is restarted after the last entry read.
    write_journal(&tool, &file, &failed("192.0.2.1", 1, 500));
    let r = read(&mut j, 1);
    assert_eq!(r.entries()[0].pid.as_deref(), Some("500"));
    let child = j.child_pids()[0];
    assert!(
        Command::new("kill")
            .arg(child.to_string())
            .status()
            .unwrap()
            .success()
    );
    write_journal(&tool, &file, &failed("192.0.2.1", 2, 600));
    let r2 = read(&mut j, 2);
    let live: Vec<String> = r2
        .entries()
        .iter()
        .map(|e| e.pid.clone().unwrap())
        .collect();
    assert_eq!(
        live,
        ["600", "601"],
        "nothing skipped or repeated over the restart"
    );
    let restarted = Instant::now();
    while j.child_pids().first() == Some(&child) {
        assert!(restarted.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    j.commit(&r.batches).unwrap();
    j.commit(&r2.batches).unwrap();
    drop(j);

    // Only the new source key's record exists, with the last cursor.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("journal-cursors.json")).unwrap())
            .unwrap();
    let sources = saved["sources"].as_object().unwrap();
    assert_eq!(sources.len(), 1);
    let last = r2.entries().last().unwrap().cursor.clone();
    assert_eq!(
        sources[&format!("directory:{}", dir.display())]["cursor"],
        last.as_str()
    );
}

#[test]
fn a_new_source_starts_at_its_first_start_and_units_filter() {
    let Some(tool) = journal_remote() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("host.journal");
    write_journal(&tool, &file, &failed("203.0.113.7", 3, 1));
    std::thread::sleep(Duration::from_millis(1100));
    let first_start = Utc::now();
    std::thread::sleep(Duration::from_millis(1100));
    let mut later = failed("203.0.113.7", 2, 10);
    later.insert(
        1,
        Entry {
            message: b"(root) CMD (run-parts /etc/cron.hourly)".to_vec(),
            program: "CRON",
            unit: "cron.service",
            pid: 50,
        },
    );
    write_journal(&tool, &file, &later);

    let pids =
        |r: &Read| -> Vec<String> { r.entries().iter().map(|e| e.pid.clone().unwrap()).collect() };
    let mut j = start_with(&dir, &tmp.path().join("s1"), first_start, vec![]);
    assert_eq!(
        pids(&read(&mut j, 3)),
        ["10", "50", "11"],
        "entries before the first start are history"
    );
    let mut j = start_with(
        &dir,
        &tmp.path().join("s2"),
        first_start,
        vec!["ssh.service".into()],
    );
    assert_eq!(pids(&read(&mut j, 2)), ["10", "11"], "only ssh.service");
}

fn start_with(
    dir: &Path,
    state: &Path,
    since: chrono::DateTime<Utc>,
    units: Vec<String>,
) -> Journal {
    Journal::start(
        &[JournalInput {
            units,
            directory: Some(dir.to_owned()),
            file: None,
        }],
        state,
        since,
        Arc::new(Notify::new()),
    )
    .unwrap()
}
