//! Drills: attack scenarios replayed through the detection pipeline, and the
//! scorecard that says what Ward saw and how fast.
//!
//! A scenario is a YAML file (documented in `rules/drills/README.md`):
//! metadata (name, description, ATT&CK techniques, hosts and their
//! agencies, attacker identities), a timeline of injects at offsets (log
//! lines appended to a host's log, a capture replayed onto its capture
//! source, a file dropped into or changed in its web root) and
//! expectations (incidents that must appear, within a time, and ones that
//! must not). [`Scenario::load`] validates it and reads its fixtures; every
//! problem is a [`ScenarioError`] with file, line and what is wrong.
//!
//! [`offline::run`] plays a scenario through the engine on a virtual clock
//! (deterministic, no coordinator); `ward drill run` on the coordinator's
//! side plays it in real time through sandboxed agents. Both score with
//! [`score::score`].

pub mod offline;
pub mod score;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use chrono::{DateTime, Local, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::decode::LogFormat;
use crate::wire::Severity;

/// Largest fixture file a scenario may use, in bytes.
pub const MAX_FIXTURE_BYTES: u64 = 16 * 1024 * 1024;
/// Largest scenario file, in bytes.
pub const MAX_SCENARIO_BYTES: u64 = 1024 * 1024;
/// Most log lines per second an inject may ask for.
pub const MAX_RATE: f64 = 10_000.0;
/// Latest offset an inject may have, in seconds (a day).
pub const MAX_OFFSET_S: f64 = 86_400.0;
/// The scenario file's name inside a scenario directory.
pub const SCENARIO_FILE: &str = "scenario.yml";

/// Whether `id` can name a drill: 1–64 of `[A-Za-z0-9_-]`.
pub fn valid_drill_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// The line (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// All the problems found in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

// ---- the file as written ----------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    techniques: Vec<String>,
    hosts: Vec<RawHost>,
    #[serde(default)]
    attackers: Vec<Attacker>,
    #[serde(default)]
    injects: Vec<RawInject>,
    #[serde(default)]
    expect: Vec<RawExpect>,
    #[serde(default)]
    absent: Vec<Absence>,
    #[serde(default, deserialize_with = "opt_secs")]
    timeout: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: String,
    #[serde(default)]
    agency: Option<String>,
    #[serde(default)]
    logs: Vec<LogSpec>,
    #[serde(default)]
    webroot: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    #[serde(deserialize_with = "secs")]
    at: f64,
    host: String,
    #[serde(default)]
    log: Option<String>,
    #[serde(default)]
    lines: Option<Vec<String>>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    pcap: Option<String>,
    #[serde(default)]
    drop: Option<String>,
    #[serde(default)]
    change: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    rule: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    entity: BTreeMap<String, String>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(deserialize_with = "secs")]
    within: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SecsValue {
    Num(f64),
    Text(String),
}

/// Parses `90`, `90s`, `1.5m`, `500ms`, `1h` into seconds.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 30, 30s, 1.5m, 500ms, 1h)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{s}' is not a duration of zero or more"));
    }
    Ok(v * mult)
}

fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match SecsValue::deserialize(d)? {
        SecsValue::Num(v) if v.is_finite() && v >= 0.0 => Ok(v),
        SecsValue::Num(v) => Err(serde::de::Error::custom(format!(
            "{v} is not a duration of zero or more seconds"
        ))),
        SecsValue::Text(s) => parse_secs(&s).map_err(serde::de::Error::custom),
    }
}

fn opt_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    secs(d).map(Some)
}

// ---- the validated scenario -------------------------------------------------

/// A log file of a host: its name (the file's name in the sandbox) and format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSpec {
    /// File name, e.g. `auth.log`.
    pub name: String,
    /// Its format.
    #[serde(default)]
    pub format: LogFormat,
}

/// Someone attacking in the scenario, by the addresses and names Ward sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attacker {
    /// A label (`brute-forcer`, `APT-X`).
    pub name: String,
    /// Its IP addresses.
    #[serde(default)]
    pub ips: Vec<String>,
    /// Its domains (C2, phishing).
    #[serde(default)]
    pub domains: Vec<String>,
}

