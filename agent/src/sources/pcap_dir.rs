//! `[[pcap]]` capture directories: capture files that appear in a directory
//! are replayed once each through a [`NetDecoder`], their timestamps shifted
//! so that the capture ends at the moment it is read, and the events go to
//! the pipeline's push queue like live capture's.
//!
//! Drills use this as a sandboxed host's capture source: the drill runner
//! renames a scenario's pcap into the directory at its offset, and the
//! agent sees the traffic as if it had just been captured — same decoders,
//! same engine, same uplink as `[[net]]`. Events are named like
//! `replay --pcap`'s (`pcap:<file id>:<frame index>.<kind>`), so alert ids
//! are stable; files already replayed are listed in
//! `STATE/pcap-replayed.txt` and not replayed again after a restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::Sender;
use tracing::{info, warn};

use super::capture::{CaptureStats, DecoderTotals};
use crate::decode::net::{FlowConfig, NetDecoder};
use crate::pipeline::Pushed;

/// Name of the list of replayed capture files in the state dir.
pub const REPLAYED_FILE: &str = "pcap-replayed.txt";
/// How often the directories are listed.
const POLL: Duration = Duration::from_millis(200);

/// Starts one thread watching `dirs`. It ends when `stop` is set or the
/// pipeline's queue closes.
pub fn spawn(
    dirs: Vec<PathBuf>,
    host: String,
    state_dir: &Path,
    tx: Sender<Pushed>,
    stats: Arc<CaptureStats>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    for d in &dirs {
        std::fs::create_dir_all(d)
            .map_err(|e| anyhow::anyhow!("cannot create capture dir {}: {e}", d.display()))?;
    }
    let list = state_dir.join(REPLAYED_FILE);
    let mut done: BTreeSet<String> = std::fs::read_to_string(&list)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    Ok(std::thread::Builder::new()
        .name("ward-pcap-dir".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) && !tx.is_closed() {
                for path in new_files(&dirs) {
                    let id = match crate::sources::pcap::source_id(&path) {
                        Ok(id) => id,
                        Err(e) => {
                            warn!(error = %e, "cannot read capture file");
                            continue;
                        }
                    };
                    let key = format!("{}\t{id}", path.display());
                    if done.contains(&key) {
                        continue;
                    }
                    match replay_file(&path, &id, &host, Utc::now(), &tx, &stats) {
                        Ok(frames) => {
                            info!(path = %path.display(), frames, "capture file replayed");
                        }
                        Err(e) => {
                            warn!(path = %path.display(), error = %e, "capture file not replayed")
                        }
                    }
                    done.insert(key);
                    let text: String = done.iter().map(|k| format!("{k}\n")).collect();
                    if let Err(e) = super::write_atomically(&list, text.as_bytes(), 0o600) {
                        warn!(error = %e, "cannot record replayed capture files");
                    }
                }
                std::thread::sleep(POLL);
            }
        })?)
}

fn new_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_capture = name.ends_with(".pcap") || name.ends_with(".pcapng");
            if !name.starts_with('.') && is_capture && e.file_type().is_ok_and(|t| t.is_file()) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Replays one capture file with its timestamps shifted so that its last
/// frame is at `end`, pushing the events (blocking when the queue is
/// full: a file can wait, unlike live traffic). Returns the frames read.
pub fn replay_file(
    path: &Path,
    source: &str,
    host: &str,
    end: DateTime<Utc>,
    tx: &Sender<Pushed>,
    stats: &CaptureStats,
) -> anyhow::Result<u64> {
    let mut last = Duration::ZERO;
    crate::sources::pcap::read_file(path, |ts, _, _| last = last.max(ts))?;
    let end_ns = end.timestamp_nanos_opt().unwrap_or(0);
    let shift = i128::from(end_ns) - last.as_nanos() as i128;
    let mut decoder = NetDecoder::new(host, source, FlowConfig::default());
    let mut events = Vec::new();
    let mut index = 0u64;
    let mut closed = false;
    let file = crate::sources::pcap::read_file(path, |ts, link, data| {
        let ns = i64::try_from(ts.as_nanos() as i128 + shift).unwrap_or(end_ns);
        decoder.decode(
            DateTime::from_timestamp_nanos(ns),
            link,
            data,
            index,
            &mut events,
        );
        index += 1;
        stats.packets.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        for ev in events.drain(..) {
            if !closed && tx.blocking_send(Pushed::Event(ev)).is_err() {
                closed = true;
            }
        }
    })?;
    decoder.finish(&mut events);
    for ev in events.drain(..) {
        if tx.blocking_send(Pushed::Event(ev)).is_err() {
            break;
        }
    }
    DecoderTotals::default().publish(&decoder, stats);
    Ok(file.frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../rules/fixtures/network/beaconing/positive.pcap")
    }

    fn drain(rx: &mut tokio::sync::mpsc::Receiver<Pushed>) -> Vec<crate::event::Event> {
        let mut out = Vec::new();
        while let Ok(p) = rx.try_recv() {
            if let Pushed::Event(e) = p {
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn a_capture_is_shifted_to_end_when_it_is_read() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
        let stats = CaptureStats::default();
        let end = Utc::now();
        let frames = replay_file(&fixture(), "pcap:test", "ws", end, &tx, &stats).unwrap();
        assert_eq!(frames, 64);
        assert_eq!(stats.packets.load(Ordering::Relaxed), 64);
        let events = drain(&mut rx);
        assert!(!events.is_empty());
        // The capture spans 420 s: every event lies in those last 420 s.
        for e in &events {
            assert!(e.time <= end, "{} after {end}", e.time);
            assert!(e.time >= end - chrono::Duration::seconds(421), "{}", e.time);
            assert!(e.origin.starts_with("pcap:test:"), "{}", e.origin);
        }
        assert!(events.iter().any(|e| e.get("event_type") == Some("beacon")));
    }

    #[test]
    fn files_renamed_into_the_dir_are_replayed_once_even_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let capture = dir.path().join("capture");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        let run = |expect_events: bool| {
            let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
            let stop = Arc::new(AtomicBool::new(false));
            let h = spawn(
                vec![capture.clone()],
                "ws".into(),
                &state,
                tx,
                Arc::new(CaptureStats::default()),
                stop.clone(),
            )
            .unwrap();
            if expect_events {
                // Not yet complete: a dot-file is left alone.
                std::fs::copy(fixture(), capture.join(".1.pcap.tmp")).unwrap();
                std::thread::sleep(Duration::from_millis(500));
                assert!(drain(&mut rx).is_empty());
                std::fs::rename(capture.join(".1.pcap.tmp"), capture.join("1.pcap")).unwrap();
            }
            let mut events = Vec::new();
            if expect_events {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while events.is_empty() && std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                    events.extend(drain(&mut rx));
                }
            }
            // Several polls more: nothing else (or, after a restart, nothing at all).
            std::thread::sleep(Duration::from_millis(1000));
            events.extend(drain(&mut rx));
            stop.store(true, Ordering::Relaxed);
            h.join().unwrap();
            events
        };
        let first = run(true);
        assert!(!first.is_empty());
        let listed = std::fs::read_to_string(state.join(REPLAYED_FILE)).unwrap();
        assert!(listed.contains("1.pcap\tpcap:"), "{listed}");
        // A restart replays nothing again.
        assert!(run(false).is_empty());
    }
}
