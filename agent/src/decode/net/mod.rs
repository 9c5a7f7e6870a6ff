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

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::event::{Event, EventKind, FieldValue};
use beacon::Beacons;
pub use flow::{EndReason, Flow, FlowConfig, FlowKey, FlowTable, RawFrame};
pub use packet::{LinkType, Packet, PacketError, Proto};

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
}

/// An address as text; IPv4 written directly (`Display` goes through the
/// formatter's padding machinery, a measurable cost at two per event).
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut s = String::with_capacity(15);
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if o >= 100 {
            s.push(char::from(b'0' + o / 100));
        }
        if o >= 10 {
            s.push(char::from(b'0' + o / 10 % 10));
        }
        s.push(char::from(b'0' + o % 10));
    }
    s
}

fn ts_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
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

    fn event(
        &self,
        time: DateTime<Utc>,
        index: u64,
        kind: &str,
        event_type: &'static str,
    ) -> Event {
        let mut e = Event::new(
            time,
            self.host.clone(),
            format!("{}:{index}.{kind}", self.source),
        );
        e.kind = EventKind::Network;
        e.fields.reserve(10);
        e.push_pair(("event_type".into(), FieldValue::fixed(event_type)));
        e
    }

    fn endpoints(e: &mut Event, key: &FlowKey) {
        e.push_pair(("proto".into(), key.proto.name().into_owned()));
        e.push_pair(("src_ip".into(), ip_text(key.src)));
        e.push_pair(("src_port".into(), key.src_port.to_string()));
        e.push_pair(("dst_ip".into(), ip_text(key.dst)));
        e.push_pair(("dst_port".into(), key.dst_port.to_string()));
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
        let now = ts_us(time);
        let frame = RawFrame {
            ts_ns: time
                .timestamp_nanos_opt()
                .unwrap_or_else(|| now.saturating_mul(1000)),
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
                let mut e = self.event(time, index, "conn", "conn_attempt");
                Self::endpoints(&mut e, &key);
                e.push_pair(("tcp_flags".into(), packet::tcp::letters(p.tcp_flags)));
                e.raw = format!(
                    "{} {} {}:{} -> {}:{} {}",
                    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    key.proto.name(),
                    key.src,
                    key.src_port,
                    key.dst,
                    key.dst_port,
                    packet::tcp::letters(p.tcp_flags)
                );
                e.packets = self.flows.frames(&key);
                out.push(e);
            }
            if let Some(b) = self.beacons.connection(&key, now) {
                let mut e = self.event(time, index, "beacon", "beacon");
                Self::endpoints(&mut e, &key);
                e.push_pair(("beacon_count".into(), b.count.to_string()));
                e.push_pair(("beacon_interval_s".into(), format!("{:.1}", b.mean_s)));
                e.push_pair(("beacon_jitter".into(), format!("{:.3}", b.jitter)));
                e.raw = format!(
                    "{} beacon {} {} -> {}:{} every {:.1}s (jitter {:.3}) x{}",
                    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    key.proto.name(),
                    key.src,
                    key.dst,
                    key.dst_port,
                    b.mean_s,
                    b.jitter,
                    b.count
                );
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
            self.application(time, index, &ends, head, frames, out);
        } else if !p.payload.is_empty()
            && p.anomalies & packet::FRAGMENT == 0
            && !update.skip_payload
        {
            self.application(time, index, &ends, p.payload, frames, out);
        }
        self.stats.events += (out.len() - before) as u64;
    }

    /// Judges `payload`, sent from `p.src` to `p.dst`, as DNS, an HTTP
    /// request head or a TLS ClientHello; `frames` gives the evidence.
    fn application(
        &self,
        time: DateTime<Utc>,
        index: u64,
        p: &FlowKey,
        payload: &[u8],
        frames: impl Fn() -> Option<crate::event::Frames>,
        out: &mut Vec<Event>,
    ) {
        let stamp = || time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
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
                let mut e = self.event(time, index, "dns", kind);
                Self::endpoints(&mut e, p);
                let qtype = dns::qtype_name(m.qtype);
                e.raw = format!(
                    "{} dns {} {} {} {}:{} -> {}:{}",
                    stamp(),
                    if m.response { "answer" } else { "query" },
                    qtype,
                    m.query,
                    p.src,
                    p.src_port,
                    p.dst,
                    p.dst_port
                );
                let qlen = m.query.len();
                e.push_pair(("query".into(), m.query));
                e.push_pair(("query_type".into(), qtype.into_owned()));
                e.push_pair(("query_length".into(), qlen.to_string()));
                e.push_pair(("query_longest_label".into(), m.longest_label.to_string()));
                e.push_pair(("query_entropy".into(), format!("{:.2}", m.entropy)));
                if m.response {
                    e.push_pair(("dns_rcode".into(), m.rcode.to_string()));
                    if !m.answers.is_empty() {
                        let _ = write!(e.raw, " = {}", m.answers.join(","));
                        e.push_pair(("answers".into(), m.answers.join(",")));
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
            let mut e = self.event(time, index, "http", "http_request");
            Self::endpoints(&mut e, p);
            e.raw = format!(
                "{} http {}:{} -> {}:{} {} {} {} host={} ua={}",
                stamp(),
                p.src,
                p.src_port,
                p.dst,
                p.dst_port,
                r.method,
                r.uri,
                r.version,
                r.host.as_deref().unwrap_or("-"),
                r.user_agent.as_deref().unwrap_or("-")
            );
            e.push_pair(("uri_decoded".into(), http::percent_decode(&r.uri)));
            e.push_pair(("http_method".into(), r.method));
            e.push_pair(("uri".into(), r.uri));
            e.push_pair(("http_version".into(), r.version));
            if let Some(h) = r.host {
                e.push_pair(("http_host".into(), h));
            }
            if let Some(ua) = r.user_agent {
                e.push_pair(("user_agent".into(), ua));
            }
            e.packets = frames();
            out.push(e);
        } else if let Some(h) = tls::parse(payload) {
            let mut e = self.event(time, index, "tls", "tls_client_hello");
            Self::endpoints(&mut e, p);
            e.raw = format!(
                "{} tls client hello {}:{} -> {}:{} {} sni={}",
                stamp(),
                p.src,
                p.src_port,
                p.dst,
                p.dst_port,
                tls::version_name(h.version),
                h.sni.as_deref().unwrap_or("-")
            );
            e.push_pair(("tls_version".into(), tls::version_name(h.version)));
            if let Some(sni) = h.sni {
                e.push_pair(("sni".into(), sni));
            }
            e.packets = frames();
            out.push(e);
        }
    }

    fn flush_ended(&mut self, out: &mut Vec<Event>) {
        for (mut f, why) in std::mem::take(&mut self.ended) {
            let time = from_us(f.last_us);
            // Stream heads still incomplete are judged as they arrived.
            for (dir, ends) in [(0, f.key), (1, f.key.reversed())] {
                if let Some((index, head)) = f.heads[dir].take_pending() {
                    let frames = || f.frames.clone();
                    self.application(time, index, &ends, &head, frames, out);
                }
            }
            let mut e = self.event(time, f.first_index, "end", "flow_end");
            Self::endpoints(&mut e, &f.key);
            let duration = (f.last_us - f.first_us) as f64 / 1e6;
            e.push_pair(("conn_state".into(), FieldValue::fixed(f.conn_state())));
            e.push_pair(("end_reason".into(), FieldValue::fixed(why.name())));
            e.push_pair(("packets".into(), (f.packets[0] + f.packets[1]).to_string()));
            e.push_pair(("bytes".into(), (f.bytes[0] + f.bytes[1]).to_string()));
            e.push_pair(("duration_s".into(), format!("{duration:.3}")));
            if f.key.proto == Proto::Tcp {
                e.push_pair((
                    "tcp_flags".into(),
                    packet::tcp::letters(f.flags[0] | f.flags[1]),
                ));
            }
            e.raw = format!(
                "{} flow {} {}:{} -> {}:{} {} {} pkts {}/{} bytes {}/{} {:.3}s",
                from_us(f.first_us).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                f.key.proto.name(),
                f.key.src,
                f.key.src_port,
                f.key.dst,
                f.key.dst_port,
                f.conn_state(),
                why.name(),
                f.packets[0],
                f.packets[1],
                f.bytes[0],
                f.bytes[1],
                duration
            );
            e.packets = f.frames.take();
            out.push(e);
        }
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

#[cfg(test)]
mod ip_text_tests {
    use super::ip_text;
    use std::net::IpAddr;

    #[test]
    fn ip_text_is_display() {
        for a in [
            "0.0.0.0",
            "10.9.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "1.20.103.7",
            "::1",
            "2001:db8::5",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }
}
