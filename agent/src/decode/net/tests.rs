//! NetDecoder over real captures and over mutated packets.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::*;
use crate::event::EventKind;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps")
}

fn pcaps(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            pcaps(&p, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "pcap" || e == "pcapng")
        {
            out.push(p);
        }
    }
}

fn t(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).unwrap()
}

/// Decodes a whole capture file, returning its events.
fn events_of(path: &Path) -> (Vec<Event>, NetStats) {
    let mut d = NetDecoder::new("h", "pcap:test", FlowConfig::default());
    let mut out = Vec::new();
    let mut i = 0;
    crate::sources::pcap::read_file(path, |ts, link, data| {
        let time = DateTime::from_timestamp(ts.as_secs() as i64, ts.subsec_nanos()).unwrap();
        d.decode(time, link, data, i, &mut out);
        i += 1;
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    d.finish(&mut out);
    (out, d.stats())
}

fn of_type<'a>(events: &'a [Event], t: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.get("event_type") == Some(t))
        .collect()
}

#[test]
fn every_corpus_capture_decodes() {
    let mut files = Vec::new();
    pcaps(&corpus(), &mut files);
    assert!(files.len() >= 30, "corpus pcaps missing: {files:?}");
    let mut total = 0;
    for f in &files {
        let (events, stats) = events_of(f);
        assert!(stats.packets > 0, "{}", f.display());
        // Every flow ends exactly once, and every event names its kind.
        assert!(events.iter().all(|e| e.get("event_type").is_some()));
        let mut origins: Vec<_> = events.iter().map(|e| e.origin.as_str()).collect();
        origins.sort_unstable();
        origins.dedup();
        assert_eq!(
            origins.len(),
            events.len(),
            "{}: origins must be unique",
            f.display()
        );
        total += stats.packets;
    }
    assert!(total > 10_000, "{total}");
}

#[test]
fn dns_queries_and_answers_from_a_real_capture() {
    let (events, _) = events_of(&corpus().join("suricata-verify/dns/dns-udp-eve-txt/input.pcap"));
    let answers = of_type(&events, "dns_answer");
    let queries = of_type(&events, "dns_query");
    assert!(!queries.is_empty() && !answers.is_empty(), "{events:#?}");
    assert!(
        queries
            .iter()
            .any(|e| e.get("query_type") == Some("TXT") && e.get("query") == Some("google.com")),
        "{queries:#?}"
    );
    assert_eq!(queries[0].get("dst_port"), Some("53"));
    // DNS over TCP (2-byte length prefix).
    let (events, _) =
        events_of(&corpus().join("suricata-verify/dns/dns-tcp-www-google-com/dns.pcap"));
    let q = of_type(&events, "dns_query");
    assert_eq!(q[0].get("query"), Some("www.google.com"));
    assert_eq!(q[0].get("proto"), Some("tcp"));
    let a = of_type(&events, "dns_answer");
    assert!(a[0].get("answers").is_some_and(|a| !a.is_empty()), "{a:#?}");
}

#[test]
fn http_requests_from_a_real_capture() {
    let (events, _) =
        events_of(&corpus().join("zeek-traces/http/1000-requests-one-dropped-response.pcap"));
    let http = of_type(&events, "http_request");
    assert_eq!(http.len(), 1000);
    assert!(
        http.iter()
            .all(|e| e.get("http_method").is_some() && e.get("uri").is_some())
    );
    let (events, _) = events_of(&corpus().join("zeek-traces/http/cooper-grill-dvwa.pcapng"));
    let http = of_type(&events, "http_request");
    assert!(!http.is_empty());
    assert!(
        http.iter()
            .any(|e| e.get("user_agent").is_some() && e.get("http_host").is_some()),
        "{http:#?}"
    );
}

