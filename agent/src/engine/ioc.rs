//! Indicator lists (IOCs) from the rule pack, matched against event fields.
//!
//! A list is a text file `ioc/<name>.txt` in the pack root: one indicator
//! per line — an IPv4/IPv6 address, a CIDR block (`198.51.100.0/24`) or a
//! domain (which also matches its subdomains) — with `#` comments and blank
//! lines ignored. Before an event is judged, the values of [`IOC_FIELDS`]
//! are looked up; on the first hit the event gains `ioc_list` (the list's
//! name), `ioc_field` (which field matched) and `ioc_value` (the
//! indicator), which rules select on. The engine learns no source from
//! this: it reads fields, as rules do.

use std::collections::HashMap;
use std::net::IpAddr;

use super::pack::Diagnostic;
use crate::event::Event;

/// Fields looked up, in order.
pub const IOC_FIELDS: &[&str] = &["dst_ip", "src_ip", "query", "sni", "http_host"];

/// Most indicators accepted over all lists.
pub const MAX_INDICATORS: usize = 1_000_000;

/// Indicators by kind, each with the name of its list.
#[derive(Debug, Clone, Default)]
pub struct IocSet {
    ips: HashMap<IpAddr, String, Hasher>,
    /// (network address bits, prefix length, is IPv4, list)
    nets: Vec<(u128, u8, bool, String)>,
    domains: HashMap<String, String, Hasher>,
}

/// Every network event is looked up (each domain once per label suffix):
/// a keyed fast hash rather than SipHash, as the flow table uses.
type Hasher = foldhash::fast::RandomState;

fn bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), true),
        IpAddr::V6(a) => (u128::from(a), false),
    }
}

