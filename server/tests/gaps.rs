//! Delivery on the coordinator, in-process over a real SQLite file:
//! gzip-compressed batches (and their body limit), gap records (idempotent,
//! listed, totalled per agent), and silent agents becoming incidents.

use std::collections::BTreeMap;
use std::io::Write;

use axum::http::{StatusCode, header};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use ward_agent::wire::{Alert, GAP_SPOOL_FULL, Gap, Severity};
use ward_server::api::MAX_BODY_BYTES;
use ward_server::store::SILENT_AGENT_RULE;

mod common;
use common::{ADMIN, Harness, harness};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

impl Harness {
    /// `method path` with `body` bytes, gzip-encoded when the encoding says
    /// so; answered as JSON.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(Vec<u8>, Option<&str>)>,
    ) -> (StatusCode, Value) {
        let (bytes, encoding) = body.map_or((None, None), |(b, e)| (Some(b), e));
        let headers: Vec<(&str, &str)> = encoding
            .map(|e| (header::CONTENT_ENCODING.as_str(), e))
            .into_iter()
            .collect();
        let (status, _, answer) = self
            .request_bytes(method, path, token, bytes, &headers)
            .await;
        (status, serde_json::from_slice(&answer).unwrap_or_default())
    }
}

fn alert(id: &str, ip: &str) -> Alert {
    Alert {
        id: id.into(),
        rule_id: "b1709dcc-6400-46db-8d02-0dd2a3435dbc".into(),
        title: "SQL injection attempt in a web request".into(),
        severity: Severity::High,
        time: Utc::now(),
        host: "web01".into(),
        entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
        evidence: vec!["GET /?id=1%20union%20select HTTP/1.1".into()],
        tags: vec![],
        source: "file:/var/log/nginx/access.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

#[tokio::test]
async fn gzip_batches_are_accepted_and_the_limit_holds_on_the_decompressed_size() {
    let h = harness().await;
    let agent = h.enroll_agent("web01").await;
    let alerts: Vec<Alert> = (0..50)
        .map(|i| alert(&format!("a{i}"), "203.0.113.9"))
        .collect();
    let body = serde_json::to_vec(&json!({ "alerts": alerts })).unwrap();
    let packed = gzip(&body);
    assert!(
        packed.len() * 5 < body.len(),
        "{} vs {}",
        packed.len(),
        body.len()
    );
    let (s, ack) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            Some((packed.clone(), Some("gzip"))),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert_eq!(
        (ack["accepted"].as_u64(), ack["duplicates"].as_u64()),
        (Some(50), Some(0))
    );
    // The same batch again, plain: all duplicates.
    let (s, ack) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            Some((body, None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert_eq!(ack["duplicates"], 50);

    // A small body that inflates past the limit is refused like a large one.
    let mut bomb = b"{\"alerts\": [".to_vec();
    bomb.resize(MAX_BODY_BYTES + 1024, b' ');
    let packed = gzip(&bomb);
    assert!(packed.len() < 100 * 1024);
    let (s, e) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            Some((packed, Some("gzip"))),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(e["error"].is_string());

    // Not gzip, an unknown encoding, gzip of bad JSON: 400 with a JSON error.
    for (bytes, enc) in [
        (b"not gzip at all".to_vec(), "gzip"),
        (b"{}".to_vec(), "br"),
        (gzip(b"{\"alerts\": [{"), "gzip"),
    ] {
        let (s, e) = h
            .call(
                "POST",
                "/api/v1/agent/alerts",
                Some(&agent),
                Some((bytes, Some(enc))),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{enc}: {e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    // Valid JSON of the wrong shape: 422.
    let (s, e) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            Some((gzip(b"{\"alerts\": 5}"), Some("gzip"))),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

#[tokio::test]
async fn gaps_are_stored_once_listed_and_totalled_per_agent() {
    let h = harness().await;
    let agent = h.enroll_agent("web01").await;
    let mut gap = Gap::new(GAP_SPOOL_FULL, "web01", 7, 0);
    gap.by_severity = BTreeMap::from([("low".to_string(), 5), ("medium".to_string(), 2)]);
    gap.first_time = Some(Utc::now() - Duration::minutes(5));
    gap.last_time = Some(Utc::now());
    let other = Gap::new("capture_dropped", "web01", 1000, 1);
    let body = json!({ "alerts": [alert("x1", "198.51.100.1")], "gaps": [gap, other] });
    for round in 0..2 {
        let (s, ack) = h
            .call(
                "POST",
                "/api/v1/agent/alerts",
                Some(&agent),
                Some((gzip(body.to_string().as_bytes()), Some("gzip"))),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{ack}");
        assert_eq!(
            ack["gaps_accepted"].as_u64().unwrap_or(0),
            if round == 0 { 2 } else { 0 }
        );
    }
    let (s, list) = h.call("GET", "/api/v1/gaps", Some(ADMIN), None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let full = list.iter().find(|g| g["reason"] == "spool_full").unwrap();
    assert_eq!(full["count"], 7);
    assert_eq!(full["by_severity"]["low"], 5);
    assert_eq!(full["host"], "web01");
    assert_eq!(full["agency"], "Sở TT&TT");
    assert!(full["first_time"].as_str().unwrap() < full["last_time"].as_str().unwrap());

    let (_, agents) = h.call("GET", "/api/v1/agents", Some(ADMIN), None).await;
    assert_eq!(agents[0]["gaps"]["records"], 2);
    assert_eq!(agents[0]["gaps"]["lost"], 1007);
    assert_eq!(agents[0]["gaps"]["by_reason"]["capture_dropped"], 1000);

    // Gaps without credentials or with bad fields are refused.
    let (s, _) = h.call("GET", "/api/v1/gaps", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut bad = Gap::new(GAP_SPOOL_FULL, "web01", 1, 9);
    bad.by_severity.insert("urgent".into(), 1);
    let (s, e) = h
        .answer_json(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            json!({"alerts": [], "gaps": [bad]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // Batches from older agents (no gaps field) still work.
    let (s, ack) = h
        .answer_json(
            "POST",
            "/api/v1/agent/alerts",
            Some(&agent),
            json!({"alerts": [alert("x2", "198.51.100.2")]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 1);
}

#[tokio::test]
async fn a_silent_agent_raises_one_incident_resolved_when_it_returns() {
    let h = harness().await;
    let agent = h.enroll_agent("web01").await;
    let quiet = h.enroll_agent("web02").await;
    let hb = |interval: u64| {
        json!({"version": "0.1.0", "rules_version": "r1", "uptime_s": 1, "events_total": 0,
               "alerts_total": 0, "malformed_total": 0, "heartbeat_interval_s": interval,
               "spool_entries": 3, "spool_bytes": 4096, "rss_bytes": 1234567, "cpu_seconds": 0.5})
    };
    let (s, _) = h
        .answer_json("POST", "/api/v1/agent/heartbeat", Some(&agent), hb(10))
        .await;
    assert_eq!(s, StatusCode::OK);
    // An older agent reports no interval: never called silent.
    let (s, _) = h
        .answer_json("POST", "/api/v1/agent/heartbeat", Some(&quiet), hb(0))
        .await;
    assert_eq!(s, StatusCode::OK);

    assert_eq!(
        h.store.check_silent_agents(Utc::now()).await.unwrap(),
        (0, 0)
    );
    let later = Utc::now() + Duration::seconds(31);
    assert_eq!(h.store.check_silent_agents(later).await.unwrap(), (1, 0));
    // Checked again during the same silence: still one incident.
    assert_eq!(
        h.store
            .check_silent_agents(later + Duration::seconds(5))
            .await
            .unwrap(),
        (0, 0)
    );
    let (_, list) = h.call("GET", "/api/v1/incidents", Some(ADMIN), None).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    let inc = &list[0];
    assert_eq!(inc["rule_id"], SILENT_AGENT_RULE);
    assert_eq!(inc["severity"], "high");
    assert_eq!(inc["host"], "web01");
    assert_eq!(inc["agency"], "Sở TT&TT");
    assert_eq!(inc["status"], "new");
    let (_, agents) = h.call("GET", "/api/v1/agents", Some(ADMIN), None).await;
    let web01 = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["hostname"] == "web01")
        .unwrap();
    assert_eq!(web01["heartbeat"]["spool_entries"], 3);
    assert_eq!(web01["heartbeat"]["rss_bytes"], 1234567);
    assert_eq!(inc["entities"]["agent_id"], web01["id"]);

    // The agent is back: the incident resolves itself, with a timeline note.
    let (s, _) = h
        .answer_json("POST", "/api/v1/agent/heartbeat", Some(&agent), hb(10))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h.store.check_silent_agents(Utc::now()).await.unwrap(),
        (0, 1)
    );
    let (_, detail) = h
        .call(
            "GET",
            &format!("/api/v1/incidents/{}", inc["id"]),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(detail["status"], "resolved");
    let last = detail["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["kind"], "resolved");
    assert_eq!(last["actor"], "ward");
    assert!(last["detail"].as_str().unwrap().contains("back"), "{last}");
}
