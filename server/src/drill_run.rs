//! `ward drill run`: a scenario played live against a running coordinator.
//!
//! The coordinator records the drill and gives it an id. Each host of the
//! scenario gets a sandboxed `ward-agent run` (the real binary): a temp
//! state dir, enrolled with an enrollment token created for the drill in
//! the host's agency, its log files, a watched web root (`[[files]]`), a
//! capture directory (`[[pcap]] dir`) and `drill_id` in its config, so
//! every alert it sends carries the drill id. The runner then plays the
//! timeline on the wall clock — appends log lines (timestamps rewritten to
//! now), renames captures into the capture dir, writes files into the web
//! root — while it watches the drill's incidents appear on the coordinator,
//! scores them (time to detect = incident creation − drill start), stores
//! the scorecard with the drill and stops the agents.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::process::{Child, Command};
use ward_agent::drill::score::{Detection, Scorecard, expectation_matches, score};
use ward_agent::drill::{Action, Scenario, retime_line};

use crate::client::ApiClient;
use crate::model::{EnrollTokenRequest, FinishDrill, Incident, NewDrill};

/// How a live drill runs.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The `ward-agent` binary to start for each host.
    pub agent_bin: PathBuf,
    /// Keep the sandbox (state dirs, logs, agent logs) afterwards.
    pub keep: bool,
    /// Print progress on stderr.
    pub progress: bool,
    /// How long to wait for an agent to start, in seconds.
    pub start_timeout_s: u64,
    /// Seconds the runner's lease on the coordinator lasts (renewed every
    /// third of it); a drill whose runner dies is abandoned when it ends.
    pub lease_s: u32,
}

/// How long the runner keeps watching after every expectation is met, for
/// alerts still on their way (false alarms count too).
const SETTLE: Duration = Duration::from_millis(1500);
/// How often the coordinator is asked for the drill's incidents.
const POLL: Duration = Duration::from_millis(250);

struct Sandbox {
    host: String,
    dir: PathBuf,
    child: Option<Child>,
}

enum Step {
    Begin(usize),
    Line {
        host: usize,
        log: String,
        text: String,
    },
    Pcap {
        host: usize,
        src: PathBuf,
        n: usize,
    },
    File {
        host: usize,
        rel: String,
        bytes: Vec<u8>,
    },
}

struct Progress {
    on: bool,
    start: Instant,
}

impl Progress {
    fn say(&self, msg: &str) {
        if self.on {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "[+{:>7.1}s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }
}

fn quote(s: &str) -> String {
    // A JSON string is a valid TOML basic string.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        let t = e.file_type()?;
        if t.is_dir() {
            copy_tree(&e.path(), &dst)?;
        } else if t.is_file() {
            std::fs::copy(e.path(), &dst)?;
        }
    }
    Ok(())
}

/// Seconds from `start` to an RFC 3339 time.
fn offset(start: DateTime<Utc>, t: &str) -> Option<f64> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| (t.with_timezone(&Utc) - start).num_milliseconds() as f64 / 1000.0)
}

fn detection(start: DateTime<Utc>, i: &Incident) -> Detection {
    Detection {
        incident_id: Some(i.id),
        rule_id: i.rule_id.clone(),
        title: i.title.clone(),
        host: i.host.clone(),
        severity: i.severity,
        entities: i.entities.clone(),
        alert_count: i.alert_count,
        detected_s: offset(start, &i.created_at).unwrap_or(0.0).max(0.0),
        acknowledged_s: None,
        resolved_s: None,
    }
}