/// An incident that must not appear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Absence {
    /// Rule id or title.
    pub rule: String,
    /// Only on this host.
    #[serde(default)]
    pub host: Option<String>,
    /// Only with these entities.
    #[serde(default)]
    pub entity: BTreeMap<String, String>,
}

/// A host of the scenario: one sandboxed agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    /// Host name alerts carry.
    pub name: String,
    /// Its agency.
    pub agency: String,
    /// Its log files.
    pub logs: Vec<LogSpec>,
    /// A fixture directory copied as the starting web root, if any.
    pub webroot: Option<PathBuf>,
    /// Whether it has a watched web root (a `webroot` or file injects).
    pub watches_files: bool,
    /// Whether it has a capture source (pcap injects).
    pub captures: bool,
}

/// What an inject does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Lines appended to a host's log, `rate` per second, their timestamps
    /// rewritten to the moment each is written.
    Log {
        /// The log's name.
        log: String,
        /// Its format.
        format: LogFormat,
        /// The lines.
        lines: Vec<String>,
        /// Lines per second.
        rate: f64,
    },
    /// A capture replayed onto the host's capture source.
    Pcap {
        /// The capture file.
        path: PathBuf,
    },
    /// A new file dropped into the web root.
    Drop {
        /// Path relative to the web root.
        path: String,
        /// Its bytes.
        #[serde(skip)]
        bytes: Vec<u8>,
    },
    /// A file of the web root replaced.
    Change {
        /// Path relative to the web root.
        path: String,
        /// The new bytes.
        #[serde(skip)]
        bytes: Vec<u8>,
    },
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inject {
    /// Offset from the drill's start, in seconds.
    pub at_s: f64,
    /// The host.
    pub host: String,
    /// What happens.
    #[serde(flatten)]
    pub action: Action,
    /// A note shown as the inject runs.
    pub note: Option<String>,
}

impl Inject {
    /// When the inject is over (its last log line), in seconds from the start.
    pub fn end_s(&self) -> f64 {
        match &self.action {
            Action::Log { lines, rate, .. } => {
                self.at_s + (lines.len().saturating_sub(1)) as f64 / rate
            }
            _ => self.at_s,
        }
    }

    /// A one-line description for progress output.
    pub fn describe(&self) -> String {
        let what = match &self.action {
            Action::Log {
                log, lines, rate, ..
            } => {
                format!("{} lines into {log} at {rate}/s", lines.len())
            }
            Action::Pcap { path } => format!(
                "capture {} replayed",
                path.file_name().unwrap_or_default().to_string_lossy()
            ),
            Action::Drop { path, bytes } => format!("{path} dropped ({} bytes)", bytes.len()),
            Action::Change { path, bytes } => format!("{path} changed ({} bytes)", bytes.len()),
        };
        match &self.note {
            Some(n) => format!("{}: {what} — {n}", self.host),
            None => format!("{}: {what}", self.host),
        }
    }
}

/// An incident that must appear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// Rule id or title.
    pub rule: String,
    /// On this host (any when absent).
    pub host: Option<String>,
    /// With these entities.
    pub entity: BTreeMap<String, String>,
    /// At least this severity.
    pub severity: Option<Severity>,
    /// Within this many seconds of the drill's start.
    pub within_s: f64,
}

/// A validated scenario with its fixtures read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    /// The scenario file.
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// What it plays.
    pub description: String,
    /// ATT&CK techniques.
    pub techniques: Vec<String>,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// The attackers.
    pub attackers: Vec<Attacker>,
    /// The timeline, in offset order.
    pub injects: Vec<Inject>,
    /// Incidents that must appear.
    pub expect: Vec<Expectation>,
    /// Incidents that must not appear.
    pub absent: Vec<Absence>,
    /// How long a live drill waits for detections after its last inject.
    pub timeout_s: f64,
    /// The scenario file's text (stored with the drill on the coordinator).
    #[serde(skip)]
    pub source: String,
}

struct Lines<'a> {
    text: &'a str,
}

