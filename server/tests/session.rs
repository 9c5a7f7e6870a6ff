//! Web sessions and the rules page's API, in-process over a real SQLite
//! file: login with a password, one answer for every bad login, the audit
//! trail, the attempt limit, expiry, logout, and rule hit counts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_agent::wire::{Alert, EnrollToken, Severity};
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::serve::Bundles;
use ward_server::store::Store;

const PASSWORD: &str = "correct horse battery staple";
const BRUTE_FORCE_RULE: &str = "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d";

struct H {
    app: Router,
    store: Store,
    admin: String,
    _dir: tempfile::TempDir,
}

async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("ward.db"))
        .await
        .unwrap();
    let admin = "ward_test_admin".to_string();
    store
        .add_api_token("admin", "admin", &hash_secret(&admin))
        .await
        .unwrap();
    let app = router(AppState {
        bundle: Some(Arc::new(Bundles::open(dir.path(), None).unwrap())),
        ..AppState::new(store.clone(), "https://127.0.0.1:9")
    });
    H {
        app,
        store,
        admin,
        _dir: dir,
    }
}

impl H {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        };
        let mut req = req.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(
            "192.0.2.10:40000".parse::<SocketAddr>().unwrap(),
        ));
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn add_user(&self, name: &str, role: &str, agencies: &[&str], password: Option<&str>) {
        let (s, _, v) = self
            .call(
                "POST",
                "/api/v1/users",
                Some(&self.admin),
                json!({"name": name, "role": role, "agencies": agencies, "password": password}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    async fn login(&self, name: &str, password: &str) -> (StatusCode, Value) {
        let (s, _, v) = self
            .call(
                "POST",
                "/api/v1/login",
                None,
                json!({"name": name, "password": password}),
            )
            .await;
        (s, v)
    }

    async fn audit(&self) -> Vec<Value> {
        let (_, _, v) = self
            .call("GET", "/api/v1/audit", Some(&self.admin), Value::Null)
            .await;
        v.as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_login_gives_a_session_that_works_until_logout() {
    let h = harness().await;
    h.add_user("lan", "responder", &["Sở Y tế"], Some(PASSWORD))
        .await;
    h.add_user("nopass", "viewer", &[], None).await;

    // Wrong password, unknown user, no password set: the same 401.
    let (s1, wrong) = h.login("lan", "not the password").await;
    let (s2, unknown) = h.login("nobody", PASSWORD).await;
    let (s3, nopass) = h.login("nopass", PASSWORD).await;
    assert_eq!(
        (s1, s2, s3),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        )
    );
    assert_eq!(wrong, json!({"error": "wrong user name or password"}));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, nopass);

    let (s, session) = h.login("lan", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["name"], "lan");
    assert_eq!(session["role"], "responder");
    assert_eq!(session["agencies"], json!(["Sở Y tế"]));
    let token = session["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ward_"));
    let expires = chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let hours = (expires - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((11.9..=12.0).contains(&hours), "{hours} h");

    let (s, _, me) = h.call("GET", "/api/v1/me", Some(&token), Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["name"], "lan");
    assert_eq!(me["agencies"], json!(["Sở Y tế"]));
    assert!(me.get("token").is_none(), "{me}");
    let (s, _, _) = h
        .call("GET", "/api/v1/incidents", Some(&token), Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);

    // Every attempt is audited with the name tried, once.
    let audit = h.audit().await;
    let logins: Vec<_> = audit
        .iter()
        .filter(|e| e["action"] == "session.login")
        .map(|e| (e["actor"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        logins,
        [
            ("lan", "denied"),
            ("nobody", "denied"),
            ("nopass", "denied"),
            ("lan", "ok")
        ]
    );
    assert!(
        !audit.iter().any(|e| e["action"] == "denied"),
        "failed logins were audited twice: {audit:#?}"
    );

    // An API token is not a session; a session ends at logout.
    let (s, _, v) = h
        .call("POST", "/api/v1/logout", Some(&h.admin), Value::Null)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, _, _) = h
        .call("POST", "/api/v1/logout", Some(&token), Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = h.call("GET", "/api/v1/me", Some(&token), Value::Null).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let h = harness().await;
    h.add_user("lan", "responder", &[], Some(PASSWORD)).await;
    let user = h.store.login_user("lan").await.unwrap().unwrap();
    let token = "ward_expired_session";
    h.store
        .add_session(&user, &hash_secret(token), "2020-01-01T00:00:00.000000Z")
        .await
        .unwrap();
    let (s, _, v) = h.call("GET", "/api/v1/me", Some(token), Value::Null).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "the session has expired: log in again");
}

#[tokio::test]
async fn guessing_is_limited_per_name_and_bad_bodies_are_4xx() {
    let h = harness().await;
    h.add_user("lan", "responder", &[], Some(PASSWORD)).await;
    for _ in 0..10 {
        assert_eq!(
            h.login("lan", "guess guess guess").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (s, headers, v) = h
        .call(
            "POST",
            "/api/v1/login",
            None,
            json!({"name": "lan", "password": PASSWORD}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("too many login attempts")
    );
    assert!(headers.contains_key(header::RETRY_AFTER));

    let h = harness().await;
    let (s, _, _) = h
        .call("POST", "/api/v1/login", None, json!({"name": "lan"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = h
        .call(
            "POST",
            "/api/v1/login",
            None,
            json!({"name": "x".repeat(300), "password": "p"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

fn alert(id: &str, drill: Option<&str>) -> Alert {
    Alert {
        id: id.into(),
        rule_id: BRUTE_FORCE_RULE.into(),
        title: "SSH brute force".into(),
        severity: Severity::High,
        time: Utc::now(),
        host: "web01".into(),
        entities: BTreeMap::from([("src_ip".to_string(), "203.0.113.7".to_string())]),
        evidence: vec!["Failed password for root".into()],
        tags: vec![],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: drill.map(str::to_string),
    }
}

#[tokio::test]
async fn rules_list_the_served_bundle_with_hits_in_real_incidents() {
    let h = harness().await;
    let (_, _, t) = h
        .call(
            "POST",
            "/api/v1/enroll-tokens",
            Some(&h.admin),
            json!({"agency": "A"}),
        )
        .await;
    let t = EnrollToken::decode(t["token"].as_str().unwrap()).unwrap();
    let (_, _, e) = h
        .call(
            "POST",
            "/api/v1/agents/enroll",
            None,
            json!({"secret": t.secret, "hostname": "web01", "version": "0.1.0"}),
        )
        .await;
    let cred = e["agent_token"].as_str().unwrap().to_string();
    let alerts = [alert("a1", None), alert("a2", None)];
    let (s, _, v) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&cred),
            json!({ "alerts": alerts }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let (s, _, v) = h
        .call("GET", "/api/v1/rules", Some(&h.admin), Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()));
    let rules = v["rules"].as_array().unwrap();
    assert!(rules.len() > 20, "{} rules", rules.len());
    let bf = rules
        .iter()
        .find(|r| r["id"] == BRUTE_FORCE_RULE)
        .expect("the brute-force rule");
    assert_eq!(bf["title"], "SSH brute force");
    assert_eq!(bf["kind"], "correlation");
    assert_eq!(bf["hits"], 2);
    assert!(bf["last_hit"].as_str().is_some());
    assert!(bf["file"].as_str().unwrap().ends_with(".yml"), "{bf}");
    let unfired = rules.iter().filter(|r| r["hits"] == 0).count();
    assert_eq!(unfired, rules.len() - 1);

    // A viewer scoped to another agency sees no hits.
    h.add_user("vy", "viewer", &["B"], Some(PASSWORD)).await;
    let (_, session) = h.login("vy", PASSWORD).await;
    let (_, _, v) = h
        .call(
            "GET",
            "/api/v1/rules",
            session["token"].as_str(),
            Value::Null,
        )
        .await;
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["hits"] == 0)
    );
}

#[tokio::test]
async fn the_ui_is_served_with_its_policy() {
    let h = harness().await;
    for (path, ty) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/i18n/vi.json", "application/json"),
    ] {
        let (s, headers, _) = h.call("GET", path, None, Value::Null).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], ty, "{path}");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    }
    let (s, _, v) = h.call("GET", "/ui/missing.js", None, Value::Null).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["error"].as_str().is_some());
}
