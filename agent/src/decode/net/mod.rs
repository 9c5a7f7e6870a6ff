//! Network decoding: captured frames into [`Event`]s.
//!
//! One parser per protocol, in Suricata's style — each takes bytes, keeps to
//! written limits, never panics, and reports oddities as flags:
//! [`packet`] (Ethernet/VLAN, SLL, IPv4/IPv6, TCP/UDP/ICMP through
//! `etherparse`), [`dns`], [`http`] (request head), [`tls`] (ClientHello
//! SNI). [`flow`] keeps the flow table. [`NetDecoder`] ties them together
//! and emits the events rules see (field `event_type`):
//!
//! | `event_type` | when |
//! |---|---|
//! | `conn_attempt` | a TCP SYN opens a new flow |
//! | `flow_end` | a flow ends (timeout, reuse, eviction, end of capture) |
//! | `dns_query` / `dns_answer` | a DNS query / response (UDP or TCP port 53) |
//! | `http_request` | a TCP payload starts with an HTTP/1.x request head |
//! | `tls_client_hello` | a TCP payload starts with a TLS ClientHello |
//! | `beacon` | connections from one source to one destination port at regular intervals |
//!
//! Events are named `<source>:<packet index>.<kind>` (see
//! [`Event::origin`]), so a replay of the same capture names them the same.
//! Every event is of kind [`EventKind::Network`] and carries, in
//! [`Event::packets`], the frames its flow kept up to then (a `flow_end`
//! all of them): the evidence alerts carry (see [`flow`] for the limits).

pub mod dns;
pub mod flow;
pub mod http;
pub mod packet;
pub mod reassembly;
pub mod tls;

mod beacon;
pub(crate) mod text;

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::event::{Event, EventKind, FieldValue};
use beacon::Beacons;
pub use flow::{EndReason, Flow, FlowConfig, FlowKey, FlowTable, RawFrame};
pub use packet::{LinkType, Packet, PacketError, Proto};
use text::{push_fixed3, push_rfc3339_micros_cached, push_u64, u64_text};

/// What a [`NetDecoder`] has seen.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    /// Frames handed in.
    pub packets: u64,
    /// Captured bytes handed in.
    pub bytes: u64,
    /// Frames that were not IP (ARP, ...).
    pub not_ip: u64,
    /// Frames whose headers could not be read.
    pub malformed: u64,
    /// IP packets with anomaly flags (truncated, fragment, bad transport).
    pub anomalies: u64,
    /// Events produced.
    pub events: u64,
    /// Flows ended early because the flow table was full.
    pub flows_evicted: u64,
    /// Frames not kept as evidence because the flow table's frame budget was spent.
    pub frames_not_kept: u64,
    /// Frames not kept as evidence because their flow had kept its first
    /// frames already (the per-flow limits).
    pub frames_past_flow_cap: u64,
}

impl NetStats {
    /// Frames judged but not kept as evidence, for either limit.
    pub fn evidence_frames_dropped(&self) -> u64 {
        self.frames_not_kept + self.frames_past_flow_cap
    }
}

/// Turns the frames of one capture (a file or an interface) into events.
#[derive(Debug)]
pub struct NetDecoder {
    host: String,
    source: String,
    flows: FlowTable,
    beacons: Beacons,
    ended: Vec<(Flow, EndReason)>,
    stats: NetStats,
    /// Events handed back through [`NetDecoder::recycle`], whose buffers
    /// the next events reuse.
    spare: std::cell::RefCell<Vec<Event>>,
    /// The text of the last event's second, which the next event's time
    /// mostly shares.
    second: std::cell::RefCell<text::SecondText>,
    /// The texts of recently written addresses.
    addr_texts: std::cell::RefCell<text::AddrTexts>,
}

/// Most judged events a [`NetDecoder`] keeps for reuse (≈ 1 KiB of
/// buffers each): enough for the bursts of `flow_end` events a timeout
/// sweep makes, which would otherwise each allocate anew.
const MAX_SPARE_EVENTS: usize = 1024;

fn ts_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// When a frame was captured: its time in µs and ns, and the time itself,
/// built only when an event needs it (most frames make none).
#[derive(Debug, Clone, Copy)]
struct FrameTime {
    /// µs since the epoch (the flow table's clock).
    us: i64,
    /// ns since the epoch (the evidence frame's time).
    ns: i64,
    /// The time as given, or `None` when it is `secs`/`nanos`.
    time: Option<DateTime<Utc>>,
    secs: i64,
    nanos: u32,
}