impl Lines<'_> {
    /// The line of the `key:` at column 0.
    fn section(&self, key: &str) -> Option<usize> {
        let want = format!("{key}:");
        self.text
            .lines()
            .position(|l| l.starts_with(&want))
            .map(|i| i + 1)
    }

    /// The lines of the items (`- `) of the top-level list `key`.
    fn items(&self, key: &str) -> Vec<usize> {
        let Some(start) = self.section(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut indent = None;
        for (i, l) in self.text.lines().enumerate().skip(start) {
            let trimmed = l.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let ind = l.len() - trimmed.len();
            if ind == 0 && !trimmed.starts_with("- ") && trimmed != "-" {
                break;
            }
            if trimmed.starts_with("- ") || trimmed == "-" {
                let want = *indent.get_or_insert(ind);
                if ind == want {
                    out.push(i + 1);
                }
            }
        }
        out
    }

    /// The line of `field:` inside item `n` of list `key` (or the item's line).
    fn field(&self, key: &str, n: usize, field: &str) -> Option<usize> {
        let items = self.items(key);
        let start = *items.get(n)?;
        let end = items.get(n + 1).copied().unwrap_or(usize::MAX);
        let pat = format!("{field}:");
        self.text
            .lines()
            .enumerate()
            .skip(start - 1)
            .take_while(|(i, _)| i + 1 < end)
            .find(|(_, l)| {
                let t = l.trim_start().trim_start_matches("- ");
                t.starts_with(&pat)
            })
            .map(|(i, _)| i + 1)
            .or(Some(start))
    }
}

