//! The SQLite store copies its write-ahead log into the database file on a
//! connection of its own, not in the writer's commits: after ingest the
//! database file itself grows (only a checkpoint writes it in WAL mode),
//! while the writer's own automatic checkpoint waits for 20,000 log pages,
//! far more than these batches write.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use ward_agent::wire::{Alert, Severity};
use ward_server::store::Store;

mod common;
use common::store_agent;

fn alert(n: usize) -> Alert {
    let attacker = format!("198.51.100.{}", n % 200);
    Alert {
        id: format!("wal-{n}"),
        rule_id: "wal-checkpoint-test".into(),
        title: "SSH brute force".into(),
        severity: Severity::Medium,
        time: Utc::now(),
        host: "wal-host".into(),
        entities: BTreeMap::from([("src_ip".to_string(), attacker.clone())]),
        evidence: vec![format!("Failed password for root from {attacker} ({n})")],
        tags: vec!["attack.t1110".into()],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_copied_into_the_database_file_after_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ward.db");
    let store = Store::open_sqlite(&db).await.unwrap();
    let agent = store_agent(&store, "wal-host").await;
    // Whatever the migrations and enrolment left in the log is copied first.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = size(&db);

    // About 2 MB of alert rows: hundreds of log pages, no writer checkpoint.
    for round in 0..10 {
        let batch: Vec<Alert> = (0..500).map(|i| alert(round * 500 + i)).collect();
        let ack = store.ingest(&agent, &batch, &[]).await.unwrap();
        assert_eq!((ack.accepted, ack.duplicates), (500, 0));
    }
    let wal = dir.path().join("ward.db-wal");
    assert!(size(&wal) > 0, "the writer logs its pages");

    let deadline = Instant::now() + Duration::from_secs(20);
    while size(&db) < before + 1_000_000 {
        assert!(
            Instant::now() < deadline,
            "the database file stayed at {} bytes (was {before}) with {} bytes of log",
            size(&db),
            size(&wal)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The file and its log together hold every alert, the log now copied.
    drop(store);
    let pool = common::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 5_000);
    pool.close().await;
}
