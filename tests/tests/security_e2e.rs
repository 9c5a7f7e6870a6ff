//! The coordinator lets no one in: TLS by default with the certificate
//! pinned through the enrollment token, plain HTTP refused, and (below)
//! tokens, roles, revocation and the audit log through the real binaries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use ward_agent::wire::EnrollToken;
use ward_e2e::{Server, bin};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn enroll(token: &str, state: &std::path::Path, host: &str) -> std::process::Output {
    Command::new(bin("ward-agent"))
        .args(["enroll", "--hostname", host, "--token", token, "--state"])
        .arg(state)
        .output()
        .expect("running ward-agent enroll")
}

#[test]
fn tls_by_default_with_the_certificate_pinned_in_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start(&data);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let cert = std::fs::read_to_string(data.join("tls/cert.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key.pem is readable by others: {mode:o}");
    }
    let pin = server.cert_sha256.clone().expect("pin in the log line");

    // The token carries the pin; the agent needs nothing else.
    let created = server.ward_json(&["enroll-token", "create", "--agency", "So TT"]);
    let token = created["token"].as_str().unwrap();
    let decoded = EnrollToken::decode(token).unwrap();
    assert_eq!(decoded.cert_sha256.as_deref(), Some(pin.as_str()));
    assert_eq!(decoded.url, server.url);
    let state = tmp.path().join("agent");
    let out = enroll(token, &state, "web01");
    assert!(out.status.success(), "{}", stderr(&out));
    let identity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("identity.json")).unwrap())
            .unwrap();
    assert_eq!(identity["cert_sha256"], pin.as_str());

    // Without WARD_CA the CLI does not trust a self-signed certificate.
    let out = Command::new(bin("ward"))
        .args(["agents", "list"])
        .env("WARD_SERVER", &server.url)
        .env("WARD_TOKEN", &server.admin_token)
        .env_remove("WARD_CA")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("certificate"),
        "unclear error: {}",
        stderr(&out)
    );

    // A restart keeps the certificate (agents stay pinned to it).
    let mut server = server;
    server.proc.terminate();
    let again = Server::start(&data);
    assert_eq!(again.cert_sha256.as_deref(), Some(pin.as_str()));
}

#[test]
fn an_agent_refuses_a_coordinator_whose_certificate_is_not_the_pinned_one() {
    let tmp = tempfile::tempdir().unwrap();
    let real = Server::start(&tmp.path().join("real"));
    let impostor = Server::start(&tmp.path().join("impostor"));
    assert_ne!(real.cert_sha256, impostor.cert_sha256);
    // A token from the real coordinator, pointed at the impostor (a DNS or
    // routing attack): the impostor's certificate does not match the pin.
    let created = real.ward_json(&["enroll-token", "create"]);
    let mut token = EnrollToken::decode(created["token"].as_str().unwrap()).unwrap();
    let impostor_secret = impostor.ward_json(&["enroll-token", "create"]);
    let impostor_token = EnrollToken::decode(impostor_secret["token"].as_str().unwrap()).unwrap();
    token.url = impostor.url.clone();
    // Even a secret the impostor would accept is never sent to it.
    token.secret = impostor_token.secret;
    let out = enroll(&token.encode(), &tmp.path().join("agent"), "web01");
    assert!(!out.status.success(), "enrolled with an impostor");
    let err = stderr(&out);
    assert!(
        err.contains("not the one pinned at enrollment"),
        "unclear error: {err}"
    );
    assert!(
        impostor
            .ward_json(&["agents", "list"])
            .as_array()
            .unwrap()
            .is_empty(),
        "the impostor registered the agent"
    );
    // A malformed pin is a clear error too.
    token.cert_sha256 = Some("abc".into());
    let out = enroll(&token.encode(), &tmp.path().join("agent"), "web01");
    assert!(stderr(&out).contains("not a SHA-256"), "{}", stderr(&out));
}

