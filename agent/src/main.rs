//! `ward-agent`: the host agent and the offline tools over its engine.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ward_agent::config::{AgentConfig, system_host_name};
use ward_agent::decode::LogFormat;
use ward_agent::engine::yara::{ScanLimits, YARA_EXTENSIONS};
use ward_agent::engine::{Detector, RulePack, SigmaDetector, YaraRules};
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
    /// Play a drill scenario offline through the engine on a virtual clock
    /// and print its scorecard. Exit 0 when every expectation is met with
    /// no false alarm, 1 otherwise, 2 when the scenario is invalid.
    Drill {
        /// The scenario file, or its directory (holding scenario.yml).
        scenario: PathBuf,
        /// Print the scorecard as JSON.
        #[arg(long)]
        json: bool,
        /// Only validate the scenario.
        #[arg(long)]
        check: bool,
        /// Rules to use instead of the shipped pack (a pack root or Sigma dir).
        #[arg(long)]
        rules: Option<PathBuf>,
    },
    /// Simulate a fleet against a coordinator: N agents enroll with one
    /// N-use token, heartbeat and send alert batches; prints throughput
    /// and latency (a benchmark tool; use a test coordinator).
    Load {
        /// An enrollment token with at least --agents uses.
        #[arg(long, env = "WARD_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// Simulated agents.
        #[arg(long, default_value_t = 100)]
        agents: usize,
        /// Heartbeat interval of each agent, in seconds.
        #[arg(long, default_value_t = 30)]
        heartbeat_secs: u64,
        /// Alerts per second across the fleet (0: heartbeats only).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Alerts per batch.
        #[arg(long, default_value_t = 10)]
        batch: usize,
        /// Seconds of load after enrollment.
        #[arg(long, default_value_t = 60)]
        duration_secs: u64,
        /// Host name prefix of the simulated agents.
        #[arg(long, default_value = "load")]
        host_prefix: String,
        /// Attacker addresses each simulated host sees (of a pool of 398
        /// shared by the fleet). 398: nearly every alert opens its own
        /// incident, the worst case for grouping.
        #[arg(long, default_value_t = 4)]
        attackers_per_host: usize,
        /// Send each scheduled batch of --batch alerts on its own, however
        /// far behind the coordinator is. By default a simulated agent
        /// sends all it has pending (up to 1,000 alerts) once its previous
        /// request is answered, as a real agent's spool does.
        #[arg(long)]
        fixed_batches: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One-shot YARA scan of files and directories (recursive); prints one
    /// JSON finding per line. Exit 1 when something matched, 0 when clean,
    /// 2 on errors.
    Scan {
        /// Files or directories to scan.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// YARA rule files or directories instead of the shipped rules.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Largest file scanned, in bytes (larger files are skipped and counted).
        #[arg(long, default_value_t = ward_agent::files::DEFAULT_MAX_FILE_SIZE)]
        max_size: u64,
        /// Per-file scan timeout, in seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Worker threads (default: the number of CPUs).
        #[arg(long)]
        threads: Option<usize>,
        /// Never show the progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Compile YARA rules into the state dir's compiled-rules cache. The
    /// running agent starts this itself on a cache miss, so that its own
    /// long-lived process never holds the compiler.
    #[command(name = ward_agent::engine::yara::cache::COMPILE_SUBCOMMAND, hide = true)]
    CompileYara {
        /// The agent's state dir.
        #[arg(long)]
        state: PathBuf,
        /// Rule files or directories (default: the shipped rules).
        #[arg(long)]
        rules: Vec<PathBuf>,
    },
}

mod scan;

/// Which of the given paths hold Sigma rules and which YARA rules.
fn split_rule_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    fn has_ext(dir: &std::path::Path, exts: &[&str]) -> bool {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_type().is_file()
                    && e.path()
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| exts.contains(&x))
            })
    }
    let mut sigma = Vec::new();
    let mut yara = Vec::new();
    for p in paths {
        let is_root = p.join("sigma").is_dir() || p.join("yara").is_dir();
        if is_root {
            if p.join("sigma").is_dir() {
                // The pack root itself: RulePack::load reads sigma/ and ioc/.
                sigma.push(p.clone());
            }
            if p.join("yara").is_dir() {
                yara.push(p.join("yara"));
            }
        } else if p.is_dir() {
            let y = has_ext(p, YARA_EXTENSIONS);
            let s = has_ext(p, &["yml", "yaml"]);
            if y {
                yara.push(p.clone());
            }
            if s || !y {
                sigma.push(p.clone());
            }
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| YARA_EXTENSIONS.contains(&x))
        {
            yara.push(p.clone());
        } else {
            sigma.push(p.clone());
        }
    }
    (sigma, yara)
}

