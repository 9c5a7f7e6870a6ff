//! Event text written without the formatter: every network event gets a
//! timestamp, two addresses and two ports in its raw line and fields, and
//! `format!`'s argument machinery (and chrono's format items) cost more per
//! event than decoding its packet. Each writer here gives exactly the text
//! of the `Display`/chrono call it replaces (tested against them). TCP flag
//! letters are [`super::packet::tcp::letters`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};

/// Appends `ip` as its `Display` text; IPv4 and most IPv6 addresses
/// written directly (see [`push_ipv6`]).
pub fn push_ip(s: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => push_ipv4(s, v4),
        IpAddr::V6(v6) => push_ipv6(s, v6),
    }
}

/// The texts of recently written addresses, for [`AddrTexts::push`]:
/// every event of a flow writes its two ends, and the same hosts recur
/// from flow to flow, so most addresses are copied from here rather than
/// written digit by digit again. Direct-mapped: an address whose entry
/// another holds replaces it.
#[derive(Debug, Default)]
pub struct AddrTexts {
    /// [`ADDR_TEXTS`] entries once used (empty until the first address).
    entries: Vec<Option<(IpAddr, String)>>,
}

/// Entries of an [`AddrTexts`] (a power of two).
const ADDR_TEXTS: usize = 256;

impl AddrTexts {
    /// Appends `ip` as [`push_ip`] does.
    pub fn push(&mut self, s: &mut String, ip: IpAddr) {
        let bits = match ip {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => {
                let b = u128::from(a);
                (b as u64) ^ ((b >> 64) as u64).rotate_left(29)
            }
        };
        // The top bits of a multiplicative hash pick the entry.
        let at = (bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize & (ADDR_TEXTS - 1);
        if self.entries.is_empty() {
            self.entries = vec![None; ADDR_TEXTS];
        }
        let entry = &mut self.entries[at];
        match entry {
            Some((kept, text)) if *kept == ip => s.push_str(text),
            Some((kept, text)) => {
                *kept = ip;
                text.clear();
                push_ip(text, ip);
                s.push_str(text);
            }
            None => {
                let mut text = String::with_capacity(16);
                push_ip(&mut text, ip);
                s.push_str(&text);
                *entry = Some((ip, text));
            }
        }
    }
}

/// Appends `a` as its `Display` text (`192.0.2.1`).
pub fn push_ipv4(s: &mut String, a: Ipv4Addr) {
    // At most 15 bytes, written into one buffer and appended once.
    let mut buf = [0u8; 15];
    let mut n = 0;
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            buf[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            buf[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + o % 10;
        n += 1;
    }
    // Only ASCII digits and dots were written.
    s.push_str(std::str::from_utf8(&buf[..n]).unwrap_or_default());
}

/// Appends `a` as its `Display` text (RFC 5952: lower-case hex groups,
/// the longest run of two or more zero groups — the first of equal ones
/// — as `::`). IPv4-mapped addresses (`::ffff:a.b.c.d`, which `Display`
/// writes with a dotted quad) go through the formatter.
pub fn push_ipv6(s: &mut String, a: Ipv6Addr) {
    let g = a.segments();
    if a.to_ipv4_mapped().is_some() {
        use std::fmt::Write as _;
        let _ = write!(s, "{a}");
        return;
    }
    // The longest run of zero groups (the first of equal length).
    let (mut best, mut best_len, mut cur, mut cur_len) = (0, 0, 0, 0);
    for (i, &x) in g.iter().enumerate() {
        if x == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                (best, best_len) = (cur, cur_len);
            }
        } else {
            cur_len = 0;
        }
    }
    // At most 39 bytes.
    let mut buf = [0u8; 40];
    let mut n = 0;
    let hex = |groups: &[u16], buf: &mut [u8; 40], n: &mut usize| {
        for (i, &x) in groups.iter().enumerate() {
            if i > 0 {
                buf[*n] = b':';
                *n += 1;
            }
            let mut started = false;
            for shift in [12u32, 8, 4, 0] {
                let d = (x >> shift) & 0xf;
                if d != 0 || started || shift == 0 {
                    buf[*n] = b"0123456789abcdef"[usize::from(d)];
                    *n += 1;
                    started = true;
                }
            }
        }
    };
    if best_len > 1 {
        hex(&g[..best], &mut buf, &mut n);
        buf[n] = b':';
        buf[n + 1] = b':';
        n += 2;
        hex(&g[best + best_len..], &mut buf, &mut n);
    } else {
        hex(&g, &mut buf, &mut n);
    }
    // Only ASCII hex digits and colons were written.
    s.push_str(std::str::from_utf8(&buf[..n]).unwrap_or_default());
}

