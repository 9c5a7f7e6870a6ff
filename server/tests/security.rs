//! The API lets no one in (in-process over a real SQLite file): enrollment
//! tokens (one-time, N-use, expiring, revoked agents), users and scoped
//! roles, the audit log, agents writing only their own data, and limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_agent::wire::{Alert, EnrollToken, Severity};
use ward_server::api::{AppState, Limits, RateLimiter};
use ward_server::auth::hash_secret;

mod common;
use common::Harness as H;

async fn harness_with(limits: Limits) -> H {
    common::harness_with(|state| AppState {
        cert_sha256: Some(Arc::from("ab".repeat(32).as_str())),
        limits: Arc::new(limits),
        public_url: Arc::from("https://127.0.0.1:9"),
        ..state
    })
    .await
}

async fn harness() -> H {
    harness_with(Limits::default()).await
}

const PEER: &str = "192.0.2.10:40000";

impl H {
    async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let mut req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        // What axum-server's connect info gives handlers in production.
        req.extensions_mut()
            .insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let body = (!body.is_null()).then(|| body.to_string().into_bytes());
        let (s, _, v) = self.raw(method, path, token, body).await;
        (s, v)
    }

    async fn enroll_token(&self, body: Value) -> EnrollToken {
        let (s, t) = self
            .call("POST", "/api/v1/enroll-tokens", Some(&self.admin), body)
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        EnrollToken::decode(t["token"].as_str().unwrap()).unwrap()
    }

    async fn enroll(&self, secret: &str, host: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/api/v1/agents/enroll",
            None,
            json!({"secret": secret, "hostname": host, "version": "0.1.0"}),
        )
        .await
    }

    /// Enrolls an agent of `agency`; (agent id, credential).
    async fn agent(&self, agency: &str, host: &str) -> (String, String) {
        let t = self.enroll_token(json!({"agency": agency})).await;
        let (s, e) = self.enroll(&t.secret, host).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        (
            e["agent_id"].as_str().unwrap().to_string(),
            e["agent_token"].as_str().unwrap().to_string(),
        )
    }

    async fn user(&self, name: &str, role: &str, agencies: &[&str]) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/users",
                Some(&self.admin),
                json!({"name": name, "role": role, "agencies": agencies}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    async fn audit(&self) -> Vec<Value> {
        let (s, v) = self
            .call("GET", "/api/v1/audit", Some(&self.admin), Value::Null)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v.as_array().unwrap().clone()
    }
}

