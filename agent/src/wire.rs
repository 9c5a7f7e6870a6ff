//! Types that cross the wire between agents and the coordinator, and that
//! `ward-agent replay` prints. The coordinator depends on these; nothing here
//! knows HTTP.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest number of alerts an agent puts in one batch.
pub const MAX_BATCH_ALERTS: usize = 1000;
/// Largest number of evidence lines an alert carries.
pub const MAX_EVIDENCE_LINES: usize = 20;
/// Longest evidence line kept, in bytes; longer lines are cut at a char boundary.
pub const MAX_EVIDENCE_LINE_BYTES: usize = 4096;
/// Most captured frames an alert carries.
pub const MAX_ALERT_PACKETS: usize = 64;
/// Most bytes of captured frames an alert carries (their `data`, before base64).
pub const MAX_ALERT_PACKET_BYTES: usize = 64 * 1024;
/// Most bytes of captured frames in one [`AlertBatch`]: a full batch stays
/// well under the coordinator's request body limit once base64-encoded.
pub const MAX_BATCH_PACKET_BYTES: usize = 4 * 1024 * 1024;

/// How bad an alert or incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Needs triage.
    Medium,
    /// Needs action today.
    High,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// The lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity '{other}' (expected low, medium, high or critical)"
            )),
        }
    }
}

/// One detection, as produced by the engine and stored by the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Idempotency key: derived from the host, the triggering record and the
    /// rule, so re-processing the same record yields the same id.
    pub id: String,
    /// The rule's id (Sigma `id`, or its title when it has none).
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// Severity from the rule's level.
    pub severity: Severity,
    /// Event time of the triggering record.
    pub time: DateTime<Utc>,
    /// The host the agent runs on.
    pub host: String,
    /// Who and what is involved: `src_ip`, `user`, ...
    pub entities: BTreeMap<String, String>,
    /// The records that matched (log lines), capped.
    pub evidence: Vec<String>,
    /// The rule's tags (ATT&CK techniques and tactics).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the triggering record came from (`file:/var/log/auth.log`).
    #[serde(default)]
    pub source: String,
    /// Captured frames behind a network alert, time-ordered, at most
    /// [`MAX_ALERT_PACKETS`] and [`MAX_ALERT_PACKET_BYTES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packets: Vec<EvidencePacket>,
    /// The drill this alert belongs to, when an agent of a drill sent it
    /// (`drill_id` in the agent's config). The coordinator groups drill
    /// alerts into drill incidents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<String>,
}

/// One captured frame carried by an alert; in JSON `data` is base64.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EvidencePacket {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// pcap `LINKTYPE_*` of `data` (1 Ethernet, 101 raw IP, 113 Linux SLL, 0 BSD loopback).
    pub linktype: u32,
    /// Length of the frame on the wire; more than `data` when it was cut.
    #[serde(default)]
    pub orig_len: u32,
    /// The frame's bytes as kept.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl EvidencePacket {
    /// The frame's length on the wire (never less than the bytes kept).
    pub fn wire_len(&self) -> u32 {
        self.orig_len
            .max(u32::try_from(self.data.len()).unwrap_or(u32::MAX))
    }
}

/// Bytes of captured frames an alert carries.
pub fn packet_bytes(a: &Alert) -> usize {
    a.packets.iter().map(|p| p.data.len()).sum()
}

