//! `ward-server serve`: data dir, store, first-start admin token, listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt as _;
use tracing::{info, warn};

use crate::api::{AppState, router};
use crate::auth::{API_TOKEN_PREFIX, hash_secret, random_secret};
use crate::store::{Retention, Store};
use crate::tls;

/// File in the data dir holding the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// How often the coordinator prunes alerts past their retention.
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often the coordinator looks for silent agents.
pub const SILENT_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// How to run the coordinator.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Data directory (created on first start).
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Database URL; default: `DATA/ward.db` (SQLite).
    pub database: Option<String>,
    /// Base URL agents use to reach this coordinator; default: derived from `listen`.
    pub public_url: Option<String>,
    /// A PEM certificate chain to serve instead of the generated one.
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (no TLS). Only when asked for explicitly.
    pub insecure_http: bool,
    /// Rule pack served to agents as a signed bundle (default: the shipped one).
    pub rules: Option<PathBuf>,
    /// How long an open incident collects its group's alerts after its
    /// last one (default [`crate::store::DEFAULT_GROUP_WINDOW`]).
    pub group_window: Option<chrono::Duration>,
    /// Days alerts of closed incidents are kept (default: forever).
    pub retain_days: Option<u32>,
    /// The national coordinator this one forwards its incidents to.
    pub upstream: Option<crate::federation::Upstream>,
}

impl ServeOptions {
    /// Options with the defaults: TLS with the generated certificate.
    pub fn new(data: PathBuf, listen: SocketAddr) -> Self {
        ServeOptions {
            data,
            listen,
            database: None,
            public_url: None,
            tls_cert: None,
            tls_key: None,
            insecure_http: false,
            rules: None,
            group_window: None,
            retain_days: None,
            upstream: None,
        }
    }
}

/// `90s`, `30m`, `24h`, `7d` (or plain seconds) into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30m, 24h or 7d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{s}': the unit is s, m, h or d")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too long"))
}

pub use crate::bundles::{BUNDLE_KEY_FILE, Bundles, ServedBundle};

/// Opens the store named by the options: `DATA/ward.db` (SQLite) by
/// default, or a `sqlite:` or `postgres://` URL.
pub async fn open_store(opts: &ServeOptions) -> anyhow::Result<Store> {
    match opts.database.as_deref() {
        None => Store::open_sqlite(&opts.data.join("ward.db"))
            .await
            .context("opening the embedded SQLite database"),
        Some(url) => Store::open_url(url)
            .await
            .with_context(|| format!("opening {}", redact_password(url))),
    }
}

/// A database URL fit for logs: any password replaced by `***`.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates the first admin token when the store has none, and writes it to
/// `DATA/admin.token` (mode 0600). Of replicas starting together on one
/// database only the one whose token the store took writes the file.
async fn ensure_admin_token(store: &Store, data: &Path) -> anyhow::Result<()> {
    if store.api_token_count().await? > 0 {
        return Ok(());
    }
    let token = format!("{API_TOKEN_PREFIX}{}", random_secret());
    if !store
        .add_first_api_token("admin", "admin", &hash_secret(&token))
        .await?
    {
        info!("another replica made the first admin API token");
        return Ok(());
    }
    let path = data.join(ADMIN_TOKEN_FILE);
    ward_agent::sources::write_atomically(&path, format!("{token}\n").as_bytes(), 0o600)?;
    info!(path = %path.display(), "first start: wrote the admin API token");
    Ok(())
}

/// The certificate to serve, or `None` for plain HTTP.
fn tls_material(opts: &ServeOptions) -> anyhow::Result<Option<tls::TlsMaterial>> {
    match (&opts.tls_cert, &opts.tls_key, opts.insecure_http) {
        (Some(_), _, true) | (_, Some(_), true) => {
            anyhow::bail!("--insecure-http cannot be combined with --tls-cert/--tls-key")
        }
        (_, _, true) => Ok(None),
        (Some(cert), Some(key), false) => tls::load_files(cert, key).map(Some),
        (Some(_), None, false) | (None, Some(_), false) => {
            anyhow::bail!("--tls-cert and --tls-key go together")
        }
        (None, None, false) => {
            let host = opts.public_url.as_deref().and_then(tls::url_host);
            let material = tls::load_or_generate(&opts.data, host.as_deref())?;
            if material.generated {
                info!(path = %material.cert_path.display(), "first start: wrote a self-signed TLS certificate");
            }
            Ok(Some(material))
        }
    }
}