/// Plays `s` live through sandboxed agents against the coordinator `api`
/// talks to, and returns the scorecard (also stored with the drill).
pub async fn run_live(
    api: &ApiClient,
    s: &Scenario,
    opts: &LiveOptions,
) -> anyhow::Result<Scorecard> {
    if !opts.agent_bin.is_file() {
        anyhow::bail!(
            "no ward-agent binary at {} (give --agent-bin or set WARD_AGENT_BIN)",
            opts.agent_bin.display()
        );
    }
    let drill = api
        .create_drill(&NewDrill {
            scenario: s.name.clone(),
            description: s.description.clone(),
            source: s.source.clone(),
            lease_s: Some(opts.lease_s),
        })
        .await
        .context("recording the drill on the coordinator")?;
    let id = drill.id.clone();
    let mut progress = Progress {
        on: opts.progress,
        start: Instant::now(),
    };
    progress.say(&format!(
        "drill {id}: scenario {} — {} hosts, {} injects, {} expectations",
        s.name,
        s.hosts.len(),
        s.injects.len(),
        s.expect.len()
    ));
    let root = std::env::temp_dir().join(format!("ward-{id}"));
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the sandbox {}", root.display()))?;
    let mut boxes: Vec<Sandbox> = Vec::new();
    // Ctrl-C or SIGTERM must not leave sandboxed agents running: stop them
    // and mark the drill aborted. The lease is renewed while the drill runs;
    // if the coordinator abandoned the drill meanwhile, the run stops.
    let result = tokio::select! {
        r = run_inner(api, s, opts, &id, &root, &mut boxes, &mut progress) => r,
        () = interrupted() => Err(anyhow::anyhow!("interrupted")),
        e = keep_lease(api, &id, opts.lease_s) => Err(e),
    };
    for b in &mut boxes {
        if let Some(child) = b.child.as_mut() {
            stop(child).await;
        }
    }
    if opts.keep || result.is_err() {
        progress.on = true;
        progress.say(&format!("sandbox kept in {}", root.display()));
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
    let card = match result {
        Ok(card) => card,
        Err(e) => {
            if let Err(e2) = api.abort_drill(&id, &format!("{e:#}")).await {
                progress.say(&format!("could not mark the drill aborted: {e2:#}"));
            }
            return Err(e.context(format!("drill {id} aborted")));
        }
    };
    api.finish_drill(
        &id,
        &FinishDrill {
            scorecard: card.clone(),
        },
    )
    .await
    .context("storing the scorecard on the coordinator")?;
    Ok(card)
}

/// Renews the drill's lease every third of its length until the
/// coordinator refuses (the drill is no longer running); returns why.
/// Failures to reach the coordinator are retried at the next renewal.
async fn keep_lease(api: &ApiClient, id: &str, lease_s: u32) -> anyhow::Error {
    let every = Duration::from_secs_f64(f64::from(lease_s.max(1)) / 3.0);
    loop {
        tokio::time::sleep(every).await;
        match api.renew_drill_lease(id, lease_s).await {
            Ok(_) => {}
            Err(e) if crate::client::status_of(&e).is_some_and(|s| s == 404 || s == 409) => {
                return e.context("the coordinator no longer holds the drill running");
            }
            Err(e) => eprintln!("renewing the lease of drill {id} failed (retrying): {e:#}"),
        }
    }
}

async fn interrupted() {
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

async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn run_inner(
    api: &ApiClient,
    s: &Scenario,
    opts: &LiveOptions,
    id: &str,
    root: &Path,
    boxes: &mut Vec<Sandbox>,
    progress: &mut Progress,
) -> anyhow::Result<Scorecard> {
    // One sandboxed, enrolled agent per host.
    for h in &s.hosts {
        let dir = root.join(&h.name);
        for sub in ["state", "logs", "capture"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let token = api
            .create_enroll_token(&EnrollTokenRequest {
                agency: Some(h.agency.clone()),
                uses: Some(1),
                ttl_hours: Some(1),
                ttl_seconds: None,
                drill_id: Some(id.to_string()),
            })
            .await
            .context("creating an enrollment token for the drill's agent")?;
        let out = Command::new(&opts.agent_bin)
            .arg("enroll")
            .arg("--token")
            .arg(&token.token)
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--hostname")
            .arg(&h.name)
            .env("WARD_LOG", "warn")
            .output()
            .await
            .with_context(|| format!("running {}", opts.agent_bin.display()))?;
        if !out.status.success() {
            anyhow::bail!(
                "enrolling the agent of host {} failed: {}",
                h.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut cfg = format!(
            "state_dir = {}\nhost = {}\ndrill_id = {}\npoll_interval_ms = 100\nheartbeat_interval_s = 5\n",
            quote(&dir.join("state").to_string_lossy()),
            quote(&h.name),
            quote(id)
        );
        for l in &h.logs {
            let path = dir.join("logs").join(&l.name);
            std::fs::File::create(&path)?;
            let format = serde_json::to_value(l.format)?;
            cfg.push_str(&format!(
                "\n[[logs]]\npath = {}\nformat = {}\n",
                quote(&path.to_string_lossy()),
                format
            ));
        }
        if h.watches_files {
            let www = dir.join("www");
            match &h.webroot {
                Some(from) => copy_tree(from, &www)?,
                None => std::fs::create_dir_all(&www)?,
            }
            cfg.push_str(&format!(
                "\n[[files]]\npath = {}\n",
                quote(&www.to_string_lossy())
            ));
        }
        if h.captures {
            cfg.push_str(&format!(
                "\n[[pcap]]\ndir = {}\n",
                quote(&dir.join("capture").to_string_lossy())
            ));
        }
        std::fs::write(dir.join("agent.toml"), cfg)?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let child = Command::new(&opts.agent_bin)
            .arg("run")
            .arg("--config")
            .arg(dir.join("agent.toml"))
            .env("WARD_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", opts.agent_bin.display()))?;
        boxes.push(Sandbox {
            host: h.name.clone(),
            dir,
            child: Some(child),
        });
    }
    // Wait until every agent runs (and has its file baseline).
    let deadline = Instant::now() + Duration::from_secs(opts.start_timeout_s.max(1));
    for (b, h) in boxes.iter_mut().zip(&s.hosts) {
        let log = b.dir.join("agent.log");
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let ready = text.contains("agent started")
                && (!h.watches_files || text.contains("file baseline ready"));
            if ready {
                break;
            }
            if let Some(child) = b.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                anyhow::bail!(
                    "the agent of host {} exited ({status}):\n{}",
                    b.host,
                    tail(&log)
                );
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the agent of host {} did not start within {} s:\n{}",
                    b.host,
                    opts.start_timeout_s,
                    tail(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        progress.say(&format!(
            "agent for {} running ({})",
            b.host,
            b.dir.display()
        ));
    }

    // The timeline as steps on the wall clock.
    let mut steps: Vec<(f64, usize, Step)> = Vec::new();
    let mut captures = 0;
    for (i, inj) in s.injects.iter().enumerate() {
        let host = s
            .hosts
            .iter()
            .position(|h| h.name == inj.host)
            .context("inject for an unknown host")?;
        let mut push = |t: f64, step: Step| {
            let n = steps.len();
            steps.push((t, n, step));
        };
        push(inj.at_s, Step::Begin(i));
        match &inj.action {
            Action::Log {
                log, lines, rate, ..
            } => {
                for (k, l) in lines.iter().enumerate() {
                    push(
                        inj.at_s + k as f64 / rate,
                        Step::Line {
                            host,
                            log: log.clone(),
                            text: l.clone(),
                        },
                    );
                }
            }
            Action::Pcap { path } => {
                captures += 1;
                push(
                    inj.at_s,
                    Step::Pcap {
                        host,
                        src: path.clone(),
                        n: captures,
                    },
                );
            }
            Action::Drop { path, bytes } | Action::Change { path, bytes } => push(
                inj.at_s,
                Step::File {
                    host,
                    rel: path.clone(),
                    bytes: bytes.clone(),
                },
            ),
        }
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let start_wall = Utc::now();
    let start = Instant::now();
    progress.start = start;
    progress.say("drill started");
    let mut watch = Watcher {
        seen: BTreeMap::new(),
        last_poll: None,
        start_wall,
    };
    let mut files: BTreeMap<PathBuf, std::fs::File> = BTreeMap::new();
    for (t, _, step) in steps {
        let at = start + Duration::from_secs_f64(t);
        watch.wait_until(api, id, at, progress).await?;
        match step {
            Step::Begin(i) => progress.say(&format!("inject: {}", s.injects[i].describe())),
            Step::Line { host, log, text } => {
                let path = boxes[host].dir.join("logs").join(&log);
                let f = match files.entry(path.clone()) {
                    std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::btree_map::Entry::Vacant(v) => v.insert(
                        std::fs::OpenOptions::new()
                            .append(true)
                            .open(&path)
                            .with_context(|| format!("opening {}", path.display()))?,
                    ),
                };
                writeln!(f, "{}", retime_line(&text, Utc::now()))?;
            }
            Step::Pcap { host, src, n } => {
                let dir = boxes[host].dir.join("capture");
                let name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "capture.pcap".into());
                let name = if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                    name
                } else {
                    format!("{name}.pcap")
                };
                let tmp = dir.join(format!(".{n}-{name}.tmp"));
                std::fs::copy(&src, &tmp)?;
                std::fs::rename(&tmp, dir.join(format!("{n}-{name}")))?;
            }
            Step::File { host, rel, bytes } => {
                let path = boxes[host].dir.join("www").join(&rel);
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p)?;
                }
                std::fs::write(&path, &bytes)?;
            }
        }
    }
    drop(files);
    let last = s.last_inject_s();
    progress.say(&format!(
        "timeline done; waiting up to {:.0} s for detections",
        s.timeout_s
    ));
    let deadline = start + Duration::from_secs_f64(last + s.timeout_s);
    let mut met_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        watch.poll(api, id, progress).await?;
        let dets: Vec<Detection> = watch
            .seen
            .values()
            .map(|i| detection(start_wall, i))
            .collect();
        let all = s
            .expect
            .iter()
            .all(|e| dets.iter().any(|d| expectation_matches(e, d)));
        if all {
            let since = *met_at.get_or_insert(now);
            if now.duration_since(since) >= SETTLE {
                break;
            }
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(now))).await;
    }
    watch.poll(api, id, progress).await?;

    let mut dets = Vec::new();
    for inc in watch.seen.values() {
        let mut d = detection(start_wall, inc);
        let detail = api.incident(inc.id).await?;
        let first = |kinds: &[&str]| {
            detail
                .timeline
                .iter()
                .find(|e| kinds.contains(&e.kind.as_str()))
                .and_then(|e| offset(start_wall, &e.at))
        };
        d.acknowledged_s = first(&["acknowledged", "contained", "resolved", "false_positive"]);
        d.resolved_s = first(&["resolved", "false_positive"]);
        dets.push(d);
    }
    Ok(score(
        s,
        id,
        "live",
        &start_wall.to_rfc3339_opts(SecondsFormat::Millis, true),
        dets,
    ))
}

