//! Incident work beyond status changes: the queue's filters and sorting,
//! labels, merge and split, the attacker index that links incidents across
//! hosts into campaigns, and severity that rises with spread and volume.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use sqlx::{AnyConnection, Row};
use ward_agent::wire::Severity;

use super::ingest::{batch_query, list, pieces, tuples};
use super::security::scope_param;
use super::{
    DrillFilter, Result, Scope, Store, StoreError, from_json, incident_from_row, now,
    parse_severity, select_incidents, to_json,
};
use crate::model::{Campaign, Incident, Status};

/// Alert entities that name an attacker, and the kind of identity each is.
/// The Host header and the log's own virtual host name the victim, so they
/// are not here.
const ATTACKER_ENTITIES: &[(&str, &str)] = &[
    ("src_ip", "ip"),
    ("query", "domain"),
    ("sni", "domain"),
    ("ioc_value", ""),
    ("sha256", "sha256"),
];

/// An incident with this many alerts is raised one severity level.
pub const VOLUME_ESCALATION: i64 = 100;
/// A campaign on this many hosts raises its incidents one level.
pub const SPREAD_HOSTS: i64 = 3;
/// A campaign in this many agencies raises its incidents one level.
pub const SPREAD_AGENCIES: i64 = 2;

/// Most labels on one incident.
pub const MAX_LABELS: usize = 32;
/// Most bytes in one label.
pub const MAX_LABEL_BYTES: usize = 64;
/// Most alerts moved by one split.
pub const MAX_SPLIT_ALERTS: usize = 10_000;

/// The attacker identities (kind, value) among an alert's entities.
pub fn attacker_identities(entities: &BTreeMap<String, String>) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (field, kind) in ATTACKER_ENTITIES {
        let Some(v) = entities.get(*field) else {
            continue;
        };
        let v = v.trim();
        if v.is_empty() || v.len() > 512 {
            continue;
        }
        let kind = match *kind {
            // An indicator is an address or a domain.
            "" if v.parse::<std::net::IpAddr>().is_ok() => "ip",
            "" if v.contains('.') && !v.contains('/') => "domain",
            "" => continue,
            k => k,
        };
        let value = match kind {
            "domain" => v.trim_end_matches('.').to_ascii_lowercase(),
            "sha256" => v.to_ascii_lowercase(),
            _ => v.to_string(),
        };
        if !out.iter().any(|(k, x)| *k == kind && *x == value) {
            out.push((kind, value));
        }
    }
    out
}

/// The level above `s` (critical stays critical).
fn raised(s: Severity) -> Severity {
    match s {
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

fn severity_rank_sql() -> &'static str {
    "CASE severity WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 ELSE 3 END"
}

fn rank(s: Severity) -> i64 {
    match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

/// How the queue is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueSort {
    /// Most recently active first.
    #[default]
    LastSeen,
    /// Open incidents nearest their reporting deadline first.
    Deadline,
    /// Most severe first.
    Severity,
    /// Newest first.
    Created,
}

impl FromStr for QueueSort {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "last_seen" => QueueSort::LastSeen,
            "deadline" => QueueSort::Deadline,
            "severity" => QueueSort::Severity,
            "created" => QueueSort::Created,
            other => {
                return Err(format!(
                    "sort '{other}' is not one of last_seen, deadline, severity, created"
                ));
            }
        })
    }
}

/// Filters and order of the incident queue. Times are RFC 3339 (as stored)
/// and bound the incident's last activity.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    /// Only this status.
    pub status: Option<Status>,
    /// Only at least this severe.
    pub min_severity: Option<Severity>,
    /// Only this agency.
    pub agency: Option<String>,
    /// Only this host.
    pub host: Option<String>,
    /// Only this rule id.
    pub rule: Option<String>,
    /// Active at or after.
    pub since: Option<String>,
    /// Active at or before.
    pub until: Option<String>,
    /// Real, one drill's, or all.
    pub drill: DrillFilter,
    /// Only incidents forwarded by this province.
    pub province: Option<String>,
    /// Order.
    pub sort: QueueSort,
    /// Most rows.
    pub limit: i64,
}

