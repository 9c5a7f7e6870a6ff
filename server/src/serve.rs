//! `ward-server serve`: data dir, store, first-start admin token, listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::info;

use crate::api::{AppState, router};
use crate::auth::{API_TOKEN_PREFIX, hash_secret, random_secret};
use crate::store::Store;

/// File in the data dir holding the first admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

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
}

/// Opens the store named by the options.
pub async fn open_store(opts: &ServeOptions) -> anyhow::Result<Store> {
    match opts.database.as_deref() {
        None => Store::open_sqlite(&opts.data.join("ward.db"))
            .await
            .context("opening the embedded SQLite database"),
        Some(url) if url.starts_with("sqlite:") => Store::open_url(url)
            .await
            .with_context(|| format!("opening {url}")),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            anyhow::bail!(
                "PostgreSQL is not supported by this build yet; use the embedded SQLite default"
            )
        }
        Some(url) => anyhow::bail!("unsupported --database URL '{url}' (expected sqlite:PATH)"),
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
/// `DATA/admin.token` (mode 0600).
async fn ensure_admin_token(store: &Store, data: &Path) -> anyhow::Result<()> {
    if store.api_token_count().await? > 0 {
        return Ok(());
    }
    let token = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let path = data.join(ADMIN_TOKEN_FILE);
    ward_agent::sources::write_atomically(&path, format!("{token}\n").as_bytes(), 0o600)?;
    store
        .add_api_token("admin", "admin", &hash_secret(&token))
        .await?;
    info!(path = %path.display(), "first start: wrote the admin API token");
    Ok(())
}

/// Runs the coordinator until `shutdown` resolves.
pub async fn serve(
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    create_private_dir(&opts.data)?;
    let store = open_store(&opts).await?;
    ensure_admin_token(&store, &opts.data).await?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("listening on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}");
    let public_url = opts.public_url.clone().unwrap_or_else(|| url.clone());
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let state = AppState {
        store,
        public_url: Arc::from(public_url.trim_end_matches('/')),
        metrics,
    };
    {
        // Silent agents become incidents (and resolve when they are back).
        let store = state.store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SILENT_CHECK);
            loop {
                tick.tick().await;
                if let Err(e) = store.check_silent_agents(chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "checking for silent agents failed");
                }
            }
        });
    }
    info!(data = %opts.data.display(), "listening on {url}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    info!("coordinator stopped");
    Ok(())
}
