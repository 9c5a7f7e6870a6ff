//! [`Detector`] over the `rsigma` Sigma evaluator.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::LazyLock;

use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode,
    EvaluationResult, ResultBody, TimestampFallback,
};
use rsigma_parser::{Level, LogSource};
use sha2::{Digest, Sha256};

use super::evidence::{PacketCache, alert_packets};
use super::gate::{Gate, Scratch, Verdict};
use super::{Detector, IocSet, RulePack};
use crate::event::{Event, EventKind};
use crate::wire::{Alert, MAX_EVIDENCE_LINES, Severity, cap_evidence_line};

/// Entities of an alert and the event fields they are taken from (first
/// present wins): one vocabulary whatever the log's own field names.
const ENTITY_FIELDS: &[(&str, &[&str])] = &[
    ("src_ip", &["src_ip", "c-ip"]),
    ("dst_ip", &["dst_ip"]),
    ("dst_port", &["dst_port"]),
    ("domain", &["domain", "cs-host"]),
    ("query", &["query"]),
    ("sni", &["sni"]),
    ("http_host", &["http_host"]),
    ("ioc_value", &["ioc_value"]),
    ("user", &["user", "cs-username"]),
    ("target_user", &["target_user"]),
    ("uri", &["uri", "c-uri"]),
    ("path", &["path"]),
    ("sha256", &["sha256"]),
];

/// The entity name for an event field (`c-ip` → `src_ip`).
fn entity_name(field: &str) -> &str {
    ENTITY_FIELDS
        .iter()
        .find(|(_, fields)| fields.contains(&field))
        .map_or(field, |(name, _)| name)
}

/// Largest number of correlation state entries before the oldest are evicted.
pub const MAX_CORRELATION_STATE: usize = 100_000;

/// Sigma detection and correlation, evaluated on event time.
pub struct SigmaDetector {
    engine: CorrelationEngine,
    /// The literal prefilter: events no rule can match skip the engine.
    gate: Gate,
    gate_scratch: Scratch,
    /// The gate's candidate rules for the event being judged (reused).
    candidates: Vec<(usize, Verdict)>,
    /// The rules that matched the event being judged (reused), each with
    /// the result the engine evaluated, or `None` for the rule's result
    /// in `decided` (boxed: most are decided, and the list's entries stay
    /// small to write and move).
    detections: Vec<(usize, Option<Box<EvaluationResult>>)>,
    /// Per rule (engine order): the detection result the engine gives when
    /// it matches, for the rules the gate can decide alone; `None` where
    /// the engine must evaluate (a filter applies, or the result carries
    /// the event).
    decided: Vec<Option<EvaluationResult>>,
    rules: usize,
    /// Per rule (engine order): whether it only feeds correlations
    /// (`generate: false`), so its matches are not alerts.
    building_block: Vec<bool>,
    /// The pack's indicator lists, looked up before each event is judged.
    iocs: IocSet,
    /// The event judged in place of one an indicator matched: a copy with
    /// the `ioc_*` fields, kept to reuse its buffers.
    enriched: Event,
    /// Raw lines of recent building-block matches by origin, so a
    /// correlation alert can show the lines that made it.
    evidence: EvidenceCache,
    /// Frames of recent building-block matches by origin, likewise.
    packets: PacketCache,
    /// Largest number of correlation state entries held.
    state_cap: usize,
    /// Open correlation groups dropped at the state cap since start.
    state_evicted: u64,
}

/// A fast keyed hash for the per-match lookups (origins, rule ids).
type Hasher = foldhash::fast::RandomState;

/// Origins → raw records, the oldest forgotten past a fixed count.
#[derive(Default)]
struct EvidenceCache {
    lines: HashMap<String, String, Hasher>,
    order: VecDeque<String>,
}

impl EvidenceCache {
    /// Records kept; enough for every open correlation window of a busy host.
    const CAPACITY: usize = 50_000;

    fn insert(&mut self, origin: &str, raw: &str) {
        // One lookup: a record already kept is left as it is; a new one
        // is added, then the oldest forgotten past the capacity (what
        // forgetting it first leaves: the new one is not the oldest).
        match self.lines.entry(origin.to_string()) {
            std::collections::hash_map::Entry::Occupied(_) => return,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(cap_evidence_line(raw));
            }
        }
        self.order.push_back(origin.to_string());
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.lines.remove(&old);
        }
    }

    fn get(&self, origin: &str) -> Option<&String> {
        self.lines.get(origin)
    }
}

