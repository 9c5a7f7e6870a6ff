//! An incident as a STIX 2.1 bundle for sharing with other teams: an
//! `identity` for the coordinator and one for the agency, an `indicator`
//! per attacker IP, domain and file hash with a `sighting` of it at the
//! agency, and the incident as a `report` referring to all of them.
//!
//! Ids are UUIDv5 names under a namespace derived from the coordinator's
//! URL, and every timestamp comes from the incident, so exporting the same
//! incident twice gives the same bundle.

use serde_json::{Value, json};
use uuid::Uuid;

use super::ReportInput;
use super::facts::{Facts, IndicatorKind};

/// A STIX id `type--uuid` for `name` under the coordinator's namespace.
fn id(ns: &Uuid, kind: &str, name: &str) -> String {
    format!(
        "{kind}--{}",
        Uuid::new_v5(ns, format!("{kind}/{name}").as_bytes())
    )
}

/// A string literal in a STIX pattern: `'` and `\` escaped.
fn pattern_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX pattern matching one indicator.
fn pattern(kind: IndicatorKind, value: &str) -> String {
    let v = pattern_literal(value);
    match kind {
        IndicatorKind::Ipv4 => format!("[ipv4-addr:value = '{v}']"),
        IndicatorKind::Ipv6 => format!("[ipv6-addr:value = '{v}']"),
        IndicatorKind::Domain => format!("[domain-name:value = '{v}']"),
        IndicatorKind::Sha256 => format!("[file:hashes.'SHA-256' = '{v}']"),
    }
}

/// A STIX timestamp: RFC 3339 in UTC with a `Z` (Ward's own format), or
/// the given fallback when a stored time does not parse.
fn stamp(t: &str, fallback: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t).map_or_else(
        |_| fallback.to_string(),
        |d| crate::store::ts(d.with_timezone(&chrono::Utc)),
    )
}

/// The bundle for `input`.
pub fn bundle(input: &ReportInput<'_>, facts: &Facts) -> Value {
    let i = &input.detail.incident;
    let ns = Uuid::new_v5(&Uuid::NAMESPACE_URL, input.coordinator.as_bytes());
    let incident_key = format!("incident/{}", i.id);
    let created = stamp(&i.created_at, "1970-01-01T00:00:00.000000Z");
    let modified = stamp(&i.updated_at, &created).max(created.clone());
    let first_seen = stamp(&i.first_seen, &created);
    let last_seen = stamp(&i.last_seen, &first_seen).max(first_seen.clone());

    let coordinator_id = id(&ns, "identity", "coordinator");
    let coordinator = json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": coordinator_id,
        "created": created,
        "modified": created,
        "name": format!("Ward coordinator {}", input.coordinator),
        "identity_class": "organization",
    });
    let profile = input.profile.map(|p| &p.fields);
    let agency_id = id(&ns, "identity", &format!("agency/{}", i.agency));
    let mut agency = json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": agency_id,
        "created": created,
        "modified": created,
        "created_by_ref": coordinator_id,
        "name": profile.and_then(|p| p.full_name.clone()).unwrap_or_else(|| i.agency.clone()),
        "identity_class": "organization",
        "sectors": ["government-local"],
    });
    if let Some(email) = profile.and_then(|p| p.contact_email.as_deref()) {
        agency["contact_information"] = json!(email);
    }

    let mut objects = vec![coordinator, agency];
    let mut refs = vec![agency_id.clone()];
    for ind in &facts.indicators {
        let key = format!("{incident_key}/{:?}/{}", ind.kind, ind.value);
        let ind_id = id(&ns, "indicator", &key);
        objects.push(json!({
            "type": "indicator",
            "spec_version": "2.1",
            "id": ind_id,
            "created": created,
            "modified": created,
            "created_by_ref": coordinator_id,
            "name": format!("{} ({})", ind.value, ind.entity),
            "description": format!("Seen in Ward incident {}: {}", i.id, i.title),
            "indicator_types": ["malicious-activity"],
            "pattern": pattern(ind.kind, &ind.value),
            "pattern_type": "stix",
            "valid_from": first_seen,
        }));
        let sighting_id = id(&ns, "sighting", &key);
        objects.push(json!({
            "type": "sighting",
            "spec_version": "2.1",
            "id": sighting_id,
            "created": created,
            "modified": created,
            "created_by_ref": coordinator_id,
            "sighting_of_ref": ind_id,
            "where_sighted_refs": [agency_id],
            "first_seen": first_seen,
            "last_seen": last_seen,
            "count": i.alert_count.clamp(0, 999_999_999),
        }));
        refs.push(ind_id);
        refs.push(sighting_id);
    }
    let external: Vec<Value> = facts
        .techniques
        .iter()
        .map(|t| {
            json!({
                "source_name": "mitre-attack",
                "external_id": t,
                "url": format!("https://attack.mitre.org/techniques/{}/", t.replace('.', "/")),
            })
        })
        .collect();
    let mut report = json!({
        "type": "report",
        "spec_version": "2.1",
        "id": id(&ns, "report", &incident_key),
        "created": created,
        "modified": modified,
        "created_by_ref": coordinator_id,
        "name": i.title,
        "description": format!(
            "Ward incident {} at {} ({}): rule {}, severity {}, status {}, {} alert(s) on {} from {} to {}.",
            i.id, i.agency, i.host, i.rule_id, i.severity, i.status, i.alert_count,
            facts.hosts.join(", "), first_seen, last_seen
        ),
        "report_types": ["threat-report"],
        "published": modified,
        "object_refs": refs,
        "labels": i.tags,
    });
    if !external.is_empty() {
        report["external_references"] = Value::Array(external);
    }
    if i.tags.is_empty() {
        report.as_object_mut().map(|o| o.remove("labels"));
    }
    objects.push(report);
    json!({
        "type": "bundle",
        "id": id(&ns, "bundle", &incident_key),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_quotes() {
        assert_eq!(
            pattern(IndicatorKind::Domain, "a'b\\c.vn"),
            "[domain-name:value = 'a\\'b\\\\c.vn']"
        );
        assert_eq!(
            pattern(IndicatorKind::Sha256, "ab"),
            "[file:hashes.'SHA-256' = 'ab']"
        );
    }

    #[test]
    fn ids_are_stable_and_typed() {
        let ns = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://ward.example");
        let a = id(&ns, "indicator", "x");
        assert_eq!(a, id(&ns, "indicator", "x"));
        assert_ne!(a, id(&ns, "indicator", "y"));
        let (kind, uuid) = a.split_once("--").unwrap();
        assert_eq!(kind, "indicator");
        assert_eq!(Uuid::parse_str(uuid).unwrap().get_version_num(), 5);
    }
}
