//! `ward-server`: the Ward coordinator daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ward_server::serve::{ServeOptions, serve};

/// mimalloc rather than glibc's malloc: the coordinator makes many small,
/// short-lived allocations on several threads (requests, rows, statements).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ward-server",
    version,
    about = "Ward coordinator: stores agents' alerts as incidents for responders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the coordinator.
    Serve {
        /// Data directory (created on first start).
        #[arg(long, default_value = "./ward-data", env = "WARD_DATA")]
        data: PathBuf,
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:8443", env = "WARD_LISTEN")]
        listen: SocketAddr,
        /// Database URL: sqlite:PATH, or postgres://USER:PASSWORD@HOST/DB for
        /// several replicas on one database (default: the embedded SQLite
        /// file in the data dir).
        #[arg(long, env = "WARD_DATABASE")]
        database: Option<String>,
        /// Base URL agents use to reach this coordinator (default: from --listen).
        #[arg(long, env = "WARD_PUBLIC_URL")]
        public_url: Option<String>,
        /// PEM certificate chain to serve (default: a self-signed one made
        /// at first start in DATA/tls/).
        #[arg(long, env = "WARD_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, env = "WARD_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve plain HTTP without TLS (tokens then cross the network in
        /// clear text; for a TLS-terminating proxy in front).
        #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
        insecure_http: bool,
        /// Rule pack (a directory like `rules/`) served to agents as a signed
        /// bundle; default: the pack shipped in the binary.
        #[arg(long, env = "WARD_RULES")]
        rules: Option<PathBuf>,
        /// How long an open incident keeps collecting its rule, host and
        /// entity's alerts after the last one (`30m`, `24h`, `7d`).
        #[arg(long, env = "WARD_GROUP_WINDOW", value_parser = ward_server::serve::parse_duration)]
        group_window: Option<u64>,
        /// Prune alerts (and their captured frames) received more than this
        /// many days ago, except those of open incidents (default: keep
        /// everything).
        #[arg(long, env = "WARD_RETAIN_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        retain_days: Option<u32>,
        /// A national coordinator to forward this one's incidents to (not
        /// raw alerts, not drills): its base URL.
        #[arg(long, env = "WARD_UPSTREAM", requires = "upstream_token")]
        upstream: Option<String>,
        /// The province credential `ward provinces add` printed on the
        /// upstream.
        #[arg(
            long,
            env = "WARD_UPSTREAM_TOKEN",
            hide_env_values = true,
            requires = "upstream"
        )]
        upstream_token: Option<String>,
        /// A PEM certificate to trust for the upstream's TLS (its
        /// DATA/tls/cert.pem), besides the system roots.
        #[arg(long, env = "WARD_UPSTREAM_CA", requires = "upstream")]
        upstream_ca: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let Command::Serve {
        data,
        listen,
        database,
        public_url,
        tls_cert,
        tls_key,
        insecure_http,
        rules,
        group_window,
        retain_days,
        upstream,
        upstream_token,
        upstream_ca,
    } = cli.command;
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ward-server: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = ServeOptions {
        data,
        listen,
        database,
        public_url,
        tls_cert,
        tls_key,
        insecure_http,
        rules,
        group_window: group_window
            .map(|s| chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))),
        retain_days,
        upstream: upstream.map(|url| ward_server::federation::Upstream {
            url,
            token: upstream_token.unwrap_or_default(),
            ca: upstream_ca,
        }),
    };
    match rt.block_on(serve(opts, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ward-server: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
