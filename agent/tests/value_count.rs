//! `value_count` correlations count distinct values over a sliding window:
//! repeats count once, values that leave the window stop counting, and a
//! fired window starts again. (The engine keeps these counts incrementally,
//! see `vendor/README.md`; this pins the behaviour against the shipped
//! vertical port scan rule: 20 distinct ports of one host from one source
//! within 60 s.)

use chrono::{DateTime, Duration, TimeZone, Utc};
use ward_agent::engine::{Detector, RulePack, SigmaDetector};
use ward_agent::event::{Event, EventKind};

const SCAN: &str = "Vertical port scan";

fn syn(t: DateTime<Utc>, i: u32, dst_port: u16) -> Event {
    let mut e = Event::new(t, "gw01", format!("test:{i}.conn"));
    e.kind = EventKind::Network;
    for (k, v) in [
        ("event_type", "conn_attempt"),
        ("proto", "tcp"),
        ("src_ip", "198.18.0.9"),
        ("src_port", "40000"),
        ("dst_ip", "10.1.1.1"),
        ("tcp_flags", "S"),
    ] {
        e.push(k, v);
    }
    e.push("dst_port", dst_port.to_string());
    e
}

/// Judges SYNs (seconds from the start, destination port) and returns how
/// many vertical scan alerts each one raised.
fn scans(syns: &[(i64, u16)]) -> Vec<usize> {
    let pack = RulePack::shipped().expect("shipped pack loads");
    let mut d = SigmaDetector::new(&pack).unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    syns.iter()
        .enumerate()
        .map(|(i, &(s, port))| {
            let e = syn(start + Duration::seconds(s), i as u32, port);
            d.process(&e).iter().filter(|a| a.title == SCAN).count()
        })
        .collect()
}

#[test]
fn repeated_values_count_once() {
    // 300 SYNs to port 22, then 18 more distinct ports: 19 distinct, no scan;
    // the 20th distinct port fires.
    let mut syns: Vec<(i64, u16)> = (0..300).map(|i| (i / 10, 22)).collect();
    syns.extend((0..18).map(|p| (31, 1000 + p)));
    let fired = scans(&syns);
    assert_eq!(
        fired.iter().sum::<usize>(),
        0,
        "19 distinct ports are no scan"
    );
    syns.push((32, 2000));
    let fired = scans(&syns);
    assert_eq!(fired.last(), Some(&1), "the 20th distinct port fires");
    assert_eq!(fired.iter().sum::<usize>(), 1);
}

#[test]
fn values_leaving_the_window_stop_counting() {
    // Ten ports, then ten other ports more than 60 s later: never 20 at once.
    let mut syns: Vec<(i64, u16)> = (0..10).map(|p| (p, 100 + p as u16)).collect();
    syns.extend((0..10).map(|p| (80 + p, 200 + p as u16)));
    assert_eq!(scans(&syns).iter().sum::<usize>(), 0);
    // The same twenty within the window are a scan.
    let syns: Vec<(i64, u16)> = (0..20).map(|p| (p, 100 + p as u16)).collect();
    assert_eq!(scans(&syns).iter().sum::<usize>(), 1);
}

#[test]
fn a_fired_window_starts_again() {
    // 20 distinct ports fire; the same 20 again right after count from zero
    // and fire once more at their 20th, not at every SYN.
    let mut syns: Vec<(i64, u16)> = (0..20).map(|p| (p, 100 + p as u16)).collect();
    syns.extend((0..20).map(|p| (20 + p, 100 + p as u16)));
    let fired = scans(&syns);
    assert_eq!(fired[19], 1);
    assert_eq!(fired[39], 1);
    assert_eq!(fired.iter().sum::<usize>(), 2);
}