/// Appends `n` in decimal.
pub fn push_u64(s: &mut String, n: u64) {
    s.push_str(itoa::Buffer::new().format(n));
}

/// `n` in decimal.
pub fn u64_text(n: u64) -> String {
    itoa::Buffer::new().format(n).to_owned()
}

/// Writes `n` as `width` decimal digits (zero-padded, cut to the last
/// `width`) into `buf`.
pub(crate) fn put_digits(buf: &mut [u8], n: u32, width: usize) {
    let mut n = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The proleptic Gregorian (year, month, day) of a day count from
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Appends `t` as `t.to_rfc3339_opts(SecondsFormat::Micros, true)` does
/// (`2026-11-22T10:00:00.123456Z`), the date and time computed from the
/// timestamp rather than through chrono's calendar getters.
pub fn push_rfc3339_micros(s: &mut String, t: DateTime<Utc>) {
    let secs = t.timestamp();
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        s.push_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        return;
    }
    let of_day = secs.rem_euclid(86_400) as u32;
    // A leap second is nanosecond 1_000_000_000 and up of second 59.
    let nanos = t.timestamp_subsec_nanos();
    let (sec, nanos) = if nanos >= 1_000_000_000 {
        (of_day % 60 + 1, nanos - 1_000_000_000)
    } else {
        (of_day % 60, nanos)
    };
    // Written into one buffer and appended once.
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut b[0..4], year as u32, 4);
    put_digits(&mut b[5..7], month, 2);
    put_digits(&mut b[8..10], day, 2);
    put_digits(&mut b[11..13], of_day / 3600, 2);
    put_digits(&mut b[14..16], of_day / 60 % 60, 2);
    put_digits(&mut b[17..19], sec, 2);
    put_digits(&mut b[20..26], nanos / 1000, 6);
    // Only ASCII was written.
    s.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// The date and time of one second as [`push_rfc3339_micros`] writes them
/// (`2026-11-22T10:00:00.`), kept for the next time in the same second:
/// a capture's events come mostly many to a second.
#[derive(Debug, Clone)]
pub struct SecondText {
    /// The second (since the epoch) `text` is of; `None` before the first.
    secs: Option<i64>,
    text: String,
}

impl Default for SecondText {
    fn default() -> Self {
        SecondText {
            secs: None,
            text: String::with_capacity(20),
        }
    }
}

