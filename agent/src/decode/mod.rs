//! Decoders: raw records (log lines) into [`Event`]s with named fields.
//!
//! Field names are Ward's taxonomy, documented in `rules/README.md`; Sigma
//! rules refer to them. A decoder never panics on input: a line it cannot
//! read is a [`DecodeError`], which callers count and skip.

mod access;
mod auth;
pub mod journal;
mod json;
pub mod net;
mod syslog;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::Event;

pub use access::AccessParser;
pub use auth::AuthParser;

/// Every field a Ward decoder produces, with what it means. Rules that use
/// any other field are rejected by `ward-agent check`; `rules/README.md`
/// documents the same list.
pub const KNOWN_FIELDS: &[(&str, &str)] = &[
    // syslog envelope
    ("hostname", "host name written in the log line"),
    (
        "program",
        "program (syslog APP-NAME / tag), e.g. sshd, sudo",
    ),
    ("pid", "process id from the syslog tag"),
    ("facility", "syslog facility name"),
    ("syslog_severity", "syslog severity name"),
    ("message", "the free-text message after the syslog header"),
    // authentication
    (
        "action",
        "what happened: login, invalid_user, pam_auth, max_auth_attempts, sudo, su, user_added, group_added, crontab_replace, crontab_edit, crontab_list, crontab_delete; for files: created, modified, deleted",
    ),
    ("outcome", "success or failure"),
    ("user", "the acting or authenticating user"),
    ("user_valid", "false when sshd says the user does not exist"),
    (
        "target_user",
        "the user acted upon (sudo -u, su to, the new account)",
    ),
    ("remote_user", "PAM ruser"),
    ("src_ip", "source address of a remote login"),
    ("src_port", "source port of a remote login"),
    (
        "auth_method",
        "password, publickey, keyboard-interactive, ...",
    ),
    ("pam_service", "PAM service name (sshd, sudo, su, login)"),
    ("tty", "terminal"),
    ("cwd", "working directory of a sudo command"),
    ("command", "command run through sudo"),
    ("reason", "why sudo refused"),
    ("uid", "numeric user id of a new account"),
    ("gid", "numeric group id of a new account or group"),
    ("home", "home directory of a new account"),
    ("shell", "login shell of a new account"),
    ("group", "name of a new group"),
    // web server access logs (Sigma `category: webserver`)
    ("c-ip", "client address"),
    ("cs-username", "authenticated user (HTTP basic auth)"),
    ("cs-host", "virtual host, when the log has it"),
    ("request", "the raw request line"),
    ("cs-method", "HTTP method"),
    ("c-uri", "request target: path and query"),
    ("cs-uri-stem", "path without the query"),
    ("cs-uri-query", "query string without '?'"),
    (
        "c-uri-extension",
        "lowercase extension of the requested file",
    ),
    ("cs-version", "HTTP version"),
    ("sc-status", "response status code"),
    ("sc-bytes", "response size"),
    ("cs-referer", "Referer header"),
    ("c-useragent", "User-Agent header"),
    // network (decode::net): every network event
    (
        "event_type",
        "network event kind: conn_attempt, flow_end, dns_query, dns_answer, http_request, tls_client_hello, beacon",
    ),
    ("proto", "transport protocol: tcp, udp, icmp, icmpv6, ip-N"),
    ("dst_ip", "destination (responder) address"),
    ("dst_port", "destination (responder) port; ICMP code"),
    (
        "tcp_flags",
        "TCP flags of the packet (conn_attempt) or of the whole flow (flow_end), e.g. S, SA, SAFP",
    ),
    // flows
    (
        "conn_state",
        "Zeek-style TCP state at flow end: S0, REJ, S1, SF, SH, RSTO, RSTR, RSTOS0, OTH",
    ),
    (
        "end_reason",
        "why a flow ended: timeout, reused, evicted, end_of_capture",
    ),
    ("packets", "packets of the flow, both directions"),
    ("bytes", "captured bytes of the flow, both directions"),
    (
        "duration_s",
        "seconds from the flow's first to its last packet",
    ),
    // DNS
    ("query", "DNS question name, lower-case, no final dot"),
    (
        "query_type",
        "DNS question type: A, AAAA, TXT, MX, ANY, TYPEn ...",
    ),
    ("query_length", "length of the query name in bytes"),
    ("query_longest_label", "length of the query's longest label"),
    (
        "query_entropy",
        "Shannon entropy (bits/byte) of the query's longest label",
    ),
    (
        "dns_rcode",
        "DNS response code (0 NOERROR, 3 NXDOMAIN, ...)",
    ),
    ("answers", "A, AAAA and CNAME answers, comma-separated"),
    // HTTP
    ("http_method", "HTTP request method"),
    ("uri", "HTTP request target as sent"),
    ("uri_decoded", "HTTP request target, percent-decoded once"),
    ("http_version", "HTTP version of the request line"),
    ("http_host", "HTTP Host header, lower-case, without port"),
    ("user_agent", "HTTP User-Agent header"),
    // TLS
    ("sni", "server name of a TLS ClientHello, lower-case"),
    (
        "tls_version",
        "legacy version of a TLS ClientHello: TLS 1.0 ... TLS 1.2",
    ),
    // beaconing
    ("beacon_count", "connections in a regular series"),
    ("beacon_interval_s", "mean seconds between them"),
    (
        "beacon_jitter",
        "standard deviation / mean of the intervals",
    ),
    // indicator lists (engine::ioc), added before rules judge an event
    (
        "ioc_list",
        "name of the rule pack's indicator list that matched (ioc/<name>.txt)",
    ),
    (
        "ioc_field",
        "the field whose value is listed: dst_ip, src_ip, query, sni, http_host",
    ),
    (
        "ioc_value",
        "the listed indicator: address, CIDR block or domain",
    ),
    // file integrity ([[files]] watching; `action` is created, modified or deleted)
    ("path", "full path of a watched file"),
    ("file_name", "the file's name without its directory"),
    (
        "extension",
        "the file's extension, lowercase, without the dot",
    ),
    (
        "sha256",
        "SHA-256 of the file's content (absent when deleted)",
    ),
    (
        "previous_sha256",
        "SHA-256 the baseline had before the change",
    ),
    ("size", "size in bytes"),
    ("owner", "the file's owner (user name, or uid)"),
    ("watch_root", "the [[files]] path the file is under"),
];

