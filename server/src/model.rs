//! What the coordinator's API returns and the `ward` CLI reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ward_agent::wire::Severity;

/// Where an incident is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not looked at yet.
    New,
    /// A responder is on it.
    Acknowledged,
    /// The attack is stopped; clean-up continues.
    Contained,
    /// Done.
    Resolved,
    /// Not an attack.
    FalsePositive,
}

impl Status {
    /// The name used in JSON, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Acknowledged => "acknowledged",
            Status::Contained => "contained",
            Status::Resolved => "resolved",
            Status::FalsePositive => "false_positive",
        }
    }

    /// Open incidents collect new alerts.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::FalsePositive)
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "new" => Ok(Status::New),
            "acknowledged" | "ack" => Ok(Status::Acknowledged),
            "contained" => Ok(Status::Contained),
            "resolved" => Ok(Status::Resolved),
            "false_positive" => Ok(Status::FalsePositive),
            other => Err(format!(
                "unknown status '{other}' (expected new, acknowledged, contained, resolved or false_positive)"
            )),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An incident: alerts of one rule, host and primary entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    /// Its number.
    pub id: i64,
    /// The rule's title.
    pub title: String,
    /// The rule's id.
    pub rule_id: String,
    /// Highest severity of its alerts.
    pub severity: Severity,
    /// Workflow state.
    pub status: Status,
    /// The host.
    pub host: String,
    /// The host's agency.
    pub agency: String,
    /// Number of alerts.
    pub alert_count: i64,
    /// Event time of the first alert (RFC 3339).
    pub first_seen: String,
    /// Event time of the latest alert (RFC 3339).
    pub last_seen: String,
    /// Entities (`src_ip`, `user`, ...) of its alerts; the first value seen per name.
    pub entities: BTreeMap<String, String>,
    /// ATT&CK and other tags of the rule.
    pub tags: Vec<String>,
    /// Whether it comes from a drill.
    pub drill: bool,
    /// The drill it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<String>,
    /// The responder assigned, if any.
    pub assignee: Option<String>,
    /// When the coordinator created it (the detection time, RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Labels responders put on it (the rule's own are in `tags`).
    #[serde(default)]
    pub labels: Vec<String>,
    /// The campaign it belongs to: its attacker was seen on other hosts.
    #[serde(default)]
    pub campaign_id: Option<i64>,
    /// The incident it was merged into (then it is closed and empty).
    #[serde(default)]
    pub merged_into: Option<i64>,
    /// The Circular 20/2017 reporting deadline: detection plus
    /// [`REPORT_DEADLINE_DAYS`] days (RFC 3339).
    #[serde(default)]
    pub report_due: String,
    /// On a national coordinator: the province that forwarded it (`None`
    /// for this coordinator's own incidents). It belongs to that province:
    /// only the province changes its status.
    #[serde(default)]
    pub province: Option<String>,
    /// The incident's number at its province.
    #[serde(default)]
    pub remote_id: Option<i64>,
}

/// Days from detection within which Circular 20/2017 wants the incident reported.
pub const REPORT_DEADLINE_DAYS: i64 = 5;

/// One attacker identity seen on several hosts, and its incidents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    /// Its number.
    pub id: i64,
    /// `ip`, `domain` or `sha256`.
    pub kind: String,
    /// The address, domain or file hash.
    pub value: String,
    /// The drill it belongs to (drill campaigns never mix with real ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<String>,
    /// Its incidents (visible to the caller), oldest first.
    pub incident_ids: Vec<i64>,
    /// Hosts it touched, in name order.
    pub hosts: Vec<String>,
    /// Agencies it touched, in name order.
    pub agencies: Vec<String>,
    /// Highest severity of its incidents.
    pub severity: Severity,
    /// Whether any of its incidents is open.
    pub open: bool,
    /// Earliest event of its incidents (RFC 3339).
    pub first_seen: String,
    /// Latest event of its incidents (RFC 3339).
    pub last_seen: String,
    /// When the coordinator linked it (RFC 3339).
    pub created_at: String,
}

/// A campaign with its incidents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignDetail {
    /// The campaign.
    #[serde(flatten)]
    pub campaign: Campaign,
    /// Its incidents.
    pub incidents: Vec<Incident>,
}