/// One alert's share of an incident, for recomputing its totals.
struct AlertFacts {
    severity: Severity,
    time: String,
    entities: BTreeMap<String, String>,
}

impl Store {
    /// The incident queue: incidents in `scope` matching `q`. Incidents
    /// merged into another are left out (their alerts are in the other).
    pub async fn incident_queue(
        &self,
        q: &IncidentQuery,
        scope: Scope<'_>,
    ) -> Result<Vec<Incident>> {
        let (mode, drill_id) = q.drill.sql_params();
        let order = match q.sort {
            QueueSort::LastSeen => "last_seen DESC, id DESC".to_string(),
            QueueSort::Deadline => {
                "(status IN ('resolved', 'false_positive')) ASC, created_at ASC, id ASC".to_string()
            }
            QueueSort::Severity => format!("{} DESC, last_seen DESC, id DESC", severity_rank_sql()),
            QueueSort::Created => "created_at DESC, id DESC".to_string(),
        };
        let sql = format!(
            "{} WHERE merged_into IS NULL
               AND ($1 IS NULL OR status = $1)
               AND ($3 IS NULL OR agency IN (SELECT value FROM json_each($3)))
               AND (($4 = 0 AND drill = 0) OR ($4 = 1 AND drill_id = $5) OR $4 = 2)
               AND ($6 IS NULL OR {} >= $6)
               AND ($7 IS NULL OR agency = $7)
               AND ($8 IS NULL OR host = $8)
               AND ($9 IS NULL OR rule_id = $9)
               AND ($10 IS NULL OR last_seen >= $10)
               AND ($11 IS NULL OR last_seen <= $11)
               AND ($12 IS NULL OR province = $12)
             ORDER BY {order} LIMIT $2",
            select_incidents!(""),
            severity_rank_sql()
        );
        // The only text not bound is the fixed ORDER BY of `q.sort`.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q.status.map(Status::as_str))
            .bind(q.limit)
            .bind(scope_param(scope))
            .bind(mode)
            .bind(drill_id)
            .bind(q.min_severity.map(rank))
            .bind(&q.agency)
            .bind(&q.host)
            .bind(&q.rule)
            .bind(&q.since)
            .bind(&q.until)
            .bind(&q.province)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(incident_from_row).collect()
    }

