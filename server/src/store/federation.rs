//! Federation of coordinators, both ends.
//!
//! **Provincial side.** Every change of an incident raises its `revision`
//! and, while an upstream is configured (`federation_link.upstream`), puts
//! the incident in `federation_outbox` in the same transaction; one row per
//! incident holds the latest revision queued, so bursts coalesce.
//! `crate::federation` claims due rows, sends the incidents' current
//! snapshots (never their alerts) and records the outcome here. Drill
//! incidents are never queued.
//!
//! **National side.** Provinces hold credentials that may only forward;
//! their snapshots are upserted keyed by (province, remote id), and a
//! snapshot whose revision is not above the stored one changes nothing,
//! so duplicates and reordering are harmless. Forwarded incidents join the
//! attacker index with their province in the host and agency, so one
//! attacker in two provinces is one campaign.

use std::str::FromStr;

use sqlx::{AnyConnection, Row};

use super::ingest::{batch_query, list, pieces};
use super::{Result, Store, StoreError, from_json, now, to_json, ts, webhooks, workflow};
use crate::model::{
    Attacker, FederationStatus, ForwardAck, IncidentSnapshot, ProvinceInfo, Status,
};

/// Most snapshots in one forwarded batch.
pub const MAX_FORWARD_BATCH: usize = 500;
/// Most attacker identities in one snapshot.
const MAX_ATTACKERS: usize = 256;
/// Most entities, tags or labels in one snapshot.
const MAX_ITEMS: usize = 64;
/// Most bytes of one short text field (rule id, host, agency, names).
const MAX_NAME: usize = 256;
/// Most bytes of a title or an entity value.
const MAX_TEXT: usize = 1024;
/// Most bytes of a province's name.
pub const MAX_PROVINCE_NAME: usize = 64;

/// Refuses changes to a forwarded incident: it belongs to its province.
pub(super) fn refuse_forwarded(id: i64, province: Option<&str>) -> Result<()> {
    match province {
        None => Ok(()),
        Some(p) => Err(StoreError::Conflict(format!(
            "incident {id} was forwarded by province {p} and belongs to it: change it at the \
             province's coordinator (notes may be added here)"
        ))),
    }
}

/// Records a change of incident `id`: raises its revision and queues it
/// for the upstream when one is configured (not drills, not incidents
/// forwarded from below). Call in the transaction of the change.
pub(super) async fn changed(tx: &mut AnyConnection, id: i64, now: &str) -> Result<()> {
    changed_many(tx, &[id], now).await
}

/// [`changed`] for several incidents (distinct ids), two statements per
/// chunk of them.
pub(super) async fn changed_many(tx: &mut AnyConnection, ids: &[i64], now: &str) -> Result<()> {
    for chunk in pieces(ids) {
        let mut q = batch_query(
            tx,
            format!(
                "UPDATE incidents SET revision = revision + 1 WHERE id IN ({})",
                list(chunk.len(), 1)
            ),
        );
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
        let mut q = batch_query(
            tx,
            format!(
            "INSERT INTO federation_outbox (incident_id, revision, attempts, next_at, queued_at)
             SELECT i.id, i.revision, 0, $1, $2 FROM incidents i, federation_link l
             WHERE i.id IN ({}) AND l.id = 1 AND l.upstream IS NOT NULL
               AND i.drill = 0 AND i.province IS NULL
             ON CONFLICT (incident_id) DO UPDATE SET revision = excluded.revision",
            list(chunk.len(), 3)
        ),
        );
        q = q.bind(now.to_string()).bind(now.to_string());
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// A province's name, trimmed, or why it is not one.
pub fn province_name(name: &str) -> Result<String> {
    let name = name.trim();
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_PROVINCE_NAME || !name.chars().all(ok_char) {
        return Err(StoreError::Invalid(format!(
            "a province name has 1 to {MAX_PROVINCE_NAME} bytes of letters, digits, spaces, \
             '-', '_' and '.' (got '{name}')"
        )));
    }
    Ok(name.to_string())
}

/// An RFC 3339 time in the store's form, or why `field` is not one.
fn time_field(i: usize, field: &str, v: &str) -> Result<String> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| ts(t.with_timezone(&chrono::Utc)))
        .map_err(|e| {
            StoreError::Invalid(format!(
                "incidents[{i}].{field} '{}' is not an RFC 3339 time: {e}",
                v.chars().take(64).collect::<String>()
            ))
        })
}