#[test]
fn network_events_carry_their_flows_first_frames() {
    let path = corpus().join("zeek-traces/http/1000-requests-one-dropped-response.pcap");
    let (events, stats) = events_of(&path);
    assert!(events.iter().all(|e| e.kind == EventKind::Network));
    // Every frame as read, to compare the kept ones with.
    let mut frames = Vec::new();
    crate::sources::pcap::read_file(&path, |ts, link, data| {
        frames.push((ts.as_nanos() as i64, link.linktype(), data.to_vec()));
    })
    .unwrap();
    let http = of_type(&events, "http_request");
    let mut with_request = 0;
    for e in &http {
        let kept = e
            .packets
            .as_ref()
            .expect("an HTTP request carries its flow's frames");
        assert!(!kept.is_empty() && kept.len() <= flow::MAX_FLOW_FRAMES);
        // Early in a flow, the request itself is the last frame kept when
        // it was judged (later requests of a long connection are past the cap).
        if String::from_utf8_lossy(kept.last().unwrap().data).contains(e.get("uri").unwrap()) {
            with_request += 1;
        }
        for f in kept.iter() {
            assert!(
                frames
                    .iter()
                    .any(|(ts, l, d)| *ts == f.ts_ns && *l == f.linktype && d[..] == f.data[..]),
                "kept frame not in the capture"
            );
        }
    }
    assert!(with_request > 0);
    let mut past_cap = 0;
    for e in of_type(&events, "flow_end") {
        let kept = e
            .packets
            .as_ref()
            .expect("a flow_end carries its flow's frames");
        let packets: usize = e.get("packets").unwrap().parse().unwrap();
        assert_eq!(kept.len(), packets.min(flow::MAX_FLOW_FRAMES));
        past_cap += packets - kept.len();
        assert!(kept.iter().map(|f| f.data.len()).sum::<usize>() <= flow::MAX_FLOW_FRAME_BYTES);
        assert_eq!(
            kept.bytes(),
            kept.iter().map(|f| f.data.len()).sum::<usize>()
        );
        let kept: Vec<_> = kept.iter().collect();
        assert!(kept.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    }
    assert_eq!(stats.frames_not_kept, 0);
    // Every frame a flow did not keep is counted as evidence not kept.
    assert!(past_cap > 0);
    assert_eq!(stats.frames_past_flow_cap, past_cap as u64);
    assert_eq!(stats.evidence_frames_dropped(), past_cap as u64);
}

#[test]
fn tls_sni_and_flows_from_real_captures() {
    let (events, _) = events_of(&corpus().join("zeek-traces/tls/heartbleed.pcap"));
    let hello = of_type(&events, "tls_client_hello");
    assert_eq!(hello.len(), 1, "{events:#?}");
    assert!(
        hello[0]
            .get("tls_version")
            .is_some_and(|v| v.starts_with("TLS")),
        "{hello:#?}"
    );
    // An SSLv2-format hello (no SNI possible) is not mistaken for one.
    let (events, _) = events_of(&corpus().join("suricata-verify/tls/tls-glupteba/input.pcap"));
    assert!(of_type(&events, "tls_client_hello").is_empty());
    let (events, _) = events_of(&corpus().join("zeek-traces/ssh/sshguess.pcap"));
    let attempts = of_type(&events, "conn_attempt");
    let ends = of_type(&events, "flow_end");
    assert!(!attempts.is_empty());
    assert!(attempts.iter().all(|e| e.get("dst_port") == Some("22")));
    assert!(
        ends.iter()
            .any(|e| e.get("conn_state") == Some("SF") || e.get("conn_state") == Some("RSTO")),
        "{ends:#?}"
    );
}

#[test]
fn pcap_and_pcapng_timestamps_are_the_files_own() {
    let (events, _) = events_of(&corpus().join("zeek-traces/http/cooper-grill-dvwa.pcapng"));
    let first = events.iter().map(|e| e.time).min().unwrap();
    // A 2010s capture, not 1970 nor a thousand-fold error.
    assert!(
        (2010..2030).contains(&first.format("%Y").to_string().parse::<i32>().unwrap()),
        "{first}"
    );
    let (events, _) = events_of(&corpus().join("zeek-traces/ssh/sshguess.pcap"));
    let first = events.iter().map(|e| e.time).min().unwrap();
    assert!(
        (2000..2030).contains(&first.format("%Y").to_string().parse::<i32>().unwrap()),
        "{first}"
    );
}

/// xorshift64*: a fixed-seed generator, so a failure is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_packets_never_panic() {
    let mut frames: Vec<(LinkType, Vec<u8>)> = Vec::new();
    let mut files = Vec::new();
    pcaps(&corpus(), &mut files);
    for f in &files {
        let _ = crate::sources::pcap::read_file(f, |_, link, data| {
            if frames.len() < 4000 {
                frames.push((link, data.to_vec()));
            }
        });
    }
    frames.push((LinkType::Ethernet, packet::tests_support::syn()));
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut d = NetDecoder::new(
        "h",
        "fuzz",
        FlowConfig {
            max_flows: 500,
            ..FlowConfig::default()
        },
    );
    let mut out = Vec::new();
    let links = [
        LinkType::Ethernet,
        LinkType::Raw,
        LinkType::LinuxSll,
        LinkType::Null,
    ];
    for i in 0..20_000u64 {
        let (link, base) = &frames[rng.below(frames.len())];
        let mut f = base.clone();
        match rng.below(4) {
            0 => {
                for _ in 0..=rng.below(8) {
                    let at = rng.below(f.len());
                    if let Some(b) = f.get_mut(at) {
                        *b ^= 1 << rng.below(8);
                    }
                }
            }
            1 => f.truncate(rng.below(f.len() + 1)),
            2 => {
                for _ in 0..=rng.below(4) {
                    let at = rng.below(f.len());
                    if let Some(b) = f.get_mut(at) {
                        *b = rng.next() as u8;
                    }
                }
            }
            _ => {
                let n = rng.below(64);
                f.extend((0..n).map(|_| rng.next() as u8));
            }
        }
        let link = if rng.below(10) == 0 {
            links[rng.below(4)]
        } else {
            *link
        };
        d.decode(t(1_700_000_000 + (i / 100) as i64), link, &f, i, &mut out);
        // Parsers alone too, on the whole frame as payload.
        let _ = dns::parse(&f);
        let _ = http::parse(&f);
        let _ = tls::parse(&f);
        out.clear();
    }
    d.finish(&mut out);
    assert!(d.stats().packets == 20_000);
    assert!(d.flows() == 0);
}

