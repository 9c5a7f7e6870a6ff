//! The long-running agent: tail files and follow the journal → decode →
//! detect → spool (fsync) → commit offsets and cursors; [`crate::delivery`]
//! drains the spool to the coordinator.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use crate::config::AgentConfig;
use crate::decode::journal::JournalDecoder;
use crate::decode::{LineDecoder, LogFormat};
use crate::delivery::DeliveryStats;
use crate::engine::{Detector, RulePack, SigmaDetector, Suppressions, YaraRules};
use crate::event::Event;
use crate::identity::Identity;
use crate::rates::{RateMeter, Totals};
use crate::rules_refresh::{NewRules, RulesStatus, SharedStatus};
use crate::sources::capture::{Capture, CaptureStats};
use crate::sources::journal::{self, Journal, JournalBatch};
use crate::sources::tail::{Chunk, Tailer};
use crate::spool::{Spool, SpoolItem};
use crate::uplink::Uplink;
use crate::wire::{
    Alert, GAP_CAPTURE_DROPPED, GAP_CAPTURE_KERNEL_DROPPED, GAP_STATE_EVICTED, Gap, Heartbeat,
};

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
    /// Log lines and journal entries read (decodable or not).
    pub lines: AtomicU64,
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

/// The rules the agent runs, where they came from, and why the
/// coordinator's bundle was refused (if it was): the local `rules` dir when
/// configured; else the coordinator's signed bundle, verified and compiled
/// (then saved as the last good one); else the last good bundle in the
/// state dir; else the shipped pack. A bundle that fails to verify or to
/// compile is never loaded.
pub async fn select_rules(
    config: &AgentConfig,
    uplink: &Uplink,
    identity: &Identity,
) -> anyhow::Result<(RulePack, &'static str, Option<String>)> {
    if config.rules.is_some() {
        return Ok((load_rules(config)?, "local", None));
    }
    let Some(key) = identity.bundle_key.as_deref() else {
        return Ok((load_rules(config)?, "shipped", None));
    };
    let fetched = match uplink.rule_bundle().await {
        Ok(signed) => signed
            .verify(key)
            .and_then(|b| b.pack().map(|p| (p, signed)))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let error = match fetched {
        Ok((pack, signed)) => {
            if let Err(e) = crate::bundle::save(&config.state_dir, &signed) {
                warn!(error = %e, "could not save the rule bundle as the last good one");
            }
            info!(version = %pack.version, "loaded the coordinator's rule bundle");
            return Ok((pack, "bundle", None));
        }
        Err(e) => e,
    };
    warn!(error = %error, "the coordinator's rule bundle was not loaded");
    if let Some(saved) = crate::bundle::load_saved(&config.state_dir, key)
        && let Ok(pack) = saved.pack()
    {
        info!(version = %pack.version, "running the last good rule bundle");
        return Ok((pack, "saved-bundle", Some(error)));
    }
    Ok((load_rules(config)?, "shipped", Some(error)))
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
    // One event, decoded into line after line (no allocation per line).
    let mut event = crate::event::Event::new(chrono::DateTime::UNIX_EPOCH, host, "");
    for chunk in chunks {
        let decoder = decoders
            .entry(chunk.format)
            .or_insert_with(|| LineDecoder::new(chunk.format, host));
        stats
            .malformed
            .fetch_add(chunk.oversized, Ordering::Relaxed);
        stats
            .lines
            .fetch_add(chunk.lines.len() as u64, Ordering::Relaxed);
        for line in &chunk.lines {
            match decoder.decode_into(&line.text, &line.origin, &mut event) {
                Ok(()) => {
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

/// Resident memory (bytes) and CPU time used (seconds) of this process,
/// from `/proc/self/statm` and `/proc/self/stat`; zeros where unavailable.
pub fn process_usage() -> (u64, f64) {
    let page = 4096u64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page);
    // Fields after the command name (which may hold spaces, so split at
    // the last ')'): utime and stime are the 12th and 13th.
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0);
    (rss, cpu)
}

/// Turns journal entries into alerts, counting what could not be decoded.
pub fn detect_journal(
    batches: &[JournalBatch],
    decoder: &JournalDecoder,
    detector: &mut dyn Detector,
    stats: &Stats,
) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for batch in batches {
        stats
            .malformed
            .fetch_add(batch.oversized + batch.malformed, Ordering::Relaxed);
        stats
            .lines
            .fetch_add(batch.entries.len() as u64, Ordering::Relaxed);
        for entry in &batch.entries {
            match decoder.decode(entry) {
                Ok(event) => {
                    stats.events.fetch_add(1, Ordering::Relaxed);
                    alerts.extend(detector.process(&event));
                }
                Err(e) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                    debug!(error = %e, cursor = %entry.cursor, "skipped journal entry");
                }
            }
        }
    }
    stats
        .alerts
        .fetch_add(alerts.len() as u64, Ordering::Relaxed);
    alerts
}

/// Turns growth of a loss counter (capture drops, engine state evictions)
/// into gap records, at most one per counter every [`GAP_CHECK`].
struct LossWatch {
    reason: &'static str,
    reported: u64,
    since: chrono::DateTime<chrono::Utc>,
    made: u64,
}

/// How often loss counters are turned into gap records.
const GAP_CHECK: Duration = Duration::from_secs(2);

/// After a file-change wake-up, the next round starts no sooner than this
/// after the previous one began: a writer flushing every few milliseconds
/// then costs one round (read, checkpoint fsync, spool fsync) per interval
/// instead of one per write. Rounds with a backlog never wait.
const ROUND_COALESCE: Duration = Duration::from_millis(50);

impl LossWatch {
    fn new(reason: &'static str) -> Self {
        LossWatch {
            reason,
            reported: 0,
            since: chrono::Utc::now(),
            made: 0,
        }
    }

    fn check(&mut self, now_total: u64, host: &str) -> Option<Gap> {
        let now = chrono::Utc::now();
        if now_total <= self.reported {
            self.since = now;
            return None;
        }
        let mut gap = Gap::new(self.reason, host, now_total - self.reported, self.made);
        self.made += 1;
        gap.first_time = Some(self.since);
        gap.last_time = Some(now);
        self.reported = now_total;
        self.since = now;
        Some(gap)
    }
}

/// Aborts a background task when dropped (the agent stopping).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why an uplink task (delivery, heartbeats) ended: only rejected
/// credentials end one, and with it the agent.
fn uplink_task_ended(
    what: &str,
    r: Result<crate::uplink::UplinkError, tokio::task::JoinError>,
) -> anyhow::Error {
    match r {
        Ok(e) => anyhow::Error::new(e).context(what.to_string()),
        Err(e) => anyhow::anyhow!("the task {what} failed: {e}"),
    }
}

/// Runs the agent until SIGINT/SIGTERM.
pub async fn run(config: AgentConfig) -> anyhow::Result<()> {
    let identity = Identity::load(&config.state_dir)?;
    let uplink = Uplink::new(identity.clone())?;
    let (pack, rules_source, bundle_error) = select_rules(&config, &uplink, &identity).await?;
    let mut detector = SigmaDetector::new(&pack)?;
    let suppressions = Suppressions::new(&config.suppress).map_err(|e| anyhow::anyhow!(e))?;
    let host = config.host_name();
    let rules_version = pack.version.clone();
    let rules_status: SharedStatus = Arc::new(Mutex::new(RulesStatus {
        version: rules_version.clone(),
        source: rules_source,
        error: bundle_error,
    }));
    info!(
        agent_id = %identity.agent_id,
        server = %identity.server_url,
        rules = detector.rule_count(),
        rules_version = %rules_version,
        logs = config.logs.len(),
        journal = config.journal.len(),
        "agent started"
    );

    let mut tailer = Tailer::new(config.logs.clone(), &config.state_dir)?;
    let wake = Arc::new(Notify::new());
    let _watcher = watch(&tailer, wake.clone());
    let mut journal = Journal::start(
        &config.journal,
        &config.state_dir,
        journal::first_start(
            journal::enrollment_time(&config.state_dir),
            chrono::Utc::now(),
        ),
        wake.clone(),
    )?;
    let journal_decoder = JournalDecoder::new(&host);

    let (spool, opened) = Spool::open(
        &config.state_dir.join("spool"),
        config.spool_max_bytes,
        &host,
    )
    .with_context(|| format!("opening the spool in {}", config.state_dir.display()))?;
    if opened.torn_tails > 0 {
        info!(
            torn = opened.torn_tails,
            bytes = opened.torn_bytes,
            "spool: cut records torn by an unclean stop (never acknowledged to a source, re-read from the logs)"
        );
    }
    info!(
        entries = opened.entries,
        bytes = opened.bytes,
        max_bytes = spool.max_bytes(),
        "spool open"
    );
    let spool = Arc::new(Mutex::new(spool));
    let spool_wake = Arc::new(Notify::new());
    let delivery_stats = Arc::new(DeliveryStats::default());
    let mut delivery = tokio::spawn(crate::delivery::run(
        spool.clone(),
        uplink.clone(),
        spool_wake.clone(),
        delivery_stats.clone(),
    ));

    let stats = Arc::new(Stats::default());
    let capture_stats = Arc::new(CaptureStats::default());
    let watch_stats = Arc::new(crate::files::watch::WatchStats::default());
    let started = Instant::now();
    let mut heartbeats = {
        let uplink = uplink.clone();
        let stats = stats.clone();
        let capture_stats = capture_stats.clone();
        let spool = spool.clone();
        let delivery_stats = delivery_stats.clone();
        let interval_s = config.heartbeat_interval_s.max(1);
        let interval = Duration::from_secs(interval_s);
        let watch_stats = watch_stats.clone();
        let rules_status = rules_status.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            let mut meter = RateMeter::new(started);
            loop {
                tick.tick().await;
                let (spool_entries, spool_bytes) = crate::delivery::lock(&spool).depth();
                let (rss_bytes, cpu_seconds) = process_usage();
                let rules = crate::rules_refresh::lock(&rules_status).clone();
                let totals = Totals {
                    events: stats.events.load(Ordering::Relaxed),
                    alerts: stats.alerts.load(Ordering::Relaxed),
                    lines: stats.lines.load(Ordering::Relaxed),
                    packets: capture_stats.packets.load(Ordering::Relaxed),
                };
                let rates = meter.sample(Instant::now(), totals);
                let mut hb = Heartbeat {
                    version: crate::VERSION.to_string(),
                    rules_version: rules.version,
                    uptime_s: started.elapsed().as_secs(),
                    events_total: totals.events,
                    alerts_total: totals.alerts,
                    malformed_total: stats.malformed.load(Ordering::Relaxed),
                    suppressed_total: stats.suppressed.load(Ordering::Relaxed),
                    packets_total: totals.packets,
                    dropped_total: capture_stats.dropped.load(Ordering::Relaxed),
                    capture_kernel_packets_total: capture_stats
                        .kernel_packets
                        .load(Ordering::Relaxed),
                    capture_kernel_drops_total: capture_stats.kernel_drops.load(Ordering::Relaxed),
                    evidence_frames_dropped_total: capture_stats
                        .evidence_frames_dropped
                        .load(Ordering::Relaxed),
                    evidence_budget_dropped_total: capture_stats
                        .evidence_budget_dropped
                        .load(Ordering::Relaxed),
                    state_evicted_total: stats.state_evicted.load(Ordering::Relaxed),
                    rules_source: rules.source.to_string(),
                    bundle_error: rules.error,
                    spool_entries,
                    spool_bytes,
                    rss_bytes,
                    cpu_seconds,
                    heartbeat_interval_s: interval_s,
                    delivery_rejected_total: delivery_stats.rejected.load(Ordering::Relaxed),
                    events_per_sec: rates.events_per_sec,
                    alerts_per_sec: rates.alerts_per_sec,
                    lines_per_sec: rates.lines_per_sec,
                    packets_per_sec: rates.packets_per_sec,
                    ..Heartbeat::default()
                };
                watch_stats.fill(&mut hb);
                match uplink.heartbeat(&hb).await {
                    Ok(()) => {}
                    // A revoked (or retired drill) agent stops, as when
                    // delivery is refused.
                    Err(e @ crate::uplink::UplinkError::Unauthorized(_)) => return e,
                    Err(e) => warn!(error = %e, "heartbeat failed"),
                }
            }
        })
    };

    // Newer signed bundles, verified and compiled off the detection path.
    let (rules_tx, mut rules_rx) = mpsc::channel::<NewRules>(1);
    let _refresh = match (&config.rules, identity.bundle_key.clone()) {
        (None, Some(key)) if config.bundle_refresh_secs > 0 => {
            Some(AbortOnDrop(crate::rules_refresh::spawn(
                uplink.clone(),
                key,
                config.state_dir.clone(),
                Duration::from_secs(config.bundle_refresh_secs),
                rules_status.clone(),
                rules_tx,
            )))
        }
        _ => None,
    };
    // Open groups the detectors swapped out had dropped (the counter stays monotonic).
    let mut evicted_before = 0u64;

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
            watch_stats.clone(),
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
    // Once start-up is over, its code and heap go back to the kernel.
    crate::memory::release_after(crate::memory::STARTUP_SETTLE);

    let mut decoders: HashMap<LogFormat, LineDecoder> = HashMap::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    let mut pushed = Vec::new();
    let mut capture_loss = LossWatch::new(GAP_CAPTURE_DROPPED);
    let mut kernel_loss = LossWatch::new(GAP_CAPTURE_KERNEL_DROPPED);
    let mut state_loss = LossWatch::new(GAP_STATE_EVICTED);
    let mut last_loss_check = Instant::now();
    let mut round_started = Instant::now();
    loop {
        if delivery.is_finished() {
            return Err(uplink_task_ended("delivering alerts", delivery.await));
        }
        if heartbeats.is_finished() {
            return Err(uplink_task_ended("sending heartbeats", heartbeats.await));
        }
        // Between two rounds: every line so far was judged by the old rules,
        // every line from here on is judged by the new ones.
        while let Ok(new) = rules_rx.try_recv() {
            evicted_before += detector.state_evicted();
            detector = new.detector;
            let mut s = crate::rules_refresh::lock(&rules_status);
            info!(from = %s.version, to = %new.version, rules = detector.rule_count(), "now running the new rule bundle");
            *s = RulesStatus {
                version: new.version,
                source: "bundle",
                error: None,
            };
        }
        let chunks = tokio::task::block_in_place(|| tailer.poll());
        let entries = journal.poll();
        while pushed.len() < PUSH_BATCH {
            match push_rx.try_recv() {
                Ok(p) => pushed.push(p),
                Err(_) => break,
            }
        }
        let mut gaps = Vec::new();
        if last_loss_check.elapsed() >= GAP_CHECK {
            last_loss_check = Instant::now();
            gaps.extend(capture_loss.check(capture_stats.dropped.load(Ordering::Relaxed), &host));
            gaps.extend(
                kernel_loss.check(capture_stats.kernel_drops.load(Ordering::Relaxed), &host),
            );
            gaps.extend(state_loss.check(stats.state_evicted.load(Ordering::Relaxed), &host));
            for g in &gaps {
                warn!(reason = %g.reason, count = g.count, "detection gap recorded");
            }
        }
        if chunks.is_empty() && entries.is_empty() && pushed.is_empty() && gaps.is_empty() {
            tokio::select! {
                _ = &mut shutdown => break,
                r = &mut delivery => return Err(uplink_task_ended("delivering alerts", r)),
                r = &mut heartbeats => return Err(uplink_task_ended("sending heartbeats", r)),
                _ = wake.notified() => {
                    let until = round_started + ROUND_COALESCE;
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep_until(until.into()) => {}
                    }
                }
                _ = tokio::time::sleep(config.poll_interval()) => {}
                Some(p) = push_rx.recv() => pushed.push(p),
            }
            continue;
        }
        round_started = Instant::now();
        let mut alerts = detect_chunks(&chunks, &mut decoders, &host, &mut detector, &stats);
        alerts.extend(detect_journal(
            &entries,
            &journal_decoder,
            &mut detector,
            &stats,
        ));
        alerts.extend(detect_pushed(
            std::mem::take(&mut pushed),
            &mut detector,
            &stats,
        ));
        stats
            .state_evicted
            .store(evicted_before + detector.state_evicted(), Ordering::Relaxed);
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
        if !alerts.is_empty() || !gaps.is_empty() {
            info!(count = alerts.len(), "spooling alerts");
            let items: Vec<SpoolItem> = alerts
                .into_iter()
                .map(SpoolItem::Alert)
                .chain(gaps.into_iter().map(SpoolItem::Gap))
                .collect();
            // Durable (fsynced) before the offsets move.
            tokio::task::block_in_place(|| crate::delivery::lock(&spool).append(items))
                .context("writing alerts to the spool")?;
            spool_wake.notify_one();
        }
        tokio::task::block_in_place(|| tailer.commit(&chunks))?;
        tokio::task::block_in_place(|| journal.commit(&entries))?;
    }
    info!("agent stopping");
    drop(journal);
    let dropped = capture_stats.dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        warn!(
            dropped,
            "network events were dropped because detection fell behind"
        );
    }
    drop(captures);
    let kernel_drops = capture_stats.kernel_drops.load(Ordering::Relaxed);
    if kernel_drops > 0 {
        warn!(
            kernel_drops,
            "the kernel dropped captured frames because capture fell behind the wire"
        );
    }
    files_stop.store(true, Ordering::Relaxed);
    Ok(())
}

