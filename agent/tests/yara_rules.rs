//! The shipped YARA rules: every committed malicious fixture matches, no
//! committed benign fixture does (`rules/fixtures/yara/`), and on the shared
//! corpus (`../shared/corpus/yara/`) detection stays at or above the figure
//! stated in `rules/README.md` with no false positive.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ward_agent::engine::YaraRules;
use ward_agent::engine::yara::ScanLimits;
use ward_agent::files::{Hashing, ScanCounters, ScanEvent, scan_tree};

/// Detection floor on the corpus webshells (script-like files), in percent.
const MIN_CORPUS_DETECTION_PCT: f64 = 65.0;
/// Extensions of the corpus files counted as webshells.
const WEBSHELL_EXTENSIONS: &[&str] = &["php", "jsp", "asp", "aspx", "ashx", "cfm", "java", "txt"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files under `roots` → the rules that matched each (files without a
/// match are absent).
fn scan(rules: &YaraRules, roots: &[PathBuf]) -> (BTreeMap<String, Vec<String>>, u64) {
    let counters = ScanCounters::default();
    let mut hits: BTreeMap<String, Vec<String>> = BTreeMap::new();
    scan_tree(
        rules,
        roots,
        ScanLimits::default(),
        2,
        Hashing::Always,
        &counters,
        |ev| {
            if let ScanEvent::File(f) = ev
                && !f.matches.is_empty()
            {
                hits.insert(f.path, f.matches.into_iter().map(|m| m.rule).collect());
            }
        },
        |e| panic!("walk error: {e}"),
    );
    assert_eq!(counters.skipped_total(), 0, "no fixture may be skipped");
    (
        hits,
        counters.scanned.load(std::sync::atomic::Ordering::Relaxed),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn every_malicious_fixture_matches_and_no_benign_one_does() {
    let rules = YaraRules::shipped().unwrap_or_else(|d| panic!("{d:#?}"));
    let dir = repo().join("rules/fixtures/yara");
    let (hits, scanned) = scan(&rules, &[dir.join("malicious"), dir.join("benign")]);
    let malicious = files_in(&dir.join("malicious"));
    let benign = files_in(&dir.join("benign"));
    assert!(malicious.len() >= 30, "{malicious:?}");
    assert!(benign.len() >= 5, "{benign:?}");
    assert_eq!(scanned as usize, malicious.len() + benign.len());
    let missed: Vec<_> = malicious
        .iter()
        .filter(|p| !hits.contains_key(*p))
        .collect();
    assert!(missed.is_empty(), "not detected: {missed:#?}");
    let fps: Vec<_> = benign
        .iter()
        .filter_map(|p| hits.get_key_value(p))
        .collect();
    assert!(fps.is_empty(), "false positives: {fps:#?}");
}

#[test]
fn each_threat_family_has_a_matching_fixture() {
    // The defacement and spam rules are checked one by one: a fixture named
    // after what it shows must fire the rule made for it.
    let rules = YaraRules::shipped().unwrap();
    let dir = repo().join("rules/fixtures/yara/malicious");
    let (hits, _) = scan(&rules, std::slice::from_ref(&dir));
    for (file, rule) in [
        ("ward_defacement_index.html.sample", "ward_defacement_page"),
        ("ward_gambling_vi.html.sample", "ward_gambling_spam_vi"),
        ("ward_gambling_vi.html.sample", "ward_hidden_spam_links"),
        ("ward_gambling_en.html.sample", "ward_gambling_spam_en"),
        (
            "ward_meta_refresh_casino.html.sample",
            "ward_meta_refresh_gambling",
        ),
        ("ward_cloaking.php.sample", "ward_seo_cloaking"),
        ("ward_gif_polyglot.gif.sample", "ward_php_gif_header_script"),
        (
            "ward_js_injection.js.sample",
            "ward_dropper_js_obfuscated_redirect",
        ),
    ] {
        let path = dir.join(file).to_string_lossy().into_owned();
        let got = hits.get(&path).cloned().unwrap_or_default();
        assert!(
            got.iter().any(|r| r == rule),
            "{file}: expected {rule}, got {got:?}"
        );
    }
}

#[test]
fn corpus_detection_rate_and_false_positives() {
    let corpus = repo().join("../shared/corpus/yara");
    assert!(
        corpus.is_dir(),
        "the shared corpus is expected at {} (see DESIGN.md §6)",
        corpus.display()
    );
    let rules = YaraRules::shipped().unwrap();
    let shells_dir = corpus.join("webshells");
    let (hits, _) = scan(&rules, std::slice::from_ref(&shells_dir));
    let shells: Vec<String> = files_in(&shells_dir)
        .into_iter()
        .filter(|p| {
            Path::new(p)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| WEBSHELL_EXTENSIONS.contains(&e))
        })
        .collect();
    let detected = shells.iter().filter(|p| hits.contains_key(*p)).count();
    let pct = 100.0 * detected as f64 / shells.len() as f64;
    assert!(shells.len() > 100, "{}", shells.len());
    assert!(
        pct >= MIN_CORPUS_DETECTION_PCT,
        "detection {detected}/{} = {pct:.1}% is below {MIN_CORPUS_DETECTION_PCT}%",
        shells.len()
    );
    let benign_dir = corpus.join("benign-php");
    let (fps, scanned) = scan(&rules, std::slice::from_ref(&benign_dir));
    assert!(scanned > 1000, "{scanned}");
    assert!(fps.is_empty(), "false positives on benign PHP: {fps:#?}");
}
