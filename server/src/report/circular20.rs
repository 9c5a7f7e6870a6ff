//! The reports of Circular 20/2017/TT-BTTTT: form 03, the initial incident
//! report (Báo cáo ban đầu sự cố), and form 04, the end-of-response report
//! (Báo cáo kết thúc ứng phó sự cố), as [`Doc`]s. `README.md` beside this
//! file maps each field to its source.

use chrono::{DateTime, FixedOffset};

use super::ReportInput;
use super::doc::{Block, Doc};
use super::facts::{Facts, IndicatorKind};
use crate::agency::ProfileFields;
use crate::model::Status;

/// Vietnam's time zone (UTC+7), in which the forms give times.
fn vn() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("a valid offset")
}

/// `14:05, ngày 22/11/2026 (UTC+7)` from RFC 3339; the input as is when it
/// does not parse.
pub fn vn_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339).map_or_else(
        |_| rfc3339.to_string(),
        |t| {
            t.with_timezone(&vn())
                .format("%H:%M, ngày %d/%m/%Y (UTC+7)")
                .to_string()
        },
    )
}

/// A duration between two RFC 3339 times in Vietnamese (`2 giờ 15 phút`).
fn span(from: &str, to: &str) -> Option<String> {
    let a = DateTime::parse_from_rfc3339(from).ok()?;
    let b = DateTime::parse_from_rfc3339(to).ok()?;
    let mins = (b - a).num_minutes().max(0);
    let (d, h, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    Some(match (d, h) {
        (0, 0) => format!("{m} phút"),
        (0, _) => format!("{h} giờ {m} phút"),
        _ => format!("{d} ngày {h} giờ {m} phút"),
    })
}

/// A status in the forms' words.
pub fn status_vi(s: Status) -> &'static str {
    match s {
        Status::New => "Mới phát hiện, chưa tiếp nhận",
        Status::Acknowledged => "Đã tiếp nhận, đang xử lý",
        Status::Contained => "Đã ngăn chặn, đang khắc phục",
        Status::Resolved => "Đã xử lý xong",
        Status::FalsePositive => "Cảnh báo nhầm (không phải sự cố)",
    }
}

fn severity_vi(s: ward_agent::wire::Severity) -> &'static str {
    use ward_agent::wire::Severity::*;
    match s {
        Low => "Thấp",
        Medium => "Trung bình",
        High => "Cao",
        Critical => "Nghiêm trọng",
    }
}

fn kind_vi(kind: &str) -> &str {
    match kind {
        "created" => "Phát hiện (tạo sự cố)",
        "acknowledged" => "Tiếp nhận",
        "contained" => "Ngăn chặn",
        "resolved" => "Kết thúc xử lý",
        "false_positive" => "Kết luận cảnh báo nhầm",
        "reopened" => "Mở lại",
        "assigned" => "Phân công",
        "note" => "Ghi chú",
        other => other,
    }
}

fn indicator_kind_vi(k: IndicatorKind) -> &'static str {
    match k {
        IndicatorKind::Ipv4 => "Địa chỉ IPv4",
        IndicatorKind::Ipv6 => "Địa chỉ IPv6",
        IndicatorKind::Domain => "Tên miền",
        IndicatorKind::Sha256 => "Mã băm SHA-256 của tệp",
    }
}

/// Which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Mẫu 03: initial report.
    Initial,
    /// Mẫu 04: end-of-response report.
    Final,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Initial => "Báo cáo ban đầu sự cố",
            Form::Final => "Báo cáo kết thúc ứng phó sự cố",
        }
    }
}

/// The e-mail subject of a form: `[TBSC] <form> — <agency> — <title>`.
pub fn subject(form: Form, input: &ReportInput<'_>) -> String {
    let i = &input.detail.incident;
    let agency = input
        .profile
        .and_then(|p| p.fields.full_name.as_deref())
        .unwrap_or(&i.agency);
    let drill = if i.drill { " (DIỄN TẬP)" } else { "" };
    format!("[TBSC] {}{drill} — {agency} — {}", form.name(), i.title)
}

fn profile_fields<'a>(input: &'a ReportInput<'_>) -> std::borrow::Cow<'a, ProfileFields> {
    match input.profile {
        Some(p) => std::borrow::Cow::Borrowed(&p.fields),
        None => std::borrow::Cow::Owned(ProfileFields::default()),
    }
}