fn mask(v: u128, prefix: u8, v4: bool) -> u128 {
    let width = if v4 { 32 } else { 128 };
    if prefix == 0 {
        0
    } else {
        v >> (width - u32::from(prefix)) << (width - u32::from(prefix))
    }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `s` as an IPv4 address in the strict dotted-quad form the standard
/// parser accepts (four decimal parts of at most 255, no leading zeros),
/// read without its general machinery (every network event's addresses
/// are looked up); `None` for anything else, which the standard parser
/// then judges.
fn parse_dotted_quad(s: &str) -> Option<std::net::Ipv4Addr> {
    let b = s.as_bytes();
    if b.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut part = 0;
    let (mut value, mut digits) = (0u32, 0u32);
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                // A leading zero is allowed only as the whole part.
                if digits == 1 && value == 0 {
                    return None;
                }
                value = value * 10 + u32::from(c - b'0');
                digits += 1;
                if value > 255 {
                    return None;
                }
            }
            b'.' if digits > 0 && part < 3 && i + 1 < b.len() => {
                octets[part] = value as u8;
                part += 1;
                (value, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(std::net::Ipv4Addr::from(octets))
}

/// `s` as an IPv6 address when it is hex groups only (at most one `::`,
/// no embedded IPv4 part, as network events write addresses), read
/// without the standard parser's general machinery; `None` for anything
/// else, which the standard parser then judges. Gives only what the
/// standard parser gives (tested against it).
fn parse_ipv6_groups(s: &str) -> Option<std::net::Ipv6Addr> {
    let b = s.as_bytes();
    if b.len() < 2 || b.len() > 39 {
        return None;
    }
    // Groups before and after the `::`, if any.
    let (mut head, mut tail) = ([0u16; 8], [0u16; 8]);
    let (mut nh, mut nt) = (0, 0);
    let mut gap = false;
    let mut i = 0;
    if b[0] == b':' {
        if b[1] != b':' {
            return None;
        }
        gap = true;
        i = 2;
        if i == b.len() {
            return Some(std::net::Ipv6Addr::UNSPECIFIED);
        }
    }
    loop {
        let start = i;
        let mut v = 0u16;
        while i < b.len() && i - start < 4 {
            let d = match b[i] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            v = v << 4 | u16::from(d);
            i += 1;
        }
        if i == start {
            return None;
        }
        if gap {
            if nh + nt >= 7 {
                return None;
            }
            tail[nt] = v;
            nt += 1;
        } else {
            if nh >= 8 {
                return None;
            }
            head[nh] = v;
            nh += 1;
        }
        if i == b.len() {
            break;
        }
        if b[i] != b':' {
            return None;
        }
        i += 1;
        if i == b.len() {
            return None;
        }
        if b[i] == b':' {
            if gap {
                return None;
            }
            gap = true;
            i += 1;
            if i == b.len() {
                break;
            }
        }
    }
    if gap {
        // `::` stands for at least one zero group.
        if nh + nt > 7 {
            return None;
        }
        head[8 - nt..].copy_from_slice(&tail[..nt]);
    } else if nh != 8 {
        return None;
    }
    Some(std::net::Ipv6Addr::from(head))
}

/// An address's text as `Display` writes it.
fn ip_text(ip: IpAddr, cidr_prefix: Option<u8>) -> String {
    let mut s = String::with_capacity(48);
    crate::decode::net::text::push_ip(&mut s, ip);
    if let Some(prefix) = cidr_prefix {
        s.push('/');
        crate::decode::net::text::push_u64(&mut s, u64::from(prefix));
    }
    s
}

/// Copies `from` into `to`, reusing `to`'s buffers.
fn copy_event(from: &Event, to: &mut Event) {
    to.kind = from.kind;
    to.time = from.time;
    to.host.clone_from(&from.host);
    to.origin.clone_from(&from.origin);
    to.raw.clone_from(&from.raw);
    to.fields.clone_from(&from.fields);
    to.packets.clone_from(&from.packets);
}

/// The place of `name` in [`IOC_FIELDS`]: asked of every field of every
/// event, so a `match` (by length, then bytes) rather than a search.
fn ioc_field_index(name: &str) -> Option<usize> {
    let i = match name {
        "dst_ip" => 0,
        "src_ip" => 1,
        "query" => 2,
        "sni" => 3,
        "http_host" => 4,
        _ => return None,
    };
    debug_assert_eq!(IOC_FIELDS[i], name);
    Some(i)
}

impl IocSet {
    /// Number of indicators.
    pub fn len(&self) -> usize {
        self.ips.len() + self.nets.len() + self.domains.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the indicators of one list file; problems become diagnostics.
    pub fn add_list(&mut self, file: &str, list: &str, text: &str, diags: &mut Vec<Diagnostic>) {
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            if self.len() >= MAX_INDICATORS {
                diags.push(Diagnostic {
                    file: file.into(),
                    rule: None,
                    line: Some(i as u32 + 1),
                    code: "ioc-limit",
                    message: format!("more than {MAX_INDICATORS} indicators in the pack"),
                });
                return;
            }
            let bad = |why: &str| Diagnostic {
                file: file.into(),
                rule: None,
                line: Some(i as u32 + 1),
                code: "bad-ioc",
                message: format!("'{entry}' {why}"),
            };
            if let Some((addr, prefix)) = entry.split_once('/') {
                let (Ok(addr), Ok(prefix)) = (addr.parse::<IpAddr>(), prefix.parse::<u8>()) else {
                    diags.push(bad("is not a CIDR block (address/prefix)"));
                    continue;
                };
                let (v, v4) = bits(addr);
                if prefix > if v4 { 32 } else { 128 } {
                    diags.push(bad("has a prefix longer than the address"));
                    continue;
                }
                self.nets
                    .push((mask(v, prefix, v4), prefix, v4, list.into()));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                self.ips.insert(ip, list.into());
            } else {
                let d = entry.trim_end_matches('.').to_ascii_lowercase();
                if !valid_domain(&d) {
                    diags.push(bad("is neither an IP address, a CIDR block nor a domain"));
                    continue;
                }
                self.domains.insert(d, list.into());
            }
        }
    }

    fn match_ip(&self, s: &str) -> Option<(&str, String)> {
        let fast = match parse_dotted_quad(s) {
            Some(a) => Some(IpAddr::V4(a)),
            None => parse_ipv6_groups(s).map(IpAddr::V6),
        };
        let ip: IpAddr = match fast {
            Some(a) => a,
            None => s.parse().ok()?,
        };
        if let Some(list) = self.ips.get(&ip) {
            return Some((list, ip_text(ip, None)));
        }
        let (v, v4) = bits(ip);
        self.nets
            .iter()
            .find(|(net, prefix, is4, _)| *is4 == v4 && mask(v, *prefix, v4) == *net)
            .map(|(net, prefix, _, list)| {
                let addr: IpAddr = if v4 {
                    std::net::Ipv4Addr::from(*net as u32).into()
                } else {
                    std::net::Ipv6Addr::from(*net).into()
                };
                (list.as_str(), ip_text(addr, Some(*prefix)))
            })
    }

    fn match_domain(&self, s: &str) -> Option<(&str, String)> {
        let mut d = s.trim_end_matches('.');
        loop {
            if let Some(list) = self.domains.get(d) {
                return Some((list, d.to_string()));
            }
            d = d.split_once('.')?.1;
        }
    }

    /// The event with `ioc_*` fields added, when one of its fields is listed.
    pub fn enrich(&self, event: &Event) -> Option<Event> {
        let mut e = Event::new(event.time, String::new(), String::new());
        self.enrich_into(event, &mut e).then_some(e)
    }

    /// [`IocSet::enrich`] into `out`: when one of the event's fields is
    /// listed, `out` becomes a copy of the event with the `ioc_*` fields
    /// added (its buffers reused: a detector keeps one `out` for every
    /// event) and the answer is true; otherwise `out` is left as it was.
    pub fn enrich_into(&self, event: &Event, out: &mut Event) -> bool {
        let Some((list, field, indicator)) = self.hit(event) else {
            return false;
        };
        copy_event(event, out);
        out.set("ioc_list", list.to_string());
        out.set("ioc_field", field);
        out.set("ioc_value", indicator);
        true
    }

    /// The first listed field of the event: (list, field, indicator).
    fn hit(&self, event: &Event) -> Option<(&str, &'static str, String)> {
        let (has_ips, has_domains) = (
            !self.ips.is_empty() || !self.nets.is_empty(),
            !self.domains.is_empty(),
        );
        if !has_ips && !has_domains {
            return None;
        }
        // One pass over the event's fields finds every looked-up one (names
        // are unique); they are then tried in `IOC_FIELDS` order.
        let mut values: [Option<&str>; IOC_FIELDS.len()] = [None; IOC_FIELDS.len()];
        let mut any = false;
        for (name, value) in &event.fields {
            if let Some(i) = ioc_field_index(name)
                && values[i].is_none()
            {
                values[i] = Some(event.text(value));
                any = true;
            }
        }
        if !any {
            return None;
        }
        for (field, value) in IOC_FIELDS.iter().zip(values) {
            let Some(value) = value else {
                continue;
            };
            let hit = if field.ends_with("_ip") {
                if !has_ips {
                    continue;
                }
                self.match_ip(value)
            } else {
                if !has_domains {
                    continue;
                }
                self.match_domain(value)
            };
            if let Some((list, indicator)) = hit {
                return Some((list, field, indicator));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn set(text: &str) -> (IocSet, Vec<Diagnostic>) {
        let mut s = IocSet::default();
        let mut d = Vec::new();
        s.add_list("c2.txt", "c2", text, &mut d);
        (s, d)
    }

    fn ev(field: &'static str, value: &str) -> Event {
        let mut e = Event::new(Utc::now(), "h", "o");
        e.set(field, value);
        e
    }

    #[test]
    fn addresses_blocks_and_domains() {
        let (s, d) = set(
            "# C2\n203.0.113.66\n198.51.100.0/24 # a block\n2001:db8:bad::/48\nEvil-C2.Example.\n\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.len(), 4);
        let e = s.enrich(&ev("dst_ip", "203.0.113.66")).unwrap();
        assert_eq!(e.get("ioc_list"), Some("c2"));
        assert_eq!(e.get("ioc_field"), Some("dst_ip"));
        let e = s.enrich(&ev("src_ip", "198.51.100.200")).unwrap();
        assert_eq!(e.get("ioc_value"), Some("198.51.100.0/24"));
        assert!(s.enrich(&ev("dst_ip", "2001:db8:bad:1::5")).is_some());
        assert!(s.enrich(&ev("dst_ip", "198.51.101.1")).is_none());
        let e = s.enrich(&ev("query", "a.b.evil-c2.example")).unwrap();
        assert_eq!(e.get("ioc_value"), Some("evil-c2.example"));
        assert!(s.enrich(&ev("sni", "notevil-c2.example")).is_none());
        assert!(s.enrich(&ev("user", "evil-c2.example")).is_none());
    }

    #[test]
    fn dotted_quads_read_as_the_standard_parser_reads_them() {
        for s in [
            "0.0.0.0",
            "1.2.3.4",
            "255.255.255.255",
            "10.0.0.1",
            "192.0.2.10",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4 ",
            "",
            "a.b.c.d",
            "1.2.3.0400",
            "00.1.1.1",
            "1.2.3.-4",
            "::1",
            "2001:db8::1",
            "1234.1.1.1",
            "1.2.3.255",
            "1.2.3.256",
        ] {
            let want = s.parse::<std::net::Ipv4Addr>().ok();
            assert_eq!(parse_dotted_quad(s), want, "{s:?}");
        }
    }

    /// The hand-read IPv6 groups give only what the standard parser
    /// gives, and read every address `Display` writes without a dotted
    /// quad.
    #[test]
    fn ipv6_groups_read_as_the_standard_parser_reads_them() {
        let mut cases: Vec<String> = [
            "::",
            "::1",
            "1::",
            "1::2",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1:2:3:4::5:6:7:8",
            "1::2::3",
            ":1::2",
            "1::2:",
            "1:::2",
            "12345::",
            "abcd:EF01::",
            "2001:db8::5",
            "2001:0db8:0000:0000:0000:0000:0000:0005",
            "g::1",
            "1:2",
            ":",
            "",
            "::::",
            "fe80::1%eth0",
            " ::1",
            "1::2 ",
            "0:0:0:0:0:0:0:0",
            "::0:0",
            "1:2:3:4:5:6::7",
            "1:2:3:4:5:6:7::8",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "00000::",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..30_000 {
            // Random texts over the characters an address uses.
            let r = next();
            let len = (r % 24) as usize;
            let s: String = (0..len)
                .map(|i| b"0:1:f:A:::0.9g"[((r >> (i % 16 * 4)) as usize ^ i) % 14] as char)
                .collect();
            cases.push(s);
            // And the text of random addresses, mostly zero groups.
            let mut g = [0u16; 8];
            for (i, x) in g.iter_mut().enumerate() {
                let bits = (next() >> (i * 3)) as u16;
                *x = if bits.is_multiple_of(3) { bits } else { 0 };
            }
            let a = std::net::Ipv6Addr::from(g);
            cases.push(a.to_string());
            cases.push(format!(
                "{:x}:{:X}:{}:{}:{}:{}:{}:{}",
                g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
            ));
        }
        let mut read = 0;
        for s in &cases {
            let want = s.parse::<std::net::Ipv6Addr>().ok();
            let got = parse_ipv6_groups(s);
            if got.is_some() {
                read += 1;
                assert_eq!(got, want, "{s:?}");
            } else if want.is_some() {
                // Only texts with a dotted quad are left to the parser.
                assert!(s.contains('.'), "{s:?} not read");
            }
        }
        assert!(read > 30_000, "{read}");
    }

    #[test]
    fn enrich_into_reuses_one_event() {
        let (s, _) = set("203.0.113.66\n2001:db8:c2::/48\nevil.example\n");
        let mut out = Event::new(Utc::now(), "", "");
        assert!(s.enrich_into(&ev("dst_ip", "203.0.113.66"), &mut out));
        assert_eq!(out.get("ioc_value"), Some("203.0.113.66"));
        let e = ev("src_ip", "2001:db8:c2:0:1::7");
        assert!(s.enrich_into(&e, &mut out));
        assert_eq!(out.get("ioc_value"), Some("2001:db8:c2::/48"));
        assert_eq!(out.get("dst_ip"), None);
        assert_eq!(out.get("src_ip"), Some("2001:db8:c2:0:1::7"));
        assert_eq!(out, s.enrich(&e).unwrap());
        assert!(!s.enrich_into(&ev("query", "good.example"), &mut out));
    }

    #[test]
    fn field_indexes_follow_the_list() {
        for (i, f) in IOC_FIELDS.iter().enumerate() {
            assert_eq!(ioc_field_index(f), Some(i));
        }
        assert_eq!(ioc_field_index("user"), None);
        assert_eq!(ioc_field_index("src_port"), None);
    }

    #[test]
    fn bad_lines_are_diagnostics_with_lines() {
        let (_, d) = set("1.2.3.4\n1.2.3.4/33\nnot a domain\n10.0.0.0/x\n");
        let lines: Vec<_> = d.iter().map(|d| d.line).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(4)]);
        assert!(d.iter().all(|d| d.code == "bad-ioc"));
    }
}
