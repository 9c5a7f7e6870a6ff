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
}

/// Entity names in the order that makes one the incident's primary entity.
pub const PRIMARY_ENTITY_ORDER: &[&str] = &[
    "src_ip", "dst_ip", "domain", "sha256", "user", "path", "uri",
];

impl Alert {
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
}

/// The coordinator's answer to an [`AlertBatch`]: every alert in the batch
/// is now stored (`accepted` new, `duplicates` already known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    /// Alerts stored for the first time.
    pub accepted: u64,
    /// Alerts whose id the coordinator already had.
    pub duplicates: u64,
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
        };
        assert_eq!(a.primary_entity(), None);
        a.entities.insert("user".into(), "root".into());
        assert_eq!(a.primary_entity(), Some(("user", "root")));
        a.entities.insert("src_ip".into(), "203.0.113.7".into());
        assert_eq!(a.primary_entity(), Some(("src_ip", "203.0.113.7")));
    }

    #[test]
    fn evidence_is_capped_on_a_char_boundary() {
        let long = "é".repeat(MAX_EVIDENCE_LINE_BYTES);
        let capped = cap_evidence_line(&long);
        assert!(capped.len() <= MAX_EVIDENCE_LINE_BYTES + "…".len());
    }
}
