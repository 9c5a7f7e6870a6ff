//! Retention: old alerts of closed incidents are pruned in small batches.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Result, Store, ts};

/// How the coordinator prunes old alerts.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Alerts received longer ago than this many days are pruned.
    pub days: u32,
    /// Alerts deleted per transaction: bounds how long ingest waits.
    pub batch: i64,
    /// Pause between batches, for ingest to go first.
    pub pause: Duration,
}

impl Retention {
    /// Keep `days` days, in batches of 500 alerts 100 ms apart.
    pub fn days(days: u32) -> Self {
        Retention {
            days,
            batch: 500,
            pause: Duration::from_millis(100),
        }
    }

    /// Alerts received before this time are due (relative to `now`).
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::days(i64::from(self.days))
    }
}

/// What one pruning pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Alerts deleted.
    pub alerts: u64,
    /// Their captured frames deleted.
    pub packets: u64,
    /// Transactions (batches) it took.
    pub batches: u64,
}

/// The alerts a batch may delete: received before `$1`, of a resolved or
/// false-positive incident (an open incident's evidence is never pruned),
/// at most `$2`, oldest first.
const DUE: &str = "SELECT a.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
     WHERE a.received_at < $1 AND i.status IN ('resolved', 'false_positive')
     ORDER BY a.received_at LIMIT $2";

impl Store {
    /// Deletes the alerts received before `cutoff` whose incident is
    /// closed, and their captured frames, `retention.batch` at a time with
    /// `retention.pause` between batches. Incidents stay as records (with
    /// the alert count they had) even when none of their alerts is left:
    /// they are small and are the history of what happened and who did
    /// what. Returns what was deleted.
    pub async fn prune_alerts(
        &self,
        cutoff: DateTime<Utc>,
        retention: &Retention,
    ) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        loop {
            let (alerts, packets) = self.prune_batch(cutoff, retention.batch.max(1)).await?;
            if alerts == 0 {
                return Ok(report);
            }
            report.alerts += alerts;
            report.packets += packets;
            report.batches += 1;
            if alerts < retention.batch.max(1) as u64 {
                return Ok(report);
            }
            tokio::time::sleep(retention.pause).await;
        }
    }

    /// One batch, in one transaction. The incident's status is checked
    /// again in the DELETEs, so an incident reopened meanwhile keeps its
    /// alerts.
    async fn prune_batch(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<(u64, u64)> {
        let mut tx = self.write.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(DUE)
            .bind(ts(cutoff))
            .bind(batch)
            .fetch_all(&mut *tx)
            .await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let ids = super::to_json(&ids);
        let packets = sqlx::query(
            "DELETE FROM alert_packets WHERE alert_id IN (
                 SELECT a.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
                 WHERE a.id IN (SELECT value FROM json_each($1))
                   AND i.status IN ('resolved', 'false_positive'))",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let alerts = sqlx::query(
            "DELETE FROM alerts WHERE id IN (SELECT value FROM json_each($1))
               AND incident_id IN (SELECT id FROM incidents
                                   WHERE status IN ('resolved', 'false_positive'))",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((alerts, packets))
    }
}