/// Checks every bound of one snapshot; the message names the field.
fn check_snapshot(i: usize, s: &IncidentSnapshot) -> Result<()> {
    let bad = |m: String| Err(StoreError::Invalid(format!("incidents[{i}].{m}")));
    let text = |field: &str, v: &str, max: usize| -> Result<()> {
        if v.len() > max || v.chars().any(char::is_control) {
            return bad(format!(
                "{field} has at most {max} bytes and no control characters"
            ));
        }
        Ok(())
    };
    if s.id < 1 {
        return bad("id must be a positive incident number".into());
    }
    if s.revision < 1 {
        return bad("revision must be positive".into());
    }
    if s.alert_count < 0 || s.notes < 0 {
        return bad("alert_count and notes must not be negative".into());
    }
    if s.title.trim().is_empty() || s.rule_id.trim().is_empty() || s.host.trim().is_empty() {
        return bad("title, rule_id and host must not be empty".into());
    }
    text("title", &s.title, MAX_TEXT)?;
    text("rule_id", &s.rule_id, MAX_NAME)?;
    text("host", &s.host, MAX_NAME)?;
    text("agency", &s.agency, MAX_NAME)?;
    if let Some(a) = &s.assignee {
        text("assignee", a, MAX_NAME)?;
    }
    if s.entities.len() > MAX_ITEMS || s.tags.len() > MAX_ITEMS || s.labels.len() > MAX_ITEMS {
        return bad(format!(
            "entities, tags and labels hold at most {MAX_ITEMS} items each"
        ));
    }
    for (k, v) in &s.entities {
        text("entities (name)", k, MAX_NAME)?;
        text("entities (value)", v, MAX_TEXT)?;
    }
    for t in s.tags.iter().chain(&s.labels) {
        text("tags/labels", t, MAX_NAME)?;
    }
    if s.attackers.len() > MAX_ATTACKERS {
        return bad(format!(
            "attackers holds at most {MAX_ATTACKERS} identities"
        ));
    }
    for a in &s.attackers {
        if !matches!(a.kind.as_str(), "ip" | "domain" | "sha256") {
            return bad(format!(
                "attackers kind '{}' is not ip, domain or sha256",
                a.kind.chars().take(32).collect::<String>()
            ));
        }
        if a.value.trim().is_empty() {
            return bad("attackers value must not be empty".into());
        }
        text("attackers value", &a.value, 512)?;
    }
    if s.merged_into == Some(s.id) {
        return bad("merged_into names the incident itself".into());
    }
    Ok(())
}

impl Store {
    // ---- provincial side --------------------------------------------------

