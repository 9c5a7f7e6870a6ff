//! Retention on a real store (SQLite, or PostgreSQL with
//! `WARD_TEST_POSTGRES_URL`): alerts of closed incidents older than the
//! cutoff go with their frames, in bounded batches; open incidents keep
//! theirs; incidents stay as records.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use ward_agent::wire::{Alert, EvidencePacket, Severity};
use ward_server::model::Status;
use ward_server::store::{PruneReport, Retention, TriageAction};

mod common;
use common::{TestDb, store_agent as agent};

fn alert(id: &str, ip: &str, frames: usize) -> Alert {
    Alert {
        id: id.into(),
        rule_id: "retention-test".into(),
        title: "Port scan".into(),
        severity: Severity::Medium,
        time: Utc::now(),
        host: "web01".into(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        evidence: vec![],
        tags: vec![],
        source: "live:eth0".into(),
        packets: (0..frames)
            .map(|i| EvidencePacket {
                ts_ns: 1_000 + i as i64,
                linktype: 1,
                orig_len: 60,
                data: vec![i as u8; 60],
            })
            .collect(),
        drill_id: None,
    }
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    let pool = db.raw().await;
    let n = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn old_alerts_of_closed_incidents_are_pruned_in_batches_open_ones_kept() {
    let db = TestDb::new().await;
    let store = &db.store;
    let a = agent(store, "web01").await;
    // Five alerts (2 frames each) of an incident that gets resolved, two
    // of one that stays open.
    let closed: Vec<Alert> = (0..5)
        .map(|i| alert(&format!("c{i}"), "198.51.100.1", 2))
        .collect();
    let open: Vec<Alert> = (0..2)
        .map(|i| alert(&format!("o{i}"), "198.51.100.2", 1))
        .collect();
    let ack = store
        .ingest(&a, &[closed, open].concat(), &[])
        .await
        .unwrap();
    assert_eq!(ack.accepted, 7);
    let incidents = store.incidents(None, 10, None).await.unwrap();
    assert_eq!(incidents.len(), 2);
    let done = incidents
        .iter()
        .find(|i| i.entities.get("src_ip").map(String::as_str) == Some("198.51.100.1"))
        .unwrap()
        .id;
    store
        .triage(
            done,
            "tester",
            TriageAction::SetStatus(Status::Resolved, None),
        )
        .await
        .unwrap();
    let retention = Retention {
        days: 30,
        batch: 2,
        pause: Duration::from_millis(10),
    };

    // Everything is recent: nothing goes.
    let none = store
        .prune_alerts(retention.cutoff(Utc::now()), &retention)
        .await
        .unwrap();
    assert_eq!(none, PruneReport::default());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM alerts").await, 7);

    // A cutoff after every alert: the resolved incident's five go, two at a time.
    let later = Utc::now() + chrono::Duration::days(1);
    let report = store.prune_alerts(later, &retention).await.unwrap();
    assert_eq!(
        report,
        PruneReport {
            alerts: 5,
            packets: 10,
            batches: 3
        }
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM alerts").await, 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM alert_packets").await, 2);
    // The open incident keeps its alerts; the resolved one stays as a record.
    let kept = store.incident(done).await.unwrap();
    assert!(kept.alerts.is_empty());
    assert_eq!(kept.incident.alert_count, 5);
    assert_eq!(kept.incident.status, Status::Resolved);
    assert!(store.alert_packets("c0").await.is_err());
    assert_eq!(store.alert_packets("o0").await.unwrap().len(), 1);
    // Nothing left to prune: a second pass deletes nothing.
    let again = store.prune_alerts(later, &retention).await.unwrap();
    assert_eq!(again, PruneReport::default());
    // New alerts of the group open a new incident, as before.
    let ack = store
        .ingest(&a, &[alert("c9", "198.51.100.1", 0)], &[])
        .await
        .unwrap();
    assert_eq!(ack.accepted, 1);
    assert_eq!(
        store
            .incidents(Some(Status::New), 10, None)
            .await
            .unwrap()
            .len(),
        2
    );
}