/// Splits alerts into batches of at most [`MAX_BATCH_ALERTS`] alerts and
/// [`MAX_BATCH_PACKET_BYTES`] of frames (an alert is never split).
pub fn batches(alerts: &[Alert]) -> Vec<&[Alert]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, a) in alerts.iter().enumerate() {
        let b = packet_bytes(a);
        if i > start && (i - start >= MAX_BATCH_ALERTS || bytes + b > MAX_BATCH_PACKET_BYTES) {
            out.push(&alerts[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += b;
    }
    if start < alerts.len() {
        out.push(&alerts[start..]);
    }
    out
}

impl Alert {
    /// Appends the alert's JSON to `out`: exactly what
    /// `serde_json::to_writer(out, self)` writes (tested equal), written
    /// directly. `replay` prints one alert per line, each line built in one
    /// reused buffer: serde_json looks at every byte of every string
    /// through its escape table and formats the time through chrono's
    /// formatter, which cost a sizeable part of a network replay.
    pub fn push_json(&self, out: &mut String) {
        out.push_str("{\"id\":");
        json::push_str(out, &self.id);
        out.push_str(",\"rule_id\":");
        json::push_str(out, &self.rule_id);
        out.push_str(",\"title\":");
        json::push_str(out, &self.title);
        out.push_str(",\"severity\":\"");
        out.push_str(self.severity.as_str());
        out.push_str("\",\"time\":\"");
        json::push_time(out, self.time);
        out.push_str("\",\"host\":");
        json::push_str(out, &self.host);
        out.push_str(",\"entities\":{");
        for (i, (k, v)) in self.entities.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::push_str(out, k);
            out.push(':');
            json::push_str(out, v);
        }
        out.push_str("},\"evidence\":");
        json::push_str_list(out, &self.evidence);
        out.push_str(",\"tags\":");
        json::push_str_list(out, &self.tags);
        out.push_str(",\"source\":");
        json::push_str(out, &self.source);
        if !self.packets.is_empty() {
            out.push_str(",\"packets\":[");
            for (i, p) in self.packets.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"ts_ns\":");
                out.push_str(itoa::Buffer::new().format(p.ts_ns));
                out.push_str(",\"linktype\":");
                out.push_str(itoa::Buffer::new().format(p.linktype));
                out.push_str(",\"orig_len\":");
                out.push_str(itoa::Buffer::new().format(p.orig_len));
                // Base64 is letters, digits, `+`, `/` and `=`: nothing to escape.
                out.push_str(",\"data\":\"");
                base64::engine::general_purpose::STANDARD.encode_string(&p.data, out);
                out.push_str("\"}");
            }
            out.push(']');
        }
        if let Some(d) = &self.drill_id {
            out.push_str(",\"drill_id\":");
            json::push_str(out, d);
        }
        out.push('}');
    }
}

/// JSON text as serde_json's compact writer gives it.
mod json {
    use chrono::{DateTime, SecondsFormat, Utc};

    /// What serde_json writes for each byte below 0x80: 0 for the byte
    /// itself, else the letter of its short escape, `u` for `\u00XX`.
    const ESCAPE: [u8; 128] = {
        let mut t = [0u8; 128];
        let mut i = 0;
        while i < 0x20 {
            t[i] = b'u';
            i += 1;
        }
        t[0x08] = b'b';
        t[0x09] = b't';
        t[0x0a] = b'n';
        t[0x0c] = b'f';
        t[0x0d] = b'r';
        t[b'"' as usize] = b'"';
        t[b'\\' as usize] = b'\\';
        t
    };

