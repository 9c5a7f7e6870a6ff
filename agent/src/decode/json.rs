//! JSON lines: one object per line, nested objects flattened to dotted
//! names, bounded in depth and field count.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::event::Event;

/// Deepest nesting flattened; deeper values are kept as JSON text.
const MAX_DEPTH: usize = 8;
/// Most fields taken from one object.
const MAX_FIELDS: usize = 256;
/// Field names tried, in order, for the event time.
const TIME_FIELDS: &[&str] = &["@timestamp", "timestamp", "time", "ts", "date"];

/// Decodes a JSON object line into `event` (as [`Event::reset`] left
/// it); `false`, the event untouched, when the line is not a JSON object.
pub(super) fn decode_into(line: &str, e: &mut Event) -> bool {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(line) else {
        return false;
    };
    e.time = TIME_FIELDS
        .iter()
        .find_map(|k| map.get(*k).and_then(parse_time))
        .unwrap_or_else(Utc::now);
    let mut prefix = String::new();
    flatten(&Value::Object(map), &mut prefix, 0, e);
    e.raw.push_str(line);
    true
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => {
            let f = n.as_f64()?;
            // Seconds, or milliseconds when it is too large to be seconds.
            let millis = if f > 1e11 { f } else { f * 1000.0 };
            Utc.timestamp_millis_opt(millis as i64).single()
        }
        _ => None,
    }
}

fn flatten(v: &Value, prefix: &mut String, depth: usize, e: &mut Event) {
    if e.fields.len() >= MAX_FIELDS {
        return;
    }
    match v {
        Value::Object(map) if depth < MAX_DEPTH => {
            for (k, child) in map {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                flatten(child, prefix, depth + 1, e);
                prefix.truncate(len);
            }
        }
        Value::Null => {}
        Value::String(s) => e.set(prefix.clone(), s.clone()),
        Value::Bool(b) => e.set(prefix.clone(), b.to_string()),
        Value::Number(n) => e.set(prefix.clone(), n.to_string()),
        other => e.set(prefix.clone(), other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str, host: &str, origin: String) -> Option<Event> {
        let mut e = Event::new(Utc::now(), host, origin);
        decode_into(line, &mut e).then_some(e)
    }

    #[test]
    fn flattens_and_finds_time() {
        let e = decode(
            r#"{"@timestamp":"2026-11-22T04:00:00Z","client":{"ip":"203.0.113.7"},"status":404,"ok":false,"tags":["a","b"],"n":null}"#,
            "h",
            "o".into(),
        )
        .unwrap();
        assert_eq!(e.time.to_rfc3339(), "2026-11-22T04:00:00+00:00");
        assert_eq!(e.get("client.ip"), Some("203.0.113.7"));
        assert_eq!(e.get("status"), Some("404"));
        assert_eq!(e.get("ok"), Some("false"));
        assert_eq!(e.get("tags"), Some(r#"["a","b"]"#));
        assert_eq!(e.get("n"), None);
    }

    #[test]
    fn epoch_times_and_bad_json() {
        let e = decode(r#"{"ts": 1795320000}"#, "h", "o".into()).unwrap();
        assert_eq!(e.time.timestamp(), 1_795_320_000);
        let e = decode(r#"{"ts": 1795320000123}"#, "h", "o".into()).unwrap();
        assert_eq!(e.time.timestamp_millis(), 1_795_320_000_123);
        assert!(decode(r#"{"truncated": "#, "h", "o".into()).is_none());
        assert!(decode("[1,2]", "h", "o".into()).is_none());
        let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
        assert!(
            decode(&deep, "h", "o".into()).is_some()
                || serde_json::from_str::<Value>(&deep).is_err()
        );
    }
}
