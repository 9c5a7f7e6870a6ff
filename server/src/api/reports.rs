//! Agency profiles (`/agencies`) and the regulatory reports and exports of
//! an incident (`/incidents/{id}/report`). Reports are built by
//! [`crate::report`]; this module only fetches, checks scope and answers.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Peer, User};
use crate::agency::{AgencyInfo, AgencyProfile, ProfileFields, check_agency_name};
use crate::report::{ReportForm, ReportFormat, ReportInput};
use crate::store::StoreError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/agencies", get(list))
        .route("/agencies/{name}/profile", get(show).put(put))
        .route("/incidents/{id}/report", get(report))
}

const READERS: &[&str] = &["admin", "responder", "viewer"];

async fn list(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<Vec<AgencyInfo>>, ApiError> {
    user.require(READERS)?;
    Ok(Json(state.store.agencies(user.0.scope()).await?))
}

fn agency_path(name: &str) -> Result<(), ApiError> {
    check_agency_name(name).map_err(ApiError::BadRequest)
}

async fn show(
    State(state): State<AppState>,
    user: User,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<AgencyProfile>, ApiError> {
    user.require(READERS)?;
    agency_path(&name)?;
    if !user.0.sees(&name) {
        return Err(ApiError::NotFound(format!("no agency '{name}'")));
    }
    state.store.agency_profile(&name).await?.map(Json).ok_or_else(|| {
        ApiError::NotFound(format!(
            "agency '{name}' has no profile yet (an admin sets it with PUT /api/v1/agencies/{{name}}/profile)"
        ))
    })
}

async fn put(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath(name): ApiPath<String>,
    ApiJson(fields): ApiJson<ProfileFields>,
) -> Result<Json<AgencyProfile>, ApiError> {
    user.require(&["admin"])?;
    agency_path(&name)?;
    if !user.0.sees(&name) {
        return Err(ApiError::Forbidden(format!(
            "agency '{name}' is outside your agencies"
        )));
    }
    let fields = fields
        .normalized()
        .map_err(|e| ApiError::Unprocessable(format!("invalid agency profile: {e}")))?;
    let stored = state
        .store
        .put_agency_profile(&name, &fields, &user.0.name)
        .await?;
    let detail = serde_json::to_string(&stored.fields).unwrap_or_default();
    state
        .audit_ok(
            &user.0.name,
            "agency.profile",
            &format!("agency:{name}"),
            &peer,
            &detail,
        )
        .await;
    Ok(Json(stored))
}

#[derive(Deserialize)]
struct ReportQuery {
    form: Option<String>,
    format: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    user.require(READERS)?;
    let form: ReportForm = q
        .form
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("form is required: 03, 04, json or stix".into()))?
        .parse()
        .map_err(ApiError::BadRequest)?;
    let format: ReportFormat = match q.format.as_deref() {
        None | Some("") => ReportFormat::Markdown,
        Some(f) => {
            if matches!(form, ReportForm::Json | ReportForm::Stix) {
                return Err(ApiError::BadRequest(format!(
                    "format applies to forms 03 and 04 only; form {} is JSON",
                    form.as_str()
                )));
            }
            f.parse().map_err(ApiError::BadRequest)?
        }
    };
    let not_found = || ApiError::NotFound(format!("no incident {id}"));
    let detail = state.store.incident(id).await.map_err(|e| match e {
        StoreError::NotFound => not_found(),
        other => other.into(),
    })?;
    if !user.0.sees(&detail.incident.agency) {
        return Err(not_found());
    }
    let profile = state.store.agency_profile(&detail.incident.agency).await?;
    let rendered = crate::report::render(
        form,
        format,
        &ReportInput {
            detail: &detail,
            profile: profile.as_ref(),
            coordinator: &state.public_url,
            generated_at: chrono::Utc::now(),
        },
    );
    let mut resp = (StatusCode::OK, rendered.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rendered.content_type),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", rendered.filename)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
