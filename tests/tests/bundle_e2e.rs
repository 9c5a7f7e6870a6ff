//! Signed rule bundles with the real binaries: an agent without local rules
//! runs the coordinator's bundle after checking its Ed25519 signature; a
//! bundle signed with another key is refused, the agent keeps the last good
//! one, and its heartbeat says why. While the agent runs, a rule added to
//! the coordinator's `--rules` dir reaches it within its refresh period; a
//! broken rule is never signed, and a bundle that does not verify leaves
//! the running rules in place.

use std::time::Duration;

use serde_json::Value;
use ward_e2e::{Server, eventually, start_agent};

fn heartbeat(server: &Server, want: impl Fn(&Value) -> bool) -> Value {
    eventually(Duration::from_secs(30), "the expected heartbeat", || {
        let agents = server.ward_json(&["agents", "list"]);
        let hb = agents[0]["heartbeat"].clone();
        want(&hb).then_some(hb)
    })
}

#[test]
fn agents_run_the_signed_bundle_and_refuse_one_signed_by_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let state = dir.path().join("agent");
    let server = Server::start(&data);
    server.enroll_agent("Sở Thông tin", "portal01", &state);
    let log = dir.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nhost = \"portal01\"\nheartbeat_interval_s = 1\n[[logs]]\npath = {log:?}\n"
        ),
    )
    .unwrap();

    let mut agent = start_agent(None, &config);
    let hb = heartbeat(&server, |hb| hb["rules_source"] == "bundle");
    assert!(hb.get("bundle_error").is_none(), "{hb}");
    let version = hb["rules_version"].as_str().unwrap().to_string();
    assert!(
        state.join("rules-bundle.json").is_file(),
        "the verified bundle is kept as the last good one"
    );
    agent.terminate();

    // The coordinator comes back signing with a different key (as an
    // impostor or a tampered bundle would): the agent refuses the bundle and
    // runs the last good one.
    let addr = server.addr();
    drop(server);
    std::fs::remove_file(data.join("bundle-signing.pk8")).unwrap();
    let server = Server::start_at(&data, None, &addr);
    let _agent = start_agent(None, &config);
    let hb = heartbeat(&server, |hb| hb["rules_source"] == "saved-bundle");
    let why = hb["bundle_error"].as_str().unwrap_or_default();
    assert!(why.contains("signature"), "{hb}");
    assert_eq!(hb["rules_version"], version.as_str(), "{hb}");
}

const BASE_RULE: &str = "title: Base rule\nid: 5e9b3c43-6a2a-4b39-9d0b-2d2b1b1c0a01\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: wardbase\n  condition: sel\nlevel: low\n";
const NEW_RULE: &str = "title: Canary program ran\nid: 0b5f0e4e-2f7c-4d59-9a43-8c1d7e6f5a11\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: wardcanary\n  condition: sel\nlevel: high\n";
const THIRD_RULE: &str = "title: Third rule\nid: 7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: wardthird\n  condition: sel\nlevel: low\n";
const BROKEN_RULE: &str = "title: broken\nlogsource:\n  product: linux\ndetection:\n  sel:\n    a|nosuchmodifier: 1\n  condition: sel\n";

