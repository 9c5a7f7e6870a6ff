//! What the reports say about an incident, derived once from its detail and
//! the agency's profile: attacker indicators, ATT&CK techniques, the kind
//! of incident in the circular's terms, response times and the responders'
//! notes.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use crate::agency::{AgencyProfile, is_domain};
use crate::model::IncidentDetail;

/// Most evidence lines quoted in a report.
pub const MAX_EVIDENCE_LINES: usize = 10;
/// Longest evidence line quoted, in characters.
pub const MAX_EVIDENCE_CHARS: usize = 300;

/// What an indicator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndicatorKind {
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// A domain name.
    Domain,
    /// A file's SHA-256.
    Sha256,
}

/// An attacker-side value seen in the incident's alerts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Indicator {
    /// What it is.
    pub kind: IndicatorKind,
    /// The value (lower-case for domains and hashes).
    pub value: String,
    /// The entity it came from (`src_ip`, `query`, `sha256`, ...).
    pub entity: String,
}

/// One step of the incident's workflow or a note, from its timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// created, acknowledged, contained, resolved, note, ...
    pub kind: String,
    /// The note or reason.
    pub detail: String,
}

/// Everything the reports derive from an incident.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Attacker IPs, domains and file hashes, sorted, each once.
    pub indicators: Vec<Indicator>,
    /// ATT&CK technique ids (`T1110.001`) from the rule's tags.
    pub techniques: Vec<String>,
    /// ATT&CK tactics (`credential_access`) from the rule's tags.
    pub tactics: Vec<String>,
    /// The kind of incident in the circular's terms, when the tags tell.
    pub category: Option<String>,
    /// Hosts of the incident and its alerts.
    pub hosts: Vec<String>,
    /// First acknowledgement (RFC 3339).
    pub acknowledged_at: Option<String>,
    /// First containment.
    pub contained_at: Option<String>,
    /// Last resolution (or false-positive verdict) of a closed incident.
    pub closed_at: Option<String>,
    /// Status changes, assignments and notes, oldest first.
    pub history: Vec<Step>,
    /// What responders wrote: notes and the reasons given with status
    /// changes, oldest first.
    pub actions: Vec<Step>,
    /// Evidence lines from the latest alerts, capped.
    pub evidence: Vec<String>,
}

/// Entities whose values are the attacker's whatever the rule.
const ATTACKER_ENTITIES: &[&str] = &["src_ip", "query", "sni", "ioc_value", "sha256"];
/// Entities that are the attacker's only in outbound incidents (C2,
/// exfiltration, IOC hits); otherwise they name the victim.
const OUTBOUND_ENTITIES: &[&str] = &["dst_ip", "domain", "http_host"];
/// Tags that make an incident outbound.
const OUTBOUND_TAGS: &[&str] = &["attack.command_and_control", "attack.exfiltration"];

/// The circular's kinds of incident by ATT&CK tag prefix, first match wins.
const CATEGORIES: &[(&str, &str)] = &[
    ("attack.t1491", "Thay đổi giao diện (deface)"),
    ("attack.t1486", "Tấn công mã hóa dữ liệu (ransomware)"),
    ("attack.t1498", "Tấn công từ chối dịch vụ (DoS/DDoS)"),
    ("attack.t1499", "Tấn công từ chối dịch vụ (DoS/DDoS)"),
    ("attack.t1566", "Tấn công giả mạo (phishing)"),
    ("attack.t1505.003", "Tấn công sử dụng mã độc (webshell)"),
    (
        "attack.command_and_control",
        "Tấn công sử dụng mã độc (kết nối máy chủ điều khiển, botnet)",
    ),
    (
        "attack.t1071",
        "Tấn công sử dụng mã độc (kết nối máy chủ điều khiển, botnet)",
    ),
    ("attack.t1048", "Đánh cắp, làm lộ lọt dữ liệu"),
    ("attack.exfiltration", "Đánh cắp, làm lộ lọt dữ liệu"),
    (
        "attack.t1110",
        "Tấn công dò quét mật khẩu, truy cập trái phép",
    ),
    ("attack.t1078", "Truy cập trái phép, chiếm quyền điều khiển"),
    (
        "attack.privilege_escalation",
        "Truy cập trái phép, chiếm quyền điều khiển",
    ),
    (
        "attack.persistence",
        "Truy cập trái phép, chiếm quyền điều khiển",
    ),
    ("attack.t1190", "Tấn công khai thác lỗ hổng ứng dụng web"),
    (
        "attack.initial_access",
        "Tấn công khai thác lỗ hổng ứng dụng web",
    ),
    ("attack.t1595", "Tấn công dò quét, thăm dò hệ thống"),
    ("attack.t1046", "Tấn công dò quét, thăm dò hệ thống"),
    (
        "attack.reconnaissance",
        "Tấn công dò quét, thăm dò hệ thống",
    ),
    ("attack.discovery", "Tấn công dò quét, thăm dò hệ thống"),
];

