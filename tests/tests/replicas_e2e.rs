//! Two `ward-server` replicas on one PostgreSQL database (real processes,
//! real HTTP on loopback): the same and overlapping alert batches sent to
//! both at once, round after round, while incidents are resolved, end up
//! as exactly one open incident per group with every alert stored once
//! and counted once; both replicas' silent-agent checks raise one incident.
//!
//! Needs `WARD_TEST_POSTGRES_URL` (a role that may create databases;
//! `scripts/test` sets it); skipped with a message otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use ward_agent::wire::{Alert, EnrollToken, Severity};
use ward_e2e::Server;

const GROUPS: usize = 3;
const ROUNDS: usize = 30;
const PER_GROUP: usize = 6;

fn postgres_url() -> Option<String> {
    std::env::var("WARD_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let mut out = format!("{}/{name}", &base[..end]);
    if let Some(q) = query {
        out = format!("{out}?{q}");
    }
    out
}

async fn pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connecting to the test PostgreSQL")
}

/// A fresh database on the test server, dropped when done.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin_url: &str) -> Database {
        let name = format!("ward_e2e_{}", hex::encode(rand::random::<[u8; 8]>()));
        let admin = pool(admin_url).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
        )))
        .execute(&admin)
        .await
        .unwrap();
        Database {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_string(),
            name,
        }
    }

    async fn drop_it(self) {
        let admin = pool(&self.admin_url).await;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&admin)
            .await
            .unwrap();
    }
}

