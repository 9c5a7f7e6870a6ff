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
        let ip: IpAddr = match parse_dotted_quad(s) {
            Some(a) => a.into(),
            None => s.parse().ok()?,
        };
        if let Some(list) = self.ips.get(&ip) {
            return Some((list, ip.to_string()));
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
                (list.as_str(), format!("{addr}/{prefix}"))
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
                let mut e = event.clone();
                e.set("ioc_list", list.to_string());
                e.set("ioc_field", *field);
                e.set("ioc_value", indicator);
                return Some(e);
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
