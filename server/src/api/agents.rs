//! Enrollment, the fleet, and what agents send.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, Utc};
use ward_agent::wire::{
    Alert, AlertBatch, EnrollRequest, EnrollResponse, EnrollToken, Heartbeat, IngestAck,
    MAX_ALERT_PACKET_BYTES, MAX_ALERT_PACKETS, MAX_BATCH_ALERTS, packet_bytes,
};

use super::{Agent, ApiError, ApiJson, AppState, User};
use crate::auth::{AGENT_TOKEN_PREFIX, hash_secret, random_id, random_secret};
use crate::model::{AgentInfo, EnrollTokenRequest, EnrollTokenResponse};
use crate::store::ts;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/enroll-tokens", post(create_enroll_token))
        .route("/agents", get(list_agents))
        .route("/agents/enroll", post(enroll))
        .route("/agent/alerts", post(ingest_alerts))
        .route("/agent/heartbeat", post(heartbeat))
}

const MAX_NAME: usize = 200;

fn check_name(what: &str, s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable(format!(
            "{what} must be 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

async fn create_enroll_token(
    State(state): State<AppState>,
    user: User,
    ApiJson(req): ApiJson<EnrollTokenRequest>,
) -> Result<Json<EnrollTokenResponse>, ApiError> {
    user.require(&["admin"])?;
    let agency = req.agency.unwrap_or_else(|| "default".into());
    check_name("agency", &agency)?;
    let uses = req.uses.unwrap_or(1);
    let ttl_hours = req.ttl_hours.unwrap_or(24);
    if uses == 0 || uses > 100_000 {
        return Err(ApiError::Unprocessable("uses must be 1 to 100000".into()));
    }
    if ttl_hours == 0 || ttl_hours > 24 * 365 {
        return Err(ApiError::Unprocessable(
            "ttl_hours must be 1 to 8760".into(),
        ));
    }
    let secret = random_secret();
    let expires_at = Utc::now() + Duration::hours(i64::from(ttl_hours));
    state
        .store
        .add_enroll_token(
            &hash_secret(&secret),
            &agency,
            uses,
            expires_at,
            &user.0.name,
        )
        .await?;
    let token = EnrollToken {
        url: state.public_url.to_string(),
        secret,
        cert_sha256: None,
    };
    Ok(Json(EnrollTokenResponse {
        token: token.encode(),
        agency,
        uses,
        expires_at: ts(expires_at),
    }))
}

async fn enroll(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    check_name("hostname", &req.hostname)?;
    check_name("version", &req.version)?;
    if req.secret.len() > 512 {
        return Err(ApiError::Unauthorized(
            "unknown, used or expired enrollment token",
        ));
    }
    let agent_id = random_id();
    let agent_token = format!("{AGENT_TOKEN_PREFIX}{}", random_secret());
    let agency = state
        .store
        .enroll_agent(
            &hash_secret(&req.secret),
            &agent_id,
            &req.hostname,
            &req.version,
            &hash_secret(&agent_token),
        )
        .await?
        .ok_or(ApiError::Unauthorized(
            "unknown, used or expired enrollment token",
        ))?;
    tracing::info!(%agent_id, hostname = %req.hostname, %agency, "agent enrolled");
    metrics::counter!("ward_agents_enrolled_total").increment(1);
    Ok(Json(EnrollResponse {
        agent_id,
        agent_token,
        agency,
    }))
}

async fn list_agents(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<Vec<AgentInfo>>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    Ok(Json(state.store.agents().await?))
}

async fn ingest_alerts(
    State(state): State<AppState>,
    Agent(agent): Agent,
    ApiJson(batch): ApiJson<AlertBatch>,
) -> Result<Json<IngestAck>, ApiError> {
    if batch.alerts.len() > MAX_BATCH_ALERTS {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds at most {MAX_BATCH_ALERTS} alerts"
        )));
    }
    for a in &batch.alerts {
        if a.id.is_empty() || a.id.len() > 128 {
            return Err(ApiError::Unprocessable(
                "alert id must be 1 to 128 bytes".into(),
            ));
        }
        check_name("alert rule_id", &a.rule_id)?;
        check_name("alert host", &a.host)?;
        check_packets(a)?;
        if let Some(d) = &a.drill_id
            && !ward_agent::drill::valid_drill_id(d)
        {
            return Err(ApiError::Unprocessable(format!(
                "alert {}: drill_id must be 1-64 characters of letters, digits, '-' and '_'",
                a.id
            )));
        }
    }
    let ack = state.store.ingest(&agent, &batch.alerts).await?;
    metrics::counter!("ward_alerts_ingested_total").increment(ack.accepted);
    metrics::counter!("ward_alerts_duplicate_total").increment(ack.duplicates);
    Ok(Json(ack))
}

/// An alert's captured frames keep to the agent's caps and make a valid
/// capture record (time after 1970 and before 2106, bytes present).
fn check_packets(a: &Alert) -> Result<(), ApiError> {
    if a.packets.len() > MAX_ALERT_PACKETS || packet_bytes(a) > MAX_ALERT_PACKET_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "alert {} carries more than {MAX_ALERT_PACKETS} packets or {MAX_ALERT_PACKET_BYTES} bytes of them",
            a.id
        )));
    }
    for p in &a.packets {
        if p.data.is_empty() || p.ts_ns < 0 || p.ts_ns / 1_000_000_000 > i64::from(u32::MAX) {
            return Err(ApiError::Unprocessable(format!(
                "alert {} carries a packet with no data or a time outside 1970..2106",
                a.id
            )));
        }
    }
    Ok(())
}

async fn heartbeat(
    State(state): State<AppState>,
    Agent(agent): Agent,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_name("version", &hb.version)?;
    state.store.heartbeat(&agent.id, &hb).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}
