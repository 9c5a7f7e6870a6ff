//! nginx and Apache access logs: common, combined, and vhost-prefixed
//! combined, into Sigma's `webserver` taxonomy (`c-ip`, `cs-method`,
//! `c-uri`, `cs-uri-stem`, `cs-uri-query`, `sc-status`, `c-useragent`, ...).

use chrono::{DateTime, Utc};

use crate::event::Event;

/// Parses access-log lines: `[vhost ]ip ident user [time] "request" status
/// bytes[ "referer" "user-agent"]`, anything after that ignored. A single
/// pass over the bytes, no backtracking: this is the hottest decoder.
#[derive(Debug, Clone, Default)]
pub struct AccessParser;

/// The fields of one line, borrowed from it.
struct Parts<'a> {
    vhost: Option<&'a str>,
    ip: &'a str,
    user: &'a str,
    time: &'a str,
    request: &'a str,
    status: &'a str,
    bytes: &'a str,
    referer: Option<&'a str>,
    ua: Option<&'a str>,
}

/// A `"..."` field at the start of `s` (backslash escapes honoured):
/// returns its inside and the rest after the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    while let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i.min(bytes.len())..]) {
        let j = i + at;
        if bytes[j] == b'"' {
            return Some((&body[..j], &body[j + 1..]));
        }
        i = j + 2;
    }
    None
}

/// `" ["`, the space before the time: where the head of a line ends.
/// Built once (building a searcher costs more than most searches).
static OPEN_BRACKET: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b" ["));

/// `s` split around its first `b` (an ASCII byte), by byte search (what
/// `split_once` gives, without decoding characters).
fn split_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let at = memchr::memchr(b, s.as_bytes())?;
    Some((&s[..at], &s[at + 1..]))
}

/// `s` split around its last `b` (an ASCII byte): `rsplit_once`.
fn rsplit_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let at = memchr::memrchr(b, s.as_bytes())?;
    Some((&s[..at], &s[at + 1..]))
}

/// `s` up to its first `b`, and what follows it when there is one (the
/// first two items of `splitn(_, b)`).
fn first_field(s: &str, b: u8) -> (&str, Option<&str>) {
    match split_byte(s, b) {
        Some((a, rest)) => (a, Some(rest)),
        None => (s, None),
    }
}

fn split_parts(line: &str) -> Option<Parts<'_>> {
    let open = OPEN_BRACKET.find(line.as_bytes())?;
    let head = &line[..open];
    let (a, rest) = split_byte(head, b' ')?;
    let (b, rest) = split_byte(rest, b' ')?;
    let (vhost, ip, _ident, user) = match split_byte(rest, b' ') {
        None => (None, a, b, rest),
        Some((c, d)) if !d.as_bytes().contains(&b' ') => (Some(a), b, c, d),
        Some(_) => return None,
    };
    if ip.is_empty() {
        return None;
    }
    let rest = &line[open + 2..];
    let close = memchr::memchr(b']', rest.as_bytes())?;
    let time = &rest[..close];
    let rest = rest[close + 1..].strip_prefix(' ')?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = first_field(rest, b' ');
    let (bytes, tail) = first_field(rest?, b' ');
    let valid = |s: &str, max: usize| {
        s == "-" || (!s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
    };
    if !valid(status, 3) || !valid(bytes, 20) {
        return None;
    }
    let (referer, ua) = match tail.and_then(quoted) {
        Some((referer, rest)) => match rest.strip_prefix(' ').and_then(quoted) {
            Some((ua, _)) => (Some(referer), Some(ua)),
            None => (None, None),
        },
        None => (None, None),
    };
    Some(Parts {
        vhost,
        ip,
        user,
        time,
        request,
        status,
        bytes,
        referer,
        ua,
    })
}

/// `22/Nov/2026:10:15:32 +0700`, parsed by position.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let month = super::month_number(&b[3..6])?;
    let (year, day) = (number(&b[7..11])?, number(&b[0..2])?);
    let (hour, minute, second) = (
        number(&b[12..14])?,
        number(&b[15..17])?,
        number(&b[18..20])?,
    );
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = i64::from(number(&b[22..24])?) * 3600 + i64::from(number(&b[24..26])?) * 60;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // What chrono accepts: a real date, a time of day without leap
    // second, an offset under a day.
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 || offset >= 86_400 {
        return None;
    }
    let seconds = days_from_civil(i64::from(year), month, i64::from(day)) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - sign * offset;
    DateTime::from_timestamp(seconds, 0)
}

