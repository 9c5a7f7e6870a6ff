//! journald end to end: a real journal directory written by
//! systemd-journal-remote, an enrolled agent with `[[journal]] directory`
//! running the real journalctl, an SSH brute force in the journal → one
//! incident; entries appended while the agent is stopped → a second
//! incident after the restart and nothing sent twice; no journalctl in
//! PATH → a clear startup error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ward_e2e::{Server, bin, eventually, start_agent};

const BRUTE_FORCE_RULE: &str = "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d";

/// systemd-journal-remote, or `None` with a loud message when it is
/// missing and this is not root (`scripts/test` installs it as root).
fn journal_remote() -> Option<PathBuf> {
    let found = ["/lib/systemd", "/usr/lib/systemd"]
        .iter()
        .map(|d| Path::new(d).join("systemd-journal-remote"))
        .find(|p| p.exists());
    let journalctl = Command::new("journalctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found.is_some() && journalctl {
        return found;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    assert!(
        !root,
        "systemd-journal-remote or journalctl is missing; scripts/test installs them as root"
    );
    eprintln!("\n!!! SKIPPED: systemd-journal-remote/journalctl missing and not root !!!\n");
    None
}

/// Appends failed SSH logins from `ip` (realtime = now) to `file` in
/// journal format, through systemd-journal-remote reading export format.
fn failed_logins(tool: &Path, file: &Path, ip: &str, n: u32, first_pid: u32) {
    let now = chrono::Utc::now().timestamp_micros();
    let mut export = String::new();
    for i in 0..n {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={t}\n__MONOTONIC_TIMESTAMP={t}\n\
             _BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=web01\n\
             SYSLOG_IDENTIFIER=sshd\n_COMM=sshd\n_PID={pid}\n_SYSTEMD_UNIT=ssh.service\n\
             PRIORITY=5\nSYSLOG_FACILITY=10\n\
             MESSAGE=Failed password for root from {ip} port {port} ssh2\n\n",
            t = now + i64::from(i),
            pid = first_pid + i,
            port = 50000 + first_pid + i,
        ));
    }
    let mut child = Command::new(tool)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running systemd-journal-remote");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_config(path: &Path, state: &Path, journal_dir: &Path) {
    std::fs::write(
        path,
        format!(
            "state_dir = {:?}\nhost = \"web01\"\n[[journal]]\ndirectory = {:?}\nunits = [\"ssh.service\"]\n",
            state.display().to_string(),
            journal_dir.display().to_string()
        ),
    )
    .unwrap();
}

#[test]
fn a_brute_force_in_the_journal_becomes_an_incident_and_a_restart_sends_nothing_twice() {
    let Some(tool) = journal_remote() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("agent-state");
    server.enroll_agent("Sở TT&TT", "web01", &state);

    // Written after enrollment, before the agent's first start: read.
    let dir = tmp.path().join("remote");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("remote.journal");
    failed_logins(&tool, &file, "203.0.113.7", 8, 100);

    let config = tmp.path().join("agent.toml");
    write_config(&config, &state, &dir);
    let mut agent = start_agent(None, &config);
    agent.wait_for("following journal", Duration::from_secs(30));
    let list = eventually(Duration::from_secs(30), "the brute-force incident", || {
        let l = server.incidents();
        (!l.is_empty()).then_some(l)
    });
    assert_eq!(list.len(), 1, "{list:#?}");
    let inc = &list[0];
    assert_eq!(inc["rule_id"], BRUTE_FORCE_RULE);
    assert_eq!(inc["host"], "web01");
    assert_eq!(inc["entities"]["src_ip"], "203.0.113.7");
    assert_eq!(inc["alert_count"], 1);
    let id = inc["id"].as_i64().unwrap();
    let shown = server.ward_json(&["incidents", "show", &id.to_string()]);
    let evidence = shown["alerts"][0]["evidence"].as_array().unwrap().clone();
    assert_eq!(evidence.len(), 5, "{evidence:#?}");
    assert!(
        evidence[0]
            .to_string()
            .contains("web01 sshd[100]: Failed password for root from 203.0.113.7"),
        "{evidence:#?}"
    );

    // Stopped: five more failures from another address arrive meanwhile.
    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
    failed_logins(&tool, &file, "198.51.100.23", 5, 300);
    let mut agent = start_agent(None, &config);
    let log = agent.wait_for("following journal", Duration::from_secs(30));
    assert!(
        log.contains("after_cursor"),
        "resumed from the cursor: {log}"
    );
    let list = eventually(Duration::from_secs(30), "the second incident", || {
        let l = server.incidents();
        (l.len() >= 2).then_some(l)
    });
    assert_eq!(list.len(), 2, "{list:#?}");
    let first = list.iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(first["alert_count"], 1, "the first attack was judged once");
    let second = list.iter().find(|i| i["id"] != id).unwrap();
    assert_eq!(second["entities"]["src_ip"], "198.51.100.23");

    // Followed live after the restart.
    failed_logins(&tool, &file, "192.0.2.44", 5, 500);
    let list = eventually(Duration::from_secs(30), "the third incident", || {
        let l = server.incidents();
        (l.len() >= 3).then_some(l)
    });
    assert_eq!(list.len(), 3, "{list:#?}");
    assert_eq!(
        server.metric("ward_alerts_duplicate_total"),
        0.0,
        "the restarted agent re-sent alerts"
    );
    assert_eq!(server.metric("ward_alerts_ingested_total"), 3.0);
    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
}

#[test]
fn without_journalctl_the_agent_refuses_to_start_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("agent-state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let config = tmp.path().join("agent.toml");
    write_config(&config, &state, &tmp.path().join("remote"));
    let empty = tmp.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(bin("ward-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .env("PATH", &empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[[journal]] entry 1")
            && stderr.contains("journalctl was not found in PATH"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
