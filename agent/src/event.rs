//! The one event model every source produces and every rule sees.
//!
//! An [`Event`] is a timestamp, the host it happened on, where it came from
//! (`origin`, a stable position such as `file:<fingerprint>:<offset>`) and a
//! flat list of named string fields. Rules see fields, never raw sources; the
//! raw record is kept beside the fields only as evidence.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rsigma_eval::event::EventValue;
use serde_json::{Map, Value};

/// A field name: static for the names decoders emit, owned for JSON keys.
pub type FieldName = Cow<'static, str>;

/// A field's value: a slice of the event's raw record (what log decoders
/// emit, so a line's fields cost no copies), or text of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// `raw[start..end]` of the event.
    Raw {
        /// Start offset in bytes.
        start: u32,
        /// End offset in bytes (exclusive).
        end: u32,
    },
    /// Text not taken from the record.
    Text(Cow<'static, str>),
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Text(Cow::Owned(s))
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Text(Cow::Owned(s.to_string()))
    }
}

impl FieldValue {
    /// A static text value (no copy).
    pub const fn fixed(s: &'static str) -> Self {
        FieldValue::Text(Cow::Borrowed(s))
    }
}

impl From<Cow<'static, str>> for FieldValue {
    fn from(s: Cow<'static, str>) -> Self {
        FieldValue::Text(s)
    }
}

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
/// fewer, as with a pcap snap length), borrowed from its [`FrameSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// pcap `LINKTYPE_*` of `data`.
    pub linktype: u32,
    /// Length of the frame as captured, before any cut.
    pub orig_len: u32,
    /// The bytes kept.
    pub data: &'a [u8],
    /// Which kept frame this is: its set's [`FrameSet::id`] and its place
    /// in it. Every snapshot of a flow's frames names a frame alike, so
    /// alerts carry each frame once.
    pub id: (u64, u32),
}

/// Where a [`FrameSet`] keeps one frame's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameMeta {
    ts_ns: i64,
    linktype: u32,
    orig_len: u32,
    /// `bytes[start..end]` of the set.
    start: u32,
    end: u32,
}

/// The frames a flow kept, in the order kept: their bytes end to end in
/// one buffer (one allocation per flow rather than one per frame).
/// Equal when the frames are (whatever the [`FrameSet::id`]).
#[derive(Debug, Default)]
pub struct FrameSet {
    id: u64,
    bytes: Vec<u8>,
    meta: Vec<FrameMeta>,
}

/// A copy keeps the original's room: a flow copies its set only to keep
/// another frame while a snapshot is held, and a copy with no spare room
/// would grow at once.
impl Clone for FrameSet {
    fn clone(&self) -> Self {
        let mut bytes = Vec::with_capacity(self.bytes.capacity());
        bytes.extend_from_slice(&self.bytes);
        let mut meta = Vec::with_capacity(self.meta.capacity());
        meta.extend_from_slice(&self.meta);
        FrameSet {
            id: self.id,
            bytes,
            meta,
        }
    }
}

impl PartialEq for FrameSet {
    fn eq(&self, other: &Self) -> bool {
        // Frames are only ever appended, end to end: equal frames lie
        // alike in both buffers.
        self.meta == other.meta && self.bytes == other.bytes
    }
}

impl Eq for FrameSet {}