fn alert(round: usize, group: usize, k: usize) -> Alert {
    Alert {
        id: format!("r{round}-g{group}-a{k}"),
        rule_id: "replica-test-rule".into(),
        title: "SSH brute force".into(),
        severity: if k == 3 {
            Severity::Critical
        } else {
            Severity::Medium
        },
        time: Utc::now(),
        host: "web01".into(),
        entities: BTreeMap::from([("src_ip".to_string(), format!("198.51.100.{group}"))]),
        evidence: vec![format!("line {round} {k}")],
        tags: vec![],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> (u16, Value) {
    let resp = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[test]
fn two_replicas_on_one_postgres_group_and_store_each_alert_once() {
    let Some(admin_url) = postgres_url() else {
        eprintln!(
            "SKIPPED two_replicas_on_one_postgres_group_and_store_each_alert_once: \
             WARD_TEST_POSTGRES_URL is unset (scripts/test sets it up)"
        );
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(Database::create(&admin_url));
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let args = ["--insecure-http", "--database", db.url.as_str()];
    let a = Server::start_with(&data_a, None, &args);
    // The second replica finds the admin token in the store and makes
    // none; it gets the first one's file, as an operator would copy it.
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(data_a.join("admin.token"), data_b.join("admin.token")).unwrap();
    let b = Server::start_with(&data_b, None, &args);
    assert_eq!(
        b.admin_token, a.admin_token,
        "the second replica made no token"
    );
    let client = a.http_client();
    let admin = a.admin_token.clone();

    rt.block_on(async {
        let enroll = |host: &'static str| {
            let client = client.clone();
            let (url, admin) = (a.url.clone(), admin.clone());
            async move {
                let (s, t) = post(
                    &client,
                    &format!("{url}/api/v1/enroll-tokens"),
                    &admin,
                    &json!({"agency": "ops"}),
                )
                .await;
                assert_eq!(s, 200, "{t}");
                let token = EnrollToken::decode(t["token"].as_str().unwrap()).unwrap();
                let resp = client
                    .post(format!("{url}/api/v1/agents/enroll"))
                    .json(&json!({"secret": token.secret, "hostname": host, "version": "0.1.0"}))
                    .send()
                    .await
                    .unwrap();
                let e: Value = resp.json().await.unwrap();
                e["agent_token"]
                    .as_str()
                    .expect("an agent token")
                    .to_string()
            }
        };
        let agent = enroll("web01").await;
        let replicas = [
            format!("{}/api/v1/agent/alerts", a.url),
            format!("{}/api/v1/agent/alerts", b.url),
        ];
        let mut accepted = 0u64;
        for round in 0..ROUNDS {
            // Batch "low" has alerts 0..4 of every group, "high" 2..6:
            // 2 and 3 are in both. Each batch goes to both replicas at once.
            let low: Vec<Alert> = (0..GROUPS)
                .flat_map(|g| (0..4).map(move |k| alert(round, g, k)))
                .collect();
            let mut high: Vec<Alert> = (0..GROUPS)
                .flat_map(|g| (2..PER_GROUP).map(move |k| alert(round, g, k)))
                .collect();
            high.reverse();
            let (low, high) = (json!({ "alerts": low }), json!({ "alerts": high }));
            let sends = [
                post(&client, &replicas[0], &agent, &low),
                post(&client, &replicas[1], &agent, &low),
                post(&client, &replicas[1], &agent, &high),
                post(&client, &replicas[0], &agent, &high),
            ];
            let resolve = async {
                // Now and then a responder resolves the group's incidents
                // while alerts arrive: new ones open, never two at once.
                if round % 10 == 5 {
                    let list: Value = client
                        .get(format!("{}/api/v1/incidents?status=new", b.url))
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    for i in list.as_array().unwrap() {
                        let url = format!("{}/api/v1/incidents/{}/resolve", a.url, i["id"]);
                        let (s, v) = post(&client, &url, &admin, &json!({})).await;
                        assert!(s == 200 || s == 409, "resolve: {s} {v}");
                    }
                }
            };
            let (acks, ()) = tokio::join!(futures_join(sends), resolve);
            for (i, (status, ack)) in acks.iter().enumerate() {
                assert_eq!(*status, 200, "round {round} send {i}: {ack}");
                let got = ack["accepted"].as_u64().unwrap() + ack["duplicates"].as_u64().unwrap();
                assert_eq!(got, (GROUPS * 4) as u64, "round {round} send {i}: {ack}");
                accepted += ack["accepted"].as_u64().unwrap();
            }
        }
        let total = (ROUNDS * GROUPS * PER_GROUP) as i64;
        assert_eq!(accepted, total as u64, "acknowledged as new once each");

        let sql = pool(&db.url).await;
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
            .fetch_one(&sql)
            .await
            .unwrap();
        assert_eq!(stored, total, "every alert stored once");
        let tokens: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&sql)
            .await
            .unwrap();
        assert_eq!(tokens, 1, "one first admin token");
        let open: Vec<(String, i64)> = sqlx::query_as(
            "SELECT group_key, COUNT(*) FROM incidents
             WHERE status NOT IN ('resolved', 'false_positive') GROUP BY group_key",
        )
        .fetch_all(&sql)
        .await
        .unwrap();
        assert_eq!(open.len(), GROUPS, "{open:?}");
        assert!(open.iter().all(|(_, n)| *n == 1), "{open:?}");
        let counts: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT i.id, i.alert_count, (SELECT COUNT(*) FROM alerts a WHERE a.incident_id = i.id)
             FROM incidents i",
        )
        .fetch_all(&sql)
        .await
        .unwrap();
        for (id, count, alerts) in &counts {
            assert_eq!(
                count, alerts,
                "incident {id}: alert_count {count}, {alerts} alerts"
            );
        }
        let sum: i64 = counts.iter().map(|c| c.1).sum();
        assert_eq!(sum, total);
        let critical: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM incidents WHERE status = 'new' AND severity = 'critical'",
        )
        .fetch_one(&sql)
        .await
        .unwrap();
        assert_eq!(
            critical, GROUPS as i64,
            "severity raised by the critical alerts"
        );

        // A silent agent: both replicas check every 2 s; one incident.
        let quiet = enroll("web02").await;
        let hb = json!({"version": "0.1.0", "rules_version": "r1", "uptime_s": 1,
            "events_total": 0, "alerts_total": 0, "malformed_total": 0,
            "heartbeat_interval_s": 1});
        let (s, v) = post(
            &client,
            &format!("{}/api/v1/agent/heartbeat", b.url),
            &quiet,
            &hb,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        let silent = || async {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM incidents WHERE rule_id = 'ward-agent-silent'",
            )
            .fetch_one(&sql)
            .await
            .unwrap();
            n
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while silent().await == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no silent-agent incident"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Several more checks of both replicas.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(silent().await, 1, "the silent agent raised one incident");
        sql.close().await;
    });
    drop(a);
    drop(b);
    rt.block_on(db.drop_it());
}

/// Runs the four sends concurrently, in order of the array.
async fn futures_join<F: std::future::Future<Output = (u16, Value)>>(
    sends: [F; 4],
) -> Vec<(u16, Value)> {
    let [s0, s1, s2, s3] = sends;
    let (r0, r1, r2, r3) = tokio::join!(s0, s1, s2, s3);
    vec![r0, r1, r2, r3]
}