    /// Whether any of the 8 bytes of `w` needs an escape (a control
    /// character, `"` or `\`): exact, as a whole (the word tricks of
    /// "Bit Twiddling Hacks", which have no false answer as a whole).
    fn needs_escape(w: u64) -> bool {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        below_space | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) != 0
    }

    /// Appends `s` as a JSON string, escaped as serde_json escapes it.
    pub fn push_str(out: &mut String, s: &str) {
        out.push('"');
        let b = s.as_bytes();
        // `b[start..i]` needs no escape and is not written yet.
        let (mut start, mut i) = (0, 0);
        while i < b.len() {
            if let Some(chunk) = b.get(i..i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                if !needs_escape(w) {
                    i += 8;
                    continue;
                }
            }
            let c = b[i];
            let e = if c < 0x80 { ESCAPE[c as usize] } else { 0 };
            if e == 0 {
                i += 1;
                continue;
            }
            // Only ASCII bytes end a run: both ends are char boundaries.
            out.push_str(&s[start..i]);
            out.push('\\');
            if e == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("u00");
                out.push(char::from(HEX[usize::from(c >> 4)]));
                out.push(char::from(HEX[usize::from(c & 0xf)]));
            } else {
                out.push(char::from(e));
            }
            i += 1;
            start = i;
        }
        out.push_str(&s[start..]);
        out.push('"');
    }

    /// Appends a list of strings as a JSON array.
    pub fn push_str_list(out: &mut String, list: &[String]) {
        out.push('[');
        for (i, s) in list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_str(out, s);
        }
        out.push(']');
    }

    /// Appends `t` as chrono serializes it (RFC 3339, `Z`, the fraction
    /// in as few of 0, 3, 6 or 9 digits as hold it), without the quotes.
    pub fn push_time(out: &mut String, t: DateTime<Utc>) {
        let nanos = t.timestamp_subsec_nanos();
        let secs = t.timestamp();
        let (year, month, day) = crate::decode::net::text::civil_from_days(secs.div_euclid(86_400));
        // Leap seconds and years past four digits take chrono's way.
        if nanos >= 1_000_000_000 || !(0..=9999).contains(&year) {
            out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
            return;
        }
        let of_day = secs.rem_euclid(86_400) as u32;
        let mut b = *b"0000-00-00T00:00:00.000000000";
        let put = crate::decode::net::text::put_digits;
        put(&mut b[0..4], year as u32, 4);
        put(&mut b[5..7], month, 2);
        put(&mut b[8..10], day, 2);
        put(&mut b[11..13], of_day / 3600, 2);
        put(&mut b[14..16], of_day / 60 % 60, 2);
        put(&mut b[17..19], of_day % 60, 2);
        put(&mut b[20..29], nanos, 9);
        let len = if nanos == 0 {
            19
        } else if nanos.is_multiple_of(1_000_000) {
            23
        } else if nanos.is_multiple_of(1000) {
            26
        } else {
            29
        };
        // Only ASCII was written.
        out.push_str(std::str::from_utf8(&b[..len]).unwrap_or_default());
        out.push('Z');
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("packet data is not base64: {e}")))
    }
}

/// Entity names in the order that makes one the incident's primary entity.
pub const PRIMARY_ENTITY_ORDER: &[&str] = &[
    "src_ip", "dst_ip", "domain", "sha256", "user", "path", "uri",
];

impl Alert {
    /// Marks the alert as part of drill `drill_id`: sets `drill_id` and
    /// derives a new id from the old one and the drill, so two drills
    /// replaying the same records never share an alert.
    pub fn mark_drill(&mut self, drill_id: &str) {
        if self.drill_id.as_deref() == Some(drill_id) {
            return;
        }
        self.id = crate::engine::alert_id(drill_id, &self.id, "drill");
        self.drill_id = Some(drill_id.to_string());
    }

    /// The entity incidents are grouped by: the first of
    /// [`PRIMARY_ENTITY_ORDER`] present, else the first entity, else none.
    pub fn primary_entity(&self) -> Option<(&str, &str)> {
        PRIMARY_ENTITY_ORDER
            .iter()
            .find_map(|k| self.entities.get(*k).map(|v| (*k, v.as_str())))
            .or_else(|| {
                self.entities
                    .iter()
                    .next()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
            })
    }
}