/// The number (1–12) of an English three-letter month name as syslog and
/// access logs write it (`Jan` … `Dec`, case as written).
fn month_number(name: &[u8]) -> Option<u32> {
    Some(match name {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// Bytes of a log line as text, invalid UTF-8 replaced by U+FFFD. Valid
/// text (nearly every line) is borrowed after the fast validity check.
pub fn line_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Longest line a decoder accepts, in bytes. Longer lines are counted and skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The formats of log files the agent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Guess per line.
    #[default]
    Auto,
    /// RFC 3164 / RFC 5424 syslog (auth.log, secure, messages, syslog).
    Syslog,
    /// nginx access log (combined or common).
    Nginx,
    /// Apache access log (combined, common, or vhost_combined).
    Apache,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "syslog" => Ok(LogFormat::Syslog),
            other => Err(format!(
                "unknown log format '{other}' (expected auto or syslog)"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Auto => "auto",
            LogFormat::Syslog => "syslog",
            LogFormat::Nginx => "nginx",
            LogFormat::Apache => "apache",
            LogFormat::Json => "json",
        })
    }
}

/// Why a line was not turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`MAX_LINE_BYTES`].
    #[error("line of {0} bytes is longer than the {MAX_LINE_BYTES}-byte limit")]
    TooLong(usize),
    /// Not in the expected format.
    #[error("not a {0} line")]
    Malformed(LogFormat),
}

/// Turns lines of one log into events.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    format: LogFormat,
    host: String,
    auth: AuthParser,
    access: AccessParser,
}

