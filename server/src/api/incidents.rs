//! The incident queue and triage actions.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use ward_agent::wire::EvidencePacket;

use super::{ApiError, ApiPath, ApiQuery, AppState, Peer, User};
use crate::model::{ActionRequest, Campaign, CampaignDetail, Incident, IncidentDetail, Status};
use crate::store::{DrillFilter, IncidentQuery, QueueSort, TriageAction};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(list))
        .route("/incidents/{id}", get(show))
        .route("/incidents/{id}/pcap", get(incident_pcap))
        .route("/incidents/{id}/{action}", post(act))
        .route("/alerts/{id}/pcap", get(alert_pcap))
        .route("/campaigns", get(campaigns))
        .route("/campaigns/{id}", get(campaign))
}

#[derive(Deserialize)]
struct CampaignQuery {
    limit: Option<i64>,
    drill: Option<String>,
}

async fn campaigns(
    State(state): State<AppState>,
    user: User,
    ApiQuery(q): ApiQuery<CampaignQuery>,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let drill = drill_filter(q.drill.as_deref())?;
    let limit = q.limit.unwrap_or(200).clamp(1, 2_000);
    Ok(Json(
        state.store.campaigns(&drill, limit, user.0.scope()).await?,
    ))
}

async fn campaign(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignDetail>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let (campaign, incidents) =
        state
            .store
            .campaign(id, user.0.scope())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => {
                    ApiError::NotFound(format!("no campaign {id}"))
                }
                other => other.into(),
            })?;
    Ok(Json(CampaignDetail {
        campaign,
        incidents,
    }))
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
    /// The least severity.
    severity: Option<String>,
    agency: Option<String>,
    host: Option<String>,
    rule: Option<String>,
    /// Active at or after (RFC 3339).
    since: Option<String>,
    /// Active at or before (RFC 3339).
    until: Option<String>,
    /// `last_seen` (default), `deadline`, `severity` or `created`.
    sort: Option<String>,
    /// Only incidents forwarded by this province (national coordinator).
    province: Option<String>,
}

/// A drill filter from the `drill` parameter.
pub(super) fn drill_filter(d: Option<&str>) -> Result<DrillFilter, ApiError> {
    match d {
        None | Some("") => Ok(DrillFilter::Real),
        Some("all") => Ok(DrillFilter::All),
        Some(d) if ward_agent::drill::valid_drill_id(d) => Ok(DrillFilter::One(d.to_string())),
        Some(d) => Err(ApiError::BadRequest(format!(
            "drill '{d}' is not a drill id (or 'all')"
        ))),
    }
}

/// An RFC 3339 time parameter in the store's form.
fn time_param(name: &str, v: Option<&str>) -> Result<Option<String>, ApiError> {
    v.filter(|v| !v.is_empty())
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| crate::store::ts(t.with_timezone(&chrono::Utc)))
                .map_err(|e| {
                    ApiError::BadRequest(format!(
                        "{name} '{v}' is not an RFC 3339 time (2026-12-01T08:00:00Z): {e}"
                    ))
                })
        })
        .transpose()
}

/// A short text filter: at most 256 bytes.
fn text_param(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(v) if v.len() > 256 => Err(ApiError::BadRequest(format!(
            "{name} is limited to 256 bytes"
        ))),
        Some(v) if v.is_empty() => Ok(None),
        v => Ok(v),
    }
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
        .filter(|s| !s.is_empty())
        .map(str::parse::<Status>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let min_severity = q
        .severity
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<ward_agent::wire::Severity>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let sort = q
        .sort
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<QueueSort>)
        .transpose()
        .map_err(ApiError::BadRequest)?
        .unwrap_or_default();
    let query = IncidentQuery {
        status,
        min_severity,
        agency: text_param("agency", q.agency)?,
        host: text_param("host", q.host)?,
        rule: text_param("rule", q.rule)?,
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        drill: drill_filter(q.drill.as_deref())?,
        province: text_param("province", q.province)?,
        sort,
        limit: q.limit.unwrap_or(500).clamp(1, 10_000),
    };
    Ok(Json(
        state.store.incident_queue(&query, user.0.scope()).await?,
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
    match action.as_str() {
        "merge" => {
            let into = req.into.ok_or_else(|| {
                ApiError::Unprocessable("merge needs \"into\": an incident id".into())
            })?;
            in_scope(&state, &user, into).await?;
            state
                .store
                .merge(id, into, &user.0.name)
                .await
                .map_err(not_found(id))?;
            audit_action(
                &state,
                &user,
                &peer,
                "merge",
                id,
                &format!("into incident {into}"),
            )
            .await;
            return Ok(Json(state.store.incident(into).await?));
        }
        "split" => {
            let new_id = state
                .store
                .split(id, &req.alert_ids, &user.0.name)
                .await
                .map_err(not_found(id))?;
            let detail = format!("{} alerts to incident {new_id}", req.alert_ids.len());
            audit_action(&state, &user, &peer, "split", id, &detail).await;
            return Ok(Json(state.store.incident(new_id).await?));
        }
        _ => {}
    }
    let label = || {
        text.ok_or_else(|| ApiError::Unprocessable(format!("{action} needs \"text\": the label")))
    };
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
        "tag" => TriageAction::Tag(label()?),
        "untag" => TriageAction::Untag(label()?),
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown action '{other}' (ack, contain, resolve, false-positive, reopen, assign, note, tag, untag, merge, split)"
            )));
        }
    };
    let detail = match action {
        TriageAction::SetStatus(_, t) | TriageAction::Reopen(t) => t.unwrap_or_default(),
        TriageAction::Assign(who) => who,
        TriageAction::Note(t) | TriageAction::Tag(t) | TriageAction::Untag(t) => t,
    }
    .to_string();
    state
        .store
        .triage(id, &user.0.name, action)
        .await
        .map_err(not_found(id))?;
    audit_action(&state, &user, &peer, &action_name, id, &detail).await;
    Ok(Json(state.store.incident(id).await?))
}

/// Maps the store's `NotFound` to "no incident `id`".
fn not_found(id: i64) -> impl Fn(crate::store::StoreError) -> ApiError {
    move |e| match e {
        crate::store::StoreError::NotFound => ApiError::NotFound(format!("no incident {id}")),
        other => other.into(),
    }
}

async fn audit_action(
    state: &AppState,
    user: &User,
    peer: &Peer,
    action: &str,
    id: i64,
    detail: &str,
) {
    state
        .audit_ok(
            &user.0.name,
            &format!("incident.{action}"),
            &format!("incident:{id}"),
            peer,
            detail,
        )
        .await;
}
