//! Incident work over the real API and a real SQLite file: the queue's
//! filters and order, labels, merge and split, campaigns across hosts and
//! agencies with severity that rises with spread and volume, the grouping
//! window, false-positive suppression proposals, and webhooks delivered to
//! a real receiver on loopback.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_agent::wire::{Alert, EnrollToken, Severity};
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::store::Store;

mod common;
use common::{ADMIN, TestDb, VIEWER};

struct Harness {
    app: Router,
    store: Store,
    _db: TestDb,
}

/// The API over a fresh store (SQLite, or PostgreSQL when the suite runs on
/// it) with an admin and a viewer token.
async fn harness_with(window: Option<Duration>) -> Harness {
    let db = TestDb::new().await;
    let mut store = db.store.clone();
    if let Some(w) = window {
        store = store.with_group_window(w);
    }
    store
        .add_api_token("admin", "admin", &hash_secret(ADMIN))
        .await
        .unwrap();
    store
        .add_api_token("viewer", "viewer", &hash_secret(VIEWER))
        .await
        .unwrap();
    Harness {
        app: router(AppState::new(store.clone(), "http://127.0.0.1:9")),
        store,
        _db: db,
    }
}

async fn harness() -> Harness {
    harness_with(None).await
}

impl Harness {
    async fn json(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json");
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.json("GET", path, token, Value::Null).await
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.json(method, path, ADMIN, body).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {v}");
        v
    }

