//! Drills' runner leases and drill agents.
//!
//! `ward drill run` holds a lease on its running drill and renews it; a
//! drill whose lease ran out (its runner was killed, or lost the
//! coordinator) is marked `abandoned` by [`Store::abandon_expired_drills`].
//! Agents enrolled with a drill's enrollment token carry its id and are
//! retired (revoked) when the drill ends, however it ends.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, StoreError, ts};

/// The lease a drill runner gets when it asks for none, in seconds.
pub const DEFAULT_DRILL_LEASE_S: u32 = 60;
/// The longest lease a drill runner may ask for, in seconds.
pub const MAX_DRILL_LEASE_S: u32 = 3600;

/// Retires the not yet revoked agents of drill `id` at `now`; returns how many.
pub(super) async fn retire_agents(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    now: &str,
) -> Result<u64> {
    let done =
        sqlx::query("UPDATE agents SET revoked_at = $1 WHERE drill_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected())
}

impl Store {
    /// Why an action on a drill that is not running changed nothing:
    /// `Conflict` naming its state, or `NotFound`.
    pub(super) async fn not_running(&self, id: &str) -> StoreError {
        let status: std::result::Result<Option<String>, _> =
            sqlx::query_scalar("SELECT status FROM drills WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await;
        match status {
            Ok(Some(s)) => StoreError::Conflict(format!("drill {id} is {s}, not running")),
            Ok(None) => StoreError::NotFound,
            Err(e) => e.into(),
        }
    }

    /// Renews the runner's lease of a running drill for `lease_s` seconds
    /// from now; returns the new end of the lease (RFC 3339).
    pub async fn renew_drill_lease(&self, id: &str, lease_s: u32) -> Result<String> {
        let now = Utc::now();
        let until = ts(now + chrono::Duration::seconds(i64::from(lease_s)));
        let done = sqlx::query(
            "UPDATE drills SET lease_until = $1, renewed_at = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(&until)
        .bind(ts(now))
        .bind(id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(self.not_running(id).await);
        }
        Ok(until)
    }

    /// Marks `abandoned` every running drill whose lease ended before
    /// `now` (ended at the end of its lease) and retires its agents.
    /// Returns the drills abandoned. Safe in several replicas at once: the
    /// UPDATE decides which one abandons a drill.
    pub async fn abandon_expired_drills(&self, now: DateTime<Utc>) -> Result<Vec<String>> {
        let stamp = ts(now);
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM drills WHERE status = 'running' AND lease_until IS NOT NULL
                AND lease_until < $1 ORDER BY id",
        )
        .bind(&stamp)
        .fetch_all(&self.read)
        .await?;
        let mut abandoned = Vec::new();
        for id in due {
            let mut tx = self.write.begin().await?;
            let row = sqlx::query(
                "UPDATE drills SET status = 'abandoned', finished_at = lease_until,
                        reason = 'the drill runner stopped renewing its lease (last renewed '
                                 || COALESCE(renewed_at, started_at) || ')',
                        lease_until = NULL
                 WHERE id = $1 AND status = 'running' AND lease_until < $2
                 RETURNING id",
            )
            .bind(&id)
            .bind(&stamp)
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_none() {
                continue;
            }
            let retired = retire_agents(&mut tx, &id, &stamp).await?;
            tx.commit().await?;
            self.credentials.forget_all();
            tracing::warn!(drill = %id, retired, "drill abandoned: its runner stopped renewing the lease");
            abandoned.push(id);
        }
        Ok(abandoned)
    }

    /// Whether drill `id` exists and is running.
    pub async fn drill_running(&self, id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT status FROM drills WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some_and(|r| r.get::<String, _>(0) == "running"))
    }
}
