//! Every shipped rule fires on its positive fixture and stays quiet on its
//! negative one: `rules/fixtures/<path>/{positive,negative}.log` (log lines)
//! or `{positive,negative}.jsonl` (events, one `{"time", "fields"}` object
//! per line, for sources without log lines such as file integrity) for each
//! `rules/sigma/<path>.yml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ward_agent::decode::LogFormat;
use ward_agent::engine::{Detector, RulePack, SigmaDetector};
use ward_agent::event::Event;
use ward_agent::replay::replay_logs;

fn rules_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules")
}

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rule_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
            out.push(p);
        }
    }
}

/// Ids of the rules in a file that produce alerts (correlations, and
/// detections no correlation consumes).
fn alerting_ids(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let c = rsigma_parser::parse_sigma_yaml(&text).unwrap();
    let consumed: BTreeSet<&String> = c.correlations.iter().flat_map(|k| &k.rules).collect();
    let mut ids: BTreeSet<String> = c
        .correlations
        .iter()
        .map(|k| k.id.clone().expect("shipped rules have ids"))
        .collect();
    for r in &c.rules {
        let id = r.id.clone().expect("shipped rules have ids");
        let used = consumed.contains(&id) || r.name.as_ref().is_some_and(|n| consumed.contains(n));
        if !used {
            ids.insert(id);
        }
    }
    ids
}

fn fired(pack: &RulePack, log: &Path) -> BTreeSet<String> {
    let mut detector = SigmaDetector::new(pack).unwrap();
    let mut fired = BTreeSet::new();
    let stats = replay_logs(
        &[(log.to_owned(), LogFormat::Auto)],
        "fixture-host",
        &mut detector,
        |a| {
            fired.insert(a.rule_id);
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert_eq!(
        stats.malformed,
        0,
        "{}: fixture lines must all decode",
        log.display()
    );
    assert!(stats.lines > 0, "{} is empty", log.display());
    fired
}

/// Replays an event fixture: one JSON object per line with an RFC 3339
/// `time` and string `fields`.
fn fired_events(pack: &RulePack, file: &Path) -> BTreeSet<String> {
    let mut detector = SigmaDetector::new(pack).unwrap();
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut fired = BTreeSet::new();
    let mut n = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", file.display(), i + 1));
        let time = v["time"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(|| panic!("{}:{}: needs an RFC 3339 time", file.display(), i + 1));
        let mut event = Event::new(
            time.into(),
            "fixture-host",
            format!("fixture:{}:{i}", file.display()),
        );
        for (k, val) in v["fields"].as_object().expect("fields is an object") {
            event.set(k.clone(), val.as_str().expect("field values are strings"));
        }
        event.raw = line.to_string();
        for a in detector.process(&event) {
            fired.insert(a.rule_id);
        }
        n += 1;
    }
    assert!(n > 0, "{} is empty", file.display());
    fired
}

fn fired_fixture(pack: &RulePack, dir: &Path, kind: &str) -> BTreeSet<String> {
    let events = dir.join(format!("{kind}.jsonl"));
    if events.exists() {
        fired_events(pack, &events)
    } else {
        fired(pack, &dir.join(format!("{kind}.log")))
    }
}

#[test]
fn every_rule_fires_on_its_positive_fixture_and_not_on_its_negative() {
    let root = rules_root();
    let pack = RulePack::load(std::slice::from_ref(&root)).unwrap_or_else(|d| panic!("{d:#?}"));
    let mut files = Vec::new();
    rule_files(&root.join("sigma"), &mut files);
    assert!(
        files.len() >= 4,
        "expected the shipped rules, found {files:?}"
    );
    for file in files {
        let rel = file
            .strip_prefix(root.join("sigma"))
            .unwrap()
            .with_extension("");
        let fixtures = root.join("fixtures").join(&rel);
        let ids = alerting_ids(&file);
        let pos = fired_fixture(&pack, &fixtures, "positive");
        assert_eq!(
            pos,
            ids,
            "{}: positive fixture must fire exactly this file's alerting rules",
            file.display()
        );
        let neg = fired_fixture(&pack, &fixtures, "negative");
        let wrong: Vec<_> = neg.intersection(&ids).collect();
        assert!(
            wrong.is_empty(),
            "{}: negative fixture fired {wrong:?}",
            file.display()
        );
    }
}
