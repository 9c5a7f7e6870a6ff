//! Webhook subscriptions (admins only): signed JSON POSTs on new incidents
//! at or above a severity and on status changes. `crate::webhook` sends them.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiJson, ApiPath, ApiQuery, AppState, Peer, User};
use crate::auth::random_secret;
use crate::store::{NewWebhook, StoreError, WebhookDelivery, WebhookInfo};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(add))
        .route("/webhooks/{id}/disable", post(disable))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

/// Longest receiver URL.
const MAX_URL: usize = 2048;

/// The answer to a new subscription: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewWebhookResponse {
    /// The subscription.
    #[serde(flatten)]
    pub webhook: WebhookInfo,
    /// The HMAC-SHA256 key receivers check `X-Ward-Signature` with.
    pub secret: String,
}

fn check_url(url: &str) -> Result<(), ApiError> {
    if url.len() > MAX_URL {
        return Err(ApiError::Unprocessable(format!(
            "url is limited to {MAX_URL} bytes"
        )));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ApiError::Unprocessable(format!("url '{url}' does not parse: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ApiError::Unprocessable(format!(
            "url '{url}' must be http:// or https:// with a host"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::Unprocessable(
            "url must not carry credentials; receivers check the signature".into(),
        ));
    }
    Ok(())
}

async fn add(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<Json<NewWebhookResponse>, ApiError> {
    user.require(&["admin"])?;
    if !user.0.agencies.is_empty() {
        return Err(ApiError::Forbidden(
            "webhooks see every agency's incidents; only an unscoped admin adds them".into(),
        ));
    }
    check_url(&req.url)?;
    let secret = random_secret();
    let id = state.store.add_webhook(&req, &secret, &user.0.name).await?;
    state
        .audit_ok(
            &user.0.name,
            "webhook.add",
            &format!("webhook:{id}"),
            &peer,
            &req.url,
        )
        .await;
    let webhook = state
        .store
        .webhooks()
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| ApiError::Internal(format!("webhook {id} vanished")))?;
    Ok(Json(NewWebhookResponse { webhook, secret }))
}

async fn list(
    State(state): State<AppState>,
    user: User,
) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    user.require(&["admin"])?;
    Ok(Json(state.store.webhooks().await?))
}

async fn disable(
    State(state): State<AppState>,
    peer: Peer,
    user: User,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<WebhookInfo>>, ApiError> {
    user.require(&["admin"])?;
    state.store.disable_webhook(id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::NotFound(format!("no active webhook {id}")),
        other => other.into(),
    })?;
    state
        .audit_ok(
            &user.0.name,
            "webhook.disable",
            &format!("webhook:{id}"),
            &peer,
            "",
        )
        .await;
    Ok(Json(state.store.webhooks().await?))
}

#[derive(Deserialize)]
struct DeliveriesQuery {
    limit: Option<i64>,
}

async fn deliveries(
    State(state): State<AppState>,
    user: User,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    user.require(&["admin"])?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    state
        .store
        .webhook_deliveries(id, limit)
        .await
        .map(Json)
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("no webhook {id}")),
            other => other.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_urls_are_checked() {
        assert!(check_url("https://soc.example.gov.vn/hooks/ward").is_ok());
        assert!(check_url("http://127.0.0.1:9000/in").is_ok());
        for bad in [
            "ftp://x/",
            "not a url",
            "https://user:pw@example.org/",
            "file:///etc/passwd",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://x.org/{}", "a".repeat(MAX_URL))).is_err());
    }
}
