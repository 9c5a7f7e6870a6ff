//! The web UI in a real browser: Debian's headless `chromium` driven over
//! WebDriver (`chromedriver`, fantoccini) against the real `ward-server`
//! on loopback, with a real agent's alert. A responder logs in, opens the
//! queue and the incident, acknowledges it and adds a note, and the `ward`
//! CLI sees both; a viewer sees no action buttons; the language switch is
//! remembered. The queue and the incident page are compared with baseline
//! screenshots in `tests/screenshots/` (`WARD_UPDATE_SCREENSHOTS=1`
//! rewrites them). A second test merges and splits incidents, opens a
//! campaign of two hosts, downloads a network incident's capture and reads
//! a drill's rendered after-action report, and the agents page with and
//! without the drill's agents, each checked with the CLI.

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
const NEW_USER_RULE: &str = "6fd750fa-4db6-4bb1-8104-3a89626315fb";
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

/// A real agent on `host`: it tails `DIR/HOST/auth.log` and replays
/// captures renamed into `DIR/HOST/capture/`.
struct Host {
    agent: Proc,
    log: PathBuf,
    capture: PathBuf,
}

fn start_host(server: &Server, dir: &Path, host: &str) -> Host {
    let root = dir.join(host);
    let state = root.join("agent-state");
    let capture = root.join("capture");
    std::fs::create_dir_all(&capture).unwrap();
    server.enroll_agent("Sở TT&TT", host, &state);
    let log = root.join("auth.log");
    std::fs::write(
        &log,
        format!("Nov 22 03:00:00 {host} sshd[1]: Server listening on 0.0.0.0 port 22.\n"),
    )
    .unwrap();
    let config = root.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = {host:?}\n[[logs]]\npath = {:?}\nformat = \"auto\"\n[[pcap]]\ndir = {:?}\n",
            state.display().to_string(),
            log.display().to_string(),
            capture.display().to_string()
        ),
    )
    .unwrap();
    let mut agent = start_agent(None, &config);
    agent.wait_for("following file", Duration::from_secs(30));
    Host {
        agent,
        log,
        capture,
    }
}

/// Appends `lines` to a host's log, each stamped now.
fn append(h: &Host, lines: &[String]) {
    let ts = chrono::Local::now().format("%b %e %H:%M:%S");
    let text: String = lines.iter().map(|l| format!("{ts} {l}\n")).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&h.log)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// Eight failed SSH logins for root from `ip` on `host`.
fn brute_force(host: &str, ip: &str) -> Vec<String> {
    (0..8)
        .map(|i| {
            format!(
                "{host} sshd[{}]: Failed password for root from {ip} port {} ssh2",
                4000 + i,
                50000 + i
            )
        })
        .collect()
}

/// An agent tailing a log file, and eight failed SSH logins in it: one
/// real incident.
fn real_incident(server: &Server, dir: &Path) -> (Proc, i64) {
    let host = start_host(server, dir, "web01");
    append(&host, &brute_force("web01", "203.0.113.7"));
    let list = eventually(Duration::from_secs(30), "the incident", || {
        let l = server.incidents();
        (!l.is_empty()).then_some(l)
    });
    (host.agent, list[0]["id"].as_i64().unwrap())
}

/// `chromedriver` on a free loopback port, and a headless Chromium session
/// saving downloads in `downloads`.
async fn browser(downloads: &Path) -> (Proc, Client) {
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
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
            },
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
    let (_driver, c) = browser(&tmp.path().join("downloads")).await;
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

/// The incident whose title is `title` on `host`, from the CLI.
fn find(list: &[Value], title: &str, host: &str) -> Option<i64> {
    list.iter()
        .find(|i| i["title"] == title && i["host"] == host)
        .and_then(|i| i["id"].as_i64())
}

