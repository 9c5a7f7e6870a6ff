//! A scenario played through the engine on a virtual clock: no agents, no
//! coordinator, no waiting. Deterministic (same scenario, same scorecard)
//! and fast, for CI and for scenario authors.
//!
//! Each host gets its own engine, as each sandboxed agent has its own in a
//! live drill. Records are judged in virtual-time order: a log inject's
//! lines at their rate (their timestamps rewritten to the virtual time,
//! as the live runner rewrites them to the wall clock), a capture all at
//! its offset with its frames shifted so it ends there (as `[[pcap]]`
//! capture dirs replay it), dropped and changed files at their offset
//! through the same read, hash, YARA and integrity-event code as the file
//! watcher, against a real web root in a temp dir. A detection's time is
//! the virtual time of the record that completed it; alerts are grouped
//! into detections by rule, host and primary entity, as the coordinator
//! groups them into incidents.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::score::{Detection, Scorecard, score};
use super::{Action, Scenario, retime_line};
use crate::decode::net::{FlowConfig, LinkType, NetDecoder};
use crate::decode::{LineDecoder, LogFormat};
use crate::engine::yara::{ScanLimits, YaraRules};
use crate::engine::{Detector, RulePack, SigmaDetector};
use crate::files::{FileOutcome, read_and_scan, yara_alert};
use crate::wire::Alert;

/// The virtual clock's start: every offline run begins at this instant.
pub const VIRTUAL_START: &str = "2026-11-22T02:00:00Z";

/// The virtual start as a time.
pub fn virtual_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(VIRTUAL_START)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

enum Rec {
    Line {
        host: usize,
        format: LogFormat,
        log: String,
        index: usize,
        text: String,
    },
    Frame {
        host: usize,
        capture: usize,
        index: u64,
        time: DateTime<Utc>,
        link: LinkType,
        data: Vec<u8>,
    },
    CaptureEnd {
        host: usize,
        capture: usize,
    },
    File {
        host: usize,
        path: String,
        bytes: Vec<u8>,
    },
}

struct HostState {
    name: String,
    detector: SigmaDetector,
    decoders: HashMap<LogFormat, LineDecoder>,
    webroot: Option<PathBuf>,
    /// sha256 per absolute path: the integrity baseline.
    baseline: HashMap<String, String>,
}