/// An indicator for entity `name` = `value`, if it is an address or name
/// worth sharing (not private, loopback or the agency's own).
fn indicator(name: &str, value: &str, own: &BTreeSet<String>) -> Option<Indicator> {
    let value = value.trim();
    if own.contains(&value.to_lowercase()) {
        return None;
    }
    let entity = name.to_string();
    if name == "sha256" {
        let v = value.to_lowercase();
        return (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Indicator {
            kind: IndicatorKind::Sha256,
            value: v,
            entity,
        });
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        if !is_public(ip) {
            return None;
        }
        let kind = if ip.is_ipv4() {
            IndicatorKind::Ipv4
        } else {
            IndicatorKind::Ipv6
        };
        return Some(Indicator {
            kind,
            value: ip.to_string(),
            entity,
        });
    }
    let host = value.split(':').next().unwrap_or(value).to_lowercase();
    let host = host.trim_end_matches('.');
    (is_domain(host) && !own.contains(host)).then(|| Indicator {
        kind: IndicatorKind::Domain,
        value: host.to_string(),
        entity,
    })
}

/// Whether an address is routable on the Internet (not private, loopback,
/// link-local, documentation-only ranges are kept: they are what tests and
/// examples use).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80)
        }
    }
}

/// `attack.t1110.001` → `T1110.001`.
fn technique(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("attack.t")?;
    let (main, sub) = rest.split_once('.').unwrap_or((rest, ""));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(main, 4) || !(sub.is_empty() || digits(sub, 3)) {
        return None;
    }
    Some(if sub.is_empty() {
        format!("T{main}")
    } else {
        format!("T{main}.{sub}")
    })
}

