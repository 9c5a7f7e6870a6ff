//! The HTTP API under `/api/v1/`, `/healthz` and `/metrics`. The only module
//! that knows HTTP.

mod admin;
mod agents;
mod drills;
mod error;
pub mod federation;
mod incidents;
mod limits;
mod reports;
mod rules;
mod session;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorText, MaybeGzipJson};
pub use limits::{Limits, RateLimiter};
pub use rules::catalogue;

use crate::auth::hash_secret;
use crate::store::{AgentPrincipal, AuditRecord, Principal, Store};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Login attempts allowed per second, per client address and per user name,
/// after a burst of [`LOGIN_BURST`]: ten guesses a minute at most.
pub const LOGIN_RATE: f64 = 1.0 / 6.0;
/// Login attempts allowed at once.
pub const LOGIN_BURST: f64 = 10.0;

/// Marks a response whose handler wrote its own audit entry (the denials
/// middleware then writes none).
#[derive(Debug, Clone, Copy)]
pub struct Audited;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The base URL agents use to reach this coordinator.
    pub public_url: Arc<str>,
    /// SHA-256 of the served TLS certificate, put in enrollment tokens
    /// (`None` when serving plain HTTP).
    pub cert_sha256: Option<Arc<str>>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Batch sizes and per-agent rate limits.
    pub limits: Arc<Limits>,
    /// The signed rule bundle agents fetch (`None`: agents keep their own).
    pub bundle: Option<Arc<crate::bundles::Bundles>>,
    /// Login attempts per client address and per user name.
    pub logins: Arc<RateLimiter>,
}

impl AppState {
    /// State for `store` reached at `public_url`: plain HTTP (no pin), no
    /// rule bundle, no metrics, default limits. The coordinator and tests
    /// set what they serve on top of it.
    pub fn new(store: Store, public_url: &str) -> Self {
        AppState {
            store,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            cert_sha256: None,
            metrics: None,
            limits: Arc::default(),
            bundle: None,
            logins: Arc::new(RateLimiter::new(LOGIN_RATE, LOGIN_BURST)),
        }
    }

    /// Appends an audit entry for a successful action. A failure to write
    /// it is logged (the action itself has happened).
    pub async fn audit_ok(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        peer: &Peer,
        detail: &str,
    ) {
        let rec = AuditRecord {
            actor,
            action,
            target,
            outcome: "ok",
            status: 200,
            peer: &peer.0,
            detail,
        };
        if let Err(e) = self.store.audit(&rec).await {
            tracing::error!(error = %e, %actor, %action, %target, "cannot append to the audit log");
        }
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest(
            "/api/v1",
            agents::routes()
                .merge(incidents::routes())
                .merge(admin::routes())
                .merge(drills::routes())
                .merge(session::routes())
                .merge(rules::routes())
                .merge(webhooks::routes())
                .merge(federation::routes())
                .merge(reports::routes()),
        )
        .merge(crate::web::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit_denials,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The client's address (`unknown` when the transport has none).
#[derive(Debug, Clone)]
pub struct Peer(pub String);

fn peer_of(ext: &axum::http::Extensions) -> Peer {
    Peer(
        ext.get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_string(), |ci| ci.0.to_string()),
    )
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(peer_of(&parts.extensions))
    }
}

/// Every write answered 401 or 403 leaves an audit entry: who (as far as
/// the credential tells), what was tried, from where.
async fn audit_denials(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let target = format!("{} {}", req.method(), req.uri().path());
    let peer = peer_of(req.extensions());
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && t.len() <= 512);
    let resp = next.run(req).await;
    let status = resp.status();
    if (status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN)
        || resp.extensions().get::<Audited>().is_some()
    {
        return resp;
    }
    let actor = match token {
        None => "unknown".to_string(),
        Some(t) => state
            .store
            .credential_owner(&hash_secret(&t))
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| "unknown".to_string()),
    };
    let detail = resp
        .extensions()
        .get::<ErrorText>()
        .map(|e| e.0.clone())
        .unwrap_or_default();
    let rec = AuditRecord {
        actor: &actor,
        action: "denied",
        target: &target,
        outcome: "denied",
        status: status.as_u16(),
        peer: &peer.0,
        detail: &detail,
    };
    if let Err(e) = state.store.audit(&rec).await {
        tracing::error!(error = %e, "cannot append a denied attempt to the audit log");
    }
    metrics::counter!("ward_api_denied_total").increment(1);
    resp
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
        let principal = state
            .store
            .principal(&hash_secret(token))
            .await?
            .ok_or(ApiError::Unauthorized("unknown or revoked API token"))?;
        if let Some(expires_at) = state.store.token_expiry(principal.token_id).await?
            && expires_at <= crate::store::ts(chrono::Utc::now())
        {
            return Err(ApiError::Unauthorized(
                "the session has expired: log in again",
            ));
        }
        Ok(User(principal))
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
            .ok_or(ApiError::Unauthorized(
                "unknown or revoked agent credential",
            ))
    }
}
