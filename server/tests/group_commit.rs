//! Many agents' batches at once on a real store (SQLite, or PostgreSQL with
//! `WARD_TEST_POSTGRES_URL`): batches that arrive together are stored
//! together, and each agent's answer still counts only its own alerts and
//! gaps, with incidents, campaigns and escalations as if the batches had
//! come one by one.

use std::collections::BTreeMap;

use chrono::Utc;
use ward_agent::wire::{Alert, Gap, Severity};
use ward_server::store::AgentPrincipal;

mod common;
use common::{TestDb, store_agent};

/// Enough agents that a round's multi-row statements come in every piece
/// size (64 + 8 + 1 rows).
const AGENTS: usize = 73;
const ATTACKER: &str = "198.51.100.23";

fn alert(agent: &AgentPrincipal, n: usize) -> Alert {
    Alert {
        id: format!("{}-{n}", agent.id),
        rule_id: "group-commit-test".into(),
        title: "SSH brute force".into(),
        severity: Severity::Medium,
        time: Utc::now(),
        host: agent.id.trim_start_matches("agent-").into(),
        entities: BTreeMap::from([("src_ip".to_string(), ATTACKER.to_string())]),
        evidence: vec![format!("Failed password for root from {ATTACKER} ({n})")],
        tags: vec!["attack.t1110".into()],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

fn gap(agent: &AgentPrincipal) -> Gap {
    Gap {
        id: format!("{}-gap", agent.id),
        reason: "queue_full".into(),
        host: agent.id.trim_start_matches("agent-").into(),
        count: 2,
        by_severity: BTreeMap::from([("medium".to_string(), 2)]),
        first_time: None,
        last_time: None,
        detected_at: Utc::now(),
        detail: None,
    }
}

async fn scalar(db: &TestDb, sql: &'static str) -> i64 {
    let pool = db.raw().await;
    let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

/// [`AGENTS`] agents on hosts `PREFIX00`, `PREFIX01`, ...
async fn store_agents(db: &TestDb, prefix: &str) -> Vec<AgentPrincipal> {
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        agents.push(store_agent(&db.store, &format!("{prefix}{i:02}")).await);
    }
    agents
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stored_together_each_get_their_own_answer() {
    let db = TestDb::new().await;
    let agents = store_agents(&db, "host").await;
    // Every agent has stored three alerts before.
    for a in &agents {
        let earlier: Vec<Alert> = (0..3).map(|n| alert(a, n)).collect();
        let ack = db.store.ingest(a, &earlier, &[]).await.unwrap();
        assert_eq!((ack.accepted, ack.duplicates), (3, 0));
    }
    // Now all at once: the three again, five new ones (one of them twice)
    // and a gap record.
    let tasks: Vec<_> = agents
        .iter()
        .map(|a| {
            let (store, a) = (db.store.clone(), a.clone());
            tokio::spawn(async move {
                let mut batch: Vec<Alert> = (0..8).map(|n| alert(&a, n)).collect();
                batch.push(alert(&a, 7));
                store.ingest(&a, &batch, &[gap(&a)]).await
            })
        })
        .collect();
    for (a, t) in agents.iter().zip(tasks) {
        let ack = t.await.unwrap().unwrap();
        assert_eq!(
            (ack.accepted, ack.duplicates, ack.gaps_accepted),
            (5, 4, 1),
            "{}",
            a.id
        );
    }
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM alerts").await,
        8 * AGENTS as i64
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM gaps").await,
        AGENTS as i64
    );
    // One incident per host with its eight alerts; the attacker on every
    // host is one campaign, which raised each incident once.
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM incidents").await,
        AGENTS as i64
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM incidents WHERE alert_count = 8").await,
        AGENTS as i64
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(DISTINCT agent_id) FROM alerts").await,
        AGENTS as i64
    );
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM campaigns").await, 1);
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM incident_events WHERE kind = 'escalated' AND detail LIKE 'spread:%'"
        )
        .await,
        AGENTS as i64
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM incidents WHERE severity = 'high'"
        )
        .await,
        AGENTS as i64
    );
    // Every agent was seen by the batch.
    assert_eq!(
        scalar(
            &db,
            "SELECT COUNT(*) FROM agents WHERE last_seen IS NOT NULL"
        )
        .await,
        AGENTS as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_written_together_each_land_on_their_agent() {
    let db = TestDb::new().await;
    let agents = store_agents(&db, "beat").await;
    // All agents at once beat, send a batch and beat again: the queue holds
    // both kinds, heartbeats of many agents share a statement, and each
    // agent keeps its own last one.
    let tasks: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (store, a) = (db.store.clone(), a.clone());
            tokio::spawn(async move {
                let hb = |uptime_s| ward_agent::wire::Heartbeat {
                    version: format!("9.{i}"),
                    rules_version: format!("pack-{i}"),
                    uptime_s,
                    ..Default::default()
                };
                store.heartbeat(&a.id, &hb(1)).await?;
                store.ingest(&a, &[alert(&a, 0)], &[]).await?;
                store.heartbeat(&a.id, &hb(2)).await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let pool = db.raw().await;
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, version, rules_version, heartbeat FROM agents WHERE last_seen IS NOT NULL ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), AGENTS);
    for (id, version, rules, hb) in rows {
        let i: usize = id.trim_start_matches("agent-beat").parse().unwrap();
        assert_eq!(
            (version, rules),
            (format!("9.{i}"), format!("pack-{i}")),
            "{id}"
        );
        let hb: serde_json::Value = serde_json::from_str(&hb).unwrap();
        assert_eq!(hb["uptime_s"], 2, "{id}");
    }
}