/// [`push_rfc3339_micros`], the date and time of the second taken from
/// `cache` when it holds them (and kept there otherwise).
pub fn push_rfc3339_micros_cached(s: &mut String, t: DateTime<Utc>, cache: &mut SecondText) {
    let secs = t.timestamp();
    let nanos = t.timestamp_subsec_nanos();
    if cache.secs != Some(secs) {
        // Leap seconds are written as second 60 of the minute: not kept.
        if nanos >= 1_000_000_000 {
            push_rfc3339_micros(s, t);
            return;
        }
        cache.text.clear();
        push_rfc3339_micros(&mut cache.text, t);
        // `YYYY-MM-DDTHH:MM:SS.ffffffZ`: kept up to the dot, when the year
        // has four digits (others go through chrono, with a sign).
        if cache.text.len() != 27 {
            s.push_str(&cache.text);
            cache.secs = None;
            return;
        }
        cache.text.truncate(20);
        cache.secs = Some(secs);
    } else if nanos >= 1_000_000_000 {
        push_rfc3339_micros(s, t);
        return;
    }
    s.push_str(&cache.text);
    let mut b = *b"000000Z";
    put_digits(&mut b[..6], nanos / 1000, 6);
    // Only ASCII was written.
    s.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// Appends `x` as `format!("{x:.3}")` does, for the non-negative values
/// below 10^9 whose thousandths are decided (not a half-way case between
/// two of them, where the binary value decides): durations of flows.
/// Other values go through the formatter.
pub fn push_fixed3(s: &mut String, micros: i64) {
    let x = micros as f64 / 1e6;
    // Far from a rounding boundary (whole µs are ≥ 0.5 µs from the
    // half-way points, which are at 500 µs mod 1000, and the division's
    // error is far below that for values under 10^9 s), the text is the
    // µs rounded to ms.
    if (0..1_000_000_000_000_000).contains(&micros) && micros % 1000 != 500 {
        let ms = (micros + 500) / 1000;
        push_u64(s, (ms / 1000) as u64);
        let frac = (ms % 1000) as u32;
        let mut b = *b".000";
        put_digits(&mut b[1..4], frac, 3);
        s.push_str(std::str::from_utf8(&b).unwrap_or_default());
    } else {
        use std::fmt::Write as _;
        let _ = write!(s, "{x:.3}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached second gives what the plain writer (and chrono) give,
    /// over runs of times in one second, jumps, leap seconds and years
    /// outside 0..=9999.
    #[test]
    fn cached_seconds_write_what_the_writer_writes() {
        let mut cache = SecondText::default();
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut secs = 1_795_000_000i64;
        let mut checked = 0;
        for i in 0..50_000 {
            let r = xorshift(&mut seed);
            // Mostly the same second, sometimes the next, sometimes a jump.
            match r % 16 {
                0 => secs += 1,
                1 => secs = (r >> 8) as i64 % 400_000_000_000 - 100_000_000_000,
                2 => secs -= 1,
                _ => {}
            }
            let nanos = match (r >> 4) % 64 {
                0 => 1_000_000_000 + (r >> 20) as u32 % 1_000_000_000,
                1 => 0,
                2 => 999_999_999,
                _ => (r >> 20) as u32 % 1_000_000_000,
            };
            // A leap second exists only as second 59 of a minute.
            let secs = if nanos >= 1_000_000_000 {
                secs - secs.rem_euclid(60) + 59
            } else {
                secs
            };
            let Some(t) = DateTime::from_timestamp(secs, nanos) else {
                continue;
            };
            let mut want = format!("{i}");
            push_rfc3339_micros(&mut want, t);
            let mut got = format!("{i}");
            push_rfc3339_micros_cached(&mut got, t, &mut cache);
            assert_eq!(got, want, "{secs} {nanos}");
            assert_eq!(
                got[format!("{i}").len()..],
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            );
            checked += 1;
        }
        assert!(checked > 45_000, "{checked}");
    }

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

    /// A small deterministic generator for the tests below.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Addresses copied from the recent texts are `Display`'s text, for a
    /// few hosts met again and again and for thousands met once (entries
    /// replaced by colliding addresses), IPv4 and IPv6 alike.
    #[test]
    fn addr_texts_push_display() {
        let mut texts = AddrTexts::default();
        let mut seed = 0x5eed_1234_abcd_0001u64;
        let hosts: Vec<IpAddr> = [
            "192.0.2.1",
            "10.0.0.7",
            "2001:db8::5",
            "::ffff:192.0.2.9",
            "::",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        for i in 0..20_000 {
            let r = xorshift(&mut seed);
            let ip: IpAddr = match r % 4 {
                0 => hosts[(r >> 8) as usize % hosts.len()],
                1 => IpAddr::V4(Ipv4Addr::from((r >> 16) as u32)),
                2 => IpAddr::V6(Ipv6Addr::from(
                    u128::from(r) << 64 | u128::from(xorshift(&mut seed) & 0xffff),
                )),
                _ => IpAddr::V4(Ipv4Addr::new(10, 0, (r >> 8) as u8 % 4, (r >> 16) as u8)),
            };
            let mut s = format!("{i}");
            texts.push(&mut s, ip);
            assert_eq!(s, format!("{i}{ip}"));
        }
    }

    #[test]
    fn push_ipv6_is_display() {
        let mut fixed: Vec<[u16; 8]> = vec![
            [0; 8],
            [0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201],
            [0, 0, 0, 0, 0, 0xffff, 0, 0],
            [0, 0, 0, 0, 0xffff, 0, 0xc000, 0x0201],
            [0, 0, 0, 0, 0, 0xfffe, 0xc000, 0x0201],
            [0, 0, 0, 0, 0, 0, 0, 0xffff],
            [0, 0, 0, 0, 0, 0, 0xc000, 0x0201],
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 5],
            [0x2001, 0xdb8, 0, 1, 0, 0, 0, 1],
            [0x2001, 0xdb8, 0, 0, 1, 0, 0, 1],
            [0x2001, 0, 0, 1, 0, 0, 0, 0],
            [1, 0, 2, 0, 3, 0, 4, 0],
            [0, 1, 0, 0, 0, 0, 0, 0],
            [0xfe80, 0, 0, 0, 0x0202, 0xb3ff, 0xfe1e, 0x8329],
            [0xffff; 8],
            [0x10, 0x100, 0x1000, 0xabcd, 0, 0, 0xf, 0],
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let r = xorshift(&mut seed);
            let mut g = [0u16; 8];
            for (i, x) in g.iter_mut().enumerate() {
                // Mostly zero groups, so that runs of every length occur.
                let bits = (r >> (i * 8)) as u16;
                *x = if bits & 3 == 0 {
                    bits >> 2
                } else if bits & 3 == 1 {
                    (xorshift(&mut seed) as u16) & 0xf
                } else {
                    0
                };
            }
            fixed.push(g);
        }
        for g in fixed {
            let ip = Ipv6Addr::from(g);
            let mut s = String::from("x");
            push_ip(&mut s, ip.into());
            assert_eq!(s, format!("x{ip}"), "{g:x?}");
        }
    }

    #[test]
    fn push_ipv4_is_display() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for _ in 0..20_000 {
            let a = Ipv4Addr::from(xorshift(&mut seed) as u32);
            let mut s = String::new();
            push_ipv4(&mut s, a);
            assert_eq!(s, a.to_string());
        }
    }

    #[test]
    fn fixed3_is_the_formatter() {
        let mut cases: Vec<i64> = vec![
            0,
            1,
            499,
            500,
            501,
            999,
            1000,
            1499,
            1500,
            1_999_499,
            1_999_500,
            1_999_600,
            123_456_789,
            999_999_999_999_999,
            1_000_000_000_000_000,
            -1,
            -1500,
            i64::MAX,
        ];
        let mut seed = 0xdead_beef_cafe_f00du64;
        for _ in 0..50_000 {
            let r = xorshift(&mut seed);
            cases.push((r % 10_000_000) as i64);
            cases.push((r >> 8) as i64 % 1_000_000_000_000_000);
        }
        for us in cases {
            let mut s = String::new();
            push_fixed3(&mut s, us);
            assert_eq!(s, format!("{:.3}", us as f64 / 1e6), "{us}");
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
        // Random times over the years written by hand, and past them.
        let mut seed = 0x0bad_cafe_1234_5678u64;
        for _ in 0..50_000 {
            let r = xorshift(&mut seed);
            let secs =
                (r % 253_402_300_800) as i64 - if r & 1 << 63 != 0 { 62_000_000_000 } else { 0 };
            let t = DateTime::from_timestamp(secs, (r >> 20) as u32 % 1_000_000_000).unwrap();
            let mut s = String::new();
            push_rfc3339_micros(&mut s, t);
            assert_eq!(s, t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        }
        // A leap second.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let mut s = String::new();
        push_rfc3339_micros(&mut s, leap);
        assert_eq!(s, leap.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        // Sub-microsecond digits are cut, as chrono cuts them.
        let t = DateTime::from_timestamp(1_795_000_000, 123_456_789).unwrap();
        let mut s = String::new();
        push_rfc3339_micros(&mut s, t);
        assert_eq!(s, t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    }
}
