//! DNS messages (RFC 1035): the first question and the address answers.
//!
//! Limits: a name is at most [`MAX_NAME`] bytes and [`MAX_LABELS`] labels,
//! at most [`MAX_POINTERS`] compression pointers are followed per name, at
//! most [`MAX_ANSWERS`] answer records are read. Bytes in labels outside
//! `[A-Za-z0-9_-]` are written `\DDD` (as `dig` does). Messages that break a
//! limit or end early are errors; oddities that still parse are flags.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest name, in presentation bytes.
pub const MAX_NAME: usize = 255;
/// Most labels in one name.
pub const MAX_LABELS: usize = 128;
/// Most compression pointers followed while reading one name.
pub const MAX_POINTERS: usize = 16;
/// Most answer records read.
pub const MAX_ANSWERS: usize = 16;

/// Anomaly: more than one question (only the first is read).
pub const MULTIPLE_QUESTIONS: u16 = 1;
/// Anomaly: the answers ended early or broke a limit.
pub const BAD_ANSWERS: u16 = 2;

/// The parts of a DNS message that rules use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DnsMessage {
    /// Transaction id.
    pub id: u16,
    /// QR bit: a response.
    pub response: bool,
    /// Response code (0 NOERROR, 3 NXDOMAIN, ...).
    pub rcode: u8,
    /// The first question's name, lower-cased, without the final dot.
    pub query: String,
    /// The first question's type (1 A, 16 TXT, 28 AAAA, ...).
    pub qtype: u16,
    /// Longest label of `query`, in bytes.
    pub longest_label: usize,
    /// Shannon entropy (bits per byte) of the longest label.
    pub entropy: f64,
    /// A, AAAA and CNAME answers in presentation form.
    pub answers: Vec<String>,
    /// Anomaly flags.
    pub anomalies: u16,
}

/// Why a payload is not a DNS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// Shorter than a header, or ends inside the question.
    #[error("DNS message truncated")]
    Truncated,
    /// No question.
    #[error("DNS message has no question")]
    NoQuestion,
    /// A name breaks a limit or points badly.
    #[error("bad DNS name")]
    BadName,
}

/// The name of a query type, as rules see it in `query_type`.
pub fn qtype_name(t: u16) -> std::borrow::Cow<'static, str> {
    let n = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        252 => "AXFR",
        255 => "ANY",
        other => return format!("TYPE{other}").into(),
    };
    n.into()
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// Reads a (possibly compressed) name at `pos`; returns it and the offset
/// just after it in the original position.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize, usize), DnsError> {
    let mut name = String::new();
    let mut labels = 0;
    let mut jumps = 0;
    let mut end = None;
    let mut longest = 0;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::Truncated)? as usize;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    let after = end.unwrap_or(pos + 1);
                    return Ok((name, after, longest));
                }
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(DnsError::Truncated)?;
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(DnsError::BadName);
                }
                longest = longest.max(len);
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
                        name.push(char::from(c.to_ascii_lowercase()));
                    } else {
                        name.push_str(&format!("\\{c:03}"));
                    }
                }
                if name.len() > MAX_NAME {
                    return Err(DnsError::BadName);
                }
                pos += 1 + len;
            }
            0xc0 => {
                let target = usize::from(u16_at(msg, pos).ok_or(DnsError::Truncated)? & 0x3fff);
                jumps += 1;
                if jumps > MAX_POINTERS || target >= msg.len() {
                    return Err(DnsError::BadName);
                }
                if end.is_none() {
                    end = Some(pos + 2);
                }
                pos = target;
            }
            _ => return Err(DnsError::BadName),
        }
    }
}