    /// Enrolls an agent of `agency` on `host`; returns its credential.
    async fn agent(&self, host: &str, agency: &str) -> String {
        let t = self
            .ok("POST", "/api/v1/enroll-tokens", json!({ "agency": agency }))
            .await;
        let token = EnrollToken::decode(t["token"].as_str().unwrap()).unwrap();
        let req = Request::builder()
            .method("POST")
            .uri("/api/v1/agents/enroll")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"secret": token.secret, "hostname": host, "version": "0.1.0"}).to_string(),
            ))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["agent_token"].as_str().unwrap().to_string()
    }

    /// Sends a batch as `agent`; (accepted, duplicates).
    async fn send(&self, agent: &str, alerts: &[Alert]) -> (u64, u64) {
        let (s, v) = self
            .json(
                "POST",
                "/api/v1/agent/alerts",
                agent,
                json!({ "alerts": alerts }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (
            v["accepted"].as_u64().unwrap(),
            v["duplicates"].as_u64().unwrap(),
        )
    }

    async fn incidents(&self, query: &str) -> Vec<Value> {
        let v = self
            .ok("GET", &format!("/api/v1/incidents{query}"), Value::Null)
            .await;
        v.as_array().unwrap().clone()
    }

    async fn incident(&self, id: i64) -> Value {
        self.ok("GET", &format!("/api/v1/incidents/{id}"), Value::Null)
            .await
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap()
}

fn alert(id: &str, rule: &str, host: &str, ip: &str, sev: Severity, at: DateTime<Utc>) -> Alert {
    Alert {
        id: id.into(),
        rule_id: rule.into(),
        title: format!("rule {rule}"),
        severity: sev,
        time: at,
        host: host.into(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        evidence: vec![format!("{host} evidence for {id}")],
        tags: vec!["attack.t1110".into()],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

fn ids(list: &[Value]) -> Vec<i64> {
    list.iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn the_queue_filters_sorts_and_shows_the_reporting_deadline() {
    let h = harness().await;
    let web = h.agent("web01", "So TTTT").await;
    let db = h.agent("db01", "So Y te").await;
    h.send(
        &web,
        &[alert(
            "a1",
            "r-ssh",
            "web01",
            "203.0.113.1",
            Severity::Medium,
            t0(),
        )],
    )
    .await;
    h.send(
        &db,
        &[alert(
            "a2",
            "r-web",
            "db01",
            "203.0.113.2",
            Severity::Critical,
            t0() + Duration::hours(2),
        )],
    )
    .await;
    let all = h.incidents("").await;
    assert_eq!(all.len(), 2);
    let (newest, oldest) = (
        all[0]["id"].as_i64().unwrap(),
        all[1]["id"].as_i64().unwrap(),
    );
    assert_eq!(all[0]["host"], "db01", "most recently active first");
    // The deadline is five days after detection.
    let created = DateTime::parse_from_rfc3339(all[0]["created_at"].as_str().unwrap()).unwrap();
    let due = DateTime::parse_from_rfc3339(all[0]["report_due"].as_str().unwrap()).unwrap();
    assert_eq!(due - created, Duration::days(5));

    assert_eq!(ids(&h.incidents("?severity=high").await), vec![newest]);
    assert_eq!(ids(&h.incidents("?host=web01").await), vec![oldest]);
    assert_eq!(ids(&h.incidents("?agency=So%20Y%20te").await), vec![newest]);
    assert_eq!(ids(&h.incidents("?rule=r-ssh").await), vec![oldest]);
    assert_eq!(
        ids(&h.incidents("?since=2026-11-22T05:00:00Z").await),
        vec![newest]
    );
    assert_eq!(
        ids(&h.incidents("?until=2026-11-22T05:00:00%2B00:00").await),
        vec![oldest]
    );
    assert_eq!(
        ids(&h.incidents("?sort=severity").await),
        vec![newest, oldest]
    );
    // Deadline order: the open incident detected first is due first; closed
    // ones go last.
    assert_eq!(
        ids(&h.incidents("?sort=deadline").await),
        vec![oldest, newest]
    );
    h.ok(
        "POST",
        &format!("/api/v1/incidents/{oldest}/resolve"),
        Value::Null,
    )
    .await;
    assert_eq!(
        ids(&h.incidents("?sort=deadline").await),
        vec![newest, oldest]
    );

    for (q, want) in [
        ("?sort=age", "sort 'age'"),
        ("?severity=urgent", "urgent"),
        ("?since=yesterday", "RFC 3339"),
    ] {
        let (s, v) = h.get(&format!("/api/v1/incidents{q}"), ADMIN).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert!(v.to_string().contains(want), "{q}: {v}");
    }
}

#[tokio::test]
async fn labels_merge_and_split_keep_every_alert_and_say_so_in_the_timeline() {
    let h = harness().await;
    let web = h.agent("web01", "So TTTT").await;
    h.send(
        &web,
        &[
            alert(
                "a1",
                "r-ssh",
                "web01",
                "203.0.113.1",
                Severity::Medium,
                t0(),
            ),
            alert(
                "a2",
                "r-ssh",
                "web01",
                "203.0.113.1",
                Severity::Medium,
                t0() + Duration::minutes(1),
            ),
            alert(
                "b1",
                "r-ssh",
                "web01",
                "198.51.100.7",
                Severity::High,
                t0() + Duration::minutes(2),
            ),
        ],
    )
    .await;
    let list = h.incidents("").await;
    assert_eq!(list.len(), 2);
    let b = list
        .iter()
        .find(|i| i["entities"]["src_ip"] == "198.51.100.7")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let a = list
        .iter()
        .find(|i| i["entities"]["src_ip"] == "203.0.113.1")
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // Labels.
    let v = h
        .ok(
            "POST",
            &format!("/api/v1/incidents/{a}/tag"),
            json!({"text": "apt-ransom"}),
        )
        .await;
    assert_eq!(v["labels"], json!(["apt-ransom"]));
    let (s, v) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/tag"),
            ADMIN,
            json!({"text": "apt-ransom"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/untag"),
            ADMIN,
            json!({"text": "nope"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/tag"),
            VIEWER,
            json!({"text": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "viewers do not triage");
    let (s, v) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/tag"),
            ADMIN,
            json!({"text": "a\u{7}b"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Merge b into a.
    let (s, v) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/merge"),
            ADMIN,
            json!({"into": a}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{b}/merge"),
            ADMIN,
            json!({"into": 999}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let merged = h
        .ok(
            "POST",
            &format!("/api/v1/incidents/{b}/merge"),
            json!({"into": a}),
        )
        .await;
    assert_eq!(merged["id"], a);
    assert_eq!(merged["alert_count"], 3);
    assert_eq!(
        merged["severity"], "high",
        "the merged incident keeps the higher severity"
    );
    assert!(
        merged["timeline"]
            .to_string()
            .contains(&format!("incident {b} merged in"))
    );
    let gone = h.incident(b).await;
    assert_eq!(gone["status"], "resolved");
    assert_eq!(gone["merged_into"], a);
    assert_eq!(gone["alert_count"], 0);
    assert_eq!(
        ids(&h.incidents("?drill=all").await),
        vec![a],
        "merged incidents leave the queue"
    );
    // A later alert of b's group follows into a.
    h.send(
        &web,
        &[alert(
            "b2",
            "r-ssh",
            "web01",
            "198.51.100.7",
            Severity::High,
            t0() + Duration::minutes(3),
        )],
    )
    .await;
    assert_eq!(h.incident(a).await["alert_count"], 4);
    assert_eq!(h.incidents("").await.len(), 1);

    // Split b's two alerts back out.
    let (s, v) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/split"),
            ADMIN,
            json!({"alert_ids": ["a1", "a2", "b1", "b2"]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "one alert must stay: {v}"
    );
    let (s, v) = h
        .json(
            "POST",
            &format!("/api/v1/incidents/{a}/split"),
            ADMIN,
            json!({"alert_ids": ["zz"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let split = h
        .ok(
            "POST",
            &format!("/api/v1/incidents/{a}/split"),
            json!({"alert_ids": ["b1", "b2"]}),
        )
        .await;
    let c = split["id"].as_i64().unwrap();
    assert_ne!(c, a);
    assert_eq!(split["alert_count"], 2);
    assert_eq!(split["severity"], "high");
    assert_eq!(split["labels"], json!(["apt-ransom"]));
    let rest = h.incident(a).await;
    assert_eq!(rest["alert_count"], 2);
    assert_eq!(
        rest["severity"], "medium",
        "recomputed from the alerts left"
    );
    assert!(
        rest["timeline"]
            .to_string()
            .contains(&format!("moved to incident {c}"))
    );
    let audit = h.ok("GET", "/api/v1/audit", Value::Null).await.to_string();
    for action in ["incident.tag", "incident.merge", "incident.split"] {
        assert!(audit.contains(action), "{action} audited");
    }
}

#[tokio::test]
async fn one_attacker_across_hosts_and_agencies_is_a_campaign_and_raises_severity() {
    let h = harness().await;
    let attacker = "203.0.113.66";
    let a1 = h.agent("portal", "So TTTT").await;
    let a2 = h.agent("mail", "So TTTT").await;
    let a3 = h.agent("hr", "So Noi vu").await;
    h.send(
        &a1,
        &[alert(
            "x1",
            "r-ssh",
            "portal",
            attacker,
            Severity::Medium,
            t0(),
        )],
    )
    .await;
    assert!(
        h.ok("GET", "/api/v1/campaigns", Value::Null)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    h.send(
        &a2,
        &[alert(
            "x2",
            "r-ssh",
            "mail",
            attacker,
            Severity::Medium,
            t0(),
        )],
    )
    .await;
    let camps = h.ok("GET", "/api/v1/campaigns", Value::Null).await;
    assert_eq!(camps.as_array().unwrap().len(), 1, "{camps}");
    assert_eq!(camps[0]["kind"], "ip");
    assert_eq!(camps[0]["value"], attacker);
    assert_eq!(camps[0]["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(
        camps[0]["severity"], "medium",
        "two hosts of one agency: no escalation yet"
    );
    // A third host, in another agency: spread raises every incident once.
    h.send(
        &a3,
        &[alert("x3", "r-web", "hr", attacker, Severity::Low, t0())],
    )
    .await;
    let id = camps[0]["id"].as_i64().unwrap();
    let c = h
        .ok("GET", &format!("/api/v1/campaigns/{id}"), Value::Null)
        .await;
    assert_eq!(c["agencies"].as_array().unwrap().len(), 2, "{c}");
    assert_eq!(c["incidents"].as_array().unwrap().len(), 3);
    let sev: BTreeMap<String, String> = c["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["host"].as_str().unwrap().into(),
                i["severity"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(sev["portal"], "high");
    assert_eq!(sev["mail"], "high");
    assert_eq!(sev["hr"], "medium");
    for i in c["incidents"].as_array().unwrap() {
        assert_eq!(i["campaign_id"], id);
        let d = h.incident(i["id"].as_i64().unwrap()).await;
        let esc = d["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "escalated")
            .count();
        assert_eq!(esc, 1, "raised once: {}", d["timeline"]);
    }
    // A fourth host does not raise them again.
    let a4 = h.agent("dns", "So Noi vu").await;
    h.send(
        &a4,
        &[alert(
            "x4",
            "r-ssh",
            "dns",
            attacker,
            Severity::Medium,
            t0(),
        )],
    )
    .await;
    let c = h
        .ok("GET", &format!("/api/v1/campaigns/{id}"), Value::Null)
        .await;
    assert_eq!(c["hosts"].as_array().unwrap().len(), 4);
    // A fourth host joining the spread campaign: its incident is raised
    // (medium → high), the others are not raised again.
    let sev: BTreeMap<String, String> = c["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["host"].as_str().unwrap().into(),
                i["severity"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        sev,
        BTreeMap::from([
            ("dns".to_string(), "high".to_string()),
            ("hr".to_string(), "medium".to_string()),
            ("mail".to_string(), "high".to_string()),
            ("portal".to_string(), "high".to_string()),
        ])
    );

    // A user of one agency sees the campaign with that agency's incidents only.
    let scoped = h
        .ok(
            "POST",
            "/api/v1/users",
            json!({"name": "lan", "role": "responder", "agencies": ["So Noi vu"]}),
        )
        .await;
    let token = scoped["token"].as_str().unwrap();
    let (s, c) = h.get(&format!("/api/v1/campaigns/{id}"), token).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["agencies"], json!(["So Noi vu"]));
    assert_eq!(c["incidents"].as_array().unwrap().len(), 2);
    let (s, _) = h.get("/api/v1/campaigns/999", ADMIN).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A drill with the same address links only with itself.
    let mut d = alert("d1", "r-ssh", "portal", attacker, Severity::Medium, t0());
    d.drill_id = Some("drill-20261122-abcd".into());
    h.send(&a1, &[d]).await;
    let c = h
        .ok("GET", &format!("/api/v1/campaigns/{id}"), Value::Null)
        .await;
    assert_eq!(c["incidents"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn volume_raises_an_incident_once() {
    let h = harness().await;
    let a = h.agent("web01", "So TTTT").await;
    let alerts: Vec<Alert> = (0..120)
        .map(|n| {
            alert(
                &format!("v{n}"),
                "r-404",
                "web01",
                "203.0.113.5",
                Severity::Low,
                t0() + Duration::seconds(n),
            )
        })
        .collect();
    h.send(&a, &alerts).await;
    let list = h.incidents("").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["alert_count"], 120);
    assert_eq!(list[0]["severity"], "medium");
    let d = h.incident(list[0]["id"].as_i64().unwrap()).await;
    let esc: Vec<&Value> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "escalated")
        .collect();
    assert_eq!(esc.len(), 1);
    assert!(
        esc[0]["detail"].as_str().unwrap().starts_with("volume:"),
        "{}",
        esc[0]
    );
}

#[tokio::test]
async fn a_false_positive_proposes_a_suppression_for_the_agents() {
    let h = harness().await;
    let a = h.agent("web01", "So TTTT").await;
    h.send(
        &a,
        &[alert(
            "f1",
            "r-scan",
            "web01",
            "10.0.0.9",
            Severity::Medium,
            t0(),
        )],
    )
    .await;
    let id = h.incidents("").await[0]["id"].as_i64().unwrap();
    assert!(h.incident(id).await.get("suppression").is_none());
    let d = h
        .ok(
            "POST",
            &format!("/api/v1/incidents/{id}/false-positive"),
            json!({"text": "the agency's scanner"}),
        )
        .await;
    let s = d["suppression"].as_str().unwrap();
    assert!(s.contains("[[suppress]]"), "{s}");
    assert!(s.contains("rules = [\"r-scan\"]"), "{s}");
    assert!(s.contains("entity = \"src_ip\""), "{s}");
    assert!(s.contains("values = [\"10.0.0.9\"]"), "{s}");
    // The proposal is valid agent configuration.
    let cfg: BTreeMap<String, Vec<ward_agent::engine::Suppression>> = toml::from_str(s).unwrap();
    ward_agent::engine::Suppressions::new(&cfg["suppress"]).unwrap();
}

#[tokio::test]
async fn an_open_incident_collects_alerts_only_within_the_grouping_window() {
    let h = harness_with(Some(Duration::hours(1))).await;
    let a = h.agent("web01", "So TTTT").await;
    let ip = "203.0.113.8";
    h.send(
        &a,
        &[alert("w1", "r-ssh", "web01", ip, Severity::Medium, t0())],
    )
    .await;
    h.send(
        &a,
        &[alert(
            "w2",
            "r-ssh",
            "web01",
            ip,
            Severity::Medium,
            t0() + Duration::minutes(50),
        )],
    )
    .await;
    assert_eq!(h.incidents("").await.len(), 1);
    h.send(
        &a,
        &[alert(
            "w3",
            "r-ssh",
            "web01",
            ip,
            Severity::Medium,
            t0() + Duration::hours(3),
        )],
    )
    .await;
    let list = h.incidents("").await;
    assert_eq!(list.len(), 2, "after the quiet hour a new incident starts");
    assert!(list.iter().all(|i| i["status"] == "new"));
    assert_eq!(list[0]["alert_count"], 1);
    assert_eq!(list[1]["alert_count"], 2);
    // The next alert joins the new one.
    h.send(
        &a,
        &[alert(
            "w4",
            "r-ssh",
            "web01",
            ip,
            Severity::Medium,
            t0() + Duration::hours(3),
        )],
    )
    .await;
    assert_eq!(
        h.incident(list[0]["id"].as_i64().unwrap()).await["alert_count"],
        2
    );
}

/// One batch is stored as its alerts would be one by one: a group whose
/// alerts lie further apart than the window opens a second incident, an
/// alert twice in the batch counts once, and the groups of one batch each
/// get their own incident with the worst severity of their alerts.
#[tokio::test]
async fn one_batch_groups_as_its_alerts_would_one_by_one() {
    let h = harness_with(Some(Duration::hours(1))).await;
    let a = h.agent("web01", "So TTTT").await;
    let (ip, other) = ("203.0.113.9", "198.51.100.77");
    let batch = [
        alert("b1", "r-ssh", "web01", ip, Severity::Medium, t0()),
        alert("b2", "r-ssh", "web01", other, Severity::Low, t0()),
        alert(
            "b3",
            "r-ssh",
            "web01",
            ip,
            Severity::High,
            t0() + Duration::minutes(40),
        ),
        alert(
            "b3",
            "r-ssh",
            "web01",
            ip,
            Severity::High,
            t0() + Duration::minutes(40),
        ),
        alert(
            "b4",
            "r-ssh",
            "web01",
            ip,
            Severity::Low,
            t0() + Duration::hours(3),
        ),
        alert(
            "b5",
            "r-ssh",
            "web01",
            ip,
            Severity::Low,
            t0() + Duration::hours(3) + Duration::minutes(1),
        ),
    ];
    assert_eq!(h.send(&a, &batch).await, (5, 1));
    let mut shape: Vec<(String, i64, String, String)> = h
        .incidents("")
        .await
        .iter()
        .map(|i| {
            (
                i["entities"]["src_ip"].as_str().unwrap().to_string(),
                i["alert_count"].as_i64().unwrap(),
                i["severity"].as_str().unwrap().to_string(),
                i["first_seen"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    shape.sort();
    let at = |d: Duration| ward_server::store::ts(t0() + d);
    assert_eq!(
        shape,
        vec![
            (
                other.to_string(),
                1,
                "low".to_string(),
                at(Duration::zero())
            ),
            (ip.to_string(), 2, "high".to_string(), at(Duration::zero())),
            (ip.to_string(), 2, "low".to_string(), at(Duration::hours(3))),
        ]
    );
    // The same batch again changes nothing.
    assert_eq!(h.send(&a, &batch).await, (0, 6));
    assert_eq!(h.incidents("").await.len(), 3);
}

/// A receiver on loopback that answers the first `fail` requests with 500.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(HeaderMap, String)>>>,
}

async fn receiver(fail: usize) -> Receiver {
    let got: Arc<Mutex<Vec<(HeaderMap, String)>>> = Arc::default();
    let seen = got.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut g = seen.lock().unwrap();
                g.push((headers, body));
                if g.len() <= fail {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
    }
}

#[tokio::test]
async fn webhooks_are_signed_filtered_by_severity_and_retried_until_delivered() {
    let h = harness().await;
    let rx = receiver(1).await;
    for (body, want) in [
        (json!({"url": "ftp://x/"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"url": rx.url, "events": ["incident.deleted"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, v) = h.json("POST", "/api/v1/webhooks", ADMIN, body).await;
        assert_eq!(s, want, "{v}");
    }
    let (s, _) = h
        .json("POST", "/api/v1/webhooks", VIEWER, json!({"url": rx.url}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let hook = h
        .ok(
            "POST",
            "/api/v1/webhooks",
            json!({"url": rx.url, "min_severity": "high"}),
        )
        .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let hook_id = hook["id"].as_i64().unwrap();
    let (_, listed) = h.get("/api/v1/webhooks", ADMIN).await;
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once"
    );

    let a = h.agent("web01", "So TTTT").await;
    h.send(
        &a,
        &[alert(
            "h1",
            "r-shell",
            "web01",
            "203.0.113.9",
            Severity::Critical,
            t0(),
        )],
    )
    .await;
    h.send(
        &a,
        &[alert(
            "l1",
            "r-404",
            "web01",
            "203.0.113.9",
            Severity::Low,
            t0(),
        )],
    )
    .await;
    let critical = h.incidents("?severity=critical").await[0]["id"]
        .as_i64()
        .unwrap();
    h.ok(
        "POST",
        &format!("/api/v1/incidents/{critical}/ack"),
        Value::Null,
    )
    .await;

    let client = ward_server::webhook::client().unwrap();
    let now = Utc::now();
    // First pass: two deliveries (created, acknowledged); the receiver fails the first.
    let sent = ward_server::webhook::send_due(&h.store, &client, now)
        .await
        .unwrap();
    assert_eq!(sent, 2);
    let d = h
        .ok(
            "GET",
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            Value::Null,
        )
        .await;
    let pending: Vec<&Value> = d
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["delivered_at"].is_null())
        .collect();
    assert_eq!(pending.len(), 1, "{d}");
    assert_eq!(pending[0]["attempts"], 1);
    assert_eq!(pending[0]["last_status"], 500);
    // Not due again at once.
    assert_eq!(
        ward_server::webhook::send_due(&h.store, &client, now)
            .await
            .unwrap(),
        0
    );
    // After the backoff it goes through.
    let later = now + Duration::minutes(5);
    assert_eq!(
        ward_server::webhook::send_due(&h.store, &client, later)
            .await
            .unwrap(),
        1
    );
    let info = h.ok("GET", "/api/v1/webhooks", Value::Null).await;
    assert_eq!(info[0]["delivered"], 2, "{info}");
    assert_eq!(info[0]["pending"], 0);

    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    let mut events = Vec::new();
    for (headers, body) in &got {
        let ts: i64 = headers["x-ward-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            headers["x-ward-signature"].to_str().unwrap(),
            ward_server::webhook::signature(&secret, ts, body)
        );
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v["incident"]["id"], critical,
            "the low incident is not sent"
        );
        events.push((
            headers["x-ward-delivery"].to_str().unwrap().to_string(),
            v["event"].as_str().unwrap().to_string(),
        ));
    }
    // The retried delivery keeps its id.
    assert_eq!(
        events.iter().filter(|(id, _)| *id == events[0].0).count(),
        2
    );
    assert!(events.iter().any(|(_, e)| e == "incident.created"));
    let status = got
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|v| v["event"] == "incident.status")
        .unwrap();
    assert_eq!(
        status["change"],
        json!({"status": "acknowledged", "actor": "admin"})
    );

    // A disabled webhook gets nothing more.
    h.ok(
        "POST",
        &format!("/api/v1/webhooks/{hook_id}/disable"),
        Value::Null,
    )
    .await;
    h.ok(
        "POST",
        &format!("/api/v1/incidents/{critical}/resolve"),
        Value::Null,
    )
    .await;
    assert_eq!(
        ward_server::webhook::send_due(&h.store, &client, later + Duration::hours(1))
            .await
            .unwrap(),
        0
    );
}
