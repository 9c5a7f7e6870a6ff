//! File detection end to end with the real binaries: an agent watching a
//! temp web root; a webshell dropped into its uploads dir and a defaced
//! index page become incidents on the coordinator carrying the file's
//! sha256, path and the matched strings; the watcher's counters reach the
//! coordinator in heartbeats; a restart sends nothing twice and loads the
//! YARA rules compiled from the state dir.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use ward_e2e::{Proc, Server, eventually, start_agent};

/// Starts the agent and waits until its file baseline is ready.
fn start_watching_agent(config: &Path) -> Proc {
    let mut agent = start_agent(None, config);
    agent.wait_for("file baseline ready", Duration::from_secs(60));
    agent
}

const WEBSHELL: &str =
    "<?php\nif (isset($_POST['k'])) { @eval(base64_decode($_POST['k'])); }\n?>\n";

#[test]
fn a_dropped_webshell_and_a_defacement_become_incidents_with_hash_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("agent-state");
    server.enroll_agent("Sở TT&TT", "portal01", &state);

    let web = tmp.path().join("www");
    std::fs::create_dir_all(web.join("uploads/2026")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<html><body>Cổng thông tin</body></html>",
    )
    .unwrap();
    std::fs::write(web.join("uploads/2026/report.pdf"), b"%PDF-1.4 test").unwrap();
    let web = std::fs::canonicalize(&web).unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = \"portal01\"\nheartbeat_interval_s = 1\n[[files]]\npath = {:?}\n",
            state.display().to_string(),
            web.display().to_string()
        ),
    )
    .unwrap();
    let mut agent = start_watching_agent(&config);
    // The YARA rules were compiled by a `compile-yara` child into the state dir.
    assert!(state.join("yara-rules.bin").is_file());
    assert!(agent.stderr().contains("built=Child"), "{}", agent.stderr());
    // The clean tree raises nothing.
    std::thread::sleep(Duration::from_millis(500));
    assert!(server.incidents().is_empty());

    // A webshell lands in the uploads dir.
    let shell = web.join("uploads/2026/avatar.php");
    let dropped = Instant::now();
    std::fs::write(&shell, WEBSHELL).unwrap();
    let sha = hex::encode(Sha256::digest(WEBSHELL.as_bytes()));
    let shell_path = shell.display().to_string();
    let list = eventually(Duration::from_secs(30), "the webshell incidents", || {
        let l = server.incidents();
        let yara = l
            .iter()
            .any(|i| i["rule_id"].as_str().unwrap_or("").starts_with("yara:"));
        let sigma = l
            .iter()
            .any(|i| i["title"] == "Server-side script written in an upload directory");
        (yara && sigma).then_some(l)
    });
    eprintln!(
        "webshell incident visible {:?} after the drop",
        dropped.elapsed()
    );
    let yara: Vec<&Value> = list
        .iter()
        .filter(|i| i["rule_id"].as_str().unwrap().starts_with("yara:"))
        .collect();
    for inc in &yara {
        assert_eq!(inc["host"], "portal01");
        assert_eq!(inc["entities"]["sha256"], sha.as_str(), "{inc:#?}");
        assert_eq!(inc["entities"]["path"], shell_path.as_str(), "{inc:#?}");
        assert_eq!(inc["severity"], "critical");
    }
    let eval = yara
        .iter()
        .find(|i| i["rule_id"] == "yara:webshells_php:ward_php_eval_request")
        .expect("the eval-of-request rule fired");
    let shown = server.ward_json(&["incidents", "show", &eval["id"].to_string()]);
    let evidence: Vec<String> = shown["alerts"][0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("eval(base64_decode($_POST")),
        "matched strings are shown: {evidence:#?}"
    );
    let upload = list
        .iter()
        .find(|i| i["title"] == "Server-side script written in an upload directory")
        .unwrap();
    assert_eq!(upload["entities"]["sha256"], sha.as_str(), "{upload:#?}");

    // The watcher's counters reach the coordinator in heartbeats: the drop
    // was scanned and matched, the first full pass is counted, nothing was
    // skipped.
    let hb = eventually(Duration::from_secs(15), "a heartbeat with the scan", || {
        let agents = server.ward_json(&["agents", "list"]);
        let hb = agents[0]["heartbeat"].clone();
        let n = |k: &str| hb[k].as_u64().unwrap_or(0);
        (n("files_scanned_total") >= 3 && n("yara_matches_total") >= 1).then_some(hb)
    });
    eprintln!("heartbeat: {hb}");
    assert!(hb["files_scanned_bytes_total"].as_u64().unwrap() >= WEBSHELL.len() as u64);
    assert!(hb["files_full_passes_total"].as_u64().unwrap() >= 1, "{hb}");
    // The drop is a `created` integrity event.
    assert!(hb["integrity_events_total"].as_u64().unwrap() >= 1, "{hb}");
    assert_eq!(hb["files_notify_overflows_total"], 0, "{hb}");
    let skipped = &hb["files_skipped"];
    for reason in [
        "too_large",
        "unreadable",
        "vanished",
        "special",
        "timeout",
        "scan_error",
    ] {
        assert_eq!(skipped[reason], 0, "{reason}: {hb}");
    }
    let table = server.ward(&["agents", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("FILES/YARA"), "{table}");
    let column = format!(
        " {}/{} ",
        hb["files_scanned_total"], hb["yara_matches_total"]
    );
    assert!(table.contains(&column), "{column:?} in {table}");

    // The index page is defaced.
    std::fs::write(
        web.join("index.html"),
        "<html><head><title>Hacked by Gh0st</title></head><body><h1>Hacked by Gh0st</h1></body></html>",
    )
    .unwrap();
    let list = eventually(Duration::from_secs(30), "the defacement incidents", || {
        let l = server.incidents();
        let page = l
            .iter()
            .any(|i| i["title"] == "Web site index page changed");
        let yara = l
            .iter()
            .any(|i| i["rule_id"] == "yara:defacement_spam:ward_defacement_page");
        (page && yara).then_some(l)
    });
    let before = list.len();

    // Restart: the baseline and the stable alert ids mean nothing new.
    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
    let mut agent = start_watching_agent(&config);
    // ... and the restart loads them from there without compiling.
    let log = agent.stderr();
    assert!(
        log.contains("YARA rules loaded compiled from the state dir") && !log.contains("built="),
        "{log}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.incidents().len(), before);
    assert_eq!(server.metric("ward_alerts_duplicate_total"), 0.0);

    // Deleting the shell is an integrity event too, but no new incident kind
    // is expected from the shipped rules; the agent keeps running.
    std::fs::remove_file(&shell).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
}
