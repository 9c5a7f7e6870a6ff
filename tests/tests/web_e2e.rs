//! The web UI in a real browser: Debian's headless `chromium` driven over
//! WebDriver (`chromedriver`, fantoccini) against the real `ward-server`
//! on loopback, with a real agent's alert. A responder logs in, opens the
//! queue and the incident, acknowledges it and adds a note, and the `ward`
//! CLI sees both; a viewer sees no action buttons; the language switch is
//! remembered. The queue and the incident page are compared with baseline
//! screenshots in `tests/screenshots/` (`WARD_UPDATE_SCREENSHOTS=1`
//! rewrites them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use ward_e2e::{Proc, Server, bin, eventually, start_agent};

const RESPONDER: &str = "lan.nguyen@stttt.example.gov.vn";
const VIEWER: &str = "minh.tran@stttt.example.gov.vn";
const PASSWORD: &str = "mật-khẩu-đủ-dài-2026";
const BRUTE_FORCE_RULE: &str = "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d";
/// Browser window size for every screenshot.
const WINDOW: (u32, u32) = (1280, 900);
/// Share of pixels allowed to differ from a baseline: time stamps, the
/// clock and font antialiasing differ between runs; a broken layout moves
/// far more than this.
const MAX_DIFF_FRACTION: f64 = 0.03;

fn add_user(server: &Server, name: &str, role: &str) {
    let mut cmd = Command::new(bin("ward"));
    cmd.args([
        "users",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        "--json",
    ])
    .env("WARD_SERVER", &server.url)
    .env("WARD_TOKEN", &server.admin_token)
    .env("WARD_CA", server.ca.as_ref().expect("TLS"))
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running ward users add");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ward users add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An agent tailing a log file, and eight failed SSH logins in it: one
/// real incident.
fn real_incident(server: &Server, dir: &Path) -> (Proc, i64) {
    let state = dir.join("agent-state");
    server.enroll_agent("Sở TT&TT", "web01", &state);
    let log = dir.join("auth.log");
    std::fs::write(
        &log,
        "Nov 22 03:00:00 web01 sshd[1]: Server listening on 0.0.0.0 port 22.\n",
    )
    .unwrap();
    let config = dir.join("agent.toml");
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
    let ts = chrono::Local::now().format("%b %e %H:%M:%S");
    let lines: String = (0..8)
        .map(|i| {
            format!(
                "{ts} web01 sshd[{}]: Failed password for root from 203.0.113.7 port {} ssh2\n",
                4000 + i,
                50000 + i
            )
        })
        .collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let list = eventually(Duration::from_secs(30), "the incident", || {
        let l = server.incidents();
        (!l.is_empty()).then_some(l)
    });
    (agent, list[0]["id"].as_i64().unwrap())
}

/// `chromedriver` on a free loopback port, and a headless Chromium session.
async fn browser() -> (Proc, Client) {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: apt-get install chromium chromium-driver (scripts/test does)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("/usr/bin/chromedriver");
    cmd.arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .env("TZ", "UTC");
    // It says it started on stdout; its port answering is the sign here.
    let driver = Proc::spawn(cmd);
    eventually(Duration::from_secs(30), "chromedriver listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let caps = json!({
        "acceptInsecureCerts": true,
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                format!("--window-size={},{}", WINDOW.0, WINDOW.1),
                "--force-device-scale-factor=1", "--hide-scrollbars", "--lang=vi-VN",
                "--font-render-hinting=none",
            ],
        },
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "starting Chromium through chromedriver: {e}\n{}",
                driver.stderr()
            )
        });
    (driver, client)
}

