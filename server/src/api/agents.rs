//! Enrollment, the fleet, and what agents send.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde::Deserialize;
use ward_agent::wire::{
    Alert, AlertBatch, EnrollRequest, EnrollResponse, EnrollToken, Gap, Heartbeat, IngestAck,
    MAX_ALERT_PACKET_BYTES, MAX_ALERT_PACKETS, MAX_BATCH_GAPS, MAX_GAP_DETAIL, Severity,
    packet_bytes,
};

use super::{Agent, ApiError, ApiJson, ApiPath, ApiQuery, AppState, MaybeGzipJson, Peer, User};
use crate::auth::{AGENT_TOKEN_PREFIX, hash_secret, random_id, random_secret};
use crate::model::{AgentInfo, EnrollTokenRequest, EnrollTokenResponse, GapRecord};
use crate::store::ts;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/enroll-tokens", post(create_enroll_token))
        .route("/agents", get(list_agents))
        .route("/agents/enroll", post(enroll))
        .route("/agents/{id}/revoke", post(revoke_agent))
        .route("/agent/alerts", post(ingest_alerts))
        .route("/agent/heartbeat", post(heartbeat))
        .route("/agent/bundle", get(rule_bundle))
        .route("/gaps", get(list_gaps))
}

const MAX_NAME: usize = 200;
/// Most bytes of an alert's free text fields (title, source).
const MAX_TEXT: usize = 4096;

fn check_name(what: &str, s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable(format!(
            "{what} must be 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

/// Free text (an alert's title or source): at most [`MAX_TEXT`] bytes and no NUL,
/// which neither store can keep.
fn check_text(what: &str, s: &str) -> Result<(), ApiError> {
    if s.len() > MAX_TEXT || s.contains('\0') {
        return Err(ApiError::Unprocessable(format!(
            "{what} must be at most {MAX_TEXT} bytes without NUL characters"
        )));
    }
    Ok(())
}

async fn create_enroll_token(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiJson(req): ApiJson<EnrollTokenRequest>,
) -> Result<Json<EnrollTokenResponse>, ApiError> {
    user.require(&["admin"])?;
    let agency = match (req.agency, user.0.agencies.as_slice()) {
        (Some(a), _) => a,
        (None, [only]) => only.clone(),
        (None, _) => "default".into(),
    };
    check_name("agency", &agency)?;
    if !user.0.sees(&agency) {
        return Err(ApiError::Forbidden(format!(
            "'{}' may not enroll agents for agency '{agency}'",
            user.0.name
        )));
    }
    if let Some(d) = &req.drill_id {
        if !ward_agent::drill::valid_drill_id(d) {
            return Err(ApiError::BadRequest(format!("'{d}' is not a drill id")));
        }
        if !state.store.drill_running(d).await? {
            return Err(ApiError::Conflict(format!(
                "drill {d} is not running: no agents enroll for it"
            )));
        }
    }
    let uses = req.uses.unwrap_or(1);
    if uses == 0 || uses > 100_000 {
        return Err(ApiError::Unprocessable("uses must be 1 to 100000".into()));
    }
    let ttl_seconds = match (req.ttl_seconds, req.ttl_hours) {
        (Some(s), _) => s,
        (None, Some(h)) => u64::from(h) * 3600,
        (None, None) => 24 * 3600,
    };
    if !(60..=365 * 24 * 3600).contains(&ttl_seconds) {
        return Err(ApiError::Unprocessable(
            "a token expires after 1 minute to 365 days".into(),
        ));
    }
    let secret = random_secret();
    let expires_at = Utc::now() + Duration::seconds(ttl_seconds as i64);
    state
        .store
        .add_enroll_token(
            &hash_secret(&secret),
            &agency,
            uses,
            expires_at,
            &user.0.name,
            req.drill_id.as_deref(),
        )
        .await?;
    let token = EnrollToken {
        url: state.public_url.to_string(),
        secret,
        cert_sha256: state.cert_sha256.as_deref().map(str::to_owned),
    };
    state
        .audit_ok(
            &user.0.name,
            "enroll_token.create",
            &format!("agency:{agency}"),
            &peer,
            &match &req.drill_id {
                Some(d) => format!("{uses} use(s) for drill {d}, expires {}", ts(expires_at)),
                None => format!("{uses} use(s), expires {}", ts(expires_at)),
            },
        )
        .await;
    Ok(Json(EnrollTokenResponse {
        token: token.encode(),
        agency,
        uses,
        expires_at: ts(expires_at),
    }))
}

async fn enroll(
    State(state): State<AppState>,
    peer: Peer,
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
    state
        .audit_ok(
            &format!("agent:{agent_id}"),
            "agent.enroll",
            &format!("agent:{agent_id}"),
            &peer,
            &format!("host {} of agency '{agency}'", req.hostname),
        )
        .await;
    Ok(Json(EnrollResponse {
        agent_id,
        agent_token,
        agency,
        bundle_key: state.bundle.as_ref().map(|b| b.public_key().to_string()),
    }))
}

/// Query of `GET /api/v1/agent/bundle`.
#[derive(Debug, Deserialize)]
struct BundleQuery {
    /// The version the agent runs: 304 Not Modified when it is current.
    have: Option<String>,
}

/// `GET /api/v1/agent/bundle[?have=VERSION]`: the signed rule bundle, for
/// enrolled agents; 304 with no body when the agent has it already.
async fn rule_bundle(
    State(state): State<AppState>,
    Agent(_agent): Agent,
    ApiQuery(q): ApiQuery<BundleQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let Some(bundles) = &state.bundle else {
        return Err(ApiError::NotFound(
            "this coordinator serves no rule bundle".into(),
        ));
    };
    let current = bundles.current();
    if q.have.as_deref() == Some(current.version.as_str()) {
        return Ok(axum::http::StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(Json(current.signed.clone()).into_response())
}

/// Query of `GET /api/v1/agents`.
#[derive(Debug, Deserialize)]
struct AgentsQuery {
    /// A drill's id, or `all`; without it only the fleet (no drill's
    /// sandboxed agents) is listed.
    drill: Option<String>,
}

async fn list_agents(
    State(state): State<AppState>,
    user: User,
    ApiQuery(q): ApiQuery<AgentsQuery>,
) -> Result<Json<Vec<AgentInfo>>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let drill = super::incidents::drill_filter(q.drill.as_deref())?;
    Ok(Json(state.store.agents(user.0.scope(), &drill).await?))
}

async fn revoke_agent(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    user.require(&["admin"])?;
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::BadRequest(
            "agent id must be 1 to 64 bytes".into(),
        ));
    }
    state
        .store
        .revoke_agent(&id, user.0.scope())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => {
                ApiError::NotFound(format!("no agent {id} (or it is already revoked)"))
            }
            other => other.into(),
        })?;
    tracing::info!(agent_id = %id, by = %user.0.name, "agent revoked");
    state
        .audit_ok(
            &user.0.name,
            "agent.revoke",
            &format!("agent:{id}"),
            &peer,
            "",
        )
        .await;
    Ok(Json(serde_json::json!({"revoked": id})))
}

