//! Federation with the real binaries: a national and a provincial
//! `ward-server` over HTTPS on loopback, the province started with
//! `--upstream`, a real agent's SSH brute force becoming a provincial
//! incident that appears nationally with its province; a status change made
//! while the national coordinator is down, and the provincial one
//! restarted, arrives once the national one is back — one incident there,
//! never a duplicate.

use std::path::Path;
use std::time::Duration;

use ward_e2e::{Server, append_lines, eventually, failed_ssh_logins, start_agent};

fn start_province(data: &Path, national: &Server, token: &str) -> Server {
    let ca = national
        .ca
        .as_ref()
        .expect("the national coordinator serves TLS");
    Server::start_with(
        data,
        None,
        &[
            "--upstream",
            &national.url,
            "--upstream-token",
            token,
            "--upstream-ca",
            ca.to_str().unwrap(),
        ],
    )
}

#[test]
fn a_provincial_incident_and_its_updates_reach_the_national_coordinator_once() {
    let tmp = tempfile::tempdir().unwrap();
    let national_data = tmp.path().join("national");
    let mut national = Server::start(&national_data);
    let out = national.ward(&["provinces", "add", "Lao Cai"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("wardprov_"), "{token}");

    let province_data = tmp.path().join("province");
    let mut province = start_province(&province_data, &national, &token);
    let state = tmp.path().join("agent-state");
    province.enroll_agent("So TTTT", "portal", &state);
    let log = tmp.path().join("auth.log");
    append_lines(
        &log,
        &["Nov 30 03:00:00 portal sshd[1]: Server listening on 0.0.0.0 port 22.".into()],
    );
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = \"portal\"\n[[logs]]\npath = {:?}\nformat = \"auto\"\n",
            state.display().to_string(),
            log.display().to_string()
        ),
    )
    .unwrap();
    let mut agent = start_agent(None, &config);
    agent.wait_for("following file", Duration::from_secs(30));
    append_lines(&log, &failed_ssh_logins("portal", "203.0.113.7", 8));

    let local = eventually(Duration::from_secs(30), "the provincial incident", || {
        let l = province.incidents();
        (!l.is_empty()).then_some(l)
    });
    let local_id = local[0]["id"].as_i64().unwrap();
    let forwarded = eventually(Duration::from_secs(30), "the national incident", || {
        let l = national.ward_json(&["incidents", "list", "--province", "Lao Cai"]);
        let l = l.as_array().unwrap().clone();
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(forwarded.len(), 1, "{forwarded:#?}");
    assert_eq!(forwarded[0]["province"], "Lao Cai");
    assert_eq!(forwarded[0]["remote_id"], local_id);
    assert_eq!(forwarded[0]["entities"]["src_ip"], "203.0.113.7");
    let st = province.ward_json(&["federation", "status"]);
    assert_eq!(st["upstream"], national.url);
    assert!(st["last_success_at"].is_string(), "{st}");

    // National responders may not change it.
    let out = national.ward(&["incidents", "resolve", &forwarded[0]["id"].to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("province Lao Cai"), "{err}");

    // The national coordinator goes down; the province acknowledges.
    let national_addr = national.addr();
    assert!(national.proc.terminate().success());
    let out = province.ward(&["incidents", "ack", &local_id.to_string(), "-m", "on it"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        Duration::from_secs(30),
        "the failure in the link status",
        || {
            let st = province.ward_json(&["federation", "status"]);
            (st["queued"] == 1 && st["last_error"].is_string()).then_some(())
        },
    );
    let text = province.ward(&["federation", "status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("queued:        1"), "{text}");

    // The province restarts too: its outbox is in its database.
    assert!(province.proc.terminate().success());
    let province = start_province(&province_data, &national, &token);
    let national = Server::start_at(&national_data, None, &national_addr);
    eventually(
        Duration::from_secs(60),
        "the acknowledgement nationally",
        || {
            let l = national.incidents();
            (l.first()?["status"] == "acknowledged").then_some(())
        },
    );
    let all = national.incidents();
    assert_eq!(all.len(), 1, "exactly one national incident: {all:#?}");
    eventually(Duration::from_secs(30), "an empty outbox", || {
        (province.ward_json(&["federation", "status"])["queued"] == 0).then_some(())
    });
    let provinces = national.ward_json(&["provinces", "list"]);
    assert_eq!(provinces[0]["name"], "Lao Cai");
    assert_eq!(provinces[0]["incidents"], 1);
    drop(agent);
}