impl SigmaDetector {
    /// Compiles a checked pack.
    pub fn new(pack: &RulePack) -> Result<Self, rsigma_eval::EvalError> {
        Self::with_state_cap(pack, MAX_CORRELATION_STATE)
    }

    /// Compiles a checked pack, holding at most `state_cap` correlation
    /// state entries (at least 10).
    pub fn with_state_cap(
        pack: &RulePack,
        state_cap: usize,
    ) -> Result<Self, rsigma_eval::EvalError> {
        let state_cap = state_cap.max(10);
        let config = CorrelationConfig {
            // Time comes from the event (process_event_at), never the wall clock.
            timestamp_fields: Vec::new(),
            timestamp_fallback: TimestampFallback::Skip,
            max_state_entries: state_cap,
            max_group_entries: Some(10_000),
            suppress: None,
            // After a correlation fires, its window starts again: a burst of
            // 50 failed logins is 10 alerts of 5, not 46.
            action_on_match: CorrelationAction::Reset,
            // Building-block matches come back so their lines can be kept
            // as evidence; they are dropped before alerting.
            emit_detections: true,
            // References (the origin) only; the lines come from `evidence`.
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: MAX_EVIDENCE_LINES,
        };
        let mut engine = CorrelationEngine::new(config);
        // One collection for the whole pack, added in one batch: correlations
        // may refer across files, and rsigma builds its candidate index (the
        // literal prefilter that picks the rules worth evaluating per event)
        // once for the batch. Rules added one by one stay outside the index
        // and are evaluated on every event.
        let mut all = rsigma_parser::SigmaCollection {
            rules: Vec::new(),
            correlations: Vec::new(),
            filters: Vec::new(),
            errors: Vec::new(),
        };
        for (_, c) in &pack.collections {
            for r in &c.rules {
                let mut r = r.clone();
                // A webserver rule applies to every web server's access log,
                // whatever product it names (Ward's own network HTTP rules stay `ward`).
                if r.logsource
                    .category
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("webserver"))
                    && r.logsource.product.as_deref() != Some("ward")
                {
                    r.logsource.product = Some("ward-web".into());
                }
                all.rules.push(r);
            }
            all.correlations.extend(c.correlations.iter().cloned());
            all.filters.extend(c.filters.iter().cloned());
        }
        let referenced: HashSet<String> = all
            .correlations
            .iter()
            .filter(|corr| !corr.generate)
            .flat_map(|corr| corr.rules.iter().cloned())
            .collect();
        engine.add_collection(&all)?;
        // The gate names rules by their place in `all.rules`, which is
        // their place in the engine.
        let compiled = engine.engine().rules().len();
        if compiled != all.rules.len() {
            return Err(rsigma_eval::EvalError::Ir(format!(
                "the engine holds {compiled} rules for the pack's {}",
                all.rules.len()
            )));
        }
        let gate = Gate::new(&all.rules, logsource_of);
        // The gate reads the rules without the collection's filters, so it
        // decides nothing alone when there are any.
        let decided = engine
            .engine()
            .rules()
            .iter()
            .map(|r| (all.filters.is_empty() && !r.include_event).then(|| decided_result(r)))
            .collect();
        let gate_scratch = gate.scratch();
        let building_blocks: HashSet<String> = pack
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
        // The key each result is known by (its header's id, else title).
        let building_block = engine
            .engine()
            .rules()
            .iter()
            .map(|r| building_blocks.contains(r.id.as_ref().unwrap_or(&r.title)))
            .collect();
        Ok(SigmaDetector {
            engine,
            gate,
            gate_scratch,
            candidates: Vec::new(),
            detections: Vec::new(),
            decided,
            rules: pack.rule_count(),
            building_block,
            evidence: EvidenceCache::default(),
            packets: PacketCache::default(),
            iocs: pack.iocs.clone(),
            enriched: Event::new(chrono::DateTime::UNIX_EPOCH, String::new(), String::new()),
            state_cap,
            state_evicted: 0,
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
                for (name, fields) in ENTITY_FIELDS {
                    if let Some(v) = fields.iter().find_map(|f| event.get(f)) {
                        entities.insert((*name).to_string(), v.to_string());
                    }
                }
                evidence.push(cap_evidence_line(&event.raw));
            }
            ResultBody::Correlation(c) => {
                for (k, v) in &c.group_key {
                    entities.insert(entity_name(k).to_string(), v.clone());
                }
                for r in c.event_refs.iter().flatten() {
                    if let Some(raw) = r.id.as_deref().and_then(|id| self.evidence.get(id))
                        && evidence.len() < MAX_EVIDENCE_LINES
                        && !evidence.contains(raw)
                    {
                        evidence.push(raw.clone());
                    }
                }
                if evidence.is_empty() {
                    evidence.push(cap_evidence_line(&event.raw));
                }
            }
        }
        let packets = match &r.body {
            ResultBody::Detection(_) => alert_packets(&event.packets),
            ResultBody::Correlation(c) => self.packets.collect(
                c.event_refs
                    .iter()
                    .flatten()
                    .filter_map(|r| r.id.as_deref()),
            ),
        };
        Alert {
            drill_id: None,
            packets,
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

impl SigmaDetector {
    /// Runs `rsigma`'s eviction before it would run inside the next event,
    /// so what it drops can be counted. It first forgets windows that have
    /// ended (no loss), then, when still at the cap, drops the stalest open
    /// groups down to 90% of the cap: those are counted as evicted.
    fn enforce_state_cap(&mut self, ts: i64) {
        let before = self.engine.state_count();
        if before < self.state_cap {
            return;
        }
        self.engine.evict_expired(ts);
        let after = self.engine.state_count();
        // The hard cap always lands exactly on 90%; time-based expiry alone
        // leaves any other count. Checked before every event, `before` is at
        // most the cap plus the groups one event touches, so nearly all of
        // `before - after` is the hard cap's doing.
        if after == self.state_cap * 9 / 10 {
            let dropped = (before - after) as u64;
            self.state_evicted += dropped;
            tracing::warn!(
                dropped,
                cap = self.state_cap,
                "correlation state full: open windows of the stalest groups dropped"
            );
        }
    }
}

/// The Sigma logsource an event kind stands for, used to skip rules that
/// cannot apply (a rule is skipped only when a dimension set on both sides
/// differs). The `ward-*` values conflict with every real rule value.
/// Built once per kind: this is asked for every event.
fn logsource_of(kind: EventKind) -> Option<&'static LogSource> {
    static SYSLOG: LazyLock<Option<LogSource>> =
        LazyLock::new(|| make_logsource(EventKind::Syslog));
    static WEB: LazyLock<Option<LogSource>> =
        LazyLock::new(|| make_logsource(EventKind::WebAccess));
    static NETWORK: LazyLock<Option<LogSource>> =
        LazyLock::new(|| make_logsource(EventKind::Network));
    match kind {
        EventKind::Unknown => None,
        EventKind::Syslog => SYSLOG.as_ref(),
        EventKind::WebAccess => WEB.as_ref(),
        EventKind::Network => NETWORK.as_ref(),
    }
}

fn make_logsource(kind: EventKind) -> Option<LogSource> {
    match kind {
        EventKind::Unknown => None,
        EventKind::Syslog => Some(LogSource {
            product: Some("linux".into()),
            category: Some("ward-syslog".into()),
            ..Default::default()
        }),
        EventKind::WebAccess => Some(LogSource {
            product: Some("ward-web".into()),
            category: Some("webserver".into()),
            ..Default::default()
        }),
        // The shipped network rules are `product: ward`; no category, as
        // they span network_connection, dns and webserver.
        EventKind::Network => Some(LogSource {
            product: Some("ward".into()),
            ..Default::default()
        }),
    }
}

/// The detection result the engine gives for a match of `rule`: its
/// header, no field details (the engine's match detail is off) and no
/// names of matched selections (nothing reads them: alerts and
/// correlations use the header).
fn decided_result(rule: &rsigma_eval::CompiledRule) -> EvaluationResult {
    EvaluationResult {
        header: rsigma_eval::RuleHeader {
            rule_title: rule.title.clone(),
            rule_id: rule.id.clone(),
            level: rule.level,
            tags: rule.tags.clone(),
            custom_attributes: rule.custom_attributes.clone(),
            enrichments: None,
        },
        body: ResultBody::Detection(rsigma_eval::DetectionBody {
            matched_selections: Vec::new(),
            matched_fields: Vec::new(),
            event: None,
        }),
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
    lower_hex(&h.finalize()[..16])
}

/// `hex::encode(bytes)`, written in one go (it pushes each digit as a
/// `char`; every alert gets an id).
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    // Only ASCII digits and letters were written.
    String::from_utf8(out).unwrap_or_default()
}

impl Detector for SigmaDetector {
    fn process(&mut self, event: &Event) -> Vec<Alert> {
        // An event an indicator matches is judged as a copy with the
        // `ioc_*` fields, made in a buffer kept for it.
        let mut enriched = std::mem::replace(
            &mut self.enriched,
            Event::new(chrono::DateTime::UNIX_EPOCH, String::new(), String::new()),
        );
        let alerts = if self.iocs.enrich_into(event, &mut enriched) {
            let alerts = self.judge(&enriched);
            // Its frames go now: a flow whose snapshot is shared copies its
            // frame list at its next kept frame.
            enriched.packets = None;
            alerts
        } else {
            self.judge(event)
        };
        self.enriched = enriched;
        alerts
    }

