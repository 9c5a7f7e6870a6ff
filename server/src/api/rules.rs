//! The served rule bundle: `GET /rules` (what agents are handed) and
//! `POST /rules/reload` (admins: read the rules directory again and
//! re-sign; audited, failures included).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiError, AppState, Peer, User};
use crate::bundles::Bundles;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/rules", get(status))
        .route("/rules/reload", post(reload))
}

/// What `GET /api/v1/rules` and a successful reload answer.
#[derive(Debug, Serialize)]
struct RulesStatus {
    /// Version of the served bundle.
    version: String,
    /// Sigma rule files in it.
    rules: usize,
    /// When it was signed.
    signed_at: String,
    /// The rules directory (absent: the shipped pack).
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    /// Why the last reload failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// For a reload: the version served before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

fn describe(b: &Bundles, previous: Option<String>) -> RulesStatus {
    let cur = b.current();
    RulesStatus {
        version: cur.version.clone(),
        rules: cur.rules,
        signed_at: cur.signed_at.clone(),
        dir: b.rules_dir().map(|d| d.display().to_string()),
        last_error: b.last_error(),
        previous,
    }
}

fn served(state: &AppState) -> Result<std::sync::Arc<Bundles>, ApiError> {
    state
        .bundle
        .clone()
        .ok_or_else(|| ApiError::NotFound("this coordinator serves no rule bundle".into()))
}

async fn status(State(state): State<AppState>, user: User) -> Result<Json<RulesStatus>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    Ok(Json(describe(&*served(&state)?, None)))
}

async fn reload(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
) -> Result<Json<RulesStatus>, ApiError> {
    user.require(&["admin"])?;
    let bundles = served(&state)?;
    let b = bundles.clone();
    let outcome = tokio::task::spawn_blocking(move || b.reload())
        .await
        .unwrap_or_else(|e| Err(format!("reloading the rules failed: {e}")));
    crate::bundles::audit_reload(&state.store, &user.0.name, &peer.0, &outcome).await;
    match outcome {
        Ok(r) => Ok(Json(describe(&bundles, Some(r.previous)))),
        Err(e) => Err(ApiError::Unprocessable(format!(
            "the rules do not load; still serving the previous bundle: {e}"
        ))),
    }
}
