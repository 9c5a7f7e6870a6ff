//! The incident queue and triage actions.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use ward_agent::wire::EvidencePacket;

use super::{ApiError, ApiPath, ApiQuery, AppState, Peer, User};
use crate::model::{ActionRequest, Incident, IncidentDetail, Status};
use crate::store::TriageAction;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(list))
        .route("/incidents/{id}", get(show))
        .route("/incidents/{id}/pcap", get(incident_pcap))
        .route("/incidents/{id}/{action}", post(act))
        .route("/alerts/{id}/pcap", get(alert_pcap))
}

/// Most bytes of frame data in one incident's capture; later frames are
/// left out and counted in the `X-Ward-Packets-Omitted` header.
pub const MAX_INCIDENT_PCAP_BYTES: usize = 64 * 1024 * 1024;

/// A capture file as a download named `name` (without extension).
fn capture_response(name: &str, packets: &[EvidencePacket], omitted: u64) -> Response {
    let (bytes, format) = match crate::pcap::write_capture(packets) {
        Ok(c) => c,
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    let disposition = format!("attachment; filename=\"{name}.{}\"", format.extension());
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-ward-packets", HeaderValue::from(packets.len()));
    if omitted > 0 {
        h.insert("x-ward-packets-omitted", HeaderValue::from(omitted));
    }
    resp
}

async fn incident_pcap(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    in_scope(&state, &user, id).await?;
    let (packets, omitted) = state
        .store
        .incident_packets(id, MAX_INCIDENT_PCAP_BYTES)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound(format!("no incident {id}")),
            other => other.into(),
        })?;
    if packets.is_empty() {
        return Err(ApiError::NotFound(format!(
            "incident {id} has no captured packets (only network alerts carry them)"
        )));
    }
    Ok(capture_response(
        &format!("ward-incident-{id}"),
        &packets,
        omitted,
    ))
}

async fn alert_pcap(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    if id.is_empty() || id.len() > 128 {
        return Err(ApiError::BadRequest(
            "alert id must be 1 to 128 bytes".into(),
        ));
    }
    let agency = state.store.alert_agency(&id).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::NotFound(format!("no alert {id}")),
        other => other.into(),
    })?;
    if !user.0.sees(&agency) {
        return Err(ApiError::NotFound(format!("no alert {id}")));
    }
    let packets = state.store.alert_packets(&id).await.map_err(|e| match e {
        crate::store::StoreError::NotFound => ApiError::NotFound(format!("no alert {id}")),
        other => other.into(),
    })?;
    if packets.is_empty() {
        return Err(ApiError::NotFound(format!(
            "alert {id} has no captured packets (only network alerts carry them)"
        )));
    }
    let safe: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(32)
        .collect();
    Ok(capture_response(&format!("ward-alert-{safe}"), &packets, 0))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    /// A drill's id, or `all`; without it only real incidents are listed.
    drill: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    user: User,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let status = q
        .status
        .as_deref()
        .map(str::parse::<Status>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    let drill = match q.drill.as_deref() {
        None | Some("") => crate::store::DrillFilter::Real,
        Some("all") => crate::store::DrillFilter::All,
        Some(d) if ward_agent::drill::valid_drill_id(d) => {
            crate::store::DrillFilter::One(d.to_string())
        }
        Some(d) => {
            return Err(ApiError::BadRequest(format!(
                "drill '{d}' is not a drill id (or 'all')"
            )));
        }
    };
    Ok(Json(
        state
            .store
            .incidents_of(status, &drill, limit, user.0.scope())
            .await?,
    ))
}

/// `NotFound` unless incident `id` exists in the user's agencies (another
/// agency's incident does not exist for a scoped user).
async fn in_scope(state: &AppState, user: &User, id: i64) -> Result<(), ApiError> {
    match state.store.incident_agency(id).await {
        Ok(agency) if user.0.sees(&agency) => Ok(()),
        Ok(_) | Err(crate::store::StoreError::NotFound) => {
            Err(ApiError::NotFound(format!("no incident {id}")))
        }
        Err(e) => Err(e.into()),
    }
}

async fn show(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IncidentDetail>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    in_scope(&state, &user, id).await?;
    state
        .store
        .incident(id)
        .await
        .map(Json)
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound(format!("no incident {id}")),
            other => other.into(),
        })
}

const MAX_TEXT: usize = 16 * 1024;

async fn act(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath((id, action)): ApiPath<(i64, String)>,
    body: axum::body::Bytes,
) -> Result<Json<IncidentDetail>, ApiError> {
    user.require(&["admin", "responder"])?;
    in_scope(&state, &user, id).await?;
    let req: ActionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ActionRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::Unprocessable(format!("invalid action body: {e}")))?
    };
    let text = req.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.len() > MAX_TEXT) {
        return Err(ApiError::Unprocessable(format!(
            "text is limited to {MAX_TEXT} bytes"
        )));
    }
    let action_name = action.clone();
    let action = match action.as_str() {
        "ack" | "acknowledge" => TriageAction::SetStatus(Status::Acknowledged, text),
        "contain" => TriageAction::SetStatus(Status::Contained, text),
        "resolve" => TriageAction::SetStatus(Status::Resolved, text),
        "false-positive" => TriageAction::SetStatus(Status::FalsePositive, text),
        "reopen" => TriageAction::Reopen(text),
        "assign" => {
            let who = req
                .assignee
                .as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty() && w.len() <= 200)
                .ok_or_else(|| ApiError::Unprocessable("assign needs an assignee".into()))?;
            TriageAction::Assign(who)
        }
        "note" => TriageAction::Note(
            text.ok_or_else(|| ApiError::Unprocessable("a note needs text".into()))?,
        ),
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown action '{other}' (ack, contain, resolve, false-positive, reopen, assign, note)"
            )));
        }
    };
    let detail = match action {
        TriageAction::SetStatus(_, t) | TriageAction::Reopen(t) => t.unwrap_or_default(),
        TriageAction::Assign(who) => who,
        TriageAction::Note(t) => t,
    }
    .to_string();
    state
        .store
        .triage(id, &user.0.name, action)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound(format!("no incident {id}")),
            other => other.into(),
        })?;
    state
        .audit_ok(
            &user.0.name,
            &format!("incident.{action_name}"),
            &format!("incident:{id}"),
            &peer,
            &detail,
        )
        .await;
    Ok(Json(state.store.incident(id).await?))
}
