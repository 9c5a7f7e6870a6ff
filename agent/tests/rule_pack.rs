//! Every shipped rule fires on its positive fixture (other rules may fire
//! too: real attacks trip several) and stays quiet on its negative one:
//! `rules/fixtures/<path>/{positive,negative}.log` (log lines), `.pcap`
//! (network rules) or `.jsonl` (events, one `{"time", "fields"}` object per
//! line, for sources without log lines such as file integrity) for each
//! `rules/sigma/<path>.yml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ward_agent::decode::LogFormat;
use ward_agent::engine::{Detector, RulePack, SigmaDetector};
use ward_agent::event::Event;
use ward_agent::replay::{replay_logs, replay_pcaps};

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

fn fired(pack: &RulePack, fixture: &Path) -> BTreeSet<String> {
    let mut detector = SigmaDetector::new(pack).unwrap();
    let mut fired = BTreeSet::new();
    let collect = |a: ward_agent::wire::Alert| {
        fired.insert(a.rule_id);
        Ok(())
    };
    if fixture.extension().is_some_and(|e| e == "pcap") {
        let stats = replay_pcaps(
            &[fixture.to_owned()],
            "fixture-host",
            &mut detector,
            collect,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
        assert_eq!(
            stats.packets_skipped,
            0,
            "{}: fixture packets must all decode",
            fixture.display()
        );
        assert!(stats.packets > 0, "{} is empty", fixture.display());
        return fired;
    }
    let stats = replay_logs(
        &[(fixture.to_owned(), LogFormat::Auto)],
        "fixture-host",
        &mut detector,
        collect,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", fixture.display()));
    assert_eq!(
        stats.malformed,
        0,
        "{}: fixture lines must all decode",
        fixture.display()
    );
    assert!(stats.lines > 0, "{} is empty", fixture.display());
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

/// Fires `dir/kind.jsonl` (events), `dir/kind.pcap` (captures) or
/// `dir/kind.log` (log lines), whichever the rule has.
fn fired_fixture(pack: &RulePack, dir: &Path, kind: &str) -> BTreeSet<String> {
    let events = dir.join(format!("{kind}.jsonl"));
    let pcap = dir.join(format!("{kind}.pcap"));
    if events.exists() {
        fired_events(pack, &events)
    } else if pcap.exists() {
        fired(pack, &pcap)
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
        files.len() >= 12,
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
        let missing: Vec<_> = ids.difference(&pos).collect();
        assert!(
            missing.is_empty(),
            "{}: positive fixture did not fire {missing:?} (fired {pos:?})",
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
