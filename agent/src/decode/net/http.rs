//! HTTP/1.x requests: the request line, `Host` and `User-Agent`.
//!
//! A request head at the start of a TCP payload is read; at the start of a
//! stream, a head split over several segments is joined first (see
//! [`super::reassembly`]). Limits: the request line and each header line at most
//! [`MAX_LINE`] bytes, at most [`MAX_HEADERS`] header lines scanned.

use std::borrow::Cow;

/// Longest request or header line read, in bytes.
pub const MAX_LINE: usize = 8192;
/// Most header lines scanned for Host and User-Agent.
pub const MAX_HEADERS: usize = 64;

/// Anomaly: the head did not end inside this segment.
pub const INCOMPLETE_HEAD: u16 = 1;
/// Anomaly: bytes that are not visible ASCII in the request target.
pub const ODD_TARGET: u16 = 2;

/// Methods recognised at the start of a payload.
pub(crate) const METHODS: &[&str] = &[
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "PROPFIND",
];

/// One HTTP request head. Its texts borrow from the payload where it is
/// valid UTF-8 (a request per segment is read: no copies).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: Cow<'a, str>,
    /// The request target as sent.
    pub uri: Cow<'a, str>,
    /// `HTTP/1.1`, ...
    pub version: Cow<'a, str>,
    /// The `Host` header, lower-cased, port removed.
    pub host: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<Cow<'a, str>>,
    /// Anomaly flags.
    pub anomalies: u16,
}

/// Whether a payload starts like an HTTP request (cheap; checked per packet).
pub fn looks_like_request(p: &[u8]) -> bool {
    // Most payloads start with none of the methods' first letters.
    if !matches!(
        p.first(),
        Some(b'G' | b'P' | b'H' | b'D' | b'O' | b'C' | b'T')
    ) {
        return false;
    }
    METHODS
        .iter()
        .any(|m| p.len() > m.len() && p.starts_with(m.as_bytes()) && p[m.len()] == b' ')
}

fn line(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    // `memchr`: a head is scanned for every request, a few hundred bytes.
    match memchr::memchr(b'\n', bytes) {
        Some(i) => {
            let l = &bytes[..i];
            (l.strip_suffix(b"\r").unwrap_or(l), Some(&bytes[i + 1..]))
        }
        None => (bytes, None),
    }
}

/// Parses a request head at the start of `payload`.
pub fn parse(payload: &[u8]) -> Option<HttpRequest<'_>> {
    if !looks_like_request(payload) {
        return None;
    }
    let (first, mut rest) = line(payload);
    let first = &first[..first.len().min(MAX_LINE)];
    let mut parts = first.splitn(3, |&b| b == b' ');
    let method = parts.next()?;
    let uri = parts.next()?;
    let version = parts.next().unwrap_or(b"");
    if uri.is_empty() {
        return None;
    }
    let mut r = HttpRequest {
        method: lossy(method),
        uri: lossy(uri),
        version: lossy_trimmed(version),
        ..HttpRequest::default()
    };
    if !uri.iter().all(|b| b.is_ascii_graphic()) {
        r.anomalies |= ODD_TARGET;
    }
    let mut ended = false;
    for _ in 0..MAX_HEADERS {
        let Some(bytes) = rest else { break };
        let (l, next) = line(bytes);
        rest = next;
        if l.is_empty() {
            ended = next.is_some();
            break;
        }
        let l = &l[..l.len().min(MAX_LINE)];
        // Only `Host` and `User-Agent` are read: a line whose first letter
        // starts neither is not searched for its colon.
        if !matches!(l.first(), Some(b'h' | b'H' | b'u' | b'U')) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', l) else {
            continue;
        };
        let name = &l[..colon];
        // Only the two headers rules see are copied out.
        let value = || lossy_trimmed(&l[colon + 1..]);
        if name.eq_ignore_ascii_case(b"host") {
            // Cut first, lower-case the rest once: ASCII case moves no
            // byte and changes no `:`, `[` or `]`.
            let value = value();
            let host = match value.rsplit_once(':') {
                Some((h, port))
                    if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') =>
                {
                    h
                }
                _ => &value,
            };
            r.host = Some(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_ascii_lowercase(),
            );
        } else if name.eq_ignore_ascii_case(b"user-agent") {
            r.user_agent = Some(value());
        }
    }
    if !ended {
        r.anomalies |= INCOMPLETE_HEAD;
    }
    Some(r)
}

