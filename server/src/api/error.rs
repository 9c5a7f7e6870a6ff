//! The API's one error type: a status and a JSON `{"error": ...}` body.
//! Internal errors are logged and never shown to clients.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("request body too large")]
    TooLarge,
    /// 413 with a reason (e.g. too many alerts in one batch).
    #[error("{0}")]
    TooMany(String),
    /// 429; retry after this many seconds.
    #[error("too many requests from this agent; retry after {0} s")]
    RateLimited(u64),
    /// 429 for login attempts; retry after this many seconds.
    #[error("too many login attempts; retry after {0} s")]
    TooManyLogins(u64),
    /// 422.
    #[error("{0}")]
    Unprocessable(String),
    /// 500, details logged only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge | ApiError::TooMany(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) | ApiError::TooManyLogins(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let text = self.to_string();
        let mut resp = (self.status(), Json(json!({ "error": text }))).into_response();
        if let ApiError::RateLimited(secs) | ApiError::TooManyLogins(secs) = self {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp.extensions_mut().insert(ErrorText(text));
        resp
    }
}

/// The error message of an error response, for the audit log.
#[derive(Debug, Clone)]
pub struct ErrorText(pub String);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::Unprocessable(m),
            StoreError::Busy(m) => {
                tracing::warn!(reason = %m, "request refused for now: the store is busy");
                ApiError::RateLimited(1)
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(r.body_text()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::BadRequest("expected Content-Type: application/json".into())
            }
            _ => ApiError::BadRequest(r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// `axum::Json` whose rejections are [`ApiError`]s.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` whose rejections are [`ApiError`]s.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` whose rejections are [`ApiError`]s.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A JSON body that may be gzip-compressed (`Content-Encoding: gzip`), as
/// agents send their batches. The body limit applies to the compressed
/// bytes and again to the decompressed JSON ([`super::MAX_BODY_BYTES`]), so
/// a small bomb is refused with 413 like a large plain body.
pub struct MaybeGzipJson<T>(pub T);

impl<T, S> FromRequest<S> for MaybeGzipJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
        use std::io::Read as _;
        let encoding = req
            .headers()
            .get(CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        match encoding.as_deref() {
            None | Some("identity") => {
                return ApiJson::<T>::from_request(req, state)
                    .await
                    .map(|ApiJson(v)| MaybeGzipJson(v));
            }
            Some("gzip") => {}
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "unsupported Content-Encoding '{other}' (expected gzip or none)"
                )));
            }
        }
        let json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return Err(ApiError::BadRequest(
                "expected Content-Type: application/json".into(),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge
                } else {
                    ApiError::BadRequest(r.body_text())
                }
            })?;
        let limit = super::MAX_BODY_BYTES;
        let json = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map(|_| out)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid gzip: {e}")))?;
        if json.len() > limit {
            return Err(ApiError::TooLarge);
        }
        serde_json::from_slice(&json)
            .map(MaybeGzipJson)
            .map_err(|e| match e.classify() {
                serde_json::error::Category::Data => ApiError::Unprocessable(format!(
                    "Failed to deserialize the JSON body into the target type: {e}"
                )),
                _ => ApiError::BadRequest(format!("Failed to parse the request body as JSON: {e}")),
            })
    }
}
