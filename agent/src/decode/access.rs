//! nginx and Apache access logs: common, combined, and vhost-prefixed
//! combined, into Sigma's `webserver` taxonomy (`c-ip`, `cs-method`,
//! `c-uri`, `cs-uri-stem`, `cs-uri-query`, `sc-status`, `c-useragent`, ...).

use chrono::{DateTime, Utc};
use regex::Regex;

use crate::event::Event;

/// The access-log line pattern (anchored).
#[derive(Debug, Clone)]
pub struct AccessParser {
    line: Regex,
}

impl Default for AccessParser {
    fn default() -> Self {
        Self::new()
    }
}

impl AccessParser {
    /// Compiles the pattern.
    pub fn new() -> Self {
        AccessParser {
            line: Regex::new(concat!(
                r#"^(?:(?P<vhost>\S+) )?(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "#,
                r#""(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)"#,
                r#"(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<ua>(?:[^"\\]|\\.)*)")?"#,
            ))
            .expect("built-in pattern compiles"),
        }
    }

    /// Whether a line looks like an access-log line (cheap check for `auto`).
    pub fn looks_like(line: &str) -> bool {
        // "IP - - [" or "vhost IP - - [": a '[' among the first five tokens, before any '"'.
        let head = &line.as_bytes()[..line.len().min(200)];
        let bracket = head.windows(2).position(|w| w == b" [");
        let quote = head.iter().position(|&b| b == b'"');
        match (bracket, quote) {
            (Some(b), Some(q)) => b < q && head[..b].iter().filter(|&&c| c == b' ').count() <= 3,
            _ => false,
        }
    }

    /// Decodes one line; `None` when it is not an access-log line.
    pub fn decode(&self, line: &str, host: &str, origin: String) -> Option<Event> {
        let c = self.line.captures(line)?;
        let time = DateTime::parse_from_str(&c["time"], "%d/%b/%Y:%H:%M:%S %z")
            .ok()?
            .with_timezone(&Utc);
        let mut e = Event::new(time, host, origin);
        e.kind = crate::event::EventKind::WebAccess;
        e.fields.reserve(16);
        if let Some(v) = c.name("vhost") {
            e.set("cs-host", v.as_str());
        }
        e.set("c-ip", &c["ip"]);
        if &c["user"] != "-" {
            e.set("cs-username", &c["user"]);
        }
        let request = &c["request"];
        e.set("request", request);
        let mut parts = request.splitn(3, ' ');
        if let (Some(method), Some(target)) = (parts.next(), parts.next())
            && !method.is_empty()
            && method.bytes().all(|b| b.is_ascii_uppercase())
        {
            e.set("cs-method", method);
            e.set("c-uri", target);
            match target.split_once('?') {
                Some((stem, query)) => {
                    e.set("cs-uri-stem", stem);
                    e.set("cs-uri-query", query);
                }
                None => e.set("cs-uri-stem", target),
            }
            if let Some(ext) = target
                .split(['?', '#'])
                .next()
                .and_then(|p| p.rsplit('/').next())
                .and_then(|f| f.rsplit_once('.'))
                .map(|(_, x)| x)
                .filter(|x| !x.is_empty() && x.len() <= 10)
            {
                e.set("c-uri-extension", ext.to_ascii_lowercase());
            }
            if let Some(v) = parts.next() {
                e.set("cs-version", v);
            }
        }
        if &c["status"] != "-" {
            e.set("sc-status", &c["status"]);
        }
        if &c["bytes"] != "-" {
            e.set("sc-bytes", &c["bytes"]);
        }
        if let Some(r) = c.name("referer").filter(|r| r.as_str() != "-") {
            e.set("cs-referer", r.as_str());
        }
        if let Some(ua) = c.name("ua").filter(|u| u.as_str() != "-") {
            e.set("c-useragent", ua.as_str());
        }
        e.raw = line.to_string();
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn looks_like_separates_formats() {
        assert!(AccessParser::looks_like(
            r#"1.2.3.4 - - [22/Nov/2026:10:15:32 +0000] "GET / HTTP/1.1" 200 1"#
        ));
        assert!(!AccessParser::looks_like(
            "Nov 22 04:00:01 h sshd[1]: Failed password for root"
        ));
        assert!(!AccessParser::looks_like(r#"{"a": "[x]"}"#));
    }
}
