//! Drills end to end: `ward drill run` against a real coordinator starts
//! real sandboxed `ward-agent` processes, plays the scenario, and scores
//! the drill's incidents — which never mix with real ones.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use ward_e2e::{Server, bin, eventually, rules_dir, start_agent};

fn drill_run(server: &Server, scenario: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["drill", "run"];
    let s = scenario.to_string_lossy().into_owned();
    args.push(&s);
    args.extend_from_slice(extra);
    let agent = bin("ward-agent").to_string_lossy().into_owned();
    args.extend_from_slice(&["--agent-bin", &agent]);
    server.ward(&args)
}

fn scorecard(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_ssh_drill_runs_live_and_never_mixes_with_a_real_incident() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));

    // A real attack first: the same rule, host name and attacker address
    // as the drill's.
    let state = dir.path().join("real-agent");
    server.enroll_agent("Sở Thông tin và Truyền thông", "portal", &state);
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = \"portal\"\npoll_interval_ms = 100\n[[logs]]\npath = {:?}\nformat = \"syslog\"\n",
            state, log
        ),
    )
    .unwrap();
    let mut real_agent = start_agent(None, &config);
    let now = chrono::Local::now().format("%b %e %H:%M:%S").to_string();
    let lines: String = (0..5)
        .map(|i| format!("{now} portal sshd[9{i}]: Failed password for root from 198.51.100.77 port 4{i}000 ssh2\n"))
        .collect();
    std::fs::write(&log, lines).unwrap();
    let real = eventually(Duration::from_secs(20), "the real incident", || {
        let list = server.incidents();
        (list.len() == 1).then(|| list[0].clone())
    });
    assert_eq!(real["drill"], false);

    // The drill.
    let out = drill_run(
        &server,
        &rules_dir().join("drills/ssh-brute-force"),
        &["--json"],
    );
    assert!(
        out.status.success(),
        "the drill failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let card = scorecard(&out);
    assert_eq!(card["mode"], "live");
    assert_eq!(card["expected"], 3, "{card:#}");
    assert_eq!(card["detected"], 3, "{card:#}");
    assert_eq!(card["missed"], 0);
    assert_eq!(card["false_alarms"], 0);
    for item in card["items"].as_array().unwrap() {
        assert_eq!(item["detected"], true, "{item}");
        let t = item["time_to_detect_s"].as_f64().unwrap();
        assert!(t > 0.0 && t <= item["within_s"].as_f64().unwrap(), "{item}");
    }
    let attacker = &card["attackers"][0];
    assert_eq!(attacker["ips"][0], "198.51.100.77");
    assert!(
        attacker["timeline"].as_array().unwrap().len() >= 2,
        "{attacker}"
    );
    let id = card["drill_id"].as_str().unwrap().to_string();

    // The real incident is untouched; the drill's are apart.
    let list = server.incidents();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], real["id"]);
    assert_eq!(list[0]["alert_count"], real["alert_count"]);
    let drill_incidents = server.ward_json(&["incidents", "list", "--drill", &id]);
    let drill_incidents = drill_incidents.as_array().unwrap();
    assert_eq!(drill_incidents.len(), 3, "{drill_incidents:?}");
    for i in drill_incidents {
        assert_eq!(i["drill"], true);
        assert_eq!(i["drill_id"], id.as_str());
        assert_eq!(i["agency"], "Sở Thông tin và Truyền thông");
        assert_ne!(i["id"], real["id"]);
    }
    assert_eq!(server.metric("ward_incidents_open"), 1.0);

    // Kept on the coordinator; a responder's acknowledgement shows up.
    let drills = server.ward_json(&["drill", "list"]);
    assert_eq!(drills[0]["id"], id.as_str());
    assert_eq!(drills[0]["status"], "finished");
    let first = drill_incidents[0]["id"].as_i64().unwrap().to_string();
    let ack = server.ward(&["incidents", "ack", &first, "-m", "drill: on it"]);
    assert!(ack.status.success());
    let shown = server.ward_json(&["drill", "show", &id]);
    assert_eq!(shown["scorecard"]["totals"]["acknowledged"], 1, "{shown:#}");
    let report = server.ward(&["drill", "report", &id]);
    assert!(report.status.success());
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.contains(&format!("# After-action report: drill {id}")),
        "{report}"
    );
    assert!(
        report.contains("### ssh-guesser (198.51.100.77)"),
        "{report}"
    );
    assert!(report.contains("drill: on it"), "{report}");
    real_agent.terminate();
}

