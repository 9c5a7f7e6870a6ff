//! Set-wise ingest of agents' alert batches (one agent's, or several
//! stored together by the group commit in `commit.rs`).
//!
//! A transaction costs a fixed number of statements, whatever its size:
//! its alerts are first gathered into groups (one per group key, see
//! `group_key` in the store), and every step is one multi-row statement
//! over the groups or alerts: finding duplicates, retiring
//! quiet incidents, counting into open incidents, opening new ones, the
//! attacker index and campaigns, escalations, the alert rows and their
//! packets. Storing alert by alert took about ten statements per alert and
//! bounded the coordinator at a few hundred alerts per second.
//!
//! The outcome is the one alert-by-alert ingest gives: a group whose alerts
//! are further apart than the grouping window is split into runs, and each
//! run is resolved in its own round, in batch order.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};
use ward_agent::wire::{Alert, Severity};

use super::workflow::{self, VOLUME_ESCALATION, attacker_identities};
use super::{AgentPrincipal, Backend, Result, federation, to_json, ts, webhooks};

/// A statement built for a batch, its values bound one by one.
pub(super) type BatchQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// Rows per multi-row statement, largest first: a list is cut into pieces
/// of these sizes, so each statement comes in three texts that stay in the
/// connection's prepared-statement cache (a text per row count would be
/// parsed anew every time, and parsing a statement of a few thousand
/// placeholders costs more than running it). The largest stays far below
/// both dialects' limits on bound values (SQLite 32,766, PostgreSQL 65,535)
/// at the widest row (16 values).
const PIECE_ROWS: [usize; 3] = [64, 8, 1];

/// `items` cut into consecutive pieces of [`PIECE_ROWS`] sizes (largest
/// that fits first).
pub(super) fn pieces<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = PIECE_ROWS
            .iter()
            .copied()
            .find(|&n| n <= rest.len())
            .unwrap_or(1);
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    })
}

/// `($1, $2), ($3, $4)`: `rows` tuples of `cols` placeholders numbered
/// from `first`.
pub(super) fn tuples(rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * (cols * 5 + 4));
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "${}", first + r * cols + c);
        }
        s.push(')');
    }
    s
}

/// `$1, $2, $3`: `n` placeholders numbered from `first`.
pub(super) fn list(n: usize, first: usize) -> String {
    tuples(n, 1, first).replace(['(', ')'], "")
}

/// A statement whose text was built from placeholders only (every value is
/// bound, none is spliced in), for the connection `conn`.
///
/// On SQLite the numbered placeholders become anonymous `?`: SQLite finds
/// the name of a numbered parameter by a linear scan of all of them, and
/// sqlx asks for every parameter's name when it binds, so binding the
/// hundreds of values of a multi-row statement by number costs time
/// quadratic in their count (it was an eighth of the coordinator's CPU under
/// fleet load). Anonymous ones are bound by position, which is the same
/// order when each `$n` appears once, in order — as [`tuples`] and [`list`]
/// write them; batch statements keep their placeholders in that order.
pub(super) fn batch_query(conn: &AnyConnection, sql: String) -> BatchQuery {
    let sql = match conn.backend_name() {
        "SQLite" => positional(&sql).unwrap_or_else(|| {
            debug_assert!(false, "batch statement placeholders out of order: {sql}");
            sql
        }),
        _ => sql,
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
}

/// `sql` with `$1, $2, …` replaced by `?`, when each appears once and in
/// that order (outside quoted literals); `None` otherwise.
fn positional(sql: &str) -> Option<String> {
    let mut out = String::with_capacity(sql.len());
    let mut next = 1usize;
    let mut quoted = false;
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == '\'' {
            quoted = !quoted;
        } else if c == '$' && !quoted {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                if rest[..digits].parse::<usize>().ok()? != next {
                    return None;
                }
                next += 1;
                rest = &rest[digits..];
                out.push('?');
                continue;
            }
        }
        out.push(c);
    }
    Some(out)
}

/// Open incidents (the ones that still take alerts).
const OPEN: &str = "status NOT IN ('resolved', 'false_positive')";

/// An alert to store: its group key, and which of the transaction's
/// batches (agents) it came from.
pub(super) struct Item<'a> {
    pub key: String,
    pub alert: &'a Alert,
    pub batch: usize,
}

