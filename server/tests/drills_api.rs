//! Drills on the coordinator, in-process (tower `oneshot`) over a real
//! SQLite file: drill alerts group into drill incidents only and stay out
//! of the queue and the counts; drills are created, finished with a
//! scorecard, shown with responders' times as of now and reported.

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_agent::drill::Scenario;
use ward_agent::drill::score::{Detection, score};
use ward_agent::wire::{Alert, EnrollToken, Severity};

mod common;
use common::{ADMIN, Harness, VIEWER, harness};

impl Harness {
    async fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let resp = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, b) = self.raw(method, path, token, body).await;
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn agent(&self, host: &str) -> String {
        let (s, t) = self
            .call(
                "POST",
                "/api/v1/enroll-tokens",
                ADMIN,
                Some(json!({"agency": "Sở Y tế"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        let token = EnrollToken::decode(t["token"].as_str().unwrap()).unwrap();
        let req = Request::builder()
            .method("POST")
            .uri("/api/v1/agents/enroll")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"secret": token.secret, "hostname": host, "version": "0.1.0"}).to_string(),
            ))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["agent_token"].as_str().unwrap().to_string()
    }
}

fn alert(id: &str) -> Alert {
    Alert {
        id: id.into(),
        rule_id: "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d".into(),
        title: "SSH brute force".into(),
        severity: Severity::High,
        time: Utc::now(),
        host: "portal".into(),
        entities: BTreeMap::from([("src_ip".to_string(), "198.51.100.77".to_string())]),
        evidence: vec!["Nov 22 09:00:02 portal sshd[1]: Failed password for root".into()],
        tags: vec![],
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

#[tokio::test]
async fn drill_alerts_never_mix_with_real_incidents_or_counts() {
    let h = harness().await;
    let agent = h.agent("portal").await;
    let real = alert("a1");
    let mut d1 = alert("a1");
    d1.mark_drill("drill-one");
    let mut d2 = alert("a1");
    d2.mark_drill("drill-two");
    assert_ne!(d1.id, real.id, "a drill alert gets an id of its own");
    assert_ne!(d1.id, d2.id);
    let (s, ack) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            &agent,
            Some(json!({"alerts": [real, d1, d2.clone()]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert_eq!(ack["accepted"], 3);
    // Re-sending a drill alert is a duplicate, as for real ones.
    let (_, ack) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            &agent,
            Some(json!({"alerts": [d2]})),
        )
        .await;
    assert_eq!(ack["duplicates"], 1);

    // Same rule, host and entity: three incidents, one per world.
    let (s, list) = h.call("GET", "/api/v1/incidents", ADMIN, None).await;
    assert_eq!(s, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["drill"], false);
    assert!(list[0].get("drill_id").is_none());
    let (_, one) = h
        .call("GET", "/api/v1/incidents?drill=drill-one", VIEWER, None)
        .await;
    let one = one.as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["drill"], true);
    assert_eq!(one[0]["drill_id"], "drill-one");
    assert_eq!(one[0]["alert_count"], 1);
    let (_, all) = h
        .call("GET", "/api/v1/incidents?drill=all", VIEWER, None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (s, e) = h
        .call("GET", "/api/v1/incidents?drill=no%20such", VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"].as_str().unwrap().contains("not a drill id"));
    // Open incidents and stored alerts, as the metrics count them: real only.
    let (open, _, alerts) = h.store.counts().await.unwrap();
    assert_eq!((open, alerts), (1, 1));

    // A drill id that is not one: 422, nothing stored.
    let mut bad = alert("a2");
    bad.drill_id = Some("drill one; DROP".into());
    let (s, e) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            &agent,
            Some(json!({"alerts": [bad]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"].as_str().unwrap().contains("drill_id"));
}

const SCENARIO: &str = "\
name: api-test
description: A brute force, for the API test.
hosts:
  - name: portal
    logs:
      - name: auth.log
attackers:
  - name: guesser
    ips: [198.51.100.77]
injects:
  - at: 0
    host: portal
    log: auth.log
    lines: ['Nov 22 09:00:02 portal sshd[1]: Failed password for root from 198.51.100.77 port 1 ssh2']
expect:
  - rule: SSH brute force
    host: portal
    within: 30s
  - rule: Local user account created
    within: 30s
";

#[tokio::test]
async fn drills_are_created_finished_shown_and_reported() {
    let h = harness().await;
    let body = json!({"scenario": "api-test", "description": "A brute force.", "source": SCENARIO});
    let (s, _) = h
        .call("POST", "/api/v1/drills", VIEWER, Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, e) = h
        .call(
            "POST",
            "/api/v1/drills",
            ADMIN,
            Some(json!({"scenario": "Bad Name"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, d) = h.call("POST", "/api/v1/drills", ADMIN, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    assert!(ward_agent::drill::valid_drill_id(&id), "{id}");
    assert_eq!(d["status"], "running");
    assert_eq!(d["started_by"], "admin");
    assert_eq!(d["source"], SCENARIO);

    // The drill's agent raises one incident, which a responder works.
    let agent = h.agent("portal").await;
    let mut a = alert("b1");
    a.mark_drill(&id);
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            &agent,
            Some(json!({"alerts": [a]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = h
        .call("GET", &format!("/api/v1/incidents?drill={id}"), ADMIN, None)
        .await;
    let inc = list[0].clone();
    let inc_id = inc["id"].as_i64().unwrap();

    let started_at = Utc::now() - chrono::Duration::seconds(2);
    let scenario = Scenario::parse(SCENARIO, Path::new("/nonexistent/api-test.yml")).unwrap();
    let card = score(
        &scenario,
        &id,
        "live",
        &started_at.to_rfc3339(),
        vec![Detection {
            incident_id: Some(inc_id),
            rule_id: inc["rule_id"].as_str().unwrap().into(),
            title: inc["title"].as_str().unwrap().into(),
            host: "portal".into(),
            severity: Severity::High,
            entities: BTreeMap::from([("src_ip".to_string(), "198.51.100.77".to_string())]),
            alert_count: 1,
            detected_s: 1.25,
            acknowledged_s: None,
            resolved_s: None,
        }],
    );
    assert_eq!((card.expected, card.detected, card.missed), (2, 1, 1));
    let mut other = card.clone();
    other.drill_id = "drill-other".into();
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/drills/{id}/finish"),
            ADMIN,
            Some(json!({"scorecard": other})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/drills/drill-nope/finish",
            ADMIN,
            Some(json!({"scorecard": {"drill_id": "drill-nope"}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a scorecard missing its fields is refused"
    );
    let (s, f) = h
        .call(
            "POST",
            &format!("/api/v1/drills/{id}/finish"),
            ADMIN,
            Some(json!({"scorecard": card})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["status"], "finished");
    assert_eq!(f["scorecard"]["detected"], 1);
    assert_eq!(f["scorecard"]["items"][0]["time_to_detect_s"], 1.25);
    assert!(f["scorecard"]["totals"]["mean_time_to_acknowledge_s"].is_null());

    // Acknowledged after the scoring: shown as of now.
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{inc_id}/ack"),
            ADMIN,
            Some(json!({"text": "on it"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, shown) = h
        .call("GET", &format!("/api/v1/drills/{id}"), VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let totals = &shown["scorecard"]["totals"];
    assert_eq!(totals["acknowledged"], 1);
    assert_eq!(totals["resolved"], 0);
    let tta = totals["mean_time_to_acknowledge_s"].as_f64().unwrap();
    assert!(tta > 0.0 && tta < 60.0, "{tta}");
    assert!(
        shown["scorecard"]["incidents"][0]["acknowledged_s"]
            .as_f64()
            .is_some()
    );

    let (s, list) = h.call("GET", "/api/v1/drills", VIEWER, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["incidents"], 1);
    assert!(
        list[0].get("source").is_none(),
        "listings leave the scenario file out"
    );

    let (s, report) = h
        .raw("GET", &format!("/api/v1/drills/{id}/report"), VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let report = String::from_utf8(report).unwrap();
    for want in [
        &format!("# After-action report: drill {id}"),
        "**Failed** — 1 of 2 expected detections in time, 1 missed",
        "| detected | SSH brute force | portal |",
        "| missed | Local user account created | any |",
        "### guesser (198.51.100.77)",
        "## Timeline by day",
        "acknowledged: SSH brute force on portal",
        "admin acknowledged: on it",
    ] {
        assert!(report.contains(want), "missing {want:?} in:\n{report}");
    }

    let (s, _) = h
        .call("GET", "/api/v1/drills/drill-nope", VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = h
        .call("GET", "/api/v1/drills/bad%20id/report", VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