/// Prunes alerts past `retention` at start and every [`RETENTION_EVERY`].
async fn keep_pruning(store: Store, retention: Retention) {
    info!(
        days = retention.days,
        "retention: alerts of closed incidents are pruned after {} days", retention.days
    );
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = prune_once(&store, &retention).await {
            warn!(error = %e, "retention: pruning failed");
        }
    }
}

/// One retention pass: prunes, logs and counts what it deleted
/// (`ward_pruned_alerts_total`, `ward_pruned_packets_total` on `/metrics`).
pub async fn prune_once(
    store: &Store,
    retention: &Retention,
) -> Result<crate::store::PruneReport, crate::store::StoreError> {
    let report = store
        .prune_alerts(retention.cutoff(chrono::Utc::now()), retention)
        .await?;
    metrics::counter!("ward_pruned_alerts_total").increment(report.alerts);
    metrics::counter!("ward_pruned_packets_total").increment(report.packets);
    if report.alerts > 0 {
        info!(
            alerts = report.alerts,
            packets = report.packets,
            batches = report.batches,
            "retention: pruned alerts of closed incidents"
        );
    }
    Ok(report)
}

/// Runs the coordinator until `shutdown` resolves.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    create_private_dir(&opts.data)?;
    let mut store = open_store(&opts).await?;
    if let Some(w) = opts.group_window {
        store = store.with_group_window(w);
    }
    ensure_admin_token(&store, &opts.data).await?;
    let forwarder = match &opts.upstream {
        Some(up) => {
            up.check()?;
            Some((up.clone(), crate::federation::client(up.ca.as_deref())?))
        }
        None => None,
    };
    let backlog = store
        .set_upstream(opts.upstream.as_ref().map(|u| u.base()))
        .await
        .context("recording the upstream")?;
    if backlog > 0 {
        tracing::info!(
            incidents = backlog,
            "federation: incidents the upstream has not seen yet are queued for it"
        );
    }
    let tls = tls_material(&opts)?;
    let listener = std::net::TcpListener::bind(opts.listen)
        .with_context(|| format!("listening on {}", opts.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}");
    let public_url = opts.public_url.clone().unwrap_or_else(|| url.clone());
    if tls.is_some() && public_url.starts_with("http://") {
        anyhow::bail!("--public-url {public_url} is plain http:// but the coordinator serves TLS");
    }
    let bundles = Arc::new(Bundles::open(&opts.data, opts.rules.clone())?);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let state = AppState {
        cert_sha256: tls.as_ref().map(|t| Arc::from(t.pin().as_str())),
        metrics,
        bundle: Some(bundles.clone()),
        ..AppState::new(store, &public_url)
    };
    // Changes to `--rules DIR` are re-signed and served (audited).
    let _rules_watcher = crate::bundles::watch(bundles, state.store.clone())?;
    {
        // Silent agents become incidents (and resolve when they are back);
        // drills whose runner stopped renewing its lease are abandoned.
        let store = state.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SILENT_CHECK);
            loop {
                tick.tick().await;
                if let Err(e) = store.check_silent_agents(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "checking for silent agents failed");
                }
                if let Err(e) = store.abandon_expired_drills(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "checking drills' leases failed");
                }
            }
        });
    }
    tokio::spawn(crate::webhook::run(state.store.clone()));
    if let Some((upstream, client)) = forwarder {
        tokio::spawn(crate::federation::run(
            state.store.clone(),
            upstream,
            client,
        ));
    }
    if let Some(days) = opts.retain_days {
        tokio::spawn(keep_pruning(state.store.clone(), Retention::days(days)));
    }
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(material) => {
            let config = material.server_config()?;
            info!(
                data = %opts.data.display(),
                cert = %material.cert_path.display(),
                cert_sha256 = %material.pin(),
                "listening on {url}"
            );
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            // TCP_NODELAY: a response goes out as several small TLS
            // records; with Nagle's algorithm the later ones waited for the
            // client's delayed ACK, about 40 ms, on a tenth of all requests.
            axum_server::from_tcp_rustls(
                listener,
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
            )?
            .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()))
            .handle(handle)
            .serve(app)
            .await
            .context("serving HTTPS")?;
        }
        None => {
            warn!(
                "serving plain HTTP (--insecure-http): credentials cross the network in clear text"
            );
            info!(data = %opts.data.display(), "listening on {url}");
            let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .context("serving HTTP")?;
        }
    }
    info!("coordinator stopped");
    Ok(())
}
