//! Federation of coordinators. On a national coordinator: provinces
//! (`POST/GET /provinces`, `POST /provinces/{name}/revoke`; unscoped
//! admins) and the ingest of forwarded incidents
//! (`POST /federation/incidents`, province credentials only). On a
//! provincial one: the link's status (`GET /federation/status`, admins).

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{ApiError, ApiJson, ApiPath, AppState, Peer, User, bearer};
use crate::auth::{hash_secret, random_secret};
use crate::model::{
    FederationStatus, ForwardAck, ForwardBatch, NewProvince, NewProvinceResponse, ProvinceInfo,
};
use crate::store::StoreError;

/// Prefix of province credentials.
pub const PROVINCE_TOKEN_PREFIX: &str = "wardprov_";

/// Largest forwarded batch body, in bytes.
pub const MAX_FORWARD_BYTES: usize = 4 * 1024 * 1024;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/federation/incidents",
            post(ingest).layer(DefaultBodyLimit::max(MAX_FORWARD_BYTES)),
        )
        .route("/federation/status", get(status))
        .route("/provinces", get(list).post(add))
        .route("/provinces/{name}/revoke", post(revoke))
}

/// A province's credential: it may forward incidents and nothing else.
pub struct Province(pub String);

impl FromRequestParts<AppState> for Province {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        state
            .store
            .province_by_token(&hash_secret(token))
            .await?
            .map(Province)
            .ok_or(ApiError::Unauthorized(
                "unknown or revoked province credential",
            ))
    }
}

async fn ingest(
    State(state): State<AppState>,
    Province(province): Province,
    ApiJson(batch): ApiJson<ForwardBatch>,
) -> Result<Json<ForwardAck>, ApiError> {
    let ack = state
        .store
        .apply_snapshots(&province, &batch.incidents)
        .await?;
    metrics::counter!("ward_federation_applied_total").increment(ack.applied);
    metrics::counter!("ward_federation_ignored_total").increment(ack.ignored);
    Ok(Json(ack))
}

async fn status(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<FederationStatus>, ApiError> {
    user.require(&["admin"])?;
    Ok(Json(state.store.federation_status().await?))
}

/// Provinces see every agency of theirs: only an unscoped admin manages them.
fn require_unscoped_admin(user: &User) -> Result<(), ApiError> {
    user.require(&["admin"])?;
    if !user.0.agencies.is_empty() {
        return Err(ApiError::Forbidden(
            "provinces forward every agency's incidents; only an unscoped admin manages them"
                .into(),
        ));
    }
    Ok(())
}

async fn add(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiJson(req): ApiJson<NewProvince>,
) -> Result<Json<NewProvinceResponse>, ApiError> {
    require_unscoped_admin(&user)?;
    let token = format!("{PROVINCE_TOKEN_PREFIX}{}", random_secret());
    let province = state
        .store
        .add_province(&req.name, &hash_secret(&token), &user.0.name)
        .await?;
    state
        .audit_ok(
            &user.0.name,
            "province.add",
            &format!("province:{}", province.name),
            &peer,
            "",
        )
        .await;
    Ok(Json(NewProvinceResponse { province, token }))
}

async fn list(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<Vec<ProvinceInfo>>, ApiError> {
    require_unscoped_admin(&user)?;
    Ok(Json(state.store.provinces().await?))
}

async fn revoke(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Vec<ProvinceInfo>>, ApiError> {
    require_unscoped_admin(&user)?;
    state
        .store
        .revoke_province(&name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no active province '{name}'")),
            other => other.into(),
        })?;
    state
        .audit_ok(
            &user.0.name,
            "province.revoke",
            &format!("province:{name}"),
            &peer,
            "",
        )
        .await;
    Ok(Json(state.store.provinces().await?))
}
