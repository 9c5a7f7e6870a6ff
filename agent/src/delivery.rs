//! The uplink task: drains the [`Spool`] in batches to the coordinator and
//! deletes entries only once the coordinator acknowledged them.
//!
//! Failures back off exponentially with jitter (200 ms doubling to 60 s).
//! Rejected credentials (401/403) end the task, and the agent, with an
//! error: only re-enrollment helps. A batch the coordinator refuses as
//! invalid (a 4xx other than 401/403/429) is split in halves until the
//! refused entries are isolated: the good ones are delivered, and each
//! refused one becomes a `rejected` gap record carrying the coordinator's
//! message, spooled (fsync) before the entry is deleted, so one bad entry
//! neither blocks the queue nor disappears silently.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, error, warn};

use crate::spool::{Spool, SpoolItem};
use crate::uplink::{Uplink, UplinkError};
use crate::wire::{
    AlertBatch, GAP_REJECTED, Gap, MAX_BATCH_ALERTS, MAX_BATCH_GAPS, MAX_BATCH_PACKET_BYTES,
    SpoolEntryRef,
};

/// First retry delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The delay before the next attempt (75%–125% of the current step),
    /// doubling the step up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let d = jitter(self.next);
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d.min(BACKOFF_MAX)
    }

    /// Jumps to the longest step.
    pub fn max_out(&mut self) {
        self.next = BACKOFF_MAX;
    }

    /// Back to the first step after a success.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Spreads retries of many agents: 75%–125% of `d`.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let mix = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54; // 0..1023
    d.mul_f64(0.75 + (mix % 1000) as f64 / 2000.0)
}

/// Counters of the uplink task.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Batches (and halves of them) the coordinator refused as invalid.
    pub rejected: AtomicU64,
    /// Alerts acknowledged.
    pub delivered: AtomicU64,
}