/// The decimal number of `d`, optionally after a `+` (what
/// `str::parse::<u32>` reads of these short fields).
fn number(d: &[u8]) -> Option<u32> {
    let d = match d {
        [b'+', rest @ ..] if !rest.is_empty() => rest,
        _ => d,
    };
    let mut n = 0u32;
    for &c in d {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n * 10 + u32::from(digit);
    }
    (!d.is_empty()).then_some(n)
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl AccessParser {
    /// A parser.
    pub fn new() -> Self {
        AccessParser
    }

    /// Whether a line looks like an access-log line (cheap check for `auto`).
    pub fn looks_like(line: &str) -> bool {
        // "IP - - [" or "vhost IP - - [": a '[' after three or four tokens, before any '"'.
        let head = &line.as_bytes()[..line.len().min(200)];
        // The first " [" (found by its '[': most lines have none, or only
        // a `program[pid]`), then a quote after it and none before.
        let mut from = 0;
        let b = loop {
            let Some(i) = memchr::memchr(b'[', &head[from..]) else {
                return false;
            };
            let at = from + i;
            if at > 0 && head[at - 1] == b' ' {
                break at - 1;
            }
            from = at + 1;
        };
        memchr::memchr(b'"', &head[..b]).is_none()
            && memchr::memchr(b'"', &head[b..]).is_some()
            && (2..=3).contains(&head[..b].iter().filter(|&&c| c == b' ').count())
    }

    /// Decodes one line; `None` when it is not an access-log line.
    pub fn decode(&self, line: &str, host: &str, origin: String) -> Option<Event> {
        let mut e = Event::new(DateTime::UNIX_EPOCH, host, origin);
        self.decode_into(line, line, &mut e).then_some(e)
    }

    /// Decodes `line`, a slice of `record` (the line itself, or a whole
    /// syslog line around an access-log message), into `event`: its record
    /// becomes `record`, its fields slices of it, its kind web access (host
    /// and origin are kept). `false`, the event untouched, when `line` is
    /// not an access-log line.
    pub fn decode_into(&self, record: &str, line: &str, e: &mut Event) -> bool {
        let Some(p) = split_parts(line) else {
            return false;
        };
        let Some(time) = parse_time(p.time) else {
            return false;
        };
        e.time = time;
        e.kind = crate::event::EventKind::WebAccess;
        e.raw.clear();
        e.raw.push_str(record);
        e.fields.clear();
        e.fields.reserve(16);
        let push = |e: &mut Event, name: &'static str, part: &str| {
            e.push_slice(name, record, 0, part);
        };
        if let Some(v) = p.vhost {
            push(e, "cs-host", v);
        }
        push(e, "c-ip", p.ip);
        if p.user != "-" {
            push(e, "cs-username", p.user);
        }
        push(e, "request", p.request);
        let (method, rest) = first_field(p.request, b' ');
        let (target, version) = match rest {
            Some(rest) => {
                let (target, version) = first_field(rest, b' ');
                (Some(target), version)
            }
            None => (None, None),
        };
        if let Some(target) = target
            && !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_uppercase())
        {
            push(e, "cs-method", method);
            push(e, "c-uri", target);
            match split_byte(target, b'?') {
                Some((stem, query)) => {
                    push(e, "cs-uri-stem", stem);
                    push(e, "cs-uri-query", query);
                }
                None => push(e, "cs-uri-stem", target),
            }
            let path = match memchr::memchr2(b'?', b'#', target.as_bytes()) {
                Some(at) => &target[..at],
                None => target,
            };
            let file = rsplit_byte(path, b'/').map_or(path, |(_, f)| f);
            if let Some(ext) = rsplit_byte(file, b'.')
                .map(|(_, x)| x)
                .filter(|x| !x.is_empty() && x.len() <= 10)
            {
                if ext.bytes().any(|b| b.is_ascii_uppercase()) {
                    e.push("c-uri-extension", ext.to_ascii_lowercase());
                } else {
                    push(e, "c-uri-extension", ext);
                }
            }
            if let Some(v) = version {
                push(e, "cs-version", v);
            }
        }
        if p.status != "-" {
            push(e, "sc-status", p.status);
        }
        if p.bytes != "-" {
            push(e, "sc-bytes", p.bytes);
        }
        if let Some(r) = p.referer.filter(|r| *r != "-") {
            push(e, "cs-referer", r);
        }
        if let Some(ua) = p.ua.filter(|u| *u != "-") {
            push(e, "c-useragent", ua);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time parse by chrono's calendar, as the decoder did it before:
    /// what [`parse_time`] must agree with.
    fn chrono_time(s: &str) -> Option<DateTime<Utc>> {
        use chrono::{FixedOffset, NaiveDate, TimeZone};
        let b = s.as_bytes();
        if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let d = b.get(r)?;
            let d = d.strip_prefix(b"+").filter(|d| !d.is_empty()).unwrap_or(d);
            if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(d.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0')))
        };
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = months.iter().position(|m| s.get(3..6) == Some(*m))? as u32 + 1;
        let date = NaiveDate::from_ymd_opt(num(7..11)? as i32, month, num(0..2)?)?;
        let naive = date.and_hms_opt(num(12..14)?, num(15..17)?, num(18..20)?)?;
        let sign = match b[21] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let offset = sign * (num(22..24)? as i32 * 3600 + num(24..26)? as i32 * 60);
        let tz = FixedOffset::east_opt(offset)?;
        Some(tz.from_local_datetime(&naive).single()?.with_timezone(&Utc))
    }

    /// Every day of several years (leap, century and 400-year ones, year 0
    /// and 9999), edge times, offsets and malformed fields: the same
    /// instant as chrono's calendar gives, or rejected by both.
    #[test]
    fn time_by_position_agrees_with_chrono() {
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut checked = 0;
        for year in [
            "0000", "1600", "1900", "1969", "1970", "2000", "2024", "2026", "2100", "9999", "+999",
        ] {
            for month in months.iter().chain(&["Foo", "nov"]) {
                for day in [
                    "00", "01", "28", "29", "30", "31", "32", "+1", "1+", " 1", "0a",
                ] {
                    for (time, zone) in [
                        ("00:00:00", "+0000"),
                        ("23:59:59", "+0700"),
                        ("10:15:32", "-0530"),
                        ("24:00:00", "+0000"),
                        ("12:60:00", "+0000"),
                        ("12:00:60", "+0000"),
                        ("12:00:00", "+2359"),
                        ("12:00:00", "-2400"),
                        ("12:00:00", "+9999"),
                        ("12:00:00", "*0000"),
                        ("+1:+2:+3", "++1+2"),
                    ] {
                        let s = format!("{day}/{month}/{year}:{time} {zone}");
                        assert_eq!(parse_time(&s), chrono_time(&s), "{s}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1_000);
        assert_eq!(
            parse_time("22/Nov/2026:10:15:32 +0700").map(|t| t.to_rfc3339()),
            Some("2026-11-22T03:15:32+00:00".into())
        );
    }

    fn decode(line: &str) -> Event {
        AccessParser::new()
            .decode(line, "web01", "t:0".into())
            .unwrap_or_else(|| panic!("not decoded: {line}"))
    }

    #[test]
    fn nginx_combined() {
        let e = decode(
            r#"203.0.113.9 - - [22/Nov/2026:10:15:32 +0700] "GET /index.php?id=1%27%20or%201=1-- HTTP/1.1" 200 512 "-" "sqlmap/1.7.2#stable (https://sqlmap.org)""#,
        );
        assert_eq!(e.get("c-ip"), Some("203.0.113.9"));
        assert_eq!(e.get("cs-method"), Some("GET"));
        assert_eq!(e.get("c-uri"), Some("/index.php?id=1%27%20or%201=1--"));
        assert_eq!(e.get("cs-uri-stem"), Some("/index.php"));
        assert_eq!(e.get("cs-uri-query"), Some("id=1%27%20or%201=1--"));
        assert_eq!(e.get("c-uri-extension"), Some("php"));
        assert_eq!(e.get("sc-status"), Some("200"));
        assert_eq!(
            e.get("c-useragent"),
            Some("sqlmap/1.7.2#stable (https://sqlmap.org)")
        );
        assert_eq!(e.get("cs-referer"), None);
        assert_eq!(e.time.to_rfc3339(), "2026-11-22T03:15:32+00:00");
    }

    #[test]
    fn apache_common_and_vhost() {
        let e = decode(
            r#"192.0.2.4 - admin [10/Oct/2000:13:55:36 -0700] "POST /wp-login.php HTTP/1.0" 401 2326"#,
        );
        assert_eq!(e.get("cs-username"), Some("admin"));
        assert_eq!(e.get("sc-status"), Some("401"));
        assert_eq!(e.get("c-useragent"), None);
        let e = decode(
            r#"portal.example.gov.vn:443 192.0.2.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 10 "https://x/" "curl/8""#,
        );
        assert_eq!(e.get("cs-host"), Some("portal.example.gov.vn:443"));
        assert_eq!(e.get("c-ip"), Some("192.0.2.4"));
        assert_eq!(e.get("cs-referer"), Some("https://x/"));
    }

    #[test]
    fn garbage_requests_keep_the_raw_request() {
        let e = decode(
            r#"198.51.100.1 - - [22/Nov/2026:10:15:32 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-""#,
        );
        assert_eq!(e.get("cs-method"), None);
        assert_eq!(e.get("request"), Some(r"\x16\x03\x01\x02\x00\x01"));
        assert_eq!(e.get("sc-status"), Some("400"));
    }

    #[test]
    fn odd_requests_split_as_before() {
        let line = |req: &str, tail: &str| {
            format!(r#"192.0.2.4 - - [22/Nov/2026:10:15:32 +0000] "{req}" 200 1{tail}"#)
        };
        let e = decode(&line("GET", ""));
        assert_eq!((e.get("request"), e.get("cs-method")), (Some("GET"), None));
        let e = decode(&line("GET /a b c", " \"-\" \"ua x\""));
        assert_eq!(e.get("c-uri"), Some("/a"));
        assert_eq!(e.get("cs-version"), Some("b c"));
        assert_eq!(e.get("c-useragent"), Some("ua x"));
        for (target, ext) in [
            ("/a.b/c", None),
            ("/x.PHP?y#z", Some("php")),
            ("/a#b.c", None),
            ("/a?b.c", None),
            ("/.htaccess", Some("htaccess")),
            ("/a.", None),
        ] {
            let e = decode(&line(&format!("GET {target} HTTP/1.1"), ""));
            assert_eq!(e.get("c-uri-extension"), ext, "{target}");
        }
        let e = decode(&line("GET /p?q=1?2 HTTP/1.1", ""));
        assert_eq!(
            (e.get("cs-uri-stem"), e.get("cs-uri-query")),
            (Some("/p"), Some("q=1?2"))
        );
        // Five tokens before the time, or a day written with a sign.
        let p = AccessParser::new();
        assert!(
            p.decode(
                r#"a b c d e [22/Nov/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1"#,
                "h",
                "o".into()
            )
            .is_none()
        );
        assert!(
            p.decode(
                r#"a - - [+2/Nov/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1"#,
                "h",
                "o".into()
            )
            .is_some()
        );
        assert!(
            p.decode(
                r#"a - - [-2/Nov/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1"#,
                "h",
                "o".into()
            )
            .is_none()
        );
    }

    #[test]
    fn looks_like_separates_formats() {
        assert!(AccessParser::looks_like(
            r#"1.2.3.4 - - [22/Nov/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1"#
        ));
        assert!(!AccessParser::looks_like(
            "Nov 22 04:00:01 h sshd[1]: Failed password for root"
        ));
        assert!(!AccessParser::looks_like(r#"{"a": "[x]"}"#));
    }

    /// The check as it was first written (one substring search for `" ["`
    /// and one for the quote): what `looks_like` must still answer.
    fn looks_like_by_substring(line: &str) -> bool {
        let head = &line.as_bytes()[..line.len().min(200)];
        let bracket = OPEN_BRACKET.find(head);
        let quote = memchr::memchr(b'"', head);
        match (bracket, quote) {
            (Some(b), Some(q)) => {
                b < q && (2..=3).contains(&head[..b].iter().filter(|&&c| c == b' ').count())
            }
            _ => false,
        }
    }

    /// Every line of the corpus's logs and of the rule fixtures, and
    /// their prefixes: the same answer as the substring check.
    #[test]
    fn looks_like_agrees_with_the_substring_check() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut lines: Vec<String> = [
            r#"1.2.3.4 - - [22/Nov/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1"#,
            r#"vhost 1.2.3.4 - - [x] "#,
            r#"a [b "c"#,
            r#"a b c d [e "f"#,
            r#"a "b [c d"#,
            "[a b c",
            " [",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut files = 0;
        for dir in ["../shared/corpus/logs", "rules/fixtures"] {
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                let Ok(entries) = std::fs::read_dir(&d) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if let Ok(bytes) = std::fs::read(&path) {
                        files += 1;
                        let text = String::from_utf8_lossy(&bytes);
                        lines.extend(text.lines().take(2_000).map(str::to_string));
                    }
                }
            }
        }
        assert!(files > 10, "only {files} files read");
        let mut access = 0;
        for line in &lines {
            for end in (0..=line.len())
                .filter(|&i| line.is_char_boundary(i))
                .step_by(7)
            {
                let l = &line[..end];
                assert_eq!(
                    AccessParser::looks_like(l),
                    looks_like_by_substring(l),
                    "{l}"
                );
            }
            access += usize::from(AccessParser::looks_like(line));
        }
        assert!(
            access > 100,
            "only {access} access lines among {}",
            lines.len()
        );
    }
}
