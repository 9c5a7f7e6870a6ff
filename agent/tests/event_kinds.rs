//! Rules are judged only on events their logsource can apply to: network
//! events are `EventKind::Network` (logsource `product: ward`), so a Linux
//! log rule is skipped on them and a network rule is skipped on log lines.

use std::path::{Path, PathBuf};

use ward_agent::decode::LogFormat;
use ward_agent::engine::{RulePack, SigmaDetector};
use ward_agent::replay::{replay_logs, replay_pcaps};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures")
}

fn rule(id: &str, logsource: &str, field: &str, value: &str) -> String {
    format!(
        "title: {id}\nid: {id}\nlogsource:\n{logsource}detection:\n  sel:\n    {field}: {value}\n  condition: sel\nlevel: low\n"
    )
}

/// Rule ids fired by replaying `pcap` and `log` through a pack of `rules`.
fn fired(rules: &[String], pcap: &Path, log: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (i, r) in rules.iter().enumerate() {
        std::fs::write(dir.path().join(format!("r{i}.yml")), r).unwrap();
    }
    let pack = RulePack::load(&[dir.path().to_owned()]).unwrap_or_else(|d| {
        panic!(
            "{}",
            d.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let mut detector = SigmaDetector::new(&pack).unwrap();
    let mut ids = Vec::new();
    replay_pcaps(&[pcap.to_owned()], "h", &mut detector, |a| {
        ids.push(a.rule_id);
        Ok(())
    })
    .unwrap();
    replay_logs(
        &[(log.to_owned(), LogFormat::Auto)],
        "h",
        &mut detector,
        |a| {
            ids.push(a.rule_id);
            Ok(())
        },
    )
    .unwrap();
    ids.sort();
    ids.dedup();
    ids
}

#[test]
fn network_rules_skip_log_lines_and_log_rules_skip_network_events() {
    let ward = "  product: ward\n  category: network_connection\n";
    let linux = "  product: linux\n  service: sshd\n";
    let web = "  category: webserver\n";
    let rules = [
        // Each field only the other kind of event has, under the wrong
        // logsource: never evaluated there, so never fires.
        rule("linux-on-net", linux, "event_type", "conn_attempt"),
        rule("web-on-net", web, "event_type", "conn_attempt"),
        rule("net-on-linux", ward, "program", "sshd"),
        // The same fields under the right logsource fire.
        rule("net-on-net", ward, "event_type", "conn_attempt"),
        rule("linux-on-linux", linux, "program", "sshd"),
    ];
    let got = fired(
        &rules,
        &fixtures().join("network/port_scan_vertical/positive.pcap"),
        &fixtures().join("linux/ssh_brute_force/positive.log"),
    );
    assert_eq!(got, ["linux-on-linux", "net-on-net"]);
}