impl Scenario {
    /// Loads a scenario from a file, or from `scenario.yml` in a directory,
    /// validates it and reads its fixtures (paths relative to the file).
    pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
        let file = if path.is_dir() {
            path.join(SCENARIO_FILE)
        } else {
            path.to_path_buf()
        };
        let one = |line: Option<usize>, message: String| {
            ScenarioErrors(vec![ScenarioError {
                file: file.clone(),
                line,
                message,
            }])
        };
        let meta = std::fs::metadata(&file)
            .map_err(|e| one(None, format!("cannot read the scenario: {e}")))?;
        if meta.len() > MAX_SCENARIO_BYTES {
            return Err(one(
                None,
                format!(
                    "the scenario is {} bytes; the limit is {MAX_SCENARIO_BYTES}",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| one(None, format!("cannot read the scenario: {e}")))?;
        Self::parse(&text, &file)
    }

    /// Validates scenario text; `file` names it in errors and anchors
    /// fixture paths.
    pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioErrors> {
        let raw: RawScenario = yaml_serde::from_str(text).map_err(|e| {
            ScenarioErrors(vec![ScenarioError {
                file: file.to_path_buf(),
                line: e.location().map(|l| l.line()),
                message: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or("")
                    .to_string(),
            }])
        })?;
        let dir = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let lines = Lines { text };
        let mut errors = Vec::new();
        let mut err = |line: Option<usize>, message: String| {
            errors.push(ScenarioError {
                file: file.to_path_buf(),
                line,
                message,
            })
        };

        if !valid_name(&raw.name) {
            err(
                lines.section("name"),
                format!(
                    "name '{}' must be 1-64 characters of lowercase letters, digits and '-'",
                    raw.name
                ),
            );
        }
        for (i, t) in raw.techniques.iter().enumerate() {
            if !valid_technique(t) {
                err(
                    lines.section("techniques"),
                    format!(
                        "techniques[{i}] '{t}' is not an ATT&CK technique id (T1110 or T1110.001)"
                    ),
                );
            }
        }

        // Hosts.
        if raw.hosts.is_empty() {
            err(
                lines.section("hosts"),
                "a scenario needs at least one host".into(),
            );
        }
        let mut host_names = BTreeSet::new();
        let mut hosts = Vec::new();
        for (i, h) in raw.hosts.iter().enumerate() {
            let line = lines.items("hosts").get(i).copied();
            if !valid_host(&h.name) {
                err(
                    line,
                    format!(
                        "hosts[{i}]: name '{}' is not a host name (letters, digits, '.', '-', '_')",
                        h.name
                    ),
                );
            }
            if !host_names.insert(h.name.clone()) {
                err(
                    line,
                    format!("hosts[{i}]: host '{}' is declared twice", h.name),
                );
            }
            let mut log_names = BTreeSet::new();
            for l in &h.logs {
                if !valid_file_name(&l.name) {
                    err(
                        lines.field("hosts", i, "logs"),
                        format!(
                            "hosts[{i}]: log name '{}' must be a plain file name",
                            l.name
                        ),
                    );
                }
                if !log_names.insert(&l.name) {
                    err(
                        lines.field("hosts", i, "logs"),
                        format!("hosts[{i}]: log '{}' is declared twice", l.name),
                    );
                }
            }
            let webroot = match &h.webroot {
                None => None,
                Some(w) => match fixture_path(&dir, w) {
                    Ok(p) if p.is_dir() => Some(p),
                    Ok(p) => {
                        err(
                            lines.field("hosts", i, "webroot"),
                            format!("hosts[{i}]: webroot {} is not a directory", p.display()),
                        );
                        None
                    }
                    Err(m) => {
                        err(
                            lines.field("hosts", i, "webroot"),
                            format!("hosts[{i}]: webroot: {m}"),
                        );
                        None
                    }
                },
            };
            hosts.push(Host {
                name: h.name.clone(),
                agency: h
                    .agency
                    .clone()
                    .filter(|a| !a.trim().is_empty())
                    .unwrap_or_else(|| "Drill".into()),
                logs: h.logs.clone(),
                watches_files: webroot.is_some(),
                webroot,
                captures: false,
            });
        }

        // Attackers.
        for (i, a) in raw.attackers.iter().enumerate() {
            let line = lines.items("attackers").get(i).copied();
            if a.name.trim().is_empty() {
                err(line, format!("attackers[{i}]: name is empty"));
            }
            if a.ips.is_empty() && a.domains.is_empty() {
                err(
                    line,
                    format!(
                        "attackers[{i}] '{}': give at least one ip or domain",
                        a.name
                    ),
                );
            }
            for ip in &a.ips {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    err(
                        line,
                        format!("attackers[{i}] '{}': '{ip}' is not an IP address", a.name),
                    );
                }
            }
            for d in &a.domains {
                if d.is_empty()
                    || d.len() > 253
                    || d.contains(|c: char| c.is_whitespace() || c == '/')
                {
                    err(
                        line,
                        format!("attackers[{i}] '{}': '{d}' is not a domain", a.name),
                    );
                }
            }
        }

        // Injects.
        if raw.injects.is_empty() {
            err(
                lines.section("injects").or(Some(1)),
                "a scenario needs at least one inject".into(),
            );
        }
        let mut injects = Vec::new();
        // Files present in each host's web root as the timeline goes on.
        let mut present: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for h in &hosts {
            let mut set = BTreeSet::new();
            if let Some(w) = &h.webroot {
                for e in walkdir::WalkDir::new(w).into_iter().flatten() {
                    if e.file_type().is_file()
                        && let Ok(rel) = e.path().strip_prefix(w)
                    {
                        set.insert(rel.to_string_lossy().into_owned());
                    }
                }
            }
            present.insert(h.name.clone(), set);
        }
        let mut order: Vec<usize> = (0..raw.injects.len()).collect();
        order.sort_by(|&a, &b| raw.injects[a].at.total_cmp(&raw.injects[b].at));
        let mut parsed: Vec<Option<Inject>> = vec![None; raw.injects.len()];
        for &i in &order {
            let r = &raw.injects[i];
            let line = lines.items("injects").get(i).copied();
            let here = |f: &str| lines.field("injects", i, f);
            let Some(host_i) = hosts.iter().position(|h| h.name == r.host) else {
                err(
                    here("host"),
                    format!(
                        "injects[{i}]: unknown host '{}' (declared: {})",
                        r.host,
                        host_names.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
                continue;
            };
            if r.at > MAX_OFFSET_S {
                err(
                    here("at"),
                    format!("injects[{i}]: at {}s is more than a day", r.at),
                );
            }
            let kinds = [
                r.log.is_some(),
                r.pcap.is_some(),
                r.drop.is_some(),
                r.change.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                err(
                    line,
                    format!("injects[{i}]: give exactly one of log, pcap, drop or change"),
                );
                continue;
            }
            let action = if let Some(log) = &r.log {
                let Some(spec) = hosts[host_i].logs.iter().find(|l| &l.name == log) else {
                    err(
                        here("log"),
                        format!(
                            "injects[{i}]: host '{}' has no log '{log}' (add it to the host's logs)",
                            r.host
                        ),
                    );
                    continue;
                };
                let rate = r.rate.unwrap_or(10.0);
                if !(rate > 0.0 && rate <= MAX_RATE) {
                    err(
                        here("rate"),
                        format!(
                            "injects[{i}]: rate {rate} must be above 0 and at most {MAX_RATE} lines/s"
                        ),
                    );
                }
                let lines_v = match (&r.lines, &r.file, &r.content) {
                    (Some(l), None, None) => l.clone(),
                    (None, Some(f), None) => match read_fixture(&dir, f) {
                        Ok(b) => String::from_utf8_lossy(&b)
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(str::to_string)
                            .collect(),
                        Err(m) => {
                            err(here("file"), format!("injects[{i}]: file: {m}"));
                            continue;
                        }
                    },
                    _ => {
                        err(
                            line,
                            format!(
                                "injects[{i}]: a log inject needs exactly one of lines or file"
                            ),
                        );
                        continue;
                    }
                };
                if lines_v.is_empty() {
                    err(line, format!("injects[{i}]: no log lines to write"));
                }
                if let Some(l) = lines_v
                    .iter()
                    .find(|l| l.len() > crate::decode::MAX_LINE_BYTES)
                {
                    err(
                        line,
                        format!(
                            "injects[{i}]: a line of {} bytes is over the agent's line limit",
                            l.len()
                        ),
                    );
                }
                Action::Log {
                    log: log.clone(),
                    format: spec.format,
                    lines: lines_v,
                    rate,
                }
            } else if let Some(p) = &r.pcap {
                if r.file.is_some() || r.lines.is_some() || r.content.is_some() || r.rate.is_some()
                {
                    err(
                        line,
                        format!(
                            "injects[{i}]: a pcap inject takes no file, lines, content or rate"
                        ),
                    );
                }
                let path = match fixture_path(&dir, p) {
                    Ok(p) => p,
                    Err(m) => {
                        err(here("pcap"), format!("injects[{i}]: pcap: {m}"));
                        continue;
                    }
                };
                match crate::sources::pcap::read_file(&path, |_, _, _| {}) {
                    Ok(s) if s.frames == 0 => {
                        err(
                            here("pcap"),
                            format!("injects[{i}]: pcap {p} holds no frames Ward decodes"),
                        );
                    }
                    Ok(s) if s.damaged.is_some() => err(
                        here("pcap"),
                        format!(
                            "injects[{i}]: pcap {p} is damaged after {} frames: {}",
                            s.frames,
                            s.damaged.unwrap_or_default()
                        ),
                    ),
                    Ok(_) => {}
                    Err(e) => err(here("pcap"), format!("injects[{i}]: pcap: {e}")),
                }
                hosts[host_i].captures = true;
                Action::Pcap { path }
            } else {
                let (target, is_drop) = match (&r.drop, &r.change) {
                    (Some(t), None) => (t, true),
                    (None, Some(t)) => (t, false),
                    _ => unreachable!("exactly one kind was checked"),
                };
                let field = if is_drop { "drop" } else { "change" };
                if !valid_relative(target) {
                    err(
                        here(field),
                        format!(
                            "injects[{i}]: {field} '{target}' must be a relative path inside the web root (no '..')"
                        ),
                    );
                    continue;
                }
                if r.lines.is_some() || r.rate.is_some() {
                    err(
                        line,
                        format!("injects[{i}]: a {field} inject takes no lines or rate"),
                    );
                }
                let bytes = match (&r.file, &r.content) {
                    (Some(f), None) => match read_fixture(&dir, f) {
                        Ok(b) => b,
                        Err(m) => {
                            err(here("file"), format!("injects[{i}]: file: {m}"));
                            continue;
                        }
                    },
                    (None, Some(c)) => c.clone().into_bytes(),
                    _ => {
                        err(
                            line,
                            format!(
                                "injects[{i}]: a {field} inject needs exactly one of file or content"
                            ),
                        );
                        continue;
                    }
                };
                let files = present.entry(r.host.clone()).or_default();
                if is_drop {
                    if files.contains(target) {
                        err(
                            here(field),
                            format!(
                                "injects[{i}]: '{target}' already exists in the web root; use change"
                            ),
                        );
                    }
                    files.insert(target.clone());
                } else if !files.contains(target) {
                    err(
                        here(field),
                        format!(
                            "injects[{i}]: '{target}' is not in the web root at that point (give the host a webroot holding it, or drop it first)"
                        ),
                    );
                }
                hosts[host_i].watches_files = true;
                if is_drop {
                    Action::Drop {
                        path: target.clone(),
                        bytes,
                    }
                } else {
                    Action::Change {
                        path: target.clone(),
                        bytes,
                    }
                }
            };
            parsed[i] = Some(Inject {
                at_s: r.at,
                host: r.host.clone(),
                action,
                note: r.note.clone(),
            });
        }
        for i in order {
            if let Some(inj) = parsed[i].take() {
                injects.push(inj);
            }
        }

        // Expectations.
        if raw.expect.is_empty() {
            err(
                lines.section("expect").or(Some(1)),
                "a scenario needs at least one expectation".into(),
            );
        }
        let mut expect = Vec::new();
        for (i, e) in raw.expect.iter().enumerate() {
            let line = lines.items("expect").get(i).copied();
            if e.rule.trim().is_empty() {
                err(line, format!("expect[{i}]: rule is empty"));
            }
            if let Some(h) = &e.host
                && !host_names.contains(h)
            {
                err(
                    lines.field("expect", i, "host"),
                    format!("expect[{i}]: unknown host '{h}'"),
                );
            }
            if e.within <= 0.0 {
                err(
                    lines.field("expect", i, "within"),
                    format!("expect[{i}]: within must be more than 0 seconds"),
                );
            }
            expect.push(Expectation {
                rule: e.rule.clone(),
                host: e.host.clone(),
                entity: e.entity.clone(),
                severity: e.severity,
                within_s: e.within,
            });
        }
        for (i, a) in raw.absent.iter().enumerate() {
            if a.rule.trim().is_empty() {
                err(
                    lines.items("absent").get(i).copied(),
                    format!("absent[{i}]: rule is empty"),
                );
            }
            if let Some(h) = &a.host
                && !host_names.contains(h)
            {
                err(
                    lines.field("absent", i, "host"),
                    format!("absent[{i}]: unknown host '{h}'"),
                );
            }
        }
        let last = injects.iter().map(Inject::end_s).fold(0.0, f64::max);
        let longest = expect.iter().map(|e| e.within_s).fold(0.0, f64::max);
        let timeout_s = raw
            .timeout
            .unwrap_or_else(|| (longest - last).max(0.0) + 10.0);
        if errors.is_empty() {
            Ok(Scenario {
                file: file.to_path_buf(),
                name: raw.name,
                description: raw.description.trim().to_string(),
                techniques: raw.techniques,
                hosts,
                attackers: raw.attackers,
                injects,
                expect,
                absent: raw.absent,
                timeout_s,
                source: text.to_string(),
            })
        } else {
            Err(ScenarioErrors(errors))
        }
    }

    /// When the last inject is over, in seconds from the start.
    pub fn last_inject_s(&self) -> f64 {
        self.injects.iter().map(Inject::end_s).fold(0.0, f64::max)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn valid_file_name(s: &str) -> bool {
    valid_host(s) && s != "." && s != ".."
}

fn valid_technique(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.is_none_or(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && p.len() <= 1024 && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// A fixture path relative to the scenario's directory (never outside it
/// through `..` or an absolute path).
fn fixture_path(dir: &Path, rel: &str) -> Result<PathBuf, String> {
    if !valid_relative(rel) {
        return Err(format!(
            "'{rel}' must be a path relative to the scenario's directory (no '..')"
        ));
    }
    let p = dir.join(rel);
    if !p.exists() {
        return Err(format!("{} does not exist", p.display()));
    }
    Ok(p)
}

fn read_fixture(dir: &Path, rel: &str) -> Result<Vec<u8>, String> {
    let p = fixture_path(dir, rel)?;
    let meta = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", p.display()));
    }
    if meta.len() > MAX_FIXTURE_BYTES {
        return Err(format!(
            "{} is {} bytes; the limit is {MAX_FIXTURE_BYTES}",
            p.display(),
            meta.len()
        ));
    }
    std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// Rewrites a log line's timestamp to `t`: an RFC 3164 syslog prefix
/// (`Nov 22 09:00:02`, written in the local zone as syslog daemons do), an
/// access log's `[22/Nov/2026:09:14:01 +0700]`, or a leading RFC 3339 time.
/// Lines without one are returned unchanged.
pub fn retime_line(line: &str, t: DateTime<Utc>) -> String {
    static ACCESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]")
            .expect("valid regex")
    });
    static SYSLOG: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2} ").expect("valid regex")
    });
    static RFC3339: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^(<\d{1,3}>1 )?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        )
        .expect("valid regex")
    });
    if SYSLOG.is_match(line) {
        let local = t.with_timezone(&Local);
        return format!("{}{}", local.format("%b %e %H:%M:%S"), &line[15..]);
    }
    if let Some(m) = RFC3339.captures(line) {
        let pri = m.get(1).map_or("", |p| p.as_str());
        let end = m.get(0).map_or(0, |m| m.end());
        return format!(
            "{pri}{}{}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            &line[end..]
        );
    }
    if let Some(m) = ACCESS.find(line) {
        return format!(
            "{}[{}]{}",
            &line[..m.start()],
            t.format("%d/%b/%Y:%H:%M:%S +0000"),
            &line[m.end()..]
        );
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_secs("90").unwrap(), 90.0);
        assert_eq!(parse_secs("1.5m").unwrap(), 90.0);
        assert_eq!(parse_secs("500ms").unwrap(), 0.5);
        assert_eq!(parse_secs("2h").unwrap(), 7200.0);
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs("-3s").is_err());
    }

    #[test]
    fn techniques() {
        assert!(valid_technique("T1110"));
        assert!(valid_technique("T1110.001"));
        assert!(!valid_technique("T111"));
        assert!(!valid_technique("1110"));
        assert!(!valid_technique("T1110.1"));
    }

    #[test]
    fn retimes_syslog_access_and_rfc3339_lines() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T09:00:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let l = retime_line("Nov  1 00:00:00 portal sshd[1]: Failed password", t);
        assert!(l.ends_with(" portal sshd[1]: Failed password"), "{l}");
        assert_eq!(
            l.len(),
            "Nov  1 00:00:00 portal sshd[1]: Failed password".len()
        );
        let a = retime_line(
            r#"203.0.113.24 - - [22/Nov/2026:09:14:01 +0700] "GET / HTTP/1.1" 200 1"#,
            t,
        );
        assert_eq!(
            a,
            r#"203.0.113.24 - - [22/Nov/2026:09:00:05 +0000] "GET / HTTP/1.1" 200 1"#
        );
        let r = retime_line("<13>1 2020-01-01T00:00:00Z portal app - - - hi", t);
        assert_eq!(r, "<13>1 2026-11-22T09:00:05.000000Z portal app - - - hi");
        assert_eq!(retime_line("no time here", t), "no time here");
    }

    #[test]
    fn item_lines_follow_the_list() {
        let text = "name: x\ninjects:\n  - at: 1\n    host: a\n  # c\n  - at: 2\n    host: b\nexpect:\n- rule: r\n";
        let l = Lines { text };
        assert_eq!(l.items("injects"), vec![3, 6]);
        assert_eq!(l.field("injects", 1, "host"), Some(7));
        assert_eq!(l.items("expect"), vec![9]);
    }
}
