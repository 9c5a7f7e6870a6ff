//! Webhook subscriptions and their durable outbox. Deliveries are queued in
//! the same transaction as the change they report, so a crash between the
//! two cannot lose one; `crate::webhook` sends them.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};
use ward_agent::wire::Severity;

use super::{Result, Store, StoreError, from_json, incident_from_row, select_incidents, to_json};

/// The events a webhook can subscribe to.
pub const WEBHOOK_EVENTS: &[&str] = &["incident.created", "incident.status"];

/// Attempts before a delivery is given up (and shown as failed).
pub const MAX_ATTEMPTS: i64 = 12;

/// A new subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST (http or https).
    pub url: String,
    /// New incidents below this severity are not sent (status changes of
    /// such incidents neither).
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Subscribed events; all when empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// Whether drill incidents are sent too.
    #[serde(default)]
    pub drills: bool,
}

fn default_min_severity() -> Severity {
    Severity::High
}

/// A subscription as admins see it (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookInfo {
    /// Its id.
    pub id: i64,
    /// The receiver.
    pub url: String,
    /// The least severity sent.
    pub min_severity: Severity,
    /// Subscribed events.
    pub events: Vec<String>,
    /// Whether drill incidents are sent.
    pub drills: bool,
    /// Who added it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// When it was removed, if it was.
    pub disabled_at: Option<String>,
    /// Deliveries waiting or being retried.
    pub pending: i64,
    /// Deliveries the receiver accepted.
    pub delivered: i64,
    /// Deliveries given up after [`MAX_ATTEMPTS`].
    pub failed: i64,
    /// The latest failure, if any.
    pub last_error: Option<String>,
}

/// One delivery of one event to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Its id (the `X-Ward-Delivery` header).
    pub id: i64,
    /// The subscription.
    pub webhook_id: i64,
    /// `incident.created` or `incident.status`.
    pub event: String,
    /// The incident it is about.
    pub incident_id: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// Next attempt (RFC 3339) while pending.
    pub next_at: String,
    /// When the receiver accepted it.
    pub delivered_at: Option<String>,
    /// When it was given up.
    pub failed_at: Option<String>,
    /// The receiver's last HTTP status.
    pub last_status: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The JSON body sent.
    pub body: String,
}

/// A delivery due now, with what sending needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery's id.
    pub id: i64,
    /// Its event.
    pub event: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// The JSON body.
    pub body: String,
    /// The receiver.
    pub url: String,
    /// The signing key.
    pub secret: String,
}

/// Queues `incident.created` for incident `id` to every matching webhook.
pub(super) async fn enqueue_created(tx: &mut AnyConnection, id: i64, now: &str) -> Result<()> {
    enqueue_created_many(tx, &[id], now).await
}

/// Queues `incident.created` for each incident of `ids` (the subscriptions
/// are read once).
pub(super) async fn enqueue_created_many(
    tx: &mut AnyConnection,
    ids: &[i64],
    now: &str,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let hooks = subscriptions(tx).await?;
    for id in ids {
        enqueue_to(tx, &hooks, *id, "incident.created", None, now).await?;
    }
    Ok(())
}

/// Queues `incident.status` (the incident moved to `status`, by `actor`).
pub(super) async fn enqueue_status(
    tx: &mut AnyConnection,
    id: i64,
    status: &str,
    actor: &str,
    now: &str,
) -> Result<()> {
    let hooks = subscriptions(tx).await?;
    enqueue_to(
        tx,
        &hooks,
        id,
        "incident.status",
        Some((status, actor)),
        now,
    )
    .await
}

/// A subscription as queueing needs it.
struct Subscription {
    id: i64,
    min_severity: Severity,
    events: Vec<String>,
    drills: bool,
}

/// The subscriptions that are not disabled.
async fn subscriptions(tx: &mut AnyConnection) -> Result<Vec<Subscription>> {
    sqlx::query("SELECT id, min_severity, events, drills FROM webhooks WHERE disabled_at IS NULL")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|h| {
            Ok(Subscription {
                id: h.get(0),
                min_severity: Severity::from_str(h.get(1)).map_err(StoreError::Damaged)?,
                events: from_json(h.get(2))?,
                drills: h.get::<i64, _>(3) != 0,
            })
        })
        .collect()
}