fn alert(id: &str, host: &str, ip: &str) -> Alert {
    Alert {
        id: id.into(),
        rule_id: "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d".into(),
        title: "SSH brute force".into(),
        severity: Severity::High,
        time: Utc::now(),
        host: host.into(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        evidence: vec!["Failed password for root".into()],
        tags: vec![],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

fn batch(alerts: &[Alert]) -> Value {
    json!({ "alerts": alerts })
}

#[tokio::test]
async fn enrollment_tokens_carry_the_pin_and_are_used_up_expire_and_stay_secret() {
    let h = harness().await;
    // The token pins the coordinator's certificate.
    let t = h.enroll_token(json!({"agency": "A", "uses": 2})).await;
    assert_eq!(t.cert_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    // N uses, then 401; the same host name enrolling twice gets two ids.
    let (s1, e1) = h.enroll(&t.secret, "web01").await;
    let (s2, e2) = h.enroll(&t.secret, "web01").await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_ne!(e1["agent_id"], e2["agent_id"], "re-enrolling collided");
    let (s3, e3) = h.enroll(&t.secret, "web02").await;
    assert_eq!(s3, StatusCode::UNAUTHORIZED, "{e3}");
    assert!(e3["error"].as_str().unwrap().contains("enrollment token"));
    // Wrong secret: 401.
    let (s, _) = h.enroll("not-a-secret", "web03").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Expired: a token valid for a minute, enrolled with after its expiry.
    let t = h.enroll_token(json!({"ttl_seconds": 60})).await;
    let conn = h.db.raw().await;
    sqlx::query("UPDATE enroll_tokens SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE secret_hash = $1")
        .bind(hash_secret(&t.secret))
        .execute(&conn)
        .await
        .unwrap();
    let (s, _) = h.enroll(&t.secret, "web04").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "an expired token enrolled");
    // Expiry bounds are checked.
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/enroll-tokens",
            Some(&h.admin),
            json!({"ttl_seconds": 5}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Only hashes are stored.
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM enroll_tokens")
        .fetch_all(&conn)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 64 && *h != t.secret));
    let agent_hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM agents")
        .fetch_all(&conn)
        .await
        .unwrap();
    let cred = e1["agent_token"].as_str().unwrap();
    assert!(agent_hashes.iter().all(|x| x != cred));
    assert!(agent_hashes.contains(&hash_secret(cred)));
}

#[tokio::test]
async fn a_revoked_agent_gets_401_on_its_next_call() {
    let h = harness().await;
    let (id, cred) = h.agent("A", "web01").await;
    let hb = json!({"version": "0.1.0", "rules_version": "r1", "uptime_s": 1, "events_total": 0, "alerts_total": 0, "malformed_total": 0});
    let (s, v) = h
        .call("POST", "/api/v1/agent/heartbeat", Some(&cred), hb.clone())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h
        .call(
            "POST",
            &format!("/api/v1/agents/{id}/revoke"),
            Some(&h.admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = h
        .call("POST", "/api/v1/agent/heartbeat", Some(&cred), hb)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&cred),
            batch(&[alert("x1", "web01", "203.0.113.7")]),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Revoking twice or an unknown agent: 404.
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/agents/{id}/revoke"),
            Some(&h.admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, agents) = h
        .call("GET", "/api/v1/agents", Some(&h.admin), Value::Null)
        .await;
    assert!(agents[0]["revoked_at"].is_string(), "{agents}");
    let audit = h.audit().await;
    assert!(audit.iter().any(|e| e["action"] == "agent.revoke"
        && e["target"] == format!("agent:{id}")
        && e["actor"] == "admin"
        && e["peer"] == PEER));
    assert!(audit.iter().any(|e| e["action"] == "denied"
        && e["actor"] == format!("agent:{id}")
        && e["status"] == 401));
}

#[tokio::test]
async fn an_agent_writes_only_its_own_alerts() {
    let h = harness().await;
    let (a_id, a_cred) = h.agent("A", "web-a").await;
    let (b_id, _) = h.agent("B", "web-b").await;
    // A's batch claims to be B (an agent_id in the body, B's host name):
    // the store records A, and the incident is A's agency.
    let mut body = batch(&[alert("forged-1", "web-b", "203.0.113.9")]);
    body["agent_id"] = json!(b_id);
    body["alerts"][0]["agent_id"] = json!(b_id);
    body["alerts"][0]["agency"] = json!("B");
    let (s, v) = h
        .call("POST", "/api/v1/agent/alerts", Some(&a_cred), body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, list) = h
        .call("GET", "/api/v1/incidents", Some(&h.admin), Value::Null)
        .await;
    let inc = &list[0];
    assert_eq!(inc["agency"], "A", "an agent wrote into another agency");
    let (_, detail) = h
        .call(
            "GET",
            &format!("/api/v1/incidents/{}", inc["id"]),
            Some(&h.admin),
            Value::Null,
        )
        .await;
    assert_eq!(detail["alerts"][0]["agent_id"], a_id.as_str());
    // An API token is not an agent credential, nor the other way round.
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&h.admin),
            batch(&[alert("x", "h", "203.0.113.1")]),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h
        .call("GET", "/api/v1/incidents", Some(&a_cred), Value::Null)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn roles_scopes_and_the_audit_log() {
    let h = harness().await;
    let (_, a_cred) = h.agent("Agency A", "web-a").await;
    let (_, b_cred) = h.agent("Agency B", "web-b").await;
    for (cred, id, host) in [(&a_cred, "a-1", "web-a"), (&b_cred, "b-1", "web-b")] {
        let (s, v) = h
            .call(
                "POST",
                "/api/v1/agent/alerts",
                Some(cred),
                batch(&[alert(id, host, "203.0.113.7")]),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let viewer = h.user("vy@example.gov.vn", "viewer", &[]).await;
    let resp_a = h
        .user("an@example.gov.vn", "responder", &["Agency A"])
        .await;
    // Only admins add users; names are unique; roles are checked.
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/users",
            Some(&viewer),
            json!({"name": "x", "role": "admin"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            json!({"name": "vy@example.gov.vn", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            json!({"name": "z", "role": "root"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, all) = h
        .call("GET", "/api/v1/incidents", Some(&viewer), Value::Null)
        .await;
    assert_eq!(
        all.as_array().unwrap().len(),
        2,
        "an unscoped viewer sees all"
    );
    let a_inc = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["agency"] == "Agency A")
        .unwrap()["id"]
        .clone();
    let b_inc = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["agency"] == "Agency B")
        .unwrap()["id"]
        .clone();

    // A viewer resolving: 403, and an audit entry naming them.
    let (s, v) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{a_inc}/resolve"),
            Some(&viewer),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let audit = h.audit().await;
    let denied = audit
        .iter()
        .find(|e| {
            e["action"] == "denied"
                && e["actor"] == "vy@example.gov.vn"
                && e["target"].as_str().unwrap().ends_with("/resolve")
        })
        .expect("the denied resolve is audited");
    assert_eq!(denied["status"], 403);
    assert_eq!(
        denied["target"],
        format!("POST /api/v1/incidents/{a_inc}/resolve")
    );
    assert_eq!(denied["peer"], PEER);
    assert!(denied["detail"].as_str().unwrap().contains("viewer"));

    // The scoped responder sees and acts only on Agency A.
    let (_, mine) = h
        .call("GET", "/api/v1/incidents", Some(&resp_a), Value::Null)
        .await;
    let mine = mine.as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["agency"], "Agency A");
    let (s, _) = h
        .call(
            "GET",
            &format!("/api/v1/incidents/{b_inc}"),
            Some(&resp_a),
            Value::Null,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another agency's incident is visible"
    );
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{b_inc}/resolve"),
            Some(&resp_a),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, agents) = h
        .call("GET", "/api/v1/agents", Some(&resp_a), Value::Null)
        .await;
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["agency"] == "Agency A")
    );
    assert_eq!(agents.as_array().unwrap().len(), 1);
    let (s, v) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{a_inc}/ack"),
            Some(&resp_a),
            json!({"text": "on it"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["timeline"].as_array().unwrap().last().unwrap()["actor"],
        "an@example.gov.vn"
    );

    // The triage action is in the audit log: who, what, target, when, where.
    let audit = h.audit().await;
    let ack = audit
        .iter()
        .find(|e| e["action"] == "incident.ack")
        .expect("the ack is audited");
    assert_eq!(ack["actor"], "an@example.gov.vn");
    assert_eq!(ack["target"], format!("incident:{a_inc}"));
    assert_eq!(ack["detail"], "on it");
    assert_eq!(ack["peer"], PEER);
    assert!(ack["at"].as_str().unwrap().ends_with('Z'));
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "user.add" && e["target"] == "user:an@example.gov.vn")
    );
    // Only admins read it.
    let (s, _) = h
        .call("GET", "/api/v1/audit", Some(&viewer), Value::Null)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Revoking a token: the next call is 401. The last admin token stays.
    let (_, tokens) = h
        .call("GET", "/api/v1/tokens", Some(&h.admin), Value::Null)
        .await;
    let viewer_token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "vy@example.gov.vn")
        .unwrap()["id"]
        .clone();
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/tokens/{viewer_token}/revoke"),
            Some(&h.admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h
        .call("GET", "/api/v1/incidents", Some(&viewer), Value::Null)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let admin_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "admin")
        .unwrap()["id"]
        .clone();
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/tokens/{admin_id}/revoke"),
            Some(&h.admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "the last admin token was revoked");
}

#[tokio::test]
async fn passwords_are_stored_as_argon2_hashes() {
    let h = harness().await;
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            json!({"name": "p", "role": "viewer", "password": "short"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = h
        .call(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            json!({"name": "p", "role": "viewer", "password": "a long enough passphrase"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let stored = h.store.password_hash("p").await.unwrap().unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(ward_server::auth::verify_password(
        "a long enough passphrase",
        &stored
    ));
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let h = harness().await;
    h.user("u", "viewer", &[]).await;
    assert!(!h.audit().await.is_empty());
    let conn = h.db.raw().await;
    let upd = sqlx::query("UPDATE audit SET actor = 'someone else'")
        .execute(&conn)
        .await;
    let del = sqlx::query("DELETE FROM audit").execute(&conn).await;
    assert!(upd.unwrap_err().to_string().contains("append-only"));
    assert!(del.unwrap_err().to_string().contains("append-only"));
    // No UPDATE or DELETE on it anywhere in the code.
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for entry in walk(std::path::Path::new(src)) {
        let text = std::fs::read_to_string(&entry).unwrap().to_uppercase();
        for bad in ["UPDATE AUDIT", "DELETE FROM AUDIT", "REPLACE INTO AUDIT"] {
            assert!(!text.contains(bad), "{} has {bad}", entry.display());
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn oversized_batches_are_413_malformed_bodies_400_or_422() {
    let h = harness_with(Limits {
        max_batch_alerts: 10,
        agent_rate: RateLimiter::new(1000.0, 1000.0),
    })
    .await;
    let (_, cred) = h.agent("A", "web01").await;
    let alerts: Vec<Alert> = (0..11)
        .map(|i| alert(&format!("a{i}"), "web01", "203.0.113.7"))
        .collect();
    let (s, v) = h
        .call("POST", "/api/v1/agent/alerts", Some(&cred), batch(&alerts))
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("at most 10 alerts"));
    // Text the database cannot hold (a NUL in the title or the source) is
    // refused with 422 and the batch's other alerts are not stored either.
    for (field, value) in [
        ("title", "SSH\u{0}brute force"),
        ("source", "file:/var/log/\u{0}"),
    ] {
        let mut bad = alert("nul", "web01", "203.0.113.7");
        match field {
            "title" => bad.title = value.into(),
            _ => bad.source = value.into(),
        }
        let good = alert("fine", "web01", "203.0.113.7");
        let (s, v) = h
            .call(
                "POST",
                "/api/v1/agent/alerts",
                Some(&cred),
                batch(&[good, bad]),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{v}");
    }
    // A body over the 16 MiB limit: 413 with JSON.
    let big = format!(
        "{{\"alerts\": [], \"pad\": \"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    let (s, _, v) = h
        .raw(
            "POST",
            "/api/v1/agent/alerts",
            Some(&cred),
            Some(big.into_bytes()),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].is_string());
    // Not JSON: 400; JSON of the wrong shape: 422.
    let (s, _, v) = h
        .raw(
            "POST",
            "/api/v1/agent/alerts",
            Some(&cred),
            Some(b"{\"alerts\": [".to_vec()),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _, v) = h
        .raw(
            "POST",
            "/api/v1/agent/alerts",
            Some(&cred),
            Some(b"{\"alerts\": 7}".to_vec()),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _, v) = h
        .raw(
            "POST",
            "/api/v1/users",
            Some(&h.admin),
            Some(b"{\"name\": \"x\", \"role\": \"viewer\", \"is_admin\": true}".to_vec()),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _, _) = h
        .raw(
            "POST",
            "/api/v1/incidents/1/note",
            Some(&h.admin),
            Some(b"\xff\xfe".to_vec()),
        )
        .await;
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::NOT_FOUND,
        "{s}"
    );
}

#[tokio::test]
async fn an_agent_over_its_rate_gets_429_with_retry_after() {
    let h = harness_with(Limits {
        max_batch_alerts: 5000,
        agent_rate: RateLimiter::new(0.5, 3.0),
    })
    .await;
    let (_, a) = h.agent("A", "web01").await;
    let (_, b) = h.agent("A", "web02").await;
    let hb = json!({"version": "0.1.0", "rules_version": "r1", "uptime_s": 1, "events_total": 0, "alerts_total": 0, "malformed_total": 0});
    for _ in 0..3 {
        let (s, v) = h
            .call("POST", "/api/v1/agent/heartbeat", Some(&a), hb.clone())
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, headers, v) = h
        .raw(
            "POST",
            "/api/v1/agent/alerts",
            Some(&a),
            Some(
                batch(&[alert("r1", "web01", "203.0.113.7")])
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["error"].as_str().unwrap().contains("retry after"));
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Another agent has its own bucket.
    let (s, _) = h
        .call("POST", "/api/v1/agent/heartbeat", Some(&b), hb)
        .await;
    assert_eq!(s, StatusCode::OK);
}
