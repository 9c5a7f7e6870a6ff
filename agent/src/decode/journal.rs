//! journald entries, as `journalctl --output=json` prints them, into the
//! same events a syslog line gives.
//!
//! One JSON object per entry. Values are strings, byte arrays (a field that
//! is not valid UTF-8 or holds control characters: `[70, 97, 255, ...]`),
//! arrays of those (a field with several values) or `null` (a field longer
//! than journalctl's limit when `--all` is not given). `MESSAGE`,
//! `SYSLOG_IDENTIFIER` (else `_COMM`), `SYSLOG_PID` (else `_PID`),
//! `_HOSTNAME`, `SYSLOG_FACILITY`, `PRIORITY` and `__REALTIME_TIMESTAMP`
//! become the fields of [`super::syslog`], so rules written for auth.log
//! lines fire on journald entries unchanged.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::{AuthParser, MAX_LINE_BYTES};
use crate::event::{Event, EventKind};

/// Longest JSON entry line accepted, in bytes. A byte-array `MESSAGE` takes
/// up to four bytes of JSON per byte, so this leaves room for a message of
/// [`MAX_LINE_BYTES`] in either form; longer lines are counted and skipped.
pub const MAX_ENTRY_BYTES: usize = 5 * MAX_LINE_BYTES;

/// Why a journal line was not turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalError {
    /// The JSON line, or the message in it, is over its limit.
    #[error("journal entry of {0} bytes is over the limit")]
    TooLong(usize),
    /// Not a journal entry.
    #[error("not a journal entry: {0}")]
    Malformed(String),
}

/// The parts of one journal entry that become an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// `__CURSOR`: the entry's position in the journal.
    pub cursor: String,
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch.
    pub realtime_us: i64,
    /// `MESSAGE`, invalid UTF-8 replaced.
    pub message: Option<String>,
    /// `SYSLOG_IDENTIFIER`, else `_COMM`.
    pub program: Option<String>,
    /// `SYSLOG_PID`, else `_PID`.
    pub pid: Option<String>,
    /// `_HOSTNAME`.
    pub hostname: Option<String>,
    /// `SYSLOG_FACILITY` (0–23).
    pub facility: Option<u8>,
    /// `PRIORITY` (0–7).
    pub priority: Option<u8>,
}

/// One value of a journal field as text: a string as is, a byte array as
/// (lossy) UTF-8, the first of several values, nothing for `null`.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            let bytes: Option<Vec<u8>> = items
                .iter()
                .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
        }
        Value::Array(items) => items.iter().find_map(text),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Bool(_) | Value::Object(_) => None,
    }
}

fn field(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name).and_then(text).filter(|s| !s.is_empty())
}

fn small_number(map: &Map<String, Value>, name: &str, max: u8) -> Option<u8> {
    field(map, name)
        .and_then(|s| s.trim().parse::<u8>().ok())
        .filter(|n| *n <= max)
}

/// Parses one line of `journalctl --output=json`.
pub fn parse_entry(line: &[u8]) -> Result<JournalEntry, JournalError> {
    if line.len() > MAX_ENTRY_BYTES {
        return Err(JournalError::TooLong(line.len()));
    }
    let map: Map<String, Value> =
        serde_json::from_slice(line).map_err(|e| JournalError::Malformed(e.to_string()))?;
    let cursor =
        field(&map, "__CURSOR").ok_or_else(|| JournalError::Malformed("no __CURSOR".into()))?;
    let realtime_us = field(&map, "__REALTIME_TIMESTAMP")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| JournalError::Malformed("no numeric __REALTIME_TIMESTAMP".into()))?;
    Ok(JournalEntry {
        cursor,
        realtime_us,
        message: map.get("MESSAGE").and_then(text),
        program: field(&map, "SYSLOG_IDENTIFIER").or_else(|| field(&map, "_COMM")),
        pid: field(&map, "SYSLOG_PID").or_else(|| field(&map, "_PID")),
        hostname: field(&map, "_HOSTNAME"),
        facility: small_number(&map, "SYSLOG_FACILITY", 23),
        priority: small_number(&map, "PRIORITY", 7),
    })
}

