//! The rule bundle endpoints in-process over a real SQLite file: agents get
//! 304 for the version they have, only admins reload, every reload is audited.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::bundles::Bundles;
use ward_server::store::Store;

const ADMIN: &str = "ward_test_admin";

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    let body = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, bytes.to_vec())
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn agents_get_304_for_what_they_have_and_only_admins_reload_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("ward.db"))
        .await
        .unwrap();
    store
        .add_api_token("admin", "admin", &hash_secret(ADMIN))
        .await
        .unwrap();
    let bundles = Arc::new(Bundles::open(dir.path(), None).unwrap());
    let version = bundles.current().version.clone();
    let app = router(AppState {
        bundle: Some(bundles.clone()),
        ..AppState::new(store, "http://127.0.0.1:9")
    });
    let (_, tok) = call(
        &app,
        "POST",
        "/api/v1/enroll-tokens",
        ADMIN,
        Some(json!({"uses": 1})),
    )
    .await;
    let tok =
        ward_agent::wire::EnrollToken::decode(json_of(&tok)["token"].as_str().unwrap()).unwrap();
    let (s, e) = call(
        &app,
        "POST",
        "/api/v1/agents/enroll",
        "",
        Some(json!({"secret": tok.secret, "hostname": "h1", "version": "t"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let e = json_of(&e);
    assert_eq!(e["bundle_key"], bundles.public_key());
    let agent = e["agent_token"].as_str().unwrap();

    let (s, b) = call(&app, "GET", "/api/v1/agent/bundle", agent, None).await;
    assert_eq!(s, StatusCode::OK);
    let signed: ward_agent::bundle::SignedBundle = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        signed.verify(bundles.public_key()).unwrap().version,
        version
    );
    let (s, b) = call(
        &app,
        "GET",
        &format!("/api/v1/agent/bundle?have={version}"),
        agent,
        None,
    )
    .await;
    assert_eq!((s, b.len()), (StatusCode::NOT_MODIFIED, 0));
    let (s, _) = call(&app, "GET", "/api/v1/agent/bundle?have=older", agent, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(&app, "GET", "/api/v1/agent/bundle", "ward_nobody", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (_, v) = call(
        &app,
        "POST",
        "/api/v1/users",
        ADMIN,
        Some(json!({"name": "vic", "role": "viewer"})),
    )
    .await;
    let viewer = json_of(&v)["token"].as_str().unwrap().to_string();
    let (s, shown) = call(&app, "GET", "/api/v1/rules", &viewer, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(json_of(&shown)["version"], version.as_str());
    let (s, _) = call(&app, "POST", "/api/v1/rules/reload", &viewer, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, r) = call(&app, "POST", "/api/v1/rules/reload", ADMIN, None).await;
    assert_eq!(s, StatusCode::OK);
    let r = json_of(&r);
    assert_eq!(
        (r["version"].clone(), r["previous"].clone()),
        (json!(version), json!(version))
    );

    let (_, audit) = call(&app, "GET", "/api/v1/audit", ADMIN, None).await;
    let audit = json_of(&audit);
    let reloads: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "rules.reload")
        .collect();
    assert_eq!(reloads.len(), 1, "{audit:#}");
    assert_eq!(reloads[0]["actor"], "admin");
    assert_eq!(reloads[0]["outcome"], "ok");
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "denied" && a["actor"] == "vic"),
        "{audit:#}"
    );
}