/// What one batch did.
#[derive(Default, Clone, Copy)]
pub(super) struct Stored {
    /// Alerts stored.
    pub accepted: u64,
    /// Alerts already stored (by id), or twice in the batch.
    pub duplicates: u64,
}

/// The alerts of one group key that go into one incident.
struct Group<'a> {
    key: &'a str,
    /// The alerts, each with the batch it came from.
    alerts: Vec<(&'a Alert, usize)>,
    /// Runs of one key are resolved in successive rounds.
    round: usize,
    tmin: DateTime<Utc>,
    tmax: DateTime<Utc>,
    severity: Severity,
    /// The union of the alerts' entities, the first value of a name kept.
    entities: std::collections::BTreeMap<String, String>,
    /// The incident, once resolved: its id, alert count after this batch,
    /// and whether this batch opened it.
    incident: Option<(i64, i64, bool)>,
}

impl<'a> Group<'a> {
    fn new(key: &'a str, a: &'a Alert, batch: usize, round: usize) -> Self {
        Group {
            key,
            alerts: vec![(a, batch)],
            round,
            tmin: a.time,
            tmax: a.time,
            severity: a.severity,
            entities: a.entities.clone(),
            incident: None,
        }
    }

    fn add(&mut self, a: &'a Alert, batch: usize) {
        self.alerts.push((a, batch));
        self.tmin = self.tmin.min(a.time);
        self.tmax = self.tmax.max(a.time);
        self.severity = self.severity.max(a.severity);
        for (k, v) in &a.entities {
            self.entities.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    fn first(&self) -> &'a Alert {
        self.alerts[0].0
    }

    /// The batch of the first alert: its agent opens the incident.
    fn first_batch(&self) -> usize {
        self.alerts[0].1
    }

    fn id(&self) -> i64 {
        self.incident.map_or(0, |(id, _, _)| id)
    }
}

/// Splits `fresh` (sorted by group key, batch order within a key) into
/// groups: a run of one key ends where an alert comes more than `window`
/// after the run's latest one (alert by alert, that alert would have
/// retired the incident and opened a new one).
fn gather<'a>(fresh: &[&'a Item<'a>], window: chrono::Duration) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    for it in fresh {
        let (key, a) = (it.key.as_str(), it.alert);
        match out.last_mut() {
            Some(g) if g.key == key && a.time - window <= g.tmax => g.add(a, it.batch),
            Some(g) if g.key == key => {
                let round = g.round + 1;
                out.push(Group::new(key, a, it.batch, round));
            }
            _ => out.push(Group::new(key, a, it.batch, 0)),
        }
    }
    out
}

