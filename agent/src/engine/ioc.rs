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
use crate::event::{Event, FieldValue};

/// Fields looked up, in order.
pub const IOC_FIELDS: &[&str] = &["dst_ip", "src_ip", "query", "sni", "http_host"];

/// Most indicators accepted over all lists.
pub const MAX_INDICATORS: usize = 1_000_000;

/// Indicators by kind, each with the name of its list.
#[derive(Debug, Clone, Default)]
pub struct IocSet {
    /// IPv4 and IPv6 addresses (as integers: one hash of an integer per
    /// lookup) → (list, the address's text as `ioc_value` gives it).
    v4: HashMap<u32, (String, String), Hasher>,
    v6: HashMap<u128, (String, String), Hasher>,
    /// (network address bits, prefix length, is IPv4, list, the block's
    /// text as `ioc_value` gives it)
    nets: Vec<(u128, u8, bool, String, String)>,
    domains: HashMap<String, String, Hasher>,
    /// Fewest and most dots of a listed domain: only a name's suffixes
    /// with a dot count in between can be one.
    domain_dots: (usize, usize),
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

/// The address of a block's bits.
fn net_addr(net: u128, v4: bool) -> IpAddr {
    if v4 {
        std::net::Ipv4Addr::from(net as u32).into()
    } else {
        std::net::Ipv6Addr::from(net).into()
    }
}

/// Dots in a name: one fewer than its labels.
fn dots(d: &str) -> usize {
    memchr::memchr_iter(b'.', d.as_bytes()).count()
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
    to.addrs.clone_from(&from.addrs);
}

/// The place of `name` in [`IOC_FIELDS`]: asked of every field of every
/// event, so the length and first byte pick the one name it can be,
/// compared only then (most fields are none of them).
fn ioc_field_index(name: &str) -> Option<usize> {
    let i = match (name.len(), name.as_bytes().first()) {
        (6, Some(b'd')) => 0,
        (6, Some(b's')) => 1,
        (5, Some(b'q')) => 2,
        (3, Some(b's')) => 3,
        (9, Some(b'h')) => 4,
        _ => return None,
    };
    (IOC_FIELDS[i] == name).then_some(i)
}

impl IocSet {
    /// Number of indicators.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len() + self.nets.len() + self.domains.len()
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
                let net = mask(v, prefix, v4);
                let text = ip_text(net_addr(net, v4), Some(prefix));
                self.nets.push((net, prefix, v4, list.into(), text));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                let entry = (list.into(), ip_text(ip, None));
                match ip {
                    IpAddr::V4(a) => self.v4.insert(u32::from(a), entry),
                    IpAddr::V6(a) => self.v6.insert(u128::from(a), entry),
                };
            } else {
                let d = entry.trim_end_matches('.').to_ascii_lowercase();
                if !valid_domain(&d) {
                    diags.push(bad("is neither an IP address, a CIDR block nor a domain"));
                    continue;
                }
                let dots = dots(&d);
                self.domain_dots = if self.domains.is_empty() {
                    (dots, dots)
                } else {
                    (self.domain_dots.0.min(dots), self.domain_dots.1.max(dots))
                };
                self.domains.insert(d, list.into());
            }
        }
    }

    /// The list and indicator text of `ip`, if it is listed.
    fn match_addr(&self, ip: IpAddr) -> Option<(&str, &str)> {
        let listed = match ip {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)),
        };
        if let Some((list, text)) = listed {
            return Some((list, text));
        }
        let (v, v4) = bits(ip);
        self.nets
            .iter()
            .find(|(net, prefix, is4, _, _)| *is4 == v4 && mask(v, *prefix, v4) == *net)
            .map(|(_, _, _, list, text)| (list.as_str(), text.as_str()))
    }

    /// [`IocSet::match_addr`] of the address `s` is the text of, if any.
    fn match_ip(&self, s: &str) -> Option<(&str, &str)> {
        let fast = match parse_dotted_quad(s) {
            Some(a) => Some(IpAddr::V4(a)),
            None => parse_ipv6_groups(s).map(IpAddr::V6),
        };
        let ip: IpAddr = match fast {
            Some(a) => a,
            None => s.parse().ok()?,
        };
        self.match_addr(ip)
    }

    /// The list and the listed domain that `s` is or is a subdomain of
    /// (the longest listed suffix): suffixes are tried from the whole name
    /// down, skipping those with more or fewer dots than any listed
    /// domain has (they cannot equal one).
    fn match_domain<'a>(&'a self, s: &'a str) -> Option<(&'a str, &'a str)> {
        let mut d = s.trim_end_matches('.');
        let (fewest, most) = self.domain_dots;
        let mut n = dots(d);
        while n > most {
            d = d.split_once('.')?.1;
            n -= 1;
        }
        while n >= fewest {
            if let Some((key, list)) = self.domains.get_key_value(d) {
                return Some((list, key));
            }
            d = d.split_once('.')?.1;
            n = n.checked_sub(1)?;
        }
        None
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
        out.set("ioc_field", FieldValue::fixed(field));
        out.set("ioc_value", indicator.to_string());
        true
    }

    /// The first listed field of the event: (list, field, indicator).
    fn hit<'a>(&'a self, event: &'a Event) -> Option<(&'a str, &'static str, &'a str)> {
        let (has_ips, has_domains) = (
            !self.v4.is_empty() || !self.v6.is_empty() || !self.nets.is_empty(),
            !self.domains.is_empty(),
        );
        if !has_ips && !has_domains {
            return None;
        }
        // One pass over the event's fields finds every looked-up one (names
        // are unique); they are then tried in `IOC_FIELDS` order.
        let mut values: [Option<&FieldValue>; IOC_FIELDS.len()] = [None; IOC_FIELDS.len()];
        let mut any = false;
        for (name, value) in &event.fields {
            if let Some(i) = ioc_field_index(name)
                && values[i].is_none()
            {
                values[i] = Some(value);
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
                // The address the decoder wrote, else the text read back.
                match event.addr_of(value) {
                    Some(ip) => self.match_addr(ip),
                    None => self.match_ip(event.text(value)),
                }
            } else {
                if !has_domains {
                    continue;
                }
                self.match_domain(event.text(value))
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

    /// The straightforward lookup `hit` must agree with, from the list's
    /// text alone: each field in `IOC_FIELDS` order read from its text
    /// with the standard parser, addresses compared with every listed
    /// address and block (`ipnet`), every suffix of a name compared with
    /// every listed domain; the first listed entry that matches wins.
    fn hit_by_text(list: &str, e: &Event) -> Option<(String, &'static str, String)> {
        let entries: Vec<&str> = list
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        for field in IOC_FIELDS {
            let Some(value) = e.get(field) else { continue };
            let found = if field.ends_with("_ip") {
                value.parse::<IpAddr>().ok().and_then(|ip| {
                    if let Some(a) = entries.iter().find(|l| l.parse::<IpAddr>() == Ok(ip)) {
                        return Some(a.parse::<IpAddr>().unwrap().to_string());
                    }
                    entries
                        .iter()
                        .filter_map(|l| l.parse::<ipnet::IpNet>().ok())
                        .find(|net| net.contains(&ip))
                        .map(|net| net.trunc().to_string())
                })
            } else {
                let domains: Vec<String> = entries
                    .iter()
                    .filter(|l| l.parse::<IpAddr>().is_err() && !l.contains('/'))
                    .map(|l| l.trim_end_matches('.').to_ascii_lowercase())
                    .collect();
                let mut d = value.trim_end_matches('.');
                loop {
                    if domains.iter().any(|x| x == d) {
                        break Some(d.to_string());
                    }
                    match d.split_once('.') {
                        Some((_, rest)) => d = rest,
                        None => break None,
                    }
                }
            };
            if let Some(indicator) = found {
                return Some(("c2".to_string(), field, indicator));
            }
        }
        None
    }

    /// Indicators found through the decoder's address hints and the dot
    /// counts are those the text gives, on network events (hinted
    /// addresses), the same events unhinted, replaced addresses, and
    /// names of every shape (empty labels, trailing dots, case, suffixes
    /// longer and shorter than any listed domain).
    #[test]
    fn hints_and_dot_counts_find_what_the_text_gives() {
        let list = "203.0.113.66\n198.51.100.0/28\n10.0.0.0/8\n2001:db8:c2::/48\n2001:db8::5\n\
             ::ffff:192.0.2.1\nevil-c2.example\nx.y.deep.bad.example\nbad.example\nc2.test\n";
        let (s, d) = set(list);
        assert!(d.is_empty(), "{d:?}");
        let mut seed = 0x5eed_1234_abcd_0042u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let labels = [
            "evil-c2", "example", "bad", "deep", "x", "y", "c2", "test", "", "EXAMPLE", "a",
        ];
        let (mut hits, mut hinted) = (0, 0);
        for i in 0..20_000 {
            let r = next();
            let ip = |r: u64| -> IpAddr {
                match r % 6 {
                    0 => std::net::Ipv4Addr::from(0xcb00_7100 | ((r >> 8) as u32 % 80)).into(),
                    1 => std::net::Ipv4Addr::from(0xc633_6400 | ((r >> 8) as u32 % 32)).into(),
                    2 => std::net::Ipv4Addr::from((r >> 8) as u32).into(),
                    3 => std::net::Ipv6Addr::from(
                        0x2001_0db8_00c2_u128 << 80 | u128::from(r >> 8 & 0xff),
                    )
                    .into(),
                    4 => std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(r >> 8 & 7))
                        .into(),
                    _ => std::net::Ipv4Addr::from(0xc000_0200 | ((r >> 8) as u32 % 4))
                        .to_ipv6_mapped()
                        .into(),
                }
            };
            let (src, dst) = (ip(r), ip(r >> 20));
            let name: String = (0..next() % 7)
                .map(|_| labels[(next() % labels.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(".")
                + ["", ".", ".."][(next() % 3) as usize];
            // A network event as the decoder writes one: addresses hinted.
            let mut e = Event::new(Utc::now(), "h", format!("o{i}"));
            e.raw.push_str("x ");
            let src_v = e.append_raw(|raw| crate::decode::net::text::push_ip(raw, src));
            e.raw.push_str(" -> ");
            let dst_v = e.append_raw(|raw| crate::decode::net::text::push_ip(raw, dst));
            e.note_addr(&src_v, src);
            e.note_addr(&dst_v, dst);
            e.push_pair(("src_ip".into(), src_v));
            e.push_pair(("dst_ip".into(), dst_v));
            match next() % 3 {
                0 => e.push("query", name.clone()),
                1 => e.push("sni", name.clone()),
                _ => {}
            }
            if next() % 4 == 0 {
                // A replaced address: its hint no longer applies.
                e.set("dst_ip", ip(next()).to_string());
            }
            let want = hit_by_text(list, &e);
            let got = s.hit(&e).map(|(l, f, v)| (l.to_string(), f, v.to_string()));
            assert_eq!(got, want, "{:?}", e.fields);
            let mut unhinted = e.clone();
            unhinted.addrs = Default::default();
            let got = s
                .hit(&unhinted)
                .map(|(l, f, v)| (l.to_string(), f, v.to_string()));
            assert_eq!(got, want, "{:?}", e.fields);
            hits += usize::from(want.is_some());
            hinted += usize::from(e.addr_of(&e.fields[1].1).is_some());
        }
        assert!(hits > 5_000 && hits < 19_000, "{hits}");
        assert!(hinted > 10_000, "{hinted}");
    }

    #[test]
    fn field_indexes_follow_the_list() {
        for (i, f) in IOC_FIELDS.iter().enumerate() {
            assert_eq!(ioc_field_index(f), Some(i));
        }
        assert_eq!(ioc_field_index("user"), None);
        assert_eq!(ioc_field_index("src_port"), None);
        // Names of the same length and first letter, and every field a
        // decoder writes, are found only when they are one of the list.
        let odd = [
            "dst_io",
            "src_pi",
            "sni_ip",
            "qeury",
            "snI",
            "sna",
            "http_hosT",
            "http_port",
            "",
            "d",
        ];
        for name in odd
            .iter()
            .copied()
            .chain(crate::decode::KNOWN_FIELDS.iter().map(|(name, _)| *name))
        {
            assert_eq!(
                ioc_field_index(name),
                IOC_FIELDS.iter().position(|f| *f == name),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_lines_are_diagnostics_with_lines() {
        let (_, d) = set("1.2.3.4\n1.2.3.4/33\nnot a domain\n10.0.0.0/x\n");
        let lines: Vec<_> = d.iter().map(|d| d.line).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(4)]);
        assert!(d.iter().all(|d| d.code == "bad-ioc"));
    }
}
