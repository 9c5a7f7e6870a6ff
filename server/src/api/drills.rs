//! Drills kept on the coordinator: created by `ward drill run` before it
//! starts its agents, finished with the runner's scorecard, and shown with
//! responders' acknowledge and resolve times as of now and an after-action
//! report.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, User};
use crate::model::{AbortDrill, DrillRecord, FinishDrill, NewDrill, RenewDrillLease};
use crate::store::{MAX_DRILL_LEASE_S, StoreError};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/drills", get(list).post(create))
        .route("/drills/{id}", get(show))
        .route("/drills/{id}/finish", post(finish))
        .route("/drills/{id}/abort", post(abort))
        .route("/drills/{id}/lease", post(renew_lease))
        .route("/drills/{id}/report", get(report))
}

/// Largest scenario file kept with a drill, in bytes.
const MAX_SOURCE_BYTES: usize = 1024 * 1024;

fn not_found(id: &str) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no drill {id}")),
        other => other.into(),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if ward_agent::drill::valid_drill_id(id) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!("'{id}' is not a drill id")))
    }
}

/// A new drill id: the time and a random suffix (`drill-20261122-090000-1a2b3c`).
fn new_id() -> String {
    let suffix: u32 = rand::random();
    format!(
        "drill-{}-{:06x}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        suffix & 0xff_ffff
    )
}

async fn create(
    State(state): State<AppState>,
    user: User,
    ApiJson(d): ApiJson<NewDrill>,
) -> Result<(StatusCode, Json<DrillRecord>), ApiError> {
    user.require(&["admin"])?;
    let name_ok = !d.scenario.is_empty()
        && d.scenario.len() <= 64
        && d.scenario
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(ApiError::Unprocessable(
            "scenario must be 1-64 characters of lowercase letters, digits and '-'".into(),
        ));
    }
    if d.source.len() > MAX_SOURCE_BYTES || d.description.len() > 64 * 1024 {
        return Err(ApiError::Unprocessable(format!(
            "the scenario file is over {MAX_SOURCE_BYTES} bytes"
        )));
    }
    check_lease(d.lease_s)?;
    let id = new_id();
    state.store.create_drill(&id, &d, &user.0.name).await?;
    let rec = state.store.drill(&id).await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

async fn finish(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<String>,
    ApiJson(f): ApiJson<FinishDrill>,
) -> Result<Json<DrillRecord>, ApiError> {
    user.require(&["admin"])?;
    check_id(&id)?;
    if f.scorecard.drill_id != id {
        return Err(ApiError::Unprocessable(format!(
            "the scorecard is for drill '{}', not '{id}'",
            f.scorecard.drill_id
        )));
    }
    let json =
        serde_json::to_string(&f.scorecard).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store
        .finish_drill(&id, &json)
        .await
        .map_err(not_found(&id))?;
    Ok(Json(refreshed(&state, &id).await?))
}

async fn abort(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<String>,
    ApiJson(a): ApiJson<AbortDrill>,
) -> Result<Json<DrillRecord>, ApiError> {
    user.require(&["admin"])?;
    check_id(&id)?;
    let reason: String = a.reason.chars().take(4096).collect();
    state
        .store
        .abort_drill(&id, &reason)
        .await
        .map_err(not_found(&id))?;
    Ok(Json(state.store.drill(&id).await.map_err(not_found(&id))?))
}

/// A lease must last 1 s to [`MAX_DRILL_LEASE_S`].
fn check_lease(lease_s: Option<u32>) -> Result<(), ApiError> {
    match lease_s {
        Some(s) if s == 0 || s > MAX_DRILL_LEASE_S => Err(ApiError::Unprocessable(format!(
            "lease_s must be 1 to {MAX_DRILL_LEASE_S} seconds"
        ))),
        _ => Ok(()),
    }
}

/// `POST /drills/{id}/lease`: the runner of a running drill is alive. A
/// drill whose lease runs out is abandoned (409 afterwards).
async fn renew_lease(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<String>,
    ApiJson(r): ApiJson<RenewDrillLease>,
) -> Result<Json<DrillRecord>, ApiError> {
    user.require(&["admin"])?;
    check_id(&id)?;
    check_lease(r.lease_s)?;
    state
        .store
        .renew_drill_lease(
            &id,
            r.lease_s.unwrap_or(crate::store::DEFAULT_DRILL_LEASE_S),
        )
        .await
        .map_err(not_found(&id))?;
    Ok(Json(state.store.drill(&id).await.map_err(not_found(&id))?))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    user: User,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<DrillRecord>>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    let limit = q.limit.unwrap_or(200).clamp(1, 10_000);
    Ok(Json(state.store.drills(limit).await?))
}

/// A drill with its scorecard's response times brought up to date.
async fn refreshed(state: &AppState, id: &str) -> Result<DrillRecord, ApiError> {
    let mut rec = state.store.drill(id).await.map_err(not_found(id))?;
    if let Some(card) = &mut rec.scorecard {
        let start = DateTime::parse_from_rfc3339(&card.started_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::Internal(format!("drill {id}: bad start time: {e}")))?;
        let offset = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| (t.with_timezone(&Utc) - start).num_milliseconds() as f64 / 1000.0)
        };
        let times: BTreeMap<i64, (Option<f64>, Option<f64>)> = state
            .store
            .drill_response_times(id)
            .await?
            .into_iter()
            .map(|(inc, _, ack, res)| (inc, (offset(&ack), offset(&res))))
            .collect();
        card.set_response_times(&times);
    }
    Ok(rec)
}

async fn show(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DrillRecord>, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    check_id(&id)?;
    Ok(Json(refreshed(&state, &id).await?))
}

/// Query of `GET /drills/{id}/report`.
#[derive(Deserialize)]
struct ReportQuery {
    /// `md` (the default) or `html`.
    format: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    user.require(&["admin", "responder", "viewer"])?;
    check_id(&id)?;
    let html = match q.format.as_deref() {
        None | Some("md") => false,
        Some("html") => true,
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "format '{f}' is not md or html"
            )));
        }
    };
    let rec = refreshed(&state, &id).await?;
    let mut timelines = Vec::new();
    if let Some(card) = &rec.scorecard {
        for d in &card.incidents {
            if let Some(inc) = d.incident_id {
                match state.store.incident(inc).await {
                    Ok(detail) => timelines.push(detail),
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let (text, content_type) = if html {
        (
            crate::drill_report::html(&rec, &timelines),
            "text/html; charset=utf-8",
        )
    } else {
        (
            crate::drill_report::markdown(&rec, &timelines),
            "text/markdown; charset=utf-8",
        )
    };
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}