/// Section 1: the reporting unit; the same in both forms.
fn unit_blocks(p: &ProfileFields, agency: &str, out: &mut Vec<Block>) {
    out.push(Block::Heading(
        "1. Thông tin về đơn vị báo cáo (đơn vị vận hành hệ thống thông tin)".into(),
    ));
    out.push(Block::Field(
        "Tên đơn vị vận hành hệ thống thông tin".into(),
        p.full_name.clone(),
    ));
    out.push(Block::Field(
        "Tên đơn vị trong hệ thống giám sát".into(),
        Some(agency.to_string()),
    ));
    out.push(Block::Field(
        "Cơ quan chủ quản".into(),
        p.governing_body.clone(),
    ));
    out.push(Block::Field("Địa chỉ".into(), p.address.clone()));
    out.push(Block::Field(
        "Người liên hệ (họ và tên)".into(),
        p.contact_name.clone(),
    ));
    out.push(Block::Field("Chức vụ".into(), p.contact_role.clone()));
    out.push(Block::Field("Điện thoại".into(), p.contact_phone.clone()));
    out.push(Block::Field("Thư điện tử".into(), p.contact_email.clone()));
}

/// Section 2: the information system.
fn system_blocks(p: &ProfileFields, facts: &Facts, out: &mut Vec<Block>) {
    out.push(Block::Heading(
        "2. Thông tin về hệ thống thông tin bị sự cố".into(),
    ));
    out.push(Block::Field(
        "Tên hệ thống thông tin".into(),
        p.system_name.clone(),
    ));
    out.push(Block::Field(
        "Cấp độ an toàn hệ thống thông tin (Nghị định 85/2016/NĐ-CP)".into(),
        p.security_level.map(|l| format!("Cấp độ {l}")),
    ));
    out.push(Block::List(
        "Địa chỉ IP, tên miền công khai của hệ thống".into(),
        p.public_assets.clone(),
    ));
    out.push(Block::List(
        "Máy chủ, thiết bị bị ảnh hưởng (theo giám sát)".into(),
        facts.hosts.clone(),
    ));
}

fn indicator_lines(facts: &Facts) -> Vec<String> {
    facts
        .indicators
        .iter()
        .map(|i| format!("{}: {}", indicator_kind_vi(i.kind), i.value))
        .collect()
}

