//! Federation between real coordinators on loopback: provincial
//! coordinators forward incident snapshots (never alerts) to a national one
//! over HTTP through their durable outbox. Each coordinator has its own
//! database from the shared harness (SQLite, or PostgreSQL when the suite
//! runs on it) and serves the real router on a real TCP listener.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use ward_agent::wire::{Alert, EnrollToken, Severity};
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::federation::{Upstream, forward_due};
use ward_server::store::Store;

mod common;
use common::{ADMIN, TestDb, VIEWER};

/// A responder's token every coordinator here has.
const RESPONDER: &str = "ward_test_responder_token";

/// One coordinator serving its API on a loopback port.
struct Coordinator {
    url: String,
    store: Store,
    server: tokio::task::JoinHandle<()>,
    _db: TestDb,
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A free loopback port (nothing listens on it when this returns).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts a coordinator with a fresh database on `addr` (port 0: any).
async fn coordinator(addr: SocketAddr) -> Coordinator {
    let db = TestDb::new().await;
    let store = db.store.clone();
    for (name, role, token) in [
        ("admin", "admin", ADMIN),
        ("viewer", "viewer", VIEWER),
        ("responder", "responder", RESPONDER),
    ] {
        store
            .add_api_token(name, role, &hash_secret(token))
            .await
            .unwrap();
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    let listener = socket.listen(64).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AppState::new(store.clone(), &url))
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Coordinator {
        url,
        store,
        server,
        _db: db,
    }
}

/// Any request; the status and the JSON answer (`Null` when not JSON).
async fn call(method: &str, url: &str, token: &str, body: Option<String>) -> (u16, Value) {
    ward_agent::install_crypto_provider();
    let client = reqwest::Client::new();
    let mut req = client
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Coordinator {
    async fn ok(&self, method: &str, path: &str, token: &str, body: Value) -> Value {
        let body = (!body.is_null()).then(|| body.to_string());
        let (s, v) = call(method, &format!("{}{path}", self.url), token, body).await;
        assert_eq!(s, 200, "{method} {path}: {v}");
        v
    }

    /// Enrolls an agent of `agency` on `host`; returns its credential.
    async fn agent(&self, host: &str, agency: &str) -> String {
        let t = self
            .ok(
                "POST",
                "/api/v1/enroll-tokens",
                ADMIN,
                json!({ "agency": agency }),
            )
            .await;
        let token = EnrollToken::decode(t["token"].as_str().unwrap()).unwrap();
        let v = self
            .ok(
                "POST",
                "/api/v1/agents/enroll",
                "",
                json!({"secret": token.secret, "hostname": host, "version": "0.1.0"}),
            )
            .await;
        v["agent_token"].as_str().unwrap().to_string()
    }

    async fn send(&self, agent: &str, alerts: &[Alert]) {
        self.ok(
            "POST",
            "/api/v1/agent/alerts",
            agent,
            json!({ "alerts": alerts }),
        )
        .await;
    }

    async fn incidents(&self, query: &str) -> Vec<Value> {
        self.ok(
            "GET",
            &format!("/api/v1/incidents{query}"),
            ADMIN,
            Value::Null,
        )
        .await
        .as_array()
        .unwrap()
        .clone()
    }

    /// Adds province `name`; returns its credential.
    async fn province(&self, name: &str) -> String {
        let v = self
            .ok("POST", "/api/v1/provinces", ADMIN, json!({ "name": name }))
            .await;
        assert_eq!(v["name"], name);
        v["token"].as_str().unwrap().to_string()
    }

    /// This coordinator forwarding to `national` as a province with `token`.
    async fn forwarding_to(&self, national_url: &str, token: &str) -> Upstream {
        let up = Upstream {
            url: national_url.to_string(),
            token: token.to_string(),
            ca: None,
        };
        self.store.set_upstream(Some(up.base())).await.unwrap();
        up
    }

    async fn status(&self) -> Value {
        self.ok("GET", "/api/v1/federation/status", ADMIN, Value::Null)
            .await
    }
}

fn client() -> reqwest::Client {
    ward_server::federation::client(None).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 2, 0, 0).unwrap()
}

fn alert(id: &str, rule: &str, host: &str, ip: &str, at: DateTime<Utc>) -> Alert {
    Alert {
        id: id.into(),
        rule_id: rule.into(),
        title: format!("rule {rule}"),
        severity: Severity::High,
        time: at,
        host: host.into(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        evidence: vec![format!("raw evidence line of {id}")],
        tags: vec!["attack.t1110".into()],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

#[tokio::test]
async fn incidents_reach_the_national_coordinator_with_their_province_and_status_changes() {
    let national = coordinator(free_port()).await;
    let token = national.province("Lao Cai").await;
    let province = coordinator(free_port()).await;
    let up = province.forwarding_to(&national.url, &token).await;
    let agent = province.agent("web01", "So TTTT").await;
    province
        .send(
            &agent,
            &[
                alert("a1", "ssh-brute", "web01", "203.0.113.7", t0()),
                alert("a2", "ssh-brute", "web01", "203.0.113.7", t0()),
            ],
        )
        .await;
    // A drill stays at the province.
    let mut drill = alert("d1", "ssh-brute", "web01", "198.51.100.1", t0());
    drill.drill_id = Some("drill-1".into());
    province.send(&agent, &[drill]).await;
    let local = province.incidents("").await;
    assert_eq!(local.len(), 1);
    let local_id = local[0]["id"].as_i64().unwrap();
    assert_eq!(
        province.status().await["queued"],
        1,
        "the drill is not queued"
    );

    let sent = forward_due(&province.store, &client(), &up, Utc::now())
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let st = province.status().await;
    assert_eq!(st["upstream"], national.url);
    assert_eq!(st["queued"], 0);
    assert_eq!(st["forwarded"], 1);
    assert!(st["last_success_at"].is_string(), "{st}");

    let got = national.incidents("").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n["province"], "Lao Cai");
    assert_eq!(n["remote_id"], local_id);
    assert_eq!(n["host"], "web01");
    assert_eq!(n["agency"], "So TTTT");
    assert_eq!(n["alert_count"], 2);
    assert_eq!(n["status"], "new");
    assert_eq!(n["entities"]["src_ip"], "203.0.113.7");
    let nid = n["id"].as_i64().unwrap();
    // Snapshots, not alerts: the national coordinator holds no alert.
    let detail = national
        .ok(
            "GET",
            &format!("/api/v1/incidents/{nid}"),
            ADMIN,
            Value::Null,
        )
        .await;
    assert_eq!(detail["alerts"].as_array().unwrap().len(), 0, "{detail}");
    assert!(
        detail["timeline"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("forwarded by province Lao Cai"),
        "{detail}"
    );
    assert_eq!(national.incidents("?province=Lao%20Cai").await.len(), 1);
    assert!(national.incidents("?province=Ha%20Giang").await.is_empty());

    // A status change at the province propagates.
    province
        .ok(
            "POST",
            &format!("/api/v1/incidents/{local_id}/ack"),
            RESPONDER,
            json!({"text": "on it"}),
        )
        .await;
    province
        .ok(
            "POST",
            &format!("/api/v1/incidents/{local_id}/assign"),
            RESPONDER,
            json!({"assignee": "lan"}),
        )
        .await;
    forward_due(&province.store, &client(), &up, Utc::now())
        .await
        .unwrap();
    let n = &national.incidents("").await[0];
    assert_eq!(n["status"], "acknowledged", "{n}");
    assert_eq!(n["assignee"], "lan");

    // National responders cannot change it; they can note it.
    for (action, body) in [
        ("resolve", json!({})),
        ("assign", json!({"assignee": "x"})),
        ("tag", json!({"text": "l"})),
    ] {
        let (s, v) = call(
            "POST",
            &format!("{}/api/v1/incidents/{nid}/{action}", national.url),
            RESPONDER,
            Some(body.to_string()),
        )
        .await;
        assert_eq!(s, 409, "{action}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("province Lao Cai"),
            "{v}"
        );
    }
    national
        .ok(
            "POST",
            &format!("/api/v1/incidents/{nid}/note"),
            RESPONDER,
            json!({"text": "seen nationally"}),
        )
        .await;
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/incidents/{nid}/merge", national.url),
        RESPONDER,
        Some(json!({"into": nid + 1}).to_string()),
    )
    .await;
    assert!(s == 409 || s == 404, "{s} {v}");

    // Resolution at the province closes it nationally too.
    province
        .ok(
            "POST",
            &format!("/api/v1/incidents/{local_id}/resolve"),
            RESPONDER,
            json!({}),
        )
        .await;
    forward_due(&province.store, &client(), &up, Utc::now())
        .await
        .unwrap();
    assert_eq!(national.incidents("").await[0]["status"], "resolved");
    let provinces = national
        .ok("GET", "/api/v1/provinces", ADMIN, Value::Null)
        .await;
    assert_eq!(provinces[0]["name"], "Lao Cai");
    assert_eq!(provinces[0]["incidents"], 1);
    assert!(provinces[0]["last_forward_at"].is_string());
}

/// A province given an upstream later forwards the incidents it had
/// before (not its drills), and a restart with the same upstream sends
/// nothing again.
#[tokio::test]
async fn incidents_from_before_the_link_are_forwarded_once() {
    let national = coordinator(free_port()).await;
    let token = national.province("Ha Giang").await;
    let province = coordinator(free_port()).await;
    let agent = province.agent("web01", "So TTTT").await;
    province
        .send(
            &agent,
            &[
                alert("b1", "ssh-brute", "web01", "203.0.113.7", t0()),
                alert("b2", "web-sqli", "web01", "203.0.113.8", t0()),
            ],
        )
        .await;
    let mut drill = alert("bd", "ssh-brute", "web01", "198.51.100.1", t0());
    drill.drill_id = Some("drill-2".into());
    province.send(&agent, &[drill]).await;
    assert_eq!(province.status().await["queued"], 0, "no upstream yet");

    let up = province.forwarding_to(&national.url, &token).await;
    assert_eq!(
        province.status().await["queued"],
        2,
        "the two real incidents"
    );
    let sent = forward_due(&province.store, &client(), &up, Utc::now())
        .await
        .unwrap();
    assert_eq!(sent, 2);
    let got = national.incidents("").await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|i| i["province"] == "Ha Giang"));

    // Started again with the same upstream: what it has is not queued again.
    province.forwarding_to(&national.url, &token).await;
    assert_eq!(province.status().await["queued"], 0);
}

#[tokio::test]
async fn an_upstream_down_then_up_gets_every_incident_exactly_once() {
    let national_addr = free_port();
    let province = coordinator(free_port()).await;
    let up = province
        .forwarding_to(&format!("http://{national_addr}"), "wardprov_not_yet_known")
        .await;
    let agent = province.agent("mail01", "VP UBND").await;
    province
        .send(
            &agent,
            &[alert("m1", "smtp-auth", "mail01", "192.0.2.50", t0())],
        )
        .await;
    // Nothing listens: the attempt fails, is recorded, and waits.
    let now = Utc::now();
    forward_due(&province.store, &client(), &up, now)
        .await
        .unwrap();
    let st = province.status().await;
    assert_eq!(st["queued"], 1, "{st}");
    assert!(
        st["last_error"].as_str().unwrap().contains("cannot reach"),
        "{st}"
    );
    assert!(st["last_success_at"].is_null());
    assert_eq!(
        forward_due(&province.store, &client(), &up, now)
            .await
            .unwrap(),
        0,
        "backing off"
    );
    // More changes meanwhile coalesce into the one queued incident.
    province
        .send(
            &agent,
            &[alert(
                "m2",
                "smtp-auth",
                "mail01",
                "192.0.2.50",
                t0() + Duration::minutes(1),
            )],
        )
        .await;
    assert_eq!(province.status().await["queued"], 1);

    // The provincial coordinator restarts: the outbox is in its database.
    let reopened = Store::open_url(&province._db.url).await.unwrap();

    // The national coordinator comes up on that address with the province.
    let national = coordinator(national_addr).await;
    let token = national.province("Ha Giang").await;
    let up = Upstream {
        token,
        ..up.clone()
    };
    // A wrong credential is an error the province's admin sees.
    let wrong = Upstream {
        token: "wardprov_wrong".into(),
        ..up.clone()
    };
    let later = now + Duration::minutes(10);
    forward_due(&reopened, &client(), &wrong, later)
        .await
        .unwrap();
    let st = province.status().await;
    assert!(
        st["last_error"].as_str().unwrap().contains("HTTP 401"),
        "{st}"
    );
    assert!(national.incidents("").await.is_empty());
    let even_later = later + Duration::minutes(10);
    assert_eq!(
        forward_due(&reopened, &client(), &up, even_later)
            .await
            .unwrap(),
        1
    );
    // Sending again (a lost acknowledgement) changes nothing.
    assert_eq!(
        forward_due(&reopened, &client(), &up, even_later)
            .await
            .unwrap(),
        0
    );
    let snap = reopened.incident_snapshot(1).await.unwrap();
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/federation/incidents", national.url),
        &up.token,
        Some(json!({ "incidents": [snap] }).to_string()),
    )
    .await;
    assert_eq!(
        (s, &v["applied"], &v["ignored"]),
        (200, &json!(0), &json!(1))
    );
    let got = national.incidents("").await;
    assert_eq!(got.len(), 1, "exactly once: {got:?}");
    assert_eq!(got[0]["alert_count"], 2);
    assert_eq!(got[0]["province"], "Ha Giang");
    let st = province.status().await;
    assert_eq!(
        (st["queued"].as_i64(), st["forwarded"].as_i64()),
        (Some(0), Some(1))
    );
}

