//! Agency profiles and incident reports in-process (tower `oneshot`) over a
//! real SQLite file: profile CRUD, validation, roles and scopes, forms 03
//! and 04 of Circular 20/2017 with a filled and an empty profile, the JSON
//! document and the STIX 2.1 bundle.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use tower::ServiceExt;
use ward_agent::wire::{Alert, EnrollToken, Severity};
use ward_server::api::{AppState, router};
use ward_server::auth::hash_secret;
use ward_server::report::doc::BLANK;
use ward_server::store::Store;

const A: &str = "Sở Y tế";
const B: &str = "UBND huyện Đông Anh";
const ADMIN: &str = "ward_test_admin";

struct H {
    app: Router,
    _dir: tempfile::TempDir,
}

async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("ward.db"))
        .await
        .unwrap();
    store
        .add_api_token("admin", "admin", &hash_secret(ADMIN))
        .await
        .unwrap();
    H {
        app: router(AppState::new(store, "https://ward.example.gov.vn:8443")),
        _dir: dir,
    }
}

impl H {
    async fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, String) {
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
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, _, text) = self.raw(method, path, token, body).await;
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn user(&self, name: &str, role: &str, agencies: &[&str]) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/api/v1/users",
                ADMIN,
                Some(json!({"name": name, "role": role, "agencies": agencies})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Enrolls an agent of `agency` and sends `alerts` as it.
    async fn ingest(&self, agency: &str, host: &str, alerts: &[Alert]) {
        let (s, t) = self
            .call(
                "POST",
                "/api/v1/enroll-tokens",
                ADMIN,
                Some(json!({"agency": agency})),
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
        let e: Value = serde_json::from_slice(
            &axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap(),
        )
        .unwrap();
        let agent = e["agent_token"].as_str().unwrap();
        let (s, ack) = self
            .call(
                "POST",
                "/api/v1/agent/alerts",
                agent,
                Some(json!({ "alerts": alerts })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{ack}");
    }

    /// The id of the incident of `agency` whose rule is `rule`.
    async fn incident(&self, agency: &str, rule: &str) -> i64 {
        let (_, list) = self.call("GET", "/api/v1/incidents", ADMIN, None).await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["agency"] == agency && i["rule_id"] == rule)
            .unwrap_or_else(|| panic!("no {rule} incident of {agency} in {list}"))["id"]
            .as_i64()
            .unwrap()
    }

    async fn act(&self, id: i64, action: &str, text: &str) {
        let (s, v) = self
            .call(
                "POST",
                &format!("/api/v1/incidents/{id}/{action}"),
                ADMIN,
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
    }
}

fn alert(
    id: &str,
    rule: &str,
    title: &str,
    host: &str,
    minute: u32,
    entities: &[(&str, &str)],
    tags: &[&str],
) -> Alert {
    Alert {
        id: id.into(),
        rule_id: rule.into(),
        title: title.into(),
        severity: Severity::High,
        time: Utc.with_ymd_and_hms(2026, 11, 22, 4, minute, 0).unwrap(),
        host: host.into(),
        entities: entities
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        evidence: vec![format!(
            "Nov 22 04:{minute:02}:00 {host} sshd[1]: Failed password for root from 203.0.113.7"
        )],
        tags: tags.iter().map(|t| t.to_string()).collect(),
        source: "file:/var/log/auth.log".into(),
        packets: vec![],
        drill_id: None,
    }
}

const SSH: &str = "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d";
const C2: &str = "ward-dns-c2-beacon";
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Agency A: an SSH brute force and a C2 incident carrying an IPv4, an
/// IPv6 (IOC hit), a domain, a file hash, a private address and the
/// agency's own portal; agency B: one SSH brute force.
async fn seeded() -> H {
    let h = harness().await;
    let ssh_tags = ["attack.credential_access", "attack.t1110.001"];
    h.ingest(
        A,
        "web01",
        &[
            alert(
                "s1",
                SSH,
                "SSH brute force",
                "web01",
                0,
                &[("src_ip", "203.0.113.7"), ("user", "root")],
                &ssh_tags,
            ),
            alert(
                "s2",
                SSH,
                "SSH brute force",
                "web01",
                4,
                &[("src_ip", "203.0.113.7")],
                &ssh_tags,
            ),
            alert(
                "c1",
                C2,
                "DNS beacon to a C2 domain",
                "web01",
                5,
                &[
                    ("src_ip", "198.51.100.23"),
                    ("dst_ip", "10.0.0.53"),
                    ("query", "c2.bad-domain.example"),
                    ("ioc_value", "2001:db8::66"),
                    ("domain", "portal.soyte.example.vn"),
                    ("sha256", SHA),
                ],
                &["attack.command_and_control", "attack.t1071.004"],
            ),
        ],
    )
    .await;
    h.ingest(
        B,
        "mail01",
        &[alert(
            "b1",
            SSH,
            "SSH brute force",
            "mail01",
            1,
            &[("src_ip", "192.0.2.44")],
            &ssh_tags,
        )],
    )
    .await;
    h
}

fn full_profile() -> Value {
    json!({
        "full_name": "Sở Y tế tỉnh Hòa Bình",
        "governing_body": "Ủy ban nhân dân tỉnh Hòa Bình",
        "address": "Số 1 đường Trần Hưng Đạo, TP Hòa Bình",
        "contact_name": "Nguyễn Văn An",
        "contact_role": "Trưởng phòng Công nghệ thông tin",
        "contact_phone": "+84 218 3852 123",
        "contact_email": "an.nv@soyte.example.vn",
        "system_name": "Cổng thông tin điện tử Sở Y tế",
        "security_level": 3,
        "public_assets": ["203.0.113.200", "portal.soyte.example.vn"],
        "report_to": ["ir@stttt.example.vn", "ir@vncert.example.vn"],
    })
}

#[tokio::test]
async fn agency_profiles_are_validated_audited_and_scoped() {
    let h = seeded().await;
    let viewer = h.user("vy@example.gov.vn", "viewer", &[]).await;
    let responder = h.user("re@example.gov.vn", "responder", &[]).await;
    let scoped = h.user("b@example.gov.vn", "viewer", &[B]).await;
    let scoped_admin = h.user("admin-b@example.gov.vn", "admin", &[B]).await;
    let path = format!("/api/v1/agencies/{}/profile", urlenc(A));

    let (s, list) = h.call("GET", "/api/v1/agencies", &viewer, None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [A, B]);
    assert_eq!(list[0]["agents"], 1);
    assert_eq!(list[0]["incidents"], 2);
    assert_eq!(list[0]["open_incidents"], 2);
    assert_eq!(list[0]["profile"], Value::Null);

    let (s, e) = h.call("GET", &path, ADMIN, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(e["error"].as_str().unwrap().contains("no profile"), "{e}");

    // Only admins write profiles, and only of their agencies.
    for token in [&viewer, &responder] {
        let (s, _) = h.call("PUT", &path, token, Some(full_profile())).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = h
        .call("PUT", &path, &scoped_admin, Some(full_profile()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Bad values: 422 naming every bad field.
    let mut bad = full_profile();
    bad["security_level"] = json!(7);
    bad["contact_email"] = json!("an at soyte");
    bad["contact_phone"] = json!("gọi tôi");
    bad["public_assets"] = json!(["999.1.1.1"]);
    bad["report_to"] = json!(["ir@"]);
    let (s, e) = h.call("PUT", &path, ADMIN, Some(bad)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let msg = e["error"].as_str().unwrap();
    for field in [
        "security_level",
        "contact_email",
        "contact_phone",
        "public_assets",
        "report_to",
    ] {
        assert!(msg.contains(field), "{field} not named in: {msg}");
    }
    let (s, e) = h
        .call("PUT", &path, ADMIN, Some(json!({"colour": "blue"})))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"].as_str().unwrap().contains("colour"), "{e}");
    let (s, _) = h
        .call(
            "PUT",
            &path,
            ADMIN,
            Some(json!({"security_level": "three"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = h
        .call("GET", "/api/v1/agencies/%20/profile", ADMIN, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A good profile is stored trimmed and read back the same.
    let mut good = full_profile();
    good["address"] = json!("  Số 1 đường Trần Hưng Đạo, TP Hòa Bình  ");
    good["public_assets"] = json!([
        "203.0.113.200",
        "portal.soyte.example.vn",
        "",
        "203.0.113.200"
    ]);
    let (s, put) = h.call("PUT", &path, ADMIN, Some(good)).await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put["agency"], A);
    assert_eq!(put["address"], "Số 1 đường Trần Hưng Đạo, TP Hòa Bình");
    assert_eq!(
        put["public_assets"],
        json!(["203.0.113.200", "portal.soyte.example.vn"])
    );
    assert_eq!(put["updated_by"], "admin");
    let (s, got) = h.call("GET", &path, &viewer, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, put);
    // PUT replaces: a field left out is cleared.
    let (_, again) = h
        .call(
            "PUT",
            &path,
            ADMIN,
            Some(json!({"full_name": "Sở Y tế", "security_level": 2})),
        )
        .await;
    assert_eq!(again["address"], Value::Null);
    assert_eq!(again["public_assets"], json!([]));
    let (s, _) = h.call("PUT", &path, ADMIN, Some(full_profile())).await;
    assert_eq!(s, StatusCode::OK);

    // Every change is in the audit log.
    let (_, audit) = h.call("GET", "/api/v1/audit", ADMIN, None).await;
    let changes: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "agency.profile" && e["outcome"] == "ok")
        .collect();
    assert_eq!(changes.len(), 3, "{audit:#}");
    assert_eq!(changes[0]["target"], format!("agency:{A}"));
    assert!(
        changes[0]["detail"]
            .as_str()
            .unwrap()
            .contains("Nguyễn Văn An")
    );

    // A scoped user sees only their agency, profile included.
    let (_, list) = h.call("GET", "/api/v1/agencies", &scoped, None).await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [B]);
    let (s, _) = h.call("GET", &path, &scoped, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = h.call("GET", "/api/v1/agencies", ADMIN, None).await;
    assert_eq!(
        list[0]["profile"]["system_name"],
        "Cổng thông tin điện tử Sở Y tế"
    );
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn report(h: &H, token: &str, id: i64, query: &str) -> (StatusCode, String, String) {
    let (s, headers, body) = h
        .raw(
            "GET",
            &format!("/api/v1/incidents/{id}/report?{query}"),
            token,
            None,
        )
        .await;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (s, ct, body)
}

#[tokio::test]
async fn forms_03_and_04_fill_what_the_data_gives_and_leave_the_rest_blank() {
    let h = seeded().await;
    let id = h.incident(A, SSH).await;

    // No profile: the incident's own facts, blanks for the unit.
    let (s, ct, md) = report(&h, ADMIN, id, "form=03").await;
    assert_eq!(s, StatusCode::OK, "{md}");
    assert_eq!(ct, "text/markdown; charset=utf-8");
    let first = md.lines().next().unwrap();
    assert_eq!(
        first,
        format!("**Tiêu đề thư điện tử:** [TBSC] Báo cáo ban đầu sự cố — {A} — SSH brute force")
    );
    assert!(md.contains("# BÁO CÁO BAN ĐẦU SỰ CỐ AN TOÀN THÔNG TIN MẠNG"));
    assert!(md.contains("Mẫu 03 — Thông tư số 20/2017/TT-BTTTT"));
    for blank in [
        "Tên đơn vị vận hành hệ thống thông tin",
        "Địa chỉ",
        "Người liên hệ (họ và tên)",
        "Thư điện tử",
        "Tên hệ thống thông tin",
        "Cấp độ an toàn hệ thống thông tin (Nghị định 85/2016/NĐ-CP)",
        "Phạm vi, mức độ ảnh hưởng, thiệt hại",
        "Biện pháp đã thực hiện (ghi chú của cán bộ xử lý)",
    ] {
        assert!(
            md.contains(&format!("**{blank}:** {BLANK}")),
            "{blank} not blank in:\n{md}"
        );
    }
    assert!(md.contains(&format!("**Kính gửi:** {BLANK}")));
    assert!(
        md.contains("**Thời điểm bắt đầu (cảnh báo đầu tiên):** 11:00, ngày 22/11/2026 (UTC+7)"),
        "{md}"
    );
    assert!(md.contains("Địa chỉ IPv4: 203.0.113.7"));
    assert!(md.contains("T1110.001, credential\\_access"), "{md}");
    assert!(md.contains("**Loại sự cố:** Tấn công dò quét mật khẩu, truy cập trái phép"));
    assert!(md.contains("**Mức độ nghiêm trọng (theo cảnh báo):** Cao"));
    assert!(md.contains("Hệ thống giám sát ghi nhận 2 cảnh báo"));
    assert!(md.contains("Failed password for root from 203.0.113.7"));
    assert!(md.contains("**Tình trạng xử lý hiện tại:** Mới phát hiện, chưa tiếp nhận"));

    // A profile fills the unit, the system and the recipients.
    let (s, _) = h
        .call(
            "PUT",
            &format!("/api/v1/agencies/{}/profile", urlenc(A)),
            ADMIN,
            Some(full_profile()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, ct, html) = report(&h, ADMIN, id, "form=03&format=html").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("@page { size: A4;"));
    assert!(
        !html.contains("<link") && !html.contains("<script"),
        "self-contained"
    );
    assert!(html.contains(
        "<title>[TBSC] Báo cáo ban đầu sự cố — Sở Y tế tỉnh Hòa Bình — SSH brute force</title>"
    ));
    for filled in [
        "Sở Y tế tỉnh Hòa Bình",
        "Ủy ban nhân dân tỉnh Hòa Bình",
        "Nguyễn Văn An",
        "Trưởng phòng Công nghệ thông tin",
        "an.nv@soyte.example.vn",
        "Cổng thông tin điện tử Sở Y tế",
        "Cấp độ 3",
        "portal.soyte.example.vn",
        "ir@stttt.example.vn; ir@vncert.example.vn",
    ] {
        assert!(html.contains(filled), "{filled} missing");
    }
    assert!(html.contains(&format!(
        "<span class=\"label\">Phạm vi, mức độ ảnh hưởng, thiệt hại:</span> <span class=\"blank\">{BLANK}</span>"
    )));
    assert!(!html.contains("<span class=\"label\">Địa chỉ:</span> <span class=\"blank\">"));

    // Form 04 of an open incident says it is not over.
    let (_, _, open04) = report(&h, ADMIN, id, "form=04").await;
    assert!(open04.contains("Lưu ý: sự cố chưa kết thúc"));
    assert!(open04.contains(&format!("**Thời điểm kết thúc ứng phó:** {BLANK}")));

    // The response: responders' notes become the actions taken.
    h.act(id, "ack", "Tiếp nhận, kiểm tra nhật ký sshd").await;
    h.act(id, "note", "Đã chặn IP 203.0.113.7 trên tường lửa biên")
        .await;
    h.act(id, "contain", "Tắt đăng nhập SSH bằng mật khẩu")
        .await;
    h.act(id, "resolve", "Đổi mật khẩu root, rà soát tài khoản")
        .await;
    let (s, _, md04) = report(&h, ADMIN, id, "form=04").await;
    assert_eq!(s, StatusCode::OK);
    assert!(md04.starts_with(
        "**Tiêu đề thư điện tử:** [TBSC] Báo cáo kết thúc ứng phó sự cố — Sở Y tế tỉnh Hòa Bình — SSH brute force"
    ));
    assert!(md04.contains("# BÁO CÁO KẾT THÚC ỨNG PHÓ SỰ CỐ AN TOÀN THÔNG TIN MẠNG"));
    assert!(!md04.contains("Lưu ý: sự cố chưa kết thúc"));
    for note in [
        "admin: Đã chặn IP 203.0.113.7 trên tường lửa biên",
        "admin \\[Ngăn chặn\\]: Tắt đăng nhập SSH bằng mật khẩu",
        "admin \\[Kết thúc xử lý\\]: Đổi mật khẩu root, rà soát tài khoản",
    ] {
        assert!(md04.contains(note), "{note} missing in:\n{md04}");
    }
    for filled in [
        "Thời điểm tiếp nhận xử lý",
        "Thời điểm ngăn chặn",
        "Thời điểm kết thúc ứng phó",
        "Tổng thời gian ứng phó (từ khi phát hiện)",
    ] {
        let line = md04.lines().find(|l| l.contains(filled)).unwrap();
        assert!(!line.contains(BLANK), "{line}");
    }
    assert!(md04.contains("**Tình trạng:** Đã xử lý xong"));
    for blank in [
        "Nguyên nhân sự cố",
        "Đánh giá thiệt hại",
        "Bài học kinh nghiệm",
        "Số, ngày của báo cáo ban đầu",
    ] {
        assert!(md04.contains(&format!("**{blank}:** {BLANK}")), "{blank}");
    }
    assert!(md04.contains("| Thời gian | Người thực hiện | Nội dung | Chi tiết |"));
    assert!(
        md04.contains("| admin | Tiếp nhận | Tiếp nhận, kiểm tra nhật ký sshd |"),
        "{md04}"
    );
    let (_, _, html04) = report(&h, ADMIN, id, "form=04&format=html").await;
    assert!(html04.contains("Đã chặn IP 203.0.113.7 trên tường lửa biên"));

    // Bad requests and scope.
    for (q, want) in [
        ("form=05", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
        ("form=03&format=pdf", StatusCode::BAD_REQUEST),
        ("form=json&format=html", StatusCode::BAD_REQUEST),
    ] {
        let (s, _, body) = report(&h, ADMIN, id, q).await;
        assert_eq!(s, want, "{q}: {body}");
        assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    }
    let (s, _, _) = report(&h, ADMIN, 9999, "form=03").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let scoped = h.user("b@example.gov.vn", "viewer", &[B]).await;
    let (s, _, _) = report(&h, &scoped, id, "form=03").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let own = h.incident(B, SSH).await;
    let (s, _, _) = report(&h, &scoped, own, "form=04").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = h
        .raw(
            "GET",
            &format!("/api/v1/incidents/{id}/report?form=03"),
            "nope",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// `type--uuid` with a known type.
fn check_id(id: &Value, kind: &str) {
    let id = id
        .as_str()
        .unwrap_or_else(|| panic!("id {id} is not a string"));
    let (t, u) = id.split_once("--").unwrap();
    assert_eq!(t, kind, "{id}");
    assert_eq!(
        uuid::Uuid::parse_str(u).unwrap().get_version_num(),
        5,
        "{id}"
    );
}

/// STIX timestamps: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn check_ts(v: &Value, what: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{what} missing"));
    let b = s.as_bytes();
    assert!(
        s.ends_with('Z') && b.len() >= 20 && b[10] == b'T' && b[4] == b'-',
        "{what}: {s}"
    );
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{what}: {s}: {e}"));
}

#[tokio::test]
async fn json_and_stix_exports() {
    let h = seeded().await;
    let (s, _) = h
        .call(
            "PUT",
            &format!("/api/v1/agencies/{}/profile", urlenc(A)),
            ADMIN,
            Some(full_profile()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let id = h.incident(A, C2).await;
    h.act(id, "note", "Máy web01 truy vấn tên miền C2, đã cách ly")
        .await;

    let (s, ct, body) = report(&h, ADMIN, id, "form=json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/json");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["incident"]["id"], id);
    assert_eq!(doc["incident"]["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(doc["agency_profile"]["security_level"], 3);
    assert!(
        doc["subjects"]["initial"]
            .as_str()
            .unwrap()
            .starts_with("[TBSC] Báo cáo ban đầu sự cố — Sở Y tế tỉnh Hòa Bình")
    );
    assert!(
        doc["subjects"]["final"]
            .as_str()
            .unwrap()
            .starts_with("[TBSC] Báo cáo kết thúc ứng phó sự cố")
    );
    assert_eq!(
        doc["facts"]["actions"][0]["detail"],
        "Máy web01 truy vấn tên miền C2, đã cách ly"
    );
    let inds: Vec<(String, String)> = doc["facts"]["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().into(),
                i["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("ipv4", "198.51.100.23"),
        ("ipv6", "2001:db8::66"),
        ("domain", "c2.bad-domain.example"),
        ("sha256", SHA),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut sorted_want = want.clone();
    sorted_want.sort();
    let mut sorted = inds.clone();
    sorted.sort();
    assert_eq!(
        sorted, sorted_want,
        "private dst_ip and the agency's own portal are not indicators"
    );
    assert_eq!(doc["facts"]["techniques"], json!(["T1071.004"]));

    let (s, ct, body) = report(&h, ADMIN, id, "form=stix").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/stix+json;version=2.1");
    let bundle: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(bundle["type"], "bundle");
    check_id(&bundle["id"], "bundle");
    assert!(
        bundle.get("spec_version").is_none(),
        "a 2.1 bundle has no spec_version"
    );
    let objects = bundle["objects"].as_array().unwrap();
    let ids: Vec<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    let mut patterns = Vec::new();
    let mut reports = 0;
    for o in objects {
        let kind = o["type"].as_str().unwrap();
        assert_eq!(o["spec_version"], "2.1", "{o}");
        check_id(&o["id"], kind);
        check_ts(&o["created"], "created");
        check_ts(&o["modified"], "modified");
        assert!(o["modified"].as_str() >= o["created"].as_str());
        if let Some(by) = o.get("created_by_ref") {
            check_id(by, "identity");
            assert!(ids.contains(&by.as_str().unwrap()));
        }
        match kind {
            "identity" => {
                assert!(o["name"].is_string());
                assert_eq!(o["identity_class"], "organization");
            }
            "indicator" => {
                assert_eq!(o["pattern_type"], "stix");
                check_ts(&o["valid_from"], "valid_from");
                assert_eq!(o["indicator_types"], json!(["malicious-activity"]));
                patterns.push(o["pattern"].as_str().unwrap().to_string());
            }
            "sighting" => {
                check_id(&o["sighting_of_ref"], "indicator");
                assert!(ids.contains(&o["sighting_of_ref"].as_str().unwrap()));
                check_ts(&o["first_seen"], "first_seen");
                check_ts(&o["last_seen"], "last_seen");
                for r in o["where_sighted_refs"].as_array().unwrap() {
                    check_id(r, "identity");
                }
            }
            "report" => {
                reports += 1;
                assert_eq!(o["name"], "DNS beacon to a C2 domain");
                check_ts(&o["published"], "published");
                assert_eq!(o["report_types"], json!(["threat-report"]));
                let refs = o["object_refs"].as_array().unwrap();
                assert!(!refs.is_empty());
                for r in refs {
                    assert!(ids.contains(&r.as_str().unwrap()), "dangling ref {r}");
                }
                assert_eq!(o["external_references"][0]["external_id"], "T1071.004");
                assert_eq!(
                    o["labels"],
                    json!(["attack.command_and_control", "attack.t1071.004"])
                );
            }
            other => panic!("unexpected object type {other}"),
        }
    }
    assert_eq!(reports, 1);
    patterns.sort();
    assert_eq!(
        patterns,
        [
            "[domain-name:value = 'c2.bad-domain.example']".to_string(),
            format!("[file:hashes.'SHA-256' = '{SHA}']"),
            "[ipv4-addr:value = '198.51.100.23']".to_string(),
            "[ipv6-addr:value = '2001:db8::66']".to_string(),
        ]
    );
    // The agency's identity carries its profile's name.
    assert!(
        objects
            .iter()
            .any(|o| o["type"] == "identity" && o["name"] == "Sở Y tế tỉnh Hòa Bình")
    );

    // Re-exporting gives the same bundle byte for byte; after a change the
    // same ids (only the report's modified/published move).
    let (_, _, same) = report(&h, ADMIN, id, "form=stix").await;
    assert_eq!(same, body);
    h.act(id, "note", "thêm ghi chú").await;
    let (_, _, again) = report(&h, ADMIN, id, "form=stix").await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["id"], bundle["id"]);
    let ids_again: Vec<&str> = again["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids_again, ids);

    // When installed, the OASIS validator must accept it too.
    stix2_validator(&body);
}

/// Runs `stix2_validator` (PyPI `stix2-validator`) on the bundle when it is
/// installed; says so and returns when it is not.
fn stix2_validator(bundle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, bundle).unwrap();
    let out = std::process::Command::new("stix2_validator")
        .arg("--strict-types")
        .arg(&path)
        .output();
    match out {
        Err(_) => eprintln!("stix2_validator not installed; skipped the OASIS validator"),
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                o.status.success(),
                "stix2_validator refused the bundle:\n{text}"
            );
            assert!(text.contains("STIX JSON: Valid"), "{text}");
        }
    }
}