/// An Ethernet/IPv4/TCP frame from 10.9.0.1:40000 to 10.9.0.2:`port`.
fn tcp_frame(port: u16, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
        .tcp(40000, port, seq, 65535);
    let b = if syn { b.syn() } else { b.ack(1).psh() };
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).unwrap();
    out
}

/// Decodes a SYN (sequence number 999) then `segments` (offset into the
/// stream, bytes) in the order given, then ends the capture.
fn stream_events(port: u16, segments: &[(u32, &[u8])]) -> Vec<Event> {
    let mut d = NetDecoder::new("h", "split", FlowConfig::default());
    let mut out = Vec::new();
    d.decode(
        t(1_700_000_000),
        LinkType::Ethernet,
        &tcp_frame(port, 999, true, &[]),
        0,
        &mut out,
    );
    for (i, (off, bytes)) in segments.iter().enumerate() {
        let frame = tcp_frame(port, 1000 + off, false, bytes);
        d.decode(
            t(1_700_000_001),
            LinkType::Ethernet,
            &frame,
            i as u64 + 1,
            &mut out,
        );
    }
    d.finish(&mut out);
    out
}

#[test]
fn a_client_hello_split_over_segments_gives_its_sni_in_any_order() {
    let hello = tls::tests::client_hello("split.example");
    let (a, b, c) = (&hello[..30], &hello[30..60], &hello[60..]);
    for order in [
        vec![(0, a), (30, b), (60, c)],
        vec![(60, c), (0, a), (30, b)],
        vec![(30, b), (60, c), (0, a)],
        // A retransmission of the first part, and an overlap that would
        // rewrite bytes already received: the first copy wins.
        vec![(0, a), (0, a), (20, &hello[20..45]), (30, b), (60, c)],
    ] {
        let events = stream_events(443, &order);
        let hellos = of_type(&events, "tls_client_hello");
        assert_eq!(hellos.len(), 1, "{order:?}: {hellos:#?}");
        assert_eq!(hellos[0].get("sni"), Some("split.example"));
        assert_eq!(hellos[0].get("dst_port"), Some("443"));
        assert!(hellos[0].packets.as_ref().is_some_and(|p| p.len() >= 3));
    }
    // One segment alone: judged at once, without reassembly.
    let events = stream_events(443, &[(0, &hello)]);
    let hellos = of_type(&events, "tls_client_hello");
    assert_eq!(hellos[0].get("sni"), Some("split.example"));
    assert!(hellos[0].origin.ends_with(":1.tls"), "{}", hellos[0].origin);
}

