//! Per-second rates over the last heartbeat interval, computed from the
//! running totals the pipeline counts. The clock is the caller's (`now`),
//! so the computation is deterministic under test.

use std::time::Instant;

/// The running totals heartbeats report rates of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Events judged.
    pub events: u64,
    /// Alerts produced.
    pub alerts: u64,
    /// Log lines and journal entries read.
    pub lines: u64,
    /// Frames captured.
    pub packets: u64,
}

/// Per-second rates over one interval, rounded to hundredths.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Events judged per second.
    pub events_per_sec: f64,
    /// Alerts produced per second.
    pub alerts_per_sec: f64,
    /// Lines and journal entries read per second.
    pub lines_per_sec: f64,
    /// Frames captured per second.
    pub packets_per_sec: f64,
}

/// Turns successive samples of [`Totals`] into [`Rates`] over the time
/// between them.
#[derive(Debug, Clone)]
pub struct RateMeter {
    at: Instant,
    totals: Totals,
}

impl RateMeter {
    /// A meter whose first interval starts at `start` with all totals zero.
    pub fn new(start: Instant) -> Self {
        RateMeter {
            at: start,
            totals: Totals::default(),
        }
    }

    /// The rates since the previous sample (or the start). An interval of
    /// no time gives zeros and does not move the meter; totals that went
    /// down (a counter reset) count as no growth.
    pub fn sample(&mut self, now: Instant, totals: Totals) -> Rates {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        if secs <= 0.0 {
            return Rates::default();
        }
        let per =
            |new: u64, old: u64| (new.saturating_sub(old) as f64 / secs * 100.0).round() / 100.0;
        let rates = Rates {
            events_per_sec: per(totals.events, self.totals.events),
            alerts_per_sec: per(totals.alerts, self.totals.alerts),
            lines_per_sec: per(totals.lines, self.totals.lines),
            packets_per_sec: per(totals.packets, self.totals.packets),
        };
        self.at = now;
        self.totals = totals;
        rates
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn totals(events: u64, alerts: u64, lines: u64, packets: u64) -> Totals {
        Totals {
            events,
            alerts,
            lines,
            packets,
        }
    }

    #[test]
    fn rates_are_growth_over_the_time_since_the_last_sample() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        // First interval: from the start, totals from zero.
        let r = m.sample(t0 + Duration::from_secs(2), totals(100, 10, 120, 0));
        assert_eq!(
            r,
            Rates {
                events_per_sec: 50.0,
                alerts_per_sec: 5.0,
                lines_per_sec: 60.0,
                packets_per_sec: 0.0
            }
        );
        // Second: only the growth since the first sample counts.
        let r = m.sample(t0 + Duration::from_secs(6), totals(300, 10, 320, 8));
        assert_eq!(r.events_per_sec, 50.0);
        assert_eq!(r.alerts_per_sec, 0.0);
        assert_eq!(r.lines_per_sec, 50.0);
        assert_eq!(r.packets_per_sec, 2.0);
        // Uneven intervals and rounding to hundredths.
        let r = m.sample(t0 + Duration::from_millis(9_000), totals(301, 10, 320, 8));
        assert_eq!(r.events_per_sec, 0.33);
    }

    #[test]
    fn no_time_or_a_reset_counter_gives_zero_not_a_spike() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0);
        assert_eq!(m.sample(t0, totals(1_000, 0, 0, 0)), Rates::default());
        // The empty interval did not move the meter.
        let r = m.sample(t0 + Duration::from_secs(10), totals(1_000, 0, 0, 0));
        assert_eq!(r.events_per_sec, 100.0);
        let r = m.sample(t0 + Duration::from_secs(20), totals(10, 0, 0, 0));
        assert_eq!(r.events_per_sec, 0.0);
        let r = m.sample(t0 + Duration::from_secs(21), totals(15, 0, 0, 0));
        assert_eq!(r.events_per_sec, 5.0);
    }
}
