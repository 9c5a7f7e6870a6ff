//! A typed client of the coordinator's API, used by the `ward` CLI.

use std::time::Duration;

use anyhow::Context;
use reqwest::{Client, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::webhooks::NewWebhookResponse;
use crate::model::{
    ActionRequest, AgentInfo, AuditEntry, Campaign, CampaignDetail, DrillRecord,
    EnrollTokenRequest, EnrollTokenResponse, FederationStatus, FinishDrill, GapRecord, Incident,
    IncidentDetail, NewDrill, NewProvince, NewProvinceResponse, NewTokenResponse, NewUserRequest,
    ProvinceInfo, TokenInfo, UserInfo,
};
use crate::store::{NewWebhook, WebhookDelivery, WebhookInfo};

/// Filters and order of `GET /api/v1/incidents` (all optional).
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Status.
    pub status: Option<String>,
    /// Least severity.
    pub severity: Option<String>,
    /// Agency.
    pub agency: Option<String>,
    /// Host.
    pub host: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// Active since (RFC 3339).
    pub since: Option<String>,
    /// Active until (RFC 3339).
    pub until: Option<String>,
    /// A drill id or `all`.
    pub drill: Option<String>,
    /// `last_seen`, `deadline`, `severity` or `created`.
    pub sort: Option<String>,
    /// Only incidents forwarded by this province.
    pub province: Option<String>,
    /// Most rows.
    pub limit: Option<i64>,
}

impl IncidentFilter {
    fn path(&self) -> String {
        let limit = self.limit.map(|l| l.to_string());
        let params = [
            ("status", &self.status),
            ("severity", &self.severity),
            ("agency", &self.agency),
            ("host", &self.host),
            ("rule", &self.rule),
            ("since", &self.since),
            ("until", &self.until),
            ("drill", &self.drill),
            ("sort", &self.sort),
            ("province", &self.province),
            ("limit", &limit),
        ];
        let query: Vec<String> = params
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| format!("{k}={}", seg(v))))
            .collect();
        if query.is_empty() {
            "incidents".to_string()
        } else {
            format!("incidents?{}", query.join("&"))
        }
    }
}

/// An error answer of the coordinator (4xx, 5xx) with its message.
#[derive(Debug)]
pub struct ApiStatus {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `error` of the JSON body (or the body).
    pub message: String,
}

impl std::fmt::Display for ApiStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == StatusCode::UNAUTHORIZED {
            write!(
                f,
                "the coordinator rejected the API token: {}",
                self.message
            )
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
    }
}

impl std::error::Error for ApiStatus {}

/// The HTTP status of the coordinator's answer behind `e`, if it was one.
pub fn status_of(e: &anyhow::Error) -> Option<u16> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ApiStatus>())
        .map(|s| s.status.as_u16())
}

/// A capture file downloaded from the coordinator.
#[derive(Debug)]
pub struct Capture {
    /// The file's bytes (pcap, or pcapng when frames of several link types).
    pub bytes: Vec<u8>,
    /// The file name the coordinator suggests (`ward-incident-12.pcap`).
    pub filename: String,
    /// Frames in it.
    pub packets: u64,
    /// Frames left out because the capture reached the coordinator's size cap.
    pub omitted: u64,
}

/// A connection to one coordinator with one API token.
pub struct ApiClient {
    http: Client,
    base: String,
    token: String,
}

impl ApiClient {
    /// A client of `base` (e.g. `https://127.0.0.1:8443`) using `token`,
    /// trusting the system roots and, when given, the PEM certificate(s) in
    /// `ca` (the coordinator's `DATA/tls/cert.pem`).
    pub fn new(base: &str, token: &str, ca: Option<&std::path::Path>) -> anyhow::Result<Self> {
        ward_agent::install_crypto_provider();
        let mut builder = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("ward/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading the CA certificate {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
            if certs.is_empty() {
                anyhow::bail!("{} holds no PEM certificate", path.display());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().context("building the HTTP client")?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        })
    }

