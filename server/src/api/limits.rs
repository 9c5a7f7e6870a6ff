//! Request limits beyond the body size: alerts per batch and a token
//! bucket per agent.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most alerts one ingestion request may carry (the agent sends at most
/// `ward_agent::wire::MAX_BATCH_ALERTS`); more is a 413.
pub const MAX_INGEST_ALERTS: usize = 5_000;

/// The API's limits.
#[derive(Debug)]
pub struct Limits {
    /// Most alerts per ingestion batch.
    pub max_batch_alerts: usize,
    /// Requests per agent (alerts and heartbeats).
    pub agent_rate: RateLimiter,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_alerts: MAX_INGEST_ALERTS,
            agent_rate: RateLimiter::new(50.0, 500.0),
        }
    }
}

/// A token bucket per key: `rate` requests per second on average, bursts
/// up to `burst`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Keys kept before idle full buckets are forgotten.
const MAX_KEYS: usize = 100_000;

impl RateLimiter {
    /// A limiter of `rate` per second with bursts of `burst`.
    pub fn new(rate: f64, burst: f64) -> Self {
        RateLimiter {
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(wait)` when the bucket is empty.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_per_key() {
        let l = RateLimiter::new(1.0, 3.0);
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
        }
        let wait = l.check("a").unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        assert!(l.check("b").is_ok(), "buckets are per agent");
    }
}
