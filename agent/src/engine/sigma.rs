//! [`Detector`] over the `rsigma` Sigma evaluator.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode,
    EvaluationResult, ResultBody, TimestampFallback,
};
use rsigma_parser::Level;
use sha2::{Digest, Sha256};

use super::{Detector, IocSet, RulePack};
use crate::event::Event;
use crate::wire::{Alert, MAX_EVIDENCE_LINES, Severity, cap_evidence_line};

/// Event fields copied into an alert's entities when present.
const ENTITY_FIELDS: &[&str] = &[
    "src_ip",
    "dst_ip",
    "dst_port",
    "domain",
    "query",
    "sni",
    "http_host",
    "ioc_value",
    "user",
    "target_user",
    "uri",
    "path",
    "sha256",
];

/// Largest number of correlation state entries before the oldest are evicted.
pub const MAX_CORRELATION_STATE: usize = 100_000;

/// Raw records of recent events that matched a rule, kept as correlation
/// evidence. Correlation windows hold only references (origins), so the
/// engine neither copies nor compresses every matching event; the records
/// of the latest [`RECENT_EVIDENCE`] matches are kept here instead.
pub const RECENT_EVIDENCE: usize = 20_000;

/// The raw records of the latest matching events, by origin (FIFO, bounded).
#[derive(Default)]
struct RecentRaw {
    by_origin: HashMap<String, String>,
    order: VecDeque<String>,
}

impl RecentRaw {
    fn remember(&mut self, origin: &str, raw: &str) {
        if self.by_origin.contains_key(origin) {
            return;
        }
        if self.order.len() >= RECENT_EVIDENCE
            && let Some(old) = self.order.pop_front()
        {
            self.by_origin.remove(&old);
        }
        self.order.push_back(origin.to_string());
        self.by_origin.insert(origin.to_string(), raw.to_string());
    }
}

/// Sigma detection and correlation, evaluated on event time.
pub struct SigmaDetector {
    engine: CorrelationEngine,
    rules: usize,
    /// Ids of rules that only feed correlations (`generate: false`): their
    /// matches are not alerts.
    building_blocks: HashSet<String>,
    /// The pack's indicator lists, looked up before each event is judged.
    iocs: IocSet,
    recent: RecentRaw,
}

impl SigmaDetector {
    /// Compiles a checked pack.
    pub fn new(pack: &RulePack) -> Result<Self, rsigma_eval::EvalError> {
        let config = CorrelationConfig {
            // Time comes from the event (process_event_at), never the wall clock.
            timestamp_fields: Vec::new(),
            timestamp_fallback: TimestampFallback::Skip,
            max_state_entries: MAX_CORRELATION_STATE,
            max_group_entries: Some(10_000),
            suppress: None,
            // After a correlation fires, its window starts again: a burst of
            // 50 failed logins is 10 alerts of 5, not 46.
            action_on_match: CorrelationAction::Reset,
            // Rules only referenced by correlations are building blocks.
            emit_detections: false,
            // Windows keep origins only; evidence comes from `recent`.
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: MAX_EVIDENCE_LINES,
        };
        let mut engine = CorrelationEngine::new(config);
        let mut referenced = HashSet::new();
        for (_, c) in &pack.collections {
            engine.add_collection(c)?;
            for corr in c.correlations.iter().filter(|c| !c.generate) {
                referenced.extend(corr.rules.iter().cloned());
            }
        }
        let building_blocks = pack
            .collections
            .iter()
            .flat_map(|(_, c)| &c.rules)
            .filter(|r| {
                [r.id.as_ref(), r.name.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|k| referenced.contains(k))
            })
            .map(|r| r.id.clone().unwrap_or_else(|| r.title.clone()))
            .collect();
        Ok(SigmaDetector {
            engine,
            rules: pack.rule_count(),
            building_blocks,
            iocs: pack.iocs.clone(),
            recent: RecentRaw::default(),
        })
    }

    fn to_alert(&self, event: &Event, r: EvaluationResult) -> Alert {
        let rule_id = r
            .header
            .rule_id
            .clone()
            .unwrap_or_else(|| r.header.rule_title.clone());
        let mut entities = BTreeMap::new();
        let mut evidence = Vec::new();
        match &r.body {
            ResultBody::Detection(_) => {
                for f in ENTITY_FIELDS {
                    if let Some(v) = event.get(f) {
                        entities.insert((*f).to_string(), v.to_string());
                    }
                }
                evidence.push(cap_evidence_line(&event.raw));
            }
            ResultBody::Correlation(c) => {
                for (k, v) in &c.group_key {
                    entities.insert(k.clone(), v.clone());
                }
                for r in c.event_refs.iter().flatten().take(MAX_EVIDENCE_LINES) {
                    if let Some(raw) = r.id.as_ref().and_then(|id| self.recent.by_origin.get(id)) {
                        evidence.push(cap_evidence_line(raw));
                    }
                }
                if evidence.is_empty() {
                    evidence.push(cap_evidence_line(&event.raw));
                }
            }
        }
        Alert {
            id: alert_id(&event.host, &event.origin, &rule_id),
            rule_id,
            title: r.header.rule_title,
            severity: severity(r.header.level),
            time: event.time,
            host: event.host.clone(),
            entities,
            evidence,
            tags: r.header.tags,
            source: event
                .origin
                .rsplit_once(':')
                .map_or(event.origin.clone(), |(s, _)| s.to_string()),
        }
    }
}

/// Sigma level → Ward severity.
fn severity(level: Option<Level>) -> Severity {
    match level {
        Some(Level::Critical) => Severity::Critical,
        Some(Level::High) => Severity::High,
        Some(Level::Medium) => Severity::Medium,
        _ => Severity::Low,
    }
}

/// Same host, record and rule → same id, so a re-read record cannot
/// produce a second alert at the coordinator.
pub fn alert_id(host: &str, origin: &str, rule_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [host, origin, rule_id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

impl Detector for SigmaDetector {
    fn process(&mut self, event: &Event) -> Vec<Alert> {
        let enriched = self.iocs.enrich(event);
        let event = enriched.as_ref().unwrap_or(event);
        let detections = self.engine.evaluate(event);
        if !detections.is_empty() {
            self.recent.remember(&event.origin, &event.raw);
        }
        let results =
            self.engine
                .process_with_detections(event, detections, event.time.timestamp());
        results
            .into_iter()
            .filter(|r| {
                let key = r.header.rule_id.as_ref().unwrap_or(&r.header.rule_title);
                r.is_correlation() || !self.building_blocks.contains(key)
            })
            .map(|r| self.to_alert(event, r))
            .collect()
    }

    fn rule_count(&self) -> usize {
        self.rules
    }

    fn state_entries(&self) -> usize {
        self.engine.state_count()
    }
}