impl FrameTime {
    fn of(time: DateTime<Utc>) -> FrameTime {
        let us = ts_us(time);
        FrameTime {
            us,
            ns: time
                .timestamp_nanos_opt()
                .unwrap_or_else(|| us.saturating_mul(1000)),
            time: Some(time),
            secs: 0,
            nanos: 0,
        }
    }

    fn time(&self) -> DateTime<Utc> {
        match self.time {
            Some(t) => t,
            None => DateTime::from_timestamp(self.secs, self.nanos).unwrap_or_default(),
        }
    }
}

impl NetDecoder {
    /// A decoder for frames seen on `host`; `source` names the capture in
    /// event origins (`pcap:1a2b3c4d5e6f`, `live:eth0:...`).
    pub fn new(host: impl Into<String>, source: impl Into<String>, config: FlowConfig) -> Self {
        NetDecoder {
            host: host.into(),
            source: source.into(),
            flows: FlowTable::new(config),
            beacons: Beacons::default(),
            ended: Vec::new(),
            stats: NetStats::default(),
            spare: Default::default(),
            second: Default::default(),
            addr_texts: Default::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> NetStats {
        NetStats {
            flows_evicted: self.flows.evicted,
            frames_not_kept: self.flows.frames_not_kept,
            frames_past_flow_cap: self.flows.frames_past_flow_cap,
            ..self.stats
        }
    }

    /// Flows currently held.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// A network event named `<source>:<index>.<kind>` whose raw line
    /// starts with `time` (the caller writes the rest of it).
    fn event(
        &self,
        time: DateTime<Utc>,
        index: u64,
        kind: &str,
        event_type: &'static str,
    ) -> Event {
        let mut e = match self.spare.borrow_mut().pop() {
            Some(mut e) => {
                e.reset(&self.host, &self.source);
                e.time = time;
                e
            }
            None => {
                let mut e = Event::new(time, self.host.clone(), self.source.clone());
                e.origin.reserve(24);
                e.fields.reserve(12);
                e.raw.reserve(160);
                e
            }
        };
        e.origin.push(':');
        push_u64(&mut e.origin, index);
        e.origin.push('.');
        e.origin.push_str(kind);
        e.kind = EventKind::Network;
        push_rfc3339_micros_cached(&mut e.raw, time, &mut self.second.borrow_mut());
        e.push_pair(("event_type".into(), FieldValue::fixed(event_type)));
        e
    }

    /// Appends `ip`'s `Display` text to the raw line, returned as a slice
    /// of it.
    fn append_ip(&self, e: &mut Event, ip: std::net::IpAddr) -> FieldValue {
        e.append_raw(|raw| self.addr_texts.borrow_mut().push(raw, ip))
    }

    /// Appends `text` to the raw line, returned as a slice of it.
    fn append_str(e: &mut Event, text: &str) -> FieldValue {
        e.append_raw(|raw| raw.push_str(text))
    }

    /// Writes `src:sport -> dst:dport` into the raw line and adds `proto`,
    /// `src_ip`, `src_port`, `dst_ip` and `dst_port`, the last four as
    /// slices of the line.
    fn endpoints(&self, e: &mut Event, key: &FlowKey) {
        let src = self.append_ip(e, key.src);
        e.raw.push(':');
        let sport = e.append_raw(|raw| push_u64(raw, key.src_port.into()));
        e.raw.push_str(" -> ");
        let dst = self.append_ip(e, key.dst);
        e.raw.push(':');
        let dport = e.append_raw(|raw| push_u64(raw, key.dst_port.into()));
        e.note_addr(&src, key.src);
        e.note_addr(&dst, key.dst);
        e.push_pair(("proto".into(), FieldValue::from(key.proto.name())));
        e.push_pair(("src_ip".into(), src));
        e.push_pair(("src_port".into(), sport));
        e.push_pair(("dst_ip".into(), dst));
        e.push_pair(("dst_port".into(), dport));
    }

    /// Hands back an event this decoder made, once judged: the next
    /// events reuse its buffers instead of allocating their own.
    pub fn recycle(&self, mut event: Event) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() < MAX_SPARE_EVENTS {
            // Let go of the frames now: a flow whose snapshot is shared
            // would copy its frame list at its next kept frame.
            event.packets = None;
            spare.push(event);
        }
    }

    /// Decodes one frame captured at `time`, the `index`-th of its source,
    /// appending the events it completes to `out`.
    pub fn decode(
        &mut self,
        time: DateTime<Utc>,
        link: LinkType,
        data: &[u8],
        index: u64,
        out: &mut Vec<Event>,
    ) {
        self.decode_frame(FrameTime::of(time), link, data, index, out);
    }

    /// [`NetDecoder::decode`] of a frame captured `secs` and `nanos` after
    /// the epoch, as capture files give times: the same as `decode` at
    /// `DateTime::from_timestamp(secs as i64, nanos).unwrap_or_default()`,
    /// without building that time for the frames that make no event.
    pub fn decode_at(
        &mut self,
        secs: u64,
        nanos: u32,
        link: LinkType,
        data: &[u8],
        index: u64,
        out: &mut Vec<Event>,
    ) {
        // Below 2^33 s (the year 2242) every such time exists and its µs
        // and ns fit; the rest take the general way.
        if secs < 1 << 33 && nanos < 1_000_000_000 {
            let whole = secs as i64;
            let at = FrameTime {
                us: whole * 1_000_000 + i64::from(nanos / 1000),
                ns: whole * 1_000_000_000 + i64::from(nanos),
                time: None,
                secs: whole,
                nanos,
            };
            self.decode_frame(at, link, data, index, out);
        } else {
            let time = DateTime::from_timestamp(secs as i64, nanos).unwrap_or_default();
            self.decode(time, link, data, index, out);
        }
    }

    fn decode_frame(
        &mut self,
        at: FrameTime,
        link: LinkType,
        data: &[u8],
        index: u64,
        out: &mut Vec<Event>,
    ) {
        self.stats.packets += 1;
        self.stats.bytes += data.len() as u64;
        let before = out.len();
        let p = match packet::parse(link, data) {
            Ok(p) => p,
            Err(PacketError::NotIp) => {
                self.stats.not_ip += 1;
                return;
            }
            Err(PacketError::Malformed(_)) => {
                self.stats.malformed += 1;
                return;
            }
        };
        if p.anomalies != 0 {
            self.stats.anomalies += 1;
        }
        let now = at.us;
        let frame = RawFrame {
            ts_ns: at.ns,
            linktype: link.linktype(),
            data,
        };
        let update = self
            .flows
            .packet_with_frame(&p, now, index, frame, &mut self.ended);
        self.flush_ended(out);
        if update.new_flow
            && let Some(key) = update.key
        {
            if p.proto == packet::Proto::Tcp
                && p.tcp_flags & (packet::tcp::SYN | packet::tcp::ACK) == packet::tcp::SYN
            {
                let mut e = self.event(at.time(), index, "conn", "conn_attempt");
                e.raw.push(' ');
                e.raw.push_str(&key.proto.name());
                e.raw.push(' ');
                self.endpoints(&mut e, &key);
                e.raw.push(' ');
                let flags = Self::append_str(&mut e, packet::tcp::letters(p.tcp_flags));
                e.push_pair(("tcp_flags".into(), flags));
                e.packets = self.flows.frames(&key);
                out.push(e);
            }
            if let Some(b) = self.beacons.connection(&key, now) {
                let mut e = self.event(at.time(), index, "beacon", "beacon");
                e.raw.push_str(" beacon ");
                e.raw.push_str(&key.proto.name());
                e.raw.push(' ');
                let src = self.append_ip(&mut e, key.src);
                e.raw.push_str(" -> ");
                let dst = self.append_ip(&mut e, key.dst);
                e.raw.push(':');
                let dport = e.append_raw(|raw| push_u64(raw, key.dst_port.into()));
                e.raw.push_str(" every ");
                let interval = e.append_raw(|raw| {
                    let _ = write!(raw, "{:.1}", b.mean_s);
                });
                e.raw.push_str("s (jitter ");
                let jitter = e.append_raw(|raw| {
                    let _ = write!(raw, "{:.3}", b.jitter);
                });
                e.raw.push_str(") x");
                let count = e.append_raw(|raw| push_u64(raw, b.count as u64));
                e.note_addr(&src, key.src);
                e.note_addr(&dst, key.dst);
                e.push_pair(("proto".into(), FieldValue::from(key.proto.name())));
                e.push_pair(("src_ip".into(), src));
                e.push_pair(("src_port".into(), u64_text(key.src_port.into())));
                e.push_pair(("dst_ip".into(), dst));
                e.push_pair(("dst_port".into(), dport));
                e.push_pair(("beacon_count".into(), count));
                e.push_pair(("beacon_interval_s".into(), interval));
                e.push_pair(("beacon_jitter".into(), jitter));
                e.packets = self.flows.frames(&key);
                out.push(e);
            }
        }
        let ends = FlowKey {
            src: p.src,
            dst: p.dst,
            src_port: p.src_port,
            dst_port: p.dst_port,
            proto: p.proto,
        };
        let frames = || update.key.and_then(|k| self.flows.frames(&k));
        if let Some(head) = &update.head {
            // A stream head this segment completed stands for the segment.
            self.application(at, index, &ends, head, frames, out);
        } else if !p.payload.is_empty()
            && p.anomalies & packet::FRAGMENT == 0
            && !update.skip_payload
        {
            self.application(at, index, &ends, p.payload, frames, out);
        }
        self.stats.events += (out.len() - before) as u64;
    }

    /// Judges `payload`, sent from `p.src` to `p.dst`, as DNS, an HTTP
    /// request head or a TLS ClientHello; `frames` gives the evidence.
    fn application(
        &self,
        at: FrameTime,
        index: u64,
        p: &FlowKey,
        payload: &[u8],
        frames: impl Fn() -> Option<crate::event::Frames>,
        out: &mut Vec<Event>,
    ) {
        let dns_port = p.src_port == 53 || p.dst_port == 53;
        if dns_port && matches!(p.proto, Proto::Udp | Proto::Tcp) {
            let msg = if p.proto == Proto::Tcp {
                payload.get(2..).unwrap_or(&[])
            } else {
                payload
            };
            if let Ok(m) = dns::parse(msg) {
                let kind = if m.response {
                    "dns_answer"
                } else {
                    "dns_query"
                };
                let mut e = self.event(at.time(), index, "dns", kind);
                let qtype = dns::qtype_name(m.qtype);
                e.raw.push_str(if m.response {
                    " dns answer "
                } else {
                    " dns query "
                });
                let query_type = Self::append_str(&mut e, &qtype);
                e.raw.push(' ');
                let query = Self::append_str(&mut e, &m.query);
                e.raw.push(' ');
                self.endpoints(&mut e, p);
                e.push_pair(("query".into(), query));
                e.push_pair(("query_type".into(), query_type));
                e.push_pair(("query_length".into(), u64_text(m.query.len() as u64)));
                e.push_pair((
                    "query_longest_label".into(),
                    u64_text(m.longest_label as u64),
                ));
                e.push_pair(("query_entropy".into(), format!("{:.2}", m.entropy)));
                if m.response {
                    e.push_pair(("dns_rcode".into(), u64_text(m.rcode.into())));
                    if !m.answers.is_empty() {
                        e.raw.push_str(" = ");
                        let answers = e.append_raw(|raw| {
                            for (i, a) in m.answers.iter().enumerate() {
                                if i > 0 {
                                    raw.push(',');
                                }
                                raw.push_str(a);
                            }
                        });
                        e.push_pair(("answers".into(), answers));
                    }
                }
                e.packets = frames();
                out.push(e);
                return;
            }
        }
        if p.proto != Proto::Tcp {
            return;
        }
        if let Some(r) = http::parse(payload) {
            let mut e = self.event(at.time(), index, "http", "http_request");
            e.raw.push_str(" http ");
            self.endpoints(&mut e, p);
            e.raw.push(' ');
            let method = Self::append_str(&mut e, &r.method);
            e.raw.push(' ');
            let uri = Self::append_str(&mut e, &r.uri);
            e.raw.push(' ');
            let version = Self::append_str(&mut e, &r.version);
            e.raw.push_str(" host=");
            let host = Self::append_str(&mut e, r.host.as_deref().unwrap_or("-"));
            e.raw.push_str(" ua=");
            let ua = Self::append_str(&mut e, r.user_agent.as_deref().unwrap_or("-"));
            // With no escape the decoded target is the target: a slice
            // of the line rather than a copy.
            let decoded = if r.uri.contains('%') {
                FieldValue::from(http::percent_decode(&r.uri))
            } else {
                uri.clone()
            };
            e.push_pair(("uri_decoded".into(), decoded));
            e.push_pair(("http_method".into(), method));
            e.push_pair(("uri".into(), uri));
            e.push_pair(("http_version".into(), version));
            if r.host.is_some() {
                e.push_pair(("http_host".into(), host));
            }
            if r.user_agent.is_some() {
                e.push_pair(("user_agent".into(), ua));
            }
            e.packets = frames();
            out.push(e);
        } else if let Some(h) = tls::parse(payload) {
            let mut e = self.event(at.time(), index, "tls", "tls_client_hello");
            e.raw.push_str(" tls client hello ");
            self.endpoints(&mut e, p);
            e.raw.push(' ');
            let version = Self::append_str(&mut e, &tls::version_name(h.version));
            e.raw.push_str(" sni=");
            let sni = Self::append_str(&mut e, h.sni.as_deref().unwrap_or("-"));
            e.push_pair(("tls_version".into(), version));
            if h.sni.is_some() {
                e.push_pair(("sni".into(), sni));
            }
            e.packets = frames();
            out.push(e);
        }
    }

    fn flush_ended(&mut self, out: &mut Vec<Event>) {
        // Called for every frame; flows end at few of them.
        if self.ended.is_empty() {
            return;
        }
        // Taken out and put back, keeping its buffer.
        let mut ended = std::mem::take(&mut self.ended);
        for (mut f, why) in ended.drain(..) {
            let time = from_us(f.last_us);
            // Stream heads still incomplete are judged as they arrived.
            for (dir, ends) in [(0, f.key), (1, f.key.reversed())] {
                if let Some((index, head)) = f.heads[dir].take_pending() {
                    let frames = || f.frames.clone();
                    self.application(FrameTime::of(time), index, &ends, &head, frames, out);
                }
            }
            // The line is stamped with the flow's start, the event with its end.
            let mut e = self.event(from_us(f.first_us), f.first_index, "end", "flow_end");
            e.time = time;
            e.raw.push_str(" flow ");
            e.raw.push_str(&f.key.proto.name());
            e.raw.push(' ');
            self.endpoints(&mut e, &f.key);
            for part in [" ", f.conn_state(), " ", why.name(), " pkts "] {
                e.raw.push_str(part);
            }
            push_u64(&mut e.raw, f.packets[0]);
            e.raw.push('/');
            push_u64(&mut e.raw, f.packets[1]);
            e.raw.push_str(" bytes ");
            push_u64(&mut e.raw, f.bytes[0]);
            e.raw.push('/');
            push_u64(&mut e.raw, f.bytes[1]);
            e.raw.push(' ');
            let duration_s = e.append_raw(|raw| push_fixed3(raw, f.last_us - f.first_us));
            e.raw.push('s');
            e.push_pair(("conn_state".into(), FieldValue::fixed(f.conn_state())));
            e.push_pair(("end_reason".into(), FieldValue::fixed(why.name())));
            e.push_pair(("packets".into(), u64_text(f.packets[0] + f.packets[1])));
            e.push_pair(("bytes".into(), u64_text(f.bytes[0] + f.bytes[1])));
            e.push_pair(("duration_s".into(), duration_s));
            if f.key.proto == Proto::Tcp {
                e.push_pair((
                    "tcp_flags".into(),
                    FieldValue::fixed(packet::tcp::letters(f.flags[0] | f.flags[1])),
                ));
            }
            e.packets = f.frames.take();
            out.push(e);
        }
        self.ended = ended;
    }

    /// Ends flows idle past their timeout at `now` (live capture calls this
    /// when no frame arrived for a while).
    pub fn tick(&mut self, now: DateTime<Utc>, out: &mut Vec<Event>) {
        let before = out.len();
        self.flows.expire(ts_us(now), &mut self.ended);
        self.flush_ended(out);
        self.stats.events += (out.len() - before) as u64;
    }

    /// Ends every flow (the capture is over), appending their `flow_end` events.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let before = out.len();
        self.flows.drain(&mut self.ended);
        self.flush_ended(out);
        self.stats.events += (out.len() - before) as u64;
    }
}

#[cfg(test)]
mod tests;
