//! The drill scorecard: which expected incidents appeared and how fast,
//! false alarms, what Ward saw of each attacker, and (live drills) how fast
//! responders acknowledged and resolved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Absence, Expectation, Scenario};
use crate::wire::Severity;

/// Something Ward raised during a drill: an incident (live) or a group of
/// alerts by rule, host and primary entity (offline), which is what an
/// incident is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The coordinator's incident id (live drills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
    /// The rule.
    pub rule_id: String,
    /// Its title.
    pub title: String,
    /// The host.
    pub host: String,
    /// Highest severity.
    pub severity: Severity,
    /// Its entities (first value per name).
    pub entities: BTreeMap<String, String>,
    /// Alerts in it.
    pub alert_count: i64,
    /// Seconds from the drill's start to its detection.
    pub detected_s: f64,
    /// Seconds from the drill's start to its first acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_s: Option<f64>,
    /// Seconds from the drill's start to its resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_s: Option<f64>,
}

/// One expectation, scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreItem {
    /// The rule expected (id or title).
    pub rule: String,
    /// The host expected.
    pub host: Option<String>,
    /// The entities expected.
    pub entity: BTreeMap<String, String>,
    /// The lowest severity accepted.
    pub min_severity: Option<Severity>,
    /// The time allowed, from the drill's start.
    pub within_s: f64,
    /// Whether it appeared within the time allowed.
    pub detected: bool,
    /// Seconds from the drill's start to the first matching detection
    /// (also when it came too late).
    pub time_to_detect_s: Option<f64>,
    /// It appeared, but after `within_s`.
    #[serde(default)]
    pub late: bool,
    /// The matching incident (live drills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
    /// The matching detection's title and severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Its severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

/// A detection that should not have been raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FalseAlarm {
    /// The detection.
    #[serde(flatten)]
    pub detection: Detection,
    /// Why it counts: it matches an `absent` entry, or it concerns none of
    /// the scenario's attackers and no expectation.
    pub reason: String,
}

/// One thing Ward saw of an attacker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// Seconds from the drill's start.
    pub at_s: f64,
    /// The host.
    pub host: String,
    /// The rule's title.
    pub title: String,
    /// The rule.
    pub rule_id: String,
    /// Severity.
    pub severity: Severity,
    /// The incident (live drills).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<i64>,
}

/// What Ward saw of one attacker, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackerTimeline {
    /// The attacker's label.
    pub name: String,
    /// Its addresses.
    pub ips: Vec<String>,
    /// Its domains.
    pub domains: Vec<String>,
    /// Hosts it was seen on.
    pub hosts: Vec<String>,
    /// Detections naming it, in time order.
    pub timeline: Vec<Sighting>,
}

/// Totals of a drill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Detections (incidents) raised.
    pub incidents: usize,
    /// Alerts in them.
    pub alerts: i64,
    /// Mean time to detect over the expectations met, in seconds.
    pub mean_time_to_detect_s: Option<f64>,
    /// Longest time to detect over the expectations met.
    pub max_time_to_detect_s: Option<f64>,
    /// Incidents acknowledged by responders.
    pub acknowledged: usize,
    /// Incidents resolved by responders.
    pub resolved: usize,
    /// Mean seconds from detection to acknowledgement.
    pub mean_time_to_acknowledge_s: Option<f64>,
    /// Mean seconds from detection to resolution.
    pub mean_time_to_resolve_s: Option<f64>,
    /// Every expectation met and no false alarm.
    pub passed: bool,
}

/// The scorecard of one drill run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    /// The drill's id.
    pub drill_id: String,
    /// The scenario's name.
    pub scenario: String,
    /// `offline` (virtual time, engine only) or `live` (agents and coordinator).
    pub mode: String,
    /// When the drill started (RFC 3339; the virtual start offline).
    pub started_at: String,
    /// Expectations.
    pub expected: usize,
    /// Expectations met in time.
    pub detected: usize,
    /// Expectations not met in time.
    pub missed: usize,
    /// Detections that should not have been raised.
    pub false_alarms: usize,
    /// One per expectation, in the scenario's order.
    pub items: Vec<ScoreItem>,
    /// The false alarms.
    pub false_alarm_items: Vec<FalseAlarm>,
    /// Per attacker, what Ward saw.
    pub attackers: Vec<AttackerTimeline>,
    /// Everything raised, in detection order.
    pub incidents: Vec<Detection>,
    /// Totals.
    pub totals: Totals,
}

fn rule_matches(rule: &str, d: &Detection) -> bool {
    d.rule_id == rule || d.title.eq_ignore_ascii_case(rule)
}

fn entities_match(want: &BTreeMap<String, String>, d: &Detection) -> bool {
    want.iter()
        .all(|(k, v)| d.entities.get(k).is_some_and(|x| x == v))
}

