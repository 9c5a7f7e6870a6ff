//! RFC 3164 and RFC 5424 syslog lines, through `syslog_loose`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Local, TimeZone, Utc};
use syslog_loose::{IncompleteDate, ProcId, Variant};

use crate::event::{Event, FieldValue};

/// RFC 3164 timestamps carry no year: take the current one, or last year's
/// when that would put the line more than a month in the future (a December
/// log read in January).
fn resolve_year((month, _day, _h, _m, _s): IncompleteDate) -> i32 {
    let (year, this_month) = local_year_month();
    if month > this_month + 1 {
        year - 1
    } else {
        year
    }
}

/// The local year and month, read from the clock at most once a second per
/// thread (reading the local time zone per line costs more than parsing it).
fn local_year_month() -> (i32, u32) {
    thread_local! {
        static NOW: Cell<Option<(Instant, i32, u32)>> = const { Cell::new(None) };
    }
    NOW.with(|cell| {
        if let Some((at, year, month)) = cell.get()
            && at.elapsed() < Duration::from_secs(1)
        {
            return (year, month);
        }
        let now = Local::now();
        cell.set(Some((Instant::now(), now.year(), now.month())));
        (now.year(), now.month())
    })
}

/// A local wall-clock time as UTC (the earlier one when the clock was set
/// back), `None` when it does not exist (skipped when the clock was set
/// forward): what `Local.with_ymd_and_hms(..).earliest()` gives.
fn local_time_uncached(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime<Utc>> {
    Local
        .with_ymd_and_hms(y, mo, d, h, mi, s)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// [`local_time_uncached`], remembered for the last minute asked: lines
/// come in time order, so nearly every line asks the minute the one
/// before it asked. A minute is remembered only when its first and last
/// second are exactly 59 s apart in UTC (no change of offset inside it),
/// so that every second of it is its start plus the seconds.
fn local_time(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<DateTime<Utc>> {
    type Minute = (i32, u32, u32, u32, u32);
    thread_local! {
        static LAST: Cell<Option<(Minute, DateTime<Utc>)>> = const { Cell::new(None) };
    }
    if s > 59 {
        return local_time_uncached(y, mo, d, h, mi, s);
    }
    let key = (y, mo, d, h, mi);
    if let Some((k, start)) = LAST.get()
        && k == key
    {
        return Some(start + chrono::TimeDelta::seconds(i64::from(s)));
    }
    let start = local_time_uncached(y, mo, d, h, mi, 0);
    let end = local_time_uncached(y, mo, d, h, mi, 59);
    match (start, end) {
        (Some(a), Some(b)) if b - a == chrono::TimeDelta::seconds(59) => {
            LAST.set(Some((key, a)));
            Some(a + chrono::TimeDelta::seconds(i64::from(s)))
        }
        _ => local_time_uncached(y, mo, d, h, mi, s),
    }
}

/// The parts of a syslog line, borrowed from it.
struct Parsed<'a> {
    time: DateTime<Utc>,
    hostname: Option<&'a str>,
    appname: Option<&'a str>,
    procid: Option<ProcId<&'a str>>,
    /// The text `procid` was read from, when known.
    pid_text: Option<&'a str>,
    facility: Option<&'static str>,
    severity: Option<&'static str>,
    msg: &'a str,
}

/// `Mmm dd hh:mm:ss HOST TAG[PID]: MESSAGE`, the shape nearly every auth.log
/// line has, read by hand. Only lines whose reading is certain are taken
/// (ASCII, one space between the parts, a colon after the tag, a message
/// that cannot be structured data); for those the result is what
/// `syslog_loose` gives, which reads every other line.
fn parse_common(line: &str) -> Option<Parsed<'_>> {
    // `syslog_loose` reads the line trimmed (a leading space fails the month).
    let line = line.trim_end();
    let b = line.as_bytes();
    if !line.is_ascii() || b.len() < 16 {
        return None;
    }
    let month = super::month_number(&b[..3])?;
    let mut i = 3;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if i == 3 {
        return None;
    }
    let digit = |at: usize| {
        b.get(at)
            .filter(|c| c.is_ascii_digit())
            .map(|c| u32::from(c - b'0'))
    };
    let mut day = digit(i)?;
    i += 1;
    if let Some(d) = digit(i) {
        day = day * 10 + d;
        i += 1;
    }
    let two = |at: usize| Some(digit(at)? * 10 + digit(at + 1)?);
    if b.get(i) != Some(&b' ') || b.get(i + 3) != Some(&b':') || b.get(i + 6) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (two(i + 1)?, two(i + 4)?, two(i + 7)?);
    i += 9;
    let space = |c: u8| matches!(c, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ');
    // " HOST": one space, then everything up to white space.
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let host_start = i + 1;
    let host_end = host_start + b[host_start..].iter().position(|&c| space(c))?;
    let hostname = &line[host_start..host_end];
    if hostname.is_empty() || hostname == "-" || hostname.ends_with(':') {
        return None;
    }
    // " TAG:": one space, then up to white space or a colon, which must follow.
    if b.get(host_end) != Some(&b' ') {
        return None;
    }
    let tag_start = host_end + 1;
    let tag_end = tag_start + b[tag_start..].iter().position(|&c| space(c) || c == b':')?;
    let tag = &line[tag_start..tag_end];
    if tag.is_empty() || tag == "-" || b[tag_end] != b':' {
        return None;
    }
    let mut at = tag_end + 1;
    while matches!(b.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    if matches!(b.get(at), Some(b'[' | b'-')) {
        return None;
    }
    // APP[PID], when the tag is exactly that; else the tag is the app.
    // (Byte searches: the tag is short, and `[`, `]` are ASCII.)
    let (appname, pid_text) = match tag.bytes().position(|c| c == b'[') {
        Some(open) => {
            let rest = &tag[open + 1..];
            match rest.bytes().position(|c| c == b']') {
                Some(close) if close > 0 && close + 1 == rest.len() => {
                    (&tag[..open], Some(&rest[..close]))
                }
                _ => (tag, None),
            }
        }
        None => (tag, None),
    };
    let procid = pid_text.map(ProcId::from);
    let date = (month, day, hour, minute, second);
    let time = local_time(resolve_year(date), month, day, hour, minute, second)?;
    Some(Parsed {
        time,
        hostname: Some(hostname),
        appname: Some(appname),
        procid,
        pid_text,
        facility: None,
        severity: None,
        msg: &line[at..],
    })
}

/// Any syslog line, through `syslog_loose`.
fn parse_any(line: &str) -> Option<Parsed<'_>> {
    // RFC 5424 always starts with "<PRI>VERSION "; anything else is 3164
    // (skipping the failed 5424 attempt saves most of the parse time).
    let variant = match line.as_bytes() {
        [b'<', ..] => Variant::Either,
        _ => Variant::RFC3164,
    };
    let msg = syslog_loose::parse_message_with_year_exact(line, resolve_year, variant).ok()?;
    Some(Parsed {
        time: msg.timestamp?.with_timezone(&Utc),
        hostname: msg.hostname,
        appname: msg.appname,
        procid: msg.procid,
        pid_text: None,
        facility: msg.facility.map(|f| f.as_str()),
        severity: msg.severity.map(|s| s.as_str()),
        msg: msg.msg,
    })
}

/// Decodes a syslog line into `event` (as [`Event::reset`] left it) with
/// `hostname`, `program`, `pid`, `facility`, `syslog_severity` and
/// `message` fields; `false`, the event untouched, when the line is not
/// syslog.
pub(super) fn decode_into(line: &str, event: &mut Event) -> bool {
    let Some(msg) = parse_common(line).or_else(|| parse_any(line)) else {
        return false;
    };
    event.time = msg.time;
    event.kind = crate::event::EventKind::Syslog;
    // Fields are slices of the line, which the event keeps as `raw`.
    event.raw.push_str(line);
    event.fields.reserve(12);
    if let Some(h) = msg.hostname {
        event.push_slice("hostname", line, 0, h);
    }
    if let Some(app) = msg.appname {
        event.push_slice("program", line, 0, app);
    }
    match msg.procid {
        Some(ProcId::PID(pid)) => {
            let mut digits = itoa::Buffer::new();
            let text = digits.format(pid);
            // The line's own digits when they read the same (no leading zeros).
            match msg.pid_text.filter(|t| *t == text) {
                Some(t) => event.push_slice("pid", line, 0, t),
                None => event.push("pid", text.to_string()),
            }
        }
        Some(ProcId::Name(name)) => event.push_slice("pid", line, 0, name),
        None => {}
    }
    if let Some(f) = msg.facility {
        event.push("facility", FieldValue::fixed(f));
    }
    if let Some(s) = msg.severity {
        event.push("syslog_severity", FieldValue::fixed(s));
    }
    event.push_slice("message", line, 0, msg.msg);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand reading agrees with `syslog_loose` on every line it takes.
    fn same(line: &str) -> bool {
        let Some(fast) = parse_common(line) else {
            return false;
        };
        let slow = parse_any(line).expect("syslog_loose reads it too");
        assert_eq!(fast.time, slow.time, "{line}");
        assert_eq!(fast.hostname, slow.hostname, "{line}");
        assert_eq!(fast.appname, slow.appname, "{line}");
        assert_eq!(fast.procid, slow.procid, "{line}");
        assert_eq!(fast.facility, slow.facility, "{line}");
        assert_eq!(fast.severity, slow.severity, "{line}");
        assert_eq!(fast.msg, slow.msg, "{line}");
        true
    }

    #[test]
    fn the_common_shape_reads_as_syslog_loose_reads_it() {
        for line in [
            "Nov 22 00:00:00 srv sshd[14738]: fatal: Unable to negotiate with 203.0.113.16 port 55555",
            "Mar  3 10:15:01 web01 sshd[2211]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2",
            "Nov 22 04:00:01 web01 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
            "Nov 22 04:00:01 h sshd-session[5]: error: maximum authentication attempts",
            "Dec  1 23:59:59 fe80::1 CRON[0123]: (root) CMD (run-parts)",
            "Jan 31 12:00:00 host app[x[y]: message [with] brackets",
            "Jan 31 12:00:00 host [42]: no app",
            "Jan 31 12:00:00 host app[]: empty pid",
            "Jan 31 12:00:00 host app[1]x: trailing",
            "Jan 31 12:00:00 host app:",
            "Jan 31 12:00:00 host app:\tx",
            "Jan 31 12:00:00 host app: trailing white space \t ",
            "Jan 31 12:00:00 host app:   ",
        ] {
            assert!(same(line), "not taken: {line}");
        }
    }

    #[test]
    fn unusual_shapes_are_left_to_syslog_loose() {
        for line in [
            "<13>Nov 22 00:00:00 srv sshd[1]: x",
            "Nov 22 00:00:00 srv sshd[1]: [meta x=\"1\"] y",
            "Nov 22 00:00:00 srv sshd[1]: - y",
            "Nov 22 00:00:00  srv sshd[1]: x",
            "Nov 22 00:00:00 srv: x",
            "Nov 22 00:00:00 srv sshd x",
            "nov 22 00:00:00 srv sshd[1]: x",
            "Feb 30 00:00:00 srv sshd[1]: x",
            "Nov 22 00:00:00 srv sshd[1]: caf\u{e9}",
            "Nov 22 2026 00:00:00 srv sshd[1]: x",
        ] {
            assert!(parse_common(line).is_none(), "taken: {line}");
        }
    }

    #[test]
    fn the_fixture_logs_read_the_same_both_ways() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures/linux");
        let mut taken = 0;
        for dir in std::fs::read_dir(root).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                taken += text.lines().filter(|l| same(l)).count();
            }
        }
        assert!(taken > 20, "only {taken} fixture lines taken");
    }

    #[test]
    fn remembered_minutes_give_what_the_clock_gives() {
        // Twice through, so the second pass reads remembered minutes.
        for _ in 0..2 {
            for (mo, d) in [
                (1, 1),
                (3, 10),
                (3, 30),
                (10, 27),
                (11, 3),
                (2, 29),
                (2, 30),
                (4, 31),
            ] {
                for h in [0, 1, 2, 3, 23] {
                    for mi in [0, 30, 59] {
                        for s in [0, 1, 30, 59, 60] {
                            assert_eq!(
                                local_time(2024, mo, d, h, mi, s),
                                local_time_uncached(2024, mo, d, h, mi, s),
                                "{mo}-{d} {h}:{mi}:{s}"
                            );
                        }
                    }
                }
            }
        }
    }
}
