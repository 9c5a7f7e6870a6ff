//! The whole thin path with the real binaries: coordinator on SQLite, an
//! enrolled agent tailing a real file, SSH brute force appended, one
//! incident through `ward incidents list --json`; an agent restart sends
//! nothing twice.

use std::process::Command;
use std::time::{Duration, Instant};

use ward_e2e::{Server, append_lines, bin, eventually, failed_ssh_logins, start_agent};

const BRUTE_FORCE_RULE: &str = "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d";

#[test]
fn ssh_brute_force_becomes_one_incident_and_a_restart_sends_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));

    // Enroll an agent the way an admin would.
    let state = tmp.path().join("agent-state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let agents = server.ward_json(&["agents", "list"]);
    assert_eq!(agents.as_array().unwrap().len(), 1);
    assert_eq!(agents[0]["hostname"], "web01");
    assert_eq!(agents[0]["agency"], "Sở TT&TT");

    let log = tmp.path().join("auth.log");
    append_lines(
        &log,
        &["Nov 22 03:00:00 web01 sshd[1]: Server listening on 0.0.0.0 port 22.".to_string()],
    );
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = \"web01\"\n[[logs]]\npath = {:?}\nformat = \"auto\"\n",
            state.display().to_string(),
            log.display().to_string()
        ),
    )
    .unwrap();
    let mut agent = start_agent(None, &config);
    agent.wait_for("following file", Duration::from_secs(30));

    // Eight failed logins from one address within a second.
    let appended = Instant::now();
    append_lines(&log, &failed_ssh_logins("web01", "203.0.113.7", 8));
    let list = eventually(Duration::from_secs(30), "the brute-force incident", || {
        let l = server.incidents();
        (!l.is_empty()).then_some(l)
    });
    eprintln!(
        "incident visible {:?} after the lines were appended",
        appended.elapsed()
    );
    assert_eq!(list.len(), 1, "{list:#?}");
    let inc = &list[0];
    assert_eq!(inc["rule_id"], BRUTE_FORCE_RULE);
    assert_eq!(inc["title"], "SSH brute force");
    assert_eq!(inc["host"], "web01");
    assert_eq!(inc["agency"], "Sở TT&TT");
    assert_eq!(inc["entities"]["src_ip"], "203.0.113.7");
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["status"], "new");
    assert_eq!(inc["drill"], false);
    assert_eq!(inc["alert_count"], 1);
    let id = inc["id"].as_i64().unwrap();
    let shown = server.ward_json(&["incidents", "show", &id.to_string()]);
    assert_eq!(shown["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(shown["alerts"][0]["evidence"].as_array().unwrap().len(), 5);

    // Restart the agent: it must resume after what it already sent.
    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
    let mut agent = start_agent(None, &config);
    agent.wait_for("following file", Duration::from_secs(30));
    append_lines(&log, &failed_ssh_logins("web01", "198.51.100.23", 5));
    let list = eventually(Duration::from_secs(30), "the second incident", || {
        let l = server.incidents();
        (l.len() >= 2).then_some(l)
    });
    assert_eq!(list.len(), 2, "{list:#?}");
    let first = list.iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(
        first["alert_count"], 1,
        "the first attack was not counted twice"
    );
    let second = list.iter().find(|i| i["id"] != id).unwrap();
    assert_eq!(second["entities"]["src_ip"], "198.51.100.23");
    assert_eq!(
        server.metric("ward_alerts_duplicate_total"),
        0.0,
        "the restarted agent re-sent alerts"
    );
    assert_eq!(server.metric("ward_alerts_ingested_total"), 2.0);
    drop(agent);
}

#[test]
fn unknown_agents_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("identity.json"),
        format!(
            r#"{{"server_url": "{}", "agent_id": "forged", "agent_token": "wardagent_forged", "agency": "x", "cert_sha256": "{}"}}"#,
            server.url,
            server.cert_sha256.as_deref().expect("the coordinator serves TLS")
        ),
    )
    .unwrap();
    let log = tmp.path().join("auth.log");
    append_lines(&log, &failed_ssh_logins("web01", "203.0.113.7", 5));
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n[[logs]]\npath = {:?}\n",
            state.display().to_string(),
            log.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(bin("ward-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rejected the agent's credentials"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.incidents().is_empty());
}