/// Whether `d` satisfies `e` (time aside).
pub fn expectation_matches(e: &Expectation, d: &Detection) -> bool {
    rule_matches(&e.rule, d)
        && e.host.as_ref().is_none_or(|h| *h == d.host)
        && entities_match(&e.entity, d)
        && e.severity.is_none_or(|s| d.severity >= s)
}

fn absence_matches(a: &Absence, d: &Detection) -> bool {
    rule_matches(&a.rule, d)
        && a.host.as_ref().is_none_or(|h| *h == d.host)
        && entities_match(&a.entity, d)
}

/// Whether a detection concerns one of the scenario's attackers: it names
/// one of their addresses or domains, or a file the scenario planted.
fn names_attacker(s: &Scenario, d: &Detection) -> bool {
    let planted = d.entities.get("path").is_some_and(|p| {
        s.injects.iter().any(|i| match &i.action {
            super::Action::Drop { path, .. } | super::Action::Change { path, .. } => {
                i.host == d.host && (p == path || p.ends_with(&format!("/{path}")))
            }
            _ => false,
        })
    });
    planted
        || d.entities.values().any(|v| {
            s.attackers.iter().any(|a| {
                a.ips.iter().any(|ip| ip == v)
                    || a.domains.iter().any(|dom| {
                        v == dom
                            || v.strip_suffix(dom.as_str())
                                .is_some_and(|p| p.ends_with('.'))
                    })
            })
        })
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| round(v.iter().sum::<f64>() / v.len() as f64))
}

/// Seconds rounded to milliseconds, so scorecards read (and compare) well.
pub fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Scores `detections` against the scenario.
pub fn score(
    s: &Scenario,
    drill_id: &str,
    mode: &str,
    started_at: &str,
    mut detections: Vec<Detection>,
) -> Scorecard {
    detections.sort_by(|a, b| {
        a.detected_s
            .total_cmp(&b.detected_s)
            .then_with(|| a.incident_id.cmp(&b.incident_id))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
            .then_with(|| a.host.cmp(&b.host))
    });
    for d in &mut detections {
        d.detected_s = round(d.detected_s);
    }
    let mut items = Vec::new();
    for e in &s.expect {
        let first = detections.iter().find(|d| expectation_matches(e, d));
        let detected = first.is_some_and(|d| d.detected_s <= e.within_s);
        items.push(ScoreItem {
            rule: e.rule.clone(),
            host: e.host.clone(),
            entity: e.entity.clone(),
            min_severity: e.severity,
            within_s: e.within_s,
            detected,
            time_to_detect_s: first.map(|d| d.detected_s),
            late: first.is_some() && !detected,
            incident_id: first.and_then(|d| d.incident_id),
            title: first.map(|d| d.title.clone()),
            severity: first.map(|d| d.severity),
        });
    }
    let mut false_alarm_items = Vec::new();
    for d in &detections {
        if let Some(a) = s.absent.iter().find(|a| absence_matches(a, d)) {
            false_alarm_items.push(FalseAlarm {
                detection: d.clone(),
                reason: format!("the scenario says '{}' must not appear", a.rule),
            });
        } else if !s.expect.iter().any(|e| expectation_matches(e, d)) && !names_attacker(s, d) {
            false_alarm_items.push(FalseAlarm {
                detection: d.clone(),
                reason: "names none of the scenario's attackers and meets no expectation".into(),
            });
        }
    }
    let attackers = s
        .attackers
        .iter()
        .map(|a| {
            let one = Scenario {
                attackers: vec![a.clone()],
                ..s.clone()
            };
            let timeline: Vec<Sighting> = detections
                .iter()
                .filter(|d| names_attacker(&one, d))
                .map(|d| Sighting {
                    at_s: d.detected_s,
                    host: d.host.clone(),
                    title: d.title.clone(),
                    rule_id: d.rule_id.clone(),
                    severity: d.severity,
                    incident_id: d.incident_id,
                })
                .collect();
            let mut hosts: Vec<String> = timeline.iter().map(|t| t.host.clone()).collect();
            hosts.sort();
            hosts.dedup();
            AttackerTimeline {
                name: a.name.clone(),
                ips: a.ips.clone(),
                domains: a.domains.clone(),
                hosts,
                timeline,
            }
        })
        .collect();
    let ttd: Vec<f64> = items
        .iter()
        .filter(|i| i.detected)
        .filter_map(|i| i.time_to_detect_s)
        .collect();
    let tta: Vec<f64> = detections
        .iter()
        .filter_map(|d| d.acknowledged_s.map(|a| a - d.detected_s))
        .collect();
    let ttr: Vec<f64> = detections
        .iter()
        .filter_map(|d| d.resolved_s.map(|r| r - d.detected_s))
        .collect();
    let detected = items.iter().filter(|i| i.detected).count();
    let totals = Totals {
        incidents: detections.len(),
        alerts: detections.iter().map(|d| d.alert_count).sum(),
        mean_time_to_detect_s: mean(&ttd),
        max_time_to_detect_s: ttd.iter().copied().reduce(f64::max),
        acknowledged: tta.len(),
        resolved: ttr.len(),
        mean_time_to_acknowledge_s: mean(&tta),
        mean_time_to_resolve_s: mean(&ttr),
        passed: detected == items.len() && false_alarm_items.is_empty(),
    };
    Scorecard {
        drill_id: drill_id.to_string(),
        scenario: s.name.clone(),
        mode: mode.to_string(),
        started_at: started_at.to_string(),
        expected: items.len(),
        detected,
        missed: items.len() - detected,
        false_alarms: false_alarm_items.len(),
        items,
        false_alarm_items,
        attackers,
        incidents: detections,
        totals,
    }
}

