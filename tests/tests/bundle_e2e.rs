//! Signed rule bundles with the real binaries: an agent without local rules
//! runs the coordinator's bundle after checking its Ed25519 signature; a
//! bundle signed with another key is refused, the agent keeps the last good
//! one, and its heartbeat says why.

use std::time::Duration;

use serde_json::Value;
use ward_e2e::{Server, eventually, start_agent};

fn heartbeat(server: &Server, want: impl Fn(&Value) -> bool) -> Value {
    eventually(Duration::from_secs(20), "the expected heartbeat", || {
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
