//! Beaconing: new connections from one source to one destination and port
//! at regular intervals (malware checking in with its C2).
//!
//! Per (source, destination, port, protocol) pair the start times of the
//! last [`HISTORY`] flows are kept. When at least [`MIN_CONNECTIONS`] are
//! held, their intervals average at least [`MIN_INTERVAL_US`] and their
//! coefficient of variation (stddev / mean) is at most [`MAX_JITTER`], a
//! beacon is reported and the pair's history starts over. At most
//! [`MAX_PAIRS`] pairs are tracked; when full, the table is cleared
//! (counted in `Beacons::cleared`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::flow::FlowKey;
use super::packet::Proto;

/// Flow starts kept per pair.
pub const HISTORY: usize = 8;
/// Flows needed before a pair can be a beacon.
pub const MIN_CONNECTIONS: usize = 6;
/// Shortest mean interval that counts (shorter is a burst, not a beacon), µs.
pub const MIN_INTERVAL_US: f64 = 5_000_000.0;
/// Largest coefficient of variation of the intervals.
pub const MAX_JITTER: f64 = 0.1;
/// Most pairs tracked.
pub const MAX_PAIRS: usize = 50_000;

/// A detected beacon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beacon {
    /// Connections in the series.
    pub count: usize,
    /// Mean interval, seconds.
    pub mean_s: f64,
    /// stddev / mean of the intervals.
    pub jitter: f64,
}

/// Flow start times per pair.
#[derive(Debug, Default)]
pub struct Beacons {
    pairs: HashMap<(IpAddr, IpAddr, u16, Proto), VecDeque<i64>, foldhash::fast::RandomState>,
    /// Times the table was cleared because it was full.
    pub cleared: u64,
}

impl Beacons {
    /// Records a new flow starting at `ts_us`; reports a beacon when the
    /// pair's recent flows are regular.
    pub fn connection(&mut self, key: &FlowKey, ts_us: i64) -> Option<Beacon> {
        let pair = (key.src, key.dst, key.dst_port, key.proto);
        if !self.pairs.contains_key(&pair) && self.pairs.len() >= MAX_PAIRS {
            self.pairs.clear();
            self.cleared += 1;
        }
        let starts = self.pairs.entry(pair).or_default();
        if starts.len() == HISTORY {
            starts.pop_front();
        }
        starts.push_back(ts_us);
        if starts.len() < MIN_CONNECTIONS {
            return None;
        }
        let intervals: Vec<f64> = starts
            .iter()
            .zip(starts.iter().skip(1))
            .map(|(a, b)| (b - a) as f64)
            .collect();
        let n = intervals.len() as f64;
        let mean = intervals.iter().sum::<f64>() / n;
        if mean < MIN_INTERVAL_US {
            return None;
        }
        let var = intervals.iter().map(|i| (i - mean).powi(2)).sum::<f64>() / n;
        let jitter = var.sqrt() / mean;
        if jitter > MAX_JITTER {
            return None;
        }
        let count = starts.len();
        starts.clear();
        Some(Beacon {
            count,
            mean_s: mean / 1e6,
            jitter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FlowKey {
        FlowKey {
            src: Ipv4Addr::new(10, 0, 0, 5).into(),
            dst: Ipv4Addr::new(198, 51, 100, 9).into(),
            src_port: 50000,
            dst_port: 443,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn regular_connections_are_a_beacon_irregular_are_not() {
        let mut b = Beacons::default();
        let mut found = None;
        for i in 0..6 {
            // 60 s ± 1 s
            let t = i * 60_000_000 + (i % 2) * 1_000_000;
            found = b.connection(&key(), t);
        }
        let found = found.expect("a beacon after 6 regular connections");
        assert_eq!(found.count, 6);
        assert!((found.mean_s - 60.0).abs() < 1.0);

        let mut b = Beacons::default();
        let times = [0, 10, 200, 230, 700, 705, 1500, 1600];
        for t in times {
            assert_eq!(b.connection(&key(), t * 1_000_000), None);
        }
        // A burst is not a beacon.
        let mut b = Beacons::default();
        for i in 0..8 {
            assert_eq!(b.connection(&key(), i * 100_000), None);
        }
    }
}