/// The YARA rules for file watching: the `yara/` part of the configured
/// rules dir when it has one, else the shipped rules. They come from the
/// compiled-rules cache in the state dir when it holds them, else a
/// `ward-agent compile-yara` child compiles them into it, so this
/// long-lived process never runs the compiler
/// ([`crate::engine::yara::cache`]). Rules yara-x rejects are logged and
/// left out.
pub fn load_yara_rules(config: &AgentConfig) -> anyhow::Result<YaraRules> {
    use crate::engine::yara::cache::{self, Build, Built, Miss, Origin};
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
    let origin = match local {
        Some(dir) => Origin::Paths(vec![dir.clone()]),
        None => Origin::Shipped,
    };
    let build = match std::env::current_exe() {
        Ok(exe) => Build::Child(exe),
        Err(e) => {
            warn!(error = %e, "cannot find the agent's own executable; compiling the YARA rules in the agent");
            Build::InProcess
        }
    };
    let loaded = cache::load_or_build(&config.state_dir, &origin, &build)
        .map_err(cache::diagnostics_error)?;
    match (&loaded.built, &loaded.miss) {
        (Built::Cached, _) => info!("YARA rules loaded compiled from the state dir"),
        (_, Some(miss @ Miss::Damaged(_))) => {
            warn!(error = %miss, built = ?loaded.built, "YARA rules compiled again")
        }
        (built, miss) => {
            info!(built = ?built, reason = %miss.as_ref().map(ToString::to_string).unwrap_or_default(), "YARA rules compiled")
        }
    }
    let rules = loaded.rules;
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

#[cfg(test)]
mod loss_tests {
    use super::*;

    #[test]
    fn growing_loss_counters_become_gap_records_of_the_growth() {
        let mut w = LossWatch::new(GAP_CAPTURE_DROPPED);
        assert!(w.check(0, "web01").is_none());
        let g = w.check(40, "web01").expect("a gap");
        assert_eq!(
            (g.reason.as_str(), g.count, g.host.as_str()),
            ("capture_dropped", 40, "web01")
        );
        assert!(g.first_time.unwrap() <= g.last_time.unwrap());
        assert!(w.check(40, "web01").is_none(), "no growth, no gap");
        let g2 = w.check(45, "web01").expect("a second gap");
        assert_eq!(g2.count, 5);
        assert_ne!(g.id, g2.id);
        assert!(g2.first_time >= g.last_time);
    }

    #[test]
    fn process_usage_reads_proc() {
        let (rss, cpu) = process_usage();
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(cpu >= 0.0);
    }
}
