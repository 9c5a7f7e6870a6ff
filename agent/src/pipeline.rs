//! The long-running agent: tail → decode → detect → deliver → commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, error, info, warn};

use crate::config::AgentConfig;
use crate::decode::{LineDecoder, LogFormat};
use crate::engine::{Detector, RulePack, SigmaDetector, Suppressions, YaraRules};
use crate::event::Event;
use crate::identity::Identity;
use crate::sources::capture::{Capture, CaptureStats};
use crate::sources::tail::{Chunk, Tailer};
use crate::uplink::{Uplink, UplinkError};
use crate::wire::{Alert, AlertBatch, Heartbeat};

/// Counters the agent reports in heartbeats.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events decoded.
    pub events: AtomicU64,
    /// Alerts produced.
    pub alerts: AtomicU64,
    /// Lines not decodable (malformed or too long).
    pub malformed: AtomicU64,
    /// Alerts dropped by an allow-list.
    pub suppressed: AtomicU64,
    /// Open correlation groups dropped at the engine's state cap.
    pub state_evicted: AtomicU64,
}

/// Capacity of the queue from push sources to the engine.
pub const PUSH_QUEUE: usize = 10_000;
/// Most pushed items judged per round.
const PUSH_BATCH: usize = 1_000;

/// What push sources (network capture, file watching) hand the pipeline.
#[derive(Debug)]
pub enum Pushed {
    /// An event for the rule engine.
    Event(Event),
    /// An alert a source decided on itself (e.g. a YARA match).
    Alert(Alert),
}

/// Judges pushed events and passes pushed alerts through.
pub fn detect_pushed(
    pushed: Vec<Pushed>,
    detector: &mut dyn Detector,
    stats: &Stats,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for p in pushed {
        match p {
            Pushed::Event(event) => {
                stats.events.fetch_add(1, Ordering::Relaxed);
                alerts.extend(detector.process(&event));
            }
            Pushed::Alert(alert) => alerts.push(alert),
        }
    }
    stats
        .alerts
        .fetch_add(alerts.len() as u64, Ordering::Relaxed);
    alerts
}

/// Loads the configured rule pack, or the shipped one.
pub fn load_rules(config: &AgentConfig) -> anyhow::Result<RulePack> {
    let pack = match &config.rules {
        Some(dir) => RulePack::load(std::slice::from_ref(dir)),
        None => RulePack::shipped(),
    };
    pack.map_err(|diags| {
        let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the rule pack does not load:\n{}", list.join("\n"))
    })
}

/// Turns the lines of chunks into alerts, counting what could not be decoded.
pub fn detect_chunks(
    chunks: &[Chunk],
    decoders: &mut HashMap<LogFormat, LineDecoder>,
    host: &str,
    detector: &mut dyn Detector,
    stats: &Stats,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for chunk in chunks {
        let decoder = decoders
            .entry(chunk.format)
            .or_insert_with(|| LineDecoder::new(chunk.format, host));
        stats
            .malformed
            .fetch_add(chunk.oversized, Ordering::Relaxed);
        for line in &chunk.lines {
            match decoder.decode(&line.text, line.origin.clone()) {
                Ok(event) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    alerts.extend(detector.process(&event));
                }
                Err(e) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, origin = %line.origin, "skipped line");
                }
            }
        }
    }
    stats
        .alerts
        .fetch_add(alerts.len() as u64, Ordering::Relaxed);
    alerts
}