/// Cuts an evidence line to [`MAX_EVIDENCE_LINE_BYTES`] at a char boundary.
pub fn cap_evidence_line(line: &str) -> String {
    if line.len() <= MAX_EVIDENCE_LINE_BYTES {
        return line.to_string();
    }
    let mut end = MAX_EVIDENCE_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// A batch of alerts an agent sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertBatch {
    /// At most [`MAX_BATCH_ALERTS`].
    pub alerts: Vec<Alert>,
    /// Gap records: what the agent had to drop (at most [`MAX_BATCH_GAPS`]).
    /// Absent in batches from older agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

/// Largest number of gap records in one batch.
pub const MAX_BATCH_GAPS: usize = 1000;

/// Gap reason: the spool reached `spool_max_bytes` and dropped alerts
/// (lowest severity, oldest first).
pub const GAP_SPOOL_FULL: &str = "spool_full";
/// Gap reason: live capture dropped network events because detection fell behind.
pub const GAP_CAPTURE_DROPPED: &str = "capture_dropped";
/// Gap reason: the kernel dropped captured frames before the agent read them.
pub const GAP_CAPTURE_KERNEL_DROPPED: &str = "capture_kernel_dropped";
/// Gap reason: the engine dropped open correlation groups at its state cap.
pub const GAP_STATE_EVICTED: &str = "state_evicted";
/// Gap reason: spooled entries failed their checksum on disk and were skipped.
pub const GAP_SPOOL_DAMAGED: &str = "spool_damaged";
/// Gap reason: the coordinator refused an entry as invalid (a 4xx other
/// than credentials or rate limits); the entry was isolated from its batch,
/// and the gap's `detail` carries its id and the coordinator's message.
pub const GAP_REJECTED: &str = "rejected";

/// A counted loss: what an agent could not detect or deliver, so that no
/// loss is silent. Delivered like alerts, idempotent by `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Idempotency key, unique per gap.
    pub id: String,
    /// Why: [`GAP_SPOOL_FULL`], [`GAP_CAPTURE_DROPPED`],
    /// [`GAP_CAPTURE_KERNEL_DROPPED`], [`GAP_STATE_EVICTED`], [`GAP_SPOOL_DAMAGED`], [`GAP_REJECTED`].
    pub reason: String,
    /// The host the agent runs on.
    pub host: String,
    /// How many alerts (spool_full, spool_damaged), network events
    /// (capture_dropped), frames (capture_kernel_dropped) or correlation
    /// groups (state_evicted) were lost.
    pub count: u64,
    /// Dropped alerts by severity name (spool_full); empty otherwise.
    #[serde(default)]
    pub by_severity: BTreeMap<String, u64>,
    /// Event time of the earliest dropped alert, or the start of the window
    /// in which the counter grew.
    #[serde(default)]
    pub first_time: Option<DateTime<Utc>>,
    /// Event time of the latest dropped alert, or the end of that window.
    #[serde(default)]
    pub last_time: Option<DateTime<Utc>>,
    /// When the agent recorded the gap.
    pub detected_at: DateTime<Utc>,
    /// What else is known: for [`GAP_REJECTED`], the refused entry's id and
    /// the coordinator's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Gap {
    /// A gap with an id derived from the host, the time it was recorded and
    /// a number unique within the agent's run.
    pub fn new(reason: &str, host: &str, count: u64, unique: u64) -> Gap {
        use sha2::Digest as _;
        let detected_at = Utc::now();
        let mut h = sha2::Sha256::new();
        h.update(host.as_bytes());
        h.update([0x1f]);
        h.update(reason.as_bytes());
        h.update(detected_at.timestamp_nanos_opt().unwrap_or(0).to_le_bytes());
        h.update(unique.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let digest = hex::encode(h.finalize());
        Gap {
            id: format!("gap-{}", &digest[..32]),
            reason: reason.to_string(),
            host: host.to_string(),
            count,
            by_severity: BTreeMap::new(),
            first_time: None,
            last_time: None,
            detected_at,
            detail: None,
        }
    }

    /// The gap recording that the coordinator refused `entry` (an alert or a
    /// gap record) with `message`. Its id derives from the host and the
    /// entry's id, so recording the same refusal again is deduplicated.
    pub fn rejected(host: &str, entry: &SpoolEntryRef<'_>, message: &str) -> Gap {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(host.as_bytes());
        h.update([0x1f]);
        h.update(GAP_REJECTED.as_bytes());
        h.update([0x1f]);
        h.update(entry.id().as_bytes());
        let digest = hex::encode(h.finalize());
        let mut gap = Gap::new(GAP_REJECTED, host, 1, 0);
        gap.id = format!("gap-{}", &digest[..32]);
        let (what, id) = match entry {
            SpoolEntryRef::Alert(a) => {
                gap.by_severity.insert(a.severity.as_str().to_string(), 1);
                gap.first_time = Some(a.time);
                gap.last_time = Some(a.time);
                ("alert", a.id.as_str())
            }
            SpoolEntryRef::Gap(g) => {
                gap.first_time = g.first_time;
                gap.last_time = g.last_time;
                ("gap record", g.id.as_str())
            }
        };
        let mut detail = format!("{what} {id} refused: {message}");
        if detail.len() > MAX_GAP_DETAIL {
            let mut end = MAX_GAP_DETAIL;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        gap.detail = Some(detail);
        gap
    }
}

/// Longest `detail` a gap record carries (the coordinator refuses longer).
pub const MAX_GAP_DETAIL: usize = 1024;

/// An entry of the delivery spool, borrowed: an alert or a gap record.
#[derive(Debug, Clone, Copy)]
pub enum SpoolEntryRef<'a> {
    /// An alert.
    Alert(&'a Alert),
    /// A gap record.
    Gap(&'a Gap),
}

impl SpoolEntryRef<'_> {
    /// The entry's idempotency id.
    pub fn id(&self) -> &str {
        match self {
            SpoolEntryRef::Alert(a) => &a.id,
            SpoolEntryRef::Gap(g) => &g.id,
        }
    }
}

/// The coordinator's answer to an [`AlertBatch`]: every alert and gap in
/// the batch is now stored (`accepted` new, `duplicates` already known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    /// Alerts stored for the first time.
    pub accepted: u64,
    /// Alerts whose id the coordinator already had.
    pub duplicates: u64,
    /// Gap records stored for the first time (absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gaps_accepted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What an agent reports about itself periodically.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's version.
    pub version: String,
    /// Identity of the loaded rule pack.
    pub rules_version: String,
    /// Seconds since the agent started.
    pub uptime_s: u64,
    /// Events decoded since start.
    pub events_total: u64,
    /// Alerts produced since start.
    pub alerts_total: u64,
    /// Lines that could not be decoded since start.
    pub malformed_total: u64,
    /// Alerts dropped by allow-lists since start.
    #[serde(default)]
    pub suppressed_total: u64,
    /// Frames captured on the configured interfaces since start.
    #[serde(default)]
    pub packets_total: u64,
    /// Network events dropped since start because the engine fell behind.
    #[serde(default)]
    pub dropped_total: u64,
    /// Frames that reached the capture sockets since start, as the kernel
    /// counts them (`PACKET_STATISTICS`: read, waiting, or dropped).
    #[serde(default)]
    pub capture_kernel_packets_total: u64,
    /// Frames the kernel dropped since start because a capture socket's
    /// buffer was full (the capture thread fell behind the wire): never
    /// decoded, a detection gap.
    #[serde(default)]
    pub capture_kernel_drops_total: u64,
    /// Frames decoded and judged since start but not kept as evidence
    /// because a flow had kept its first frames or the flow tables' frame
    /// budget was spent: alerts on them carry fewer packets.
    #[serde(default)]
    pub evidence_frames_dropped_total: u64,
    /// The part of [`Heartbeat::evidence_frames_dropped_total`] refused
    /// because the flow tables' frame budget was spent (evidence lost for
    /// flows that had kept nothing yet).
    #[serde(default)]
    pub evidence_budget_dropped_total: u64,
    /// Open correlation groups dropped since start because the engine's
    /// state reached its cap (a flood of distinct keys): detection gaps.
    #[serde(default)]
    pub state_evicted_total: u64,
    /// Where the loaded rules came from: `bundle` (the coordinator's,
    /// verified), `saved-bundle` (the last good one), `local` or `shipped`.
    #[serde(default)]
    pub rules_source: String,
    /// Why the coordinator's newest bundle was refused (bad signature, does
    /// not compile, unreachable), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_error: Option<String>,
    /// Entries (alerts and gap records) waiting in the spool.
    #[serde(default)]
    pub spool_entries: u64,
    /// Bytes of those entries.
    #[serde(default)]
    pub spool_bytes: u64,
    /// Resident memory of the agent process, bytes (`/proc/self/statm`).
    #[serde(default)]
    pub rss_bytes: u64,
    /// CPU time (user + system) the agent has used, seconds (`/proc/self/stat`).
    #[serde(default)]
    pub cpu_seconds: f64,
    /// Seconds between heartbeats: the coordinator calls the agent silent
    /// after three of them without contact. 0 (older agents): never.
    #[serde(default)]
    pub heartbeat_interval_s: u64,
    /// Batches (and halves of batches) the coordinator refused as invalid
    /// since start; each refused entry was isolated and delivered as a
    /// `rejected` gap record.
    #[serde(default)]
    pub delivery_rejected_total: u64,
    /// Files the `[[files]]` watcher read, hashed and YARA-scanned since start.
    #[serde(default)]
    pub files_scanned_total: u64,
    /// Bytes of those files.
    #[serde(default)]
    pub files_scanned_bytes_total: u64,
    /// YARA rule matches in the files the watcher scanned (one per rule and file).
    #[serde(default)]
    pub yara_matches_total: u64,
    /// Integrity events (file created, modified, deleted) the watcher emitted.
    #[serde(default)]
    pub integrity_events_total: u64,
    /// Files the watcher did not scan, by reason.
    #[serde(default)]
    pub files_skipped: FilesSkipped,
    /// Full passes over the watched trees (the first, the periodic ones and
    /// those after a notification overflow).
    #[serde(default)]
    pub files_full_passes_total: u64,
    /// Times file notifications overflowed (or failed) and a full pass stood in.
    #[serde(default)]
    pub files_notify_overflows_total: u64,
    /// Events judged per second over the last heartbeat interval.
    #[serde(default)]
    pub events_per_sec: f64,
    /// Alerts produced per second over the last heartbeat interval.
    #[serde(default)]
    pub alerts_per_sec: f64,
    /// Log lines and journal entries read per second over the last interval.
    #[serde(default)]
    pub lines_per_sec: f64,
    /// Frames captured per second over the last interval.
    #[serde(default)]
    pub packets_per_sec: f64,
}

/// Files the watcher skipped since start, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesSkipped {
    /// Larger than the root's `max_file_size`.
    #[serde(default)]
    pub too_large: u64,
    /// Permission denied or another read error.
    #[serde(default)]
    pub unreadable: u64,
    /// Gone between notification (or listing) and reading.
    #[serde(default)]
    pub vanished: u64,
    /// Not a regular file (symlink, fifo, socket, device).
    #[serde(default)]
    pub special: u64,
    /// The YARA scan hit `scan_timeout_s`.
    #[serde(default)]
    pub timeout: u64,
    /// yara-x reported another error.
    #[serde(default)]
    pub scan_error: u64,
}

