//! `ward-agent load` against a real coordinator: simulated agents enroll,
//! heartbeat and send alert batches, and the coordinator stores exactly what
//! the tool reports as accepted.

use std::time::Duration;

use ward_e2e::{Server, bin};

#[test]
fn the_load_tool_drives_a_fleet_and_the_coordinator_stores_every_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let token = server.ward_json(&[
        "enroll-token",
        "create",
        "--agency",
        "Load test",
        "--uses",
        "20",
    ]);
    let token = token["token"].as_str().unwrap();
    let out = std::process::Command::new(bin("ward-agent"))
        .args([
            "load",
            "--agents",
            "20",
            "--rate",
            "400",
            "--batch",
            "5",
            "--heartbeat-secs",
            "1",
            "--duration-secs",
            "3",
            "--json",
        ])
        .env("WARD_ENROLL_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ward-agent load failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["agents"], 20);
    assert_eq!(report["alerts_duplicate"], 0);
    assert!(report["errors"].as_object().unwrap().is_empty(), "{report}");
    let accepted = report["alerts_accepted"].as_u64().unwrap();
    // 400 alerts/s for 3 s, in batches of 5 on a fixed schedule per agent.
    assert!((600..=1300).contains(&accepted), "{report}");
    assert!(
        report["heartbeats"]["count"].as_u64().unwrap() >= 20,
        "{report}"
    );
    assert!(report["batches"]["p99_ms"].as_f64().unwrap() > 0.0);
    // Every acknowledged batch has its delay from its oldest alert's
    // scheduled time, which is at least the request's own time.
    assert_eq!(report["alert_delay"]["count"], report["batches"]["count"]);
    assert!(
        report["alert_delay"]["max_ms"].as_f64().unwrap()
            >= report["batches"]["max_ms"].as_f64().unwrap(),
        "{report}"
    );

    // The coordinator saw the fleet and stored every accepted alert.
    let agents = server.ward_json(&["agents", "list"]);
    assert_eq!(agents.as_array().unwrap().len(), 20);
    let stored: u64 = ward_e2e::eventually(Duration::from_secs(10), "alerts counted", || {
        let n = server.metric("ward_alerts_stored") as u64;
        (n == accepted).then_some(n)
    });
    assert_eq!(stored, accepted);
    let incidents = server.incidents();
    let in_incidents: u64 = incidents
        .iter()
        .map(|i| i["alert_count"].as_u64().unwrap())
        .sum();
    assert!(!incidents.is_empty());
    assert!(in_incidents <= accepted);
}
