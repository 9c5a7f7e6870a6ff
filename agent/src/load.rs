//! `ward-agent load`: a fleet of simulated agents against one coordinator,
//! for capacity planning and the coordinator benchmarks. Each simulated
//! agent enrolls for real (one use of an N-use enrollment token), keeps its
//! own TLS connection, heartbeats at its interval (first beats spread over
//! the interval) and sends alert batches on a fixed schedule through the
//! same uplink code as a real agent. Latency is measured per request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::uplink::{Uplink, enroll};
use crate::wire::{Alert, AlertBatch, EnrollToken, Heartbeat, Severity};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// An enrollment token with at least `agents` uses.
    pub token: EnrollToken,
    /// Simulated agents.
    pub agents: usize,
    /// Heartbeat interval of each agent.
    pub heartbeat: Duration,
    /// Alerts per second across the fleet (0: heartbeats only).
    pub alerts_per_sec: f64,
    /// Alerts per batch.
    pub batch: usize,
    /// How long to run after every agent has enrolled.
    pub duration: Duration,
    /// Host names are `PREFIX-0001`, ...
    pub host_prefix: String,
    /// Attacker addresses each simulated host sees, drawn from one pool of
    /// [`ATTACKER_POOL`] shared by the fleet (so an address reaches several
    /// hosts and campaigns form). Few: most alerts join an open incident,
    /// as in a fleet under attack; [`ATTACKER_POOL`]: nearly every alert
    /// opens an incident of its own (the worst case for grouping).
    pub attackers_per_host: usize,
    /// Send each scheduled batch on its own, however far behind the
    /// coordinator is (the old load shape). Otherwise a simulated agent
    /// sends what it has pending, up to the batch limit, as soon as its
    /// previous request is answered, as a real agent's spool does.
    pub fixed_batches: bool,
}

/// Attacker addresses in the simulated fleet: `198.51.0.1` to `198.51.1.199`.
pub const ATTACKER_POOL: usize = 398;

/// The `n`-th address of the pool.
fn attacker_address(n: usize) -> String {
    format!("198.51.{}.{}", n / 199, n % 199 + 1)
}

/// Latency figures of one kind of request, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Requests answered.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i].as_secs_f64() * 1000.0
        };
        Latency {
            count: samples.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Simulated agents.
    pub agents: usize,
    /// Seconds enrolling them.
    pub enroll_s: f64,
    /// Seconds of load.
    pub duration_s: f64,
    /// Alerts per second asked for.
    pub target_alerts_per_sec: f64,
    /// Alerts the coordinator acknowledged as stored.
    pub alerts_accepted: u64,
    /// Alerts it acknowledged as already stored (should be 0).
    pub alerts_duplicate: u64,
    /// Accepted alerts per second of load.
    pub alerts_per_sec: f64,
    /// Alert batch requests.
    pub batches: Latency,
    /// From the scheduled time of a batch's oldest alert to its
    /// acknowledgment (includes the time it waited at the agent).
    pub alert_delay: Latency,
    /// Heartbeat requests.
    pub heartbeats: Latency,
    /// Failed requests by reason.
    pub errors: BTreeMap<String, u64>,
}

impl LoadReport {
    /// A few readable lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} agents enrolled in {:.1} s; {:.1} s of load\n\
             alerts: {} accepted ({:.0}/s, asked {:.0}/s), {} duplicates\n\
             alert batches: {} ({:.1} alerts each) — p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             alert delay (scheduled → acknowledged): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             heartbeats: {} — p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
            self.agents,
            self.enroll_s,
            self.duration_s,
            self.alerts_accepted,
            self.alerts_per_sec,
            self.target_alerts_per_sec,
            self.alerts_duplicate,
            self.batches.count,
            self.alerts_accepted as f64 / self.batches.count.max(1) as f64,
            self.batches.p50_ms,
            self.batches.p90_ms,
            self.batches.p99_ms,
            self.batches.max_ms,
            self.alert_delay.p50_ms,
            self.alert_delay.p90_ms,
            self.alert_delay.p99_ms,
            self.alert_delay.max_ms,
            self.heartbeats.count,
            self.heartbeats.p50_ms,
            self.heartbeats.p90_ms,
            self.heartbeats.p99_ms,
            self.heartbeats.max_ms,
        );
        if self.errors.is_empty() {
            s.push_str("errors: none\n");
        }
        for (e, n) in &self.errors {
            s.push_str(&format!("errors: {n} × {e}\n"));
        }
        s
    }
}

/// Per-agent results, merged at the end.
#[derive(Default)]
struct AgentTally {
    batches: Vec<Duration>,
    heartbeats: Vec<Duration>,
    delays: Vec<Duration>,
    accepted: u64,
    duplicates: u64,
    errors: BTreeMap<String, u64>,
}

/// Rules the simulated alerts cite, so incidents group as in a real fleet.
const RULES: &[(&str, &str, Severity)] = &[
    ("load-ssh-brute-force", "SSH brute force", Severity::High),
    ("load-web-sqli", "SQL injection attempt", Severity::Medium),
    ("load-web-scanner", "Web scanner user agent", Severity::Low),
    ("load-port-scan", "Port scan", Severity::Medium),
    ("load-webshell", "Webshell in uploads", Severity::Critical),
];

