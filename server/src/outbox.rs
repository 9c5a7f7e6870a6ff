//! What the coordinator's two outbox senders share — webhooks
//! (`crate::webhook`) and forwarding to an upstream coordinator
//! (`crate::federation`): the retry schedule, the HTTP client and error
//! messages that name every cause.

use std::time::Duration;

use rand::Rng;

/// Per-request limit of outbox senders.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Wait before attempt `attempts + 1`: `base` doubling up to `cap`, ±20%
/// jitter so senders that failed together do not retry together.
pub fn backoff(attempts: i64, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32 << attempts.clamp(0, 20);
    let wait = base.saturating_mul(factor).min(cap);
    wait.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// An HTTP client for an outbox sender named `purpose` (in the
/// User-Agent): no redirects, short timeouts.
pub fn client_builder(purpose: &str) -> reqwest::ClientBuilder {
    ward_agent::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!(
            "ward-server/{} {purpose}",
            env!("CARGO_PKG_VERSION")
        ))
}

/// An error with every cause it carries (`error sending request: connection
/// refused`), for logs and the senders' status.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// `at + wait` as the store's time text.
pub fn after(at: chrono::DateTime<chrono::Utc>, wait: Duration) -> String {
    crate::store::ts(at + chrono::Duration::from_std(wait).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(3600));
        let a = backoff(0, base, cap).as_secs_f64();
        assert!((4.0..=6.0).contains(&a), "{a}");
        let b = backoff(3, base, cap).as_secs_f64();
        assert!((32.0..=48.0).contains(&b), "{b}");
        assert!(backoff(40, base, cap).as_secs_f64() <= 3600.0 * 1.2);
        assert!(backoff(-3, base, cap).as_secs_f64() <= 6.0);
    }
}