/// One stored alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Idempotency id from the agent.
    pub id: String,
    /// The agent that sent it.
    pub agent_id: String,
    /// The rule.
    pub rule_id: String,
    /// The rule's title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Event time (RFC 3339).
    pub time: String,
    /// Host.
    pub host: String,
    /// Entities.
    pub entities: BTreeMap<String, String>,
    /// Matching records.
    pub evidence: Vec<String>,
    /// Where the record came from.
    pub source: String,
    /// When the coordinator stored it (RFC 3339).
    pub received_at: String,
    /// Captured frames it carries (`GET /api/v1/alerts/{id}/pcap`).
    #[serde(default)]
    pub packet_count: i64,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When (RFC 3339).
    pub at: String,
    /// Who: a token's name, an agent, or `ward` for automatic entries.
    pub actor: String,
    /// What: created, acknowledged, assigned, resolved, reopened, note, ...
    pub kind: String,
    /// Details (the note, the assignee, ...).
    pub detail: String,
}

/// An incident with its alerts and timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// Its most recent alerts (up to 100), newest first.
    pub alerts: Vec<AlertRecord>,
    /// Its timeline, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// For a false positive: the agent `[[suppress]]` entry that would keep
    /// the rule quiet about this entity (for an admin to add to the config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

/// An enrolled agent as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Its id.
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// Agency.
    pub agency: String,
    /// Agent version.
    pub version: String,
    /// Rule pack version.
    pub rules_version: Option<String>,
    /// Enrollment time (RFC 3339).
    pub enrolled_at: String,
    /// Last contact (RFC 3339).
    pub last_seen: Option<String>,
    /// `online` when seen in the last 90 s, `offline` otherwise, `never` before first contact.
    pub health: String,
    /// The last heartbeat's counters.
    pub heartbeat: Option<serde_json::Value>,
    /// When an admin revoked it (its credential no longer works).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// What the agent reported it had to drop.
    #[serde(default)]
    pub gaps: GapTotals,
    /// The drill whose sandboxed agent it is (drill agents are listed only
    /// when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<String>,
}

/// An agent's gap records, summed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GapTotals {
    /// Gap records received.
    pub records: i64,
    /// Items lost, over all records.
    pub lost: i64,
    /// Items lost per reason (`spool_full`, `capture_dropped`, ...).
    pub by_reason: BTreeMap<String, i64>,
}

/// One stored gap record (`GET /api/v1/gaps`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GapRecord {
    /// The agent's id for the gap.
    pub id: String,
    /// The agent that sent it.
    pub agent_id: String,
    /// Its host.
    pub host: String,
    /// Its agency.
    pub agency: String,
    /// `spool_full`, `capture_dropped`, `state_evicted` or `spool_damaged`.
    pub reason: String,
    /// Alerts, network events or correlation groups lost.
    pub count: i64,
    /// Dropped alerts by severity (`spool_full`).
    pub by_severity: BTreeMap<String, i64>,
    /// Earliest dropped alert's time, or the start of the window (RFC 3339).
    pub first_time: Option<String>,
    /// Latest dropped alert's time, or the end of the window (RFC 3339).
    pub last_time: Option<String>,
    /// When the agent recorded it (RFC 3339).
    pub detected_at: String,
    /// When the coordinator stored it (RFC 3339).
    pub received_at: String,
    /// What else is known (for `rejected`: the refused entry and the coordinator's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Body of `POST /api/v1/enroll-tokens`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrollTokenRequest {
    /// Agency the enrolled agents belong to.
    #[serde(default)]
    pub agency: Option<String>,
    /// How many agents may use it (default 1).
    #[serde(default)]
    pub uses: Option<u32>,
    /// Hours until it expires (default 24).
    #[serde(default)]
    pub ttl_hours: Option<u32>,
    /// Seconds until it expires (instead of `ttl_hours`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// A running drill whose sandboxed agents enroll with it: they carry
    /// the drill's id, stay out of the fleet and are retired with the drill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_id: Option<String>,
}

/// Answer of `POST /api/v1/enroll-tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollTokenResponse {
    /// The token to give `ward-agent enroll --token`.
    pub token: String,
    /// Agency.
    pub agency: String,
    /// Uses allowed.
    pub uses: u32,
    /// Expiry (RFC 3339).
    pub expires_at: String,
}

