//! Every shipped drill scenario (`rules/drills/*/scenario.yml`) played
//! offline: all its expectations met, no false alarm, the same scorecard
//! every time. And bad scenarios: one clear error per problem, with file
//! and line.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ward_agent::drill::{Scenario, offline};
use ward_agent::engine::{RulePack, YaraRules};

fn drills_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/drills")
}

fn pack() -> &'static RulePack {
    static P: OnceLock<RulePack> = OnceLock::new();
    P.get_or_init(|| RulePack::shipped().expect("the shipped pack loads"))
}

fn yara() -> &'static YaraRules {
    static Y: OnceLock<YaraRules> = OnceLock::new();
    Y.get_or_init(|| YaraRules::shipped().expect("the shipped YARA rules load"))
}

fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(drills_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("scenario.yml").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn the_six_scenarios_and_the_demo_are_shipped() {
    let names: Vec<String> = shipped()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "c2-beaconing",
        "defacement",
        "demo-ssh-brute-force",
        "multi-agency-campaign",
        "portal-scan-exploit",
        "ssh-brute-force",
        "webshell-upload",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

#[test]
fn every_shipped_scenario_passes_offline_deterministically() {
    for dir in shipped() {
        let s = Scenario::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.name,
            dir.file_name().unwrap().to_string_lossy(),
            "a scenario's name is its directory's"
        );
        let card = offline::run(&s, pack(), Some(yara()), "test").unwrap();
        assert_eq!(card.expected, s.expect.len());
        assert!(card.totals.passed, "{}:\n{}", dir.display(), card.to_text());
        assert_eq!(card.missed, 0);
        assert_eq!(card.false_alarms, 0);
        for item in &card.items {
            let t = item.time_to_detect_s.expect("detected items have a time");
            assert!(t >= 0.0 && t <= item.within_s, "{item:?}");
        }
        // Every attacker was seen.
        for a in &card.attackers {
            assert!(
                !a.timeline.is_empty(),
                "{}: attacker {} not seen",
                s.name,
                a.name
            );
        }
        let again = offline::run(&s, pack(), Some(yara()), "test").unwrap();
        assert_eq!(card, again, "{}: two offline runs differ", s.name);
    }
}

#[test]
fn the_multi_agency_campaign_tracks_one_attacker_across_three_agencies() {
    let s = Scenario::load(&drills_dir().join("multi-agency-campaign")).unwrap();
    let agencies: std::collections::BTreeSet<&str> =
        s.hosts.iter().map(|h| h.agency.as_str()).collect();
    assert_eq!(agencies.len(), 3);
    let card = offline::run(&s, pack(), None, "t").unwrap();
    assert_eq!(card.attackers.len(), 1);
    assert_eq!(
        card.attackers[0].hosts,
        ["dtt-portal", "stc-dvc", "syt-web"],
        "{}",
        card.to_text()
    );
    let times: Vec<f64> = card.attackers[0].timeline.iter().map(|t| t.at_s).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = "\
name: t
hosts:
  - name: web
    logs:
      - name: auth.log
        format: syslog
attackers:
  - name: a
    ips: [203.0.113.7]
injects:
  - at: 0
    host: web
    log: auth.log
    lines:
      - 'Nov 22 09:00:01 web sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2'
      - 'Nov 22 09:00:01 web sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2'
      - 'Nov 22 09:00:01 web sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2'
      - 'Nov 22 09:00:01 web sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2'
      - 'Nov 22 09:00:01 web sshd[1]: Failed password for root from 203.0.113.7 port 1 ssh2'
    rate: 1
expect:
  - rule: SSH brute force
    host: web
    entity: {src_ip: 203.0.113.7}
    severity: high
    within: 10s
";

#[test]
fn a_missed_or_late_expectation_fails_the_drill() {
    let dir = tempfile::tempdir().unwrap();
    let s = Scenario::load(&write(dir.path(), "ok.yml", GOOD)).unwrap();
    let card = offline::run(&s, pack(), None, "t").unwrap();
    assert!(card.totals.passed, "{}", card.to_text());
    // The fifth line is at 4 s: within 3 s is too late.
    let late = GOOD.replace("within: 10s", "within: 3s");
    let s = Scenario::load(&write(dir.path(), "late.yml", &late)).unwrap();
    let card = offline::run(&s, pack(), None, "t").unwrap();
    assert_eq!((card.detected, card.missed), (0, 1));
    assert!(card.items[0].late);
    assert_eq!(card.items[0].time_to_detect_s, Some(4.0));
    // Another address: missed, and the brute force from 203.0.113.7 is
    // still no false alarm (it names the attacker).
    let other = GOOD.replace(
        "entity: {src_ip: 203.0.113.7}",
        "entity: {src_ip: 203.0.113.8}",
    );
    let s = Scenario::load(&write(dir.path(), "other.yml", &other)).unwrap();
    let card = offline::run(&s, pack(), None, "t").unwrap();
    assert_eq!((card.detected, card.missed, card.false_alarms), (0, 1, 0));
    assert!(!card.items[0].late && card.items[0].time_to_detect_s.is_none());
    // An absent entry that matches is a false alarm.
    let absent = format!("{GOOD}absent:\n  - rule: SSH brute force\n    host: web\n");
    let s = Scenario::load(&write(dir.path(), "absent.yml", &absent)).unwrap();
    let card = offline::run(&s, pack(), None, "t").unwrap();
    assert_eq!(card.false_alarms, 1);
    assert!(!card.totals.passed);
}

fn errors(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bad.yml", text);
    let e = Scenario::load(&p).expect_err("the scenario is invalid");
    e.0.iter()
        .map(|e| {
            assert_eq!(e.file, p);
            format!("{}: {}", e.line.map_or(0, |l| l), e.message)
        })
        .collect()
}

#[test]
fn bad_scenarios_get_one_error_per_problem_with_its_line() {
    // YAML that does not parse: the parser's line.
    let e = errors("name: t\nhosts: [\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("3: ") || e[0].starts_with("2: "), "{e:?}");
    // An unknown key.
    let e = errors(&GOOD.replace("    rate: 1\n", "    rat: 1\n"));
    assert!(e[0].contains("unknown field `rat`"), "{e:?}");
    assert!(!e[0].starts_with("0:"), "{e:?}");
    // Unknown host, unknown log, bad severity name, bad duration.
    let e = errors(&GOOD.replace("    host: web\n    log:", "    host: mail\n    log:"));
    assert_eq!(e, ["12: injects[0]: unknown host 'mail' (declared: web)"]);
    let e = errors(&GOOD.replace("log: auth.log\n    lines", "log: secure\n    lines"));
    assert_eq!(
        e,
        ["13: injects[0]: host 'web' has no log 'secure' (add it to the host's logs)"]
    );
    let e = errors(&GOOD.replace("severity: high", "severity: urgent"));
    assert!(e[0].contains("unknown variant `urgent`"), "{e:?}");
    let e = errors(&GOOD.replace("within: 10s", "within: soon"));
    assert!(e[0].contains("'soon' is not a duration"), "{e:?}");
    // Several problems at once, each with its line.
    let bad = GOOD
        .replace("name: t", "name: Not A Name")
        .replace("ips: [203.0.113.7]", "ips: [203.0.113.999]")
        .replace("    host: web\n    entity", "    host: nowhere\n    entity")
        .replace("rate: 1", "rate: 0");
    let e = errors(&bad);
    assert_eq!(e.len(), 4, "{e:?}");
    assert!(e[0].starts_with("1: name 'Not A Name'"), "{e:?}");
    assert!(
        e.iter()
            .any(|l| l.starts_with("8: attackers[0] 'a': '203.0.113.999'")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|l| l.starts_with("20: injects[0]: rate 0")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.starts_with("23: expect[0]: unknown host 'nowhere'")),
        "{e:?}"
    );
}

#[test]
fn fixtures_must_exist_stay_inside_and_be_readable() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\
name: t
hosts:
  - name: web
injects:
  - at: 1s
    host: web
    pcap: ../../etc/passwd
  - at: 2s
    host: web
    pcap: missing.pcap
  - at: 3s
    host: web
    pcap: notapcap.pcap
  - at: 4s
    host: web
    change: index.html
    content: hacked
  - at: 5s
    host: web
    drop: /etc/cron.d/x
    content: x
expect:
  - rule: r
    within: 5
";
    write(dir.path(), "notapcap.pcap", "hello, this is not a capture");
    let p = write(dir.path(), "s.yml", text);
    let e = Scenario::load(&p).unwrap_err();
    let msgs: Vec<String> = e.0.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), 5, "{msgs:#?}");
    assert!(
        msgs[0].contains("s.yml:7: injects[0]: pcap: '../../etc/passwd' must be a path relative"),
        "{msgs:#?}"
    );
    assert!(
        msgs[1].contains("s.yml:10: injects[1]: pcap:") && msgs[1].contains("does not exist"),
        "{msgs:#?}"
    );
    assert!(msgs[2].contains("s.yml:13: injects[2]: pcap:"), "{msgs:#?}");
    assert!(
        msgs[3].contains("s.yml:16: injects[3]: 'index.html' is not in the web root"),
        "{msgs:#?}"
    );
    assert!(
        msgs[4].contains("s.yml:20: injects[4]: drop '/etc/cron.d/x' must be a relative path"),
        "{msgs:#?}"
    );
}

#[test]
fn garbage_scenarios_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "",
        "---\n",
        "[1, 2]",
        "name: 7\nhosts: 3\n",
        "name: x\nhosts:\n  - name: a\ninjects:\n  - at: -1\n    host: a\n",
        "\u{0}\u{1}\u{2}",
        "name: x\nhosts:\n  - {name: a}\ninjects:\n  - {at: 1, host: a, log: l, pcap: p}\nexpect:\n  - {rule: r, within: 1}\n",
        "name: x\nhosts: []\ninjects: []\nexpect: []\n",
    ] {
        let p = write(dir.path(), "g.yml", text);
        let e = Scenario::load(&p).expect_err(text);
        assert!(!e.0.is_empty());
        assert!(e.0.iter().all(|e| !e.message.is_empty()), "{e}");
    }
    let e = Scenario::load(&dir.path().join("nope.yml")).unwrap_err();
    assert!(e.to_string().contains("cannot read the scenario"), "{e}");
}
