//! Delivery that loses nothing, with the real binaries: the coordinator
//! down while the agent detects 10,000 alerts, the agent killed with
//! SIGKILL 20 times while it tails a growing file, a spool cap so small that
//! alerts are dropped (and a gap record says how many), and a silent agent
//! becoming an incident.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ward_e2e::{Proc, Server, bin, eventually, start_agent};

const SQLI_RULE: &str = "b1709dcc-6400-46db-8d02-0dd2a3435dbc";

/// Access-log lines, each a distinct SQL injection attempt (one alert each).
fn sqli_lines(from: usize, n: usize) -> Vec<String> {
    (from..from + n)
        .map(|i| {
            format!(
                "10.9.0.{} - - [22/Nov/2026:04:{:02}:{:02} +0000] \"GET /item.php?id={i}%20union%20select%20password%20from%20users HTTP/1.1\" 200 512 \"-\" \"Mozilla/5.0\"",
                i % 20 + 1,
                (i / 60) % 60,
                i % 60
            )
        })
        .collect()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut text = lines.join("\n");
    text.push('\n');
    f.write_all(text.as_bytes()).unwrap();
}

fn write_config(dir: &Path, state: &Path, log: &Path, extra: &str) -> PathBuf {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = \"web01\"\npoll_interval_ms = 200\nheartbeat_interval_s = 1\n{extra}\n[[logs]]\npath = {:?}\nformat = \"nginx\"\n",
            state.display().to_string(),
            log.display().to_string()
        ),
    )
    .unwrap();
    config
}

/// What `ward-agent replay` finds in the file: the oracle of how many
/// alerts the live agent must deliver.
fn replay_count(log: &Path) -> usize {
    let out = Command::new(bin("ward-agent"))
        .args(["replay", "--log"])
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let alerts: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        alerts.iter().all(|a| a["rule_id"] == SQLI_RULE),
        "other rules fired"
    );
    alerts.len()
}

/// Sum of `count=N` on the agent's "spooling alerts" lines.
fn spooled(agent: &Proc) -> usize {
    agent
        .stderr()
        .lines()
        .filter(|l| l.contains("spooling alerts"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("count="))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .sum()
}

fn stored(server: &Server) -> usize {
    server.metric("ward_alerts_stored") as usize
}

/// Waits until the coordinator stores exactly `n` alerts and stays there.
fn all_delivered_once(server: &Server, n: usize, timeout: Duration) {
    eventually(timeout, &format!("{n} alerts stored"), || {
        let s = stored(server);
        assert!(s <= n, "more alerts stored ({s}) than detected ({n})");
        (s == n).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored(server), n, "alerts arrived after all were stored");
    let total: i64 = server
        .incidents()
        .iter()
        .filter(|i| i["rule_id"] == SQLI_RULE)
        .map(|i| i["alert_count"].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, n, "incident alert counts");
}

#[test]
fn coordinator_down_while_10000_alerts_are_detected_then_all_arrive_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start(&data);
    let addr = server.addr();
    let state = tmp.path().join("state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let log = tmp.path().join("access.log");
    append(
        &log,
        &[
            "127.0.0.1 - - [22/Nov/2026:03:59:59 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\""
                .to_string(),
        ],
    );
    let config = write_config(tmp.path(), &state, &log, "");
    let mut agent = start_agent(None, &config);
    agent.wait_for("following file", Duration::from_secs(30));

    server.proc.terminate();
    const N: usize = 10_000;
    for part in 0..10 {
        append(&log, &sqli_lines(part * 1000, 1000));
    }
    let started = Instant::now();
    eventually(Duration::from_secs(300), "all alerts spooled", || {
        (spooled(&agent) >= N).then_some(())
    });
    eprintln!(
        "{N} alerts detected and spooled in {:?} with the coordinator down",
        started.elapsed()
    );
    assert_eq!(spooled(&agent), N);

    let server = Server::start_at(&data, None, &addr);
    let back = Instant::now();
    all_delivered_once(&server, N, Duration::from_secs(240));
    eprintln!(
        "delivered {N} alerts {:?} after the coordinator came back",
        back.elapsed()
    );
    assert_eq!(replay_count(&log), N);
    // The spool drained: the agent reports it empty.
    eventually(
        Duration::from_secs(20),
        "an empty spool in the heartbeat",
        || {
            let a = server.ward_json(&["agents", "list"]);
            (a[0]["heartbeat"]["spool_entries"] == 0).then_some(())
        },
    );
    let a = server.ward_json(&["agents", "list"]);
    assert!(
        a[0]["heartbeat"]["rss_bytes"].as_u64().unwrap() > 1_000_000,
        "{a}"
    );
    assert_eq!(a[0]["gaps"]["records"], 0, "nothing was dropped");
    drop(agent);
}

#[test]
fn agent_killed_20_times_while_tailing_delivers_every_alert_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let log = tmp.path().join("access.log");
    append(
        &log,
        &[
            "127.0.0.1 - - [22/Nov/2026:03:59:59 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\""
                .to_string(),
        ],
    );
    let config = write_config(tmp.path(), &state, &log, "");

    // A writer appends 20 lines every 30 ms for as long as the kills go on.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written, log) = (stop.clone(), written.clone(), log.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let from = written.load(Ordering::Relaxed);
                append(&log, &sqli_lines(from, 20));
                written.fetch_add(20, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(30));
            }
        })
    };
    let mut seed = std::process::id() as u64;
    for round in 0..20 {
        let mut agent = start_agent(None, &config);
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let ms = 200 + (seed >> 33) % 900;
        std::thread::sleep(Duration::from_millis(ms));
        agent.kill9();
        eprintln!(
            "round {round}: killed after {ms} ms; {} lines written",
            written.load(Ordering::Relaxed)
        );
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let n = written.load(Ordering::Relaxed);
    assert!(n >= 1000, "only {n} lines written");

    let agent = start_agent(None, &config);
    all_delivered_once(&server, n, Duration::from_secs(240));
    assert_eq!(replay_count(&log), n);
    eprintln!(
        "{n} alerts stored once; the coordinator saw {} re-sent duplicates",
        server.metric("ward_alerts_duplicate_total")
    );
    drop(agent);
}

