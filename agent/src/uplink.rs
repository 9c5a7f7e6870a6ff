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

/// Trusts exactly one certificate: the coordinator's, named by the SHA-256
/// of its DER that the enrollment token carries. Host names and issuers do
/// not matter; the handshake signatures are still verified with the
/// provider's algorithms, so only the holder of that certificate's key can
/// answer.
#[derive(Debug)]
struct PinnedCert {
    pin: [u8; 32],
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use sha2::Digest as _;
        let got: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            let msg = format!(
                "the coordinator's TLS certificate (sha256 {}) is not the one pinned at enrollment (sha256 {}); refusing to talk to it",
                hex::encode(got),
                hex::encode(self.pin)
            );
            tracing::error!("{msg}");
            Err(rustls::Error::General(msg))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Parses a pin: 64 hex digits (colons allowed, as `openssl x509 -fingerprint` prints).
pub fn parse_pin(pin: &str) -> anyhow::Result<[u8; 32]> {
    let clean: String = pin.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(clean.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            anyhow::anyhow!("the certificate pin '{pin}' is not a SHA-256 (64 hex digits)")
        })?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// The agent's HTTP client. With a pin it trusts only the pinned
/// certificate (and refuses plain `http://`); without one, the system roots.
pub fn build_client(pin: Option<&str>) -> anyhow::Result<Client> {
    crate::install_crypto_provider();
    let mut builder = Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("ward-agent/", env!("CARGO_PKG_VERSION")));
    if let Some(pin) = pin {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = PinnedCert {
            pin: parse_pin(pin)?,
            algorithms: provider.signature_verification_algorithms,
        };
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        builder = builder.tls_backend_preconfigured(tls).https_only(true);
    }
    builder.build().context("building the HTTP client")
}

/// A reqwest error with its causes (the TLS reason is several levels down).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
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
        .map_err(|e| UplinkError::Unreachable(describe(&e)))?;
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
        .map_err(|e| UplinkError::Unreachable(describe(&e)))?;
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
    let client = build_client(token.cert_sha256.as_deref())?;
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
        bundle_key: resp.bundle_key,
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
            client: build_client(identity.cert_sha256.as_deref())?,
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

    /// The coordinator's signed rule bundle (verify it before use).
    pub async fn rule_bundle(&self) -> Result<crate::bundle::SignedBundle, UplinkError> {
        self.rule_bundle_newer_than(None)
            .await?
            .ok_or_else(|| UplinkError::Unreachable("no bundle in the answer".into()))
    }

    /// The coordinator's signed rule bundle unless its version is `have`
    /// (`None`: the coordinator answered 304 Not Modified).
    pub async fn rule_bundle_newer_than(
        &self,
        have: Option<&str>,
    ) -> Result<Option<crate::bundle::SignedBundle>, UplinkError> {
        let mut url = reqwest::Url::parse(&self.url("agent/bundle"))
            .map_err(|e| UplinkError::Unreachable(format!("bad coordinator URL: {e}")))?;
        if let Some(v) = have {
            url.query_pairs_mut().append_pair("have", v);
        }
        let resp = self
            .client
            .get(url)
            .bearer_auth(&self.identity.agent_token)
            .send()
            .await
            .map_err(|e| UplinkError::Unreachable(describe(&e)))?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        finish(resp).await.map(Some)
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