/// Shannon entropy in bits per byte.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Parses a DNS message (UDP payload, or a TCP payload without its 2-byte length).
pub fn parse(msg: &[u8]) -> Result<DnsMessage, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Truncated);
    }
    let id = u16_at(msg, 0).ok_or(DnsError::Truncated)?;
    let flags = u16_at(msg, 2).ok_or(DnsError::Truncated)?;
    let qd = u16_at(msg, 4).ok_or(DnsError::Truncated)?;
    let an = u16_at(msg, 6).ok_or(DnsError::Truncated)?;
    if qd == 0 {
        return Err(DnsError::NoQuestion);
    }
    let mut m = DnsMessage {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        ..DnsMessage::default()
    };
    if qd > 1 {
        m.anomalies |= MULTIPLE_QUESTIONS;
    }
    let (query, mut pos, _) = read_name(msg, 12)?;
    m.qtype = u16_at(msg, pos).ok_or(DnsError::Truncated)?;
    u16_at(msg, pos + 2).ok_or(DnsError::Truncated)?;
    pos += 4;
    // The longest label and its entropy, from the presentation form's labels.
    if let Some(label) = query.split('.').max_by_key(|l| l.len()) {
        m.longest_label = label.len();
        m.entropy = entropy(label.as_bytes());
    }
    m.query = query;
    // Skip further questions.
    for _ in 1..qd.min(8) {
        match read_name(msg, pos) {
            Ok((_, p, _)) => pos = p + 4,
            Err(_) => {
                m.anomalies |= BAD_ANSWERS;
                return Ok(m);
            }
        }
    }
    if !m.response {
        return Ok(m);
    }
    for _ in 0..usize::from(an).min(MAX_ANSWERS) {
        let Ok((_, p, _)) = read_name(msg, pos) else {
            m.anomalies |= BAD_ANSWERS;
            break;
        };
        let (Some(rtype), Some(rdlen)) = (u16_at(msg, p), u16_at(msg, p + 8)) else {
            m.anomalies |= BAD_ANSWERS;
            break;
        };
        let start = p + 10;
        let Some(rdata) = msg.get(start..start + usize::from(rdlen)) else {
            m.anomalies |= BAD_ANSWERS;
            break;
        };
        match (rtype, rdata.len()) {
            (1, 4) => m
                .answers
                .push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]).to_string()),
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rdata);
                m.answers.push(Ipv6Addr::from(a).to_string());
            }
            (5, _) => {
                if let Ok((cname, _, _)) = read_name(msg, start) {
                    m.answers.push(cname);
                }
            }
            _ => {}
        }
        pos = start + usize::from(rdlen);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for www.example.com A, as `dig` sends it (id 0x1a2b, RD).
    pub(crate) const QUERY: &[u8] = &[
        0x1a, 0x2b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, //
        3, b'w', b'w', b'w', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'c', b'o', b'm', 0,
        0, 1, 0, 1,
    ];

    #[test]
    fn query() {
        let m = parse(QUERY).unwrap();
        assert!(!m.response);
        assert_eq!(m.query, "www.example.com");
        assert_eq!(qtype_name(m.qtype), "A");
        assert_eq!(m.longest_label, 7);
    }

    #[test]
    fn response_with_compressed_cname_and_address() {
        let mut r = QUERY.to_vec();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 2; // two answers
        // CNAME: name ptr to 12, type 5, class 1, ttl, rdlen 6, "web" + ptr to example.com (16)
        r.extend_from_slice(&[
            0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'w', b'e', b'b', 0xc0, 16,
        ]);
        // A: name ptr, type 1, class 1, ttl, rdlen 4, 93.184.216.34
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
        let m = parse(&r).unwrap();
        assert!(m.response);
        assert_eq!(m.answers, ["web.example.com", "93.184.216.34"]);
        assert_eq!(m.anomalies, 0);
    }

    #[test]
    fn pointer_loops_and_truncation_are_errors() {
        let mut r = QUERY[..12].to_vec();
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // points at itself
        assert_eq!(parse(&r), Err(DnsError::BadName));
        for n in 0..QUERY.len() {
            assert!(parse(&QUERY[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn odd_bytes_are_escaped_and_entropy_is_measured() {
        let mut q = QUERY[..12].to_vec();
        q.extend_from_slice(&[3, b'a', b' ', 0xff, 0, 0, 16, 0, 1]);
        let m = parse(&q).unwrap();
        assert_eq!(m.query, "a\\032\\255");
        assert_eq!(qtype_name(m.qtype), "TXT");
        assert!((entropy(b"aaaa") - 0.0).abs() < 1e-9);
        assert!((entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