#[test]
fn an_http_request_line_split_over_segments_is_parsed_whole() {
    let head = b"GET /uploads/shell.php?cmd=cat+/etc/passwd HTTP/1.1\r\nHost: victim.example\r\nUser-Agent: curl/8\r\n\r\n";
    let events = stream_events(
        80,
        &[(0, &head[..18]), (18, &head[18..50]), (50, &head[50..])],
    );
    let http = of_type(&events, "http_request");
    assert_eq!(http.len(), 1, "{http:#?}");
    assert_eq!(
        http[0].get("uri"),
        Some("/uploads/shell.php?cmd=cat+/etc/passwd")
    );
    assert_eq!(http[0].get("http_host"), Some("victim.example"));
    assert_eq!(http[0].get("user_agent"), Some("curl/8"));
    // Named after the segment that completed it.
    assert!(http[0].origin.ends_with(":3.http"), "{}", http[0].origin);
    // A head that never completes is judged when its flow ends.
    let events = stream_events(80, &[(0, &head[..30])]);
    let http = of_type(&events, "http_request");
    assert_eq!(http.len(), 1, "{http:#?}");
    assert_eq!(http[0].get("uri"), Some("/uploads/shell.php?cmd=cat"));
    // A missing middle part: the first part is judged at flow end.
    let events = stream_events(80, &[(0, &head[..18]), (50, &head[50..])]);
    let http = of_type(&events, "http_request");
    assert_eq!(http.len(), 1, "{http:#?}");
    assert_eq!(http[0].get("uri"), Some("/uploads/shell"));
}

/// Events made in recycled buffers are the events made fresh: the same
/// fields, text and frames, whatever the previous event left behind.
#[test]
fn recycled_events_equal_fresh_ones() {
    let mut files = Vec::new();
    pcaps(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures/network"),
        &mut files,
    );
    pcaps(&corpus(), &mut files);
    let mut compared = 0;
    for path in files.iter().take(40) {
        let (fresh, _) = events_of(path);
        let mut d = NetDecoder::new("h", "pcap:test", FlowConfig::default());
        let (mut out, mut recycled) = (Vec::new(), Vec::new());
        let mut i = 0;
        let _ = crate::sources::pcap::read_file(path, |ts, link, data| {
            let time = DateTime::from_timestamp(ts.as_secs() as i64, ts.subsec_nanos()).unwrap();
            d.decode(time, link, data, i, &mut out);
            i += 1;
            for e in out.drain(..) {
                recycled.push(e.clone());
                d.recycle(e);
            }
        });
        d.finish(&mut out);
        recycled.append(&mut out);
        assert_eq!(recycled, fresh, "{}", path.display());
        compared += fresh.len();
    }
    assert!(compared > 100, "{compared} events compared");
}

/// `decode_at` (seconds and nanoseconds, as capture files give times)
/// makes exactly the events `decode` makes at the same times, on every
/// corpus capture, and on times past its fast range.
#[test]
fn decode_at_gives_the_events_of_decode() {
    let mut files = Vec::new();
    pcaps(&corpus(), &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let (want, want_stats) = events_of(f);
        let mut d = NetDecoder::new("h", "pcap:test", FlowConfig::default());
        let mut got = Vec::new();
        let mut i = 0;
        crate::sources::pcap::read_file(f, |ts, link, data| {
            d.decode_at(ts.as_secs(), ts.subsec_nanos(), link, data, i, &mut got);
            i += 1;
        })
        .unwrap();
        d.finish(&mut got);
        assert_eq!(got, want, "{}", f.display());
        assert_eq!(d.stats(), want_stats);
    }
    let frame = super::packet::tests_support::syn();
    for secs in [0u64, (1 << 33) - 1, 1 << 33, 1 << 40, u64::MAX] {
        let mut a = NetDecoder::new("h", "s", FlowConfig::default());
        let mut b = NetDecoder::new("h", "s", FlowConfig::default());
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        a.decode_at(secs, 999_999_999, LinkType::Ethernet, &frame, 0, &mut ea);
        let time = DateTime::from_timestamp(secs as i64, 999_999_999).unwrap_or_default();
        b.decode(time, LinkType::Ethernet, &frame, 0, &mut eb);
        a.finish(&mut ea);
        b.finish(&mut eb);
        assert_eq!(ea, eb, "{secs}");
    }
}