impl FilesSkipped {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.too_large
            + self.unreadable
            + self.vanished
            + self.special
            + self.timeout
            + self.scan_error
    }
}

/// Request body of `POST /api/v1/agents/enroll`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The secret part of the enrollment token.
    pub secret: String,
    /// The host's name.
    pub hostname: String,
    /// The agent's version.
    pub version: String,
}

/// Answer to an [`EnrollRequest`]: the agent's identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The agent's id.
    pub agent_id: String,
    /// The agent's bearer credential. Shown once; the coordinator keeps a hash.
    pub agent_token: String,
    /// The agency the enrollment token was bound to.
    pub agency: String,
    /// The Ed25519 public key (base64) that signs the coordinator's rule
    /// bundles; absent from coordinators that serve none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_key: Option<String>,
}

/// Prefix of an encoded enrollment token.
pub const ENROLL_TOKEN_PREFIX: &str = "wardenroll_";

/// An enrollment token: everything `ward-agent enroll` needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollToken {
    /// The coordinator's base URL.
    #[serde(rename = "u")]
    pub url: String,
    /// The one-time secret.
    #[serde(rename = "s")]
    pub secret: String,
    /// SHA-256 (hex) of the coordinator's TLS certificate, when pinned.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
}

/// Why an enrollment token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a Ward enrollment token at all.
    #[error("not a Ward enrollment token (expected it to start with '{ENROLL_TOKEN_PREFIX}')")]
    Prefix,
    /// Damaged in transit.
    #[error("enrollment token is damaged: {0}")]
    Damaged(String),
}

