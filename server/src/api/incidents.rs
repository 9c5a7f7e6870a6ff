//! The incident queue and triage actions.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiPath, ApiQuery, AppState, User};
use crate::model::{ActionRequest, Incident, IncidentDetail, Status};
use crate::store::TriageAction;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/incidents", get(list))
        .route("/incidents/{id}", get(show))
        .route("/incidents/{id}/{action}", post(act))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
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
    Ok(Json(state.store.incidents(status, limit).await?))
}

async fn show(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<IncidentDetail>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
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
    user: User,
    ApiPath((id, action)): ApiPath<(i64, String)>,
    body: axum::body::Bytes,
) -> Result<Json<IncidentDetail>, ApiError> {
    user.require(&["admin", "responder"])?;
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
    state
        .store
        .triage(id, &user.0.name, action)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound(format!("no incident {id}")),
            other => other.into(),
        })?;
    Ok(Json(state.store.incident(id).await?))
}
