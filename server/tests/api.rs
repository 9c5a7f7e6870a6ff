//! The HTTP API in-process (tower `oneshot`) over a real SQLite file:
//! authentication, bad input, idempotent ingestion, incident grouping and
//! triage.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use ward_agent::wire::{Alert, EnrollToken, EvidencePacket, Severity};

mod common;
use common::{VIEWER, harness};

fn alert(id: &str, host: &str, ip: &str, minute: u32) -> Alert {
    Alert {
        id: id.into(),
        rule_id: "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d".into(),
        title: "SSH brute force".into(),
        severity: Severity::High,
        time: Utc.with_ymd_and_hms(2026, 11, 22, 4, minute, 0).unwrap(),
        host: host.into(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        evidence: vec!["Nov 22 04:00:00 web01 sshd[1]: Failed password for root".into()],
        tags: vec!["attack.t1110.001".into()],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

fn batch(alerts: &[Alert]) -> Value {
    json!({ "alerts": alerts })
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_with_json() {
    let h = harness().await;
    for token in [None, Some("nope"), Some("")] {
        let (s, body) = h.answer("GET", "/api/v1/incidents", token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(body["error"].is_string());
    }
    let (s, _) = h
        .answer_json(
            "POST",
            "/api/v1/agent/alerts",
            Some(&h.admin),
            batch(&[alert("a", "h", "1.2.3.4", 0)]),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an API token is not an agent credential"
    );
    let (s, _) = h
        .answer_json(
            "POST",
            "/api/v1/agent/alerts",
            Some("wardagent_unknown"),
            batch(&[]),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn viewers_cannot_triage_or_mint_tokens() {
    let h = harness().await;
    let (s, body) = h
        .answer_json("POST", "/api/v1/enroll-tokens", Some(VIEWER), json!({}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("viewer"));
}

#[tokio::test]
async fn enrollment_tokens_are_one_time() {
    let h = harness().await;
    let (_, t) = h
        .answer_json("POST", "/api/v1/enroll-tokens", Some(&h.admin), json!({}))
        .await;
    let secret = EnrollToken::decode(t["token"].as_str().unwrap())
        .unwrap()
        .secret;
    let req = json!({"secret": secret, "hostname": "web01", "version": "0.1.0"});
    let (s, _) = h
        .answer_json("POST", "/api/v1/agents/enroll", None, req.clone())
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = h
        .answer_json("POST", "/api/v1/agents/enroll", None, req)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("enrollment token"));
}

#[tokio::test]
async fn bad_bodies_are_4xx_with_a_json_error() {
    let h = harness().await;
    let agent = h.enroll_agent("web01").await;
    let cases: Vec<(Vec<u8>, StatusCode)> = vec![
        (b"{not json".to_vec(), StatusCode::BAD_REQUEST),
        (Vec::new(), StatusCode::BAD_REQUEST),
        (
            br#"{"alerts": 5}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            br#"{"alerts": [{"id": "x"}]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!(
                r#"{{"alerts": [], "pad": "{}"}}"#,
                "x".repeat(17 * 1024 * 1024)
            )
            .into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, want) in cases {
        let (s, v) = h
            .answer("POST", "/api/v1/agent/alerts", Some(&agent), Some(body))
            .await;
        assert_eq!(s, want, "{v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let mut bad = alert("", "web01", "1.2.3.4", 0);
    bad.id = String::new();
    let (s, v) = h
        .answer_json("POST", "/api/v1/agent/alerts", Some(&agent), batch(&[bad]))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = h
        .answer("GET", "/api/v1/incidents/abc", Some(&h.admin), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = h
        .answer(
            "GET",
            "/api/v1/incidents?status=bogus",
            Some(&h.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = h
        .answer("GET", "/api/v1/incidents/999", Some(&h.admin), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = h.answer("GET", "/api/v1/nope", Some(&h.admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn retries_are_deduplicated_and_alerts_group_into_incidents() {
    let h = harness().await;
    let agent = h.enroll_agent("web01").await;
    let first = [
        alert("a1", "web01", "203.0.113.7", 0),
        alert("a2", "web01", "203.0.113.7", 3),
    ];
    let (s, ack) = h
        .answer_json("POST", "/api/v1/agent/alerts", Some(&agent), batch(&first))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ack, json!({"accepted": 2, "duplicates": 0}));
    // The same batch again (an agent retrying after a lost answer).
    let (_, ack) = h
        .answer_json("POST", "/api/v1/agent/alerts", Some(&agent), batch(&first))
        .await;
    assert_eq!(ack, json!({"accepted": 0, "duplicates": 2}));
    // Another attacker, and the first attacker on another host.
    let more = [
        alert("b1", "web01", "198.51.100.9", 1),
        alert("c1", "db01", "203.0.113.7", 2),
    ];
    h.answer_json("POST", "/api/v1/agent/alerts", Some(&agent), batch(&more))
        .await;

    let (_, list) = h
        .answer("GET", "/api/v1/incidents", Some(&h.admin), None)
        .await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:#?}");
    let main = list
        .iter()
        .find(|i| i["host"] == "web01" && i["entities"]["src_ip"] == "203.0.113.7")
        .unwrap();
    assert_eq!(main["alert_count"], 2);
    assert_eq!(main["first_seen"], "2026-11-22T04:00:00.000000Z");
    assert_eq!(main["last_seen"], "2026-11-22T04:03:00.000000Z");
    assert_eq!(main["severity"], "high");
    assert_eq!(main["status"], "new");
    assert_eq!(main["agency"], "Sở TT&TT");
    assert_eq!(main["drill"], false);
    for field in ["id", "title", "rule_id"] {
        assert!(main.get(field).is_some());
    }
}

#[tokio::test]
async fn triage_actions_change_status_and_fill_the_timeline() {
    let h = harness().await;
    let agent = h.enroll_agent("web01").await;
    h.answer_json(
        "POST",
        "/api/v1/agent/alerts",
        Some(&agent),
        batch(&[alert("a1", "web01", "203.0.113.7", 0)]),
    )
    .await;
    let id = 1;
    let (s, d) = h
        .answer_json(
            "POST",
            &format!("/api/v1/incidents/{id}/ack"),
            Some(&h.admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "acknowledged");
    let (s, _) = h
        .answer_json(
            "POST",
            &format!("/api/v1/incidents/{id}/ack"),
            Some(&h.admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    h.answer_json(
        "POST",
        &format!("/api/v1/incidents/{id}/assign"),
        Some(&h.admin),
        json!({"assignee": "lan"}),
    )
    .await;
    h.answer_json(
        "POST",
        &format!("/api/v1/incidents/{id}/note"),
        Some(&h.admin),
        json!({"text": "blocked at firewall"}),
    )
    .await;
    let (s, _) = h
        .answer_json(
            "POST",
            &format!("/api/v1/incidents/{id}/note"),
            Some(&h.admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, d) = h
        .answer_json(
            "POST",
            &format!("/api/v1/incidents/{id}/resolve"),
            Some(&h.admin),
            json!({}),
        )
        .await;
    assert_eq!(d["status"], "resolved");
    assert_eq!(d["assignee"], "lan");

    // A new alert of the same group opens a new incident; the old one cannot be reopened beside it.
    h.answer_json(
        "POST",
        "/api/v1/agent/alerts",
        Some(&agent),
        batch(&[alert("a2", "web01", "203.0.113.7", 9)]),
    )
    .await;
    let (_, list) = h
        .answer("GET", "/api/v1/incidents?status=new", Some(&h.admin), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, v) = h
        .answer_json(
            "POST",
            &format!("/api/v1/incidents/{id}/reopen"),
            Some(&h.admin),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    let (_, d) = h
        .answer(
            "GET",
            &format!("/api/v1/incidents/{id}"),
            Some(&h.admin),
            None,
        )
        .await;
    let kinds: Vec<&str> = d["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["created", "acknowledged", "assigned", "note", "resolved"]
    );
    assert_eq!(d["timeline"][1]["actor"], "admin");
    assert_eq!(d["alerts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn health_answers_without_credentials() {
    let h = harness().await;
    let (s, v) = h.answer("GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
}

/// An Ethernet/IPv4/TCP SYN from `src` to port `dport` (headers only).
fn syn(src: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 0, 0, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

fn packet(ts_ns: i64, dport: u16) -> EvidencePacket {
    let data = syn([203, 0, 113, 7], dport);
    EvidencePacket {
        ts_ns,
        linktype: 1,
        orig_len: data.len() as u32,
        data,
    }
}

/// Every frame of a pcap file as (time ns, original length, bytes), with its link type.
fn read_pcap(bytes: &[u8]) -> (u32, Vec<(i64, u32, Vec<u8>)>) {
    let mut r = pcap_file::pcap::PcapReader::new(bytes).expect("a pcap file");
    let link = u32::from(r.header().datalink);
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("a whole record");
        out.push((
            p.timestamp().as_nanos() as i64,
            p.orig_len(),
            p.data().to_vec(),
        ));
    }
    (link, out)
}

fn frames(ps: &[EvidencePacket]) -> Vec<(i64, u32, Vec<u8>)> {
    ps.iter()
        .map(|p| (p.ts_ns, p.orig_len, p.data.clone()))
        .collect()
}

#[tokio::test]
async fn alert_packets_download_as_a_pcap_per_alert_and_per_incident() {
    let h = harness().await;
    let agent = h.enroll_agent("gw01").await;
    let t0 = 1_795_320_000_000_000_000i64;
    let shared = packet(t0 + 2_000, 22);
    let mut a1 = alert("p1", "gw01", "203.0.113.7", 0);
    a1.packets = vec![packet(t0, 21), shared.clone()];
    let mut a2 = alert("p2", "gw01", "203.0.113.7", 1);
    // Out of time order, and sharing a frame with a1.
    a2.packets = vec![
        packet(t0 + 5_000, 23),
        shared.clone(),
        packet(t0 + 1_000, 80),
    ];
    let plain = alert("p3", "gw01", "198.51.100.9", 2);
    let (s, ack) = h
        .answer_json(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            batch(&[a1.clone(), a2.clone(), plain]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ack}");

    // One alert's capture is its frames in its order.
    let (s, headers, body) = h
        .request("GET", "/api/v1/alerts/p1/pcap", Some(&h.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/vnd.tcpdump.pcap"
    );
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"ward-alert-p1.pcap\""
    );
    assert_eq!(read_pcap(&body), (1, frames(&a1.packets)));

    // The incident's capture: every frame once, in time order; viewers may read it.
    let (_, list) = h
        .answer("GET", "/api/v1/incidents", Some(&h.admin), None)
        .await;
    let incident = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["entities"]["src_ip"] == "203.0.113.7")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, headers, body) = h
        .request(
            "GET",
            &format!("/api/v1/incidents/{incident}/pcap"),
            Some(VIEWER),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"ward-incident-{incident}.pcap\"").as_str()
    );
    assert_eq!(headers["x-ward-packets"], "4");
    let mut want = vec![
        a1.packets[0].clone(),
        a2.packets[2].clone(),
        shared,
        a2.packets[0].clone(),
    ];
    want.sort_by_key(|p| p.ts_ns);
    assert_eq!(read_pcap(&body), (1, frames(&want)));

    // The incident's JSON counts each alert's packets.
    let (_, detail) = h
        .answer(
            "GET",
            &format!("/api/v1/incidents/{incident}"),
            Some(&h.admin),
            None,
        )
        .await;
    let counts: Vec<(String, i64)> = detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["packet_count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("p2".to_string(), 3), ("p1".to_string(), 2)]);

    // No packets, no such alert or incident: 404 with a JSON error; no token: 401.
    let other = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["entities"]["src_ip"] == "198.51.100.9")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    for path in [
        format!("/api/v1/incidents/{other}/pcap"),
        "/api/v1/incidents/9999/pcap".to_string(),
        "/api/v1/alerts/p3/pcap".to_string(),
        "/api/v1/alerts/nope/pcap".to_string(),
    ] {
        let (s, v) = h.answer("GET", &path, Some(&h.admin), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {v}"
        );
    }
    let (s, _, _) = h.request("GET", "/api/v1/alerts/p1/pcap", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn alerts_with_bad_or_oversized_packets_are_422() {
    let h = harness().await;
    let agent = h.enroll_agent("gw01").await;
    let mut a = alert("x1", "gw01", "203.0.113.7", 0);
    a.packets = vec![packet(1, 22)];
    let mut body = batch(&[a.clone()]);
    body["alerts"][0]["packets"][0]["data"] = json!("not base64!");
    let (s, v) = h
        .answer_json("POST", "/api/v1/agent/alerts", Some(&agent), body)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    a.packets = (0..=ward_agent::wire::MAX_ALERT_PACKETS as i64)
        .map(|i| packet(i, 22))
        .collect();
    let (s, v) = h
        .answer_json(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            batch(&[a.clone()]),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    a.packets = vec![packet(-5, 22)];
    let (s, v) = h
        .answer_json("POST", "/api/v1/agent/alerts", Some(&agent), batch(&[a]))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("packet"), "{v}");
}