impl FrameSet {
    /// An empty set with room for `frames` frames, named by a new
    /// [`FrameSet::id`] (unique in the process; its copies keep it).
    pub fn with_capacity(frames: usize) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        FrameSet {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            bytes: Vec::new(),
            meta: Vec::with_capacity(frames),
        }
    }

    /// What names this set's frames in [`Frame::id`].
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Appends a frame: `data` kept of a frame `orig_len` long. The buffer
    /// starts with room for four frames like the first; when a frame does
    /// not fit, it grows to twice its size or to room for three more
    /// frames like this one, whichever is more (a flow's first frames are
    /// mostly small handshakes before full-size segments: doubling from a
    /// SYN's room grew the buffer at nearly every data frame), but never
    /// past `max_bytes` (the most the caller will keep) unless the frame
    /// needs it.
    pub fn push(
        &mut self,
        ts_ns: i64,
        linktype: u32,
        orig_len: u32,
        data: &[u8],
        max_bytes: usize,
    ) {
        let start = self.bytes.len();
        let need = start + data.len();
        if need > self.bytes.capacity() {
            // Room for four frames like the first, then doubling or
            // room for three more like this one.
            let grown = match self.bytes.capacity() {
                0 => need.saturating_mul(4),
                cap => cap
                    .saturating_mul(2)
                    .max(need.saturating_add(data.len().saturating_mul(3))),
            };
            let want = grown.max(need).min(max_bytes.max(need));
            self.bytes.reserve_exact(want - start);
        }
        self.bytes.extend_from_slice(data);
        self.meta.push(FrameMeta {
            ts_ns,
            linktype,
            orig_len,
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(need).unwrap_or(u32::MAX),
        });
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Bytes of the frames held.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    fn frame(&self, i: usize, m: &FrameMeta) -> Frame<'_> {
        Frame {
            ts_ns: m.ts_ns,
            linktype: m.linktype,
            orig_len: m.orig_len,
            data: self
                .bytes
                .get(m.start as usize..m.end as usize)
                .unwrap_or(&[]),
            id: (self.id, i as u32),
        }
    }

    /// The `i`-th frame kept.
    pub fn get(&self, i: usize) -> Option<Frame<'_>> {
        self.meta.get(i).map(|m| self.frame(i, m))
    }

    /// The last frame kept.
    pub fn last(&self) -> Option<Frame<'_>> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// The frames in the order kept.
    pub fn iter(&self) -> impl Iterator<Item = Frame<'_>> + '_ {
        self.meta.iter().enumerate().map(|(i, m)| self.frame(i, m))
    }
}

/// The frames behind an event (the first frames of its flow). Shared:
/// cloning an event or keeping it as correlation evidence copies no bytes;
/// a flow that keeps another frame while a snapshot is held copies its set
/// (at most [`crate::decode::net::flow::MAX_FLOW_FRAMES`] frames and
/// [`crate::decode::net::flow::MAX_FLOW_FRAME_BYTES`]) and leaves the
/// snapshot as it was.
pub type Frames = Arc<FrameSet>;

/// An address a decoder wrote into an event's raw line: `raw[start..end]`
/// is its `Display` text. Kept beside the text so that whoever needs the
/// address (the indicator lookup) need not read it back from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAddr {
    /// Start offset of the text in `raw`.
    pub start: u32,
    /// End offset of the text in `raw` (exclusive).
    pub end: u32,
    /// The address.
    pub ip: IpAddr,
}

/// Most addresses an event notes ([`Event::note_addr`]): a flow's two ends.
pub const MAX_RAW_ADDRS: usize = 2;

