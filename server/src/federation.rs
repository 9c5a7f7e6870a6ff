//! Forwarding to an upstream (national) coordinator: the provincial end.
//!
//! The store queues a changed incident in `federation_outbox` in the
//! transaction of the change (`store/federation.rs`). [`run`] claims due
//! incidents with a lease, POSTs their current snapshots — the incident's
//! state and attacker identities, never its alerts — in batches to
//! `POST /api/v1/federation/incidents` on the upstream with the province's
//! credential, and retries failures with backoff for as long as it takes:
//! the outbox is in the database, so restarts of either side lose nothing.
//! The upstream ignores revisions it has, so a batch sent twice (a crash
//! after sending, a lease running out) changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use crate::model::{ForwardAck, ForwardBatch, IncidentSnapshot};
use crate::outbox;
use crate::store::{Store, StoreError, ts};

/// How often the outbox is polled.
pub const POLL: Duration = Duration::from_secs(1);
/// How long claimed incidents are reserved for one forwarder.
const LEASE: Duration = Duration::from_secs(60);
/// Snapshots per request.
pub const BATCH: i64 = 100;
/// First retry delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The ingest endpoint under the upstream's base URL.
pub const INGEST_PATH: &str = "/api/v1/federation/incidents";

/// Where and as whom this coordinator forwards.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The national coordinator's base URL (`https://national:8443`).
    pub url: String,
    /// The province credential `ward provinces add` printed there.
    pub token: String,
    /// A PEM certificate to trust for the upstream's TLS (its
    /// `DATA/tls/cert.pem`), besides the system roots.
    pub ca: Option<PathBuf>,
}

impl Upstream {
    /// Checks the URL and token (a clear error at start, not a failing
    /// link later).
    pub fn check(&self) -> anyhow::Result<()> {
        let url = reqwest::Url::parse(&self.url)
            .with_context(|| format!("--upstream '{}' is not a URL", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            anyhow::bail!(
                "--upstream '{}' must be http:// or https:// with a host",
                self.url
            );
        }
        if self.token.trim().is_empty() {
            anyhow::bail!("--upstream needs --upstream-token (the province credential)");
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

/// The forwarder's HTTP client, trusting `ca` besides the system roots.
pub fn client(ca: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = outbox::client_builder("federation");
    if let Some(path) = ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading --upstream-ca {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        if certs.is_empty() {
            anyhow::bail!("{} holds no PEM certificate", path.display());
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .context("building the federation HTTP client")
}

/// Forwards until the process ends.
pub async fn run(store: Store, upstream: Upstream, client: reqwest::Client) {
    tracing::info!(upstream = %upstream.base(), "forwarding incidents to the upstream coordinator");
    loop {
        match forward_due(&store, &client, &upstream, Utc::now()).await {
            // More may be waiting: go on at once.
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "federation outbox"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why a request did not get a snapshot accepted.
enum Failure {
    /// The upstream refused the snapshots themselves (400, 413, 422): worth
    /// sending one by one to find the one it refuses.
    Refused(String),
    /// Anything else (unreachable, 5xx, 401/403, 429): the whole batch waits.
    Other(String),
}

/// Forwards every incident due at `now`; returns how many were claimed.
pub async fn forward_due(
    store: &Store,
    client: &reqwest::Client,
    upstream: &Upstream,
    now: chrono::DateTime<Utc>,
) -> Result<usize, StoreError> {
    let lease = outbox::after(now, LEASE);
    let due = store.claim_due_forwards(&ts(now), &lease, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut snapshots = Vec::with_capacity(due.len());
    for (id, _) in &due {
        snapshots.push(store.incident_snapshot(*id).await?);
    }
    let outcome = send(client, upstream, &snapshots).await;
    let outcomes: Vec<(Vec<IncidentSnapshot>, Result<ForwardAck, String>)> = match outcome {
        Ok(ack) => vec![(snapshots, Ok(ack))],
        Err(Failure::Refused(_)) if snapshots.len() > 1 => {
            // One bad snapshot must not hold the others back.
            let mut each = Vec::with_capacity(snapshots.len());
            for s in snapshots {
                let r = send(client, upstream, std::slice::from_ref(&s)).await;
                each.push((vec![s], r.map_err(Failure::into_message)));
            }
            each
        }
        Err(f) => vec![(snapshots, Err(f.into_message()))],
    };
    let at = now.max(Utc::now());
    for (sent, result) in outcomes {
        match result {
            Ok(ack) => {
                tracing::info!(
                    incidents = sent.len(),
                    applied = ack.applied,
                    ignored = ack.ignored,
                    "forwarded to the upstream"
                );
                let done: Vec<(i64, i64)> = sent.iter().map(|s| (s.id, s.revision)).collect();
                store.record_forwarded(&done, &ts(at)).await?;
            }
            Err(e) => {
                tracing::warn!(incidents = sent.len(), error = %e, "forwarding failed; will retry");
                for s in &sent {
                    let attempts = due
                        .iter()
                        .find(|(id, _)| *id == s.id)
                        .map_or(0, |(_, a)| *a);
                    let retry = outbox::after(at, backoff(attempts));
                    store
                        .record_forward_failure(s.id, &e, &ts(at), &retry)
                        .await?;
                }
            }
        }
    }
    Ok(due.len())
}

impl Failure {
    fn into_message(self) -> String {
        match self {
            Failure::Refused(m) | Failure::Other(m) => m,
        }
    }
}

/// Wait before attempt `attempts + 1`: a second doubling to five minutes.
pub fn backoff(attempts: i64) -> Duration {
    outbox::backoff(attempts, FIRST_BACKOFF, MAX_BACKOFF)
}

async fn send(
    client: &reqwest::Client,
    upstream: &Upstream,
    snapshots: &[IncidentSnapshot],
) -> Result<ForwardAck, Failure> {
    let body = ForwardBatch {
        incidents: snapshots.to_vec(),
    };
    let resp = client
        .post(format!("{}{INGEST_PATH}", upstream.base()))
        .bearer_auth(upstream.token.trim())
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            Failure::Other(format!(
                "cannot reach {}: {}",
                upstream.base(),
                outbox::error_chain(&e)
            ))
        })?;
    let status = resp.status();
    if status.is_success() {
        return resp.json::<ForwardAck>().await.map_err(|e| {
            Failure::Other(format!(
                "the upstream's answer is not a forward acknowledgement: {e}"
            ))
        });
    }
    let text = resp.text().await.unwrap_or_default();
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let msg = format!("the upstream answered HTTP {}: {reason}", status.as_u16());
    Err(match status.as_u16() {
        400 | 413 | 422 => Failure::Refused(msg),
        _ => Failure::Other(msg),
    })
}