/// `n` distinct addresses of the pool for one host (all of them when `n`
/// is the pool's size or more).
fn host_attackers(n: usize, rng: &mut impl Rng) -> Vec<String> {
    rand::seq::index::sample(rng, ATTACKER_POOL, n.clamp(1, ATTACKER_POOL))
        .into_iter()
        .map(attacker_address)
        .collect()
}

fn simulated_alert(
    run: &str,
    host: &str,
    agent: usize,
    seq: u64,
    attackers: &[String],
    rng: &mut impl Rng,
) -> Alert {
    let (rule, title, severity) = RULES[rng.random_range(0..RULES.len())];
    let ip = &attackers[rng.random_range(0..attackers.len())];
    Alert {
        id: format!("{run}-{agent}-{seq}"),
        rule_id: rule.to_string(),
        title: title.to_string(),
        severity,
        time: Utc::now(),
        host: host.to_string(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.clone())]),
        evidence: vec![format!(
            "{} {host} sshd[4242]: Failed password for root from {ip} port 52144 ssh2",
            Utc::now().format("%b %e %H:%M:%S")
        )],
        tags: vec!["attack.t1110".to_string()],
        source: "file:/var/log/auth.log".to_string(),
        packets: vec![],
        drill_id: None,
    }
}

fn count_error(errors: &mut BTreeMap<String, u64>, e: impl std::fmt::Display) {
    let mut key = e.to_string();
    key.truncate(120);
    *errors.entry(key).or_default() += 1;
}

/// Runs the load and reports what it measured.
pub async fn run(opts: LoadOptions) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(opts.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(
        (1..=crate::wire::MAX_BATCH_ALERTS).contains(&opts.batch),
        "--batch must be 1 to {}",
        crate::wire::MAX_BATCH_ALERTS
    );
    anyhow::ensure!(
        opts.heartbeat >= Duration::from_secs(1),
        "--heartbeat must be at least 1s"
    );
    anyhow::ensure!(
        (1..=ATTACKER_POOL).contains(&opts.attackers_per_host),
        "--attackers-per-host must be 1 to {ATTACKER_POOL}"
    );
    let run_id = format!("load{:x}", rand::rng().random::<u32>());
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(32));
    let mut enrolling = tokio::task::JoinSet::new();
    for n in 0..opts.agents {
        let token = opts.token.clone();
        let host = format!("{}-{n:04}", opts.host_prefix);
        let gate = gate.clone();
        enrolling.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let id = enroll(&token, &host)
                .await
                .with_context(|| format!("enrolling simulated agent {host}"))?;
            anyhow::Ok((n, host, Uplink::new(id)?))
        });
    }
    let mut uplinks = Vec::with_capacity(opts.agents);
    while let Some(r) = enrolling.join_next().await {
        uplinks.push(r.context("enrollment task")??);
    }
    uplinks.sort_by_key(|(n, _, _)| *n);
    let enroll_s = started.elapsed().as_secs_f64();
    tracing::info!(
        agents = uplinks.len(),
        enroll_s,
        "simulated agents enrolled"
    );

    let per_agent_rate = opts.alerts_per_sec / opts.agents as f64;
    let batch_every =
        (per_agent_rate > 0.0).then(|| Duration::from_secs_f64(opts.batch as f64 / per_agent_rate));
    let load_start = Instant::now();
    let deadline = load_start + opts.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, host, uplink) in uplinks {
        let run_id = run_id.clone();
        let heartbeat = opts.heartbeat;
        let batch = opts.batch;
        let attackers = opts.attackers_per_host;
        let fixed = opts.fixed_batches;
        tasks.spawn(async move {
            agent_loop(
                n,
                host,
                uplink,
                run_id,
                heartbeat,
                batch_every,
                batch,
                attackers,
                fixed,
                deadline,
            )
            .await
        });
    }
    let mut all = AgentTally::default();
    while let Some(r) = tasks.join_next().await {
        let t = r.context("simulated agent task")?;
        all.batches.extend(t.batches);
        all.heartbeats.extend(t.heartbeats);
        all.delays.extend(t.delays);
        all.accepted += t.accepted;
        all.duplicates += t.duplicates;
        for (k, v) in t.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let duration_s = load_start.elapsed().as_secs_f64();
    Ok(LoadReport {
        agents: opts.agents,
        enroll_s,
        duration_s,
        target_alerts_per_sec: opts.alerts_per_sec,
        alerts_accepted: all.accepted,
        alerts_duplicate: all.duplicates,
        alerts_per_sec: all.accepted as f64 / duration_s.max(1e-9),
        batches: Latency::of(all.batches),
        alert_delay: Latency::of(all.delays),
        heartbeats: Latency::of(all.heartbeats),
        errors: all.errors,
    })
}

