//! Users, API tokens and the audit log (admins only).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Peer, User};
use crate::auth::{API_TOKEN_PREFIX, MIN_PASSWORD_LEN, hash_password, hash_secret, random_secret};
use crate::model::{AuditEntry, NewTokenResponse, NewUserRequest, TokenInfo, UserInfo};
use crate::store::{ROLES, StoreError};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(add_user))
        .route("/users/{name}/tokens", post(add_token))
        .route("/tokens", get(list_tokens))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/audit", get(audit))
}

const MAX_NAME: usize = 200;

fn check_name(what: &str, s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.trim() != s || s.len() > MAX_NAME || s.chars().any(char::is_control)
    {
        return Err(ApiError::Unprocessable(format!(
            "{what} must be 1 to {MAX_NAME} printable characters without outer spaces"
        )));
    }
    Ok(())
}

async fn add_user(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<Json<NewTokenResponse>, ApiError> {
    user.require(&["admin"])?;
    check_name("user name", &req.name)?;
    if req.name.starts_with("agent:") || req.name == "unknown" {
        return Err(ApiError::Unprocessable(format!(
            "'{}' is reserved",
            req.name
        )));
    }
    if !ROLES.contains(&req.role.as_str()) {
        return Err(ApiError::Unprocessable(format!(
            "unknown role '{}' (admin, responder or viewer)",
            req.role
        )));
    }
    if req.agencies.len() > 1000 {
        return Err(ApiError::Unprocessable("at most 1000 agencies".into()));
    }
    for a in &req.agencies {
        check_name("agency", a)?;
    }
    // A scoped admin hands out only what it has.
    if !user.0.agencies.is_empty()
        && (req.agencies.is_empty() || req.agencies.iter().any(|a| !user.0.sees(a)))
    {
        return Err(ApiError::Forbidden(format!(
            "'{}' is limited to agencies {:?} and may only add users limited to them",
            user.0.name, user.0.agencies
        )));
    }
    let password_hash = match req.password {
        None => None,
        Some(p) if p.len() < MIN_PASSWORD_LEN || p.len() > 1024 => {
            return Err(ApiError::Unprocessable(format!(
                "a password has {MIN_PASSWORD_LEN} to 1024 bytes"
            )));
        }
        Some(p) => Some(
            tokio::task::spawn_blocking(move || hash_password(&p))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(ApiError::Internal)?,
        ),
    };
    let token = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let (_, token_id) = state
        .store
        .add_user(
            &req.name,
            &req.role,
            &req.agencies,
            password_hash.as_deref(),
            &user.0.name,
            &hash_secret(&token),
        )
        .await?;
    state
        .audit_ok(
            &user.0.name,
            "user.add",
            &format!("user:{}", req.name),
            &peer,
            &format!("role {}, agencies {:?}", req.role, req.agencies),
        )
        .await;
    let mut agencies = req.agencies;
    agencies.sort();
    agencies.dedup();
    Ok(Json(NewTokenResponse {
        user: req.name,
        role: req.role,
        agencies,
        token_id,
        token,
    }))
}

async fn add_token(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<NewTokenResponse>, ApiError> {
    user.require(&["admin"])?;
    if !user.0.agencies.is_empty() {
        return Err(ApiError::Forbidden(
            "only an admin of all agencies issues tokens for existing users".into(),
        ));
    }
    let token = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let (token_id, role, agencies) = state
        .store
        .add_user_token(&name, &hash_secret(&token))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no user '{name}'")),
            other => other.into(),
        })?;
    state
        .audit_ok(
            &user.0.name,
            "token.create",
            &format!("user:{name}"),
            &peer,
            &format!("token {token_id}"),
        )
        .await;
    Ok(Json(NewTokenResponse {
        user: name,
        role,
        agencies,
        token_id,
        token,
    }))
}

async fn list_users(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    user.require(&["admin"])?;
    Ok(Json(state.store.users().await?))
}

async fn list_tokens(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    user.require(&["admin"])?;
    Ok(Json(state.store.api_tokens().await?))
}

async fn revoke_token(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    user.require(&["admin"])?;
    if !user.0.agencies.is_empty() && id != user.0.token_id {
        return Err(ApiError::Forbidden(
            "a scoped admin may revoke only its own token".into(),
        ));
    }
    if state.store.other_admin_tokens(id).await? == 0 {
        return Err(ApiError::Conflict(
            "refusing to revoke the last admin token (add another admin first)".into(),
        ));
    }
    state
        .store
        .revoke_api_token(id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no live token {id}")),
            other => other.into(),
        })?;
    state
        .audit_ok(
            &user.0.name,
            "token.revoke",
            &format!("token:{id}"),
            &peer,
            "",
        )
        .await;
    Ok(Json(serde_json::json!({"revoked": id})))
}

#[derive(Deserialize)]
struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    user: User,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    user.require(&["admin"])?;
    if !user.0.agencies.is_empty() {
        return Err(ApiError::Forbidden(
            "the audit log is for admins of all agencies".into(),
        ));
    }
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    Ok(Json(
        state
            .store
            .audit_entries(q.after.unwrap_or(0), limit)
            .await?,
    ))
}