/// Body of the triage actions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionRequest {
    /// The assignee, for `assign`.
    #[serde(default)]
    pub assignee: Option<String>,
    /// A note or reason; the label for `tag` and `untag`.
    #[serde(default)]
    pub text: Option<String>,
    /// The incident to merge into, for `merge`.
    #[serde(default)]
    pub into: Option<i64>,
    /// The alerts that move to a new incident, for `split`.
    #[serde(default)]
    pub alert_ids: Vec<String>,
}

/// Body of `POST /api/v1/users`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Unique name (also the actor in timelines and the audit log).
    pub name: String,
    /// admin, responder or viewer.
    pub role: String,
    /// Agencies the user is limited to; empty: all.
    #[serde(default)]
    pub agencies: Vec<String>,
    /// Optional password (stored as an argon2id hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Answer of `POST /api/v1/users` and `POST /api/v1/users/{name}/tokens`:
/// the new API token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTokenResponse {
    /// The user.
    pub user: String,
    /// Their role.
    pub role: String,
    /// Agencies they are limited to (empty: all).
    pub agencies: Vec<String>,
    /// The token's id (for `ward tokens revoke`).
    pub token_id: i64,
    /// The API token itself; only its hash is stored.
    pub token: String,
}

/// A user as admins see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Agencies they are limited to (empty: all).
    pub agencies: Vec<String>,
    /// Whether a password is set.
    pub has_password: bool,
    /// Who created them.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
}

/// An API token as admins see it (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id.
    pub id: i64,
    /// The user it belongs to (or the token's own name).
    pub user: String,
    /// Role.
    pub role: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Revoked (RFC 3339), if so.
    pub revoked_at: Option<String>,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who: a user name, `agent:ID`, or `unknown`.
    pub actor: String,
    /// What, e.g. `incident.resolve`, `user.add`, `agent.revoke`, `denied`.
    pub action: String,
    /// On what, e.g. `incident:12`.
    pub target: String,
    /// `ok` or `denied`.
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The client's address.
    pub peer: String,
    /// More about it.
    pub detail: String,
}

/// Body of `POST /api/v1/drills`: a drill about to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewDrill {
    /// The scenario's name.
    pub scenario: String,
    /// What it plays.
    #[serde(default)]
    pub description: String,
    /// The scenario file as run.
    #[serde(default)]
    pub source: String,
    /// Seconds the runner's lease lasts before it must renew it
    /// (`POST /drills/{id}/lease`); default 60, at most 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<u32>,
}

/// Body of `POST /api/v1/drills/{id}/lease`: the runner is alive.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RenewDrillLease {
    /// Seconds the renewed lease lasts (default 60, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<u32>,
}

/// Body of `POST /api/v1/drills/{id}/abort`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AbortDrill {
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Body of `POST /api/v1/drills/{id}/finish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishDrill {
    /// The runner's scorecard.
    pub scorecard: ward_agent::drill::score::Scorecard,
}

/// A drill kept on the coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    /// Its id (alerts and incidents carry it as `drill_id`).
    pub id: String,
    /// The scenario's name.
    pub scenario: String,
    /// What it plays.
    pub description: String,
    /// `running`, `finished`, `aborted`, or `abandoned` (its runner stopped
    /// renewing its lease; `finished_at` is when the lease ran out).
    pub status: String,
    /// Why it was aborted or abandoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who started it (the API token's name).
    pub started_by: String,
    /// When (RFC 3339).
    pub started_at: String,
    /// When the runner finished scoring it (RFC 3339).
    pub finished_at: Option<String>,
    /// Its incidents so far.
    #[serde(default)]
    pub incidents: i64,
    /// The scorecard (finished drills), with responders' acknowledge and
    /// resolve times as of now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorecard: Option<ward_agent::drill::score::Scorecard>,
    /// The scenario file (in `GET /drills/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Running drills: when the runner's lease ends (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<String>,
    /// When the runner last renewed its lease (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<String>,
}

/// Body of `POST /api/v1/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user's name.
    pub name: String,
    /// Their password.
    pub password: String,
}

/// Who is logged in: `GET /api/v1/me`, and with the token the answer of
/// `POST /api/v1/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The user's (or the token's) name.
    pub name: String,
    /// admin, responder or viewer.
    pub role: String,
    /// Agencies they are limited to (empty: all).
    pub agencies: Vec<String>,
    /// When the session ends (RFC 3339); `None` for a token that never expires.
    pub expires_at: Option<String>,
    /// The session token (only in the answer of `POST /api/v1/login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// One rule the coordinator serves, with its hits (`GET /api/v1/rules`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleInfo {
    /// The rule's id (as alerts carry it in `rule_id`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Sigma level (`informational` to `critical`), if set.
    pub level: Option<String>,
    /// ATT&CK and other tags.
    pub tags: Vec<String>,
    /// The file it comes from.
    pub file: String,
    /// `detection` or `correlation`.
    pub kind: String,
    /// Alerts of it in real incidents.
    pub hits: i64,
    /// Event time of its latest alert (RFC 3339).
    pub last_hit: Option<String>,
}

