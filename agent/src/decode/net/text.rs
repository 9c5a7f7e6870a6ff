//! Event text written without the formatter: every network event gets a
//! timestamp, two addresses and two ports in its raw line and fields, and
//! `format!`'s argument machinery (and chrono's format items) cost more per
//! event than decoding its packet. Each writer here gives exactly the text
//! of the `Display`/chrono call it replaces (tested against them). TCP flag
//! letters are [`super::packet::tcp::letters`].

use std::net::IpAddr;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Appends `ip` as its `Display` text; IPv4 written directly.
pub fn push_ip(s: &mut String, ip: IpAddr) {
    let IpAddr::V4(v4) = ip else {
        use std::fmt::Write as _;
        let _ = write!(s, "{ip}");
        return;
    };
    for (i, o) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        push_u64(s, u64::from(o));
    }
}

/// Appends `n` in decimal.
pub fn push_u64(s: &mut String, n: u64) {
    s.push_str(itoa::Buffer::new().format(n));
}

/// `n` in decimal.
pub fn u64_text(n: u64) -> String {
    itoa::Buffer::new().format(n).to_owned()
}

fn push_digits(s: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut n = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // Only ASCII digits were written.
    s.push_str(std::str::from_utf8(&buf[..width]).unwrap_or_default());
}

/// Appends `t` as `t.to_rfc3339_opts(SecondsFormat::Micros, true)` does
/// (`2026-11-22T10:00:00.123456Z`).
pub fn push_rfc3339_micros(s: &mut String, t: DateTime<Utc>) {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        s.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        return;
    }
    push_digits(s, year as u32, 4);
    s.push('-');
    push_digits(s, t.month(), 2);
    s.push('-');
    push_digits(s, t.day(), 2);
    s.push('T');
    push_digits(s, t.hour(), 2);
    s.push(':');
    push_digits(s, t.minute(), 2);
    s.push(':');
    // A leap second is nanosecond 1_000_000_000 and up of second 59.
    let nanos = t.nanosecond();
    let (sec, nanos) = if nanos >= 1_000_000_000 {
        (t.second() + 1, nanos - 1_000_000_000)
    } else {
        (t.second(), nanos)
    };
    push_digits(s, sec, 2);
    s.push('.');
    push_digits(s, nanos / 1000, 6);
    s.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_ip_is_display() {
        for a in [
            "0.0.0.0",
            "10.9.0.1",
            "192.168.100.255",
            "255.255.255.255",
            "1.20.103.7",
            "::1",
            "2001:db8::5",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            assert_eq!(s, format!("x{ip}"));
        }
    }

    #[test]
    fn timestamps_are_chrono_rfc3339() {
        for us in [
            0i64,
            1,
            999_999,
            1_795_000_000_123_456,
            1_700_000_000_000_000,
            951_782_400_000_001,     // 2000-02-29
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
        ] {
            let t = DateTime::from_timestamp_micros(us).unwrap();
            let mut s = String::new();
            push_rfc3339_micros(&mut s, t);
            assert_eq!(s, t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
        // Sub-microsecond digits are cut, as chrono cuts them.
        let t = DateTime::from_timestamp(1_795_000_000, 123_456_789).unwrap();
        let mut s = String::new();
        push_rfc3339_micros(&mut s, t);
        assert_eq!(s, t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
}