#[test]
fn capture_and_web_root_drills_run_live() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    for name in ["portal-scan-exploit", "webshell-upload"] {
        let out = drill_run(&server, &rules_dir().join("drills").join(name), &["--json"]);
        let card = scorecard(&out);
        assert!(
            out.status.success(),
            "{name}: {card:#}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(card["missed"], 0, "{name}: {card:#}");
        assert_eq!(card["false_alarms"], 0, "{name}: {card:#}");
    }
    // Network incidents of a drill keep their packets.
    let all = server.ward_json(&["incidents", "list", "--drill", "all"]);
    let scan = all
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "Vertical port scan")
        .expect("the scan incident");
    let detail = server.ward_json(&["incidents", "show", &scan["id"].to_string()]);
    assert!(
        detail["alerts"][0]["packet_count"].as_i64().unwrap() > 0,
        "{detail:#}"
    );
    assert!(server.incidents().is_empty(), "no real incident");
}

#[test]
fn a_missed_expectation_fails_the_drill_and_a_bad_scenario_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let demo = rules_dir().join("drills/demo-ssh-brute-force");
    let scen = dir.path().join("wrong");
    std::fs::create_dir_all(&scen).unwrap();
    std::fs::copy(demo.join("auth.log"), scen.join("auth.log")).unwrap();
    let text = std::fs::read_to_string(demo.join("scenario.yml"))
        .unwrap()
        .replace("name: demo-ssh-brute-force", "name: wrong")
        .replace(
            "entity: {src_ip: 203.0.113.7}",
            "entity: {src_ip: 203.0.113.8}",
        )
        .replace("within: 30s", "within: 3s");
    std::fs::write(scen.join("scenario.yml"), text).unwrap();
    let out = drill_run(&server, &scen, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let card = scorecard(&out);
    assert_eq!(
        (card["detected"].as_i64(), card["missed"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(card["items"][0]["detected"], false);
    assert!(card["items"][0]["time_to_detect_s"].is_null());

    std::fs::write(
        scen.join("scenario.yml"),
        "name: wrong\nhosts:\n  - name: a\n    color: red\n",
    )
    .unwrap();
    let out = drill_run(&server, &scen, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scenario.yml:4:") && err.contains("unknown field `color`"),
        "{err}"
    );
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn an_interrupted_drill_stops_its_agents_and_is_marked_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let demo = rules_dir().join("drills/demo-ssh-brute-force");
    let scen = dir.path().join("slow");
    std::fs::create_dir_all(&scen).unwrap();
    std::fs::copy(demo.join("auth.log"), scen.join("auth.log")).unwrap();
    let text = std::fs::read_to_string(demo.join("scenario.yml"))
        .unwrap()
        .replace("name: demo-ssh-brute-force", "name: slow")
        .replace("  - at: 0s\n", "  - at: 60s\n")
        .replace("within: 30s", "within: 90s");
    std::fs::write(scen.join("scenario.yml"), text).unwrap();
    let mut cmd = std::process::Command::new(bin("ward"));
    cmd.args(["drill", "run", "--progress", "--agent-bin"])
        .arg(bin("ward-agent"))
        .arg(&scen)
        .env("WARD_SERVER", &server.url)
        .env("WARD_TOKEN", &server.admin_token);
    if let Some(ca) = &server.ca {
        cmd.env("WARD_CA", ca);
    }
    let mut ward = ward_e2e::Proc::spawn(cmd);
    let log = ward.wait_for("drill started", Duration::from_secs(60));
    let sandbox = log
        .split("running (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the sandbox path in the progress")
        .to_string();
    assert_eq!(
        processes_mentioning(&sandbox).len(),
        1,
        "one sandboxed agent runs"
    );
    let status = ward.terminate();
    assert!(!status.success());
    eventually(
        Duration::from_secs(5),
        "the runner to say the drill was aborted",
        || ward.stderr().contains("aborted").then_some(()),
    );
    eventually(Duration::from_secs(10), "the agent to stop", || {
        processes_mentioning(&sandbox).is_empty().then_some(())
    });
    let drills = server.ward_json(&["drill", "list"]);
    assert_eq!(drills[0]["status"], "aborted", "{drills:#}");
    assert!(
        drills[0]["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    // An aborted drill keeps its sandbox for a look; the test cleans it up.
    let root = Path::new(&sandbox).parent().unwrap();
    assert!(root.join("demo-host/agent.log").is_file());
    std::fs::remove_dir_all(root).unwrap();
}

/// `ward drill run` killed with SIGKILL cannot clean up: its lease runs
/// out, the coordinator marks the drill abandoned and retires its agents,
/// and the orphaned sandboxed agent stops on its own at its next call
/// (its credential is refused).
#[test]
fn a_killed_runner_leaves_an_abandoned_drill_and_its_agents_retire() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let demo = rules_dir().join("drills/demo-ssh-brute-force");
    let scen = dir.path().join("slow");
    std::fs::create_dir_all(&scen).unwrap();
    std::fs::copy(demo.join("auth.log"), scen.join("auth.log")).unwrap();
    let text = std::fs::read_to_string(demo.join("scenario.yml"))
        .unwrap()
        .replace("name: demo-ssh-brute-force", "name: slow")
        .replace("  - at: 0s\n", "  - at: 60s\n")
        .replace("within: 30s", "within: 90s");
    std::fs::write(scen.join("scenario.yml"), text).unwrap();
    let mut cmd = std::process::Command::new(bin("ward"));
    cmd.args([
        "drill",
        "run",
        "--progress",
        "--lease-secs",
        "3",
        "--agent-bin",
    ])
    .arg(bin("ward-agent"))
    .arg(&scen)
    .env("WARD_SERVER", &server.url)
    .env("WARD_TOKEN", &server.admin_token);
    if let Some(ca) = &server.ca {
        cmd.env("WARD_CA", ca);
    }
    let mut ward = ward_e2e::Proc::spawn(cmd);
    let log = ward.wait_for("drill started", Duration::from_secs(60));
    let sandbox = log
        .split("running (")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .expect("the sandbox path in the progress")
        .to_string();
    let drills = server.ward_json(&["drill", "list"]);
    let id = drills[0]["id"].as_str().unwrap().to_string();
    assert_eq!(drills[0]["status"], "running");

    // The drill's agent is not in the fleet, only with --drill.
    assert!(
        server
            .ward_json(&["agents", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    let sandboxed = server.ward_json(&["agents", "list", "--drill", &id]);
    assert_eq!(sandboxed.as_array().unwrap().len(), 1, "{sandboxed:#}");
    assert_eq!(sandboxed[0]["drill_id"], id.as_str());
    assert!(sandboxed[0]["revoked_at"].is_null());
    assert_eq!(server.metric("ward_agents"), 0.0);

    // Renewed while the runner lives (the lease is 3 s).
    std::thread::sleep(Duration::from_secs(4));
    let shown = server.ward_json(&["drill", "show", &id]);
    assert_eq!(shown["status"], "running", "{shown:#}");

    ward.kill9();
    let killed = chrono::Utc::now();
    assert_eq!(
        processes_mentioning(&sandbox).len(),
        1,
        "the agent is orphaned"
    );
    let shown = eventually(Duration::from_secs(15), "the drill to be abandoned", || {
        let d = server.ward_json(&["drill", "show", &id]);
        (d["status"] == "abandoned").then_some(d)
    });
    let at = chrono::DateTime::parse_from_rfc3339(shown["finished_at"].as_str().unwrap()).unwrap();
    assert!(
        at <= killed + chrono::Duration::seconds(4),
        "abandoned when the lease ended: {shown:#}"
    );
    assert!(
        shown["reason"]
            .as_str()
            .unwrap()
            .contains("stopped renewing"),
        "{shown:#}"
    );
    let listed = server.ward(&["drill", "list"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("abandoned"),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let sandboxed = server.ward_json(&["agents", "list", "--drill", &id]);
    assert!(sandboxed[0]["revoked_at"].is_string(), "{sandboxed:#}");
    // The agent heartbeats every 5 s: the refused heartbeat ends it.
    eventually(
        Duration::from_secs(20),
        "the orphaned agent to stop",
        || processes_mentioning(&sandbox).is_empty().then_some(()),
    );
    let root = Path::new(&sandbox).parent().unwrap();
    let agent_log = std::fs::read_to_string(root.join("demo-host/agent.log")).unwrap();
    assert!(agent_log.contains("sending heartbeats"), "{agent_log}");
    std::fs::remove_dir_all(root).unwrap();
    assert!(
        server.incidents().is_empty(),
        "no silent-agent incident for a drill agent"
    );
}