    /// The coordinator's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends with the token; any answer is returned, whatever its status.
    async fn transmit(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        req.bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))
            .with_context(|| format!("cannot reach the coordinator at {}", self.base))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let resp = self.transmit(req).await?;
        self.check(resp).await
    }

    /// The response when it is a success, else its error as a message.
    async fn check(&self, resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(text);
        Err(ApiStatus {
            status,
            message: msg,
        }
        .into())
    }

    /// The captured frames of an incident's alerts as a capture file.
    pub async fn incident_pcap(&self, id: i64) -> anyhow::Result<Capture> {
        self.capture(
            &format!("incidents/{id}/pcap"),
            format!("ward-incident-{id}.pcap"),
        )
        .await
    }

    /// The captured frames of one alert as a capture file.
    pub async fn alert_pcap(&self, alert_id: &str) -> anyhow::Result<Capture> {
        self.capture(
            &format!("alerts/{}/pcap", seg(alert_id)),
            "ward-alert.pcap".to_string(),
        )
        .await
    }

    /// A capture file at API `path`, named as the coordinator suggests
    /// (when the name is safe) or `fallback`.
    async fn capture(&self, path: &str, fallback: String) -> anyhow::Result<Capture> {
        let url = format!("{}/api/v1/{path}", self.base);
        let resp = self.send(self.http.get(&url)).await?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let filename = header("content-disposition")
            .and_then(|d| {
                d.split_once("filename=")
                    .map(|(_, f)| f.trim_matches('"').to_string())
            })
            .filter(|f| {
                !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && !f.starts_with('.')
            })
            .unwrap_or(fallback);
        let packets = header("x-ward-packets")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let omitted = header("x-ward-packets-omitted")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = resp
            .bytes()
            .await
            .context("reading the capture from the coordinator")?
            .to_vec();
        Ok(Capture {
            bytes,
            filename,
            packets,
            omitted,
        })
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<R> {
        let url = format!("{}/api/v1/{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(req).await?;
        resp.json()
            .await
            .context("reading the coordinator's answer")
    }

    /// Creates an enrollment token.
    pub async fn create_enroll_token(
        &self,
        req: &EnrollTokenRequest,
    ) -> anyhow::Result<EnrollTokenResponse> {
        self.call(Method::POST, "enroll-tokens", Some(req)).await
    }

    /// Lists the fleet's agents, or with `drill` (an id or `all`) drills'
    /// sandboxed agents.
    pub async fn agents(&self, drill: Option<&str>) -> anyhow::Result<Vec<AgentInfo>> {
        let path = match drill {
            Some(d) => format!("agents?drill={}", seg(d)),
            None => "agents".to_string(),
        };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Lists gap records, optionally of one agent.
    pub async fn gaps(&self, agent: Option<&str>) -> anyhow::Result<Vec<GapRecord>> {
        let path = match agent {
            Some(a) => format!("gaps?agent={a}"),
            None => "gaps".to_string(),
        };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Revokes an agent's credential.
    pub async fn revoke_agent(&self, id: &str) -> anyhow::Result<serde_json::Value> {
        self.call::<(), _>(Method::POST, &format!("agents/{}/revoke", seg(id)), None)
            .await
    }

    /// The rule bundle the coordinator serves (`GET /rules`).
    pub async fn rules(&self) -> anyhow::Result<serde_json::Value> {
        self.call::<(), _>(Method::GET, "rules", None).await
    }

    /// Reads the coordinator's rules directory again and re-signs it
    /// (`POST /rules/reload`, admins).
    pub async fn reload_rules(&self) -> anyhow::Result<serde_json::Value> {
        self.call::<(), _>(Method::POST, "rules/reload", None).await
    }

    /// Adds a user; the answer holds their first API token.
    pub async fn add_user(&self, req: &NewUserRequest) -> anyhow::Result<NewTokenResponse> {
        self.call(Method::POST, "users", Some(req)).await
    }

    /// Lists users.
    pub async fn users(&self) -> anyhow::Result<Vec<UserInfo>> {
        self.call::<(), _>(Method::GET, "users", None).await
    }

    /// A new API token for an existing user.
    pub async fn create_token(&self, user: &str) -> anyhow::Result<NewTokenResponse> {
        self.call::<(), _>(Method::POST, &format!("users/{}/tokens", seg(user)), None)
            .await
    }

    /// Lists API tokens.
    pub async fn tokens(&self) -> anyhow::Result<Vec<TokenInfo>> {
        self.call::<(), _>(Method::GET, "tokens", None).await
    }

    /// Revokes an API token.
    pub async fn revoke_token(&self, id: i64) -> anyhow::Result<serde_json::Value> {
        self.call::<(), _>(Method::POST, &format!("tokens/{id}/revoke"), None)
            .await
    }

    /// Audit entries after id `after`.
    pub async fn audit(&self, after: i64, limit: i64) -> anyhow::Result<Vec<AuditEntry>> {
        self.call::<(), _>(
            Method::GET,
            &format!("audit?after={after}&limit={limit}"),
            None,
        )
        .await
    }

    /// Lists incidents, optionally of one status.
    pub async fn incidents(&self, status: Option<&str>) -> anyhow::Result<Vec<Incident>> {
        let f = IncidentFilter {
            status: status.map(str::to_string),
            ..IncidentFilter::default()
        };
        self.list_incidents(&f).await
    }

    /// The incident queue with filters and order.
    pub async fn list_incidents(&self, f: &IncidentFilter) -> anyhow::Result<Vec<Incident>> {
        self.call::<(), _>(Method::GET, &f.path(), None).await
    }

    /// Campaigns: attackers seen on several hosts (of one drill, or `all`).
    pub async fn campaigns(&self, drill: Option<&str>) -> anyhow::Result<Vec<Campaign>> {
        let path = match drill {
            Some(d) => format!("campaigns?drill={}", seg(d)),
            None => "campaigns".to_string(),
        };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// One campaign with its incidents.
    pub async fn campaign(&self, id: i64) -> anyhow::Result<CampaignDetail> {
        self.call::<(), _>(Method::GET, &format!("campaigns/{id}"), None)
            .await
    }

    /// Adds a province (national coordinator); the answer holds its
    /// credential (shown once).
    pub async fn add_province(&self, name: &str) -> anyhow::Result<NewProvinceResponse> {
        let req = NewProvince {
            name: name.to_string(),
        };
        self.call(Method::POST, "provinces", Some(&req)).await
    }

    /// Lists provinces with their incident counts and latest forwards.
    pub async fn provinces(&self) -> anyhow::Result<Vec<ProvinceInfo>> {
        self.call::<(), _>(Method::GET, "provinces", None).await
    }

    /// Revokes a province's credential.
    pub async fn revoke_province(&self, name: &str) -> anyhow::Result<Vec<ProvinceInfo>> {
        self.call::<(), _>(
            Method::POST,
            &format!("provinces/{}/revoke", seg(name)),
            None,
        )
        .await
    }

    /// The link to the upstream coordinator (provincial coordinator).
    pub async fn federation_status(&self) -> anyhow::Result<FederationStatus> {
        self.call::<(), _>(Method::GET, "federation/status", None)
            .await
    }

    /// Adds a webhook; the answer holds its signing secret (shown once).
    pub async fn add_webhook(&self, hook: &NewWebhook) -> anyhow::Result<NewWebhookResponse> {
        self.call(Method::POST, "webhooks", Some(hook)).await
    }

    /// Lists webhooks with their delivery counts.
    pub async fn webhooks(&self) -> anyhow::Result<Vec<WebhookInfo>> {
        self.call::<(), _>(Method::GET, "webhooks", None).await
    }

    /// Stops a webhook.
    pub async fn disable_webhook(&self, id: i64) -> anyhow::Result<Vec<WebhookInfo>> {
        self.call::<(), _>(Method::POST, &format!("webhooks/{id}/disable"), None)
            .await
    }

    /// A webhook's latest deliveries.
    pub async fn webhook_deliveries(&self, id: i64) -> anyhow::Result<Vec<WebhookDelivery>> {
        self.call::<(), _>(Method::GET, &format!("webhooks/{id}/deliveries"), None)
            .await
    }

    /// One incident.
    pub async fn incident(&self, id: i64) -> anyhow::Result<IncidentDetail> {
        self.call::<(), _>(Method::GET, &format!("incidents/{id}"), None)
            .await
    }

    /// A triage action (`ack`, `assign`, `resolve`, `reopen`, `note`, ...).
    pub async fn act(
        &self,
        id: i64,
        action: &str,
        req: &ActionRequest,
    ) -> anyhow::Result<IncidentDetail> {
        self.call(Method::POST, &format!("incidents/{id}/{action}"), Some(req))
            .await
    }

    /// Incidents of one drill (`drill` = its id) or of all drills and real
    /// attacks (`all`), optionally of one status.
    pub async fn drill_incidents(
        &self,
        drill: &str,
        status: Option<&str>,
    ) -> anyhow::Result<Vec<Incident>> {
        let mut path = format!("incidents?drill={drill}");
        if let Some(s) = status {
            path.push_str(&format!("&status={s}"));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Records a drill about to run.
    pub async fn create_drill(&self, d: &NewDrill) -> anyhow::Result<DrillRecord> {
        self.call(Method::POST, "drills", Some(d)).await
    }

    /// Stores a drill's scorecard.
    pub async fn finish_drill(&self, id: &str, f: &FinishDrill) -> anyhow::Result<DrillRecord> {
        self.call(Method::POST, &format!("drills/{id}/finish"), Some(f))
            .await
    }

    /// Marks a running drill aborted.
    pub async fn abort_drill(&self, id: &str, reason: &str) -> anyhow::Result<DrillRecord> {
        let body = crate::model::AbortDrill {
            reason: reason.to_string(),
        };
        self.call(Method::POST, &format!("drills/{id}/abort"), Some(&body))
            .await
    }

    /// Renews the runner's lease of a running drill.
    pub async fn renew_drill_lease(&self, id: &str, lease_s: u32) -> anyhow::Result<DrillRecord> {
        let body = crate::model::RenewDrillLease {
            lease_s: Some(lease_s),
        };
        self.call(Method::POST, &format!("drills/{id}/lease"), Some(&body))
            .await
    }

    /// Drills, newest first.
    pub async fn drills(&self) -> anyhow::Result<Vec<DrillRecord>> {
        self.call::<(), _>(Method::GET, "drills", None).await
    }

    /// One drill.
    pub async fn drill(&self, id: &str) -> anyhow::Result<DrillRecord> {
        self.call::<(), _>(Method::GET, &format!("drills/{id}"), None)
            .await
    }

    /// Agencies seen in agents or incidents or given a profile.
    pub async fn agencies(&self) -> anyhow::Result<Vec<crate::agency::AgencyInfo>> {
        self.call::<(), _>(Method::GET, "agencies", None).await
    }

    /// An agency's profile; `None` when none is set yet.
    pub async fn agency_profile(
        &self,
        name: &str,
    ) -> anyhow::Result<Option<crate::agency::AgencyProfile>> {
        let url = format!("{}/api/v1/agencies/{}/profile", self.base, seg(name));
        let resp = self.transmit(self.http.get(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            // A known agency without a profile; unknown ones look the same.
            return Ok(None);
        }
        let resp = self.check(resp).await?;
        Ok(Some(
            resp.json()
                .await
                .context("reading the coordinator's answer")?,
        ))
    }

    /// Sets (replaces) an agency's profile (admins).
    pub async fn put_agency_profile(
        &self,
        name: &str,
        fields: &crate::agency::ProfileFields,
    ) -> anyhow::Result<crate::agency::AgencyProfile> {
        self.call(
            Method::PUT,
            &format!("agencies/{}/profile", seg(name)),
            Some(fields),
        )
        .await
    }

    /// An incident's report: `form` is 03, 04, json or stix; `html` asks
    /// forms 03/04 as printable HTML instead of Markdown.
    pub async fn incident_report(&self, id: i64, form: &str, html: bool) -> anyhow::Result<String> {
        let mut url = format!(
            "{}/api/v1/incidents/{id}/report?form={}",
            self.base,
            seg(form)
        );
        if html {
            url.push_str("&format=html");
        }
        let resp = self.send(self.http.get(&url)).await?;
        resp.text()
            .await
            .context("reading the report from the coordinator")
    }

    /// A drill's after-action report (Markdown).
    pub async fn drill_report(&self, id: &str, html: bool) -> anyhow::Result<String> {
        let format = if html { "html" } else { "md" };
        let url = format!("{}/api/v1/drills/{id}/report?format={format}", self.base);
        let resp = self.send(self.http.get(&url)).await?;
        resp.text()
            .await
            .context("reading the report from the coordinator")
    }
}

/// A reqwest error with its causes (a TLS reason is several levels down).
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

/// A URL path segment with everything but unreserved characters escaped.
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
