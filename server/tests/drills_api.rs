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
use ward_agent::wire::{Alert, Severity};

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
        let (s, _, b) = self.request(method, path, Some(token), body.as_ref()).await;
        (s, b)
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
        self.enroll_agent_with(host, json!({"agency": "Sở Y tế"}))
            .await
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

/// The sandboxed agents of a drill: kept out of the fleet, listed with
/// `?drill=`, retired when the drill ends — here when its runner stops
/// renewing a one-second lease and the drill is abandoned.
#[tokio::test]
async fn drill_agents_stay_out_of_the_fleet_and_an_abandoned_drill_retires_them() {
    let h = harness().await;
    let real = h.agent("portal").await;
    let (s, d) = h
        .call(
            "POST",
            "/api/v1/drills",
            ADMIN,
            Some(json!({"scenario": "ssh-brute-force", "lease_s": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    assert!(d["lease_until"].is_string(), "{d}");
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/drills",
            ADMIN,
            Some(json!({"scenario": "x", "lease_s": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Tokens for drills that are not running, or for no drill id, are refused.
    for (drill, want) in [
        ("drill-nope", StatusCode::CONFLICT),
        ("not a drill", StatusCode::BAD_REQUEST),
    ] {
        let (s, e) = h
            .call(
                "POST",
                "/api/v1/enroll-tokens",
                ADMIN,
                Some(json!({"agency": "Sở Y tế", "drill_id": drill})),
            )
            .await;
        assert_eq!(s, want, "{e}");
        assert!(e["error"].is_string(), "{e}");
    }
    let sandboxed = h
        .enroll_agent_with("portal", json!({"agency": "Sở Y tế", "drill_id": id}))
        .await;

    let (s, fleet) = h.call("GET", "/api/v1/agents", VIEWER, None).await;
    assert_eq!(s, StatusCode::OK);
    let fleet = fleet.as_array().unwrap();
    assert_eq!(
        fleet.len(),
        1,
        "only the real agent is in the fleet: {fleet:?}"
    );
    assert!(fleet[0]["drill_id"].is_null());
    let (_, drill_agents) = h
        .call("GET", &format!("/api/v1/agents?drill={id}"), VIEWER, None)
        .await;
    let drill_agents = drill_agents.as_array().unwrap().clone();
    assert_eq!(drill_agents.len(), 1, "{drill_agents:?}");
    assert_eq!(drill_agents[0]["drill_id"], id.as_str());
    assert!(drill_agents[0]["revoked_at"].is_null());
    let (_, all) = h
        .call("GET", "/api/v1/agents?drill=all", VIEWER, None)
        .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (s, _) = h
        .call("GET", "/api/v1/agents?drill=bad%20id", VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, agents, _) = h.store.counts().await.unwrap();
    assert_eq!(agents, 1, "the fleet metrics leave drill agents out");

    // The runner renews the lease, then stops (as when it is killed).
    let (s, r) = h
        .call(
            "POST",
            &format!("/api/v1/drills/{id}/lease"),
            ADMIN,
            Some(json!({"lease_s": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "running");
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/drills/{id}/lease"),
            VIEWER,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        h.store
            .abandon_expired_drills(Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "a renewed lease is not over"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let abandoned = h.store.abandon_expired_drills(Utc::now()).await.unwrap();
    assert_eq!(abandoned, vec![id.clone()]);
    assert!(
        h.store
            .abandon_expired_drills(Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "abandoned once"
    );

    let (_, d) = h
        .call("GET", &format!("/api/v1/drills/{id}"), VIEWER, None)
        .await;
    assert_eq!(d["status"], "abandoned", "{d}");
    assert_eq!(
        d["finished_at"], r["lease_until"],
        "abandoned when the lease ended"
    );
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("stopped renewing its lease"),
        "{d}"
    );
    assert!(d["lease_until"].is_null());
    let (_, drill_agents) = h
        .call("GET", &format!("/api/v1/agents?drill={id}"), VIEWER, None)
        .await;
    assert!(
        drill_agents[0]["revoked_at"].is_string(),
        "the drill's agent is retired: {drill_agents}"
    );
    let (_, fleet) = h.call("GET", "/api/v1/agents", VIEWER, None).await;
    assert!(
        fleet[0]["revoked_at"].is_null(),
        "the real agent is untouched"
    );
    let none = json!({"alerts": []});
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/agent/alerts",
            &sandboxed,
            Some(none.clone()),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a retired agent's credential is dead"
    );
    let (s, e) = h
        .call("POST", "/api/v1/agent/alerts", &real, Some(none))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");

    // Nothing more happens to an abandoned drill.
    for (path, body) in [("lease", json!({})), ("abort", json!({"reason": "late"}))] {
        let (s, e) = h
            .call(
                "POST",
                &format!("/api/v1/drills/{id}/{path}"),
                ADMIN,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{path}: {e}");
        assert!(e["error"].as_str().unwrap().contains("abandoned"), "{e}");
    }

    // Its report says so, in Markdown and as HTML.
    let (s, md) = h
        .raw("GET", &format!("/api/v1/drills/{id}/report"), VIEWER, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let md = String::from_utf8(md).unwrap();
    assert!(
        md.contains("| Status | abandoned: the drill runner stopped renewing"),
        "{md}"
    );
    let req = Request::builder()
        .uri(format!("/api/v1/drills/{id}/report?format=html"))
        .header(header::AUTHORIZATION, format!("Bearer {VIEWER}"))
        .body(Body::empty())
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let html = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let html = String::from_utf8(html.to_vec()).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains(&format!("<h1>After-action report: drill {id}</h1>")),
        "{html}"
    );
    assert!(html.contains("<td>abandoned: the drill runner"), "{html}");
    let (s, _) = h
        .raw(
            "GET",
            &format!("/api/v1/drills/{id}/report?format=pdf"),
            VIEWER,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Aborting or finishing a drill retires its agents too.
#[tokio::test]
async fn ending_a_drill_retires_its_agents() {
    let h = harness().await;
    for end in ["abort", "finish"] {
        let (s, d) = h
            .call(
                "POST",
                "/api/v1/drills",
                ADMIN,
                Some(json!({"scenario": "ssh-brute-force"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        let id = d["id"].as_str().unwrap().to_string();
        let token = h
            .enroll_agent_with("portal", json!({"agency": "Sở Y tế", "drill_id": id}))
            .await;
        let body = if end == "abort" {
            json!({"reason": "interrupted"})
        } else {
            let s = Scenario::parse(SCENARIO, Path::new("/nonexistent/api-test.yml")).unwrap();
            json!({"scorecard": score(&s, &id, "live", &Utc::now().to_rfc3339(), vec![])})
        };
        let (s, e) = h
            .call(
                "POST",
                &format!("/api/v1/drills/{id}/{end}"),
                ADMIN,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{end}: {e}");
        let (_, agents) = h
            .call("GET", &format!("/api/v1/agents?drill={id}"), VIEWER, None)
            .await;
        assert!(agents[0]["revoked_at"].is_string(), "{end}: {agents}");
        let (s, _) = h
            .call(
                "POST",
                "/api/v1/agent/alerts",
                &token,
                Some(json!({"alerts": []})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{end}");
        let (s, _) = h
            .call(
                "POST",
                &format!("/api/v1/drills/{id}/lease"),
                ADMIN,
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "no lease after {end}");
    }
}