/// Turns journal entries into events, with the same authentication fields
/// the syslog decoder adds.
#[derive(Debug, Clone)]
pub struct JournalDecoder {
    host: String,
    auth: AuthParser,
}

impl JournalDecoder {
    /// A decoder for entries read on `host`.
    pub fn new(host: impl Into<String>) -> Self {
        JournalDecoder {
            host: host.into(),
            auth: AuthParser::new(),
        }
    }

    /// The event of one entry; its origin is `journal:<cursor>`, stable
    /// across restarts, so alert ids are too.
    pub fn decode(&self, entry: &JournalEntry) -> Result<Event, JournalError> {
        let message = entry.message.as_deref().unwrap_or("");
        if message.len() > MAX_LINE_BYTES {
            return Err(JournalError::TooLong(message.len()));
        }
        let time: DateTime<Utc> =
            DateTime::from_timestamp_micros(entry.realtime_us).ok_or_else(|| {
                JournalError::Malformed(format!("timestamp {} out of range", entry.realtime_us))
            })?;
        let mut event = Event::new(time, &self.host, format!("journal:{}", entry.cursor));
        event.kind = EventKind::Syslog;
        event.fields.reserve(12);
        if let Some(h) = &entry.hostname {
            event.set("hostname", h.clone());
        }
        if let Some(p) = &entry.program {
            event.set("program", p.clone());
        }
        if let Some(pid) = &entry.pid {
            event.set("pid", pid.clone());
        }
        if let Some(f) = entry
            .facility
            .and_then(|f| syslog_loose::decompose_pri(f << 3).0)
        {
            event.set("facility", f.as_str());
        }
        if let Some(s) = entry
            .priority
            .and_then(|p| syslog_loose::decompose_pri(p).1)
        {
            event.set("syslog_severity", s.as_str());
        }
        if entry.message.is_some() {
            event.set("message", message.to_string());
        }
        // Evidence in journalctl's short-iso-precise shape.
        event.raw = format!(
            "{} {} {}{}: {}",
            time.to_rfc3339_opts(SecondsFormat::Micros, true),
            entry.hostname.as_deref().unwrap_or("-"),
            entry.program.as_deref().unwrap_or("-"),
            entry
                .pid
                .as_deref()
                .map(|p| format!("[{p}]"))
                .unwrap_or_default(),
            message
        );
        self.auth.enrich(&mut event);
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSHD: &str = r#"{"_BOOT_ID":"0123456789abcdef0123456789abcdef","_PID":"401","_HOSTNAME":"web01","__REALTIME_TIMESTAMP":"1796111852951034","__CURSOR":"s=9b8b;i=1;b=0123;m=3e9;t=6618de0f8d5fa;x=6f11","SYSLOG_IDENTIFIER":"sshd","__MONOTONIC_TIMESTAMP":"1001","PRIORITY":"5","_COMM":"sshd","SYSLOG_FACILITY":"10","MESSAGE":"Failed password for invalid user admin from 203.0.113.7 port 50001 ssh2"}"#;

    #[test]
    fn an_sshd_entry_gets_the_fields_of_an_auth_log_line() {
        let entry = parse_entry(SSHD.as_bytes()).unwrap();
        let e = JournalDecoder::new("agent-host").decode(&entry).unwrap();
        assert_eq!(
            e.origin,
            "journal:s=9b8b;i=1;b=0123;m=3e9;t=6618de0f8d5fa;x=6f11"
        );
        assert_eq!(e.host, "agent-host");
        assert_eq!(e.kind, EventKind::Syslog);
        assert_eq!(
            e.time.to_rfc3339_opts(SecondsFormat::Micros, true),
            "2026-12-01T07:57:32.951034Z"
        );
        for (k, v) in [
            ("hostname", "web01"),
            ("program", "sshd"),
            ("pid", "401"),
            ("facility", "authpriv"),
            ("syslog_severity", "notice"),
            ("action", "login"),
            ("outcome", "failure"),
            ("user", "admin"),
            ("user_valid", "false"),
            ("src_ip", "203.0.113.7"),
            ("src_port", "50001"),
            ("auth_method", "password"),
        ] {
            assert_eq!(e.get(k), Some(v), "{k}");
        }
        assert_eq!(
            e.raw,
            "2026-12-01T07:57:32.951034Z web01 sshd[401]: Failed password for invalid user admin from 203.0.113.7 port 50001 ssh2"
        );
    }

    #[test]
    fn a_byte_array_message_is_decoded_lossily() {
        let mut bytes: Vec<String> = b"Failed password for r".iter().map(u8::to_string).collect();
        bytes.push("255".into());
        bytes.extend(
            b"oot from 203.0.113.9 port 1 ssh2"
                .iter()
                .map(u8::to_string),
        );
        let line = format!(
            r#"{{"__CURSOR":"c1","__REALTIME_TIMESTAMP":"1796111908138467","_COMM":"sshd","MESSAGE":[{}]}}"#,
            bytes.join(",")
        );
        let entry = parse_entry(line.as_bytes()).unwrap();
        assert_eq!(
            entry.message.as_deref(),
            Some("Failed password for r\u{fffd}oot from 203.0.113.9 port 1 ssh2")
        );
        let e = JournalDecoder::new("h").decode(&entry).unwrap();
        assert_eq!(e.get("program"), Some("sshd"), "_COMM when no identifier");
        assert_eq!(e.get("src_ip"), Some("203.0.113.9"));
        assert_eq!(e.get("user"), Some("r\u{fffd}oot"));
    }

    #[test]
    fn several_values_take_the_first_and_null_is_absent() {
        let line = br#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":["sudo","x"],"MESSAGE":null,"_PID":[[52,50]]}"#;
        let entry = parse_entry(line).unwrap();
        assert_eq!(entry.program.as_deref(), Some("sudo"));
        assert_eq!(entry.pid.as_deref(), Some("42"));
        assert_eq!(entry.message, None);
        let e = JournalDecoder::new("h").decode(&entry).unwrap();
        assert_eq!(e.get("message"), None);
        assert_eq!(e.raw, "1970-01-01T00:00:00.000001Z - sudo[42]: ");
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for line in [
            &b""[..],
            b"{",
            b"[]",
            b"null",
            b"{\"MESSAGE\":\"x\"}",
            b"{\"__CURSOR\":\"c\"}",
            b"{\"__CURSOR\":\"c\",\"__REALTIME_TIMESTAMP\":\"soon\"}",
            b"{\"__CURSOR\":[300],\"__REALTIME_TIMESTAMP\":\"1\"}",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse_entry(line), Err(JournalError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let deep = format!(
            r#"{{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse_entry(deep.as_bytes()).is_err());
        let long = vec![b' '; MAX_ENTRY_BYTES + 1];
        assert_eq!(
            parse_entry(&long),
            Err(JournalError::TooLong(MAX_ENTRY_BYTES + 1))
        );
        let entry = JournalEntry {
            cursor: "c".into(),
            realtime_us: i64::MAX,
            message: Some("x".into()),
            program: None,
            pid: None,
            hostname: None,
            facility: None,
            priority: None,
        };
        let d = JournalDecoder::new("h");
        assert!(matches!(d.decode(&entry), Err(JournalError::Malformed(_))));
        let big = JournalEntry {
            realtime_us: 1,
            message: Some("x".repeat(MAX_LINE_BYTES + 1)),
            ..entry
        };
        assert_eq!(
            d.decode(&big),
            Err(JournalError::TooLong(MAX_LINE_BYTES + 1))
        );
    }
}
