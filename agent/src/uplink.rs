//! The agent's HTTP client to the coordinator (reqwest).

use std::time::Duration;

use anyhow::Context;
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::identity::Identity;
use crate::wire::{AlertBatch, EnrollRequest, EnrollResponse, EnrollToken, Heartbeat, IngestAck};

/// Why a request to the coordinator failed.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    /// The coordinator could not be reached or timed out; retry later.
    #[error("coordinator unreachable: {0}")]
    Unreachable(String),
    /// The coordinator refused our credentials.
    #[error("coordinator rejected the agent's credentials ({0}); re-enroll the agent")]
    Unauthorized(StatusCode),
    /// The coordinator answered with an error.
    #[error("coordinator answered {status}: {message}")]
    Rejected {
        /// HTTP status.
        status: StatusCode,
        /// The error message from the body.
        message: String,
    },
}

impl UplinkError {
    /// Whether retrying the same request later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            UplinkError::Unreachable(_) => true,
            UplinkError::Unauthorized(_) => false,
            UplinkError::Rejected { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
        }
    }
}

fn build_client() -> anyhow::Result<Client> {
    crate::install_crypto_provider();
    Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("ward-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")
}

async fn call<B: Serialize, R: DeserializeOwned>(
    client: &Client,
    url: &str,
    bearer: Option<&str>,
    body: &B,
) -> Result<R, UplinkError> {
    let mut req = client.post(url).json(body);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| UplinkError::Unreachable(e.to_string()))?;
    finish(resp).await
}

/// Like [`call`], with the JSON body gzip-compressed (`Content-Encoding: gzip`).
async fn call_gzip<B: Serialize, R: DeserializeOwned>(
    client: &Client,
    url: &str,
    bearer: Option<&str>,
    body: &B,
) -> Result<R, UplinkError> {
    use std::io::Write as _;
    let json = serde_json::to_vec(body)
        .map_err(|e| UplinkError::Unreachable(format!("encoding the request: {e}")))?;
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::fast(),
    );
    let gz = gz
        .write_all(&json)
        .and_then(|()| gz.finish())
        .map_err(|e| UplinkError::Unreachable(format!("compressing the request: {e}")))?;
    let mut req = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .body(gz);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| UplinkError::Unreachable(e.to_string()))?;
    finish(resp).await
}

async fn finish<R: DeserializeOwned>(resp: reqwest::Response) -> Result<R, UplinkError> {
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(UplinkError::Unauthorized(status));
    }
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(text);
        return Err(UplinkError::Rejected { status, message });
    }
    resp.json::<R>()
        .await
        .map_err(|e| UplinkError::Unreachable(format!("bad response: {e}")))
}

/// Registers this host with the coordinator named in the token.
pub async fn enroll(token: &EnrollToken, hostname: &str) -> anyhow::Result<Identity> {
    if token.cert_sha256.is_some() {
        anyhow::bail!(
            "this enrollment token pins a TLS certificate, which this agent version cannot verify yet"
        );
    }
    let client = build_client()?;
    let url = format!("{}/api/v1/agents/enroll", token.url.trim_end_matches('/'));
    let resp: EnrollResponse = call(
        &client,
        &url,
        None,
        &EnrollRequest {
            secret: token.secret.clone(),
            hostname: hostname.to_string(),
            version: crate::VERSION.to_string(),
        },
    )
    .await
    .with_context(|| format!("enrolling with {}", token.url))?;
    Ok(Identity {
        server_url: token.url.trim_end_matches('/').to_string(),
        agent_id: resp.agent_id,
        agent_token: resp.agent_token,
        agency: resp.agency,
        cert_sha256: token.cert_sha256.clone(),
    })
}

/// An enrolled agent's connection to its coordinator.
#[derive(Clone)]
pub struct Uplink {
    client: Client,
    identity: Identity,
}

impl Uplink {
    /// A client speaking as `identity`.
    pub fn new(identity: Identity) -> anyhow::Result<Self> {
        Ok(Uplink {
            client: build_client()?,
            identity,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/{path}", self.identity.server_url)
    }

    /// Sends alerts and gap records, gzip-compressed; `Ok` means the
    /// coordinator stored every one of them.
    pub async fn send_alerts(&self, batch: &AlertBatch) -> Result<IngestAck, UplinkError> {
        call_gzip(
            &self.client,
            &self.url("agent/alerts"),
            Some(&self.identity.agent_token),
            batch,
        )
        .await
    }

    /// Reports health.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<(), UplinkError> {
        call::<_, serde_json::Value>(
            &self.client,
            &self.url("agent/heartbeat"),
            Some(&self.identity.agent_token),
            hb,
        )
        .await
        .map(|_| ())
    }
}
