//! Decoders: raw records (log lines) into [`Event`]s with named fields.
//!
//! Field names are Ward's taxonomy, documented in `rules/README.md`; Sigma
//! rules refer to them. A decoder never panics on input: a line it cannot
//! read is a [`DecodeError`], which callers count and skip.

mod auth;
mod syslog;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::Event;

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
        "what happened: login, invalid_user, pam_auth, max_auth_attempts, sudo, su, user_added, group_added; for files: created, modified, deleted",
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
}

impl LineDecoder {
    /// A decoder for lines of `format` seen on `host`.
    pub fn new(format: LogFormat, host: impl Into<String>) -> Self {
        LineDecoder {
            format,
            host: host.into(),
            auth: AuthParser::new(),
        }
    }

    /// Decodes one line (without its line terminator). `origin` identifies
    /// the line's position (see [`Event::origin`]).
    pub fn decode(&self, line: &str, origin: String) -> Result<Event, DecodeError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(DecodeError::TooLong(line.len()));
        }
        let line = line.trim_end_matches('\r');
        match self.format {
            LogFormat::Auto | LogFormat::Syslog => {
                let mut event = syslog::decode(line, &self.host, origin)
                    .ok_or(DecodeError::Malformed(LogFormat::Syslog))?;
                self.auth.enrich(&mut event);
                Ok(event)
            }
        }
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
