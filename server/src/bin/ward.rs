//! `ward`: the responders' and admins' command line, a client of the
//! coordinator's HTTP API.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use ward_server::client::{ApiClient, IncidentFilter};
use ward_server::model::{
    ActionRequest, EnrollTokenRequest, Incident, IncidentDetail, NewTokenResponse, NewUserRequest,
    Status,
};
use ward_server::store::NewWebhook;

#[derive(Parser)]
#[command(
    name = "ward",
    version,
    about = "Ward command line for responders and admins"
)]
struct Cli {
    /// Coordinator base URL.
    #[arg(
        long,
        global = true,
        env = "WARD_SERVER",
        default_value = "https://127.0.0.1:8443"
    )]
    server: String,
    /// API token (default: read WARD_TOKEN).
    #[arg(long, global = true, env = "WARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM certificate to trust for the coordinator's TLS.
    #[arg(long, global = true, env = "WARD_CA")]
    ca: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enrollment tokens for new agents.
    #[command(subcommand, name = "enroll-token")]
    EnrollToken(EnrollTokenCmd),
    /// The agent fleet.
    #[command(subcommand)]
    Agents(AgentsCmd),
    /// Single alerts.
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// The incident queue and triage.
    #[command(subcommand)]
    Incidents(IncidentsCmd),
    /// Gap records: what agents had to drop (full spool, capture drops, engine state evictions).
    #[command(subcommand)]
    Gaps(GapsCmd),
    /// Users and their roles (admins).
    #[command(subcommand)]
    Users(UsersCmd),
    /// The signed rule bundle served to agents.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// API tokens (admins).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// The audit log of triage and admin actions and denied attempts (admins).
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Drills: replay attack scenarios through sandboxed agents and score
    /// what Ward saw.
    #[command(subcommand)]
    Drill(DrillCmd),
    /// Campaigns: one attacker seen on several hosts or agencies.
    #[command(subcommand)]
    Campaigns(CampaignsCmd),
    /// Webhooks on new incidents and status changes (admins).
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// Agencies and their profiles (what the regulatory reports need).
    #[command(subcommand)]
    Agencies(AgenciesCmd),
    /// Provinces forwarding their incidents to this (national) coordinator
    /// (unscoped admins).
    #[command(subcommand)]
    Provinces(ProvincesCmd),
    /// The link of this (provincial) coordinator to its upstream (admins).
    #[command(subcommand)]
    Federation(FederationCmd),
    /// An incident's report: Circular 20/2017 form 03 (initial) or 04
    /// (end of response) as Markdown or printable HTML, or the incident as
    /// JSON or a STIX 2.1 bundle.
    Report {
        /// Incident id.
        id: i64,
        /// 03, 04, json or stix.
        #[arg(long, value_parser = ["03", "04", "json", "stix"])]
        form: String,
        /// Forms 03/04 as a self-contained HTML page that prints on A4.
        #[arg(long, conflicts_with = "pdf")]
        html: bool,
        /// Forms 03/04 as PDF (the printable page printed by a headless
        /// Chromium, or the browser in WARD_CHROMIUM); needs --output.
        #[arg(long, requires = "output")]
        pdf: bool,
        /// Write it to a file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum AgenciesCmd {
    /// Agencies seen in agents or incidents or given a profile.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// An agency's profile.
    Show {
        /// The agency's name (as agents and incidents carry it).
        name: String,
        #[command(flatten)]
        out: Output,
    },
    /// Set fields of an agency's profile (admins); fields not given keep
    /// their value, an empty value clears one.
    Set(Box<SetProfile>),
}

#[derive(Args)]
struct SetProfile {
    /// The agency's name (as agents and incidents carry it).
    name: String,
    /// Official name of the unit operating the system.
    #[arg(long)]
    full_name: Option<String>,
    /// The governing body (cơ quan chủ quản).
    #[arg(long)]
    governing_body: Option<String>,
    /// Postal address.
    #[arg(long)]
    address: Option<String>,
    /// Contact person's name.
    #[arg(long)]
    contact_name: Option<String>,
    /// Contact person's position.
    #[arg(long)]
    contact_role: Option<String>,
    /// Contact person's phone.
    #[arg(long)]
    contact_phone: Option<String>,
    /// Contact person's e-mail.
    #[arg(long)]
    contact_email: Option<String>,
    /// The information system's name.
    #[arg(long)]
    system_name: Option<String>,
    /// Security level 1 to 5 (Decree 85/2016/NĐ-CP); 0 clears it.
    #[arg(long)]
    security_level: Option<u8>,
    /// Public IP addresses and domains, comma-separated (replaces the list;
    /// empty clears it).
    #[arg(long, value_delimiter = ',')]
    public_assets: Option<Vec<String>>,
    /// Report recipients' e-mails, comma-separated (replaces the list).
    #[arg(long, value_delimiter = ',')]
    report_to: Option<Vec<String>>,
    #[command(flatten)]
    out: Output,
}

