//! The after-action report of a drill, in Markdown: summary, expectations,
//! false alarms, per-attacker and per-day timelines, the responders' work
//! on each incident. [`html`] renders the same report as a page with
//! `pulldown-cmark`; whatever raw HTML the Markdown holds (from scenario
//! descriptions, incident titles, responders' notes) comes out as escaped
//! text, and links and images as their text only.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use crate::model::{DrillRecord, IncidentDetail};

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |s| format!("{s:.1} s"))
}

/// Table cells cannot hold `|` or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The report of `d`; `incidents` are its incidents' details (timelines).
pub fn markdown(d: &DrillRecord, incidents: &[IncidentDetail]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# After-action report: drill {}\n", d.id);
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Scenario | `{}` |", cell(&d.scenario));
    let _ = writeln!(
        o,
        "| Started | {} by {} |",
        d.started_at,
        cell(&d.started_by)
    );
    let _ = writeln!(
        o,
        "| Status | {}{} |",
        d.status,
        d.reason
            .as_deref()
            .map_or(String::new(), |r| format!(": {}", cell(r)))
    );
    let ended = match d.status.as_str() {
        "abandoned" => "Abandoned",
        "aborted" => "Aborted",
        _ => "Finished",
    };
    let _ = writeln!(
        o,
        "| {ended} | {} |",
        d.finished_at.as_deref().unwrap_or("still running")
    );
    let _ = writeln!(o, "| Incidents | {} |", d.incidents);
    if !d.description.is_empty() {
        let _ = writeln!(o, "\n{}", d.description.trim());
    }
    let Some(card) = &d.scorecard else {
        let _ = writeln!(o, "\nThe drill has no scorecard yet.");
        return o;
    };
    let start = DateTime::parse_from_rfc3339(&card.started_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let at = |s: f64| start + Duration::milliseconds((s * 1000.0) as i64);
    let t = &card.totals;
    let _ = writeln!(o, "\n## Summary\n");
    let _ = writeln!(
        o,
        "**{}** — {} of {} expected detections in time, {} missed, {} false alarms.\n",
        if t.passed { "Passed" } else { "Failed" },
        card.detected,
        card.expected,
        card.missed,
        card.false_alarms
    );
    let _ = writeln!(o, "| measure | value |\n|---|---|");
    let _ = writeln!(
        o,
        "| incidents raised | {} ({} alerts) |",
        t.incidents, t.alerts
    );
    let _ = writeln!(
        o,
        "| time to detect, mean / max | {} / {} |",
        secs(t.mean_time_to_detect_s),
        secs(t.max_time_to_detect_s)
    );
    let _ = writeln!(
        o,
        "| acknowledged | {} of {} (mean {} after detection) |",
        t.acknowledged,
        t.incidents,
        secs(t.mean_time_to_acknowledge_s)
    );
    let _ = writeln!(
        o,
        "| resolved | {} of {} (mean {} after detection) |",
        t.resolved,
        t.incidents,
        secs(t.mean_time_to_resolve_s)
    );

    let _ = writeln!(o, "\n## Expected detections\n");
    let _ = writeln!(
        o,
        "| result | rule | host | entities | min severity | allowed | detected after | incident |\n|---|---|---|---|---|---|---|---|"
    );
    for i in &card.items {
        let ent: Vec<String> = i.entity.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {:.0} s | {} | {} |",
            if i.detected {
                "detected"
            } else if i.late {
                "late"
            } else {
                "missed"
            },
            cell(&i.rule),
            i.host.as_deref().unwrap_or("any"),
            cell(&ent.join(", ")),
            i.min_severity.map_or("any".to_string(), |s| s.to_string()),
            i.within_s,
            secs(i.time_to_detect_s),
            i.incident_id.map_or("—".to_string(), |n| format!("#{n}"))
        );
    }
    if !card.false_alarm_items.is_empty() {
        let _ = writeln!(o, "\n## False alarms\n");
        for f in &card.false_alarm_items {
            let _ = writeln!(
                o,
                "- {} on {} at +{:.1} s{}: {}",
                cell(&f.detection.title),
                f.detection.host,
                f.detection.detected_s,
                f.detection
                    .incident_id
                    .map_or(String::new(), |n| format!(" (incident #{n})")),
                f.reason
            );
        }
    }

    let _ = writeln!(o, "\n## Attackers\n");
    for a in &card.attackers {
        let ids: Vec<&str> = a.ips.iter().chain(&a.domains).map(String::as_str).collect();
        let _ = writeln!(o, "### {} ({})\n", cell(&a.name), ids.join(", "));
        if a.timeline.is_empty() {
            let _ = writeln!(o, "Not seen by Ward.\n");
            continue;
        }
        let _ = writeln!(o, "Seen on {}.\n", a.hosts.join(", "));
        let _ = writeln!(
            o,
            "| time (UTC) | +s | host | severity | detection | incident |\n|---|---|---|---|---|---|"
        );
        for s in &a.timeline {
            let _ = writeln!(
                o,
                "| {} | {:.1} | {} | {} | {} | {} |",
                at(s.at_s).format("%Y-%m-%d %H:%M:%S"),
                s.at_s,
                s.host,
                s.severity,
                cell(&s.title),
                s.incident_id.map_or("—".to_string(), |n| format!("#{n}"))
            );
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Timeline by day\n");
    let mut days: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for det in &card.incidents {
        let when = at(det.detected_s);
        days.entry(when.format("%Y-%m-%d").to_string())
            .or_default()
            .push(format!(
                "- {} detected: {} on {} ({}){}",
                when.format("%H:%M:%S"),
                cell(&det.title),
                det.host,
                det.severity,
                det.incident_id
                    .map_or(String::new(), |n| format!(", incident #{n}"))
            ));
        for (label, v) in [
            ("acknowledged", det.acknowledged_s),
            ("resolved", det.resolved_s),
        ] {
            if let Some(s) = v {
                let w = at(s);
                days.entry(w.format("%Y-%m-%d").to_string())
                    .or_default()
                    .push(format!(
                        "- {} {label}: {} on {}",
                        w.format("%H:%M:%S"),
                        cell(&det.title),
                        det.host
                    ));
            }
        }
    }
    for (day, mut lines) in days {
        lines.sort();
        let _ = writeln!(o, "### {day}\n");
        for l in lines {
            let _ = writeln!(o, "{l}");
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(o, "## Response\n");
    let _ = writeln!(
        o,
        "| incident | detection | host | detected after | acknowledged after | resolved after |\n|---|---|---|---|---|---|"
    );
    for det in &card.incidents {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            det.incident_id.map_or("—".to_string(), |n| format!("#{n}")),
            cell(&det.title),
            det.host,
            secs(Some(det.detected_s)),
            secs(det.acknowledged_s),
            secs(det.resolved_s)
        );
    }
    let worked: Vec<&IncidentDetail> = incidents
        .iter()
        .filter(|i| i.timeline.iter().any(|e| e.kind != "created"))
        .collect();
    if !worked.is_empty() {
        let _ = writeln!(o, "\n### Responders' actions\n");
        for i in worked {
            let _ = writeln!(
                o,
                "- Incident #{} ({}):",
                i.incident.id,
                cell(&i.incident.title)
            );
            for e in i.timeline.iter().filter(|e| e.kind != "created") {
                let _ = writeln!(
                    o,
                    "  - {} {} {}{}",
                    e.at,
                    cell(&e.actor),
                    e.kind,
                    if e.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", cell(&e.detail))
                    }
                );
            }
        }
    }
    o
}

/// The report of `d` as a self-contained HTML page (`<article
/// class="drill-report">` in its body holds the report).
pub fn html(d: &DrillRecord, incidents: &[IncidentDetail]) -> String {
    let body = markdown_to_html(&markdown(d, incidents));
    let title =
        d.id.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>After-action report: drill {title}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<article class=\"drill-report\">\n{body}</article>\n</body>\n</html>\n"
    )
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #c8ccd1;padding:.2rem .5rem;text-align:left}\
code{background:#f1f3f5;padding:0 .2rem}";

/// Markdown into HTML with raw HTML escaped and links and images reduced
/// to their text: the result holds only the elements Markdown itself makes.
pub fn markdown_to_html(md: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let events = Parser::new_ext(md, Options::ENABLE_TABLES).filter_map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
        Event::Start(Tag::Link { .. } | Tag::Image { .. })
        | Event::End(TagEnd::Link | TagEnd::Image) => None,
        e => Some(e),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_links_come_out_as_text() {
        let html = markdown_to_html(
            "# T\n\n<script>alert(1)</script>\n\nA <img src=x onerror=alert(1)> and \
             [click](javascript:alert(1)) ![i](http://x/i.png)\n\n| a | b |\n|---|---|\n| <b>x</b> | y |\n",
        );
        assert!(html.contains("<h1>T</h1>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<table>") && html.contains("<td>&lt;b&gt;x&lt;/b&gt;</td>"),
            "{html}"
        );
        assert!(html.contains("click"), "{html}");
        for bad in ["<script", "<img", "<a ", "href", "javascript:", "<b>"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
