//! Web sessions: `POST /login` with a user's password gives a short-lived
//! API token; `POST /logout` ends it; `GET /me` says who holds a token.

use std::sync::OnceLock;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;

use super::{ApiError, ApiJson, AppState, Audited, Peer, User};
use crate::auth::{API_TOKEN_PREFIX, hash_password, hash_secret, random_secret, verify_password};
use crate::model::{LoginRequest, SessionInfo};
use crate::store::{AuditRecord, ts};

/// How long a session lasts: one shift.
pub const SESSION_HOURS: i64 = 12;

/// The one answer to a wrong password and an unknown user alike.
const BAD_LOGIN: &str = "wrong user name or password";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
}

/// A hash to verify against when the user does not exist, so an unknown
/// name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("ward-no-such-user-password").unwrap_or_default())
}

/// The client's address without its port (the rate limiter's key).
fn peer_ip(peer: &Peer) -> String {
    peer.0
        .parse::<std::net::SocketAddr>()
        .map_or_else(|_| peer.0.clone(), |a| a.ip().to_string())
}

async fn login(
    State(state): State<AppState>,
    peer: Peer,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if req.name.is_empty() || req.name.len() > 200 || req.password.len() > 1024 {
        return Err(ApiError::Unauthorized(BAD_LOGIN));
    }
    for key in [
        format!("ip:{}", peer_ip(&peer)),
        format!("user:{}", req.name),
    ] {
        if let Err(wait) = state.logins.check(&key) {
            return Err(ApiError::TooManyLogins(wait.as_secs().max(1)));
        }
    }
    let user = state.store.login_user(&req.name).await?;
    let phc = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash().to_string());
    let password = req.password;
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let user = match user {
        Some(u) if matches && u.password_hash.is_some() => u,
        _ => {
            let rec = AuditRecord {
                actor: &req.name,
                action: "session.login",
                target: &format!("user:{}", req.name),
                outcome: "denied",
                status: 401,
                peer: &peer.0,
                detail: BAD_LOGIN,
            };
            if let Err(e) = state.store.audit(&rec).await {
                tracing::error!(error = %e, "cannot append a failed login to the audit log");
            }
            // Audited here with the name tried; the denials middleware skips it.
            let mut resp = ApiError::Unauthorized(BAD_LOGIN).into_response();
            resp.extensions_mut().insert(Audited);
            return Ok(resp);
        }
    };
    let token = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let expires_at = ts(Utc::now() + chrono::Duration::hours(SESSION_HOURS));
    let token_id = state
        .store
        .add_session(&user, &hash_secret(&token), &expires_at)
        .await?;
    state
        .audit_ok(
            &user.name,
            "session.login",
            &format!("user:{}", user.name),
            &peer,
            &format!("token {token_id}, until {expires_at}"),
        )
        .await;
    let principal = state
        .store
        .principal(&hash_secret(&token))
        .await?
        .ok_or_else(|| ApiError::Internal("a new session token is not found".into()))?;
    Ok(Json(SessionInfo {
        name: principal.name,
        role: principal.role,
        agencies: principal.agencies,
        expires_at: Some(expires_at),
        token: Some(token),
    })
    .into_response())
}

async fn logout(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
) -> Result<Json<serde_json::Value>, ApiError> {
    if state.store.token_expiry(user.0.token_id).await?.is_none() {
        return Err(ApiError::Unprocessable(
            "this is an API token, not a session: revoke it with `ward tokens revoke`".into(),
        ));
    }
    state.store.revoke_api_token(user.0.token_id).await?;
    state
        .audit_ok(
            &user.0.name,
            "session.logout",
            &format!("user:{}", user.0.name),
            &peer,
            &format!("token {}", user.0.token_id),
        )
        .await;
    Ok(Json(serde_json::json!({"logged_out": true})))
}

async fn me(State(state): State<AppState>, user: User) -> Result<Json<SessionInfo>, ApiError> {
    let expires_at = state.store.token_expiry(user.0.token_id).await?;
    Ok(Json(SessionInfo {
        name: user.0.name,
        role: user.0.role,
        agencies: user.0.agencies,
        expires_at,
        token: None,
    }))
}
