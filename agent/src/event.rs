//! The one event model every source produces and every rule sees.
//!
//! An [`Event`] is a timestamp, the host it happened on, where it came from
//! (`origin`, a stable position such as `file:<fingerprint>:<offset>`) and a
//! flat list of named string fields. Rules see fields, never raw sources; the
//! raw record is kept beside the fields only as evidence.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rsigma_eval::event::EventValue;
use serde_json::{Map, Value};

/// A field name: static for the names decoders emit, owned for JSON keys.
pub type FieldName = Cow<'static, str>;

/// What kind of record an event came from. The engine skips rules whose
/// Sigma logsource cannot apply (a webserver rule on an auth-log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventKind {
    /// Not known: every rule is evaluated.
    #[default]
    Unknown,
    /// A syslog line from a Linux host (auth.log, secure, messages).
    Syslog,
    /// A web server access-log line.
    WebAccess,
    /// Made by the network decoder from captured frames.
    Network,
}

/// A captured frame kept as evidence of a network event: its capture time,
/// its pcap `LINKTYPE_*`, its length on the wire and the bytes kept (maybe
/// fewer, as with a pcap snap length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// pcap `LINKTYPE_*` of `data`.
    pub linktype: u32,
    /// Length of the frame as captured, before any cut.
    pub orig_len: u32,
    /// The bytes kept, shared with the flow table and other events.
    pub data: Arc<[u8]>,
}

/// The frames behind an event (the first frames of its flow). Shared:
/// cloning an event or keeping it as correlation evidence copies no bytes.
pub type Frames = Arc<Vec<Frame>>;

/// One normalized event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What kind of record it came from.
    pub kind: EventKind,
    /// When it happened (event time, not arrival time).
    pub time: DateTime<Utc>,
    /// The agent's host name.
    pub host: String,
    /// A stable identity of the record this event came from, unique per host
    /// (e.g. `file:1a2b3c4d:1024`). Alert ids are derived from it, so the same
    /// record always yields the same alert id.
    pub origin: String,
    /// Named fields, in decoder order. Names are unique.
    pub fields: Vec<(FieldName, String)>,
    /// The raw record (a log line), kept as evidence.
    pub raw: String,
    /// Captured frames behind a network event, kept as evidence (never
    /// seen by rules); `None` for every other event.
    pub packets: Option<Frames>,
}

impl Event {
    /// An event with no fields yet.
    pub fn new(time: DateTime<Utc>, host: impl Into<String>, origin: impl Into<String>) -> Self {
        Event {
            kind: EventKind::Unknown,
            time,
            host: host.into(),
            origin: origin.into(),
            fields: Vec::new(),
            raw: String::new(),
            packets: None,
        }
    }

    /// The value of a field, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds a field the event does not have yet (decoders that emit each
    /// name once use this instead of [`Event::set`]'s search).
    pub fn push(&mut self, name: &'static str, value: impl Into<String>) {
        debug_assert!(self.get(name).is_none(), "field {name} pushed twice");
        self.fields.push((FieldName::Borrowed(name), value.into()));
    }

    /// Sets a field, replacing an earlier value of the same name.
    pub fn set(&mut self, name: impl Into<FieldName>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else {
            self.fields.push((name, value));
        }
    }
}

/// Other names rules use for the same field (SigmaHQ rules are not
/// consistent): `(alias, field)`.
pub const FIELD_ALIASES: &[(&str, &str)] = &[
    ("cs-user-agent", "c-useragent"),
    ("cs-uri", "c-uri"),
    ("c-uri-query", "cs-uri-query"),
    ("c-uri-stem", "cs-uri-stem"),
];

impl rsigma_eval::Event for Event {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.get(path)
            .or_else(|| {
                FIELD_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == path)
                    .and_then(|(_, field)| self.get(field))
            })
            .map(|v| EventValue::Str(Cow::Borrowed(v)))
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.fields.iter().any(|(_, v)| pred(v))
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.fields
            .iter()
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
            .collect()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for (_, v) in &self.fields {
            visit(v);
        }
    }

    /// Only the origin, under `_id`: the correlation engine keeps this as
    /// its reference to the event (and evidence is looked up by it), so
    /// the whole event is never copied per match.
    fn to_json(&self) -> Value {
        let mut map = Map::with_capacity(1);
        map.insert("_id".into(), Value::String(self.origin.clone()));
        Value::Object(map)
    }

    fn field_keys(&self) -> Vec<Cow<'_, str>> {
        self.fields
            .iter()
            .map(|(k, _)| Cow::Borrowed(k.as_ref()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_and_get_finds() {
        let mut e = Event::new(Utc::now(), "h", "o");
        e.set("user", "root");
        e.set("user", "bob");
        e.set("src_ip", "203.0.113.7");
        assert_eq!(e.get("user"), Some("bob"));
        assert_eq!(e.get("src_ip"), Some("203.0.113.7"));
        assert_eq!(e.get("missing"), None);
        assert_eq!(e.fields.len(), 2);
    }
}
