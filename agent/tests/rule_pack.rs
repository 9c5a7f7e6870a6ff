//! Every shipped rule fires on its positive fixture (other rules may fire
//! too: real attacks trip several) and stays quiet on its negative one:
//! `rules/fixtures/<path>/{positive,negative}.log` (log rules) or `.pcap`
//! (network rules) for each `rules/sigma/<path>.yml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ward_agent::decode::LogFormat;
use ward_agent::engine::{RulePack, SigmaDetector};
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

/// `dir/kind.log`, or `dir/kind.pcap` when the rule's fixtures are captures.
fn fixture(dir: &Path, kind: &str) -> PathBuf {
    let pcap = dir.join(format!("{kind}.pcap"));
    if pcap.exists() {
        pcap
    } else {
        dir.join(format!("{kind}.log"))
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
        let pos = fired(&pack, &fixture(&fixtures, "positive"));
        let missing: Vec<_> = ids.difference(&pos).collect();
        assert!(
            missing.is_empty(),
            "{}: positive fixture did not fire {missing:?} (fired {pos:?})",
            file.display()
        );
        let neg = fired(&pack, &fixture(&fixtures, "negative"));
        let wrong: Vec<_> = neg.intersection(&ids).collect();
        assert!(
            wrong.is_empty(),
            "{}: negative fixture fired {wrong:?}",
            file.display()
        );
    }
}
