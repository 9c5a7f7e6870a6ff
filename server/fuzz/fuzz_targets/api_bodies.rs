//! Any bytes as the body of the API's JSON endpoints (an agent's
//! `AlertBatch`, heartbeats, the triage actions, users, enrollment), sent
//! through the real router over a real SQLite file: the answer is never a
//! 500, and every error is a JSON `{"error": ...}`.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use ward_server::api::{AppState, Limits, router};
use ward_server::auth::hash_secret;
use ward_server::store::Store;

struct World {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    admin: String,
    agent: String,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let admin = "ward_fuzz_admin".to_string();
        let (app, agent) = rt.block_on(async {
            let store = Store::open_sqlite(&dir.path().join("ward.db")).await.unwrap();
            store
                .add_api_token("admin", "admin", &hash_secret(&admin))
                .await
                .unwrap();
            let app = router(AppState {
                limits: Arc::new(Limits {
                    max_batch_alerts: 5000,
                    agent_rate: ward_server::api::RateLimiter::new(1e9, 1e9),
                }),
                ..AppState::new(store, "https://127.0.0.1:9")
            });
            let (_, tok) = send(&app, "/api/v1/enroll-tokens", Some(&admin), br#"{"uses": 1}"#).await;
            let tok: serde_json::Value = serde_json::from_slice(&tok).unwrap();
            let tok = ward_agent::wire::EnrollToken::decode(tok["token"].as_str().unwrap()).unwrap();
            let body = serde_json::json!({"secret": tok.secret, "hostname": "fuzz", "version": "0"});
            let (_, e) = send(&app, "/api/v1/agents/enroll", None, body.to_string().as_bytes()).await;
            let e: serde_json::Value = serde_json::from_slice(&e).unwrap();
            (app, e["agent_token"].as_str().unwrap().to_string())
        });
        World { rt, app, admin, agent, _dir: dir }
    })
}

async fn send(app: &axum::Router, path: &str, token: Option<&str>, body: &[u8]) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, bytes.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let w = world();
    let (path, token) = match which % 8 {
        0 | 1 => ("/api/v1/agent/alerts", w.agent.as_str()),
        2 => ("/api/v1/agent/heartbeat", w.agent.as_str()),
        3 => ("/api/v1/incidents/1/note", w.admin.as_str()),
        4 => ("/api/v1/incidents/1/assign", w.admin.as_str()),
        5 => ("/api/v1/incidents/1/resolve", w.admin.as_str()),
        6 => ("/api/v1/users", w.admin.as_str()),
        _ => ("/api/v1/enroll-tokens", w.admin.as_str()),
    };
    let (status, answer) = w.rt.block_on(send(&w.app, path, Some(token), body));
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {}", String::from_utf8_lossy(&answer));
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON error body");
        assert!(v["error"].is_string());
    }
});