/// Waits until the element at `css` shows text containing `needle`.
async fn wait_text(c: &Client, css: &str, needle: &str) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if t.contains(needle) {
                return t;
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("'{css}' never showed '{needle}'; last text: {last:?}");
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no '{css}': {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking '{css}': {e}"));
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no '{css}': {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn login(c: &Client, url: &str, name: &str, password: &str) {
    c.goto(&format!("{url}/#/login")).await.unwrap();
    type_into(c, "#login-name", name).await;
    type_into(c, "#login-password", password).await;
    click(c, "#login-submit").await;
}

/// Decoded RGBA pixels of a PNG, with its size.
fn rgba(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG pixels");
    buf.truncate(info.buffer_size());
    let channels = buf.len() / (info.width as usize * info.height as usize);
    let px = buf
        .chunks(channels)
        .flat_map(|p| match channels {
            4 => [p[0], p[1], p[2], p[3]],
            3 => [p[0], p[1], p[2], 255],
            2 => [p[0], p[0], p[0], p[1]],
            _ => [p[0], p[0], p[0], 255],
        })
        .collect();
    (info.width, info.height, px)
}

/// Share of pixels whose colour differs noticeably (any channel by more
/// than 48 of 255) between two screenshots of the same size.
fn diff_fraction(a: &[u8], b: &[u8]) -> f64 {
    let differing = a
        .chunks(4)
        .zip(b.chunks(4))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 48))
        .count();
    differing as f64 / (a.len() / 4).max(1) as f64
}

/// Compares a screenshot with `tests/screenshots/NAME.png`, or writes the
/// baseline when `WARD_UPDATE_SCREENSHOTS` is set.
async fn check_screenshot(c: &Client, name: &str) {
    // Let fonts and the last refresh settle; the transient toast is no part of the layout.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.execute("document.getElementById('toast').hidden = true", vec![])
        .await
        .expect("hiding the toast");
    let shot = c.screenshot().await.expect("a screenshot");
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/screenshots"));
    let baseline = dir.join(format!("{name}.png"));
    let actual_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&actual_dir).unwrap();
    let actual = actual_dir.join(format!("{name}.png"));
    std::fs::write(&actual, &shot).unwrap();
    if std::env::var_os("WARD_UPDATE_SCREENSHOTS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&baseline, &shot).unwrap();
        eprintln!("wrote baseline {}", baseline.display());
        return;
    }
    let expected = std::fs::read(&baseline).unwrap_or_else(|e| {
        panic!(
            "no baseline {} ({e}): run with WARD_UPDATE_SCREENSHOTS=1 and commit it",
            baseline.display()
        )
    });
    let (w1, h1, a) = rgba(&shot);
    let (w2, h2, b) = rgba(&expected);
    assert_eq!(
        (w1, h1),
        (w2, h2),
        "{name}: screenshot size differs from the baseline (see {})",
        actual.display()
    );
    let diff = diff_fraction(&a, &b);
    eprintln!(
        "{name}: {:.2}% of pixels differ from the baseline",
        diff * 100.0
    );
    assert!(
        diff <= MAX_DIFF_FRACTION,
        "{name}: {:.1}% of pixels differ from {} (allowed {:.1}%); this run's screenshot is {}",
        diff * 100.0,
        baseline.display(),
        MAX_DIFF_FRACTION * 100.0,
        actual.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_triages_in_the_browser_and_the_cli_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    add_user(&server, RESPONDER, "responder");
    add_user(&server, VIEWER, "viewer");
    let (_agent, id) = tokio::task::block_in_place(|| real_incident(&server, tmp.path()));
    let (_driver, c) = browser().await;
    let url = server.url.clone();

    // Vietnamese by default; a wrong password is refused plainly.
    login(&c, &url, RESPONDER, "not the password at all").await;
    wait_text(&c, "#login-error", "Sai tên đăng nhập hoặc mật khẩu").await;
    assert_eq!(
        c.find(Locator::Css("#login-submit"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Đăng nhập"
    );

    // The queue, live: the agent's incident is there.
    login(&c, &url, RESPONDER, PASSWORD).await;
    wait_text(&c, "#queue", "SSH brute force").await;
    let row = wait_text(&c, &format!("tr[data-id=\"{id}\"]"), "web01").await;
    assert!(row.contains("Mới"), "status in Vietnamese: {row}");
    assert!(row.contains("còn"), "the reporting clock: {row}");
    wait_text(&c, "#whoami", RESPONDER).await;
    check_screenshot(&c, "queue").await;

    // The incident: acknowledge, then a note.
    click(&c, &format!("tr[data-id=\"{id}\"] a.title")).await;
    wait_text(&c, "#inc-title", &format!("#{id}")).await;
    wait_text(&c, "#alerts", "Failed password for root from 203.0.113.7").await;
    click(&c, "#ack").await;
    wait_text(&c, "#inc-status", "Đã tiếp nhận").await;
    let note = "Đã chặn 203.0.113.7 trên tường lửa";
    type_into(&c, "#note-input", note).await;
    click(&c, "#note-submit").await;
    wait_text(&c, "#timeline", note).await;
    type_into(&c, "#tag-input", "brute-force").await;
    click(&c, "#tag-submit").await;
    wait_text(&c, "#inc-labels", "brute-force").await;
    check_screenshot(&c, "incident").await;

    // The CLI sees what the browser did, by the responder's name.
    let shown =
        tokio::task::block_in_place(|| server.ward_json(&["incidents", "show", &id.to_string()]));
    assert_eq!(shown["status"], "acknowledged", "{shown:#}");
    assert_eq!(shown["labels"], json!(["brute-force"]), "{shown:#}");
    let timeline = shown["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "note" && e["detail"] == note && e["actor"] == RESPONDER),
        "{timeline:#?}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e["actor"] == RESPONDER && e["kind"] != "note"),
        "the acknowledgement: {timeline:#?}"
    );

    // The rules page counts the hit.
    c.goto(&format!("{url}/#/rules")).await.unwrap();
    wait_text(&c, "#rules", BRUTE_FORCE_RULE).await;
    wait_text(&c, "#rules-version", "Bộ luật").await;

    // English, remembered across a reload.
    click(&c, "#lang").await;
    wait_text(&c, "nav", "Incidents").await;
    c.goto(&format!("{url}/#/incidents")).await.unwrap();
    c.refresh().await.unwrap();
    wait_text(&c, "#main h1", "Incident queue").await;
    wait_text(&c, &format!("tr[data-id=\"{id}\"]"), "Acknowledged").await;
    let lang = c
        .execute("return document.documentElement.lang", vec![])
        .await
        .unwrap();
    assert_eq!(lang, "en");

    // A viewer sees the incident but no action buttons.
    click(&c, "#logout").await;
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#login-form"))
        .await
        .unwrap();
    login(&c, &url, VIEWER, PASSWORD).await;
    wait_text(&c, "#queue", "SSH brute force").await;
    c.goto(&format!("{url}/#/incidents/{id}")).await.unwrap();
    wait_text(&c, "#timeline", note).await;
    assert!(
        c.find_all(Locator::Css("#actions, #ack, #note-form"))
            .await
            .unwrap()
            .is_empty(),
        "a viewer was shown action buttons"
    );
    c.close().await.unwrap();
}

/// The comparison itself: a baseline matches itself, and a different
/// page (the queue against the incident page) is far past the tolerance.
#[test]
fn screenshot_comparison_passes_the_same_page_and_fails_another() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/screenshots"));
    let (w1, h1, queue) = rgba(&std::fs::read(dir.join("queue.png")).unwrap());
    let (w2, h2, incident) = rgba(&std::fs::read(dir.join("incident.png")).unwrap());
    assert_eq!((w1, h1), (w2, h2));
    assert_eq!(w1, WINDOW.0);
    assert_eq!(diff_fraction(&queue, &queue), 0.0);
    let other = diff_fraction(&queue, &incident);
    assert!(
        other > MAX_DIFF_FRACTION,
        "another page passed as the same: {other}"
    );
}
