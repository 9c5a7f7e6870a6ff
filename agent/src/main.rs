//! `ward-agent`: the host agent and the offline tools over its engine.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ward_agent::config::{AgentConfig, system_host_name};
use ward_agent::decode::LogFormat;
use ward_agent::engine::{Detector, RulePack, SigmaDetector};
use ward_agent::identity::Identity;
use ward_agent::wire::EnrollToken;

#[derive(Parser)]
#[command(
    name = "ward-agent",
    version,
    about = "Ward host agent: detects attacks in logs and reports them to the coordinator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register this host with the coordinator named in an enrollment token.
    Enroll {
        /// The token from `ward enroll-token create`.
        #[arg(long, env = "WARD_ENROLL_TOKEN")]
        token: String,
        /// Where the agent keeps its identity.
        #[arg(long, default_value = "/var/lib/ward-agent")]
        state: PathBuf,
        /// Host name to register (default: the system's).
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Run the agent.
    Run {
        /// The agent's TOML config.
        #[arg(long, default_value = "/etc/ward/agent.toml")]
        config: PathBuf,
    },
    /// Validate rule files or directories.
    Check {
        /// Rule files, directories, or pack roots.
        #[arg(required = true)]
        rules: Vec<PathBuf>,
    },
    /// Run detection over files offline; prints one JSON alert per line.
    Replay {
        /// A log file to read (repeatable).
        #[arg(long = "log")]
        logs: Vec<PathBuf>,
        /// Format of the preceding --log (repeatable; default auto).
        #[arg(long = "format")]
        formats: Vec<LogFormat>,
        /// A pcap or pcapng capture to read (repeatable).
        #[arg(long = "pcap")]
        pcaps: Vec<PathBuf>,
        /// Rules to use instead of the shipped pack.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Host name alerts carry (default: the system's).
        #[arg(long)]
        host: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ward-agent: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Enroll {
            token,
            state,
            hostname,
        } => {
            let token = EnrollToken::decode(&token)?;
            let hostname = hostname.unwrap_or_else(system_host_name);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let identity = rt.block_on(ward_agent::uplink::enroll(&token, &hostname))?;
            identity
                .save(&state)
                .with_context(|| format!("saving the identity in {}", state.display()))?;
            println!(
                "enrolled as agent {} of agency '{}' with {}; identity saved in {}",
                identity.agent_id,
                identity.agency,
                identity.server_url,
                Identity::path(&state).display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            let config = AgentConfig::load(&config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(ward_agent::pipeline::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { rules } => match RulePack::load(&rules) {
            Ok(pack) => {
                println!(
                    "ok: {} rules in {} files (pack {})",
                    pack.rule_count(),
                    pack.collections.len(),
                    pack.version
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(diags) => {
                for d in &diags {
                    eprintln!("{d}");
                }
                eprintln!("{} problem(s) found", diags.len());
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Replay {
            logs,
            formats,
            pcaps,
            rules,
            host,
        } => {
            if logs.is_empty() && pcaps.is_empty() {
                anyhow::bail!("nothing to replay: give at least one --log FILE or --pcap FILE");
            }
            if formats.len() > logs.len() {
                anyhow::bail!("more --format than --log arguments");
            }
            let pack = match rules {
                Some(dir) => RulePack::load(&[dir]),
                None => RulePack::shipped(),
            }
            .map_err(|diags| {
                let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("the rules do not load:\n{}", list.join("\n"))
            })?;
            let mut detector = SigmaDetector::new(&pack)?;
            let inputs: Vec<(PathBuf, LogFormat)> = logs
                .into_iter()
                .enumerate()
                .map(|(i, p)| (p, formats.get(i).copied().unwrap_or_default()))
                .collect();
            let host = host.unwrap_or_else(system_host_name);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let started = std::time::Instant::now();
            let mut write = |alert: ward_agent::wire::Alert| {
                serde_json::to_writer(&mut out, &alert)?;
                out.write_all(b"\n")
            };
            let mut stats = ward_agent::replay::replay_logs(
                &inputs,
                &host,
                &mut detector as &mut dyn Detector,
                &mut write,
            )?;
            let net = ward_agent::replay::replay_pcaps(
                &pcaps,
                &host,
                &mut detector as &mut dyn Detector,
                &mut write,
            )?;
            stats.add(&net);
            out.flush()?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                lines = stats.lines,
                packets = stats.packets,
                packets_skipped = stats.packets_skipped,
                flows_evicted = stats.flows_evicted,
                events = stats.events,
                malformed = stats.malformed,
                alerts = stats.alerts,
                seconds = format!("{secs:.3}"),
                packets_per_s = (stats.packets as f64 / secs) as u64,
                mbit_per_s = format!("{:.1}", stats.packet_bytes as f64 * 8.0 / secs / 1e6),
                "replay finished"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
