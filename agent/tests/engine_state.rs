//! Correlation state is bounded: a flood of distinct attackers cannot grow
//! it without end, and what the cap drops is counted, never silent.

use chrono::{Duration, TimeZone, Utc};
use ward_agent::decode::{LineDecoder, LogFormat};
use ward_agent::engine::{Detector, RulePack, SigmaDetector};

/// One failed SSH password from each of `n` distinct addresses, a second
/// apart, then a real brute force from one more address.
fn judge_flood(detector: &mut SigmaDetector, n: u32) -> Vec<String> {
    let decoder = LineDecoder::new(LogFormat::Syslog, "web01");
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap();
    let mut fired = Vec::new();
    let mut judge = |line: String, i: u32| {
        let event = decoder
            .decode(&line, format!("flood:{i}"))
            .expect("decodes");
        for alert in detector.process(&event) {
            fired.push(alert.entities.get("src_ip").cloned().unwrap_or_default());
        }
    };
    for i in 0..n {
        let t = start + Duration::milliseconds(i64::from(i) * 100);
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let line = format!(
            "{} web01 sshd[4242]: Failed password for root from {ip} port 50000 ssh2",
            t.format("%b %e %H:%M:%S")
        );
        judge(line, i);
    }
    for k in 0..12u32 {
        let t =
            start + Duration::milliseconds(i64::from(n) * 100) + Duration::seconds(i64::from(k));
        let line = format!(
            "{} web01 sshd[4243]: Failed password for admin from 203.0.113.7 port 5{k:04} ssh2",
            t.format("%b %e %H:%M:%S")
        );
        judge(line, n + k);
    }
    fired
}

#[test]
fn distinct_key_flood_is_capped_and_counted() {
    let pack = RulePack::shipped().expect("shipped pack loads");
    let cap = 500;
    let mut detector = SigmaDetector::with_state_cap(&pack, cap).unwrap();
    let fired = judge_flood(&mut detector, 3_000);
    assert!(
        detector.state_entries() <= cap + 10,
        "state stays near its cap: {} entries",
        detector.state_entries()
    );
    assert!(
        detector.state_evicted() >= 2_000,
        "groups dropped at the cap are counted: {}",
        detector.state_evicted()
    );
    // The brute force after the flood is still detected.
    assert!(
        fired.iter().any(|ip| ip == "203.0.113.7"),
        "brute force after the flood fires: {fired:?}"
    );
}

#[test]
fn no_eviction_below_the_cap() {
    let pack = RulePack::shipped().expect("shipped pack loads");
    let mut detector = SigmaDetector::with_state_cap(&pack, 100_000).unwrap();
    let fired = judge_flood(&mut detector, 300);
    assert_eq!(detector.state_evicted(), 0);
    assert!(fired.iter().any(|ip| ip == "203.0.113.7"));
}
