//! RFC 3164 and RFC 5424 syslog lines, through `syslog_loose`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Local, Utc};
use syslog_loose::{IncompleteDate, ProcId, Variant};

use crate::event::Event;

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

/// Decodes a syslog line into an event with `hostname`, `program`, `pid`,
/// `facility`, `syslog_severity` and `message` fields; `None` when the line
/// is not syslog.
pub(super) fn decode(line: &str, host: &str, origin: String) -> Option<Event> {
    // RFC 5424 always starts with "<PRI>VERSION "; anything else is 3164
    // (skipping the failed 5424 attempt saves most of the parse time).
    let variant = match line.as_bytes() {
        [b'<', ..] => Variant::Either,
        _ => Variant::RFC3164,
    };
    let msg = syslog_loose::parse_message_with_year_exact(line, resolve_year, variant).ok()?;
    let time: DateTime<Utc> = msg.timestamp?.with_timezone(&Utc);
    let mut event = Event::new(time, host, origin);
    event.kind = crate::event::EventKind::Syslog;
    event.fields.reserve(12);
    if let Some(h) = msg.hostname {
        event.push("hostname", h);
    }
    if let Some(app) = msg.appname {
        event.push("program", app);
    }
    match msg.procid {
        Some(ProcId::PID(pid)) => event.push("pid", pid.to_string()),
        Some(ProcId::Name(name)) => event.push("pid", name),
        None => {}
    }
    if let Some(f) = msg.facility {
        event.push("facility", f.as_str());
    }
    if let Some(s) = msg.severity {
        event.push("syslog_severity", s.as_str());
    }
    event.push("message", msg.msg);
    event.raw = line.to_string();
    Some(event)
}