fn served_version(server: &Server) -> String {
    server.ward_json(&["rules", "show"])["version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_running_agent_picks_up_new_rules_and_keeps_them_when_a_bundle_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let state = dir.path().join("agent");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("sigma")).unwrap();
    std::fs::write(rules.join("sigma/base.yml"), BASE_RULE).unwrap();
    let rules_arg = rules.to_str().unwrap().to_string();
    let server = Server::start_with(&data, None, &["--rules", &rules_arg]);
    server.enroll_agent("Sở Thông tin", "portal02", &state);
    let log = dir.path().join("syslog");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nhost = \"portal02\"\nheartbeat_interval_s = 1\nbundle_refresh_secs = 2\n[[logs]]\npath = {log:?}\n"
        ),
    )
    .unwrap();
    let append = |line: &str| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(f, "{line}").unwrap();
    };
    // Alerts of the new rule, over all its incidents.
    let canary_alerts = |server: &Server| -> u64 {
        server
            .incidents()
            .into_iter()
            .filter(|i| i["title"] == "Canary program ran")
            .filter_map(|i| i["alert_count"].as_u64())
            .sum()
    };

    let _agent = start_agent(None, &config);
    let v1 = served_version(&server);
    heartbeat(&server, |hb| {
        hb["rules_source"] == "bundle" && hb["rules_version"] == v1.as_str()
    });
    // Not detected by the running rules (judged before they change).
    append("Dec  1 10:00:00 portal02 wardcanary[7]: before the new rule");
    heartbeat(&server, |hb| hb["events_total"].as_u64() >= Some(1));

    // A new rule in the coordinator's rules dir: re-signed on the file
    // notification, fetched by the agent within its refresh period.
    let added = std::time::Instant::now();
    std::fs::write(rules.join("sigma/canary.yml"), NEW_RULE).unwrap();
    let v2 = eventually(
        Duration::from_secs(20),
        "the coordinator to re-sign",
        || {
            let v = served_version(&server);
            (v != v1).then_some(v)
        },
    );
    heartbeat(&server, |hb| hb["rules_version"] == v2.as_str());
    eprintln!(
        "new rule running on the agent {:?} after it was written",
        added.elapsed()
    );
    assert_eq!(
        canary_alerts(&server),
        0,
        "the line before the rule stays undetected"
    );
    append("Dec  1 10:00:01 portal02 wardcanary[7]: after the new rule");
    eventually(
        Duration::from_secs(30),
        "an alert from the new rule",
        || (canary_alerts(&server) == 1).then_some(()),
    );
    let audit = server.ward_json(&["audit", "list"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rules.reload"
                && e["actor"] == "coordinator"
                && e["outcome"] == "ok"),
        "{audit:#}"
    );

    // A broken rule is never signed: the reload is refused (422, audited),
    // the coordinator keeps serving v2, the agent keeps running it.
    std::fs::write(rules.join("sigma/broken.yml"), BROKEN_RULE).unwrap();
    let out = server.ward(&["rules", "reload"]);
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("422") || why.contains("do not load"), "{why}");
    assert!(why.contains("broken.yml"), "{why}");
    let shown = server.ward_json(&["rules", "show"]);
    assert_eq!(shown["version"], v2.as_str());
    assert!(
        shown["last_error"].as_str().unwrap().contains("broken.yml"),
        "{shown}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let hb = heartbeat(&server, |hb| hb["rules_version"] == v2.as_str());
    assert!(hb.get("bundle_error").is_none(), "{hb}");
    let audit = server.ward_json(&["audit", "list"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rules.reload"
                && e["outcome"] == "failed"
                && e["actor"] == "admin"),
        "{audit:#}"
    );

    // The coordinator comes back with another signing key and a third rule:
    // the agent refuses that bundle, keeps v2 running and says why.
    std::fs::remove_file(rules.join("sigma/broken.yml")).unwrap();
    std::fs::write(rules.join("sigma/third.yml"), THIRD_RULE).unwrap();
    let addr = server.addr();
    drop(server);
    std::fs::remove_file(data.join("bundle-signing.pk8")).unwrap();
    let server = Server::start_at_with(&data, None, &addr, &["--rules", &rules_arg]);
    let v3 = served_version(&server);
    assert_ne!(v3, v2);
    let hb = heartbeat(&server, |hb| hb["bundle_error"].is_string());
    assert!(
        hb["bundle_error"].as_str().unwrap().contains("signature"),
        "{hb}"
    );
    assert_eq!(hb["rules_version"], v2.as_str(), "{hb}");
    // Still detecting with the rules it kept.
    append("Dec  1 10:00:02 portal02 wardcanary[7]: still detected");
    eventually(
        Duration::from_secs(30),
        "an alert from the kept rules",
        || (canary_alerts(&server) == 2).then_some(()),
    );
}