/// Answer of `GET /api/v1/rules`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RulesResponse {
    /// The served bundle's version (`None`: the coordinator serves no bundle).
    pub version: Option<String>,
    /// When it was signed (RFC 3339).
    #[serde(default)]
    pub signed_at: Option<String>,
    /// Sigma rule files in it.
    #[serde(default)]
    pub rule_files: usize,
    /// The rules directory (absent: the shipped pack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Why the last reload failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// For a reload: the version served before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Its rules, by id, with their hits.
    pub rules: Vec<RuleInfo>,
}

/// One attacker identity of an incident (what campaigns link on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attacker {
    /// `ip`, `domain` or `sha256`.
    pub kind: String,
    /// The address, domain or file hash.
    pub value: String,
}

/// An incident as a provincial coordinator forwards it to its national
/// one: the incident's state, never its raw alerts. Unknown fields are
/// ignored, so coordinators of different versions federate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IncidentSnapshot {
    /// Its number at the province.
    pub id: i64,
    /// Raised by every change at the province: a snapshot with a revision
    /// not above the one already applied is ignored.
    pub revision: i64,
    /// The rule's title.
    pub title: String,
    /// The rule's id.
    pub rule_id: String,
    /// Severity.
    pub severity: Severity,
    /// Workflow state at the province.
    pub status: Status,
    /// The host.
    pub host: String,
    /// The host's agency.
    pub agency: String,
    /// Number of alerts.
    pub alert_count: i64,
    /// Event time of the first alert (RFC 3339).
    pub first_seen: String,
    /// Event time of the latest alert (RFC 3339).
    pub last_seen: String,
    /// Entities of its alerts.
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
    /// The rule's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Responders' labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The responder assigned at the province.
    #[serde(default)]
    pub assignee: Option<String>,
    /// Responders' notes so far.
    #[serde(default)]
    pub notes: i64,
    /// The province's incident it was merged into.
    #[serde(default)]
    pub merged_into: Option<i64>,
    /// Detection time at the province (RFC 3339).
    pub created_at: String,
    /// Last change at the province (RFC 3339).
    pub updated_at: String,
    /// Attacker identities of its alerts, for campaigns across provinces.
    #[serde(default)]
    pub attackers: Vec<Attacker>,
}

/// The body of `POST /api/v1/federation/incidents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardBatch {
    /// Snapshots, any order; duplicates and older revisions are harmless.
    pub incidents: Vec<IncidentSnapshot>,
}

/// The national coordinator's answer to a forwarded batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardAck {
    /// Snapshots stored (new incidents or newer revisions).
    pub applied: u64,
    /// Snapshots not newer than what was stored (duplicates, reordering).
    pub ignored: u64,
}

/// The body of `POST /api/v1/provinces`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProvince {
    /// The province's name (the tenant of its incidents here).
    pub name: String,
}

/// A province as the national coordinator's admins see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvinceInfo {
    /// Its name.
    pub name: String,
    /// Who added it.
    pub created_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The latest forward received from it.
    pub last_forward_at: Option<String>,
    /// Incidents it forwarded.
    pub incidents: i64,
    /// When its credential was revoked.
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// A new province and its credential (shown once).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewProvinceResponse {
    /// The province.
    #[serde(flatten)]
    pub province: ProvinceInfo,
    /// The credential its coordinator forwards with (`--upstream-token`).
    pub token: String,
}

/// The link of a provincial coordinator to its upstream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FederationStatus {
    /// The upstream's base URL (`None`: this coordinator forwards nothing).
    pub upstream: Option<String>,
    /// Incidents waiting to be forwarded.
    pub queued: i64,
    /// When the oldest of them was queued.
    pub oldest_queued_at: Option<String>,
    /// The latest batch the upstream accepted.
    pub last_success_at: Option<String>,
    /// The latest failure.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<String>,
    /// Snapshots the upstream accepted so far.
    pub forwarded: i64,
}