impl LineDecoder {
    /// A decoder for lines of `format` seen on `host`.
    pub fn new(format: LogFormat, host: impl Into<String>) -> Self {
        LineDecoder {
            format,
            host: host.into(),
            auth: AuthParser::new(),
            access: AccessParser::new(),
        }
    }

    /// Decodes one line (without its line terminator). `origin` identifies
    /// the line's position (see [`Event::origin`]).
    pub fn decode(&self, line: &str, origin: String) -> Result<Event, DecodeError> {
        let mut event = Event::new(chrono::DateTime::UNIX_EPOCH, self.host.clone(), origin);
        self.fill(line, &mut event).map(|()| event)
    }

    /// [`LineDecoder::decode`] into `event`, reusing its buffers (a reader
    /// decoding line after line into one event allocates nothing per line).
    /// On error the event is left empty.
    pub fn decode_into(
        &self,
        line: &str,
        origin: &str,
        event: &mut Event,
    ) -> Result<(), DecodeError> {
        event.reset(&self.host, origin);
        self.fill(line, event)
    }

    /// Decodes into an event as [`Event::reset`] leaves it.
    fn fill(&self, line: &str, event: &mut Event) -> Result<(), DecodeError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(DecodeError::TooLong(line.len()));
        }
        let line = line.trim_end_matches('\r');
        let format = match self.format {
            LogFormat::Auto if line.starts_with('{') => LogFormat::Json,
            LogFormat::Auto if AccessParser::looks_like(line) => LogFormat::Nginx,
            LogFormat::Auto => LogFormat::Syslog,
            f => f,
        };
        let decoded = match format {
            LogFormat::Syslog | LogFormat::Auto => {
                let syslog = syslog::decode_into(line, event);
                if syslog && !self.web_through_syslog(event) {
                    self.auth.enrich(event);
                }
                syslog
            }
            LogFormat::Nginx | LogFormat::Apache => self.access.decode_into(line, line, event),
            LogFormat::Json => json::decode_into(line, event),
        };
        if decoded {
            Ok(())
        } else {
            Err(DecodeError::Malformed(format))
        }
    }

    /// A web server logging its access log through syslog: the syslog event
    /// becomes the access-log event of its message (the whole line kept as
    /// the record). `false`, the event untouched, when it is not that.
    fn web_through_syslog(&self, event: &mut Event) -> bool {
        let web = matches!(
            event.get("program"),
            Some("nginx" | "apache" | "apache2" | "httpd")
        ) && event.get("message").is_some_and(AccessParser::looks_like);
        if !web {
            return false;
        }
        // The record is lent out while the event is rewritten from it.
        let record = std::mem::take(&mut event.raw);
        let message = event
            .fields
            .iter()
            .find(|(k, _)| k == "message")
            .map(|(_, v)| v.clone());
        let message = match &message {
            Some(crate::event::FieldValue::Raw { start, end }) => {
                record.get(*start as usize..*end as usize).unwrap_or("")
            }
            Some(crate::event::FieldValue::Text(t)) => t,
            None => "",
        };
        if self.access.decode_into(&record, message, event) {
            return true;
        }
        event.raw = record;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(line: &str) -> Result<Event, DecodeError> {
        LineDecoder::new(LogFormat::Auto, "web01").decode(line, "test:0".into())
    }

    #[test]
    fn ssh_failed_password_becomes_fields() {
        let e = decode("Mar  3 10:15:01 web01 sshd[2211]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2").unwrap();
        assert_eq!(e.get("program"), Some("sshd"));
        assert_eq!(e.get("pid"), Some("2211"));
        assert_eq!(e.get("action"), Some("login"));
        assert_eq!(e.get("outcome"), Some("failure"));
        assert_eq!(e.get("user"), Some("admin"));
        assert_eq!(e.get("user_valid"), Some("false"));
        assert_eq!(e.get("src_ip"), Some("203.0.113.7"));
        assert_eq!(e.get("src_port"), Some("51234"));
        assert_eq!(e.get("auth_method"), Some("password"));
        assert_eq!(e.host, "web01");
    }

    #[test]
    fn rfc5424_lines_decode() {
        let e = decode("<38>1 2026-11-22T04:00:00.123Z web01 sshd 77 - - Accepted publickey for deploy from 198.51.100.4 port 40022 ssh2").unwrap();
        assert_eq!(e.get("outcome"), Some("success"));
        assert_eq!(e.get("user"), Some("deploy"));
        assert_eq!(e.time.to_rfc3339(), "2026-11-22T04:00:00.123+00:00");
    }

    #[test]
    fn access_logs_sent_through_syslog_are_web_events() {
        let e = decode(r#"Jul  8 11:07:08 ip-172-31-43-28 nginx[2869]: 167.71.13.196 - - [08/Jul/2021:11:07:08 +0000] "GET /.wp-config.php.swp HTTP/1.1" 404 21 "-" "curl/8""#).unwrap();
        assert_eq!(e.get("c-ip"), Some("167.71.13.196"));
        assert_eq!(e.get("c-uri"), Some("/.wp-config.php.swp"));
        assert!(e.raw.starts_with("Jul  8 11:07:08"));
    }

    #[test]
    fn auto_picks_the_format_per_line() {
        let web = decode(
            r#"203.0.113.9 - - [22/Nov/2026:10:15:32 +0700] "GET / HTTP/1.1" 200 5 "-" "curl/8""#,
        )
        .unwrap();
        assert_eq!(web.get("c-ip"), Some("203.0.113.9"));
        let json = decode(r#"{"time": "2026-11-22T04:00:00Z", "msg": "hi"}"#).unwrap();
        assert_eq!(json.get("msg"), Some("hi"));
        let sys = decode(
            "Nov 22 04:00:01 web01 sudo: pam_unix(sudo:session): session closed for user root",
        )
        .unwrap();
        assert_eq!(sys.get("program"), Some("sudo"));
    }

    #[test]
    fn one_reused_event_decodes_as_fresh_ones_do() {
        let d = LineDecoder::new(LogFormat::Auto, "web01");
        let mut reused = Event::new(chrono::Utc::now(), "other", "x");
        for (i, line) in [
            "Mar  3 10:15:01 web01 sshd[2211]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2",
            r#"203.0.113.9 - - [22/Nov/2026:10:15:32 +0700] "GET /a?b=1 HTTP/1.1" 404 5 "-" "curl/8""#,
            "not a log line",
            r#"Jul  8 11:07:08 ip-172-31-43-28 nginx[2869]: 167.71.13.196 - - [08/Jul/2021:11:07:08 +0000] "GET /x.php HTTP/1.1" 404 21 "-" "curl/8""#,
            r#"Jul  8 11:07:08 h nginx[2869]: 1.2.3.4 - - [broken"#,
            r#"{"time": "2026-11-22T04:00:00Z", "msg": "hi"}"#,
            "<38>1 2026-11-22T04:00:00.123Z web01 sshd 0077 - - Accepted publickey for deploy from 198.51.100.4 port 40022 ssh2",
            "Nov 22 04:00:01 web01 sudo: pam_unix(sudo:session): session closed for user root",
        ]
        .into_iter()
        .enumerate()
        {
            let origin = format!("test:{i}");
            let fresh = d.decode(line, origin.clone());
            let into = d.decode_into(line, &origin, &mut reused);
            match fresh {
                Ok(fresh) => {
                    assert_eq!(into, Ok(()), "{line}");
                    assert_eq!(reused, fresh, "{line}");
                }
                Err(e) => assert_eq!(into, Err(e), "{line}"),
            }
        }
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for line in [
            "",
            "hello world",
            "\u{0}\u{1}\u{2}",
            "<999>",
            "Mar 99 99:99:99",
        ] {
            assert!(
                matches!(decode(line), Err(DecodeError::Malformed(_))),
                "{line:?}"
            );
        }
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        assert_eq!(decode(&long), Err(DecodeError::TooLong(MAX_LINE_BYTES + 1)));
    }
}