#[test]
fn a_plain_http_client_gets_no_data() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let addr = server.url.trim_start_matches("https://").to_string();
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may close the connection before the request is written
    // (a broken pipe): that also means no data.
    let _ = write!(
        conn,
        "GET /api/v1/incidents HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        server.admin_token
    );
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("HTTP/1.1 200") && !text.contains('[') && !text.contains("incident"),
        "plain HTTP got an answer: {text:?}"
    );

    // An http:// URL to the TLS port fails in the CLI with an error.
    let out = Command::new(bin("ward"))
        .args(["incidents", "list", "--json"])
        .env("WARD_SERVER", format!("http://{addr}"))
        .env("WARD_TOKEN", &server.admin_token)
        .env_remove("WARD_CA")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn insecure_http_only_when_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = Server::start_with(&data, None, &["--insecure-http"]);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(server.proc.stderr().contains("plain HTTP"));
    assert!(!data.join("tls").exists());
    let token = server.ward_json(&["enroll-token", "create"]);
    let decoded = EnrollToken::decode(token["token"].as_str().unwrap()).unwrap();
    assert_eq!(decoded.cert_sha256, None);
    let out = enroll(token["token"].as_str().unwrap(), &tmp.path().join("a"), "h");
    assert!(out.status.success(), "{}", stderr(&out));
}

fn failed_logins(ip: &str, n: usize) -> String {
    let ts = chrono::Local::now().format("%b %e %H:%M:%S");
    (0..n)
        .map(|i| {
            format!(
                "{ts} web01 sshd[{}]: Failed password for root from {ip} port {} ssh2\n",
                4000 + i,
                50000 + i
            )
        })
        .collect()
}

#[test]
fn users_roles_scopes_revocation_and_the_audit_log_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));

    // An agent of agency A raises an incident.
    let state = tmp.path().join("agent");
    server.enroll_agent("Agency A", "web01", &state);
    let log = tmp.path().join("auth.log");
    std::fs::write(&log, "").unwrap();
    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nheartbeat_interval_s = 1\n[[logs]]\npath = {:?}\n",
            state.display().to_string(),
            log.display().to_string()
        ),
    )
    .unwrap();
    let mut agent = ward_e2e::start_agent(None, &config);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(failed_logins("203.0.113.7", 6).as_bytes())
        .unwrap();
    let incidents = ward_e2e::eventually(Duration::from_secs(20), "an incident", || {
        let list = server.incidents();
        (!list.is_empty()).then_some(list)
    });
    let id = incidents[0]["id"].to_string();

    // Users: a viewer, and a responder limited to another agency.
    let viewer = server.ward_json(&["users", "add", "vy@example.gov.vn", "--role", "viewer"]);
    let viewer = viewer["token"].as_str().unwrap().to_string();
    let other = server.ward_json(&[
        "users",
        "add",
        "bo@example.gov.vn",
        "--role",
        "responder",
        "--agency",
        "Agency B",
    ]);
    let other = other["token"].as_str().unwrap().to_string();
    assert!(other.starts_with("ward_"));

    // The viewer sees the incident but cannot resolve it.
    let out = server.ward_as(&viewer, &["incidents", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = server.ward_as(&viewer, &["incidents", "resolve", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    // The other agency's responder does not see it at all.
    let out = server.ward_as(&other, &["incidents", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    let out = server.ward_as(&other, &["incidents", "show", &id]);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    // Only admins add users.
    let out = server.ward_as(&viewer, &["users", "add", "x", "--role", "admin"]);
    assert!(!out.status.success());

    // The audit log has the denied resolve, with the peer address.
    let audit = server.ward_json(&["audit", "list"]);
    let denied = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["actor"] == "vy@example.gov.vn"
                && e["target"] == format!("POST /api/v1/incidents/{id}/resolve")
        })
        .unwrap_or_else(|| panic!("no audited denial in {audit}"));
    assert_eq!(denied["status"], 403);
    assert!(denied["peer"].as_str().unwrap().starts_with("127.0.0.1:"));

    // Revoking the viewer's token: their next call is 401.
    let tokens = server.ward_json(&["tokens", "list"]);
    let tid = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user"] == "vy@example.gov.vn")
        .unwrap()["id"]
        .to_string();
    server.ward_json(&["tokens", "revoke", &tid]);
    let out = server.ward_as(&viewer, &["incidents", "list"]);
    assert!(
        stderr(&out).contains("rejected the API token"),
        "{}",
        stderr(&out)
    );

    // Revoking the agent: its next call is refused and it says so.
    let agents = server.ward_json(&["agents", "list"]);
    let agent_id = agents[0]["id"].as_str().unwrap().to_string();
    server.ward_json(&["agents", "revoke", &agent_id]);
    agent.wait_for("rejected the agent's credentials", Duration::from_secs(20));
    let audit = server.ward_json(&["audit", "list"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "enroll_token.create",
        "agent.enroll",
        "user.add",
        "token.revoke",
        "agent.revoke",
    ] {
        assert!(actions.contains(&want), "no {want} in {actions:?}");
    }
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == format!("agent:{agent_id}") && e["status"] == 401),
        "the revoked agent's refused call is not audited"
    );
}
