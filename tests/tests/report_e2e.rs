//! Regulatory reports through the real binaries: a real agent raises an
//! SSH brute-force incident, an admin sets the agency's profile with
//! `ward agencies set`, responders work the incident, and `ward report`
//! prints forms 03 and 04, a printable HTML page and a STIX bundle.

use std::io::Write;
use std::process::Output;
use std::time::Duration;

use ward_e2e::Server;

const AGENCY: &str = "Sở Y tế";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

#[test]
fn reports_of_a_real_incident_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    let state = tmp.path().join("agent");
    server.enroll_agent(AGENCY, "web01", &state);
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
    let _agent = ward_e2e::start_agent(None, &config);
    let ts = chrono::Local::now().format("%b %e %H:%M:%S");
    let lines: String = (0..6)
        .map(|i| {
            format!(
                "{ts} web01 sshd[{}]: Failed password for root from 203.0.113.7 port {} ssh2\n",
                4000 + i,
                50000 + i
            )
        })
        .collect();
    // Give the tailer a moment to open the (empty) file first.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let incident = ward_e2e::eventually(Duration::from_secs(30), "an incident", || {
        server
            .incidents()
            .into_iter()
            .find(|i| i["agency"] == AGENCY)
    });
    let id = incident["id"].as_i64().unwrap().to_string();

    // The agency is listed without a profile; `show` says so and fails.
    let list = ok(server.ward(&["agencies", "list"]));
    assert!(
        list.contains(AGENCY) && list.contains("(no profile)"),
        "{list}"
    );
    let out = server.ward(&["agencies", "show", AGENCY]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no profile"));

    // Bad values are refused with the field named; exit 1.
    let out = server.ward(&["agencies", "set", AGENCY, "--security-level", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("security_level"));

    let set = server.ward_json(&[
        "agencies",
        "set",
        AGENCY,
        "--full-name",
        "Sở Y tế tỉnh Hòa Bình",
        "--contact-name",
        "Nguyễn Văn An",
        "--contact-email",
        "an@soyte.example.vn",
        "--security-level",
        "3",
        "--public-assets",
        "203.0.113.200,portal.soyte.example.vn",
        "--report-to",
        "ir@stttt.example.vn",
    ]);
    assert_eq!(set["security_level"], 3);
    // A second `set` changes one field and keeps the rest.
    let set = server.ward_json(&["agencies", "set", AGENCY, "--system-name", "Cổng TTĐT"]);
    assert_eq!(set["system_name"], "Cổng TTĐT");
    assert_eq!(set["contact_name"], "Nguyễn Văn An");
    let shown = ok(server.ward(&["agencies", "show", AGENCY]));
    assert!(shown.contains("security level  3"), "{shown}");

    let f03 = ok(server.ward(&["report", &id, "--form", "03"]));
    assert!(
        f03.starts_with(
            "**Tiêu đề thư điện tử:** [TBSC] Báo cáo ban đầu sự cố — Sở Y tế tỉnh Hòa Bình — "
        ),
        "{f03}"
    );
    assert!(f03.contains("Địa chỉ IPv4: 203.0.113.7"));
    assert!(f03.contains("……… (cần bổ sung)"));

    ok(server.ward(&["incidents", "ack", &id]));
    ok(server.ward(&[
        "incidents",
        "note",
        &id,
        "Đã chặn 203.0.113.7 trên tường lửa",
    ]));
    ok(server.ward(&["incidents", "resolve", &id, "-m", "Đổi mật khẩu root"]));
    let f04 = ok(server.ward(&["report", &id, "--form", "04"]));
    assert!(f04.contains("[TBSC] Báo cáo kết thúc ứng phó sự cố"));
    assert!(f04.contains("Đã chặn 203.0.113.7 trên tường lửa"));
    assert!(f04.contains("**Tình trạng:** Đã xử lý xong"));

    let html = tmp.path().join("mau04.html");
    let out = server.ward(&["report", &id, "--form", "04", "--html", "-o"]);
    assert_eq!(out.status.code(), Some(2), "-o needs a file");
    ok(server.ward(&[
        "report",
        &id,
        "--form",
        "04",
        "--html",
        "-o",
        html.to_str().unwrap(),
    ]));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("@page { size: A4;"));
    // The same page as PDF, printed by the headless browser, with its fonts.
    let pdf = tmp.path().join("mau04.pdf");
    ok(server.ward(&[
        "report",
        &id,
        "--form",
        "04",
        "--pdf",
        "-o",
        pdf.to_str().unwrap(),
    ]));
    let bytes = std::fs::read(&pdf).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    assert!(
        text.contains("/Type /Page") && text.contains("/FontFile"),
        "{} bytes",
        bytes.len()
    );
    let out = server.ward(&["report", &id, "--form", "04", "--pdf"]);
    assert_eq!(out.status.code(), Some(2), "--pdf needs a file");
    let out = server.ward(&["report", &id, "--form", "stix", "--pdf", "-o", "x.pdf"]);
    assert_eq!(out.status.code(), Some(1));

    let stix: serde_json::Value =
        serde_json::from_str(&ok(server.ward(&["report", &id, "--form", "stix"]))).unwrap();
    assert_eq!(stix["type"], "bundle");
    assert!(
        stix["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["pattern"] == "[ipv4-addr:value = '203.0.113.7']")
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(server.ward(&["report", &id, "--form", "json"]))).unwrap();
    assert_eq!(json["incident"]["id"].to_string(), id);

    let out = server.ward(&["report", "99999", "--form", "03"]);
    assert_eq!(out.status.code(), Some(1));
    let out = server.ward(&["report", &id, "--form", "05"]);
    assert_eq!(out.status.code(), Some(2));
    let out = server.ward(&["report", &id, "--form", "stix", "--html"]);
    assert_eq!(out.status.code(), Some(1));
}