fn alert_ids(detail: &Value) -> Vec<String> {
    detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_split_campaign_capture_and_drill_report_in_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));
    add_user(&server, RESPONDER, "responder");
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    // Real agents: the same attacker on two hosts (a campaign), a new user
    // on web01 (merged into its brute force, then split off again), and a
    // port scan replayed from a capture (packets).
    let (web01, web02) = tokio::task::block_in_place(|| {
        (
            start_host(&server, tmp.path(), "web01"),
            start_host(&server, tmp.path(), "web02"),
        )
    });
    let mut web01_lines = brute_force("web01", "203.0.113.7");
    web01_lines.push(
        "web01 useradd[3330]: new user: name=sysupdate, UID=1007, GID=1007, home=/home/sysupdate, shell=/bin/bash, from=/dev/pts/1"
            .into(),
    );
    append(&web01, &web01_lines);
    append(&web02, &brute_force("web02", "203.0.113.7"));
    let scan = ward_e2e::rules_dir().join("drills/portal-scan-exploit/scan.pcap");
    std::fs::copy(&scan, web01.capture.join(".scan.pcap.tmp")).unwrap();
    std::fs::rename(
        web01.capture.join(".scan.pcap.tmp"),
        web01.capture.join("scan.pcap"),
    )
    .unwrap();
    let (brute01, newuser, brute02, scan_id) = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(40), "four incidents", || {
            let l = server.incidents();
            Some((
                find(&l, "SSH brute force", "web01")?,
                l.iter()
                    .find(|i| i["host"] == "web01" && i["rule_id"] == NEW_USER_RULE)
                    .and_then(|i| i["id"].as_i64())?,
                find(&l, "SSH brute force", "web02")?,
                find(&l, "Vertical port scan", "web01")?,
            ))
        })
    });
    // A finished drill with its after-action report.
    let drill = tokio::task::block_in_place(|| {
        let scenario = ward_e2e::rules_dir().join("drills/demo-ssh-brute-force");
        let out = server.ward(&[
            "drill",
            "run",
            &scenario.to_string_lossy(),
            "--json",
            "--agent-bin",
            &bin("ward-agent").to_string_lossy(),
        ]);
        assert!(
            out.status.success(),
            "the demo drill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let card: Value = serde_json::from_slice(&out.stdout).unwrap();
        card["drill_id"].as_str().unwrap().to_string()
    });
    let show = |id: i64| {
        tokio::task::block_in_place(|| server.ward_json(&["incidents", "show", &id.to_string()]))
    };
    let before = show(brute01);
    let moved = alert_ids(&show(newuser));
    assert_eq!(moved.len(), 1, "one new-user alert");

    let (_driver, c) = browser(&downloads).await;
    let url = server.url.clone();
    login(&c, &url, RESPONDER, PASSWORD).await;
    wait_text(&c, "#queue", "Vertical port scan").await;

    // Merge the new-user incident into the brute force.
    c.goto(&format!("{url}/#/incidents/{newuser}"))
        .await
        .unwrap();
    wait_text(&c, "#inc-title", &format!("#{newuser}")).await;
    type_into(&c, "#merge-input", &brute01.to_string()).await;
    click(&c, "#merge-submit").await;
    wait_text(&c, "dl.facts", &format!("#{brute01}")).await;
    let merged = show(newuser);
    assert_eq!(merged["merged_into"], brute01, "{merged:#}");
    let into = show(brute01);
    assert_eq!(
        into["alert_count"].as_i64().unwrap(),
        before["alert_count"].as_i64().unwrap() + 1,
        "{into:#}"
    );
    assert!(alert_ids(&into).contains(&moved[0]), "{into:#}");

    // Split the new-user alert off again: the browser opens the new incident.
    c.goto(&format!("{url}/#/incidents/{brute01}"))
        .await
        .unwrap();
    wait_text(&c, "#alerts", "new user: name=sysupdate").await;
    click(
        &c,
        &format!("article[data-alert=\"{}\"] input.split-pick", moved[0]),
    )
    .await;
    let known: Vec<Value> = tokio::task::block_in_place(|| server.incidents())
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    click(&c, "#split").await;
    let split = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(10), "the split-off incident", || {
            server
                .incidents()
                .iter()
                .find(|i| !known.contains(&i["id"]))
                .and_then(|i| i["id"].as_i64())
        })
    });
    wait_text(&c, "#inc-title", &format!("#{split}")).await;
    assert_eq!(alert_ids(&show(split)), moved);
    let back = show(brute01);
    assert_eq!(back["alert_count"], before["alert_count"], "{back:#}");
    assert!(!alert_ids(&back).contains(&moved[0]));

    // The campaign of 203.0.113.7 over web01 and web02.
    c.goto(&format!("{url}/#/campaigns")).await.unwrap();
    wait_text(&c, "#campaigns", "203.0.113.7").await;
    let campaigns = tokio::task::block_in_place(|| server.ward_json(&["campaigns", "list"]));
    let campaign = campaigns
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["value"] == "203.0.113.7")
        .unwrap_or_else(|| panic!("no campaign of 203.0.113.7: {campaigns:#}"))
        .clone();
    assert_eq!(campaign["hosts"], json!(["web01", "web02"]), "{campaign:#}");
    click(
        &c,
        &format!("#campaigns a[href=\"#/campaigns/{}\"]", campaign["id"]),
    )
    .await;
    let page = wait_text(&c, "#main", &format!("#{brute02}")).await;
    assert!(page.contains("web01, web02"), "{page}");
    assert!(page.contains(&format!("#{brute01}")), "{page}");

    // The scan's capture, downloaded by the browser: the bytes the CLI gets.
    c.goto(&format!("{url}/#/incidents/{scan_id}"))
        .await
        .unwrap();
    wait_text(&c, "#packet-summary", "pcap").await;
    click(&c, "#pcap").await;
    let file = downloads.join(format!("ward-incident-{scan_id}.pcap"));
    let got = tokio::task::block_in_place(|| {
        eventually(Duration::from_secs(20), "the downloaded capture", || {
            // Chromium writes a .crdownload first and renames it when done.
            std::fs::read(&file).ok().filter(|b| !b.is_empty())
        })
    });
    let magic = u32::from_le_bytes(got[..4].try_into().unwrap());
    assert!(
        [0xa1b2_3c4d, 0xa1b2_c3d4, 0x0a0d_0d0a].contains(&magic),
        "not a pcap: {magic:#x}"
    );
    let cli_copy = tmp.path().join("cli.pcap");
    let out = tokio::task::block_in_place(|| {
        server.ward(&[
            "incidents",
            "pcap",
            &scan_id.to_string(),
            "-o",
            &cli_copy.to_string_lossy(),
        ])
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&cli_copy).unwrap(), got, "the same capture");
    // One alert's frames (the alert card's download) through the CLI too.
    let scan_detail = show(scan_id);
    let scan_alert = scan_detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["packet_count"].as_i64() > Some(0))
        .and_then(|a| a["id"].as_str())
        .expect("an alert with packets")
        .to_string();
    let alert_copy = tmp.path().join("alert.pcap");
    let out = tokio::task::block_in_place(|| {
        server.ward(&[
            "alerts",
            "pcap",
            &scan_alert,
            "-o",
            &alert_copy.to_string_lossy(),
        ])
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alert_bytes = std::fs::read(&alert_copy).unwrap();
    assert_eq!(alert_bytes[..4], got[..4], "the same capture format");
    let out = tokio::task::block_in_place(|| {
        server.ward(&["alerts", "pcap", "no-such-alert", "-o", "-"])
    });
    assert_eq!(out.status.code(), Some(1), "an unknown alert is an error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The agents page lists the fleet; the drill's sandboxed agents only
    // when asked for, marked with their drill, as the CLI lists them.
    c.goto(&format!("{url}/#/agents")).await.unwrap();
    wait_text(&c, "#agents", "web02").await;
    let marked = c.find_all(Locator::Css(".agent-drill")).await.unwrap();
    assert!(marked.is_empty(), "drill agents in the fleet view");
    c.find(Locator::Css("#agents-drill"))
        .await
        .unwrap()
        .select_by_value("all")
        .await
        .unwrap();
    wait_text(&c, "#agents", &drill).await;
    let marked = c.find_all(Locator::Css(".agent-drill")).await.unwrap();
    let cli =
        tokio::task::block_in_place(|| server.ward_json(&["agents", "list", "--drill", "all"]));
    let of_drill = cli
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["drill_id"] == drill.as_str())
        .count();
    assert!(of_drill >= 1, "{cli}");
    assert_eq!(marked.len(), of_drill, "{cli}");

    // The drill's after-action report, rendered: headings and tables, not Markdown.
    c.goto(&format!("{url}/#/drills")).await.unwrap();
    wait_text(&c, "#drills", "demo-ssh-brute-force").await;
    click(&c, &format!("#drills a[href=\"#/drills/{drill}\"]")).await;
    let heading = wait_text(&c, "#drill-report h1", "After-action report").await;
    assert_eq!(heading, format!("After-action report: drill {drill}"));
    wait_text(&c, "#drill-state", "Đã xong").await;
    let tables = c
        .find_all(Locator::Css("#drill-report table"))
        .await
        .unwrap();
    assert!(tables.len() >= 3, "{} tables", tables.len());
    let text = c
        .find(Locator::Css("#drill-report"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("ssh-brute-forcer (203.0.113.7)"), "{text}");
    assert!(
        !text.contains("|---") && !text.contains("## "),
        "raw Markdown: {text}"
    );
    let html = tokio::task::block_in_place(|| server.ward(&["drill", "report", &drill, "--html"]));
    assert!(html.status.success());
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(html.contains(&format!("<h1>{heading}</h1>")), "{html}");
    c.close().await.unwrap();
    drop((web01, web02));
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