struct Watcher {
    seen: BTreeMap<i64, Incident>,
    last_poll: Option<Instant>,
    start_wall: DateTime<Utc>,
}

impl Watcher {
    async fn poll(&mut self, api: &ApiClient, id: &str, progress: &Progress) -> anyhow::Result<()> {
        self.last_poll = Some(Instant::now());
        let mut list = api.drill_incidents(id, None).await?;
        list.sort_by_key(|i| i.id);
        for i in list {
            if !self.seen.contains_key(&i.id) {
                let ent: Vec<String> = i
                    .entities
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "sha256"))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                progress.say(&format!(
                    "incident #{} after {:.1} s: {} ({}) on {} {}",
                    i.id,
                    offset(self.start_wall, &i.created_at).unwrap_or(0.0),
                    i.title,
                    i.severity,
                    i.host,
                    ent.join(" ")
                ));
            }
            self.seen.insert(i.id, i);
        }
        Ok(())
    }

    /// Sleeps until `at`, asking the coordinator for incidents meanwhile.
    async fn wait_until(
        &mut self,
        api: &ApiClient,
        id: &str,
        at: Instant,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        loop {
            let now = Instant::now();
            if now >= at {
                return Ok(());
            }
            let due = self.last_poll.is_none_or(|p| now.duration_since(p) >= POLL);
            if due && at.duration_since(now) > Duration::from_millis(50) {
                self.poll(api, id, progress).await?;
                continue;
            }
            tokio::time::sleep(at.duration_since(now).min(POLL)).await;
        }
    }
}
