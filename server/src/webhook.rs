//! Sends queued webhook deliveries: a signed JSON POST per delivery, retried
//! with backoff until the receiver answers 2xx or [`MAX_ATTEMPTS`] are spent.
//!
//! Receivers check `X-Ward-Signature: sha256=<hex>`, the HMAC-SHA256 with the
//! webhook's secret of `<X-Ward-Timestamp>.<body>`, and may refuse old
//! timestamps to stop replays. `X-Ward-Delivery` is stable across retries,
//! so a receiver can drop repeats.

use std::time::Duration;

use chrono::Utc;

use crate::outbox;
use crate::store::{DueDelivery, MAX_ATTEMPTS, Store, ts};

/// How often the outbox is polled.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a claimed delivery is reserved for its sender.
const LEASE: Duration = Duration::from_secs(60);
/// Deliveries claimed per poll.
const BATCH: i64 = 32;

/// The `X-Ward-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body.as_bytes());
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// Wait before attempt `attempts + 1`: 5 s doubling to an hour, ±20% jitter.
pub fn backoff(attempts: i64) -> Duration {
    outbox::backoff(attempts, Duration::from_secs(5), Duration::from_secs(3600))
}

/// The HTTP client deliveries go through: no redirects, short timeouts.
pub fn client() -> reqwest::Result<reqwest::Client> {
    outbox::client_builder("webhook").build()
}

/// Runs until the process ends, sending what is due.
pub async fn run(store: Store) {
    let client = match client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: cannot build the HTTP client");
            return;
        }
    };
    loop {
        if let Err(e) = send_due(&store, &client, Utc::now()).await {
            tracing::warn!(error = %e, "webhook outbox");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Sends every delivery due at `now`; returns how many were attempted.
pub async fn send_due(
    store: &Store,
    client: &reqwest::Client,
    now: chrono::DateTime<Utc>,
) -> Result<usize, crate::store::StoreError> {
    let lease = ts(now + chrono::Duration::from_std(LEASE).unwrap_or_default());
    let due = store.claim_due_deliveries(&ts(now), &lease, BATCH).await?;
    let n = due.len();
    for d in due {
        let outcome = send(client, &d).await;
        let at = now.max(Utc::now());
        let (status, error) = match outcome {
            Ok(s) if (200..300).contains(&s) => (Some(s), None),
            Ok(s) => (Some(s), Some(format!("the receiver answered HTTP {s}"))),
            Err(e) => (None, Some(e)),
        };
        let retry = error.as_ref().and_then(|_| {
            (d.attempts + 1 < MAX_ATTEMPTS).then(|| outbox::after(at, backoff(d.attempts)))
        });
        match &error {
            None => tracing::info!(delivery = d.id, event = %d.event, "webhook delivered"),
            Some(e) if retry.is_some() => {
                tracing::warn!(delivery = d.id, url = %d.url, error = %e, "webhook failed; will retry")
            }
            Some(e) => tracing::error!(
                delivery = d.id, url = %d.url, error = %e, attempts = MAX_ATTEMPTS,
                "webhook given up"
            ),
        }
        store
            .record_delivery(d.id, &ts(at), status, error.as_deref(), retry.as_deref())
            .await?;
    }
    Ok(n)
}

async fn send(client: &reqwest::Client, d: &DueDelivery) -> Result<u16, String> {
    let timestamp = Utc::now().timestamp();
    let resp = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-ward-event", &d.event)
        .header("x-ward-delivery", d.id.to_string())
        .header("x-ward-timestamp", timestamp.to_string())
        .header("x-ward-signature", signature(&d.secret, timestamp, &d.body))
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| outbox::error_chain(&e))?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"s3cret");
        let want = ring::hmac::sign(&key, b"1700000000.{\"a\":1}");
        assert_eq!(
            signature("s3cret", 1_700_000_000, "{\"a\":1}"),
            format!("sha256={}", hex::encode(want.as_ref()))
        );
        assert_ne!(signature("s3cret", 1, "x"), signature("s3cret", 2, "x"));
        assert_ne!(signature("a", 1, "x"), signature("b", 1, "x"));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let a = backoff(0).as_secs_f64();
        assert!((4.0..=6.0).contains(&a), "{a}");
        let b = backoff(3).as_secs_f64();
        assert!((32.0..=48.0).contains(&b), "{b}");
        assert!(backoff(40).as_secs_f64() <= 3600.0 * 1.2);
    }
}