    /// Records the upstream this coordinator forwards to (`None`: none);
    /// changes are queued only while one is set. With one set, every
    /// incident whose latest revision the upstream has not accepted yet
    /// (those from before the link, or changed while it was off) is queued
    /// too: the national view gets the province's whole record, not only
    /// what happens from now on. Returns how many were queued so.
    pub async fn set_upstream(&self, url: Option<&str>) -> Result<u64> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE federation_link SET upstream = $1 WHERE id = 1")
            .bind(url)
            .execute(&mut *tx)
            .await?;
        let mut queued = 0;
        if url.is_some() {
            let now = now();
            queued = sqlx::query(
                "INSERT INTO federation_outbox (incident_id, revision, attempts, next_at, queued_at)
                 SELECT i.id, i.revision, 0, $1, $1 FROM incidents i
                 WHERE i.drill = 0 AND i.province IS NULL
                   AND (i.forwarded_revision IS NULL OR i.forwarded_revision < i.revision)
                 ON CONFLICT (incident_id) DO NOTHING",
            )
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` queued incidents due at `now`, leased until
    /// `lease_until` (another replica's forwarder skips them). Returns
    /// (incident id, attempts so far).
    pub async fn claim_due_forwards(
        &self,
        now: &str,
        lease_until: &str,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut tx = self.write.begin().await?;
        let rows = sqlx::query(
            "SELECT incident_id, attempts FROM federation_outbox WHERE next_at <= $1
             ORDER BY next_at, incident_id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            let claimed = sqlx::query(
                "UPDATE federation_outbox SET next_at = $1 WHERE incident_id = $2 AND next_at <= $3",
            )
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 1 {
                out.push((id, r.get(1)));
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The current snapshot of incident `id` as it is forwarded.
    pub async fn incident_snapshot(&self, id: i64) -> Result<IncidentSnapshot> {
        let r = sqlx::query(
            "SELECT id, revision, title, rule_id, severity, status, host, agency, alert_count,
                    first_seen, last_seen, entities, tags, labels, assignee, merged_into,
                    created_at, updated_at,
                    (SELECT COUNT(*) FROM incident_events e
                     WHERE e.incident_id = incidents.id AND e.kind = 'note')
             FROM incidents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound)?;
        let attackers = sqlx::query(
            "SELECT DISTINCT kind, value FROM incident_attackers WHERE incident_id = $1
             ORDER BY kind, value",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|a| Attacker {
            kind: a.get(0),
            value: a.get(1),
        })
        .collect();
        Ok(IncidentSnapshot {
            id: r.get(0),
            revision: r.get(1),
            title: r.get(2),
            rule_id: r.get(3),
            severity: super::parse_severity(r.get(4))?,
            status: Status::from_str(r.get(5)).map_err(StoreError::Damaged)?,
            host: r.get(6),
            agency: r.get(7),
            alert_count: r.get(8),
            first_seen: r.get(9),
            last_seen: r.get(10),
            entities: from_json(r.get(11))?,
            tags: from_json(r.get(12))?,
            labels: from_json(r.get(13))?,
            assignee: r.get(14),
            merged_into: r.get(15),
            created_at: r.get(16),
            updated_at: r.get(17),
            notes: r.get(18),
            attackers,
        })
    }

    /// The upstream accepted these snapshots (incident id, revision sent):
    /// each leaves the outbox unless a newer revision was queued meanwhile,
    /// which is then due at once.
    pub async fn record_forwarded(&self, sent: &[(i64, i64)], now: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for (id, revision) in sent {
            sqlx::query("DELETE FROM federation_outbox WHERE incident_id = $1 AND revision <= $2")
                .bind(id)
                .bind(revision)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE incidents SET forwarded_revision = $1
                 WHERE id = $2 AND (forwarded_revision IS NULL OR forwarded_revision < $1)",
            )
            .bind(revision)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE federation_outbox SET next_at = $1, attempts = 0, last_error = NULL
                 WHERE incident_id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE federation_link SET last_success_at = $1, forwarded = forwarded + $2 WHERE id = 1",
        )
        .bind(now)
        .bind(sent.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forwarding incident `id` failed with `error`; it is tried again at
    /// `retry_at` (nothing is ever given up: the link's status shows it).
    pub async fn record_forward_failure(
        &self,
        id: i64,
        error: &str,
        now: &str,
        retry_at: &str,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE federation_outbox SET attempts = attempts + 1, next_at = $1, last_error = $2
             WHERE incident_id = $3",
        )
        .bind(retry_at)
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE federation_link SET last_error = $1, last_error_at = $2 WHERE id = 1")
            .bind(error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The link to the upstream: where, what waits, the latest outcomes.
    pub async fn federation_status(&self) -> Result<FederationStatus> {
        let r = sqlx::query(
            "SELECT upstream, last_success_at, last_error, last_error_at, forwarded,
                    (SELECT COUNT(*) FROM federation_outbox),
                    (SELECT MIN(queued_at) FROM federation_outbox)
             FROM federation_link WHERE id = 1",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(FederationStatus {
            upstream: r.get(0),
            last_success_at: r.get(1),
            last_error: r.get(2),
            last_error_at: r.get(3),
            forwarded: r.get(4),
            queued: r.get(5),
            oldest_queued_at: r.get(6),
        })
    }

    // ---- national side ----------------------------------------------------

    /// Adds a province whose coordinator forwards with the credential
    /// hashed as `token_hash`.
    pub async fn add_province(
        &self,
        name: &str,
        token_hash: &str,
        actor: &str,
    ) -> Result<ProvinceInfo> {
        let name = province_name(name)?;
        let done = sqlx::query(
            "INSERT INTO provinces (name, token_hash, created_by, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&name)
        .bind(token_hash)
        .bind(actor)
        .bind(now())
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "province '{name}' exists already"
            )));
        }
        self.provinces()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or(StoreError::NotFound)
    }

    /// Every province with its incident count and latest forward.
    pub async fn provinces(&self) -> Result<Vec<ProvinceInfo>> {
        let rows = sqlx::query(
            "SELECT p.name, p.created_by, p.created_at, p.last_forward_at, p.revoked_at,
                    (SELECT COUNT(*) FROM incidents i WHERE i.province = p.name)
             FROM provinces p ORDER BY p.name",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ProvinceInfo {
                name: r.get(0),
                created_by: r.get(1),
                created_at: r.get(2),
                last_forward_at: r.get(3),
                revoked_at: r.get(4),
                incidents: r.get(5),
            })
            .collect())
    }

    /// Revokes a province's credential: it can forward no more (its
    /// incidents stay).
    pub async fn revoke_province(&self, name: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE provinces SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(name)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The province a live credential hash belongs to.
    pub async fn province_by_token(&self, token_hash: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM provinces WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Stores a batch of snapshots forwarded by `province` in one
    /// transaction: new incidents are created, newer revisions update them,
    /// the rest is ignored. Every snapshot is checked first; one bad one
    /// refuses the batch (`Invalid`, naming it).
    pub async fn apply_snapshots(
        &self,
        province: &str,
        snapshots: &[IncidentSnapshot],
    ) -> Result<ForwardAck> {
        if snapshots.len() > MAX_FORWARD_BATCH {
            return Err(StoreError::Invalid(format!(
                "a batch holds at most {MAX_FORWARD_BATCH} incidents"
            )));
        }
        let mut checked = Vec::with_capacity(snapshots.len());
        for (i, s) in snapshots.iter().enumerate() {
            check_snapshot(i, s)?;
            let mut s = s.clone();
            s.first_seen = time_field(i, "first_seen", &s.first_seen)?;
            s.last_seen = time_field(i, "last_seen", &s.last_seen)?;
            s.created_at = time_field(i, "created_at", &s.created_at)?;
            s.updated_at = time_field(i, "updated_at", &s.updated_at)?;
            checked.push(s);
        }
        // Older revisions first, so a merge target is stored before the
        // incident merged into it when both come in one batch.
        checked.sort_by_key(|s| (s.merged_into.is_some(), s.id, s.revision));
        let mut attempt = 0;
        loop {
            match self.apply_once(province, &checked).await {
                Err(StoreError::Db(e)) if super::is_transient(&e) && attempt < 5 => attempt += 1,
                done => return done,
            }
        }
    }

    async fn apply_once(
        &self,
        province: &str,
        snapshots: &[IncidentSnapshot],
    ) -> Result<ForwardAck> {
        let mut tx = self.write.begin().await?;
        let now = now();
        let mut ack = ForwardAck {
            applied: 0,
            ignored: 0,
        };
        for s in snapshots {
            if apply_one(&mut tx, province, s, &now).await? {
                ack.applied += 1;
            } else {
                ack.ignored += 1;
            }
        }
        sqlx::query("UPDATE provinces SET last_forward_at = $1 WHERE name = $2")
            .bind(&now)
            .bind(province)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ack)
    }
}

/// Stores one checked snapshot; returns whether it changed anything.
async fn apply_one(
    tx: &mut AnyConnection,
    province: &str,
    s: &IncidentSnapshot,
    now: &str,
) -> Result<bool> {
    let actor = format!("province:{province}");
    let merged_into: Option<i64> = match s.merged_into {
        None => None,
        Some(m) => {
            sqlx::query_scalar("SELECT id FROM incidents WHERE province = $1 AND remote_id = $2")
                .bind(province)
                .bind(m)
                .fetch_optional(&mut *tx)
                .await?
        }
    };
    loop {
        let prev = sqlx::query(
            "SELECT id, remote_revision, status FROM incidents WHERE province = $1 AND remote_id = $2",
        )
        .bind(province)
        .bind(s.id)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match prev {
            Some(r) if r.get::<Option<i64>, _>(1).unwrap_or(0) >= s.revision => return Ok(false),
            Some(r) => {
                let id: i64 = r.get(0);
                let old: String = r.get(2);
                let done = sqlx::query(
                    "UPDATE incidents SET title = $1, rule_id = $2, severity = $3, status = $4,
                         host = $5, agency = $6, entities = $7, tags = $8, alert_count = $9,
                         first_seen = $10, last_seen = $11, updated_at = $12, assignee = $13,
                         labels = $14, merged_into = $15, remote_revision = $16
                     WHERE id = $17 AND remote_revision < $16",
                )
                .bind(&s.title)
                .bind(&s.rule_id)
                .bind(s.severity.as_str())
                .bind(s.status.as_str())
                .bind(&s.host)
                .bind(&s.agency)
                .bind(to_json(&s.entities))
                .bind(to_json(&s.tags))
                .bind(s.alert_count)
                .bind(&s.first_seen)
                .bind(&s.last_seen)
                .bind(&s.updated_at)
                .bind(&s.assignee)
                .bind(to_json(&s.labels))
                .bind(merged_into)
                .bind(s.revision)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                if old != s.status.as_str() {
                    workflow::timeline(
                        tx,
                        id,
                        now,
                        &actor,
                        s.status.as_str(),
                        &format!("changed at province {province} (its incident {})", s.id),
                    )
                    .await?;
                    webhooks::enqueue_status(tx, id, s.status.as_str(), &actor, now).await?;
                }
                id
            }
            None => {
                let created: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO incidents (title, rule_id, severity, status, host, agency, group_key,
                         entities, tags, alert_count, first_seen, last_seen, drill, created_at,
                         updated_at, assignee, labels, merged_into, province, remote_id,
                         remote_revision)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14, $15,
                             $16, $17, $18, $19, $20)
                     ON CONFLICT (province, remote_id) WHERE province IS NOT NULL DO NOTHING
                     RETURNING id",
                )
                .bind(&s.title)
                .bind(&s.rule_id)
                .bind(s.severity.as_str())
                .bind(s.status.as_str())
                .bind(&s.host)
                .bind(&s.agency)
                .bind(format!("federation:{province}:{}", s.id))
                .bind(to_json(&s.entities))
                .bind(to_json(&s.tags))
                .bind(s.alert_count)
                .bind(&s.first_seen)
                .bind(&s.last_seen)
                .bind(&s.created_at)
                .bind(&s.updated_at)
                .bind(&s.assignee)
                .bind(to_json(&s.labels))
                .bind(merged_into)
                .bind(province)
                .bind(s.id)
                .bind(s.revision)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = created else {
                    // Stored meanwhile by a concurrent batch: compare again.
                    continue;
                };
                workflow::timeline(
                    tx,
                    id,
                    now,
                    &actor,
                    "created",
                    &format!("forwarded by province {province} (its incident {})", s.id),
                )
                .await?;
                webhooks::enqueue_created(tx, id, now).await?;
                id
            }
        };
        sqlx::query("DELETE FROM incident_attackers WHERE incident_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if merged_into.is_none() {
            let host = format!("{province}/{}", s.host);
            let agency = format!("{province}/{}", s.agency);
            for a in &s.attackers {
                let value = match a.kind.as_str() {
                    "domain" => a.value.trim().trim_end_matches('.').to_ascii_lowercase(),
                    "sha256" => a.value.trim().to_ascii_lowercase(),
                    _ => a.value.trim().to_string(),
                };
                workflow::index_identity(tx, id, "", &host, &agency, &a.kind, &value, now).await?;
            }
        }
        return Ok(true);
    }
}