    /// Moves every alert of incident `id` into incident `into`, closes `id`
    /// as merged, and sends later alerts of `id`'s group to `into`.
    pub async fn merge(&self, id: i64, into: i64, actor: &str) -> Result<()> {
        if id == into {
            return Err(StoreError::Invalid(
                "an incident cannot be merged into itself".into(),
            ));
        }
        let mut tx = self.write.begin().await?;
        let now = now();
        let (src, dst) = (
            merge_side(&mut tx, id).await?,
            merge_side(&mut tx, into).await?,
        );
        for (n, side) in [(id, &src), (into, &dst)] {
            super::federation::refuse_forwarded(n, side.province.as_deref())?;
            if let Some(m) = side.merged_into {
                return Err(StoreError::Conflict(format!(
                    "incident {n} was merged into incident {m}"
                )));
            }
        }
        if !dst.status.is_open() {
            return Err(StoreError::Conflict(format!(
                "incident {into} is {}; reopen it before merging into it",
                dst.status
            )));
        }
        if src.drill_id != dst.drill_id {
            return Err(StoreError::Conflict(
                "a drill's incidents merge only with incidents of the same drill".into(),
            ));
        }
        let moved = sqlx::query("UPDATE alerts SET incident_id = $1 WHERE incident_id = $2")
            .bind(into)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut labels = dst.labels.clone();
        for l in &src.labels {
            if !labels.contains(l) && labels.len() < MAX_LABELS {
                labels.push(l.clone());
            }
        }
        sqlx::query(
            "UPDATE incidents SET status = 'resolved', merged_into = $1, alert_count = 0,
                 updated_at = $2 WHERE id = $3",
        )
        .bind(into)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM incident_attackers WHERE incident_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE incident_group_aliases SET incident_id = $1 WHERE incident_id = $2")
            .bind(into)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO incident_group_aliases (group_key, incident_id) VALUES ($1, $2)
             ON CONFLICT (group_key) DO UPDATE SET incident_id = excluded.incident_id",
        )
        .bind(&src.group_key)
        .bind(into)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE incidents SET labels = $1 WHERE id = $2")
            .bind(to_json(&labels))
            .bind(into)
            .execute(&mut *tx)
            .await?;
        recompute(&mut tx, into, src.severity.max(dst.severity), &now).await?;
        timeline(
            &mut tx,
            id,
            &now,
            actor,
            "merged",
            &format!("merged into incident {into} ({moved} alerts moved)"),
        )
        .await?;
        timeline(
            &mut tx,
            into,
            &now,
            actor,
            "merged",
            &format!("incident {id} merged in ({moved} alerts)"),
        )
        .await?;
        escalate_for_spread_many(&mut tx, &[into], &now).await?;
        super::webhooks::enqueue_status(&mut tx, id, "resolved", actor, &now).await?;
        super::federation::changed(&mut tx, id, &now).await?;
        super::federation::changed(&mut tx, into, &now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves `alert_ids` of incident `id` into a new incident and returns its
    /// id. At least one alert must stay.
    pub async fn split(&self, id: i64, alert_ids: &[String], actor: &str) -> Result<i64> {
        let wanted: BTreeSet<&str> = alert_ids.iter().map(String::as_str).collect();
        if wanted.is_empty() || wanted.len() > MAX_SPLIT_ALERTS {
            return Err(StoreError::Invalid(format!(
                "a split moves 1 to {MAX_SPLIT_ALERTS} alerts (alert_ids)"
            )));
        }
        let mut tx = self.write.begin().await?;
        let now = now();
        let side = merge_side(&mut tx, id).await?;
        super::federation::refuse_forwarded(id, side.province.as_deref())?;
        if let Some(m) = side.merged_into {
            return Err(StoreError::Conflict(format!(
                "incident {id} was merged into incident {m}"
            )));
        }
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM alerts WHERE incident_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
        let have: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        if let Some(missing) = wanted.iter().find(|a| !have.contains(**a)) {
            return Err(StoreError::Invalid(format!(
                "alert {missing} is not in incident {id}"
            )));
        }
        if wanted.len() == have.len() {
            return Err(StoreError::Invalid(
                "a split must leave at least one alert in the incident".into(),
            ));
        }
        let new_id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (title, rule_id, severity, status, host, agency, group_key,
                 entities, tags, alert_count, first_seen, last_seen, drill, created_at, updated_at,
                 drill_id, labels)
             SELECT title, rule_id, severity, 'new', host, agency, 'split:' || id || ':' || $2,
                    entities, tags, 0, first_seen, last_seen, drill, $3, $3, drill_id, labels
             FROM incidents WHERE id = $1
             RETURNING id",
        )
        .bind(id)
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        for a in &wanted {
            sqlx::query("UPDATE alerts SET incident_id = $1 WHERE id = $2")
                .bind(new_id)
                .bind(*a)
                .execute(&mut *tx)
                .await?;
        }
        recompute(&mut tx, id, Severity::Low, &now).await?;
        recompute(&mut tx, new_id, Severity::Low, &now).await?;
        timeline(
            &mut tx,
            id,
            &now,
            actor,
            "split",
            &format!("{} alerts moved to incident {new_id}", wanted.len()),
        )
        .await?;
        timeline(
            &mut tx,
            new_id,
            &now,
            actor,
            "created",
            &format!("split from incident {id} ({} alerts)", wanted.len()),
        )
        .await?;
        super::federation::changed(&mut tx, id, &now).await?;
        super::federation::changed(&mut tx, new_id, &now).await?;
        tx.commit().await?;
        Ok(new_id)
    }