async fn enqueue_to(
    tx: &mut AnyConnection,
    hooks: &[Subscription],
    id: i64,
    event: &str,
    change: Option<(&str, &str)>,
    now: &str,
) -> Result<()> {
    if hooks.is_empty() {
        return Ok(());
    }
    let row = sqlx::query(select_incidents!("WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let incident = incident_from_row(&row)?;
    let mut body = serde_json::json!({
        "event": event,
        "at": now,
        "incident": incident,
    });
    if let Some((status, actor)) = change {
        body["change"] = serde_json::json!({ "status": status, "actor": actor });
    }
    let body = body.to_string();
    for h in hooks {
        if incident.severity < h.min_severity
            || (incident.drill && !h.drills)
            || !(h.events.is_empty() || h.events.iter().any(|e| e == event))
        {
            continue;
        }
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event, incident_id, body, next_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(h.id)
        .bind(event)
        .bind(id)
        .bind(&body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Adds a subscription signed with `secret`; returns its id.
    pub async fn add_webhook(&self, hook: &NewWebhook, secret: &str, actor: &str) -> Result<i64> {
        for e in &hook.events {
            if !WEBHOOK_EVENTS.contains(&e.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "event '{e}' is not one of {}",
                    WEBHOOK_EVENTS.join(", ")
                )));
            }
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO webhooks (url, secret, min_severity, events, drills, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&hook.url)
        .bind(secret)
        .bind(hook.min_severity.as_str())
        .bind(to_json(&hook.events))
        .bind(i64::from(hook.drills))
        .bind(actor)
        .bind(super::now())
        .fetch_one(&self.write)
        .await?)
    }

    /// Stops a subscription: nothing more is queued or sent to it.
    pub async fn disable_webhook(&self, id: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE webhooks SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(super::now())
        .bind(id)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every subscription with its delivery counts.
    pub async fn webhooks(&self) -> Result<Vec<WebhookInfo>> {
        let rows = sqlx::query(
            "SELECT w.id, w.url, w.min_severity, w.events, w.drills, w.created_by, w.created_at,
                    w.disabled_at,
                    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id
                       AND d.delivered_at IS NULL AND d.failed_at IS NULL),
                    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id
                       AND d.delivered_at IS NOT NULL),
                    (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id
                       AND d.failed_at IS NOT NULL),
                    (SELECT d.last_error FROM webhook_deliveries d WHERE d.webhook_id = w.id
                       AND d.last_error IS NOT NULL ORDER BY d.id DESC LIMIT 1)
             FROM webhooks w ORDER BY w.id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookInfo {
                    id: r.get(0),
                    url: r.get(1),
                    min_severity: Severity::from_str(r.get(2)).map_err(StoreError::Damaged)?,
                    events: from_json(r.get(3))?,
                    drills: r.get::<i64, _>(4) != 0,
                    created_by: r.get(5),
                    created_at: r.get(6),
                    disabled_at: r.get(7),
                    pending: r.get(8),
                    delivered: r.get(9),
                    failed: r.get(10),
                    last_error: r.get(11),
                })
            })
            .collect()
    }

    /// The latest deliveries of subscription `id`, newest first.
    pub async fn webhook_deliveries(&self, id: i64, limit: i64) -> Result<Vec<WebhookDelivery>> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM webhooks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        exists.ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT id, webhook_id, event, incident_id, attempts, next_at, delivered_at, failed_at,
                    last_status, last_error, body
             FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| WebhookDelivery {
                id: r.get(0),
                webhook_id: r.get(1),
                event: r.get(2),
                incident_id: r.get(3),
                attempts: r.get(4),
                next_at: r.get(5),
                delivered_at: r.get(6),
                failed_at: r.get(7),
                last_status: r.get(8),
                last_error: r.get(9),
                body: r.get(10),
            })
            .collect())
    }

    /// Claims up to `limit` deliveries due at `now`: each is leased until
    /// `lease_until` so another sender (another replica) does not take it.
    pub async fn claim_due_deliveries(
        &self,
        now: &str,
        lease_until: &str,
        limit: i64,
    ) -> Result<Vec<DueDelivery>> {
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "SELECT d.id, d.event, d.attempts, d.body, w.url, w.secret
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_at <= $1
               AND w.disabled_at IS NULL
             ORDER BY d.next_at, d.id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            let claimed = sqlx::query(
                "UPDATE webhook_deliveries SET next_at = $1
                 WHERE id = $2 AND delivered_at IS NULL AND failed_at IS NULL AND next_at <= $3",
            )
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 1 {
                out.push(DueDelivery {
                    id,
                    event: r.get(1),
                    attempts: r.get(2),
                    body: r.get(3),
                    url: r.get(4),
                    secret: r.get(5),
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Records an attempt: delivered, or failed with the next attempt at
    /// `retry_at` (or given up when `retry_at` is `None`).
    pub async fn record_delivery(
        &self,
        id: i64,
        now: &str,
        status: Option<u16>,
        error: Option<&str>,
        retry_at: Option<&str>,
    ) -> Result<()> {
        let ok = error.is_none();
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $1,
                 last_error = COALESCE($2, last_error),
                 delivered_at = CASE WHEN $3 = 1 THEN $4 ELSE NULL END,
                 failed_at = CASE WHEN $3 = 0 AND $5 IS NULL THEN $4 ELSE NULL END,
                 next_at = COALESCE($5, next_at)
             WHERE id = $6",
        )
        .bind(status.map(i64::from))
        .bind(error)
        .bind(i64::from(ok))
        .bind(now)
        .bind(retry_at)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