/// Stores `items` (sorted by group key, batch order within a key) of the
/// batches of `agents` into incidents in `tx`; what each batch did. `None`
/// when another writer stored some of them after the duplicate check: the
/// caller rolls back and runs the transaction again (the check then sees
/// them).
pub(super) async fn store_alerts(
    tx: &mut AnyConnection,
    backend: Backend,
    agents: &[&AgentPrincipal],
    items: &[Item<'_>],
    window: chrono::Duration,
    now: &str,
) -> Result<Option<Vec<Stored>>> {
    let known = stored_ids(tx, items).await?;
    let mut seen = HashSet::new();
    let mut stored = vec![Stored::default(); agents.len()];
    let mut fresh: Vec<&Item> = Vec::with_capacity(items.len());
    for it in items {
        if !known.contains(it.alert.id.as_str()) && seen.insert(it.alert.id.as_str()) {
            stored[it.batch].accepted += 1;
            fresh.push(it);
        } else {
            stored[it.batch].duplicates += 1;
        }
    }
    if fresh.is_empty() {
        return Ok(Some(stored));
    }
    let mut groups = gather(&fresh, window);
    let rounds = groups.iter().map(|g| g.round).max().unwrap_or(0);
    for round in 0..=rounds {
        let idx: Vec<usize> = (0..groups.len())
            .filter(|&i| groups[i].round == round)
            .collect();
        resolve(tx, backend, agents, &mut groups, &idx, window, now).await?;
    }

    let why = format!("{VOLUME_ESCALATION} alerts or more");
    let volume: Vec<(i64, String)> = groups
        .iter()
        .filter_map(|g| g.incident)
        .filter(|&(_, count, _)| count >= VOLUME_ESCALATION)
        .map(|(id, _, _)| (id, why.clone()))
        .collect();
    workflow::escalate_many(tx, &volume, "volume", now).await?;
    let spread = index_attackers(tx, agents, &groups, now).await?;
    workflow::escalate_for_spread_many(tx, &spread, now).await?;

    if insert_alerts(tx, agents, &groups, now).await? < fresh.len() as u64 {
        return Ok(None);
    }
    insert_packets(tx, &groups).await?;

    let created: Vec<i64> = groups
        .iter()
        .filter_map(|g| g.incident)
        .filter(|&(_, _, new)| new)
        .map(|(id, _, _)| id)
        .collect();
    webhooks::enqueue_created_many(tx, &created, now).await?;
    let touched: BTreeSet<i64> = groups.iter().map(Group::id).collect();
    federation::changed_many(tx, &touched.into_iter().collect::<Vec<_>>(), now).await?;
    Ok(Some(stored))
}

/// The ids of `items` already stored.
async fn stored_ids(tx: &mut AnyConnection, items: &[Item<'_>]) -> Result<HashSet<String>> {
    let mut known = HashSet::new();
    for chunk in pieces(items) {
        let mut q = batch_query(
            tx,
            format!(
                "SELECT id FROM alerts WHERE id IN ({})",
                list(chunk.len(), 1)
            ),
        );
        for it in chunk {
            q = q.bind(it.alert.id.clone());
        }
        for r in q.fetch_all(&mut *tx).await? {
            known.insert(r.get::<String, _>(0));
        }
    }
    Ok(known)
}

/// Finds or opens the incident of every group in `idx` (one round: each
/// key at most once).
///
/// Quiet incidents give their key up first; then one UPDATE counts the
/// groups into their open incidents (on PostgreSQL after locking those rows
/// in key order, so concurrent replicas queue instead of deadlocking), the
/// groups of merged incidents follow their aliases, and one INSERT opens
/// the rest. A writer that lost the race to open one (the partial unique
/// index of open incidents per key) goes round again and counts into the
/// winner's.
async fn resolve(
    tx: &mut AnyConnection,
    backend: Backend,
    agents: &[&AgentPrincipal],
    groups: &mut [Group<'_>],
    idx: &[usize],
    window: chrono::Duration,
    now: &str,
) -> Result<()> {
    for chunk in pieces(idx) {
        let mut q = batch_query(
            tx,
            format!(
                "WITH v(k, ws) AS (VALUES {})
             UPDATE incidents SET group_key = group_key || '#' || CAST(id AS TEXT)
             FROM v WHERE incidents.group_key = v.k AND incidents.{OPEN}
               AND incidents.last_seen < v.ws",
                tuples(chunk.len(), 2, 1)
            ),
        );
        for &i in chunk {
            let g = &groups[i];
            q = q.bind(g.key.to_string()).bind(ts(g.first().time - window));
        }
        q.execute(&mut *tx).await?;
    }
    // The incident's stored severity and entities, as this batch leaves them.
    let mut facts: HashMap<i64, Facts> = HashMap::new();
    let mut pending: Vec<usize> = idx.to_vec();
    while !pending.is_empty() {
        if backend == Backend::Postgres {
            for chunk in pieces(&pending) {
                let mut q = batch_query(
                    tx,
                    format!(
                        "SELECT id FROM incidents WHERE group_key IN ({}) AND {OPEN}
                     ORDER BY group_key FOR UPDATE",
                        list(chunk.len(), 1)
                    ),
                );
                for &i in chunk {
                    q = q.bind(groups[i].key.to_string());
                }
                q.fetch_all(&mut *tx).await?;
            }
        }
        count_into_open(tx, groups, &pending, &mut facts, now).await?;
        pending.retain(|&i| groups[i].incident.is_none());
        follow_aliases(tx, groups, &pending, &mut facts, window, now).await?;
        pending.retain(|&i| groups[i].incident.is_none());
        open_incidents(tx, agents, groups, &pending, now).await?;
        pending.retain(|&i| groups[i].incident.is_none());
    }
    // Severity and entities of the incidents that already existed.
    let changed: Vec<(i64, Severity, String)> = facts
        .into_iter()
        .filter(|(_, f)| f.changed)
        .map(|(id, f)| (id, f.severity, f.entities))
        .collect();
    set_severity_and_entities(tx, &changed).await
}

/// Counts the groups `pending` into their open incidents in one UPDATE and
/// records each incident's stored severity and entities merged with the
/// group's in `facts`.
async fn count_into_open(
    tx: &mut AnyConnection,
    groups: &mut [Group<'_>],
    pending: &[usize],
    facts: &mut HashMap<i64, Facts>,
    now: &str,
) -> Result<()> {
    for chunk in pieces(pending) {
        let by_key: HashMap<&str, usize> = chunk.iter().map(|&i| (groups[i].key, i)).collect();
        let cols = 4;
        let mut q = batch_query(
            tx,
            format!(
                "WITH v(k, n, tmin, tmax) AS (VALUES {})
             UPDATE incidents SET alert_count = alert_count + v.n,
                 first_seen = CASE WHEN v.tmin < first_seen THEN v.tmin ELSE first_seen END,
                 last_seen = CASE WHEN v.tmax > last_seen THEN v.tmax ELSE last_seen END,
                 updated_at = ${}
             FROM v WHERE incidents.group_key = v.k AND incidents.{OPEN}
             RETURNING incidents.id, incidents.group_key, incidents.severity,
                       incidents.entities, incidents.alert_count",
                tuples(chunk.len(), cols, 1),
                chunk.len() * cols + 1
            ),
        );
        for &i in chunk {
            let g = &groups[i];
            q = q
                .bind(g.key.to_string())
                .bind(g.alerts.len() as i64)
                .bind(ts(g.tmin))
                .bind(ts(g.tmax));
        }
        let rows = q.bind(now.to_string()).fetch_all(&mut *tx).await?;
        for r in rows {
            let key: String = r.get(1);
            let Some(&i) = by_key.get(key.as_str()) else {
                continue;
            };
            let id: i64 = r.get(0);
            let stored = (r.get::<String, _>(2), r.get::<String, _>(3));
            merge_facts(facts, id, stored, &groups[i]);
            groups[i].incident = Some((id, r.get(4), false));
        }
    }
    Ok(())
}

/// The groups of incidents merged into another follow it while it is open
/// and within the window (rare: one statement per such group).
async fn follow_aliases(
    tx: &mut AnyConnection,
    groups: &mut [Group<'_>],
    pending: &[usize],
    facts: &mut HashMap<i64, Facts>,
    window: chrono::Duration,
    now: &str,
) -> Result<()> {
    let mut aliased: HashSet<String> = HashSet::new();
    for chunk in pieces(pending) {
        let mut q = batch_query(
            tx,
            format!(
                "SELECT group_key FROM incident_group_aliases WHERE group_key IN ({})",
                list(chunk.len(), 1)
            ),
        );
        for &i in chunk {
            q = q.bind(groups[i].key.to_string());
        }
        for r in q.fetch_all(&mut *tx).await? {
            aliased.insert(r.get(0));
        }
    }
    for &i in pending {
        if !aliased.contains(groups[i].key) {
            continue;
        }
        let g = &groups[i];
        let row = sqlx::query(
            "UPDATE incidents SET alert_count = alert_count + $1,
                 first_seen = CASE WHEN $2 < first_seen THEN $2 ELSE first_seen END,
                 last_seen = CASE WHEN $3 > last_seen THEN $3 ELSE last_seen END,
                 updated_at = $4
             WHERE id = (SELECT incident_id FROM incident_group_aliases WHERE group_key = $5)
               AND status NOT IN ('resolved', 'false_positive') AND last_seen >= $6
             RETURNING id, severity, entities, alert_count",
        )
        .bind(g.alerts.len() as i64)
        .bind(ts(g.tmin))
        .bind(ts(g.tmax))
        .bind(now)
        .bind(g.key)
        .bind(ts(g.first().time - window))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = row {
            let id: i64 = r.get(0);
            merge_facts(facts, id, (r.get(1), r.get(2)), g);
            groups[i].incident = Some((id, r.get(3), false));
        }
    }
    Ok(())
}

/// Folds group `g` into what is known of incident `id`: its stored
/// severity and entities (from the row, unless an earlier group of this
/// batch already counted into it).
fn merge_facts(facts: &mut HashMap<i64, Facts>, id: i64, stored: (String, String), g: &Group<'_>) {
    let f = facts.entry(id).or_insert_with(|| Facts {
        severity: Severity::from_str(&stored.0).unwrap_or(Severity::Low),
        entities: stored.1,
        changed: false,
    });
    let mut map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&f.entities).unwrap_or_default();
    let before = map.len();
    for (k, v) in &g.entities {
        map.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if map.len() != before {
        f.entities = to_json(&map);
        f.changed = true;
    }
    if g.severity > f.severity {
        f.severity = g.severity;
        f.changed = true;
    }
}

/// An existing incident's severity and entities as this transaction
/// leaves them, and whether they differ from the stored ones.
struct Facts {
    severity: Severity,
    entities: String,
    changed: bool,
}

/// Opens an incident for every group in `pending` in one INSERT, with its
/// `created` timeline entry. Groups whose key another writer opened
/// meanwhile stay unresolved.
async fn open_incidents(
    tx: &mut AnyConnection,
    agents: &[&AgentPrincipal],
    groups: &mut [Group<'_>],
    pending: &[usize],
    now: &str,
) -> Result<()> {
    for chunk in pieces(pending) {
        let by_key: HashMap<&str, usize> = chunk.iter().map(|&i| (groups[i].key, i)).collect();
        let mut q = batch_query(
            tx,
            format!(
                "INSERT INTO incidents (title, rule_id, severity, status, host, agency, group_key,
                 entities, tags, alert_count, first_seen, last_seen, drill, created_at,
                 updated_at, drill_id)
             VALUES {}
             ON CONFLICT (group_key) WHERE {OPEN} DO NOTHING
             RETURNING id, group_key",
                tuples(chunk.len(), 16, 1)
            ),
        );
        for &i in chunk {
            let g = &groups[i];
            let a = g.first();
            let agent = agents[g.first_batch()];
            q = q
                .bind(a.title.clone())
                .bind(a.rule_id.clone())
                .bind(g.severity.as_str())
                .bind("new")
                .bind(a.host.clone())
                .bind(agent.agency.clone())
                .bind(g.key.to_string())
                .bind(to_json(&g.entities))
                .bind(to_json(&a.tags))
                .bind(g.alerts.len() as i64)
                .bind(ts(g.tmin))
                .bind(ts(g.tmax))
                .bind(i64::from(a.drill_id.is_some()))
                .bind(now.to_string())
                .bind(now.to_string())
                .bind(a.drill_id.clone());
        }
        let mut opened = Vec::new();
        for r in q.fetch_all(&mut *tx).await? {
            let key: String = r.get(1);
            if let Some(&i) = by_key.get(key.as_str()) {
                let id: i64 = r.get(0);
                groups[i].incident = Some((id, groups[i].alerts.len() as i64, true));
                opened.push(i);
            }
        }
        for piece in pieces(&opened) {
            let mut q = batch_query(
                tx,
                format!(
                    "INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES {}",
                    tuples(piece.len(), 5, 1)
                ),
            );
            for &i in piece {
                let g = &groups[i];
                q = q
                    .bind(g.id())
                    .bind(now.to_string())
                    .bind(format!("agent:{}", agents[g.first_batch()].id))
                    .bind("created")
                    .bind(format!("first alert {}", g.first().id));
            }
            q.execute(&mut *tx).await?;
        }
    }
    Ok(())
}

/// Writes the severity and entities of incidents that this batch changed
/// (only those: most transactions change none).
async fn set_severity_and_entities(
    tx: &mut AnyConnection,
    changed: &[(i64, Severity, String)],
) -> Result<()> {
    for chunk in pieces(changed) {
        let mut q = batch_query(
            tx,
            format!(
                "WITH v(id, sev, ent) AS (VALUES {})
             UPDATE incidents SET severity = v.sev, entities = v.ent
             FROM v WHERE incidents.id = v.id
               AND (incidents.severity <> v.sev OR incidents.entities <> v.ent)",
                tuples(chunk.len(), 3, 1)
            ),
        );
        for (id, sev, entities) in chunk {
            q = q.bind(*id).bind(sev.as_str()).bind(entities.clone());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Records the attacker identities of the batch's alerts (one INSERT),
/// opens the campaigns of identities now on a second host, and returns the
/// incidents that gained an identity (their spread is re-checked).
async fn index_attackers(
    tx: &mut AnyConnection,
    agents: &[&AgentPrincipal],
    groups: &[Group<'_>],
    now: &str,
) -> Result<Vec<i64>> {
    // (incident, realm, kind, value, host, agency)
    type Row<'r> = (i64, String, &'static str, String, &'r str, &'r str);
    let mut rows: Vec<Row> = Vec::new();
    let mut seen = HashSet::new();
    for g in groups {
        for (a, batch) in &g.alerts {
            for (kind, value) in attacker_identities(&a.entities) {
                if seen.insert((g.id(), kind, value.clone())) {
                    let realm = a.drill_id.clone().unwrap_or_default();
                    let agency = agents[*batch].agency.as_str();
                    rows.push((g.id(), realm, kind, value, &a.host, agency));
                }
            }
        }
    }
    let mut gained = BTreeSet::new();
    let mut identities: BTreeSet<(String, String, String)> = BTreeSet::new();
    for chunk in pieces(&rows) {
        let mut q = batch_query(
            tx,
            format!(
                "INSERT INTO incident_attackers (incident_id, realm, kind, value, host, agency)
             VALUES {} ON CONFLICT DO NOTHING
             RETURNING incident_id, realm, kind, value",
                tuples(chunk.len(), 6, 1)
            ),
        );
        for (id, realm, kind, value, host, agency) in chunk {
            q = q
                .bind(*id)
                .bind(realm.clone())
                .bind(*kind)
                .bind(value.clone())
                .bind(host.to_string())
                .bind(agency.to_string());
        }
        for r in q.fetch_all(&mut *tx).await? {
            gained.insert(r.get::<i64, _>(0));
            identities.insert((r.get(1), r.get(2), r.get(3)));
        }
    }
    // Identities that already have a campaign need nothing more.
    let identities: Vec<(String, String, String)> = identities.into_iter().collect();
    let mut known = HashSet::new();
    for chunk in pieces(&identities) {
        let mut q = batch_query(
            tx,
            format!(
                "WITH v(realm, kind, value) AS (VALUES {})
             SELECT v.realm, v.kind, v.value FROM v JOIN campaigns c
                 ON c.realm = v.realm AND c.kind = v.kind AND c.value = v.value",
                tuples(chunk.len(), 3, 1)
            ),
        );
        for (realm, kind, value) in chunk {
            q = q.bind(realm.clone()).bind(kind.clone()).bind(value.clone());
        }
        for r in q.fetch_all(&mut *tx).await? {
            known.insert((r.get::<String, _>(0), r.get::<String, _>(1), r.get(2)));
        }
    }
    for (realm, kind, value) in identities.iter().filter(|i| !known.contains(*i)) {
        workflow::open_campaign_if_spread(tx, realm, kind, value, now).await?;
    }
    Ok(gained.into_iter().collect())
}

/// Inserts the batch's alert rows; returns how many were new (fewer than
/// the batch when another writer stored some meanwhile).
async fn insert_alerts(
    tx: &mut AnyConnection,
    agents: &[&AgentPrincipal],
    groups: &[Group<'_>],
    now: &str,
) -> Result<u64> {
    let rows: Vec<(i64, &Alert, &AgentPrincipal)> = groups
        .iter()
        .flat_map(|g| g.alerts.iter().map(move |(a, b)| (g.id(), *a, agents[*b])))
        .collect();
    let mut stored = 0;
    for chunk in pieces(&rows) {
        let mut q = batch_query(
            tx,
            format!(
            "INSERT INTO alerts (id, agent_id, incident_id, rule_id, title, severity, time, host,
                 entities, evidence, tags, source, received_at, drill_id)
             VALUES {} ON CONFLICT (id) DO NOTHING",
            tuples(chunk.len(), 14, 1)
        ),
        );
        for (incident, a, agent) in chunk {
            q = q
                .bind(a.id.clone())
                .bind(agent.id.clone())
                .bind(*incident)
                .bind(a.rule_id.clone())
                .bind(a.title.clone())
                .bind(a.severity.as_str())
                .bind(ts(a.time))
                .bind(a.host.clone())
                .bind(to_json(&a.entities))
                .bind(to_json(&a.evidence))
                .bind(to_json(&a.tags))
                .bind(a.source.clone())
                .bind(now.to_string())
                .bind(a.drill_id.clone());
        }
        stored += q.execute(&mut *tx).await?.rows_affected();
    }
    Ok(stored)
}

/// Inserts the captured frames of the batch's network alerts.
async fn insert_packets(tx: &mut AnyConnection, groups: &[Group<'_>]) -> Result<()> {
    let rows: Vec<(&Alert, usize)> = groups
        .iter()
        .flat_map(|g| g.alerts.iter())
        .flat_map(|(a, _)| (0..a.packets.len()).map(move |seq| (*a, seq)))
        .collect();
    for chunk in pieces(&rows) {
        let mut q = batch_query(
            tx,
            format!(
                "INSERT INTO alert_packets (alert_id, seq, ts_ns, linktype, orig_len, data)
             VALUES {}",
                tuples(chunk.len(), 6, 1)
            ),
        );
        for (a, seq) in chunk {
            let p = &a.packets[*seq];
            q = q
                .bind(a.id.clone())
                .bind(*seq as i64)
                .bind(p.ts_ns)
                .bind(i64::from(p.linktype))
                .bind(i64::from(p.wire_len()))
                .bind(p.data.clone());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(tuples(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(tuples(1, 2, 5), "($5, $6)");
        assert_eq!(list(3, 2), "$2, $3, $4");
    }

    #[test]
    fn numbered_placeholders_in_order_become_positional() {
        assert_eq!(
            positional("INSERT INTO t VALUES ($1, $2), ($3, $4) -- '$9'").as_deref(),
            Some("INSERT INTO t VALUES (?, ?), (?, ?) -- '$9'")
        );
        assert_eq!(
            positional("SELECT json_extract(x, '$.a') FROM t WHERE a = $1 AND b = $2").as_deref(),
            Some("SELECT json_extract(x, '$.a') FROM t WHERE a = ? AND b = ?")
        );
        assert_eq!(positional("SELECT $1, $1"), None);
        assert_eq!(positional("SELECT $2, $1"), None);
        assert_eq!(positional("SELECT 1").as_deref(), Some("SELECT 1"));
    }

    #[test]
    fn lists_are_cut_into_pieces_of_few_sizes_in_order() {
        let items: Vec<usize> = (0..83).collect();
        let sizes: Vec<usize> = pieces(&items).map(<[usize]>::len).collect();
        assert_eq!(sizes, vec![64, 8, 8, 1, 1, 1]);
        let again: Vec<usize> = pieces(&items).flatten().copied().collect();
        assert_eq!(again, items);
        assert_eq!(pieces(&items[..0]).count(), 0);
    }

    fn alert(id: &str, secs: i64) -> Alert {
        Alert {
            id: id.into(),
            rule_id: "r".into(),
            title: "t".into(),
            severity: Severity::Low,
            time: DateTime::from_timestamp(secs, 0).unwrap(),
            host: "h".into(),
            entities: Default::default(),
            evidence: vec![],
            tags: vec![],
            source: String::new(),
            packets: vec![],
            drill_id: None,
        }
    }

    #[test]
    fn a_run_of_one_key_splits_where_the_window_would_retire_its_incident() {
        let (a, b, c, d) = (
            alert("a", 0),
            alert("b", 50),
            alert("c", 200),
            alert("d", 10),
        );
        let items: Vec<Item> = [("k", &a), ("k", &b), ("k", &c), ("k", &d), ("m", &a)]
            .into_iter()
            .map(|(key, alert)| Item {
                key: key.into(),
                alert,
                batch: 0,
            })
            .collect();
        let fresh: Vec<&Item> = items.iter().collect();
        let groups = gather(&fresh, chrono::Duration::seconds(100));
        let shape: Vec<(&str, usize, usize)> = groups
            .iter()
            .map(|g| (g.key, g.round, g.alerts.len()))
            .collect();
        // c is 150 s after b: a new incident; d is within the window of c.
        assert_eq!(shape, vec![("k", 0, 2), ("k", 1, 2), ("m", 0, 1)]);
    }
}