    /// Campaigns with at least one incident in `scope`, newest first; each
    /// lists only the incidents in `scope`.
    pub async fn campaigns(
        &self,
        drill: &DrillFilter,
        limit: i64,
        scope: Scope<'_>,
    ) -> Result<Vec<Campaign>> {
        let (mode, drill_id) = drill.sql_params();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM campaigns
             WHERE ($1 = 0 AND realm = '') OR ($1 = 1 AND realm = $2) OR $1 = 2
             ORDER BY id DESC",
        )
        .bind(mode)
        .bind(drill_id)
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            if out.len() as i64 >= limit {
                break;
            }
            if let Some(c) = self.campaign_in(id, scope).await? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// One campaign and its incidents in `scope`; `NotFound` when none of
    /// its incidents is in `scope`.
    pub async fn campaign(&self, id: i64, scope: Scope<'_>) -> Result<(Campaign, Vec<Incident>)> {
        let c = self
            .campaign_in(id, scope)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut incidents = Vec::with_capacity(c.incident_ids.len());
        for i in &c.incident_ids {
            let row = sqlx::query(select_incidents!("WHERE id = $1"))
                .bind(i)
                .fetch_one(&self.read)
                .await?;
            incidents.push(incident_from_row(&row)?);
        }
        Ok((c, incidents))
    }