impl Scorecard {
    /// Sets how fast responders acknowledged and resolved each incident
    /// (seconds from the drill's start, by incident id) and recomputes the
    /// totals that depend on it. Live drills are scored when the last
    /// inject is detected; responders keep working them after that, so the
    /// coordinator refreshes these whenever the drill is shown.
    pub fn set_response_times(&mut self, times: &BTreeMap<i64, (Option<f64>, Option<f64>)>) {
        for d in &mut self.incidents {
            if let Some((ack, res)) = d.incident_id.and_then(|id| times.get(&id)) {
                d.acknowledged_s = ack.map(round);
                d.resolved_s = res.map(round);
            }
        }
        let tta: Vec<f64> = self
            .incidents
            .iter()
            .filter_map(|d| d.acknowledged_s.map(|a| (a - d.detected_s).max(0.0)))
            .collect();
        let ttr: Vec<f64> = self
            .incidents
            .iter()
            .filter_map(|d| d.resolved_s.map(|r| (r - d.detected_s).max(0.0)))
            .collect();
        self.totals.acknowledged = tta.len();
        self.totals.resolved = ttr.len();
        self.totals.mean_time_to_acknowledge_s = mean(&tta);
        self.totals.mean_time_to_resolve_s = mean(&ttr);
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"))
}

impl Scorecard {
    /// The scorecard as text for a terminal.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Drill {} — scenario {} ({}), started {}",
            self.drill_id, self.scenario, self.mode, self.started_at
        );
        let _ = writeln!(
            o,
            "  expected {}  detected {}  missed {}  false alarms {}  → {}",
            self.expected,
            self.detected,
            self.missed,
            self.false_alarms,
            if self.totals.passed {
                "PASSED"
            } else {
                "FAILED"
            }
        );
        let _ = writeln!(o, "\nExpectations:");
        for i in &self.items {
            let mark = if i.detected {
                "ok  "
            } else if i.late {
                "LATE"
            } else {
                "MISS"
            };
            let ent: Vec<String> = i.entity.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                o,
                "  [{mark}] {:<40} host {:<12} {:<24} within {:>6.1}s  detected {}",
                i.rule,
                i.host.as_deref().unwrap_or("any"),
                ent.join(","),
                i.within_s,
                secs(i.time_to_detect_s)
            );
        }
        if !self.false_alarm_items.is_empty() {
            let _ = writeln!(o, "\nFalse alarms:");
            for f in &self.false_alarm_items {
                let _ = writeln!(
                    o,
                    "  {} on {} at {:.1}s: {}",
                    f.detection.title, f.detection.host, f.detection.detected_s, f.reason
                );
            }
        }
        for a in &self.attackers {
            let _ = writeln!(
                o,
                "\nAttacker {} ({}):",
                a.name,
                a.ips
                    .iter()
                    .chain(&a.domains)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if a.timeline.is_empty() {
                let _ = writeln!(o, "  not seen");
            }
            for t in &a.timeline {
                let _ = writeln!(
                    o,
                    "  +{:>7.1}s  {:<12} {:<8} {}",
                    t.at_s, t.host, t.severity, t.title
                );
            }
        }
        let t = &self.totals;
        let _ = writeln!(
            o,
            "\nTotals: {} incidents, {} alerts; time to detect mean {} max {}; acknowledged {} (mean {}), resolved {} (mean {})",
            t.incidents,
            t.alerts,
            secs(t.mean_time_to_detect_s),
            secs(t.max_time_to_detect_s),
            t.acknowledged,
            secs(t.mean_time_to_acknowledge_s),
            t.resolved,
            secs(t.mean_time_to_resolve_s)
        );
        o
    }
}