/// `String::from_utf8_lossy(bytes)`: borrowed when valid, checked with
/// `str::from_utf8`'s word-at-a-time validation first (the lossy reader
/// walks the bytes in chunks of its own, several times slower on the
/// valid text nearly every head is).
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `bytes` as text (invalid UTF-8 replaced), without surrounding
/// whitespace; borrowed when valid.
fn lossy_trimmed(bytes: &[u8]) -> Cow<'_, str> {
    match lossy(bytes) {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// Percent-decodes once (`%2e%2e%2f` → `../`, `+` stays); invalid escapes stay as written.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head() {
        let r = parse(b"GET /index.php?id=1%27%20OR%201=1 HTTP/1.1\r\nHost: Portal.Example.gov.vn:8080\r\nUser-Agent: sqlmap/1.7\r\nAccept: */*\r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.uri, "/index.php?id=1%27%20OR%201=1");
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.host.as_deref(), Some("portal.example.gov.vn"));
        assert_eq!(r.user_agent.as_deref(), Some("sqlmap/1.7"));
        assert_eq!(r.anomalies, 0);
        assert_eq!(percent_decode(&r.uri), "/index.php?id=1' OR 1=1");
    }

    /// The Host value cut, then lower-cased once, is the value lower-cased
    /// then cut (as it was read before).
    #[test]
    fn host_values_read_as_lower_case_then_cut() {
        fn before(v: &str) -> String {
            let host = v.trim().to_ascii_lowercase();
            let host = match host.rsplit_once(':') {
                Some((h, port))
                    if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') =>
                {
                    h.to_string()
                }
                _ => host,
            };
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        }
        for v in [
            "Portal.Example:8080",
            "EXAMPLE.ORG",
            "[2001:DB8::1]:443",
            "[2001:db8::1]",
            "2001:DB8::1",
            "a::",
            "a:",
            ":80",
            "X:8a",
            "  Spaced.Example:1  ",
            "\u{c9}cole.Example:99",
            "[[x]]",
            "",
        ] {
            let head = format!("GET / HTTP/1.1\r\nHost: {v}\r\n\r\n");
            let r = parse(head.as_bytes()).unwrap();
            assert_eq!(r.host.as_deref(), Some(before(v).as_str()), "{v:?}");
        }
    }

    /// `lossy` is `String::from_utf8_lossy` (text and borrowing), on
    /// valid text, broken sequences, overlong and surrogate encodings,
    /// truncated characters and random bytes.
    #[test]
    fn lossy_is_from_utf8_lossy() {
        let mut cases: Vec<Vec<u8>> = [
            &b""[..],
            b"GET",
            b"HTTP/1.1",
            "\u{c9}cole \u{1f600} \u{2028}".as_bytes(),
            b"\xff",
            b"a\xc3",
            b"\xc3\x28",
            b"\xe2\x82",
            b"\xed\xa0\x80",
            b"\xc0\xaf",
            b"\xf4\x90\x80\x80",
            b"ok\x80ok\xbf\xfe",
        ]
        .iter()
        .map(|b| b.to_vec())
        .collect();
        let mut seed = 0xfeed_beef_1234_5678u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            // Mostly ASCII, some high bytes.
            cases.push(
                (0..len)
                    .map(|i| {
                        let b = (seed >> (i % 8 * 8)) as u8 ^ i as u8;
                        if (seed >> (i % 60)) & 7 == 0 {
                            b | 0x80
                        } else {
                            b & 0x7f
                        }
                    })
                    .collect(),
            );
        }
        let mut invalid = 0;
        for b in &cases {
            let want = String::from_utf8_lossy(b);
            let got = lossy(b);
            assert_eq!(got, want, "{b:?}");
            assert_eq!(
                matches!(got, Cow::Borrowed(_)),
                matches!(want, Cow::Borrowed(_)),
                "{b:?}"
            );
            invalid += usize::from(matches!(want, Cow::Owned(_)));
        }
        assert!(invalid > 1000, "{invalid}");
    }

    #[test]
    fn every_method_passes_the_first_letter_test() {
        for m in METHODS {
            assert!(
                looks_like_request(format!("{m} / HTTP/1.1").as_bytes()),
                "{m}"
            );
        }
        assert!(!looks_like_request(b"get / HTTP/1.1"));
    }

    #[test]
    fn partial_head_and_non_http() {
        let r = parse(b"POST /shell.php HTTP/1.0\r\nHost: a").unwrap();
        assert_eq!(r.host.as_deref(), Some("a"));
        assert_ne!(r.anomalies & INCOMPLETE_HEAD, 0);
        assert!(parse(b"\x16\x03\x01\x00").is_none());
        assert!(parse(b"GET").is_none());
        assert!(parse(b"GET  HTTP/1.1").is_none());
        assert_eq!(percent_decode("%zz%2"), "%zz%2");
        assert_eq!(percent_decode("..%2F..%2fetc"), "../../etc");
    }
}
