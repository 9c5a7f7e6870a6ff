//! Per-rule allow-lists: alerts about a trusted scanner, a monitoring
//! host or a service account are dropped (and counted), not sent.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::wire::Alert;

/// One `[[suppress]]` entry of the agent config.
///
/// ```toml
/// [[suppress]]
/// rules = ["3ba9bb76-f489-4344-aa91-12d8d82291f5"]   # or ["*"] for every rule
/// entity = "src_ip"
/// values = ["203.0.113.50", "10.20.0.0/16"]          # addresses or CIDR blocks for *_ip
/// reason = "the agency's contracted vulnerability scanner"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// Rule ids it applies to; `*` for all.
    pub rules: Vec<String>,
    /// The alert entity compared: `src_ip`, `user`, `domain`, `uri`, ...
    pub entity: String,
    /// Values that suppress: exact strings, or addresses/CIDR blocks when
    /// the entity ends in `_ip`.
    pub values: Vec<String>,
    /// Why (kept for the admin who reads the config later).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Net(IpNet),
}

#[derive(Debug, Clone)]
struct Compiled {
    rules: Vec<String>,
    entity: String,
    matchers: Vec<Matcher>,
}

/// All suppressions, ready to test alerts.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    entries: Vec<Compiled>,
}

impl Suppressions {
    /// Checks and compiles the config entries.
    pub fn new(entries: &[Suppression]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(entries.len());
        for (i, s) in entries.iter().enumerate() {
            if s.rules.is_empty() || s.values.is_empty() || s.entity.is_empty() {
                return Err(format!(
                    "suppress entry {} needs rules, entity and values",
                    i + 1
                ));
            }
            let is_ip = s.entity.ends_with("_ip");
            let mut matchers = Vec::with_capacity(s.values.len());
            for v in &s.values {
                if is_ip {
                    let net = v
                        .parse::<IpNet>()
                        .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            format!(
                                "suppress entry {}: '{v}' is not an address or CIDR block",
                                i + 1
                            )
                        })?;
                    matchers.push(Matcher::Net(net));
                } else {
                    matchers.push(Matcher::Exact(v.clone()));
                }
            }
            out.push(Compiled {
                rules: s.rules.clone(),
                entity: s.entity.clone(),
                matchers,
            });
        }
        Ok(Suppressions { entries: out })
    }

    /// Whether an alert is suppressed.
    pub fn suppresses(&self, alert: &Alert) -> bool {
        self.entries.iter().any(|e| {
            e.rules.iter().any(|r| r == "*" || *r == alert.rule_id)
                && alert.entities.get(&e.entity).is_some_and(|value| {
                    e.matchers.iter().any(|m| match m {
                        Matcher::Exact(s) => s == value,
                        Matcher::Net(net) => {
                            value.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip))
                        }
                    })
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;
    use crate::wire::Severity;

    fn alert(rule: &str, ip: &str) -> Alert {
        Alert {
            id: "x".into(),
            rule_id: rule.into(),
            title: "t".into(),
            severity: Severity::Medium,
            time: Utc::now(),
            host: "h".into(),
            entities: BTreeMap::from([("src_ip".to_string(), ip.to_string())]),
            evidence: vec![],
            tags: vec![],
            source: String::new(),
            packets: vec![],
            drill_id: None,
        }
    }

    #[test]
    fn cidr_and_rule_scoping() {
        let s = Suppressions::new(&[Suppression {
            rules: vec!["scanner".into()],
            entity: "src_ip".into(),
            values: vec!["10.20.0.0/16".into(), "203.0.113.50".into()],
            reason: None,
        }])
        .unwrap();
        assert!(s.suppresses(&alert("scanner", "10.20.3.4")));
        assert!(s.suppresses(&alert("scanner", "203.0.113.50")));
        assert!(!s.suppresses(&alert("scanner", "203.0.113.51")));
        assert!(
            !s.suppresses(&alert("sqli", "10.20.3.4")),
            "other rules still alert"
        );
        assert!(!s.suppresses(&alert("scanner", "not-an-ip")));
    }

    #[test]
    fn bad_entries_are_errors() {
        let bad = Suppression {
            rules: vec!["*".into()],
            entity: "src_ip".into(),
            values: vec!["10.0.0.0/33".into()],
            reason: None,
        };
        assert!(
            Suppressions::new(&[bad])
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
    }
}