#[allow(clippy::too_many_arguments)]
async fn agent_loop(
    n: usize,
    host: String,
    uplink: Uplink,
    run_id: String,
    heartbeat: Duration,
    batch_every: Option<Duration>,
    batch: usize,
    attackers: usize,
    fixed_batches: bool,
    deadline: Instant,
) -> AgentTally {
    let mut tally = AgentTally::default();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let attackers = host_attackers(attackers, &mut rng);
    let start = Instant::now();
    // Spread first heartbeats and batches over their intervals, as a real
    // fleet that did not start in the same second.
    let mut next_hb = start + heartbeat.mul_f64(rng.random_range(0.0..1.0));
    let mut next_batch = batch_every.map(|every| start + every.mul_f64(rng.random_range(0.0..1.0)));
    // The agent's spool: alerts made on schedule, each with its time, not
    // yet acknowledged.
    let mut pending: std::collections::VecDeque<(Alert, Instant)> = Default::default();
    // A real agent sends what its spool holds (up to the batch limit) as
    // soon as the previous request is answered; --fixed-batches sends each
    // scheduled batch on its own.
    let most = if fixed_batches {
        batch
    } else {
        crate::wire::MAX_BATCH_ALERTS
    };
    let mut seq = 0u64;
    let mut hb_count = 0u64;
    loop {
        let now = Instant::now();
        // Fixed schedule: a slow answer does not lower the offered load.
        while let Some((due, every)) = next_batch.zip(batch_every) {
            if due > now || due >= deadline {
                break;
            }
            for _ in 0..batch {
                seq += 1;
                let a = simulated_alert(&run_id, &host, n, seq, &attackers, &mut rng);
                pending.push_back((a, due));
            }
            next_batch = Some(due + every);
            if fixed_batches {
                break;
            }
        }
        if next_hb <= now && next_hb < deadline {
            hb_count += 1;
            let hb = Heartbeat {
                version: crate::VERSION.to_string(),
                rules_version: "load".to_string(),
                uptime_s: start.elapsed().as_secs(),
                alerts_total: seq,
                heartbeat_interval_s: heartbeat.as_secs(),
                ..Heartbeat::default()
            };
            let t = Instant::now();
            match uplink.heartbeat(&hb).await {
                Ok(()) => tally.heartbeats.push(t.elapsed()),
                Err(e) => count_error(&mut tally.errors, e),
            }
            next_hb += heartbeat;
            continue;
        }
        if !pending.is_empty() {
            let take = pending.len().min(most);
            let oldest = pending[0].1;
            let alerts: Vec<Alert> = pending.drain(..take).map(|(a, _)| a).collect();
            let t = Instant::now();
            match uplink
                .send_alerts(&AlertBatch {
                    alerts,
                    gaps: vec![],
                })
                .await
            {
                Ok(ack) => {
                    tally.batches.push(t.elapsed());
                    tally.delays.push(oldest.elapsed());
                    tally.accepted += ack.accepted;
                    tally.duplicates += ack.duplicates;
                }
                Err(e) => count_error(&mut tally.errors, e),
            }
            continue;
        }
        let next = next_batch.map_or(next_hb, |b| b.min(next_hb));
        if next >= deadline {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
    }
    tracing::debug!(
        agent = n,
        heartbeats = hb_count,
        alerts = seq,
        "simulated agent done"
    );
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(samples);
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 51.0).abs() < 1.01, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 1.01, "{l:?}");
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(Latency::of(vec![]).count, 0);
    }

    #[test]
    fn simulated_alerts_have_unique_ids_and_an_attacker() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let attackers = host_attackers(4, &mut rng);
        let a = simulated_alert("r", "h-0001", 1, 1, &attackers, &mut rng);
        let b = simulated_alert("r", "h-0001", 1, 2, &attackers, &mut rng);
        assert_ne!(a.id, b.id);
        assert!(attackers.contains(&a.entities["src_ip"]));
        assert!(a.primary_entity().is_some());
    }

    #[test]
    fn a_host_sees_its_own_distinct_attackers_from_the_pool() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let pool: std::collections::BTreeSet<String> =
            (0..ATTACKER_POOL).map(attacker_address).collect();
        assert_eq!(pool.len(), ATTACKER_POOL, "pool addresses are distinct");
        assert!(pool.contains("198.51.0.1") && pool.contains("198.51.1.199"));
        for n in [1, 4, 50, ATTACKER_POOL, ATTACKER_POOL + 10] {
            let picked = host_attackers(n, &mut rng);
            let distinct: std::collections::BTreeSet<&String> = picked.iter().collect();
            assert_eq!(picked.len(), n.min(ATTACKER_POOL));
            assert_eq!(distinct.len(), picked.len(), "no address twice");
            assert!(picked.iter().all(|a| pool.contains(a)));
        }
        // A host's alerts cite only its own attackers.
        let mine = host_attackers(3, &mut rng);
        for seq in 0..200 {
            let a = simulated_alert("r", "h", 0, seq, &mine, &mut rng);
            assert!(mine.contains(&a.entities["src_ip"]));
        }
    }
}