/// Delivers alerts, retrying with backoff until the coordinator has stored
/// all of them. Returns an error only when retrying cannot help.
async fn deliver(uplink: &Uplink, alerts: Vec<Alert>) -> anyhow::Result<()> {
    // Bounded in alerts and in captured frames, so a batch never outgrows
    // the coordinator's body limit.
    for batch in crate::wire::batches(&alerts) {
        let batch = AlertBatch {
            alerts: batch.to_vec(),
        };
        let mut delay = Duration::from_millis(200);
        loop {
            match uplink.send_alerts(&batch).await {
                Ok(ack) => {
                    debug!(
                        accepted = ack.accepted,
                        duplicates = ack.duplicates,
                        "alerts delivered"
                    );
                    break;
                }
                Err(e @ UplinkError::Unauthorized(_)) => return Err(e.into()),
                Err(e) => {
                    if e.is_transient() {
                        warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "could not deliver alerts; retrying");
                    } else {
                        error!(error = %e, retry_in_ms = delay.as_millis() as u64, "coordinator refused alerts; retrying");
                    }
                    tokio::time::sleep(jitter(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
    Ok(())
}

/// Spreads retries of many agents: 75%–125% of `d`.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let identity = Identity::load(&config.state_dir)?;
    let uplink = Uplink::new(identity.clone())?;
    let pack = load_rules(&config)?;
    let mut detector = SigmaDetector::new(&pack)?;
    let suppressions = Suppressions::new(&config.suppress).map_err(|e| anyhow::anyhow!(e))?;
    let host = config.host_name();
    let rules_version = pack.version.clone();
    info!(
        agent_id = %identity.agent_id,
        server = %identity.server_url,
        rules = detector.rule_count(),
        rules_version = %rules_version,
        logs = config.logs.len(),
        "agent started"
    );

    let mut tailer = Tailer::new(config.logs.clone(), &config.state_dir)?;
    let wake = Arc::new(Notify::new());
    let _watcher = watch(&tailer, wake.clone());

    let stats = Arc::new(Stats::default());
    let capture_stats = Arc::new(CaptureStats::default());
    let started = Instant::now();
    {
        let uplink = uplink.clone();
        let stats = stats.clone();
        let capture_stats = capture_stats.clone();
        let interval = Duration::from_secs(config.heartbeat_interval_s.max(1));
        let rules_version = rules_version.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let hb = Heartbeat {
                    version: crate::VERSION.to_string(),
                    rules_version: rules_version.clone(),
                    uptime_s: started.elapsed().as_secs(),
                    events_total: stats.events.load(Ordering::Relaxed),
                    alerts_total: stats.alerts.load(Ordering::Relaxed),
                    malformed_total: stats.malformed.load(Ordering::Relaxed),
                    suppressed_total: stats.suppressed.load(Ordering::Relaxed),
                    packets_total: capture_stats.packets.load(Ordering::Relaxed),
                    dropped_total: capture_stats.dropped.load(Ordering::Relaxed),
                    state_evicted_total: stats.state_evicted.load(Ordering::Relaxed),
                };
                if let Err(e) = uplink.heartbeat(&hb).await {
                    warn!(error = %e, "heartbeat failed");
                }
            }
        });
    }

    // Push sources (capture, file watching) send here; log files are polled.
    let (push_tx, mut push_rx) = mpsc::channel::<Pushed>(PUSH_QUEUE);
    let mut captures = Vec::new();
    for n in &config.net {
        captures.push(Capture::start(
            &n.interface,
            &host,
            push_tx.clone(),
            capture_stats.clone(),
        )?);
    }
    if !captures.is_empty() {
        info!(interfaces = captures.len(), "live capture running");
    }
    let files_stop = Arc::new(AtomicBool::new(false));
    let _files = if config.files.is_empty() {
        None
    } else {
        let yara = load_yara_rules(&config)?;
        info!(
            yara_rules = yara.count,
            yara_version = %yara.version,
            roots = config.files.len(),
            "watching files"
        );
        crate::files::watch::spawn(
            &config,
            host.clone(),
            yara,
            push_tx.clone(),
            files_stop.clone(),
        )?
    };
    let _pcap_dirs = if config.pcap.is_empty() {
        None
    } else {
        info!(
            dirs = config.pcap.len(),
            "replaying capture files dropped in capture dirs"
        );
        Some(crate::sources::pcap_dir::spawn(
            config.pcap.iter().map(|p| p.dir.clone()).collect(),
            host.clone(),
            &config.state_dir,
            push_tx.clone(),
            capture_stats.clone(),
            files_stop.clone(),
        )?)
    };
    // The queue closes when every source has stopped.
    drop(push_tx);

    let mut decoders: HashMap<LogFormat, LineDecoder> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut pushed = Vec::new();
    loop {
        let chunks = tokio::task::block_in_place(|| tailer.poll());
        while pushed.len() < PUSH_BATCH {
            match push_rx.try_recv() {
                Ok(p) => pushed.push(p),
                Err(_) => break,
            }
        }
        if chunks.is_empty() && pushed.is_empty() {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(config.poll_interval()) => {}
                Some(p) = push_rx.recv() => pushed.push(p),
            }
            continue;
        }
        let mut alerts = detect_chunks(&chunks, &mut decoders, &host, &mut detector, &stats);
        alerts.extend(detect_pushed(
            std::mem::take(&mut pushed),
            &mut detector,
            &stats,
        ));
        stats
            .state_evicted
            .store(detector.state_evicted(), Ordering::Relaxed);
        let before = alerts.len();
        alerts.retain(|a| !suppressions.suppresses(a));
        stats
            .suppressed
            .fetch_add((before - alerts.len()) as u64, Ordering::Relaxed);
        if let Some(drill) = &config.drill_id {
            for a in &mut alerts {
                a.mark_drill(drill);
            }
        }
        if !alerts.is_empty() {
            info!(count = alerts.len(), "sending alerts");
            tokio::select! {
                r = deliver(&uplink, alerts) => r?,
                _ = &mut shutdown => break,
            }
        }
        tokio::task::block_in_place(|| tailer.commit(&chunks))?;
    }
    info!("agent stopping");
    let dropped = capture_stats.dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        warn!(
            dropped,
            "network events were dropped because detection fell behind"
        );
    }
    drop(captures);
    files_stop.store(true, Ordering::Relaxed);
    Ok(())
}

/// The YARA rules for file watching: the `yara/` part of the configured
/// rules dir when it has one, else the shipped rules. Rules yara-x rejects
/// are logged and left out.
pub fn load_yara_rules(config: &AgentConfig) -> anyhow::Result<YaraRules> {
    let local = config.rules.as_ref().filter(|dir| {
        dir.join("yara").is_dir()
            || walkdir::WalkDir::new(dir)
                .into_iter()
                .filter_map(Result::ok)
                .any(|e| {
                    e.path()
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| crate::engine::yara::YARA_EXTENSIONS.contains(&x))
                })
    });
    let rules = match local {
        Some(dir) => YaraRules::load(std::slice::from_ref(dir)),
        None => YaraRules::shipped(),
    }
    .map_err(|diags| {
        let list: Vec<String> = diags.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("the YARA rules do not load:\n{}", list.join("\n"))
    })?;
    for d in &rules.skipped {
        warn!("YARA rule left out: {d}");
    }
    Ok(rules)
}

fn watch(tailer: &Tailer, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let mut watcher =
        match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            wake.notify_one();
        }) {
            Ok(w) => w,
            Err(e) => {
                warn!(error = %e, "file notifications unavailable; polling only");
                return None;
            }
        };
    for dir in tailer.watch_dirs() {
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            warn!(error = %e, dir = %dir.display(), "cannot watch directory; polling it");
        }
    }
    Some(watcher)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