#[test]
fn a_spool_too_small_drops_alerts_and_a_gap_record_counts_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start(&data);
    let addr = server.addr();
    let state = tmp.path().join("state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let log = tmp.path().join("access.log");
    append(
        &log,
        &[
            "127.0.0.1 - - [22/Nov/2026:03:59:59 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\""
                .to_string(),
        ],
    );
    let config = write_config(tmp.path(), &state, &log, "spool_max_bytes = 32768");
    let mut agent = start_agent(None, &config);
    agent.wait_for("following file", Duration::from_secs(30));

    server.proc.terminate();
    const N: usize = 300;
    append(&log, &sqli_lines(0, N));
    eventually(Duration::from_secs(60), "all alerts judged", || {
        (spooled(&agent) >= N).then_some(())
    });
    agent.wait_for("spool full", Duration::from_secs(10));

    let server = Server::start_at(&data, None, &addr);
    let gaps = eventually(Duration::from_secs(120), "a spool_full gap record", || {
        let g = server.ward_json(&["gaps", "list"]);
        let g = g.as_array().unwrap().clone();
        (!g.is_empty()).then_some(g)
    });
    let dropped: u64 = gaps
        .iter()
        .inspect(|g| assert_eq!(g["reason"], "spool_full", "{g}"))
        .map(|g| {
            assert_eq!(g["by_severity"]["high"], g["count"], "{g}");
            assert!(g["first_time"].as_str().unwrap() <= g["last_time"].as_str().unwrap());
            g["count"].as_u64().unwrap()
        })
        .sum();
    assert!(dropped > 0);
    // Everything kept arrives; kept + dropped is what was detected.
    let kept = N - dropped as usize;
    all_delivered_once(&server, kept, Duration::from_secs(120));
    assert!(kept > 10, "the cap holds some alerts: {kept}");
    let agents = server.ward_json(&["agents", "list"]);
    assert_eq!(agents[0]["gaps"]["lost"].as_u64(), Some(dropped));
    assert_eq!(
        agents[0]["gaps"]["by_reason"]["spool_full"].as_u64(),
        Some(dropped)
    );
    let text = server.ward(&["gaps", "list"]);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("spool_full"));
    eprintln!(
        "{kept} alerts delivered, {dropped} dropped and counted in {} gap record(s)",
        gaps.len()
    );
    drop(agent);
}

#[test]
fn a_silent_agent_becomes_an_incident_that_resolves_when_it_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let log = tmp.path().join("access.log");
    append(
        &log,
        &[
            "127.0.0.1 - - [22/Nov/2026:03:59:59 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"curl\""
                .to_string(),
        ],
    );
    let config = write_config(tmp.path(), &state, &log, "");
    let mut agent = start_agent(None, &config);
    eventually(Duration::from_secs(20), "a heartbeat", || {
        let a = server.ward_json(&["agents", "list"]);
        (a[0]["heartbeat"]["heartbeat_interval_s"] == 1).then_some(())
    });
    agent.kill9();
    let killed = Instant::now();
    let inc = eventually(Duration::from_secs(30), "the silent-agent incident", || {
        server
            .incidents()
            .into_iter()
            .find(|i| i["rule_id"] == "ward-agent-silent")
    });
    eprintln!(
        "silent-agent incident {:?} after the kill",
        killed.elapsed()
    );
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["host"], "web01");
    assert_eq!(inc["agency"], "Sở TT&TT");
    assert_eq!(inc["status"], "new");
    let agent = start_agent(None, &config);
    let id = inc["id"].as_i64().unwrap().to_string();
    eventually(Duration::from_secs(30), "the incident resolved", || {
        let d = server.ward_json(&["incidents", "show", &id]);
        (d["status"] == "resolved").then_some(())
    });
    assert_eq!(
        server
            .incidents()
            .iter()
            .filter(|i| i["rule_id"] == "ward-agent-silent")
            .count(),
        1
    );
    drop(agent);
}
