//! The coordinator's store: an embedded SQLite file (one writer, WAL) or a
//! PostgreSQL database shared by several coordinator replicas.
//!
//! All SQL lives here, written once in the subset both dialects accept
//! (`$1` binds, `ON CONFLICT`, `RETURNING`, RFC 3339 TEXT times, integer
//! booleans) and run through sqlx's `Any` driver. Each schema migration
//! exists in both dialects (`migrations/sqlite/`, `migrations/postgres/`)
//! with the same number and name. Callers get typed results and
//! [`StoreError`]s.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor, Row};
use ward_agent::wire::{Alert, EvidencePacket, Gap, Heartbeat, IngestAck, Severity};

use crate::model::{
    AgentInfo, AlertRecord, GapRecord, GapTotals, Incident, IncidentDetail, Status, TimelineEntry,
};

/// Rule id of the incident raised when an agent stops reporting.
pub const SILENT_AGENT_RULE: &str = "ward-agent-silent";
/// Heartbeat intervals without contact after which an agent is silent.
pub const SILENT_AFTER_INTERVALS: i64 = 3;

mod agencies;
mod checkpoint;
mod commit;
mod credentials;
mod drills;
mod federation;
mod ingest;
mod retention;
mod security;
mod sessions;
mod webhooks;
mod workflow;
pub use drills::{DEFAULT_DRILL_LEASE_S, MAX_DRILL_LEASE_S};
pub use federation::{MAX_FORWARD_BATCH, MAX_PROVINCE_NAME, province_name};
pub use retention::{PruneReport, Retention};
use security::scope_param;
pub use security::{AuditRecord, Scope};
pub use sessions::{LoginUser, RuleHits};
pub use webhooks::{
    DueDelivery, MAX_ATTEMPTS, NewWebhook, WEBHOOK_EVENTS, WebhookDelivery, WebhookInfo,
};
pub use workflow::{IncidentQuery, QueueSort, attacker_identities, suppression_proposal};

/// `SELECT` of the columns [`incident_from_row`] reads, in its order, then
/// the rest of the statement (a literal, so the SQL stays static).
macro_rules! select_incidents {
    ($rest:literal) => {
        concat!(
            "SELECT id, title, rule_id, severity, status, host, agency, alert_count, first_seen,
                last_seen, entities, tags, drill, assignee, created_at, updated_at, drill_id, labels,
                merged_into,
                (SELECT MIN(c.id) FROM incident_attackers x JOIN campaigns c
                   ON c.realm = x.realm AND c.kind = x.kind AND c.value = x.value
                 WHERE x.incident_id = incidents.id),
                province, remote_id
             FROM incidents ",
            $rest
        )
    };
}
use select_incidents;

/// Store failures. Only `NotFound` and `Conflict` are the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// The request contradicts the stored state.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed (a bad label, an empty split, ...).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data is damaged.
    #[error("damaged stored data: {0}")]
    Damaged(String),
    /// Concurrent writers kept getting in the way; the same request later
    /// will succeed.
    #[error("{0}")]
    Busy(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// RFC 3339 in UTC with microseconds: text order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn now() -> String {
    ts(Utc::now())
}

/// Roles of API tokens.
pub const ROLES: &[&str] = &["admin", "responder", "viewer"];

/// Who an API token belongs to.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user's (or the token's) name.
    pub name: String,
    /// admin, responder or viewer.
    pub role: String,
    /// The token's id.
    pub token_id: i64,
    /// Agencies the user is limited to; empty: all.
    pub agencies: Vec<String>,
}

impl Principal {
    /// The agencies this principal may see (`None`: all).
    pub fn scope(&self) -> Scope<'_> {
        (!self.agencies.is_empty()).then_some(self.agencies.as_slice())
    }

    /// Whether `agency` is in this principal's scope.
    pub fn sees(&self, agency: &str) -> bool {
        self.agencies.is_empty() || self.agencies.iter().any(|a| a == agency)
    }
}

/// An authenticated agent.
#[derive(Debug, Clone)]
pub struct AgentPrincipal {
    /// Its id.
    pub id: String,
    /// Its agency.
    pub agency: String,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file: one coordinator process.
    Sqlite,
    /// A PostgreSQL database: any number of coordinator replicas.
    Postgres,
}

/// Connections to a PostgreSQL store per coordinator process.
const POSTGRES_CONNECTIONS: u32 = 8;

/// The store.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    group_window: chrono::Duration,
    queue: commit::Queue,
    credentials: Arc<credentials::AgentCredentials>,
    /// SQLite: copies the writer's WAL into the database file.
    checkpointer: Option<checkpoint::Checkpointer>,
}