#[derive(Subcommand)]
enum DrillCmd {
    /// Run a scenario (a scenario.yml or its directory) and print its
    /// scorecard. Exit 0 when every expectation is met with no false alarm,
    /// 1 when not, 2 when the scenario is invalid.
    Run {
        /// The scenario file or directory.
        scenario: std::path::PathBuf,
        /// Play it offline through the engine on a virtual clock (no
        /// coordinator, no agents).
        #[arg(long)]
        offline: bool,
        /// The ward-agent binary for the sandboxed agents (default: next to
        /// this program, then PATH).
        #[arg(long, env = "WARD_AGENT_BIN")]
        agent_bin: Option<std::path::PathBuf>,
        /// Keep the sandbox (agents' state, logs and configs) afterwards.
        #[arg(long)]
        keep: bool,
        /// Show progress even when stderr is not a terminal.
        #[arg(long)]
        progress: bool,
        /// Seconds the runner's lease on the coordinator lasts; it is renewed
        /// every third of it, and a drill whose runner stops renewing is
        /// abandoned and its agents retired.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(3..=3600))]
        lease_secs: u32,
        #[command(flatten)]
        out: Output,
    },
    /// List drills kept on the coordinator.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Show a drill's scorecard (responders' times as of now).
    Show {
        /// Drill id.
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Print a drill's after-action report (Markdown, or HTML with --html).
    Report {
        /// Drill id.
        id: String,
        /// The report as an HTML page instead of Markdown.
        #[arg(long)]
        html: bool,
        /// Write it to a file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum GapsCmd {
    /// List gap records, most recent first.
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// The served bundle: version, rule count, rules directory, last reload error.
    Show {
        #[command(flatten)]
        out: Output,
    },
    /// Read the rules directory again and serve it re-signed (admins);
    /// rules that do not load leave the served bundle in place.
    Reload {
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum UsersCmd {
    /// Add a user and print their first API token (shown once).
    Add {
        /// Unique name, e.g. an e-mail address.
        name: String,
        /// admin, responder or viewer.
        #[arg(long, value_parser = ["admin", "responder", "viewer"])]
        role: String,
        /// Limit the user to this agency's incidents and agents (repeatable).
        #[arg(long = "agency")]
        agencies: Vec<String>,
        /// Read a password for the user from stdin (stored as an argon2 hash).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        out: Output,
    },
    /// List users.
    List {
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum TokensCmd {
    /// List API tokens (ids, owners, roles; never the secrets).
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Issue another API token for an existing user.
    Create {
        /// The user.
        user: String,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke an API token: its next request is 401.
    Revoke {
        /// Token id (from `ward tokens list`).
        id: i64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Audit entries, oldest first.
    List {
        /// Only entries after this id.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum EnrollTokenCmd {
    /// Create a token for `ward-agent enroll --token`.
    Create {
        /// Agency the agents belong to.
        #[arg(long)]
        agency: Option<String>,
        /// How many agents may enroll with it.
        #[arg(long)]
        uses: Option<u32>,
        /// Hours until it expires.
        #[arg(long, conflicts_with = "expires")]
        ttl_hours: Option<u32>,
        /// How long it stays valid: 30m, 24h, 7d (default 24h).
        #[arg(long, value_parser = ward_server::serve::parse_duration)]
        expires: Option<u64>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum AlertsCmd {
    /// Download the packets captured with one alert as a pcap file (the
    /// incident page's per-alert download).
    Pcap {
        /// Alert id (see `ward incidents show ID --json`).
        id: String,
        /// Where to write it (`-` for stdout, never a terminal); default:
        /// the name the coordinator suggests, in the current directory.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum AgentsCmd {
    /// List enrolled agents and their health (the fleet: drills' sandboxed
    /// agents only with --drill).
    List {
        /// List drills' sandboxed agents instead: of one drill, or of all
        /// (`--drill` alone or `--drill all`).
        #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "ID")]
        drill: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Revoke an agent: its credential stops working (its next call is 401).
    Revoke {
        /// Agent id (from `ward agents list`).
        id: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum IncidentsCmd {
    /// List incidents, most recently active first (see --sort).
    List {
        /// Only this status (new, acknowledged, contained, resolved, false_positive).
        #[arg(long)]
        status: Option<Status>,
        /// A drill's incidents (its id), or `all` for drills and real ones;
        /// without it only real incidents are listed.
        #[arg(long)]
        drill: Option<String>,
        /// Only at least this severe (low, medium, high, critical).
        #[arg(long)]
        severity: Option<String>,
        /// Only this agency.
        #[arg(long)]
        agency: Option<String>,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Only this rule id.
        #[arg(long)]
        rule: Option<String>,
        /// Only active at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only active at or before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Order: last_seen (default), deadline (nearest Circular 20
        /// reporting deadline first), severity, created.
        #[arg(long)]
        sort: Option<String>,
        /// Only incidents forwarded by this province (national coordinator).
        #[arg(long)]
        province: Option<String>,
        /// Most incidents listed.
        #[arg(long)]
        limit: Option<i64>,
        #[command(flatten)]
        out: Output,
    },
    /// Show one incident with alerts, evidence and timeline.
    Show {
        /// Incident id.
        id: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Download the packets captured with an incident's alerts as a pcap
    /// file for Wireshark or tshark.
    Pcap {
        /// Incident id.
        id: i64,
        /// Where to write it (`-` for stdout, never a terminal); default:
        /// the name the coordinator suggests, in the current directory.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Acknowledge: a responder is on it.
    Ack(Action),
    /// Mark contained.
    Contain(Action),
    /// Resolve.
    Resolve(Action),
    /// Mark as a false positive.
    #[command(name = "false-positive")]
    FalsePositive(Action),
    /// Reopen a resolved incident.
    Reopen(Action),
    /// Assign to a responder.
    Assign {
        /// Incident id.
        id: i64,
        /// Who.
        assignee: String,
        #[command(flatten)]
        out: Output,
    },
    /// Add a note to the timeline.
    Note {
        /// Incident id.
        id: i64,
        /// The note.
        text: String,
        #[command(flatten)]
        out: Output,
    },
    /// Put a label on an incident.
    Tag {
        /// Incident id.
        id: i64,
        /// The label.
        label: String,
        #[command(flatten)]
        out: Output,
    },
    /// Take a label off an incident.
    Untag {
        /// Incident id.
        id: i64,
        /// The label.
        label: String,
        #[command(flatten)]
        out: Output,
    },
    /// Merge an incident into another (its alerts move; later alerts of its
    /// group follow).
    Merge {
        /// The incident merged away.
        id: i64,
        /// The incident that keeps everything.
        #[arg(long)]
        into: i64,
        #[command(flatten)]
        out: Output,
    },
    /// Move some alerts of an incident into a new incident.
    Split {
        /// Incident id.
        id: i64,
        /// Ids of the alerts to move (see `ward incidents show ID --json`).
        #[arg(long = "alert", required = true)]
        alerts: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum CampaignsCmd {
    /// Attackers (address, domain, file hash) seen on several hosts.
    List {
        /// A drill's campaigns (its id), or `all`.
        #[arg(long)]
        drill: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// One campaign with its incidents.
    Show {
        /// Campaign id.
        id: i64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum WebhooksCmd {
    /// Send new incidents and status changes to URL as signed JSON POSTs.
    Add {
        /// The receiver (http:// or https://).
        url: String,
        /// Least severity sent (low, medium, high, critical).
        #[arg(long, default_value = "high")]
        min_severity: String,
        /// Only these events (incident.created, incident.status); default all.
        #[arg(long = "event")]
        events: Vec<String>,
        /// Send drill incidents too.
        #[arg(long)]
        drills: bool,
        #[command(flatten)]
        out: Output,
    },
    /// Webhooks with delivery counts.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Stop a webhook.
    Disable {
        /// Webhook id.
        id: i64,
        #[command(flatten)]
        out: Output,
    },
    /// A webhook's latest deliveries.
    Deliveries {
        /// Webhook id.
        id: i64,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum ProvincesCmd {
    /// Add a province; prints the credential its coordinator forwards with
    /// (`ward-server serve --upstream URL --upstream-token TOKEN`).
    Add {
        /// The province's name (its incidents' tenant here).
        name: String,
        #[command(flatten)]
        out: Output,
    },
    /// Provinces with their incident counts and latest forwards.
    List {
        #[command(flatten)]
        out: Output,
    },
    /// Revoke a province's credential (its incidents stay).
    Revoke {
        /// The province's name.
        name: String,
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Subcommand)]
enum FederationCmd {
    /// The upstream, incidents waiting, the latest success and error.
    Status {
        #[command(flatten)]
        out: Output,
    },
}

#[derive(Args)]
struct Action {
    /// Incident id.
    id: i64,
    /// Reason, recorded in the timeline.
    #[arg(long, short)]
    message: Option<String>,
    #[command(flatten)]
    out: Output,
}

#[derive(Args, Clone, Copy)]
struct Output {
    /// Print JSON on stdout, nothing else.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ward: error: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(Some(code)) => code,
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ward: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<Option<ExitCode>> {
    if let Command::Drill(DrillCmd::Run {
        scenario,
        offline: true,
        out,
        ..
    }) = &cli.command
    {
        return drill_offline(scenario, out.json).map(Some);
    }
    if cli.ca.is_some() && cli.server.starts_with("http://") {
        anyhow::bail!("--ca/WARD_CA given but the server URL is plain http://");
    }
    let token = cli
        .token
        .context("no API token: set WARD_TOKEN or pass --token (the first admin token is in DATA/admin.token)")?;
    let api = ApiClient::new(&cli.server, &token, cli.ca.as_deref())?;
    match cli.command {
        Command::EnrollToken(EnrollTokenCmd::Create {
            agency,
            uses,
            ttl_hours,
            expires,
            out,
        }) => {
            let t = api
                .create_enroll_token(&EnrollTokenRequest {
                    agency,
                    uses,
                    ttl_hours,
                    ttl_seconds: expires,
                    drill_id: None,
                })
                .await?;
            if out.json {
                print_json(&t)?;
            } else {
                println!("{}", t.token);
                eprintln!(
                    "agency '{}', {} use(s), expires {}; on the host run: ward-agent enroll --token TOKEN",
                    t.agency, t.uses, t.expires_at
                );
            }
        }
        Command::Agents(AgentsCmd::List { drill, out }) => {
            let agents = api.agents(drill.as_deref()).await?;
            if out.json {
                return print_json(&agents).map(|()| None);
            }
            println!(
                "{:<18} {:<24} {:<20} {:<8} {:<9} {:>8} {:>13} {:<17} {:<14} {:<13} LAST SEEN",
                "ID",
                "HOST",
                "AGENCY",
                "VERSION",
                "HEALTH",
                "LOST",
                "EV/S ALERT/S",
                "RULES",
                "FILES/YARA",
                "NET DROP Q/K"
            );
            for a in agents {
                let health = match (&a.revoked_at, &a.drill_id) {
                    (Some(_), Some(_)) => "retired",
                    (Some(_), None) => "revoked",
                    (None, _) => a.health.as_str(),
                };
                let seen = a.last_seen.as_deref().unwrap_or("never");
                let seen = match &a.drill_id {
                    Some(d) => format!("{seen}  (drill {d})"),
                    None => seen.to_string(),
                };
                println!(
                    "{:<18} {:<24} {:<20} {:<8} {:<9} {:>8} {:>13} {:<17} {:<14} {:<13} {}",
                    a.id,
                    a.hostname,
                    a.agency,
                    a.version,
                    health,
                    a.gaps.lost,
                    rates_column(a.heartbeat.as_ref()),
                    a.rules_version.as_deref().unwrap_or("-"),
                    files_column(a.heartbeat.as_ref()),
                    capture_column(a.heartbeat.as_ref()),
                    seen
                );
            }
        }
        Command::Alerts(AlertsCmd::Pcap { id, output }) => {
            write_capture(api.alert_pcap(&id).await?, output)?;
        }
        Command::Agents(AgentsCmd::Revoke { id, out }) => {
            let v = api.revoke_agent(&id).await?;
            if out.json {
                print_json(&v)?;
            } else {
                println!("agent {id} revoked; its credential no longer works");
            }
        }
        Command::Incidents(cmd) => incidents(&api, cmd).await?,
        Command::Gaps(GapsCmd::List { agent, out }) => {
            let gaps = api.gaps(agent.as_deref()).await?;
            if out.json {
                return print_json(&gaps).map(|()| None);
            }
            println!(
                "{:<27} {:<18} {:<20} {:<16} {:>8} {:<28} WINDOW",
                "DETECTED", "AGENT", "HOST", "REASON", "LOST", "BY SEVERITY"
            );
            for g in gaps {
                let sev: Vec<String> = g
                    .by_severity
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "{:<27} {:<18} {:<20} {:<16} {:>8} {:<28} {} .. {}",
                    g.detected_at,
                    g.agent_id,
                    g.host,
                    g.reason,
                    g.count,
                    if sev.is_empty() {
                        "-".into()
                    } else {
                        sev.join(",")
                    },
                    g.first_time.as_deref().unwrap_or("-"),
                    g.last_time.as_deref().unwrap_or("-")
                );
                if let Some(d) = &g.detail {
                    println!("    {d}");
                }
            }
        }
        Command::Rules(cmd) => {
            let (v, out) = match cmd {
                RulesCmd::Show { out } => (api.rules().await?, out),
                RulesCmd::Reload { out } => (api.reload_rules().await?, out),
            };
            if out.json {
                return print_json(&v).map(|()| None);
            }
            let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
            println!("version   {}", s("version"));
            if let Some(p) = v["previous"].as_str() {
                println!("previous  {p}");
            }
            println!(
                "rules     {} in {} files",
                v["rules"].as_array().map_or(0, Vec::len),
                v["rule_files"]
            );
            println!("signed at {}", s("signed_at"));
            println!(
                "dir       {}",
                v["dir"].as_str().unwrap_or("(shipped pack)")
            );
            if let Some(e) = v["last_error"].as_str() {
                println!("last reload failed: {e}");
            }
        }
        Command::Users(UsersCmd::Add {
            name,
            role,
            agencies,
            password_stdin,
            out,
        }) => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                Some(line.trim_end_matches(['\n', '\r']).to_string())
            } else {
                None
            };
            let t = api
                .add_user(&NewUserRequest {
                    name,
                    role,
                    agencies,
                    password,
                })
                .await?;
            print_new_token(&t, out)?;
        }
        Command::Users(UsersCmd::List { out }) => {
            let users = api.users().await?;
            if out.json {
                return print_json(&users).map(|()| None);
            }
            println!("{:<28} {:<10} {:<8} AGENCIES", "NAME", "ROLE", "PASSWORD");
            for u in users {
                println!(
                    "{:<28} {:<10} {:<8} {}",
                    u.name,
                    u.role,
                    if u.has_password { "yes" } else { "no" },
                    if u.agencies.is_empty() {
                        "(all)".to_string()
                    } else {
                        u.agencies.join(", ")
                    }
                );
            }
        }
        Command::Tokens(TokensCmd::List { out }) => {
            let tokens = api.tokens().await?;
            if out.json {
                return print_json(&tokens).map(|()| None);
            }
            println!(
                "{:>5}  {:<28} {:<10} {:<28} REVOKED",
                "ID", "USER", "ROLE", "CREATED"
            );
            for t in tokens {
                println!(
                    "{:>5}  {:<28} {:<10} {:<28} {}",
                    t.id,
                    t.user,
                    t.role,
                    t.created_at,
                    t.revoked_at.unwrap_or_else(|| "-".into())
                );
            }
        }
        Command::Tokens(TokensCmd::Create { user, out }) => {
            let t = api.create_token(&user).await?;
            print_new_token(&t, out)?;
        }
        Command::Tokens(TokensCmd::Revoke { id, out }) => {
            let v = api.revoke_token(id).await?;
            if out.json {
                print_json(&v)?;
            } else {
                println!("token {id} revoked");
            }
        }
        Command::Audit(AuditCmd::List { after, limit, out }) => {
            let entries = api.audit(after, limit).await?;
            if out.json {
                return print_json(&entries).map(|()| None);
            }
            for e in entries {
                println!(
                    "{:>6}  {}  {:<20} {:<22} {:<28} {:<6} {:>3}  {:<21} {}",
                    e.id, e.at, e.actor, e.action, e.target, e.outcome, e.status, e.peer, e.detail
                );
            }
        }
        Command::Drill(cmd) => return drill(&api, cmd).await.map(Some),
        Command::Campaigns(cmd) => campaigns(&api, cmd).await?,
        Command::Webhooks(cmd) => webhooks(&api, cmd).await?,
        Command::Agencies(cmd) => agencies(&api, cmd).await?,
        Command::Provinces(cmd) => provinces(&api, cmd).await?,
        Command::Federation(FederationCmd::Status { out }) => {
            let st = api.federation_status().await?;
            if out.json {
                print_json(&st)?;
            } else {
                let none = "-".to_string();
                println!(
                    "upstream:      {}",
                    st.upstream
                        .as_deref()
                        .unwrap_or("none (not started with --upstream)")
                );
                println!(
                    "queued:        {} (oldest {})",
                    st.queued,
                    st.oldest_queued_at.as_ref().unwrap_or(&none)
                );
                println!("forwarded:     {}", st.forwarded);
                println!(
                    "last success:  {}",
                    st.last_success_at.as_ref().unwrap_or(&none)
                );
                match (&st.last_error, &st.last_error_at) {
                    (Some(e), Some(at)) => println!("last error:    {at}  {e}"),
                    _ => println!("last error:    -"),
                }
            }
        }
        Command::Report {
            id,
            form,
            html,
            pdf,
            output,
        } => {
            if (html || pdf) && (form == "json" || form == "stix") {
                anyhow::bail!("--html and --pdf apply to forms 03 and 04 only");
            }
            let text = api.incident_report(id, &form, html || pdf).await?;
            match output {
                Some(p) if pdf => {
                    let page = text.clone();
                    let out = p.clone();
                    tokio::task::spawn_blocking(move || {
                        ward_server::report::pdf::print_html(&page, &out)
                    })
                    .await??;
                    eprintln!(
                        "wrote the form {form} report of incident {id} as PDF to {}",
                        p.display()
                    );
                }
                Some(p) => {
                    std::fs::write(&p, &text)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!(
                        "wrote the form {form} report of incident {id} to {}",
                        p.display()
                    );
                }
                None => println!("{}", text.trim_end_matches('\n')),
            }
        }
    }
    Ok(None)
}

fn load_scenario(path: &std::path::Path) -> Result<ward_agent::drill::Scenario, ExitCode> {
    ward_agent::drill::Scenario::load(path).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!("{} problem(s) found", errors.0.len());
        ExitCode::from(2)
    })
}

fn verdict(card: &ward_agent::drill::score::Scorecard, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        print_json(card)?;
    } else {
        print!("{}", card.to_text());
    }
    Ok(if card.totals.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `ward drill run --offline`: the engine on a virtual clock, no coordinator.
fn drill_offline(path: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let scenario = match load_scenario(path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let pack = ward_agent::engine::RulePack::shipped().map_err(|d| {
        anyhow::anyhow!(
            "the shipped rules do not load: {}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let yara = if scenario.hosts.iter().any(|h| h.watches_files) {
        Some(ward_agent::engine::YaraRules::shipped().map_err(|d| {
            anyhow::anyhow!(
                "the shipped YARA rules do not load: {}",
                d.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?)
    } else {
        None
    };
    let card = ward_agent::drill::offline::run(
        &scenario,
        &pack,
        yara.as_ref(),
        &format!("offline-{}", scenario.name),
    )?;
    verdict(&card, json)
}

/// The ward-agent binary: next to this program, else on PATH.
fn default_agent_bin() -> std::path::PathBuf {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("ward-agent")))
        .filter(|p| p.is_file());
    sibling
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("ward-agent"))
                    .find(|p| p.is_file())
            })
        })
        .unwrap_or_else(|| "ward-agent".into())
}

async fn drill(api: &ApiClient, cmd: DrillCmd) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    match cmd {
        DrillCmd::Run {
            scenario,
            agent_bin,
            keep,
            progress,
            lease_secs,
            out,
            ..
        } => {
            let scenario = match load_scenario(&scenario) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            let opts = ward_server::drill_run::LiveOptions {
                agent_bin: agent_bin.unwrap_or_else(default_agent_bin),
                keep,
                progress: progress || std::io::stderr().is_terminal(),
                start_timeout_s: 60,
                lease_s: lease_secs,
            };
            let card = ward_server::drill_run::run_live(api, &scenario, &opts).await?;
            verdict(&card, out.json)
        }
        DrillCmd::List { out } => {
            let list = api.drills().await?;
            if out.json {
                print_json(&list)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<30} {:<24} {:<9} {:>9} {:>8} {:>6}  STARTED",
                "ID", "SCENARIO", "STATUS", "DETECTED", "F.ALARMS", "INCID."
            );
            for d in list {
                let (det, fa) =
                    d.scorecard
                        .as_ref()
                        .map_or(("-".to_string(), "-".to_string()), |c| {
                            (
                                format!("{}/{}", c.detected, c.expected),
                                c.false_alarms.to_string(),
                            )
                        });
                println!(
                    "{:<30} {:<24} {:<9} {:>9} {:>8} {:>6}  {}",
                    d.id,
                    truncate(&d.scenario, 24),
                    d.status,
                    det,
                    fa,
                    d.incidents,
                    d.started_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        DrillCmd::Show { id, out } => {
            let d = api.drill(&id).await?;
            if out.json {
                print_json(&d)?;
                return Ok(ExitCode::SUCCESS);
            }
            match &d.scorecard {
                Some(c) => print!("{}", c.to_text()),
                None => println!(
                    "Drill {} — scenario {}, {} since {} ({} incidents so far)",
                    d.id, d.scenario, d.status, d.started_at, d.incidents
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        DrillCmd::Report { id, html, output } => {
            let text = api.drill_report(&id, html).await?;
            match output {
                Some(p) => {
                    std::fs::write(&p, &text)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!("wrote the after-action report of {id} to {}", p.display());
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_incidents(list: &[Incident]) {
    let now = chrono::Utc::now();
    println!(
        "{:>5}  {:<8} {:<13} {:<32} {:<16} {:<22} {:>6}  {:<12} LAST SEEN",
        "ID", "SEVERITY", "STATUS", "TITLE", "HOST", "ENTITY", "ALERTS", "REPORT DUE"
    );
    for i in list {
        let entity = i
            .entities
            .get("src_ip")
            .or_else(|| i.entities.values().next())
            .cloned()
            .unwrap_or_default();
        // A forwarded incident's host is named with its province.
        let host = match &i.province {
            Some(p) => format!("{p}/{}", i.host),
            None => i.host.clone(),
        };
        println!(
            "{:>5}  {:<8} {:<13} {:<32} {:<16} {:<22} {:>6}  {:<12} {}",
            i.id,
            i.severity.as_str(),
            i.status.as_str(),
            truncate(&i.title, 32),
            truncate(&host, 16),
            truncate(&entity, 22),
            i.alert_count,
            due_column(i, now),
            i.last_seen
        );
    }
}

/// Time left to the Circular 20/2017 report (`4d 3h`, `overdue 2h`), `-`
/// once the incident is closed.
fn due_column(i: &Incident, now: chrono::DateTime<chrono::Utc>) -> String {
    let Ok(due) = chrono::DateTime::parse_from_rfc3339(&i.report_due) else {
        return "-".into();
    };
    if !i.status.is_open() {
        return "-".into();
    }
    let left = due.with_timezone(&chrono::Utc) - now;
    let span = |d: chrono::Duration| {
        let h = d.num_hours().abs();
        if h >= 24 {
            format!("{}d {}h", h / 24, h % 24)
        } else {
            format!("{h}h {}m", d.num_minutes().abs() % 60)
        }
    };
    if left < chrono::Duration::zero() {
        format!("overdue {}", span(left))
    } else {
        span(left)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn print_detail(d: &IncidentDetail) {
    let i = &d.incident;
    println!("Incident {} — {}", i.id, i.title);
    println!("  severity   {}", i.severity);
    println!("  status     {}", i.status);
    println!("  host       {} ({})", i.host, i.agency);
    println!("  rule       {}", i.rule_id);
    println!("  alerts     {}", i.alert_count);
    println!("  first seen {}", i.first_seen);
    println!("  last seen  {}", i.last_seen);
    if let Some(a) = &i.assignee {
        println!("  assignee   {a}");
    }
    for (k, v) in &i.entities {
        println!("  {k:<10} {v}");
    }
    if !i.tags.is_empty() {
        println!("  tags       {}", i.tags.join(", "));
    }
    if !i.labels.is_empty() {
        println!("  labels     {}", i.labels.join(", "));
    }
    if let Some(c) = i.campaign_id {
        println!("  campaign   {c} (ward campaigns show {c})");
    }
    if let Some(m) = i.merged_into {
        println!("  merged     into incident {m}");
    }
    if i.status.is_open() {
        println!(
            "  report due {} ({})",
            i.report_due,
            due_column(i, chrono::Utc::now())
        );
    }
    println!("\nEvidence (latest alert first):");
    for a in d.alerts.iter().take(5) {
        if a.packet_count > 0 {
            println!(
                "  [{}] {} ({} packets: ward incidents pcap {})",
                a.time, a.title, a.packet_count, i.id
            );
        } else {
            println!("  [{}] {}", a.time, a.title);
        }
        for line in &a.evidence {
            println!("    {line}");
        }
    }
    println!("\nTimeline:");
    for t in &d.timeline {
        println!("  {}  {:<14} {:<12} {}", t.at, t.actor, t.kind, t.detail);
    }
    if let Some(s) = &d.suppression {
        println!("\nTo keep the rule quiet about this entity, add to the agents' config:\n{s}");
    }
}

/// `scanned/matches` from the watcher's counters in a heartbeat, `-` when
/// the agent watches no files (or has not reported yet).
/// Events and alerts per second over the agent's last heartbeat interval.
fn rates_column(heartbeat: Option<&serde_json::Value>) -> String {
    let f = |k: &str| {
        heartbeat
            .and_then(|h| h.get(k))
            .and_then(serde_json::Value::as_f64)
    };
    match (f("events_per_sec"), f("alerts_per_sec")) {
        (Some(e), Some(a)) => format!("{e:.1} {a:.2}"),
        _ => "-".into(),
    }
}

fn files_column(heartbeat: Option<&serde_json::Value>) -> String {
    let n = |k: &str| heartbeat.and_then(|h| h.get(k)).and_then(|v| v.as_u64());
    match (n("files_scanned_total"), n("yara_matches_total")) {
        (Some(scanned), Some(matches)) if scanned > 0 || matches > 0 => {
            format!("{scanned}/{matches}")
        }
        _ => "-".into(),
    }
}

/// `queue/kernel` drops of live capture from a heartbeat (events the
/// engine could not take, frames the kernel dropped before they were
/// read), `-` when the agent captures nothing.
fn capture_column(heartbeat: Option<&serde_json::Value>) -> String {
    let n = |k: &str| heartbeat.and_then(|h| h.get(k)).and_then(|v| v.as_u64());
    match (
        n("packets_total"),
        n("dropped_total"),
        n("capture_kernel_drops_total"),
    ) {
        (Some(p), Some(q), k) if p > 0 || q > 0 || k.unwrap_or(0) > 0 => {
            format!("{q}/{}", k.unwrap_or(0))
        }
        _ => "-".into(),
    }
}

fn print_new_token(t: &NewTokenResponse, out: Output) -> anyhow::Result<()> {
    if out.json {
        return print_json(t);
    }
    println!("{}", t.token);
    eprintln!(
        "API token {} for '{}' ({}{}); it is shown only this once",
        t.token_id,
        t.user,
        t.role,
        if t.agencies.is_empty() {
            String::new()
        } else {
            format!(", agencies {}", t.agencies.join(", "))
        }
    );
    Ok(())
}

async fn incidents(api: &ApiClient, cmd: IncidentsCmd) -> anyhow::Result<()> {
    let (detail, out) = match cmd {
        IncidentsCmd::List {
            status,
            drill,
            severity,
            agency,
            host,
            rule,
            since,
            until,
            sort,
            province,
            limit,
            out,
        } => {
            let filter = IncidentFilter {
                province,
                status: status.map(|s| s.as_str().to_string()),
                severity,
                agency,
                host,
                rule,
                since,
                until,
                drill,
                sort,
                limit,
            };
            let list = api.list_incidents(&filter).await?;
            if out.json {
                return print_json(&list);
            }
            print_incidents(&list);
            return Ok(());
        }
        IncidentsCmd::Show { id, out } => (api.incident(id).await?, out),
        IncidentsCmd::Pcap { id, output } => {
            return write_capture(api.incident_pcap(id).await?, output);
        }
        IncidentsCmd::Ack(a) => act(api, "ack", a).await?,
        IncidentsCmd::Contain(a) => act(api, "contain", a).await?,
        IncidentsCmd::Resolve(a) => act(api, "resolve", a).await?,
        IncidentsCmd::FalsePositive(a) => act(api, "false-positive", a).await?,
        IncidentsCmd::Reopen(a) => act(api, "reopen", a).await?,
        IncidentsCmd::Assign { id, assignee, out } => {
            let req = ActionRequest {
                assignee: Some(assignee),
                ..ActionRequest::default()
            };
            (api.act(id, "assign", &req).await?, out)
        }
        IncidentsCmd::Note { id, text, out } => (act_text(api, id, "note", text).await?, out),
        IncidentsCmd::Tag { id, label, out } => (act_text(api, id, "tag", label).await?, out),
        IncidentsCmd::Untag { id, label, out } => (act_text(api, id, "untag", label).await?, out),
        IncidentsCmd::Merge { id, into, out } => {
            let req = ActionRequest {
                into: Some(into),
                ..ActionRequest::default()
            };
            (api.act(id, "merge", &req).await?, out)
        }
        IncidentsCmd::Split { id, alerts, out } => {
            let req = ActionRequest {
                alert_ids: alerts,
                ..ActionRequest::default()
            };
            (api.act(id, "split", &req).await?, out)
        }
    };
    if out.json {
        print_json(&detail)
    } else {
        print_detail(&detail);
        Ok(())
    }
}

/// Writes a downloaded capture to `output` (`-`: stdout), or to the name
/// the coordinator suggested.
fn write_capture(
    capture: ward_server::client::Capture,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let to_stdout = output.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if to_stdout && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to write a binary capture to a terminal: give -o FILE or redirect stdout"
        );
    }
    let omitted = if capture.omitted > 0 {
        format!(
            "; {} later packets left out at the coordinator's size cap",
            capture.omitted
        )
    } else {
        String::new()
    };
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(&capture.bytes)?;
        out.flush()?;
        eprintln!(
            "wrote {} packets ({} bytes) to stdout{omitted}",
            capture.packets,
            capture.bytes.len()
        );
        return Ok(());
    }
    let path = output.unwrap_or_else(|| capture.filename.clone().into());
    std::fs::write(&path, &capture.bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} packets ({} bytes) to {}{omitted}",
        capture.packets,
        capture.bytes.len(),
        path.display()
    );
    Ok(())
}

/// An action whose body is only `text` (a note, a label).
async fn act_text(
    api: &ApiClient,
    id: i64,
    action: &str,
    text: String,
) -> anyhow::Result<IncidentDetail> {
    let req = ActionRequest {
        text: Some(text),
        ..ActionRequest::default()
    };
    api.act(id, action, &req).await
}

async fn campaigns(api: &ApiClient, cmd: CampaignsCmd) -> anyhow::Result<()> {
    match cmd {
        CampaignsCmd::List { drill, out } => {
            let list = api.campaigns(drill.as_deref()).await?;
            if out.json {
                return print_json(&list);
            }
            println!(
                "{:>5}  {:<7} {:<40} {:<8} {:>5} {:>8} {:>9}  LAST SEEN",
                "ID", "KIND", "ATTACKER", "SEVERITY", "HOSTS", "AGENCIES", "INCIDENTS"
            );
            for c in list {
                println!(
                    "{:>5}  {:<7} {:<40} {:<8} {:>5} {:>8} {:>9}  {}",
                    c.id,
                    c.kind,
                    truncate(&c.value, 40),
                    c.severity.as_str(),
                    c.hosts.len(),
                    c.agencies.len(),
                    c.incident_ids.len(),
                    c.last_seen
                );
            }
        }
        CampaignsCmd::Show { id, out } => {
            let d = api.campaign(id).await?;
            if out.json {
                return print_json(&d);
            }
            let c = &d.campaign;
            println!("Campaign {} — {} {}", c.id, c.kind, c.value);
            println!("  severity   {}", c.severity);
            println!("  open       {}", if c.open { "yes" } else { "no" });
            println!("  hosts      {}", c.hosts.join(", "));
            println!("  agencies   {}", c.agencies.join(", "));
            println!("  first seen {}", c.first_seen);
            println!("  last seen  {}\n", c.last_seen);
            print_incidents(&d.incidents);
        }
    }
    Ok(())
}

async fn provinces(api: &ApiClient, cmd: ProvincesCmd) -> anyhow::Result<()> {
    let (list, out) = match cmd {
        ProvincesCmd::Add { name, out } => {
            let p = api.add_province(&name).await?;
            if out.json {
                return print_json(&p);
            }
            println!("{}", p.token);
            eprintln!(
                "province {} added; the line above is its credential (shown once): start its \
                 coordinator with --upstream {} --upstream-token TOKEN",
                p.province.name,
                api.base()
            );
            return Ok(());
        }
        ProvincesCmd::List { out } => (api.provinces().await?, out),
        ProvincesCmd::Revoke { name, out } => (api.revoke_province(&name).await?, out),
    };
    if out.json {
        return print_json(&list);
    }
    println!(
        "{:<24} {:>9}  {:<27}  STATE",
        "PROVINCE", "INCIDENTS", "LAST FORWARD"
    );
    for p in list {
        println!(
            "{:<24} {:>9}  {:<27}  {}",
            truncate(&p.name, 24),
            p.incidents,
            p.last_forward_at.as_deref().unwrap_or("never"),
            if p.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            }
        );
    }
    Ok(())
}

async fn webhooks(api: &ApiClient, cmd: WebhooksCmd) -> anyhow::Result<()> {
    let list = match cmd {
        WebhooksCmd::Add {
            url,
            min_severity,
            events,
            drills,
            out,
        } => {
            let min_severity = min_severity
                .parse()
                .map_err(|e: String| anyhow::anyhow!(e))?;
            let w = api
                .add_webhook(&NewWebhook {
                    url,
                    min_severity,
                    events,
                    drills,
                })
                .await?;
            if out.json {
                return print_json(&w);
            }
            println!("{}", w.secret);
            eprintln!(
                "webhook {} added for {}; the line above is its signing secret (shown once): \
                 receivers check X-Ward-Signature = sha256=HMAC-SHA256(secret, X-Ward-Timestamp + \".\" + body)",
                w.webhook.id, w.webhook.url
            );
            return Ok(());
        }
        WebhooksCmd::List { out } => (api.webhooks().await?, out),
        WebhooksCmd::Disable { id, out } => (api.disable_webhook(id).await?, out),
        WebhooksCmd::Deliveries { id, out } => {
            let d = api.webhook_deliveries(id).await?;
            if out.json {
                return print_json(&d);
            }
            println!(
                "{:>7}  {:<17} {:>8} {:>8}  {:<10} LAST ERROR",
                "ID", "EVENT", "INCIDENT", "ATTEMPTS", "STATE"
            );
            for x in d {
                let state = match (&x.delivered_at, &x.failed_at) {
                    (Some(_), _) => "delivered",
                    (_, Some(_)) => "failed",
                    _ => "pending",
                };
                println!(
                    "{:>7}  {:<17} {:>8} {:>8}  {:<10} {}",
                    x.id,
                    x.event,
                    x.incident_id,
                    x.attempts,
                    state,
                    x.last_error.as_deref().unwrap_or("")
                );
            }
            return Ok(());
        }
    };
    let (list, out) = list;
    if out.json {
        return print_json(&list);
    }
    println!(
        "{:>4}  {:<48} {:<8} {:>7} {:>9} {:>6}  STATE",
        "ID", "URL", "MIN SEV", "PENDING", "DELIVERED", "FAILED"
    );
    for w in list {
        println!(
            "{:>4}  {:<48} {:<8} {:>7} {:>9} {:>6}  {}",
            w.id,
            truncate(&w.url, 48),
            w.min_severity.as_str(),
            w.pending,
            w.delivered,
            w.failed,
            if w.disabled_at.is_some() {
                "disabled"
            } else {
                "active"
            }
        );
    }
    Ok(())
}

async fn act(api: &ApiClient, action: &str, a: Action) -> anyhow::Result<(IncidentDetail, Output)> {
    let req = ActionRequest {
        text: a.message,
        ..ActionRequest::default()
    };
    Ok((api.act(a.id, action, &req).await?, a.out))
}

async fn agencies(api: &ApiClient, cmd: AgenciesCmd) -> anyhow::Result<()> {
    match cmd {
        AgenciesCmd::List { out } => {
            let list = api.agencies().await?;
            if out.json {
                return print_json(&list);
            }
            println!(
                "{:<28} {:>6} {:>9} {:>6}  {:<5}  SYSTEM",
                "AGENCY", "AGENTS", "INCIDENTS", "OPEN", "LEVEL"
            );
            for a in list {
                let p = a.profile.as_ref().map(|p| &p.fields);
                println!(
                    "{:<28} {:>6} {:>9} {:>6}  {:<5}  {}",
                    truncate(&a.name, 28),
                    a.agents,
                    a.incidents,
                    a.open_incidents,
                    p.and_then(|p| p.security_level)
                        .map_or("-".to_string(), |l| l.to_string()),
                    p.and_then(|p| p.system_name.as_deref())
                        .unwrap_or(if a.profile.is_some() {
                            "-"
                        } else {
                            "(no profile)"
                        })
                );
            }
            Ok(())
        }
        AgenciesCmd::Show { name, out } => {
            let profile = api.agency_profile(&name).await?.with_context(|| {
                format!("agency '{name}' has no profile (set one with: ward agencies set '{name}' --full-name ...)")
            })?;
            if out.json {
                return print_json(&profile);
            }
            print_profile(&profile);
            Ok(())
        }
        AgenciesCmd::Set(set) => {
            let mut f = api
                .agency_profile(&set.name)
                .await?
                .map(|p| p.fields)
                .unwrap_or_default();
            let text = |new: Option<String>, old: &mut Option<String>| {
                if let Some(v) = new {
                    *old = Some(v).filter(|v| !v.trim().is_empty());
                }
            };
            text(set.full_name, &mut f.full_name);
            text(set.governing_body, &mut f.governing_body);
            text(set.address, &mut f.address);
            text(set.contact_name, &mut f.contact_name);
            text(set.contact_role, &mut f.contact_role);
            text(set.contact_phone, &mut f.contact_phone);
            text(set.contact_email, &mut f.contact_email);
            text(set.system_name, &mut f.system_name);
            if let Some(l) = set.security_level {
                f.security_level = (l != 0).then_some(l);
            }
            if let Some(a) = set.public_assets {
                f.public_assets = a;
            }
            if let Some(r) = set.report_to {
                f.report_to = r;
            }
            let stored = api.put_agency_profile(&set.name, &f).await?;
            if set.out.json {
                return print_json(&stored);
            }
            print_profile(&stored);
            Ok(())
        }
    }
}

fn print_profile(p: &ward_server::agency::AgencyProfile) {
    let f = &p.fields;
    let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
    let list = |x: &[String]| {
        if x.is_empty() {
            "-".to_string()
        } else {
            x.join(", ")
        }
    };
    println!("Agency {}", p.agency);
    println!("  full name       {}", v(&f.full_name));
    println!("  governing body  {}", v(&f.governing_body));
    println!("  address         {}", v(&f.address));
    println!(
        "  contact         {} ({}), {}, {}",
        v(&f.contact_name),
        v(&f.contact_role),
        v(&f.contact_phone),
        v(&f.contact_email)
    );
    println!("  system          {}", v(&f.system_name));
    println!(
        "  security level  {}",
        f.security_level.map_or("-".to_string(), |l| l.to_string())
    );
    println!("  public assets   {}", list(&f.public_assets));
    println!("  report to       {}", list(&f.report_to));
    println!("  updated         {} by {}", p.updated_at, p.updated_by);
}