/// A temp dir removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in walkdir::WalkDir::new(from).min_depth(1) {
        let e = e.map_err(std::io::Error::other)?;
        let rel = e.path().strip_prefix(from).map_err(std::io::Error::other)?;
        let dst = to.join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&dst)?;
        } else if e.file_type().is_file() {
            std::fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// Plays `s` offline and scores it. `yara` is needed when a host watches
/// files; without it file injects still make integrity events.
pub fn run(
    s: &Scenario,
    pack: &RulePack,
    yara: Option<&YaraRules>,
    drill_id: &str,
) -> anyhow::Result<Scorecard> {
    let start = virtual_start();
    let at = |offset: f64| start + chrono::Duration::microseconds((offset * 1e6).round() as i64);
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "ward-drill-{}-{}-{}",
        s.name,
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    )));
    let scanner = yara.map(|y| y.scanner(ScanLimits::default()));
    let mut session = scanner.as_ref().map(|s| s.session());
    let mut buf = Vec::new();

    let mut hosts = Vec::new();
    // Alerts with the virtual offset of the record that completed them.
    let mut raised: Vec<(f64, Alert)> = Vec::new();
    for h in &s.hosts {
        let mut st = HostState {
            name: h.name.clone(),
            detector: SigmaDetector::new(pack)?,
            decoders: HashMap::new(),
            webroot: None,
            baseline: HashMap::new(),
        };
        if h.watches_files {
            let root = scratch.0.join(&h.name).join("www");
            match &h.webroot {
                Some(from) => copy_tree(from, &root)?,
                None => std::fs::create_dir_all(&root)?,
            }
            let root = std::fs::canonicalize(&root)?;
            // The first start: baseline built silently, every file YARA-scanned.
            let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&root)
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect();
            files.sort();
            for p in files {
                if let FileOutcome::Scanned(f) = read_and_scan(
                    &p,
                    crate::files::DEFAULT_MAX_FILE_SIZE,
                    session.as_mut(),
                    &mut buf,
                    crate::files::Hashing::Always,
                ) {
                    for m in &f.matches {
                        let mut a = yara_alert(&h.name, &f, m);
                        a.time = start;
                        raised.push((0.0, a));
                    }
                    st.baseline.insert(f.path.clone(), f.sha256.clone());
                }
            }
            st.webroot = Some(root);
        }
        hosts.push(st);
    }

    // The timeline as records in virtual-time order.
    let mut recs: Vec<(f64, usize, Rec)> = Vec::new();
    let mut captures: Vec<NetDecoder> = Vec::new();
    for inj in &s.injects {
        let host = s
            .hosts
            .iter()
            .position(|h| h.name == inj.host)
            .ok_or_else(|| anyhow::anyhow!("unknown host {}", inj.host))?;
        match &inj.action {
            Action::Log {
                log,
                format,
                lines,
                rate,
            } => {
                for (i, l) in lines.iter().enumerate() {
                    let t = inj.at_s + i as f64 / rate;
                    let seq = recs.len();
                    recs.push((
                        t,
                        seq,
                        Rec::Line {
                            host,
                            format: *format,
                            log: log.clone(),
                            index: i,
                            text: retime_line(l, at(t)),
                        },
                    ));
                }
            }
            Action::Pcap { path } => {
                let capture = captures.len();
                let source = crate::sources::pcap::source_id(path)?;
                captures.push(NetDecoder::new(
                    &s.hosts[host].name,
                    source,
                    FlowConfig::default(),
                ));
                let mut last = std::time::Duration::ZERO;
                crate::sources::pcap::read_file(path, |ts, _, _| last = last.max(ts))?;
                let end_ns = at(inj.at_s).timestamp_nanos_opt().unwrap_or(0) as i128;
                let shift = end_ns - last.as_nanos() as i128;
                let mut index = 0u64;
                let mut frames = Vec::new();
                crate::sources::pcap::read_file(path, |ts, link, data| {
                    let ns = i64::try_from(ts.as_nanos() as i128 + shift).unwrap_or(0);
                    frames.push(Rec::Frame {
                        host,
                        capture,
                        index,
                        time: DateTime::from_timestamp_nanos(ns),
                        link,
                        data: data.to_vec(),
                    });
                    index += 1;
                })?;
                frames.push(Rec::CaptureEnd { host, capture });
                for f in frames {
                    let seq = recs.len();
                    recs.push((inj.at_s, seq, f));
                }
            }
            Action::Drop { path, bytes } | Action::Change { path, bytes } => {
                let seq = recs.len();
                recs.push((
                    inj.at_s,
                    seq,
                    Rec::File {
                        host,
                        path: path.clone(),
                        bytes: bytes.clone(),
                    },
                ));
            }
        }
    }
    recs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let mut events = Vec::new();
    for (t, _, rec) in recs {
        match rec {
            Rec::Line {
                host,
                format,
                log,
                index,
                text,
            } => {
                let st = &mut hosts[host];
                let decoder = st
                    .decoders
                    .entry(format)
                    .or_insert_with(|| LineDecoder::new(format, &st.name));
                if let Ok(ev) = decoder.decode(&text, format!("drill:{log}:{index}")) {
                    for a in st.detector.process(&ev) {
                        raised.push((t, a));
                    }
                }
            }
            Rec::Frame {
                host,
                capture,
                index,
                time,
                link,
                data,
            } => {
                captures[capture].decode(time, link, &data, index, &mut events);
                for ev in events.drain(..) {
                    for a in hosts[host].detector.process(&ev) {
                        raised.push((t, a));
                    }
                }
            }
            Rec::CaptureEnd { host, capture } => {
                captures[capture].finish(&mut events);
                for ev in events.drain(..) {
                    for a in hosts[host].detector.process(&ev) {
                        raised.push((t, a));
                    }
                }
            }
            Rec::File { host, path, bytes } => {
                let st = &mut hosts[host];
                let root = st
                    .webroot
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("host {} has no web root", st.name))?;
                let file = root.join(&path);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&file, &bytes)?;
                let FileOutcome::Scanned(f) = read_and_scan(
                    &file,
                    crate::files::DEFAULT_MAX_FILE_SIZE,
                    session.as_mut(),
                    &mut buf,
                    crate::files::Hashing::Always,
                ) else {
                    continue;
                };
                let prev = st.baseline.get(&f.path).cloned();
                let action = match &prev {
                    None => "created",
                    Some(p) if *p != f.sha256 => "modified",
                    Some(_) => continue,
                };
                let mut ev = crate::files::watch::file_event(
                    &st.name,
                    &root.to_string_lossy(),
                    action,
                    &f,
                    prev.as_deref(),
                );
                ev.time = at(t);
                for a in st.detector.process(&ev) {
                    raised.push((t, a));
                }
                for m in &f.matches {
                    let mut a = yara_alert(&st.name, &f, m);
                    a.time = at(t);
                    raised.push((t, a));
                }
                st.baseline.insert(f.path.clone(), f.sha256.clone());
            }
        }
    }

    // The scratch dir's name changes per run: name web-root files
    // `drill:/<host>/www/...` so the scorecard is the same every time.
    let prefix = scratch.0.to_string_lossy().into_owned();
    let real_prefix = std::fs::canonicalize(&scratch.0)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| prefix.clone());
    for (_, a) in &mut raised {
        for v in a.entities.values_mut() {
            if let Some(rest) = v
                .strip_prefix(&real_prefix)
                .or_else(|| v.strip_prefix(&prefix))
            {
                *v = format!("drill:{rest}");
            }
        }
    }
    Ok(score(
        s,
        drill_id,
        "offline",
        &start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        group(raised),
    ))
}

/// Alerts into detections by rule, host and primary entity (the
/// coordinator's incident grouping), each at its first alert's offset.
pub fn group(raised: Vec<(f64, Alert)>) -> Vec<Detection> {
    let mut out: Vec<Detection> = Vec::new();
    let mut index: HashMap<(String, String, String), usize> = HashMap::new();
    for (t, mut a) in raised {
        let key = (
            a.rule_id.clone(),
            a.host.clone(),
            a.primary_entity()
                .map(|(k, v)| format!("{k}={v}"))
                .unwrap_or_default(),
        );
        match index.get(&key) {
            Some(&i) => {
                let d = &mut out[i];
                d.alert_count += 1;
                d.severity = d.severity.max(a.severity);
                d.detected_s = d.detected_s.min(t);
                for (k, v) in std::mem::take(&mut a.entities) {
                    d.entities.entry(k).or_insert(v);
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(Detection {
                    incident_id: None,
                    rule_id: a.rule_id,
                    title: a.title,
                    host: a.host,
                    severity: a.severity,
                    entities: a.entities,
                    alert_count: 1,
                    detected_s: t,
                    acknowledged_s: None,
                    resolved_s: None,
                });
            }
        }
    }
    out
}