    async fn campaign_in(&self, id: i64, scope: Scope<'_>) -> Result<Option<Campaign>> {
        let Some(head) =
            sqlx::query("SELECT realm, kind, value, created_at FROM campaigns WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?
        else {
            return Ok(None);
        };
        let realm: String = head.get(0);
        let members = sqlx::query(
            "SELECT i.id,
                    CASE WHEN i.province IS NULL THEN i.host ELSE i.province || '/' || i.host END,
                    CASE WHEN i.province IS NULL THEN i.agency ELSE i.province || '/' || i.agency END,
                    i.severity, i.status, i.first_seen, i.last_seen
             FROM incidents i
             WHERE i.merged_into IS NULL
               AND i.id IN (SELECT incident_id FROM incident_attackers
                            WHERE realm = $1 AND kind = $2 AND value = $3)
               AND ($4 IS NULL OR i.agency IN (SELECT value FROM json_each($4)))
             ORDER BY i.first_seen, i.id",
        )
        .bind(&realm)
        .bind(head.get::<String, _>(1))
        .bind(head.get::<String, _>(2))
        .bind(scope_param(scope))
        .fetch_all(&self.read)
        .await?;
        if members.is_empty() {
            return Ok(None);
        }
        let mut c = Campaign {
            id,
            kind: head.get(1),
            value: head.get(2),
            drill_id: (!realm.is_empty()).then_some(realm),
            incident_ids: Vec::new(),
            hosts: Vec::new(),
            agencies: Vec::new(),
            severity: Severity::Low,
            open: false,
            first_seen: String::new(),
            last_seen: String::new(),
            created_at: head.get(3),
        };
        for m in &members {
            c.incident_ids.push(m.get(0));
            let host: String = m.get(1);
            let agency: String = m.get(2);
            if !c.hosts.contains(&host) {
                c.hosts.push(host);
            }
            if !c.agencies.contains(&agency) {
                c.agencies.push(agency);
            }
            c.severity = c.severity.max(parse_severity(m.get(3))?);
            c.open |= Status::from_str(m.get(4)).is_ok_and(Status::is_open);
            let (first, last): (String, String) = (m.get(5), m.get(6));
            if c.first_seen.is_empty() || first < c.first_seen {
                c.first_seen = first;
            }
            if last > c.last_seen {
                c.last_seen = last;
            }
        }
        // In name order, not in the order the agents' alerts happened to arrive.
        c.hosts.sort();
        c.agencies.sort();
        Ok(Some(c))
    }
}

/// Adds (or with `add` false removes) a responder's label.
pub(super) async fn set_label(
    tx: &mut AnyConnection,
    id: i64,
    label: &str,
    add: bool,
    now: &str,
) -> Result<()> {
    let label = label.trim();
    if label.is_empty() || label.len() > MAX_LABEL_BYTES || label.chars().any(char::is_control) {
        return Err(StoreError::Invalid(format!(
            "a label has 1 to {MAX_LABEL_BYTES} bytes and no control characters"
        )));
    }
    let stored: String = sqlx::query_scalar("SELECT labels FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut labels: Vec<String> = from_json(&stored)?;
    let present = labels.iter().any(|l| l == label);
    match (add, present) {
        (true, true) => {
            return Err(StoreError::Conflict(format!(
                "incident {id} is already labelled '{label}'"
            )));
        }
        (false, false) => {
            return Err(StoreError::Conflict(format!(
                "incident {id} has no label '{label}'"
            )));
        }
        (true, false) if labels.len() >= MAX_LABELS => {
            return Err(StoreError::Invalid(format!(
                "an incident has at most {MAX_LABELS} labels"
            )));
        }
        (true, false) => labels.push(label.to_string()),
        (false, true) => labels.retain(|l| l != label),
    }
    sqlx::query("UPDATE incidents SET labels = $1, updated_at = $2 WHERE id = $3")
        .bind(to_json(&labels))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// What merge and split need to know of one incident.
struct MergeSide {
    status: Status,
    severity: Severity,
    group_key: String,
    labels: Vec<String>,
    drill_id: Option<String>,
    merged_into: Option<i64>,
    province: Option<String>,
}

async fn merge_side(tx: &mut AnyConnection, id: i64) -> Result<MergeSide> {
    let r = sqlx::query(
        "SELECT status, severity, group_key, labels, drill_id, merged_into, province
         FROM incidents WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(MergeSide {
        status: Status::from_str(r.get(0)).map_err(StoreError::Damaged)?,
        severity: parse_severity(r.get(1))?,
        group_key: r.get(2),
        labels: from_json(r.get(3))?,
        drill_id: r.get(4),
        merged_into: r.get(5),
        province: r.get(6),
    })
}

pub(super) async fn timeline(
    tx: &mut AnyConnection,
    id: i64,
    at: &str,
    actor: &str,
    kind: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(at)
    .bind(actor)
    .bind(kind)
    .bind(detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Sets an incident's count, times, severity (at least `floor`) and
/// entities from the alerts it now holds, and rebuilds its attacker index.
async fn recompute(tx: &mut AnyConnection, id: i64, floor: Severity, now: &str) -> Result<()> {
    let facts = sqlx::query(
        "SELECT severity, time, entities FROM alerts WHERE incident_id = $1 ORDER BY time, id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| {
        Ok(AlertFacts {
            severity: parse_severity(r.get(0))?,
            time: r.get(1),
            entities: from_json(r.get(2))?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let head = sqlx::query("SELECT host, agency, drill_id FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let (host, agency, drill_id): (String, String, Option<String>) =
        (head.get(0), head.get(1), head.get(2));
    let mut severity = floor;
    let mut entities = BTreeMap::new();
    for f in &facts {
        severity = severity.max(f.severity);
        for (k, v) in &f.entities {
            entities.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let (first, last) = match (facts.first(), facts.last()) {
        (Some(f), Some(l)) => (f.time.clone(), l.time.clone()),
        _ => (now.to_string(), now.to_string()),
    };
    sqlx::query(
        "UPDATE incidents SET alert_count = $1, first_seen = $2, last_seen = $3, severity = $4,
             entities = $5, updated_at = $6 WHERE id = $7",
    )
    .bind(facts.len() as i64)
    .bind(first)
    .bind(last)
    .bind(severity.as_str())
    .bind(to_json(&entities))
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM incident_attackers WHERE incident_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let realm = drill_id.unwrap_or_default();
    for f in &facts {
        index_attackers(tx, id, &realm, &host, &agency, &f.entities, now).await?;
    }
    Ok(())
}

/// Records the attacker identities of an alert of incident `id` and links
/// the incident into campaigns: an identity seen on a second host starts
/// one. Returns whether any identity was new for this incident (so the
/// caller re-checks spread).
pub(super) async fn index_attackers(
    tx: &mut AnyConnection,
    id: i64,
    realm: &str,
    host: &str,
    agency: &str,
    entities: &BTreeMap<String, String>,
    now: &str,
) -> Result<bool> {
    let mut any_new = false;
    for (kind, value) in attacker_identities(entities) {
        any_new |= index_identity(tx, id, realm, host, agency, kind, &value, now).await?;
    }
    Ok(any_new)
}

/// Records one attacker identity (`kind`, `value`) of incident `id` seen on
/// `host` of `agency`, and starts its campaign once it is on a second
/// host. Returns whether it was new for this incident.
#[allow(clippy::too_many_arguments)]
pub(super) async fn index_identity(
    tx: &mut AnyConnection,
    id: i64,
    realm: &str,
    host: &str,
    agency: &str,
    kind: &str,
    value: &str,
    now: &str,
) -> Result<bool> {
    let added = sqlx::query(
        "INSERT INTO incident_attackers (incident_id, realm, kind, value, host, agency)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(realm)
    .bind(kind)
    .bind(value)
    .bind(host)
    .bind(agency)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 0 {
        return Ok(false);
    }
    open_campaign_if_spread(tx, realm, kind, value, now).await?;
    Ok(true)
}

/// Starts the campaign of attacker identity (`kind`, `value`) in `realm`
/// once it is seen on a second host (at most one campaign per identity).
pub(super) async fn open_campaign_if_spread(
    tx: &mut AnyConnection,
    realm: &str,
    kind: &str,
    value: &str,
    now: &str,
) -> Result<()> {
    if distinct_up_to(tx, Reach::Hosts, realm, kind, value, 2).await? >= 2 {
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO campaigns (realm, kind, value, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (realm, kind, value) DO NOTHING RETURNING id",
        )
        .bind(realm)
        .bind(kind)
        .bind(value)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(c) = created {
            tracing::info!(campaign = c, kind, value = %value, "campaign: one attacker on several hosts");
        }
    }
    Ok(())
}

/// Raises each incident of `ids`, and every open incident of their
/// campaigns, by one level (once each) when a campaign has reached
/// [`SPREAD_HOSTS`] hosts or [`SPREAD_AGENCIES`] agencies.
///
/// The cost stays flat as a campaign grows: the campaign's members are
/// raised once, when it first spreads (`campaigns.spread_at` is set then);
/// an incident that joins a campaign that has spread is raised alone, and
/// the hosts and agencies are counted only up to the thresholds. When two
/// writers see a campaign spread at once, the one whose update sets
/// `spread_at` raises the members and the other raises its own incidents.
pub(super) async fn escalate_for_spread_many(
    tx: &mut AnyConnection,
    ids: &[i64],
    now: &str,
) -> Result<()> {
    let mut raise: Vec<(i64, String)> = Vec::new();
    // Campaign → whether it has spread, decided once per call.
    let mut spread: BTreeMap<i64, bool> = BTreeMap::new();
    for chunk in pieces(ids) {
        let mut q = batch_query(
            tx,
            format!(
                "SELECT m.incident_id, c.id, c.realm, c.kind, c.value, c.spread_at
             FROM campaigns c JOIN incident_attackers m
                  ON m.realm = c.realm AND m.kind = c.kind AND m.value = c.value
             WHERE m.incident_id IN ({})
             ORDER BY c.id, m.incident_id",
                list(chunk.len(), 1)
            ),
        );
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            let (id, campaign, realm, kind, value, spread_at): (
                i64,
                i64,
                String,
                String,
                String,
                Option<String>,
            ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
            let why = format!(
                "{kind} {value} seen on {SPREAD_HOSTS}+ hosts or in {SPREAD_AGENCIES}+ agencies (campaign {campaign})"
            );
            let has_spread = match spread.get(&campaign) {
                Some(s) => *s,
                None if spread_at.is_some() => true,
                None => {
                    let s =
                        campaign_spreads(tx, campaign, &realm, &kind, &value, &why, now).await?;
                    spread.insert(campaign, s);
                    s
                }
            };
            if has_spread {
                raise.push((id, why));
            }
        }
    }
    escalate_many(tx, &raise, "spread", now).await
}

/// Whether the campaign not yet marked as spread has now reached the
/// thresholds; the writer that marks it raises all its open members.
async fn campaign_spreads(
    tx: &mut AnyConnection,
    campaign: i64,
    realm: &str,
    kind: &str,
    value: &str,
    why: &str,
    now: &str,
) -> Result<bool> {
    let hosts = distinct_up_to(tx, Reach::Hosts, realm, kind, value, SPREAD_HOSTS).await?;
    let agencies = distinct_up_to(tx, Reach::Agencies, realm, kind, value, SPREAD_AGENCIES).await?;
    if hosts < SPREAD_HOSTS && agencies < SPREAD_AGENCIES {
        return Ok(false);
    }
    let first =
        sqlx::query("UPDATE campaigns SET spread_at = $1 WHERE id = $2 AND spread_at IS NULL")
            .bind(now)
            .bind(campaign)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if first {
        tracing::info!(campaign, kind, value = %value, "campaign spread: its incidents are raised");
        let members: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT x.incident_id FROM incident_attackers x JOIN incidents i ON i.id = x.incident_id
             WHERE x.realm = $1 AND x.kind = $2 AND x.value = $3
               AND i.status NOT IN ('resolved', 'false_positive') AND i.province IS NULL",
        )
        .bind(realm)
        .bind(kind)
        .bind(value)
        .fetch_all(&mut *tx)
        .await?;
        let members: Vec<(i64, String)> =
            members.into_iter().map(|m| (m, why.to_string())).collect();
        escalate_many(tx, &members, "spread", now).await?;
    }
    Ok(true)
}

/// What [`distinct_up_to`] counts of one attacker.
#[derive(Clone, Copy)]
enum Reach {
    Hosts,
    Agencies,
}

/// How many distinct hosts or agencies one attacker was seen on, counted up
/// to `cap` (so a campaign of thousands of incidents costs a few rows).
async fn distinct_up_to(
    tx: &mut AnyConnection,
    reach: Reach,
    realm: &str,
    kind: &str,
    value: &str,
    cap: i64,
) -> Result<i64> {
    let sql = match reach {
        Reach::Hosts => {
            "SELECT COUNT(*) FROM (SELECT DISTINCT host FROM incident_attackers
              WHERE realm = $1 AND kind = $2 AND value = $3 LIMIT $4) d"
        }
        Reach::Agencies => {
            "SELECT COUNT(*) FROM (SELECT DISTINCT agency FROM incident_attackers
              WHERE realm = $1 AND kind = $2 AND value = $3 LIMIT $4) d"
        }
    };
    Ok(sqlx::query_scalar(sql)
        .bind(realm)
        .bind(kind)
        .bind(value)
        .bind(cap)
        .fetch_one(&mut *tx)
        .await?)
}

/// Raises each incident of `items` (id, why) one level for `reason` unless
/// it already was for that reason (an incident named twice counts once,
/// with its first why); the timeline says why. A few statements for the
/// whole list.
pub(super) async fn escalate_many(
    tx: &mut AnyConnection,
    items: &[(i64, String)],
    reason: &str,
    now: &str,
) -> Result<()> {
    let mut why: BTreeMap<i64, &str> = BTreeMap::new();
    for (id, w) in items {
        why.entry(*id).or_insert(w.as_str());
    }
    let ids: Vec<i64> = why.keys().copied().collect();
    // Every statement goes over pieces of fixed sizes, so its texts stay
    // prepared.
    let mut todo: Vec<i64> = Vec::new();
    for chunk in pieces(&ids) {
        let mut q = batch_query(
            tx,
            format!(
                "SELECT DISTINCT incident_id FROM incident_events
                 WHERE kind = 'escalated' AND detail LIKE $1 AND incident_id IN ({})",
                list(chunk.len(), 2)
            ),
        );
        q = q.bind(format!("{reason}:%"));
        for id in chunk {
            q = q.bind(*id);
        }
        let done: BTreeSet<i64> = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        todo.extend(chunk.iter().copied().filter(|id| !done.contains(id)));
    }
    let mut rises: Vec<(i64, Severity, Severity)> = Vec::new();
    for chunk in pieces(&todo) {
        let mut q = batch_query(
            tx,
            format!(
                "SELECT id, severity FROM incidents WHERE id IN ({}) ORDER BY id",
                list(chunk.len(), 1)
            ),
        );
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            let old = parse_severity(r.get(1))?;
            let new = raised(old);
            if new != old {
                rises.push((r.get(0), old, new));
            }
        }
    }
    for chunk in pieces(&rises) {
        let mut q = batch_query(
            tx,
            format!(
                "WITH v(id, sev) AS (VALUES {})
                 UPDATE incidents SET severity = v.sev, updated_at = ${}
                 FROM v WHERE incidents.id = v.id",
                tuples(chunk.len(), 2, 1),
                chunk.len() * 2 + 1
            ),
        );
        for (id, _, new) in chunk {
            q = q.bind(*id).bind(new.as_str());
        }
        q.bind(now.to_string()).execute(&mut *tx).await?;
        let raised_ids: Vec<i64> = chunk.iter().map(|(id, _, _)| *id).collect();
        super::federation::changed_many(tx, &raised_ids, now).await?;
        let mut q = batch_query(
            tx,
            format!(
                "INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES {}",
                tuples(chunk.len(), 5, 1)
            ),
        );
        for (id, old, new) in chunk {
            q = q
                .bind(*id)
                .bind(now.to_string())
                .bind("ward")
                .bind("escalated")
                .bind(format!("{reason}: {}; {old} → {new}", why[id]));
        }
        q.execute(&mut *tx).await?;
    }
    for (id, old, new) in &rises {
        tracing::info!(incident = id, %old, %new, reason, "incident escalated");
    }
    Ok(())
}

/// The `[[suppress]]` entry an admin could add to the agents' config after
/// incident `i` was judged a false positive.
pub fn suppression_proposal(i: &Incident) -> Option<String> {
    if i.status != Status::FalsePositive {
        return None;
    }
    let (entity, value) = ward_agent::wire::PRIMARY_ENTITY_ORDER
        .iter()
        .find_map(|k| i.entities.get(*k).map(|v| (*k, v.as_str())))?;
    let quote = |s: &str| toml_string(s);
    Some(format!(
        "[[suppress]]\nrules = [{}]\nentity = {}\nvalues = [{}]\nreason = {}\n",
        quote(&i.rule_id),
        quote(entity),
        quote(value),
        quote(&format!("incident {} judged a false positive", i.id)),
    ))
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ents(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attackers_are_sources_domains_and_hashes_not_victims() {
        let got = attacker_identities(&ents(&[
            ("src_ip", "203.0.113.9"),
            ("http_host", "portal.example.gov.vn"),
            ("domain", "portal.example.gov.vn"),
            ("query", "C2.Example.NET."),
            ("sha256", "ABCDEF"),
            ("user", "root"),
        ]));
        assert_eq!(
            got,
            vec![
                ("ip", "203.0.113.9".to_string()),
                ("domain", "c2.example.net".to_string()),
                ("sha256", "abcdef".to_string()),
            ]
        );
    }

    #[test]
    fn indicators_are_classified_and_deduplicated() {
        let got = attacker_identities(&ents(&[
            ("ioc_value", "198.51.100.7"),
            ("src_ip", "198.51.100.7"),
        ]));
        assert_eq!(got, vec![("ip", "198.51.100.7".to_string())]);
        let got = attacker_identities(&ents(&[("ioc_value", "evil.example.")]));
        assert_eq!(got, vec![("domain", "evil.example".to_string())]);
        assert!(attacker_identities(&ents(&[("ioc_value", "10.0.0.0/8")])).is_empty());
    }

    #[test]
    fn severity_rises_one_level_and_stops_at_critical() {
        assert_eq!(raised(Severity::Low), Severity::Medium);
        assert_eq!(raised(Severity::High), Severity::Critical);
        assert_eq!(raised(Severity::Critical), Severity::Critical);
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn sorts_parse_and_bad_ones_say_which_exist() {
        assert_eq!("deadline".parse::<QueueSort>(), Ok(QueueSort::Deadline));
        let e = "age".parse::<QueueSort>().unwrap_err();
        assert!(e.contains("last_seen, deadline"), "{e}");
    }
}