/// `ward-agent check`: Sigma and YARA files, one diagnostic per bad rule.
fn check(paths: &[PathBuf]) -> ExitCode {
    let (sigma, yara) = split_rule_paths(paths);
    let mut problems = 0;
    if !sigma.is_empty() {
        match RulePack::load(&sigma) {
            Ok(pack) => println!(
                "ok: {} Sigma rules in {} files (pack {})",
                pack.rule_count(),
                pack.collections.len(),
                pack.version
            ),
            Err(diags) => {
                for d in &diags {
                    eprintln!("{d}");
                }
                problems += diags.len();
            }
        }
    }
    if !yara.is_empty() {
        match YaraRules::load(&yara) {
            Ok(rules) => {
                for d in &rules.skipped {
                    eprintln!("{d}");
                }
                problems += rules.skipped.len();
                println!(
                    "{}: {} YARA rules compiled ({} rejected; rules {})",
                    if rules.skipped.is_empty() {
                        "ok"
                    } else {
                        "partly"
                    },
                    rules.count,
                    rules.skipped.len(),
                    rules.version
                );
            }
            Err(diags) => {
                for d in &diags {
                    eprintln!("{d}");
                }
                problems += diags.len();
            }
        }
    }
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{problems} problem(s) found");
        ExitCode::FAILURE
    }
}

/// `ward-agent load`: a simulated fleet; the report on stdout.
fn load(opts: ward_agent::load::LoadOptions, json: bool) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(ward_agent::load::run(opts))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `ward-agent drill`: a scenario offline.
fn drill(
    path: &std::path::Path,
    json: bool,
    check: bool,
    rules: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let scenario = match ward_agent::drill::Scenario::load(path) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} problem(s) found", errors.0.len());
            return Ok(ExitCode::from(2));
        }
    };
    if check {
        println!(
            "ok: scenario {} ({} hosts, {} injects, {} expectations)",
            scenario.name,
            scenario.hosts.len(),
            scenario.injects.len(),
            scenario.expect.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let pack = match &rules {
        Some(dir) => RulePack::load(std::slice::from_ref(dir)),
        None => RulePack::shipped(),
    }
    .map_err(|diags| {
        let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the rules do not load:\n{}", list.join("\n"))
    })?;
    let yara = if scenario.hosts.iter().any(|h| h.watches_files) {
        let local = rules
            .as_ref()
            .map(|r| r.join("yara"))
            .filter(|y| y.is_dir());
        Some(
            match local {
                Some(y) => YaraRules::load(&[y]),
                None => YaraRules::shipped(),
            }
            .map_err(|diags| {
                let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("the YARA rules do not load:\n{}", list.join("\n"))
            })?,
        )
    } else {
        None
    };
    let card = ward_agent::drill::offline::run(
        &scenario,
        &pack,
        yara.as_ref(),
        &format!("offline-{}", scenario.name),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&card)?);
    } else {
        print!("{}", card.to_text());
    }
    Ok(if card.totals.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
        Command::Check { rules } => Ok(check(&rules)),
        Command::CompileYara { state, rules } => {
            use ward_agent::engine::yara::cache;
            let origin = if rules.is_empty() {
                cache::Origin::Shipped
            } else {
                cache::Origin::Paths(rules)
            };
            let compiled = cache::compile_into(&state, &origin)?;
            tracing::debug!(
                rules = compiled.count,
                skipped = compiled.skipped.len(),
                version = %compiled.version,
                "YARA rules compiled into the state dir"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Drill {
            scenario,
            json,
            check,
            rules,
        } => drill(&scenario, json, check, rules),
        Command::Load {
            token,
            agents,
            heartbeat_secs,
            rate,
            batch,
            duration_secs,
            host_prefix,
            attackers_per_host,
            fixed_batches,
            json,
        } => load(
            ward_agent::load::LoadOptions {
                token: EnrollToken::decode(token.trim())?,
                agents,
                heartbeat: std::time::Duration::from_secs(heartbeat_secs),
                alerts_per_sec: rate,
                batch,
                duration: std::time::Duration::from_secs(duration_secs),
                host_prefix,
                attackers_per_host,
                fixed_batches,
            },
            json,
        ),
        Command::Scan {
            paths,
            rules,
            max_size,
            timeout,
            threads,
            no_progress,
        } => scan::run(scan::ScanArgs {
            paths,
            rules,
            limits: ScanLimits {
                max_size,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
            },
            threads: threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            progress: !no_progress,
        }),
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
            // One line per alert, each written into one reused buffer
            // (`Alert::push_json` is what serde_json writes).
            let mut line = String::with_capacity(4096);
            let mut write = |alert: ward_agent::wire::Alert| {
                line.clear();
                alert.push_json(&mut line);
                line.push('\n');
                out.write_all(line.as_bytes())
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
            // The process ends here: the detector's state (up to the cap of
            // correlation windows and the evidence of their lines) and the
            // compiled pack are left to the OS instead of freed piece by
            // piece, which cost a fifth of a million-line replay's CPU time.
            std::mem::forget(detector);
            std::mem::forget(pack);
            Ok(ExitCode::SUCCESS)
        }
    }
}