fn techniques_line(facts: &Facts) -> Option<String> {
    (!facts.techniques.is_empty() || !facts.tactics.is_empty()).then(|| {
        facts
            .techniques
            .iter()
            .chain(facts.tactics.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn action_lines(facts: &Facts) -> Vec<String> {
    facts
        .actions
        .iter()
        .map(|s| {
            let what = if s.kind == "note" {
                String::new()
            } else {
                format!(" [{}]", kind_vi(&s.kind))
            };
            format!(
                "{} — {}{what}: {}",
                vn_time(&s.at),
                s.actor,
                s.detail.trim()
            )
        })
        .collect()
}

fn history_table(facts: &Facts) -> Block {
    Block::Table {
        header: vec![
            "Thời gian".into(),
            "Người thực hiện".into(),
            "Nội dung".into(),
            "Chi tiết".into(),
        ],
        rows: facts
            .history
            .iter()
            .map(|s| {
                vec![
                    vn_time(&s.at),
                    s.actor.clone(),
                    kind_vi(&s.kind).to_string(),
                    s.detail.clone(),
                ]
            })
            .collect(),
        empty: "Chưa có diễn biến nào được ghi nhận.".into(),
    }
}

/// The masthead, signature and footer shared by both forms.
fn frame(form: Form, input: &ReportInput<'_>, blocks: Vec<Block>) -> Doc {
    let p = profile_fields(input);
    let i = &input.detail.incident;
    let issuer = vec![
        p.governing_body.clone().unwrap_or_else(|| "……….".into()),
        p.full_name.clone().unwrap_or_else(|| i.agency.clone()),
        "Số: ………/BC-……".into(),
    ];
    let today = input.generated_at.with_timezone(&vn());
    let motto = vec![
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM".into(),
        "Độc lập - Tự do - Hạnh phúc".into(),
        format!("……, ngày {}", today.format("%d tháng %m năm %Y")),
    ];
    let (number, title) = match form {
        Form::Initial => ("03", "BÁO CÁO BAN ĐẦU SỰ CỐ AN TOÀN THÔNG TIN MẠNG"),
        Form::Final => (
            "04",
            "BÁO CÁO KẾT THÚC ỨNG PHÓ SỰ CỐ AN TOÀN THÔNG TIN MẠNG",
        ),
    };
    Doc {
        subject: subject(form, input),
        issuer,
        motto,
        form_ref: format!("Mẫu {number} — Thông tư số 20/2017/TT-BTTTT"),
        title: title.into(),
        recipients: p.report_to.clone(),
        blocks,
        signature: ("NGƯỜI BÁO CÁO".into(), p.contact_name.clone()),
        footer: format!(
            "Lập tự động bởi hệ thống giám sát Ward ({}) lúc {} từ sự cố số {}; các mục “{}” cần được bổ sung trước khi gửi.",
            input.coordinator,
            vn_time(&crate::store::ts(input.generated_at)),
            i.id,
            super::doc::BLANK
        ),
    }
}

/// Common incident description fields (section 3 of both forms).
fn incident_fields(input: &ReportInput<'_>, facts: &Facts, out: &mut Vec<Block>) {
    let i = &input.detail.incident;
    out.push(Block::Field(
        "Tên sự cố".into(),
        Some(format!("{} (sự cố số {} trên Ward)", i.title, i.id)),
    ));
    if let Some(d) = &i.drill_id {
        out.push(Block::Field(
            "Ghi chú".into(),
            Some(format!(
                "Sự cố phát sinh trong diễn tập {d}, không phải tấn công thật"
            )),
        ));
    }
    out.push(Block::Field(
        "Thời điểm phát hiện".into(),
        Some(vn_time(&i.created_at)),
    ));
    out.push(Block::Field(
        "Thời điểm bắt đầu (cảnh báo đầu tiên)".into(),
        Some(vn_time(&i.first_seen)),
    ));
    out.push(Block::Field(
        "Thời điểm cảnh báo gần nhất".into(),
        Some(vn_time(&i.last_seen)),
    ));
    out.push(Block::Field(
        "Phương thức phát hiện".into(),
        Some(format!(
            "Hệ thống giám sát an toàn thông tin (Ward), luật phát hiện {}",
            i.rule_id
        )),
    ));
    out.push(Block::Field("Loại sự cố".into(), facts.category.clone()));
    out.push(Block::Field(
        "Kỹ thuật tấn công (MITRE ATT&CK)".into(),
        techniques_line(facts),
    ));
    out.push(Block::Field(
        "Mức độ nghiêm trọng (theo cảnh báo)".into(),
        Some(severity_vi(i.severity).into()),
    ));
    out.push(Block::List(
        "Nguồn tấn công (địa chỉ IP, tên miền, mã băm tệp)".into(),
        indicator_lines(facts),
    ));
}

/// Form 03, the initial report.
pub fn initial(input: &ReportInput<'_>, facts: &Facts) -> Doc {
    let p = profile_fields(input);
    let i = &input.detail.incident;
    let mut b = Vec::new();
    unit_blocks(&p, &i.agency, &mut b);
    system_blocks(&p, facts, &mut b);
    b.push(Block::Heading("3. Mô tả sự cố".into()));
    b.push(Block::Field(
        "Mô tả sơ bộ về sự cố".into(),
        Some(format!(
            "Hệ thống giám sát ghi nhận {} cảnh báo “{}” trên {} từ {} đến {}.",
            i.alert_count,
            i.title,
            facts.hosts.join(", "),
            vn_time(&i.first_seen),
            vn_time(&i.last_seen)
        )),
    ));
    incident_fields(input, facts, &mut b);
    b.push(Block::Field(
        "Phạm vi, mức độ ảnh hưởng, thiệt hại".into(),
        None,
    ));
    b.push(Block::Field(
        "Bằng chứng (trích nhật ký, kết quả quét)".into(),
        (!facts.evidence.is_empty())
            .then(|| format!("{} dòng, trích dưới đây", facts.evidence.len())),
    ));
    b.push(Block::Code(facts.evidence.clone()));
    b.push(Block::Heading(
        "4. Các biện pháp đã triển khai ban đầu".into(),
    ));
    b.push(Block::List(
        "Biện pháp đã thực hiện (ghi chú của cán bộ xử lý)".into(),
        action_lines(facts),
    ));
    b.push(Block::Field(
        "Tình trạng xử lý hiện tại".into(),
        Some(status_vi(i.status).into()),
    ));
    b.push(Block::Field("Cán bộ xử lý".into(), i.assignee.clone()));
    b.push(Block::Heading("5. Kiến nghị, đề xuất hỗ trợ".into()));
    b.push(Block::Field("Đề xuất hỗ trợ ứng cứu (nếu có)".into(), None));
    b.push(Block::Heading("6. Thông tin liên hệ".into()));
    b.push(Block::Field("Người liên hệ".into(), contact_line(&p)));
    frame(Form::Initial, input, b)
}

fn contact_line(p: &ProfileFields) -> Option<String> {
    let parts: Vec<&str> = [
        p.contact_name.as_deref(),
        p.contact_role.as_deref(),
        p.contact_phone.as_deref(),
        p.contact_email.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(" — "))
}

/// Form 04, the end-of-response report.
pub fn final_report(input: &ReportInput<'_>, facts: &Facts) -> Doc {
    let p = profile_fields(input);
    let i = &input.detail.incident;
    let mut b = Vec::new();
    if i.status.is_open() {
        b.push(Block::Para(format!(
            "Lưu ý: sự cố chưa kết thúc (trạng thái: {}); các mục về kết quả xử lý cần bổ sung khi kết thúc ứng phó.",
            status_vi(i.status)
        )));
    }
    unit_blocks(&p, &i.agency, &mut b);
    system_blocks(&p, facts, &mut b);
    b.push(Block::Heading("3. Thông tin về sự cố".into()));
    b.push(Block::Field("Số, ngày của báo cáo ban đầu".into(), None));
    incident_fields(input, facts, &mut b);
    b.push(Block::Field(
        "Số cảnh báo ghi nhận".into(),
        Some(i.alert_count.to_string()),
    ));
    b.push(Block::Heading("4. Quá trình ứng phó sự cố".into()));
    b.push(Block::Field(
        "Thời điểm tiếp nhận xử lý".into(),
        facts.acknowledged_at.as_deref().map(vn_time),
    ));
    b.push(Block::Field(
        "Thời điểm ngăn chặn".into(),
        facts.contained_at.as_deref().map(vn_time),
    ));
    b.push(Block::Field(
        "Thời điểm kết thúc ứng phó".into(),
        facts.closed_at.as_deref().map(vn_time),
    ));
    b.push(Block::Field(
        "Tổng thời gian ứng phó (từ khi phát hiện)".into(),
        facts
            .closed_at
            .as_deref()
            .and_then(|c| span(&i.created_at, c)),
    ));
    b.push(Block::Field("Cán bộ xử lý".into(), i.assignee.clone()));
    b.push(Block::Field(
        "Diễn biến xử lý".into(),
        Some("xem bảng".into()),
    ));
    b.push(history_table(facts));
    b.push(Block::Heading("5. Các biện pháp đã thực hiện".into()));
    b.push(Block::List(
        "Biện pháp ngăn chặn, khắc phục (ghi chú của cán bộ xử lý)".into(),
        action_lines(facts),
    ));
    b.push(Block::Heading("6. Kết quả xử lý".into()));
    b.push(Block::Field(
        "Tình trạng".into(),
        Some(status_vi(i.status).into()),
    ));
    b.push(Block::Field("Nguyên nhân sự cố".into(), None));
    b.push(Block::Field("Đánh giá thiệt hại".into(), None));
    b.push(Block::Field(
        "Hệ thống đã hoạt động trở lại bình thường".into(),
        None,
    ));
    b.push(Block::Heading(
        "7. Bài học kinh nghiệm, kiến nghị, đề xuất".into(),
    ));
    b.push(Block::Field("Bài học kinh nghiệm".into(), None));
    b.push(Block::Field("Kiến nghị, đề xuất".into(), None));
    b.push(Block::Heading("8. Thông tin liên hệ".into()));
    b.push(Block::Field("Người liên hệ".into(), contact_line(&p)));
    frame(Form::Final, input, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_vietnam() {
        assert_eq!(
            vn_time("2026-11-22T19:30:00.000000Z"),
            "02:30, ngày 23/11/2026 (UTC+7)"
        );
        assert_eq!(vn_time("garbage"), "garbage");
        assert_eq!(
            span("2026-11-22T00:00:00Z", "2026-11-23T02:05:00Z").as_deref(),
            Some("1 ngày 2 giờ 5 phút")
        );
    }
}