/// Locks the spool; a panic elsewhere while holding it leaves the data on
/// disk intact, so the lock is taken over.
pub fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drains the spool: wakes on `wake` (new entries) or every second. Returns
/// only when the coordinator rejects the agent's credentials (retrying
/// cannot help; the entries stay in the spool for after re-enrollment).
pub async fn run(
    spool: Arc<Mutex<Spool>>,
    uplink: Uplink,
    wake: Arc<Notify>,
    stats: Arc<DeliveryStats>,
) -> UplinkError {
    let mut backoff = Backoff::default();
    loop {
        let batch = tokio::task::block_in_place(|| {
            lock(&spool).next_batch(MAX_BATCH_ALERTS, MAX_BATCH_PACKET_BYTES, MAX_BATCH_GAPS)
        });
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "cannot read the spool; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        match deliver(&spool, &uplink, batch, &stats).await {
            Ok(()) => backoff.reset(),
            Err(e @ UplinkError::Unauthorized(_)) => return e,
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "could not deliver alerts; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Sends `batch`; on a refusal as invalid, splits it in halves until the
/// refused entries are isolated and turns each into a `rejected` gap. Every
/// entry is acknowledged (deleted) or released before returning; an error
/// means a transient failure (or rejected credentials) left some released.
async fn deliver(
    spool: &Mutex<Spool>,
    uplink: &Uplink,
    batch: Vec<(u64, SpoolItem)>,
    stats: &DeliveryStats,
) -> Result<(), UplinkError> {
    let mut pending = vec![batch];
    while let Some(part) = pending.pop() {
        let seqs: Vec<u64> = part.iter().map(|(s, _)| *s).collect();
        let body = to_batch(&part);
        match uplink.send_alerts(&body).await {
            Ok(ack) => {
                debug!(
                    accepted = ack.accepted,
                    duplicates = ack.duplicates,
                    gaps = ack.gaps_accepted,
                    "alerts delivered"
                );
                stats
                    .delivered
                    .fetch_add(body.alerts.len() as u64, Ordering::Relaxed);
                if let Err(e) = tokio::task::block_in_place(|| lock(spool).ack(&seqs)) {
                    // The coordinator has them; a re-send is deduplicated.
                    error!(error = %e, "cannot delete delivered entries from the spool");
                    release_all(spool, &seqs, &pending);
                    return Err(UplinkError::Unreachable(format!("spool: {e}")));
                }
            }
            Err(UplinkError::Rejected { status, message }) if is_refusal(status) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                if part.len() > 1 {
                    debug!(entries = part.len(), %status, "coordinator refused a batch; splitting it");
                    let mut left = part;
                    let right = left.split_off(left.len() / 2);
                    pending.push(right);
                    pending.push(left);
                    continue;
                }
                let (seq, item) = &part[0];
                if let Err(e) =
                    tokio::task::block_in_place(|| record_refusal(spool, *seq, item, &message))
                {
                    error!(error = %e, "cannot record a refused entry in the spool");
                    release_all(spool, &seqs, &pending);
                    return Err(UplinkError::Unreachable(format!("spool: {e}")));
                }
            }
            Err(e) => {
                release_all(spool, &seqs, &pending);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A refusal of the content: a 4xx other than credentials (401/403) and
/// rate limiting (429).
fn is_refusal(status: reqwest::StatusCode) -> bool {
    status.is_client_error() && !matches!(status.as_u16(), 401 | 403 | 429)
}

fn to_batch(part: &[(u64, SpoolItem)]) -> AlertBatch {
    let mut body = AlertBatch {
        alerts: Vec::new(),
        gaps: Vec::new(),
    };
    for (_, item) in part {
        match item {
            SpoolItem::Alert(a) => body.alerts.push(a.clone()),
            SpoolItem::Gap(g) => body.gaps.push(g.clone()),
        }
    }
    body
}

fn release_all(spool: &Mutex<Spool>, seqs: &[u64], pending: &[Vec<(u64, SpoolItem)>]) {
    let mut s = lock(spool);
    s.release(seqs);
    for part in pending {
        s.release(&part.iter().map(|(q, _)| *q).collect::<Vec<_>>());
    }
}

/// The coordinator refused this one entry: spool a `rejected` gap about it
/// (fsync), then delete it. A refused `rejected` gap itself is deleted with
/// an error log only (another gap about it would be refused the same way).
fn record_refusal(
    spool: &Mutex<Spool>,
    seq: u64,
    item: &SpoolItem,
    message: &str,
) -> std::io::Result<()> {
    let mut s = lock(spool);
    let entry = match item {
        SpoolItem::Alert(a) => SpoolEntryRef::Alert(a),
        SpoolItem::Gap(g) => SpoolEntryRef::Gap(g),
    };
    if matches!(item, SpoolItem::Gap(g) if g.reason == GAP_REJECTED) {
        error!(id = %entry.id(), %message, "coordinator refused a rejection record; deleting it");
    } else {
        let gap = Gap::rejected(s.host(), &entry, message);
        error!(id = %entry.id(), %message, gap = %gap.id, "coordinator refused an entry; recorded as a gap");
        s.append(vec![SpoolItem::Gap(gap)])?;
    }
    s.ack(&[seq])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut b = Backoff::default();
        let mut last_step = Duration::ZERO;
        for i in 0..20 {
            let d = b.next_delay();
            let step = BACKOFF_MIN.saturating_mul(1 << i.min(10)).min(BACKOFF_MAX);
            assert!(
                d >= step.mul_f64(0.75) && d <= step.mul_f64(1.25).min(BACKOFF_MAX),
                "{i}: {d:?}"
            );
            assert!(step >= last_step);
            last_step = step;
        }
        assert!(b.next_delay() >= BACKOFF_MAX.mul_f64(0.75));
        b.reset();
        assert!(b.next_delay() <= BACKOFF_MIN.mul_f64(1.25));
        b.max_out();
        assert!(b.next_delay() >= BACKOFF_MAX.mul_f64(0.75));
    }
}
