//! The HTTP API under `/api/v1/`, `/healthz` and `/metrics`. The only module
//! that knows HTTP.

mod agents;
mod drills;
mod error;
mod incidents;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiJson, ApiPath, ApiQuery};

use crate::auth::hash_secret;
use crate::store::{AgentPrincipal, Principal, Store};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The base URL agents use to reach this coordinator.
    pub public_url: Arc<str>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest(
            "/api/v1",
            agents::routes()
                .merge(incidents::routes())
                .merge(drills::routes()),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.store.counts().await?;
    Ok(axum::Json(serde_json::json!({"status": "ok"})))
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (open, agents, alerts) = state.store.counts().await?;
    metrics::gauge!("ward_incidents_open").set(open as f64);
    metrics::gauge!("ward_agents").set(agents as f64);
    metrics::gauge!("ward_alerts_stored").set(alerts as f64);
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    ))
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer token",
        ))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 512)
        .ok_or(ApiError::Unauthorized("malformed Authorization header"))
}

/// A responder's, viewer's or admin's API token.
pub struct User(pub Principal);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        state
            .store
            .principal(&hash_secret(token))
            .await?
            .map(User)
            .ok_or(ApiError::Unauthorized("unknown API token"))
    }
}

impl User {
    /// Fails with 403 unless the user has one of `roles`.
    pub fn require(&self, roles: &[&str]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role.as_str()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role '{}' may not do this (needs {})",
                self.0.role,
                roles.join(" or ")
            )))
        }
    }
}

/// An enrolled agent's credential.
pub struct Agent(pub AgentPrincipal);

impl FromRequestParts<AppState> for Agent {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        state
            .store
            .agent_by_token(&hash_secret(token))
            .await?
            .map(Agent)
            .ok_or(ApiError::Unauthorized("unknown agent credential"))
    }
}