/// One token from the agent's bucket, or 429 with Retry-After.
fn rate_limit(state: &AppState, agent_id: &str) -> Result<(), ApiError> {
    state.limits.agent_rate.check(agent_id).map_err(|wait| {
        metrics::counter!("ward_agent_rate_limited_total").increment(1);
        ApiError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64)
    })
}

async fn ingest_alerts(
    State(state): State<AppState>,
    Agent(agent): Agent,
    MaybeGzipJson(batch): MaybeGzipJson<AlertBatch>,
) -> Result<Json<IngestAck>, ApiError> {
    rate_limit(&state, &agent.id)?;
    if batch.gaps.len() > MAX_BATCH_GAPS {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds at most {MAX_BATCH_GAPS} gap records"
        )));
    }
    for g in &batch.gaps {
        check_gap(g)?;
    }
    let max = state.limits.max_batch_alerts;
    if batch.alerts.len() > max {
        return Err(ApiError::TooMany(format!(
            "a batch holds at most {max} alerts (got {})",
            batch.alerts.len()
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
        check_text("alert title", &a.title)?;
        check_text("alert source", &a.source)?;
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
    let ack = state
        .store
        .ingest(&agent, &batch.alerts, &batch.gaps)
        .await?;
    metrics::counter!("ward_alerts_ingested_total").increment(ack.accepted);
    metrics::counter!("ward_alerts_duplicate_total").increment(ack.duplicates);
    if ack.gaps_accepted > 0 {
        metrics::counter!("ward_gaps_ingested_total").increment(ack.gaps_accepted);
        tracing::warn!(
            agent_id = %agent.id,
            gaps = ack.gaps_accepted,
            "agent reported gaps (dropped alerts or events)"
        );
    }
    Ok(Json(ack))
}

/// A gap record names its reason and host, and counts by known severities.
fn check_gap(g: &Gap) -> Result<(), ApiError> {
    if g.id.is_empty() || g.id.len() > 128 {
        return Err(ApiError::Unprocessable(
            "gap id must be 1 to 128 bytes".into(),
        ));
    }
    check_name("gap reason", &g.reason)?;
    check_name("gap host", &g.host)?;
    if g.count > i64::MAX as u64 {
        return Err(ApiError::Unprocessable("gap count out of range".into()));
    }
    for k in g.by_severity.keys() {
        k.parse::<Severity>().map_err(ApiError::Unprocessable)?;
    }
    if g.detail.as_ref().is_some_and(|d| d.len() > MAX_GAP_DETAIL) {
        return Err(ApiError::Unprocessable(format!(
            "gap detail is over {MAX_GAP_DETAIL} bytes"
        )));
    }
    Ok(())
}

/// Query of `GET /api/v1/gaps`.
#[derive(Debug, Deserialize)]
struct GapsQuery {
    /// Only this agent's.
    agent: Option<String>,
    /// At most this many (default 500, at most 10000).
    limit: Option<i64>,
}

async fn list_gaps(
    State(state): State<AppState>,
    user: User,
    ApiQuery(q): ApiQuery<GapsQuery>,
) -> Result<Json<Vec<GapRecord>>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let limit = q.limit.unwrap_or(500);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be 1 to 10000".into()));
    }
    Ok(Json(state.store.gaps(q.agent.as_deref(), limit).await?))
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
    rate_limit(&state, &agent.id)?;
    check_name("version", &hb.version)?;
    state.store.heartbeat(&agent.id, &hb).await?;
    Ok(Json(serde_json::json!({"ok": true})))
}