    fn rule_count(&self) -> usize {
        self.rules
    }

    fn state_entries(&self) -> usize {
        self.engine.state_count()
    }

    fn state_evicted(&self) -> u64 {
        self.state_evicted
    }
}

impl SigmaDetector {
    /// [`Detector::process`] of an event already enriched with indicators.
    fn judge(&mut self, event: &Event) -> Vec<Alert> {
        let ts = event.time.timestamp();
        self.enforce_state_cap(ts);
        // Only the rules the gate lets through are evaluated, in the
        // engine's order (as its own candidate pass would, which the gate
        // replaces: it keeps every rule that could match and whose
        // logsource applies).
        self.gate
            .candidates(event, &mut self.gate_scratch, &mut self.candidates);
        // A rule the gate decided alone needs no evaluation: its result is
        // the engine's, less the names of the matched selections (which
        // nothing reads; the engine's field details are off).
        // Decided results are lent, not copied: a detection holds only
        // the results the engine evaluated (`None`: the rule's decided
        // one), the correlations read them by reference, and only those
        // that become alerts are cloned. The list is kept between events.
        let rules = self.engine.engine().rules();
        let mut detections = std::mem::take(&mut self.detections);
        detections.clear();
        for &(i, verdict) in &self.candidates {
            match (&self.decided[i], verdict) {
                (Some(_), Verdict::Yes) => detections.push((i, None)),
                _ => {
                    if let Some(r) = rsigma_eval::evaluate_rule(&rules[i], event) {
                        detections.push((i, Some(Box::new(r))));
                    }
                }
            }
        }
        // No detection: nothing for correlation either (the state cap was
        // enforced above, so the engine would not evict here).
        if detections.is_empty() {
            self.detections = detections;
            return Vec::new();
        }
        let decided = &self.decided;
        // What `process_with_detections` gives (every detection, as
        // `emit_detections` is on, then the correlations), without handing
        // it the detections by value; each with its rule's place in the
        // engine, so the engine reads the correlations it feeds from its
        // table instead of looking them up by the rule's id and name.
        let correlations = self.engine.correlate_rule_detections(
            event,
            detections
                .iter()
                .filter_map(|(i, r)| r.as_deref().or(decided[*i].as_ref()).map(|r| (*i, r))),
            ts,
        );
        let mut alerts = Vec::new();
        // The event's line and frames are kept once, whatever the number
        // of building blocks it matched (each SYN matches three): both
        // caches keep an origin's first record only.
        let mut kept = false;
        for (i, r) in detections.drain(..) {
            if self.building_block[i] {
                if !kept {
                    self.evidence.insert(&event.origin, &event.raw);
                    self.packets.insert(&event.origin, event.packets.as_ref());
                    kept = true;
                }
            } else if let Some(r) = r.map(|r| *r).or_else(|| self.decided[i].clone()) {
                alerts.push(self.to_alert(event, r));
            }
        }
        self.detections = detections;
        for r in correlations {
            alerts.push(self.to_alert(event, r));
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lower_hex` is `hex::encode`, on every byte value and on lengths
    /// from none to a digest and more.
    #[test]
    fn lower_hex_is_hex_encode() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(lower_hex(&all), hex::encode(&all));
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        }
        assert_eq!(alert_id("h", "o", "r").len(), 32);
    }
    use crate::decode::{LineDecoder, LogFormat};
    use rsigma_eval::{Event as _, JsonEvent};
    use rsigma_parser::parse_sigma_yaml;
    use serde_json::json;

    /// The gate against the engine on `event` (enriched with indicators
    /// as `process` does): the per-field dispatch gives the verdicts of
    /// judging every rule, a rule that matches is a candidate, and a rule
    /// the gate calls certain matches. Counts (matches, certain verdicts).
    fn check_gate(d: &mut SigmaDetector, event: &Event, what: &str) -> (usize, usize) {
        let enriched = d.iocs.enrich(event);
        let event = enriched.as_ref().unwrap_or(event);
        let (mut matches, mut certain) = (0, 0);
        let mut undispatched = Vec::new();
        d.gate
            .candidates_undispatched(event, &mut d.gate_scratch, &mut undispatched);
        d.gate
            .candidates(event, &mut d.gate_scratch, &mut d.candidates);
        assert_eq!(
            d.candidates, undispatched,
            "the dispatch changed the verdicts: {what}"
        );
        let rules = d.engine.engine().rules();
        for (i, rule) in rules.iter().enumerate() {
            let applies = logsource_of(event.kind).is_none_or(|ls| {
                let c = |r: &Option<String>, e: &Option<String>| {
                    matches!((r, e), (Some(r), Some(e)) if !r.eq_ignore_ascii_case(e))
                };
                !(c(&rule.logsource.product, &ls.product)
                    || c(&rule.logsource.service, &ls.service)
                    || c(&rule.logsource.category, &ls.category))
            });
            let matched = applies && rsigma_eval::evaluate_rule(rule, event).is_some();
            let verdict = d.candidates.iter().find(|(r, _)| *r == i).map(|(_, v)| *v);
            if matched {
                matches += 1;
                assert!(
                    verdict.is_some(),
                    "rule {} matches but was left out: {what}",
                    rule.title
                );
            }
            if verdict == Some(Verdict::Yes) {
                certain += 1;
                assert!(
                    matched,
                    "rule {} called certain but does not match: {what}",
                    rule.title
                );
            }
        }
        (matches, certain)
    }

    /// The evidence cache keeps the newest records up to its capacity,
    /// forgetting the oldest, and a record kept once is not replaced.
    #[test]
    fn evidence_cache_forgets_the_oldest_past_its_capacity() {
        let mut c = EvidenceCache::default();
        let cap = EvidenceCache::CAPACITY;
        for i in 0..cap + 10 {
            c.insert(&format!("o:{i}"), &format!("line {i}"));
        }
        c.insert("o:20", "another line");
        assert_eq!(c.lines.len(), cap);
        assert_eq!(c.order.len(), cap);
        assert!(c.get("o:9").is_none());
        assert_eq!(c.get("o:10").map(String::as_str), Some("line 10"));
        assert_eq!(c.get("o:20").map(String::as_str), Some("line 20"));
        let last = format!("o:{}", cap + 9);
        assert_eq!(
            c.get(&last).map(String::as_str),
            Some(format!("line {}", cap + 9).as_str())
        );
    }

    /// The gate against the engine on every fixture line of the shipped
    /// pack.
    #[test]
    fn the_gate_keeps_every_match_and_its_certain_verdicts_hold() {
        let pack = RulePack::shipped().expect("shipped pack loads");
        let mut d = SigmaDetector::new(&pack).expect("compiles");
        let decoder = LineDecoder::new(LogFormat::Auto, "h");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures");
        let (mut lines, mut matches, mut certain) = (0, 0, 0);
        let mut extra = vec![
            "Nov 22 00:00:00 srv sshd[1]: Failed password for r\u{f6}ot from 203.0.113.9 port 22 ssh2".to_string(),
            "Nov 22 00:00:00 srv SSHD[1]: Failed password for root from 203.0.113.9 port 22 ssh2".to_string(),
            r#"203.0.113.9 - - [22/Nov/2026:10:15:32 +0700] "GET /a?id=1%20UNION%20SELECT%201 HTTP/1.1" 404 5 "-" "sqlmap/1""#.to_string(),
        ];
        for dir in ["linux", "web"] {
            for entry in walkdir::WalkDir::new(root.join(dir)) {
                let entry = entry.unwrap();
                if entry.file_type().is_file() {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    extra.extend(text.lines().map(str::to_string));
                }
            }
        }
        for (n, line) in extra.iter().enumerate() {
            let Ok(event) = decoder.decode(line, format!("t:{n}")) else {
                continue;
            };
            lines += 1;
            let (m, c) = check_gate(&mut d, &event, line);
            matches += m;
            certain += c;
        }
        assert!(lines > 50, "only {lines} lines");
        assert!(
            matches > 20 && certain > 10,
            "{matches} matches, {certain} certain"
        );
    }

    /// A network event of the given fields, as the network decoder makes
    /// them (values as text).
    fn net_event(fields: &[(&'static str, &str)]) -> Event {
        let mut e = Event::new(chrono::Utc::now(), "h", "pcap:x:1.http");
        e.kind = EventKind::Network;
        for (k, v) in fields {
            e.set(*k, *v);
        }
        e
    }

    /// The gate against the engine on every event of the network fixtures
    /// (the pcaps of `rules/fixtures/network`), and on events made to sit
    /// at the edges of the regex and numeric atoms.
    #[test]
    fn the_gate_holds_on_network_events() {
        use crate::decode::net::{FlowConfig, NetDecoder};
        let pack = RulePack::shipped().expect("shipped pack loads");
        let mut d = SigmaDetector::new(&pack).expect("compiles");
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures/network");
        let (mut events, mut matches, mut certain) = (0, 0, 0);
        let mut kinds = HashSet::new();
        for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
            let entry = entry.unwrap();
            if !entry.file_type().is_file() {
                continue;
            }
            let mut decoder = NetDecoder::new("h", "pcap:t", FlowConfig::default());
            let mut out = Vec::new();
            let mut index = 0;
            crate::sources::pcap::read_file(entry.path(), |ts, link, data| {
                let time = chrono::DateTime::from_timestamp(ts.as_secs() as i64, ts.subsec_nanos())
                    .unwrap_or_default();
                decoder.decode(time, link, data, index, &mut out);
                index += 1;
            })
            .expect("fixture reads");
            decoder.finish(&mut out);
            for event in &out {
                events += 1;
                kinds.insert(event.get("event_type").unwrap_or("").to_string());
                let (m, c) = check_gate(&mut d, event, &event.raw);
                matches += m;
                certain += c;
            }
        }
        for k in [
            "conn_attempt",
            "flow_end",
            "dns_query",
            "http_request",
            "beacon",
        ] {
            assert!(kinds.contains(k), "no {k} event in the fixtures: {kinds:?}");
        }
        let long = "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0";
        let made = [
            // Webshell commands, and near misses.
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?cmd=whoami"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?a=1&X=cat  /etc/passwd"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?run=ls -la"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?c=nc\t-e /bin/sh"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?cmd=id"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?cmd=idle"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?cmdx=whoami"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?cmd=who&ami"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/index.html"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?cmd=\u{212a}whoami"),
            ],
            vec![
                ("event_type", "http_request"),
                ("uri_decoded", "/s.php?\u{17f}hell=whoami"),
            ],
            // Long labels around the bounds, and values that are no number.
            vec![
                ("event_type", "dns_query"),
                ("src_ip", "192.0.2.1"),
                ("query_longest_label", "40"),
                ("query_entropy", "3.50"),
            ],
            vec![
                ("event_type", "dns_query"),
                ("query_longest_label", "39"),
                ("query_entropy", "4.00"),
            ],
            vec![
                ("event_type", "dns_query"),
                ("query_longest_label", "41"),
                ("query_entropy", "3.49"),
            ],
            vec![
                ("event_type", "dns_query"),
                ("query_longest_label", "forty"),
                ("query_entropy", "4"),
            ],
            vec![
                ("event_type", "dns_query"),
                ("query_entropy", "4"),
                ("query", long),
            ],
            vec![
                ("event_type", "dns_query"),
                ("query_longest_label", "1e3"),
                ("query_entropy", "inf"),
                ("query_type", "TXT"),
            ],
        ];
        for fields in &made {
            let e = net_event(fields);
            let (m, c) = check_gate(&mut d, &e, &format!("{fields:?}"));
            matches += m;
            certain += c;
        }
        assert!(events > 100, "only {events} events");
        assert!(
            matches > 50 && certain > 20,
            "{matches} matches, {certain} certain"
        );
    }

    /// (Vendored) `correlate_detection_refs` gives exactly the correlations that
    /// `process_with_detections` appends after its detections, with the same
    /// state (event references read through `Event::ref_id`), over counts,
    /// distinct values and a chained temporal correlation.
    #[test]
    fn rsigma_correlate_detection_refs_matches_process_with_detections() {
        let yaml = r#"
title: Failed
id: failed-001
name: failed
logsource: {product: linux}
detection:
    selection: {action: failed}
    condition: selection
---
title: Ok
id: ok-001
name: ok
logsource: {product: linux}
detection:
    selection: {action: ok}
    condition: selection
---
title: Brute
id: brute-001
correlation:
    type: event_count
    rules: [failed]
    group-by: [ip]
    timespan: 60s
    condition: {gte: 3}
---
title: Spray
id: spray-001
correlation:
    type: value_count
    rules: [failed-001]
    group-by: [ip]
    timespan: 60s
    condition: {field: user, gte: 2}
---
title: Brute then ok
id: chain-001
correlation:
    type: temporal_ordered
    rules: [brute-001, ok]
    group-by: [ip]
    timespan: 10m
"#;
        let collection = parse_sigma_yaml(yaml).unwrap();
        assert!(collection.errors.is_empty(), "{:?}", collection.errors);
        let config = || CorrelationConfig {
            correlation_event_mode: CorrelationEventMode::Refs,
            action_on_match: CorrelationAction::Reset,
            ..CorrelationConfig::default()
        };
        let mut by_value = CorrelationEngine::new(config());
        by_value.add_collection(&collection).unwrap();
        let mut by_ref = CorrelationEngine::new(config());
        by_ref.add_collection(&collection).unwrap();
        let mut fired = 0;
        for i in 0..40i64 {
            let action = if i % 7 == 6 { "ok" } else { "failed" };
            let v = json!({
                "_id": format!("e{i}"),
                "action": action,
                "ip": format!("10.0.0.{}", i % 3),
                "user": format!("u{}", i % 5),
            });
            let event = JsonEvent::borrow(&v);
            let ts = 1000 + i * 5;
            let detections = by_value.evaluate(&event);
            let expected = by_value.process_with_detections(&event, detections.clone(), ts);
            let correlations = by_ref.correlate_detection_refs(&event, &detections, ts);
            let mut got = detections;
            fired += correlations.len();
            got.extend(correlations);
            assert_eq!(format!("{got:?}"), format!("{expected:?}"), "event {i}");
        }
        assert!(fired > 5, "only {fired} correlations fired");
    }

    /// The default `Event::ref_id` (vendored) is the id `Refs` mode read from
    /// `to_json`, and Ward's events give the `_id` of theirs.
    #[test]
    fn rsigma_ref_id_reads_the_json_id() {
        let v = json!({"_id": "abc", "x": 1});
        assert_eq!(JsonEvent::borrow(&v).ref_id().as_deref(), Some("abc"));
        let v = json!({"event_id": 42});
        assert_eq!(JsonEvent::borrow(&v).ref_id().as_deref(), Some("42"));
        let v = json!({"x": 1});
        assert_eq!(JsonEvent::borrow(&v).ref_id(), None);
        let e = Event::new(chrono::Utc::now(), "h", "file:1a2b:1024");
        assert_eq!(
            rsigma_eval::Event::ref_id(&e).as_deref(),
            rsigma_eval::Event::to_json(&e)["_id"].as_str()
        );
    }
}