/// `g0007`, `s0002`: ATT&CK groups and software, not tactics.
fn is_object_id(tag: &str) -> bool {
    tag.get(1..)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Status changes that end or advance the response.
const STATUS_KINDS: &[&str] = &[
    "acknowledged",
    "contained",
    "resolved",
    "false_positive",
    "reopened",
];

impl Facts {
    /// Derives the facts of `d` (the agency's profile names its own assets,
    /// which are never indicators).
    pub fn of(d: &IncidentDetail, profile: Option<&AgencyProfile>) -> Facts {
        let i = &d.incident;
        let own: BTreeSet<String> = profile
            .map(|p| {
                p.fields
                    .public_assets
                    .iter()
                    .map(|a| a.to_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let outbound = i.tags.iter().any(|t| OUTBOUND_TAGS.contains(&t.as_str()));
        let mut indicators = BTreeSet::new();
        let entity_maps = std::iter::once(&i.entities).chain(d.alerts.iter().map(|a| &a.entities));
        for entities in entity_maps {
            for (name, value) in entities {
                let wanted = ATTACKER_ENTITIES.contains(&name.as_str())
                    || (outbound && OUTBOUND_ENTITIES.contains(&name.as_str()));
                if let Some(ind) = wanted.then(|| indicator(name, value, &own)).flatten() {
                    // One indicator per value, whichever entity named it first.
                    if !indicators
                        .iter()
                        .any(|x: &Indicator| x.kind == ind.kind && x.value == ind.value)
                    {
                        indicators.insert(ind);
                    }
                }
            }
        }
        let techniques: BTreeSet<String> = i.tags.iter().filter_map(|t| technique(t)).collect();
        let tactics: BTreeSet<String> = i
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("attack."))
            .filter(|t| technique(&format!("attack.{t}")).is_none() && !is_object_id(t))
            .map(str::to_string)
            .collect();
        let category = CATEGORIES
            .iter()
            .find(|(prefix, _)| {
                i.tags
                    .iter()
                    .any(|t| t == prefix || t.starts_with(&format!("{prefix}.")))
            })
            .map(|(_, c)| (*c).to_string());
        let hosts: BTreeSet<String> = std::iter::once(i.host.clone())
            .chain(d.alerts.iter().map(|a| a.host.clone()))
            .collect();
        let step = |t: &crate::model::TimelineEntry| Step {
            at: t.at.clone(),
            actor: t.actor.clone(),
            kind: t.kind.clone(),
            detail: t.detail.clone(),
        };
        let first = |kind: &str| {
            d.timeline
                .iter()
                .find(|t| t.kind == kind)
                .map(|t| t.at.clone())
        };
        let closed_at = (!i.status.is_open())
            .then(|| {
                d.timeline
                    .iter()
                    .rev()
                    .find(|t| t.kind == "resolved" || t.kind == "false_positive")
                    .map(|t| t.at.clone())
            })
            .flatten();
        let history = d
            .timeline
            .iter()
            .filter(|t| t.kind != "alert")
            .map(step)
            .collect();
        let actions = d
            .timeline
            .iter()
            .filter(|t| {
                !t.detail.trim().is_empty()
                    && (t.kind == "note" || STATUS_KINDS.contains(&t.kind.as_str()))
            })
            .map(step)
            .collect();
        let evidence = d
            .alerts
            .iter()
            .flat_map(|a| a.evidence.iter())
            .take(MAX_EVIDENCE_LINES)
            .map(|l| {
                if l.chars().count() > MAX_EVIDENCE_CHARS {
                    let mut s: String = l.chars().take(MAX_EVIDENCE_CHARS - 1).collect();
                    s.push('…');
                    s
                } else {
                    l.clone()
                }
            })
            .collect();
        Facts {
            indicators: indicators.into_iter().collect(),
            techniques: techniques.into_iter().collect(),
            tactics: tactics.into_iter().collect(),
            category,
            hosts: hosts.into_iter().collect(),
            acknowledged_at: first("acknowledged"),
            contained_at: first("contained"),
            closed_at,
            history,
            actions,
            evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn techniques_from_tags() {
        assert_eq!(technique("attack.t1110.001").as_deref(), Some("T1110.001"));
        assert_eq!(technique("attack.t1190").as_deref(), Some("T1190"));
        assert_eq!(technique("attack.initial_access"), None);
        assert_eq!(technique("attack.t11"), None);
    }

    #[test]
    fn indicators_skip_private_and_own() {
        let own: BTreeSet<String> = ["portal.example.gov.vn".to_string()].into();
        assert!(indicator("src_ip", "10.1.2.3", &own).is_none());
        assert!(indicator("src_ip", "::1", &own).is_none());
        assert_eq!(
            indicator("src_ip", "203.0.113.7", &own).unwrap().kind,
            IndicatorKind::Ipv4
        );
        assert_eq!(
            indicator("src_ip", "2001:db8::7", &own).unwrap().kind,
            IndicatorKind::Ipv6
        );
        assert!(indicator("domain", "portal.example.gov.vn", &own).is_none());
        assert_eq!(
            indicator("query", "C2.Evil.example.", &own).unwrap().value,
            "c2.evil.example"
        );
        assert!(indicator("sha256", "abc", &own).is_none());
    }
}