impl EnrollToken {
    /// The token as one copy-pasteable string.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("token serializes");
        format!("{ENROLL_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads a token made by [`EnrollToken::encode`].
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        let body = s
            .trim()
            .strip_prefix(ENROLL_TOKEN_PREFIX)
            .ok_or(TokenError::Prefix)?;
        if body.len() > 4096 {
            return Err(TokenError::Damaged("too long".into()));
        }
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| TokenError::Damaged(e.to_string()))?;
        serde_json::from_slice(&json).map_err(|e| TokenError::Damaged(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Alert::push_json` writes what serde_json writes, over alerts of
    /// random text: every control character, quotes, backslashes, DEL,
    /// multi-byte characters, runs longer than a word; times with and
    /// without fractions of every length, leap seconds, years outside
    /// 0..=9999; with and without packets, entities and a drill.
    #[test]
    fn push_json_writes_what_serde_json_writes() {
        let mut seed = 0x0ddb_1a5e_5eed_5eedu64;
        let next = |seed: &mut u64| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let pieces: &[&str] = &[
            "a",
            "Z",
            "0",
            " ",
            "\"",
            "\\",
            "/",
            "\u{0}",
            "\u{1}",
            "\u{8}",
            "\t",
            "\n",
            "\u{b}",
            "\u{c}",
            "\r",
            "\u{1f}",
            "\u{7f}",
            "\u{80}",
            "é",
            "中",
            "\u{2028}",
            "\u{1f600}",
            "abcdefgh",
            "tcp 192.0.2.10:40000 -> 198.51.100.5:443 S",
            "GET /index.html HTTP/1.1",
        ];
        let text = |seed: &mut u64, max: u64| -> String {
            let n = next(seed) % (max + 1);
            (0..n)
                .map(|_| pieces[(next(seed) % pieces.len() as u64) as usize])
                .collect()
        };
        let mut alerts = Vec::new();
        for i in 0..3000u64 {
            let r = next(&mut seed);
            let secs = match r % 8 {
                0 => (r >> 8) as i64 % 400_000_000_000 - 100_000_000_000,
                1 => 1_795_000_000 - (1_795_000_000 % 60) + 59,
                _ => 1_795_000_000 + (r >> 8) as i64 % 100_000_000,
            };
            let nanos = match (r >> 4) % 6 {
                0 => 0,
                1 => (r >> 12) as u32 % 1000 * 1_000_000,
                2 => (r >> 12) as u32 % 1_000_000 * 1000,
                3 if secs % 60 == 59 => 1_000_000_000 + (r >> 12) as u32 % 1_000_000_000,
                _ => (r >> 12) as u32 % 1_000_000_000,
            };
            let Some(time) = DateTime::from_timestamp(secs, nanos) else {
                continue;
            };
            let severity = [
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ][(r >> 40) as usize % 4];
            let entities = (0..next(&mut seed) % 4)
                .map(|_| (text(&mut seed, 3), text(&mut seed, 6)))
                .collect();
            let evidence = (0..next(&mut seed) % 3)
                .map(|_| text(&mut seed, 40))
                .collect();
            let tags = (0..next(&mut seed) % 3)
                .map(|_| text(&mut seed, 4))
                .collect();
            let packets = (0..next(&mut seed) % 3)
                .map(|_| EvidencePacket {
                    ts_ns: next(&mut seed) as i64,
                    linktype: (next(&mut seed) % 300) as u32,
                    orig_len: next(&mut seed) as u32,
                    data: (0..next(&mut seed) % 100)
                        .map(|_| next(&mut seed) as u8)
                        .collect(),
                })
                .collect();
            alerts.push(Alert {
                id: text(&mut seed, 4),
                rule_id: text(&mut seed, 4),
                title: text(&mut seed, 10),
                severity,
                time,
                host: text(&mut seed, 3),
                entities,
                evidence,
                tags,
                source: text(&mut seed, 3),
                packets,
                drill_id: (i % 3 == 0).then(|| text(&mut seed, 3)),
            });
        }
        assert!(alerts.len() > 2500, "{}", alerts.len());
        let mut out = String::new();
        for a in &alerts {
            out.clear();
            a.push_json(&mut out);
            assert_eq!(out, serde_json::to_string(a).unwrap());
        }
    }

    #[test]
    fn enroll_token_round_trips() {
        let t = EnrollToken {
            url: "https://127.0.0.1:8443".into(),
            secret: "abc".into(),
            cert_sha256: Some("00ff".into()),
        };
        assert_eq!(EnrollToken::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn a_heartbeat_without_file_counters_still_parses() {
        // What an agent without a file watcher (or an older agent) sends.
        let old = r#"{"version":"0.1.0","rules_version":"abc","uptime_s":5,
            "events_total":1,"alerts_total":0,"malformed_total":0}"#;
        let hb: Heartbeat = serde_json::from_str(old).unwrap();
        assert_eq!(hb.files_scanned_total, 0);
        assert_eq!(hb.files_skipped, FilesSkipped::default());
        let partial = r#"{"version":"0.1.0","rules_version":"abc","uptime_s":5,
            "events_total":1,"alerts_total":0,"malformed_total":0,
            "files_scanned_total":7,"files_skipped":{"too_large":2}}"#;
        let hb: Heartbeat = serde_json::from_str(partial).unwrap();
        assert_eq!(hb.files_scanned_total, 7);
        assert_eq!(hb.files_skipped.too_large, 2);
        assert_eq!(hb.files_skipped.total(), 2);
    }

    #[test]
    fn enroll_token_rejects_garbage() {
        assert!(matches!(
            EnrollToken::decode("hello"),
            Err(TokenError::Prefix)
        ));
        assert!(matches!(
            EnrollToken::decode("wardenroll_!!!"),
            Err(TokenError::Damaged(_))
        ));
    }

    #[test]
    fn primary_entity_prefers_source_ip() {
        let mut a = Alert {
            id: "x".into(),
            rule_id: "r".into(),
            title: "t".into(),
            severity: Severity::High,
            time: Utc::now(),
            host: "h".into(),
            entities: BTreeMap::new(),
            evidence: vec![],
            tags: vec![],
            source: String::new(),
            packets: vec![],
            drill_id: None,
        };
        assert_eq!(a.primary_entity(), None);
        a.entities.insert("user".into(), "root".into());
        assert_eq!(a.primary_entity(), Some(("user", "root")));
        a.entities.insert("src_ip".into(), "203.0.113.7".into());
        assert_eq!(a.primary_entity(), Some(("src_ip", "203.0.113.7")));
    }

    fn alert_with(n_packets: usize, size: usize) -> Alert {
        Alert {
            id: "x".into(),
            rule_id: "r".into(),
            title: "t".into(),
            severity: Severity::Low,
            time: Utc::now(),
            host: "h".into(),
            entities: BTreeMap::new(),
            evidence: vec![],
            tags: vec![],
            source: String::new(),
            packets: (0..n_packets)
                .map(|i| EvidencePacket {
                    ts_ns: i as i64,
                    linktype: 1,
                    orig_len: size as u32,
                    data: vec![0xab; size],
                })
                .collect(),
            drill_id: None,
        }
    }

    #[test]
    fn packets_are_base64_in_json_and_absent_when_none() {
        let a = alert_with(1, 3);
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["packets"][0]["data"], "q6ur");
        assert_eq!(v["packets"][0]["linktype"], 1);
        let back: Alert = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
        let none = serde_json::to_value(alert_with(0, 0)).unwrap();
        assert!(none.get("packets").is_none(), "{none}");
        let bad = serde_json::json!({"ts_ns": 1, "linktype": 1, "data": "!!"});
        let err = serde_json::from_value::<EvidencePacket>(bad).unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
    }

    #[test]
    fn batches_bound_alert_count_and_packet_bytes() {
        let big: Vec<Alert> = (0..300).map(|_| alert_with(4, 16 * 1024)).collect();
        let parts = batches(&big);
        assert_eq!(parts.iter().map(|b| b.len()).sum::<usize>(), 300);
        for b in &parts {
            assert!(b.iter().map(packet_bytes).sum::<usize>() <= MAX_BATCH_PACKET_BYTES);
        }
        assert_eq!(parts[0].len(), MAX_BATCH_PACKET_BYTES / (64 * 1024));
        let small: Vec<Alert> = (0..2500).map(|_| alert_with(0, 0)).collect();
        let lens: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(lens, [1000, 1000, 500]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn evidence_is_capped_on_a_char_boundary() {
        let long = "é".repeat(MAX_EVIDENCE_LINE_BYTES);
        let capped = cap_evidence_line(&long);
        assert!(capped.len() <= MAX_EVIDENCE_LINE_BYTES + "…".len());
    }
}