/// A snapshot of incident `id` at `revision` in `status`.
fn snapshot(id: i64, revision: i64, status: &str, ip: &str) -> Value {
    json!({
        "id": id, "revision": revision, "title": "SSH brute force", "rule_id": "ssh-brute",
        "severity": "high", "status": status, "host": "web01", "agency": "So TTTT",
        "alert_count": revision * 10, "first_seen": "2026-11-30T02:00:00Z",
        "last_seen": "2026-11-30T02:05:00Z", "created_at": "2026-11-30T02:00:01Z",
        "updated_at": "2026-11-30T02:06:00Z",
        "attackers": [{"kind": "ip", "value": ip}]
    })
}

#[tokio::test]
async fn duplicated_and_reordered_snapshots_are_ignored_and_bad_ones_refused() {
    let national = coordinator("127.0.0.1:0".parse().unwrap()).await;
    let token = national.province("Yen Bai").await;
    let ingest = format!("{}/api/v1/federation/incidents", national.url);
    let post = |body: String| {
        let (ingest, token) = (ingest.clone(), token.clone());
        async move { call("POST", &ingest, &token, Some(body)).await }
    };
    let batch = |snaps: Vec<Value>| json!({ "incidents": snaps }).to_string();

    let (s, v) = post(batch(vec![snapshot(7, 2, "acknowledged", "203.0.113.9")])).await;
    assert_eq!((s, v["applied"].as_u64()), (200, Some(1)), "{v}");
    // Older and equal revisions change nothing, in any order.
    let (s, v) = post(batch(vec![
        snapshot(7, 1, "new", "203.0.113.9"),
        snapshot(7, 2, "acknowledged", "203.0.113.9"),
    ]))
    .await;
    assert_eq!(
        (s, v["applied"].as_u64(), v["ignored"].as_u64()),
        (200, Some(0), Some(2)),
        "{v}"
    );
    let got = national.incidents("").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["status"], "acknowledged");
    assert_eq!(got[0]["alert_count"], 20);
    // A newer one applies.
    let (_, v) = post(batch(vec![snapshot(7, 5, "contained", "203.0.113.9")])).await;
    assert_eq!(v["applied"], 1);
    let got = national.incidents("").await;
    assert_eq!((got.len(), &got[0]["status"]), (1, &json!("contained")));

    // Bad input: a clear 4xx with a message, never a 500.
    let mut bad_kind = snapshot(8, 1, "new", "x");
    bad_kind["attackers"][0]["kind"] = json!("email");
    let mut bad_time = snapshot(9, 1, "new", "203.0.113.1");
    bad_time["last_seen"] = json!("yesterday");
    let mut zero_rev = snapshot(10, 0, "new", "203.0.113.1");
    zero_rev["revision"] = json!(0);
    let mut long_host = snapshot(11, 1, "new", "203.0.113.1");
    long_host["host"] = json!("h".repeat(300));
    let too_many: Vec<Value> = (1..=501)
        .map(|i| snapshot(i, 1, "new", "203.0.113.1"))
        .collect();
    let cases: Vec<(String, u16, &str)> = vec![
        ("{not json".into(), 400, ""),
        (json!({"incidents": "x"}).to_string(), 422, ""),
        (batch(vec![snapshot(8, 1, "sleeping", "x")]), 422, ""),
        (batch(vec![bad_kind]), 422, "kind 'email'"),
        (batch(vec![bad_time]), 422, "last_seen"),
        (batch(vec![zero_rev]), 422, "revision"),
        (batch(vec![long_host]), 422, "host"),
        (batch(too_many), 422, "at most 500"),
        ("x".repeat(5 * 1024 * 1024), 413, ""),
    ];
    for (body, want, says) in cases {
        let (s, v) = post(body).await;
        assert_eq!(s, want, "{v}");
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {v}"));
        assert!(msg.contains(says), "{msg}");
    }
    // Other credentials do not ingest; a province's does nothing else.
    let ok_body = batch(vec![snapshot(12, 1, "new", "203.0.113.1")]);
    for t in [ADMIN, RESPONDER, "wardprov_unknown"] {
        let (s, v) = call("POST", &ingest, t, Some(ok_body.clone())).await;
        assert_eq!(s, 401, "{v}");
    }
    let (s, _) = call(
        "GET",
        &format!("{}/api/v1/incidents", national.url),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (s, v) = call(
        "GET",
        &format!("{}/api/v1/provinces", national.url),
        VIEWER,
        None,
    )
    .await;
    assert_eq!(s, 403, "{v}");
    // A second province of one name is refused; a revoked one forwards no more.
    let (s, v) = call(
        "POST",
        &format!("{}/api/v1/provinces", national.url),
        ADMIN,
        Some(json!({"name": "Yen Bai"}).to_string()),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    let (s, _) = call(
        "POST",
        &format!("{}/api/v1/provinces", national.url),
        ADMIN,
        Some(json!({"name": "bad/name"}).to_string()),
    )
    .await;
    assert_eq!(s, 422);
    national
        .ok(
            "POST",
            "/api/v1/provinces/Yen%20Bai/revoke",
            ADMIN,
            Value::Null,
        )
        .await;
    let (s, _) = post(ok_body).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn one_attacker_in_two_provinces_is_one_national_campaign() {
    let national = coordinator(free_port()).await;
    let mut provinces = Vec::new();
    for (name, agency) in [("Lao Cai", "So TTTT"), ("Son La", "So TTTT")] {
        let token = national.province(name).await;
        let p = coordinator(free_port()).await;
        let up = p.forwarding_to(&national.url, &token).await;
        // The same host and agency names in both provinces: still two hosts.
        let agent = p.agent("portal", agency).await;
        p.send(
            &agent,
            &[alert("x1", "web-sqli", "portal", "203.0.113.66", t0())],
        )
        .await;
        // Another attacker, only here.
        p.send(
            &agent,
            &[alert(
                "x2",
                "ssh-brute",
                "portal",
                if name == "Lao Cai" {
                    "198.51.100.1"
                } else {
                    "198.51.100.2"
                },
                t0(),
            )],
        )
        .await;
        assert!(
            p.ok("GET", "/api/v1/campaigns", ADMIN, Value::Null)
                .await
                .as_array()
                .unwrap()
                .is_empty(),
            "one host per province: no campaign there"
        );
        forward_due(&p.store, &client(), &up, Utc::now())
            .await
            .unwrap();
        provinces.push(p);
    }
    assert_eq!(national.incidents("").await.len(), 4);
    let campaigns = national
        .ok("GET", "/api/v1/campaigns", ADMIN, Value::Null)
        .await;
    let campaigns = campaigns.as_array().unwrap();
    assert_eq!(campaigns.len(), 1, "{campaigns:?}");
    let c = &campaigns[0];
    assert_eq!(
        (&c["kind"], &c["value"]),
        (&json!("ip"), &json!("203.0.113.66"))
    );
    assert_eq!(c["incident_ids"].as_array().unwrap().len(), 2);
    let mut hosts: Vec<&str> = c["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["Lao Cai/portal", "Son La/portal"]);
    let detail = national
        .ok(
            "GET",
            &format!("/api/v1/campaigns/{}", c["id"]),
            ADMIN,
            Value::Null,
        )
        .await;
    let mut from: Vec<&str> = detail["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["province"].as_str().unwrap())
        .collect();
    from.sort();
    assert_eq!(from, ["Lao Cai", "Son La"]);
    // Listing incidents shows the campaign on both.
    for i in national.incidents("").await {
        if i["entities"]["src_ip"] == "203.0.113.66" {
            assert_eq!(i["campaign_id"], c["id"], "{i}");
        }
    }
}

#[tokio::test]
async fn the_forwarder_task_delivers_on_its_own() {
    let national = coordinator(free_port()).await;
    let token = national.province("Dien Bien").await;
    let province = coordinator(free_port()).await;
    let up = province.forwarding_to(&national.url, &token).await;
    let task = tokio::spawn(ward_server::federation::run(
        province.store.clone(),
        up,
        client(),
    ));
    let agent = province.agent("dc01", "Trung tam DL").await;
    province
        .send(
            &agent,
            &[alert("t1", "rdp-brute", "dc01", "203.0.113.20", t0())],
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = national.incidents("").await;
        if got.len() == 1 {
            assert_eq!(got[0]["province"], "Dien Bien");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not forwarded in 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    task.abort();
}