/// One normalized event. Events are equal when everything but the
/// address hints ([`Event::addrs`]) is.
#[derive(Debug, Clone)]
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
    /// Named fields, in decoder order. Names are unique. Read values with
    /// [`Event::get`] or [`Event::field_values`] ([`FieldValue::Raw`] needs `raw`).
    pub fields: Vec<(FieldName, FieldValue)>,
    /// The raw record (a log line), kept as evidence. Fields may be slices
    /// of it: it is set before them and not changed after.
    pub raw: String,
    /// Captured frames behind a network event, kept as evidence (never
    /// seen by rules); `None` for every other event.
    pub packets: Option<Frames>,
    /// Addresses whose text the decoder wrote into `raw` (network events:
    /// the flow's ends), so [`Event::addr_of`] gives a field's address
    /// without parsing it. Only a hint: a value that is not exactly one of
    /// these slices of `raw` is read from its text. Boxed, so that an event
    /// stays small to move (a recycled event keeps its box).
    pub addrs: Option<Box<[Option<RawAddr>; MAX_RAW_ADDRS]>>,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        // `addrs` only repeats what the text says.
        self.kind == o.kind
            && self.time == o.time
            && self.host == o.host
            && self.origin == o.origin
            && self.fields == o.fields
            && self.raw == o.raw
            && self.packets == o.packets
    }
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
            addrs: None,
        }
    }

    /// Empties the event for the next record, keeping its buffers: no
    /// fields, no record, no frames, kind unknown, the given host and
    /// origin. Decoding into one reused event costs no allocation per line.
    pub fn reset(&mut self, host: &str, origin: &str) {
        self.kind = EventKind::Unknown;
        // Mostly the host it had (one decoder's events).
        if self.host != host {
            self.host.clear();
            self.host.push_str(host);
        }
        self.origin.clear();
        self.origin.push_str(origin);
        self.fields.clear();
        self.raw.clear();
        self.packets = None;
        if let Some(a) = &mut self.addrs {
            **a = [None; MAX_RAW_ADDRS];
        }
    }

    /// Appends to the raw record what `write` writes, as a value that is a
    /// slice of it.
    pub fn append_raw(&mut self, write: impl FnOnce(&mut String)) -> FieldValue {
        let start = self.raw.len();
        write(&mut self.raw);
        FieldValue::Raw {
            start: start as u32,
            end: self.raw.len() as u32,
        }
    }

    /// Notes that `value`, a slice of `raw`, is the text of `ip` (as
    /// `Display` writes it), for [`Event::addr_of`]. A value that is not a
    /// slice of `raw`, or an event that noted [`MAX_RAW_ADDRS`] already,
    /// notes nothing.
    pub fn note_addr(&mut self, value: &FieldValue, ip: IpAddr) {
        let FieldValue::Raw { start, end } = *value else {
            return;
        };
        debug_assert_eq!(
            self.raw.get(start as usize..end as usize),
            Some(ip.to_string().as_str())
        );
        let addrs = self.addrs.get_or_insert_with(Default::default);
        if let Some(slot) = addrs.iter_mut().find(|a| a.is_none()) {
            *slot = Some(RawAddr { start, end, ip });
        }
    }

    /// The address `value` is the text of, when the decoder noted it
    /// ([`Event::note_addr`]): the same address as parsing the text gives.
    pub fn addr_of(&self, value: &FieldValue) -> Option<IpAddr> {
        let FieldValue::Raw { start, end } = *value else {
            return None;
        };
        self.addrs
            .as_deref()?
            .iter()
            .flatten()
            .find(|a| a.start == start && a.end == end)
            .map(|a| a.ip)
    }

    /// The text of a value of this event (empty for a slice outside `raw`).
    pub fn text<'a>(&'a self, v: &'a FieldValue) -> &'a str {
        match v {
            FieldValue::Raw { start, end } => {
                self.raw.get(*start as usize..*end as usize).unwrap_or("")
            }
            FieldValue::Text(t) => t,
        }
    }

    /// The value of a field, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| self.text(v))
    }

    /// Every field as (name, value text), in decoder order.
    pub fn field_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), self.text(v)))
    }

    /// The value of a field as rules see it: by its own name, else through
    /// [`FIELD_ALIASES`].
    pub fn lookup(&self, name: &str) -> Option<&str> {
        self.lookup_index(name)
            .map(|i| self.text(&self.fields[i].1))
    }

    /// Where in `fields` [`Event::lookup`] finds `name`.
    pub fn lookup_index(&self, name: &str) -> Option<usize> {
        let at = |name: &str| self.fields.iter().position(|(k, _)| k == name);
        at(name).or_else(|| {
            FIELD_ALIASES
                .iter()
                .find(|(alias, _)| *alias == name)
                .and_then(|(_, field)| at(field))
        })
    }

    /// Every field value, in decoder order.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(_, v)| self.text(v))
    }

    /// Adds a field the event does not have yet (decoders that emit each
    /// name once use this instead of [`Event::set`]'s search).
    pub fn push(&mut self, name: &'static str, value: impl Into<FieldValue>) {
        debug_assert!(self.get(name).is_none(), "field {name} pushed twice");
        self.fields.push((FieldName::Borrowed(name), value.into()));
    }

    /// Adds a field (as [`Event::push`]) whose value is `part`, a slice of
    /// `record`, where `raw` holds a copy of `record` from offset `base`:
    /// the value is kept as a slice of `raw`, not copied.
    pub fn push_slice(&mut self, name: &'static str, record: &str, base: usize, part: &str) {
        let value = self.slice_of(record, base, part);
        self.push(name, value);
    }

    /// Sets a field (as [`Event::set`]) to a slice of `record` (see
    /// [`Event::push_slice`]).
    pub fn set_slice(&mut self, name: &'static str, record: &str, base: usize, part: &str) {
        let value = self.slice_of(record, base, part);
        self.set(name, value);
    }

    /// `part` of `record` as a slice of `raw`; a copy when it is not a
    /// slice of `record` or does not fit. The text is not compared again
    /// (`raw` holds `record` at `base`, as the callers promise); a slice
    /// must still lie inside `raw` on character boundaries.
    fn slice_of(&self, record: &str, base: usize, part: &str) -> FieldValue {
        let at = (part.as_ptr() as usize).wrapping_sub(record.as_ptr() as usize);
        let (start, end) = (base + at, base + at + part.len());
        if at <= record.len()
            && at + part.len() <= record.len()
            && end <= u32::MAX as usize
            && self.raw.len() >= base + record.len()
            && self.raw.is_char_boundary(start)
            && self.raw.is_char_boundary(end)
        {
            FieldValue::Raw {
                start: start as u32,
                end: end as u32,
            }
        } else {
            FieldValue::Text(Cow::Owned(part.to_string()))
        }
    }

    /// Adds a field given as a (name, value) pair.
    pub fn push_pair(&mut self, (name, value): (FieldName, impl Into<FieldValue>)) {
        self.fields.push((name, value.into()));
    }

    /// Sets a field, replacing an earlier value of the same name.
    pub fn set(&mut self, name: impl Into<FieldName>, value: impl Into<FieldValue>) {
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
        self.lookup(path).map(|v| EventValue::Str(Cow::Borrowed(v)))
    }

    /// The field names, and the aliases that resolve on this event: the
    /// engine's candidate index then probes only these instead of every
    /// field any rule names.
    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        for (k, _) in &self.fields {
            visit(k);
        }
        // The field first: most events have none of them, and then the
        // alias is never looked for.
        for (alias, field) in FIELD_ALIASES {
            if self.get(field).is_some() && self.get(alias).is_none() {
                visit(alias);
            }
        }
        true
    }

    fn top_level_keys(&self) -> Option<Vec<Cow<'_, str>>> {
        let mut keys: Vec<Cow<'_, str>> = self
            .fields
            .iter()
            .map(|(k, _)| Cow::Borrowed(k.as_ref()))
            .collect();
        for (alias, field) in FIELD_ALIASES {
            if self.get(alias).is_none() && self.get(field).is_some() {
                keys.push(Cow::Borrowed(alias));
            }
        }
        Some(keys)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.values().any(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.values().map(Cow::Borrowed).collect()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        for v in self.values() {
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

    /// The `_id` of [`to_json`](rsigma_eval::Event::to_json), without
    /// building it.
    fn ref_id(&self) -> Option<String> {
        Some(self.origin.clone())
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

    /// A frame set's buffer never grows past the most its flow keeps, and
    /// its frames read back as pushed.
    #[test]
    fn a_frame_set_stays_within_its_limit() {
        for sizes in [
            &[54usize, 54, 66, 400, 1514, 1514, 1514][..],
            &[1514; 16],
            &[60; 16],
        ] {
            let mut set = FrameSet::with_capacity(4);
            let limit = 16 * 1024;
            let mut kept = 0;
            for (i, &n) in sizes.iter().enumerate() {
                let n = n.min(limit - kept);
                if n == 0 {
                    break;
                }
                set.push(i as i64, 1, n as u32, &vec![i as u8; n], limit);
                kept += n;
                assert!(set.bytes.capacity() <= limit, "{sizes:?}");
            }
            assert_eq!(set.bytes(), kept);
            for (i, f) in set.iter().enumerate() {
                assert_eq!(f.ts_ns, i as i64);
                assert!(f.data.iter().all(|&b| b == i as u8));
                assert_eq!(f.id, (set.id(), i as u32));
            }
        }
    }

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