/// How long an open incident keeps collecting its group's alerts after its
/// last one, unless the coordinator is told otherwise.
pub const DEFAULT_GROUP_WINDOW: chrono::Duration = chrono::Duration::hours(24);

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        Self::open_sqlite_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// The same store grouping alerts into an open incident only while its
    /// last alert is at most `window` older (at least a second).
    pub fn with_group_window(mut self, window: chrono::Duration) -> Self {
        self.group_window = window.max(chrono::Duration::seconds(1));
        self
    }

    /// Opens and migrates the database at a `sqlite:` or `postgres://`
    /// (`postgresql://`) URL. `Conflict` names an unsupported scheme.
    pub async fn open_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Self::open_sqlite_with(SqliteConnectOptions::from_str(url)?).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else {
            Err(StoreError::Conflict(format!(
                "unsupported database URL '{url}' (expected sqlite:PATH or postgres://...)"
            )))
        }
    }

    /// SQLite: one writer connection (WAL, so readers never wait for it)
    /// and a few read-only ones. Connections to a local file do not break
    /// while idle, so they are not pinged each time they are taken from the
    /// pool (a round trip to the connection's thread per statement).
    async fn open_sqlite_with(opts: SqliteConnectOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let url = |o: SqliteConnectOptions| o.to_url_lossy().to_string();
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlite_pragmas(conn).await?;
                    // The writer walks the incident, alert and attacker
                    // indexes at random keys: with SQLite's default 2 MB of
                    // page cache it read most pages back from the OS for
                    // every round.
                    conn.execute(WRITER_CACHE).await?;
                    // A multi-row statement inside a transaction keeps a
                    // journal of its own (to undo just itself on error);
                    // kept in a temporary file, it wrote as much as the
                    // WAL did under fleet load.
                    conn.execute("PRAGMA temp_store = MEMORY").await?;
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA wal_autocheckpoint = {}",
                        checkpoint::BACKSTOP_PAGES
                    )))
                    .await?;
                    Ok(())
                })
            })
            .connect(&url(opts.clone().create_if_missing(true)))
            .await?;
        // Persistent in the file: set once, before anything else runs.
        write.execute("PRAGMA journal_mode = WAL").await?;
        SQLITE_MIGRATOR.run(&write).await?;
        let read = AnyPoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn).await }))
            .connect(&url(opts.clone().read_only(true)))
            .await?;
        // Its own connection: a checkpoint writes the database file, which
        // the read-only ones may not.
        let checkpoints = AnyPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn).await }))
            .connect(&url(opts))
            .await?;
        let checkpointer = Some(checkpoint::Checkpointer::start(checkpoints));
        Ok(Store {
            read,
            write,
            backend: Backend::Sqlite,
            group_window: DEFAULT_GROUP_WINDOW,
            queue: commit::Queue::default(),
            credentials: Arc::default(),
            checkpointer,
        })
    }

    /// PostgreSQL: one pool for reads and writes; concurrent writers
    /// (here and in other replicas) are ordered by the database's locks.
    async fn open_postgres(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?;
        POSTGRES_MIGRATOR.run(&pool).await?;
        Ok(Store {
            read: pool.clone(),
            write: pool,
            backend: Backend::Postgres,
            group_window: DEFAULT_GROUP_WINDOW,
            queue: commit::Queue::default(),
            credentials: Arc::default(),
            checkpointer: None,
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    // ---- API tokens -------------------------------------------------------

    /// Number of API tokens.
    pub async fn api_token_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.read)
            .await?)
    }

    /// Stores the first API token's hash, only when the store has none:
    /// of replicas starting on one fresh database exactly one succeeds.
    /// Returns whether it was stored.
    pub async fn add_first_api_token(
        &self,
        name: &str,
        role: &str,
        token_hash: &str,
    ) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        if self.backend == Backend::Postgres {
            // Readers go on; a second replica's check waits for this one.
            sqlx::query("LOCK TABLE api_tokens IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "INSERT INTO api_tokens (name, role, token_hash, created_at)
             SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM api_tokens)",
        )
        .bind(name)
        .bind(role)
        .bind(token_hash)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores an API token's hash.
    pub async fn add_api_token(&self, name: &str, role: &str, token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(role)
        .bind(token_hash)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The owner of a live (not revoked) API token hash. The lookup is by
    /// the SHA-256 of the secret, so timing reveals nothing of the secret.
    pub async fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT t.id, COALESCE(u.name, t.name), COALESCE(u.role, t.role), t.user_id,
                    (SELECT json_group_array(agency) FROM user_agencies a WHERE a.user_id = t.user_id)
             FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let user_id: Option<i64> = r.get(3);
        let agencies: Vec<String> = match user_id {
            Some(_) => from_json(r.get(4))?,
            None => Vec::new(),
        };
        Ok(Some(Principal {
            token_id: r.get(0),
            name: r.get(1),
            role: r.get(2),
            agencies,
        }))
    }

    // ---- enrollment -------------------------------------------------------

    /// Stores an enrollment secret's hash; agents enrolled with a token of
    /// a drill carry its id.
    pub async fn add_enroll_token(
        &self,
        secret_hash: &str,
        agency: &str,
        uses: u32,
        expires_at: DateTime<Utc>,
        created_by: &str,
        drill_id: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO enroll_tokens (secret_hash, agency, uses_left, expires_at, created_by, created_at,
                                        drill_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(secret_hash)
        .bind(agency)
        .bind(i64::from(uses))
        .bind(ts(expires_at))
        .bind(created_by)
        .bind(now())
        .bind(drill_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Uses one enrollment of a token and registers the agent, atomically.
    /// `Ok(None)` when the token is unknown, used up or expired.
    pub async fn enroll_agent(
        &self,
        secret_hash: &str,
        agent_id: &str,
        hostname: &str,
        version: &str,
        agent_token_hash: &str,
    ) -> Result<Option<String>> {
        let mut tx = self.write.begin().await?;
        let now = now();
        let row = sqlx::query(
            "UPDATE enroll_tokens SET uses_left = uses_left - 1
             WHERE secret_hash = $1 AND uses_left > 0 AND expires_at > $2 AND revoked_at IS NULL
             RETURNING agency, drill_id",
        )
        .bind(secret_hash)
        .bind(&now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let agency: String = row.get(0);
        let drill_id: Option<String> = row.get(1);
        sqlx::query(
            "INSERT INTO agents (id, hostname, agency, token_hash, version, enrolled_at, drill_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(agent_id)
        .bind(hostname)
        .bind(&agency)
        .bind(agent_token_hash)
        .bind(version)
        .bind(&now)
        .bind(&drill_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(agency))
    }

    /// The agent owning a token hash (not revoked), remembered for a moment
    /// (`store/credentials.rs`).
    pub async fn agent_by_token(&self, token_hash: &str) -> Result<Option<AgentPrincipal>> {
        if let Some(agent) = self.credentials.get(token_hash) {
            return Ok(Some(agent));
        }
        let row = sqlx::query(
            "SELECT id, agency FROM agents WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        let agent = row.map(|r| AgentPrincipal {
            id: r.get(0),
            agency: r.get(1),
        });
        if let Some(a) = &agent {
            self.credentials.put(token_hash, a);
        }
        Ok(agent)
    }

    /// Records a heartbeat (through the committer, with the heartbeats that
    /// arrive meanwhile: `store/commit.rs`).
    pub async fn heartbeat(&self, agent_id: &str, hb: &Heartbeat) -> Result<()> {
        self.heartbeat_queued(agent_id, hb).await
    }

    /// Records `beats` (agent id, heartbeat) in one transaction; an agent
    /// named twice keeps its last.
    async fn record_heartbeats(&self, beats: &[(&str, &Heartbeat)]) -> Result<()> {
        let mut last: BTreeMap<&str, &Heartbeat> = BTreeMap::new();
        for (id, hb) in beats {
            last.insert(id, hb);
        }
        let rows: Vec<(&str, &Heartbeat)> = last.into_iter().collect();
        let now = now();
        let mut tx = self.write.begin().await?;
        for chunk in ingest::pieces(&rows) {
            let mut q = ingest::batch_query(
                &tx,
                format!(
                    "WITH v(id, version, rules_version, heartbeat) AS (VALUES {})
                     UPDATE agents SET last_seen = ${}, version = v.version,
                         rules_version = v.rules_version, heartbeat = v.heartbeat
                     FROM v WHERE agents.id = v.id",
                    ingest::tuples(chunk.len(), 4, 1),
                    chunk.len() * 4 + 1
                ),
            );
            for (id, hb) in chunk {
                let json =
                    serde_json::to_string(hb).map_err(|e| StoreError::Damaged(e.to_string()))?;
                q = q
                    .bind(id.to_string())
                    .bind(hb.version.clone())
                    .bind(hb.rules_version.clone())
                    .bind(json);
            }
            q.bind(now.clone()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The agents in `scope`: the fleet (`DrillFilter::Real`), the
    /// sandboxed agents of one drill, or all of them.
    pub async fn agents(&self, scope: Scope<'_>, drill: &DrillFilter) -> Result<Vec<AgentInfo>> {
        let (mode, drill_id) = drill.sql_params();
        let rows = sqlx::query(
            "SELECT id, hostname, agency, version, rules_version, enrolled_at, last_seen, heartbeat,
                    revoked_at, drill_id
             FROM agents WHERE ($1 IS NULL OR agency IN (SELECT value FROM json_each($1)))
               AND (($2 = 0 AND drill_id IS NULL) OR ($2 = 1 AND drill_id = $3) OR $2 = 2)
             ORDER BY agency, hostname, id",
        )
        .bind(scope_param(scope))
        .bind(mode)
        .bind(drill_id)
        .fetch_all(&self.read)
        .await?;
        let online_after = ts(Utc::now() - chrono::Duration::seconds(90));
        let mut totals: BTreeMap<String, GapTotals> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT agent_id, reason, COUNT(*), CAST(SUM(count) AS BIGINT) FROM gaps GROUP BY agent_id, reason",
        )
        .fetch_all(&self.read)
        .await?
        {
            let t = totals.entry(r.get(0)).or_default();
            let (records, lost): (i64, i64) = (r.get(2), r.get(3));
            t.records += records;
            t.lost += lost;
            t.by_reason.insert(r.get(1), lost);
        }
        rows.into_iter()
            .map(|r| {
                let id: String = r.get(0);
                let last_seen: Option<String> = r.get(6);
                let heartbeat: Option<String> = r.get(7);
                Ok(AgentInfo {
                    gaps: totals.remove(&id).unwrap_or_default(),
                    id,
                    hostname: r.get(1),
                    agency: r.get(2),
                    version: r.get(3),
                    rules_version: r.get(4),
                    enrolled_at: r.get(5),
                    health: match &last_seen {
                        None => "never".into(),
                        Some(t) if *t >= online_after => "online".into(),
                        Some(_) => "offline".into(),
                    },
                    last_seen,
                    heartbeat: heartbeat.and_then(|h| serde_json::from_str(&h).ok()),
                    revoked_at: r.get(8),
                    drill_id: r.get(9),
                })
            })
            .collect()
    }

    // ---- alerts and incidents ---------------------------------------------

    /// Stores a batch of alerts from one agent and groups them into
    /// incidents. Alerts whose id is already stored are counted as
    /// duplicates and change nothing, also when two replicas store the same
    /// alert at once: the alert's primary key decides, and the loser's
    /// transaction is rolled back and run again (it then sees the winner's
    /// alerts as duplicates).
    ///
    /// Batches that arrive together are stored in one transaction (group
    /// commit, `store/commit.rs`), and a transaction costs a fixed number of
    /// statements whatever its size (`store/ingest.rs`).
    pub async fn ingest(
        &self,
        agent: &AgentPrincipal,
        alerts: &[Alert],
        gaps: &[Gap],
    ) -> Result<IngestAck> {
        self.ingest_queued(agent, alerts, gaps).await
    }

    /// Stores `batches` in one transaction; the answer of each.
    ///
    /// Rows are locked in one order (gap ids, then group keys), so
    /// concurrent transactions on PostgreSQL wait for each other but never
    /// deadlock; a deadlock or serialization failure reported anyway is
    /// retried a few times.
    async fn ingest_batches(&self, batches: &[commit::Batch<'_>]) -> Result<Vec<IngestAck>> {
        let mut gaps: Vec<(&Gap, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| batch.gaps.iter().map(move |g| (g, b)))
            .collect();
        gaps.sort_by(|x, y| x.0.id.cmp(&y.0.id));
        let mut items: Vec<ingest::Item> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| {
                batch.alerts.iter().map(move |a| ingest::Item {
                    key: group_key(a),
                    alert: a,
                    batch: b,
                })
            })
            .collect();
        // Stable: alerts of one group keep their order.
        items.sort_by(|x, y| x.key.cmp(&y.key));
        let agents: Vec<&AgentPrincipal> = batches.iter().map(|b| b.agent).collect();
        let mut attempt = 0;
        loop {
            match self.ingest_once(&agents, &items, &gaps).await {
                Err(StoreError::Db(e)) if is_transient(&e) && attempt < INGEST_RETRIES => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "ingest transaction retried");
                }
                Ok(None) if attempt < INGEST_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, "ingest raced another writer; retried");
                }
                Ok(None) => {
                    return Err(StoreError::Busy(
                        "the batch kept racing another coordinator storing the same alerts; \
                         send it again"
                            .into(),
                    ));
                }
                Ok(Some(acks)) => return Ok(acks),
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt at [`Store::ingest_batches`]; `None` when another writer
    /// stored some of the alerts meanwhile (the attempt is rolled back).
    async fn ingest_once(
        &self,
        agents: &[&AgentPrincipal],
        items: &[ingest::Item<'_>],
        gaps: &[(&Gap, usize)],
    ) -> Result<Option<Vec<IngestAck>>> {
        let mut tx = self.write.begin().await?;
        let now = now();
        let mut acks = vec![
            IngestAck {
                accepted: 0,
                duplicates: 0,
                gaps_accepted: 0,
            };
            agents.len()
        ];
        for (g, b) in gaps {
            let agent = agents[*b];
            let done = sqlx::query(
                "INSERT INTO gaps (id, agent_id, host, agency, reason, count, by_severity,
                     first_time, last_time, detected_at, received_at, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&g.id)
            .bind(&agent.id)
            .bind(&g.host)
            .bind(&agent.agency)
            .bind(&g.reason)
            .bind(i64::try_from(g.count).unwrap_or(i64::MAX))
            .bind(to_json(&g.by_severity))
            .bind(g.first_time.map(ts))
            .bind(g.last_time.map(ts))
            .bind(ts(g.detected_at))
            .bind(&now)
            .bind(g.detail.as_deref())
            .execute(&mut *tx)
            .await?;
            acks[*b].gaps_accepted += done.rows_affected();
        }
        let Some(stored) = ingest::store_alerts(
            &mut tx,
            self.backend,
            agents,
            items,
            self.group_window,
            &now,
        )
        .await?
        else {
            return Ok(None);
        };
        for (ack, s) in acks.iter_mut().zip(stored) {
            ack.accepted = s.accepted;
            ack.duplicates = s.duplicates;
        }
        let mut ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        // In pieces of fixed sizes, like every batch statement: a text per
        // count of agents would crowd the connection's prepared statements
        // (their cache holds 100, and an evicted multi-row statement is
        // parsed again at its next use).
        for piece in ingest::pieces(&ids) {
            let mut q = ingest::batch_query(
                &tx,
                format!(
                    "UPDATE agents SET last_seen = $1 WHERE id IN ({})",
                    ingest::list(piece.len(), 2)
                ),
            )
            .bind(now.clone());
            for id in piece {
                q = q.bind(id.to_string());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if let Some(c) = &self.checkpointer {
            c.committed();
        }
        Ok(Some(acks))
    }

    /// Gap records, most recently detected first; of one agent when given.
    pub async fn gaps(&self, agent_id: Option<&str>, limit: i64) -> Result<Vec<GapRecord>> {
        let rows = sqlx::query(
            "SELECT id, agent_id, host, agency, reason, count, by_severity, first_time, last_time,
                    detected_at, received_at, detail
             FROM gaps WHERE ($1 IS NULL OR agent_id = $1)
             ORDER BY detected_at DESC, id LIMIT $2",
        )
        .bind(agent_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GapRecord {
                    id: r.get(0),
                    agent_id: r.get(1),
                    host: r.get(2),
                    agency: r.get(3),
                    reason: r.get(4),
                    count: r.get(5),
                    by_severity: from_json(r.get(6))?,
                    first_time: r.get(7),
                    last_time: r.get(8),
                    detected_at: r.get(9),
                    received_at: r.get(10),
                    detail: r.get(11),
                })
            })
            .collect()
    }

    /// Raises a `ward-agent-silent` incident (high) for every agent not seen
    /// for [`SILENT_AFTER_INTERVALS`] of its own heartbeat intervals (once
    /// per silence), and resolves the open one of an agent that is back,
    /// noting it in the timeline. Returns (raised, resolved).
    ///
    /// One read finds every agent's last contact and whether its silence
    /// incident is open; only an agent whose state changes (silent with no
    /// open incident, or back with one) takes a write transaction, so a
    /// healthy fleet of thousands costs the single writer nothing at each
    /// check (a transaction per agent every check starved the group commit).
    pub async fn check_silent_agents(&self, now: DateTime<Utc>) -> Result<(u64, u64)> {
        let rows = sqlx::query(
            "SELECT a.id, a.hostname, a.agency, a.last_seen, a.heartbeat,
                    CAST(CASE WHEN EXISTS (
                        SELECT 1 FROM incidents i
                        WHERE i.group_key = $1 || a.hostname || $2 || a.id
                          AND i.status NOT IN ('resolved', 'false_positive'))
                    THEN 1 ELSE 0 END AS BIGINT)
             FROM agents a
             WHERE a.last_seen IS NOT NULL AND a.drill_id IS NULL",
        )
        .bind(silent_key_head())
        .bind(SILENT_KEY_ID)
        .fetch_all(&self.read)
        .await?;
        let (mut raised, mut resolved) = (0, 0);
        for r in rows {
            let (id, host, agency, last_seen): (String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            let open = r.get::<i64, _>(5) != 0;
            let interval = r
                .get::<Option<String>, _>(4)
                .and_then(|h| serde_json::from_str::<Heartbeat>(&h).ok())
                .map_or(0, |h| h.heartbeat_interval_s);
            let Ok(seen) = DateTime::parse_from_rfc3339(&last_seen) else {
                continue;
            };
            let seen = seen.with_timezone(&Utc);
            let group_key = silent_group_key(&host, &id);
            let limit = chrono::Duration::seconds(
                SILENT_AFTER_INTERVALS.saturating_mul(i64::try_from(interval).unwrap_or(i64::MAX)),
            );
            let silent = interval > 0 && now - seen > limit;
            if silent == open {
                // Silent and already raised, or heard from with nothing to
                // resolve: nothing to write.
                continue;
            }
            let mut tx = self.write.begin().await?;
            let stamp = ts(now);
            if silent {
                // One incident per silence, keyed by the last contact; the
                // unique index of open incidents per group makes a
                // replica that checks at the same moment insert nothing.
                let entities = BTreeMap::from([("agent_id".to_string(), id.clone())]);
                let incident: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO incidents (title, rule_id, severity, status, host, agency, group_key,
                         entities, tags, alert_count, first_seen, last_seen, drill, created_at, updated_at)
                     SELECT $1, $2, 'high', 'new', $3, $4, $5, $6, '[]', 0, $7, $7, 0, $8, $8
                     WHERE NOT EXISTS (SELECT 1 FROM incidents WHERE group_key = $5 AND first_seen = $7)
                     ON CONFLICT (group_key) WHERE status NOT IN ('resolved', 'false_positive') DO NOTHING
                     RETURNING id",
                )
                .bind(format!("Agent {host} is silent"))
                .bind(SILENT_AGENT_RULE)
                .bind(&host)
                .bind(&agency)
                .bind(&group_key)
                .bind(to_json(&entities))
                .bind(&last_seen)
                .bind(&stamp)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(incident) = incident else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO incident_events (incident_id, at, actor, kind, detail)
                     VALUES ($1, $2, 'ward', 'created', $3)",
                )
                .bind(incident)
                .bind(&stamp)
                .bind(format!(
                    "no contact since {last_seen} ({SILENT_AFTER_INTERVALS} heartbeat intervals of {interval} s)"
                ))
                .execute(&mut *tx)
                .await?;
                webhooks::enqueue_created(&mut tx, incident, &stamp).await?;
                federation::changed(&mut tx, incident, &stamp).await?;
                tracing::warn!(agent_id = %id, %host, incident, "agent is silent; incident raised");
                raised += 1;
            } else {
                // Only the writer whose UPDATE changes the row resolves it
                // (a concurrent replica's finds it resolved).
                let closed: Vec<i64> = sqlx::query_scalar(
                    "UPDATE incidents SET status = 'resolved', last_seen = $1, updated_at = $2
                     WHERE group_key = $3 AND status NOT IN ('resolved', 'false_positive')
                     RETURNING id",
                )
                .bind(&last_seen)
                .bind(&stamp)
                .bind(&group_key)
                .fetch_all(&mut *tx)
                .await?;
                for incident in closed {
                    sqlx::query(
                        "INSERT INTO incident_events (incident_id, at, actor, kind, detail)
                         VALUES ($1, $2, 'ward', 'resolved', $3)",
                    )
                    .bind(incident)
                    .bind(&stamp)
                    .bind(format!("the agent is back: heartbeat at {last_seen}"))
                    .execute(&mut *tx)
                    .await?;
                    webhooks::enqueue_status(&mut tx, incident, "resolved", "ward", &stamp).await?;
                    federation::changed(&mut tx, incident, &stamp).await?;
                    tracing::info!(agent_id = %id, %host, incident, "silent agent is back; incident resolved");
                    resolved += 1;
                }
            }
            tx.commit().await?;
        }
        Ok((raised, resolved))
    }

    /// Real incidents (no drill's) in `scope`, most recently active first.
    pub async fn incidents(
        &self,
        status: Option<Status>,
        limit: i64,
        scope: Scope<'_>,
    ) -> Result<Vec<Incident>> {
        self.incidents_of(status, &DrillFilter::Real, limit, scope)
            .await
    }

    /// Incidents in `scope` of real attacks, of one drill, or of
    /// everything, most recently active first.
    pub async fn incidents_of(
        &self,
        status: Option<Status>,
        drill: &DrillFilter,
        limit: i64,
        scope: Scope<'_>,
    ) -> Result<Vec<Incident>> {
        let q = IncidentQuery {
            status,
            drill: drill.clone(),
            limit,
            ..IncidentQuery::default()
        };
        self.incident_queue(&q, scope).await
    }

    /// One incident with its alerts and timeline.
    pub async fn incident(&self, id: i64) -> Result<IncidentDetail> {
        let row = sqlx::query(select_incidents!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        let incident = incident_from_row(&row)?;
        let alerts = sqlx::query(
            "SELECT id, agent_id, rule_id, title, severity, time, host, entities, evidence, source, received_at,
                    (SELECT COUNT(*) FROM alert_packets p WHERE p.alert_id = alerts.id)
             FROM alerts WHERE incident_id = $1 ORDER BY time DESC, id LIMIT 100",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(AlertRecord {
                id: r.get(0),
                agent_id: r.get(1),
                rule_id: r.get(2),
                title: r.get(3),
                severity: parse_severity(r.get(4))?,
                time: r.get(5),
                host: r.get(6),
                entities: from_json(r.get(7))?,
                evidence: from_json(r.get(8))?,
                source: r.get(9),
                received_at: r.get(10),
                packet_count: r.get(11),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let timeline = sqlx::query(
            "SELECT at, actor, kind, detail FROM incident_events WHERE incident_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| TimelineEntry {
            at: r.get(0),
            actor: r.get(1),
            kind: r.get(2),
            detail: r.get(3),
        })
        .collect();
        Ok(IncidentDetail {
            suppression: suppression_proposal(&incident),
            incident,
            alerts,
            timeline,
        })
    }

    /// The captured frames an alert carries, in its order. `NotFound` when
    /// there is no such alert; empty when it carries none.
    pub async fn alert_packets(&self, alert_id: &str) -> Result<Vec<EvidencePacket>> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM alerts WHERE id = $1")
            .bind(alert_id)
            .fetch_optional(&self.read)
            .await?;
        exists.ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT ts_ns, linktype, orig_len, data FROM alert_packets WHERE alert_id = $1 ORDER BY seq",
        )
        .bind(alert_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(packet_from_row).collect()
    }

    /// The captured frames of all alerts of an incident: each frame once
    /// (alerts of one flow share frames), in capture-time order, the
    /// earliest up to `max_bytes` of frame data. Returns them and how many
    /// later frames were left out. `NotFound` when there is no such incident.
    pub async fn incident_packets(
        &self,
        id: i64,
        max_bytes: usize,
    ) -> Result<(Vec<EvidencePacket>, u64)> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        exists.ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT ts_ns, linktype, orig_len, data, total FROM (
                 SELECT ts_ns, linktype, orig_len, data, first_at, first_seq,
                        SUM(LENGTH(data)) OVER (ORDER BY ts_ns, first_at, first_seq
                                                ROWS UNBOUNDED PRECEDING) AS total
                 FROM (SELECT p.ts_ns, p.linktype, MAX(p.orig_len) AS orig_len, p.data,
                              MIN(a.received_at) AS first_at, MIN(p.seq) AS first_seq
                       FROM alert_packets p JOIN alerts a ON a.id = p.alert_id
                       WHERE a.incident_id = $1
                       GROUP BY p.ts_ns, p.linktype, p.data) AS frames) AS running
             ORDER BY ts_ns, first_at, first_seq",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        let mut packets = Vec::new();
        let mut left_out = 0;
        for r in &rows {
            let total: i64 = r.get(4);
            if usize::try_from(total).unwrap_or(usize::MAX) > max_bytes {
                left_out += 1;
            } else {
                packets.push(packet_from_row(r)?);
            }
        }
        Ok((packets, left_out))
    }

    /// Applies a triage action and records it in the timeline.
    pub async fn triage(&self, id: i64, actor: &str, action: TriageAction<'_>) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let now = now();
        let row = sqlx::query("SELECT status, province FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let status = Status::from_str(row.get(0)).map_err(StoreError::Damaged)?;
        if !matches!(action, TriageAction::Note(_)) {
            // A forwarded incident is worked on at its province; notes
            // here stay here.
            federation::refuse_forwarded(id, row.get::<Option<&str>, _>(1))?;
        }
        let (kind, detail) = match action {
            TriageAction::SetStatus(_, note) | TriageAction::Reopen(note) => {
                let (new, reopen) = match action {
                    TriageAction::SetStatus(new, _) => (new, false),
                    _ => (Status::Acknowledged, true),
                };
                if reopen && status.is_open() {
                    return Err(StoreError::Conflict(format!(
                        "incident {id} is {status}, not closed"
                    )));
                }
                if !reopen && !status.is_open() {
                    return Err(StoreError::Conflict(format!(
                        "incident {id} is {status}; reopen it first"
                    )));
                }
                if new == status {
                    return Err(StoreError::Conflict(format!(
                        "incident {id} is already {new}"
                    )));
                }
                if reopen {
                    // Reopening must not create two open incidents for one group.
                    let clash: Option<i64> = sqlx::query_scalar(
                        "SELECT o.id FROM incidents o JOIN incidents i ON o.group_key = i.group_key
                         WHERE i.id = $1 AND o.id <> i.id AND o.status NOT IN ('resolved', 'false_positive')",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(other) = clash {
                        return Err(StoreError::Conflict(format!(
                            "incident {other} is open for the same rule, host and entity; work on it instead"
                        )));
                    }
                }
                sqlx::query("UPDATE incidents SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(new.as_str())
                    .bind(&now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let kind = if reopen { "reopened" } else { new.as_str() };
                webhooks::enqueue_status(&mut tx, id, kind, actor, &now).await?;
                (kind.to_string(), note.unwrap_or_default().to_string())
            }
            TriageAction::Assign(who) => {
                sqlx::query("UPDATE incidents SET assignee = $1, updated_at = $2 WHERE id = $3")
                    .bind(who)
                    .bind(&now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                ("assigned".to_string(), who.to_string())
            }
            TriageAction::Tag(label) | TriageAction::Untag(label) => {
                let add = matches!(action, TriageAction::Tag(_));
                workflow::set_label(&mut tx, id, label, add, &now).await?;
                let kind = if add { "labelled" } else { "unlabelled" };
                (kind.to_string(), label.trim().to_string())
            }
            TriageAction::Note(text) => {
                sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
                    .bind(&now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                ("note".to_string(), text.to_string())
            }
        };
        sqlx::query(
            "INSERT INTO incident_events (incident_id, at, actor, kind, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(&now)
        .bind(actor)
        .bind(kind)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
        federation::changed(&mut tx, id, &now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Counts for the metrics endpoint: (incidents open, agents, alerts),
    /// drills left out.
    pub async fn counts(&self) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM incidents
                     WHERE status NOT IN ('resolved', 'false_positive') AND drill = 0),
                    (SELECT COUNT(*) FROM agents WHERE drill_id IS NULL),
                    (SELECT COUNT(*) FROM alerts WHERE drill_id IS NULL)",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }
}

impl Store {
    // ---- drills -----------------------------------------------------------

    /// Records a drill about to run.
    pub async fn create_drill(
        &self,
        id: &str,
        d: &crate::model::NewDrill,
        started_by: &str,
    ) -> Result<()> {
        let now = Utc::now();
        let lease =
            chrono::Duration::seconds(i64::from(d.lease_s.unwrap_or(DEFAULT_DRILL_LEASE_S)));
        sqlx::query(
            "INSERT INTO drills (id, scenario, description, source, status, started_by, started_at,
                                 lease_until, renewed_at)
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $6)",
        )
        .bind(id)
        .bind(&d.scenario)
        .bind(&d.description)
        .bind(&d.source)
        .bind(started_by)
        .bind(ts(now))
        .bind(ts(now + lease))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Stores a drill's scorecard and marks it finished (a finished drill's
    /// scorecard may be stored again); retires the drill's agents.
    pub async fn finish_drill(&self, id: &str, scorecard_json: &str) -> Result<()> {
        let now = now();
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE drills SET status = 'finished', finished_at = $1, scorecard = $2, lease_until = NULL
             WHERE id = $3 AND status IN ('running', 'finished')",
        )
        .bind(&now)
        .bind(scorecard_json)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self.not_running(id).await);
        }
        drills::retire_agents(&mut tx, id, &now).await?;
        tx.commit().await?;
        self.credentials.forget_all();
        Ok(())
    }

    /// Marks a running drill aborted (its runner failed or was
    /// interrupted) and retires its agents.
    pub async fn abort_drill(&self, id: &str, reason: &str) -> Result<()> {
        let now = now();
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE drills SET status = 'aborted', finished_at = $1, reason = $2, lease_until = NULL
             WHERE id = $3 AND status = 'running'",
        )
        .bind(&now)
        .bind(reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self.not_running(id).await);
        }
        drills::retire_agents(&mut tx, id, &now).await?;
        tx.commit().await?;
        self.credentials.forget_all();
        Ok(())
    }

    /// Drills, newest first (without their scenario files).
    pub async fn drills(&self, limit: i64) -> Result<Vec<crate::model::DrillRecord>> {
        let rows = sqlx::query(
            "SELECT id, scenario, description, status, started_by, started_at, finished_at, scorecard,
                    (SELECT COUNT(*) FROM incidents i WHERE i.drill_id = drills.id), NULL, reason,
                    lease_until, renewed_at
             FROM drills ORDER BY started_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(drill_from_row).collect()
    }

    /// One drill with its scenario file.
    pub async fn drill(&self, id: &str) -> Result<crate::model::DrillRecord> {
        let row = sqlx::query(
            "SELECT id, scenario, description, status, started_by, started_at, finished_at, scorecard,
                    (SELECT COUNT(*) FROM incidents i WHERE i.drill_id = drills.id), source, reason,
                    lease_until, renewed_at
             FROM drills WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound)?;
        drill_from_row(&row)
    }

    /// For each incident of a drill: its id, when it was created, when it
    /// was first acknowledged (or moved past that) and when first resolved
    /// (or marked a false positive), RFC 3339.
    pub async fn drill_response_times(
        &self,
        drill_id: &str,
    ) -> Result<Vec<(i64, String, Option<String>, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT i.id, i.created_at,
                    (SELECT MIN(e.at) FROM incident_events e WHERE e.incident_id = i.id
                       AND e.kind IN ('acknowledged', 'contained', 'resolved', 'false_positive')),
                    (SELECT MIN(e.at) FROM incident_events e WHERE e.incident_id = i.id
                       AND e.kind IN ('resolved', 'false_positive'))
             FROM incidents i WHERE i.drill_id = $1 ORDER BY i.id",
        )
        .bind(drill_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }
}

/// How often an ingest transaction is retried after a deadlock or a
/// serialization failure.
const INGEST_RETRIES: u32 = 5;

/// Whether a database error is a transient conflict between concurrent
/// transactions (PostgreSQL deadlock or serialization failure) worth
/// retrying.
fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

fn drill_from_row(r: &AnyRow) -> Result<crate::model::DrillRecord> {
    let scorecard: Option<String> = r.get(7);
    Ok(crate::model::DrillRecord {
        id: r.get(0),
        scenario: r.get(1),
        description: r.get(2),
        status: r.get(3),
        started_by: r.get(4),
        started_at: r.get(5),
        finished_at: r.get(6),
        scorecard: scorecard.as_deref().map(from_json).transpose()?,
        incidents: r.get(8),
        source: r.get(9),
        reason: r.get(10),
        lease_until: r.get(11),
        renewed_at: r.get(12),
    })
}

/// Which incidents a listing shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DrillFilter {
    /// Real incidents only (the default: drills never mix with them).
    #[default]
    Real,
    /// The incidents of one drill.
    One(String),
    /// Everything, drills included.
    All,
}

impl DrillFilter {
    /// The filter as the queries bind it: a mode (0 real, 1 one drill,
    /// 2 all) and the drill's id for mode 1.
    fn sql_params(&self) -> (i64, Option<&str>) {
        match self {
            DrillFilter::Real => (0, None),
            DrillFilter::One(d) => (1, Some(d.as_str())),
            DrillFilter::All => (2, None),
        }
    }
}

/// A change a responder makes to an incident.
#[derive(Debug, Clone, Copy)]
pub enum TriageAction<'a> {
    /// Move an open incident to a status, with an optional reason.
    SetStatus(Status, Option<&'a str>),
    /// Reopen a resolved or false-positive incident (to acknowledged).
    Reopen(Option<&'a str>),
    /// Assign to a responder.
    Assign(&'a str),
    /// Add a note.
    Note(&'a str),
    /// Put a label on it.
    Tag(&'a str),
    /// Take a label off.
    Untag(&'a str),
}

/// Alerts of the same rule, host and primary entity share an open incident.
/// Drill alerts group only with alerts of the same drill.
fn group_key(a: &Alert) -> String {
    let entity = a
        .primary_entity()
        .map(|(k, v)| format!("{k}={v}"))
        .unwrap_or_default();
    match &a.drill_id {
        None => format!("{}\u{1f}{}\u{1f}{}", a.rule_id, a.host, entity),
        Some(d) => format!(
            "drill:{d}\u{1f}{}\u{1f}{}\u{1f}{}",
            a.rule_id, a.host, entity
        ),
    }
}

/// The group key of agent `id`'s silence incidents is
/// [`silent_key_head`], the host, [`SILENT_KEY_ID`] and the id: built by
/// [`silent_group_key`], and by the same concatenation in the read of
/// [`Store::check_silent_agents`].
fn silent_group_key(host: &str, id: &str) -> String {
    format!("{}{host}{SILENT_KEY_ID}{id}", silent_key_head())
}

/// What a silence incident's group key starts with.
fn silent_key_head() -> String {
    format!("{SILENT_AGENT_RULE}\u{1f}")
}

/// What stands between the host and the agent id in a silence incident's
/// group key.
const SILENT_KEY_ID: &str = "\u{1f}agent_id=";

/// Page cache of the SQLite writer connection (64 MiB; negative: KiB).
const WRITER_CACHE: &str = "PRAGMA cache_size = -65536";

/// Per-connection SQLite settings (the driver's defaults already enforce
/// foreign keys).
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    Ok(())
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Damaged(e.to_string()))
}

fn parse_severity(s: &str) -> Result<Severity> {
    Severity::from_str(s).map_err(StoreError::Damaged)
}

fn packet_from_row(r: &AnyRow) -> Result<EvidencePacket> {
    let int = |i: usize| -> Result<u32> {
        u32::try_from(r.get::<i64, _>(i))
            .map_err(|_| StoreError::Damaged("packet field out of range".into()))
    };
    Ok(EvidencePacket {
        ts_ns: r.get(0),
        linktype: int(1)?,
        orig_len: int(2)?,
        data: r.get(3),
    })
}

fn incident_from_row(r: &AnyRow) -> Result<Incident> {
    Ok(Incident {
        id: r.get(0),
        title: r.get(1),
        rule_id: r.get(2),
        severity: parse_severity(r.get(3))?,
        status: Status::from_str(r.get(4)).map_err(StoreError::Damaged)?,
        host: r.get(5),
        agency: r.get(6),
        alert_count: r.get(7),
        first_seen: r.get(8),
        last_seen: r.get(9),
        entities: from_json(r.get(10))?,
        tags: from_json(r.get(11))?,
        drill: r.get::<i64, _>(12) != 0,
        drill_id: r.get(16),
        assignee: r.get(13),
        report_due: report_due(r.get(14)),
        created_at: r.get(14),
        updated_at: r.get(15),
        labels: from_json(r.get(17))?,
        merged_into: r.get(18),
        campaign_id: r.get(19),
        province: r.get(20),
        remote_id: r.get(21),
    })
}

/// Detection time plus the reporting period, or "" for an unreadable time.
fn report_due(created_at: &str) -> String {
    DateTime::parse_from_rfc3339(created_at)
        .map(|t| {
            ts(t.with_timezone(&Utc) + chrono::Duration::days(crate::model::REPORT_DEADLINE_DAYS))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Agent `id` on `host`, heartbeating every 10 s, last heard from at `seen`.
    async fn agent_seen(store: &Store, id: &str, host: &str, seen: DateTime<Utc>) {
        let hb = to_json(&Heartbeat {
            heartbeat_interval_s: 10,
            ..Heartbeat::default()
        });
        sqlx::query(
            "INSERT INTO agents (id, hostname, agency, token_hash, version, enrolled_at, last_seen, heartbeat)
             VALUES ($1, $2, 'Agency', $3, '0.1.0', $4, $4, $5)",
        )
        .bind(id)
        .bind(host)
        .bind(format!("hash-{id}"))
        .bind(ts(seen))
        .bind(hb)
        .execute(&store.write)
        .await
        .unwrap();
    }

    /// `check_silent_agents(at)` while the one writer connection is held
    /// by another transaction: it must not wait for it.
    async fn check_with_the_writer_busy(store: &Store, at: DateTime<Utc>) -> (u64, u64) {
        let held = store.write.begin().await.unwrap();
        let done = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            store.check_silent_agents(at),
        )
        .await
        .expect("the check waited for the writer")
        .unwrap();
        drop(held);
        done
    }

    #[tokio::test]
    async fn checking_for_silent_agents_writes_only_for_agents_whose_state_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("ward.db"))
            .await
            .unwrap();
        let now = Utc::now();
        for n in 0..50 {
            agent_seen(&store, &format!("a{n}"), &format!("web{n:02}"), now).await;
        }
        // A healthy fleet's check does not need the writer.
        assert_eq!(
            check_with_the_writer_busy(&store, now + chrono::Duration::seconds(5)).await,
            (0, 0)
        );
        // A silent agent does need it: raised once the writer is free.
        let held = store.write.begin().await.unwrap();
        let late = now + chrono::Duration::seconds(31);
        let check = tokio::spawn({
            let store = store.clone();
            async move { store.check_silent_agents(late).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!check.is_finished(), "raising an incident needs the writer");
        drop(held);
        assert_eq!(check.await.unwrap().unwrap(), (50, 0));
        // Silent and raised: the next check has nothing to write.
        assert_eq!(
            check_with_the_writer_busy(&store, late + chrono::Duration::seconds(2)).await,
            (0, 0)
        );
        // One agent is back: only its incident is resolved.
        sqlx::query("UPDATE agents SET last_seen = $1 WHERE id = 'a7'")
            .bind(ts(late))
            .execute(&store.write)
            .await
            .unwrap();
        assert_eq!(store.check_silent_agents(late).await.unwrap(), (0, 1));
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM incidents WHERE rule_id = $1
               AND status NOT IN ('resolved', 'false_positive')",
        )
        .bind(SILENT_AGENT_RULE)
        .fetch_one(&store.read)
        .await
        .unwrap();
        assert_eq!(open, 49);
        let a7: String = sqlx::query_scalar("SELECT status FROM incidents WHERE group_key = $1")
            .bind(silent_group_key("web07", "a7"))
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(a7, "resolved");
    }

    /// The migration files of a dialect, by name.
    fn migrations(dialect: &str) -> Vec<String> {
        let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn every_migration_exists_in_both_dialects_with_one_name() {
        let sqlite = migrations("sqlite");
        assert!(sqlite.iter().any(|n| n == "0001_init.sql"), "{sqlite:?}");
        assert_eq!(
            sqlite,
            migrations("postgres"),
            "migrations/sqlite and migrations/postgres must hold the same file names"
        );
    }
}
