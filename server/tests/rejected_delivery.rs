//! A batch the coordinator refuses as invalid neither blocks the agent's
//! queue nor disappears: the agent's real delivery task, over loopback HTTP
//! against the real coordinator (router, SQLite), splits the batch until the
//! refused entries are isolated, delivers the rest, and delivers a
//! `rejected` gap (with the coordinator's message) for each refused entry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use chrono::Utc;
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_agent::delivery::DeliveryStats;
use ward_agent::identity::Identity;
use ward_agent::spool::{Spool, SpoolItem};
use ward_agent::uplink::Uplink;
use ward_agent::wire::{Alert, GAP_REJECTED, Gap, Severity};
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::store::Store;

const ADMIN: &str = "ward_test_admin";

async fn post(app: &axum::Router, path: &str, token: &str, body: Value) -> Value {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn get(app: &axum::Router, path: &str) -> Value {
    let req = Request::builder()
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn alert(n: usize, drill_id: Option<&str>) -> Alert {
    Alert {
        id: format!("alert-{n:03}"),
        rule_id: "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d".into(),
        title: "SSH brute force".into(),
        severity: Severity::High,
        time: Utc::now(),
        host: "web01".into(),
        entities: BTreeMap::from([("src_ip".to_string(), format!("203.0.113.{n}"))]),
        evidence: vec!["Failed password for root".into()],
        tags: vec![],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: drill_id.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_entries_are_isolated_delivered_as_gaps_and_the_rest_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ward.db");
    let store = Store::open_sqlite(&db).await.unwrap();
    store
        .add_api_token("admin", "admin", &hash_secret(ADMIN))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AppState::new(store.clone(), &url));
    let served = app.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            served.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let tok = post(&app, "/api/v1/enroll-tokens", ADMIN, json!({"uses": 1})).await;
    let tok = ward_agent::wire::EnrollToken::decode(tok["token"].as_str().unwrap()).unwrap();
    let enrolled = post(
        &app,
        "/api/v1/agents/enroll",
        "",
        json!({"secret": tok.secret, "hostname": "web01", "version": "test"}),
    )
    .await;
    let identity = Identity {
        server_url: url.clone(),
        agent_id: enrolled["agent_id"].as_str().unwrap().into(),
        agent_token: enrolled["agent_token"].as_str().unwrap().into(),
        agency: enrolled["agency"].as_str().unwrap().into(),
        cert_sha256: None,
        bundle_key: None,
    };

    // 40 alerts, two of them with a drill id the coordinator refuses, and a
    // gap record with a severity it does not know.
    let bad = [7usize, 30];
    let mut items: Vec<SpoolItem> = (0..40)
        .map(|n| SpoolItem::Alert(alert(n, bad.contains(&n).then_some("not a drill id!"))))
        .collect();
    let mut bad_gap = Gap::new("spool_full", "web01", 3, 1);
    bad_gap.by_severity.insert("apocalyptic".into(), 3);
    items.insert(20, SpoolItem::Gap(bad_gap.clone()));
    let (mut spool, _) = Spool::open(&dir.path().join("spool"), 64 * 1024 * 1024, "web01").unwrap();
    spool.append(items).unwrap();
    let spool = Arc::new(Mutex::new(spool));

    let stats = Arc::new(DeliveryStats::default());
    let started = Instant::now();
    let task = tokio::spawn(ward_agent::delivery::run(
        spool.clone(),
        Uplink::new(identity).unwrap(),
        Arc::new(tokio::sync::Notify::new()),
        stats.clone(),
    ));
    loop {
        let (entries, _) = ward_agent::delivery::lock(&spool).depth();
        if entries == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the spool did not drain: {entries} entries left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_in = started.elapsed();
    task.abort();

    // Every good alert is stored once; the refused ones are not.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM alerts ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let want: Vec<String> = (0..40)
        .filter(|n| !bad.contains(n))
        .map(|n| format!("alert-{n:03}"))
        .collect();
    assert_eq!(ids, want);

    // Each refused entry is a delivered `rejected` gap naming it and the reason.
    let gaps = get(&app, "/api/v1/gaps").await;
    let rejected: Vec<&Value> = gaps
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["reason"] == GAP_REJECTED)
        .collect();
    assert_eq!(rejected.len(), 3, "{gaps:#}");
    let details: Vec<&str> = rejected
        .iter()
        .map(|g| g["detail"].as_str().unwrap_or_default())
        .collect();
    for n in bad {
        let d = details
            .iter()
            .find(|d| d.contains(&format!("alert alert-{n:03} refused")))
            .unwrap_or_else(|| panic!("no gap for alert {n}: {details:?}"));
        assert!(d.contains("drill_id"), "{d}");
    }
    let g = details
        .iter()
        .find(|d| d.contains(&format!("gap record {} refused", bad_gap.id)))
        .unwrap_or_else(|| panic!("no gap for the refused gap record: {details:?}"));
    assert!(g.contains("apocalyptic"), "{g}");
    for g in &rejected {
        assert_eq!(g["count"], 1);
        assert_eq!(g["host"], "web01");
    }
    // The refused alerts' severities are counted.
    let high: i64 = rejected
        .iter()
        .filter_map(|g| g["by_severity"]["high"].as_i64())
        .sum();
    assert_eq!(high, 2);
    // Halving isolates 3 bad entries among 41 in a few refusals, not 41.
    let refusals = stats.rejected.load(std::sync::atomic::Ordering::Relaxed);
    assert!((3..=20).contains(&refusals), "{refusals} refusals");
    eprintln!("41 entries, 3 refused: drained in {drained_in:?} with {refusals} refused requests");
}
