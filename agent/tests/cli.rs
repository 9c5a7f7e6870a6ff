//! The `ward-agent` binary's offline commands, run for real.

use std::path::Path;
use std::process::Command;

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ward-agent"))
}

fn rules_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../rules"))
}

#[test]
fn check_accepts_the_shipped_pack() {
    let out = agent().arg("check").arg(rules_root()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}

#[test]
fn check_names_file_rule_and_problem_for_each_bad_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo_field.yml"),
        "title: Typo\nid: typo-rule\nlogsource:\n  product: linux\ndetection:\n  sel:\n    srcip: 1.2.3.4\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yml"),
        "title: Broken\ndetection: [\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: Good\nid: good-rule\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: sshd\n  condition: sel\nlevel: low\n",
    )
    .unwrap();
    let out = agent().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error[")).collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines.iter().any(|l| l.contains("typo_field.yml")
            && l.contains("typo-rule")
            && l.contains("unknown-field")
            && l.contains("srcip")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("broken.yml") && l.contains("error[yaml]")),
        "{err}"
    );
    assert!(!err.contains("good.yml"), "{err}");
}

#[test]
fn check_of_a_missing_path_is_a_clear_error() {
    let out = agent()
        .args(["check", "/nonexistent/rules"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rules"));
}

#[test]
fn replay_prints_contract_alert_json_and_survives_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("auth.log");
    let mut text = String::new();
    text.push_str("garbage line\n\u{0}\u{1}binary\n");
    text.push_str(&"x".repeat(100_000));
    text.push('\n');
    for i in 0..6 {
        text.push_str(&format!(
            "Nov 22 04:00:0{i} web01 sshd[7]: Failed password for root from 203.0.113.7 port 4000{i} ssh2\n"
        ));
    }
    std::fs::write(&log, text).unwrap();
    let out = agent()
        .args(["replay", "--host", "web01", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    let a = &alerts[0];
    for field in [
        "rule_id", "title", "severity", "time", "host", "entities", "evidence",
    ] {
        assert!(a.get(field).is_some(), "missing {field} in {a}");
    }
    assert_eq!(a["rule_id"], "cd4fc56f-e7a3-4208-aa13-4f59cf9f188d");
    assert_eq!(a["severity"], "high");
    assert_eq!(a["host"], "web01");
    assert_eq!(a["entities"]["src_ip"], "203.0.113.7");
    assert_eq!(a["evidence"].as_array().unwrap().len(), 5);
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed=3"));
}

#[test]
fn replay_without_inputs_is_an_error() {
    let out = agent().arg("replay").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log"));
}

fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect()
}

#[test]
fn replay_pcap_and_log_together_print_both_alerts_the_same_every_time() {
    let fixtures = rules_root().join("fixtures");
    let run = || {
        let out = agent()
            .args(["replay", "--host", "gw01", "--pcap"])
            .arg(fixtures.join("network/http_attacks/positive.pcap"))
            .arg("--log")
            .arg(fixtures.join("linux/ssh_brute_force/positive.log"))
            .arg("--pcap")
            .arg(fixtures.join("network/port_scan_vertical/positive.pcap"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let out = run();
    let alerts = json_lines(&out.stdout);
    let titles: Vec<&str> = alerts.iter().filter_map(|a| a["title"].as_str()).collect();
    for t in [
        "SSH brute force",
        "SQL injection in an HTTP request",
        "Path traversal in an HTTP request",
        "Webshell command in an HTTP request",
        "Vertical port scan",
    ] {
        assert!(titles.contains(&t), "{t} missing from {titles:?}");
    }
    let web = alerts
        .iter()
        .find(|a| a["title"] == "Webshell command in an HTTP request")
        .unwrap();
    assert_eq!(web["severity"], "critical");
    assert_eq!(web["entities"]["src_ip"], "192.0.2.45");
    assert!(web["evidence"][0].as_str().unwrap().contains("cmd=whoami"));
    assert!(web["time"].as_str().unwrap().starts_with("2026-11-18T"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("packets=84"), "{stderr}");
    // Same input, same alert ids.
    let again = json_lines(&run().stdout);
    let ids = |v: &[serde_json::Value]| v.iter().map(|a| a["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&alerts), ids(&again));
}

#[test]
fn replay_of_a_file_that_is_not_a_capture_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("not.pcap");
    std::fs::write(&bad, b"this is not a capture file at all").unwrap();
    let out = agent()
        .arg("replay")
        .arg("--pcap")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a pcap or pcapng file"), "{stderr}");
    let out = agent()
        .args(["replay", "--pcap", "/nonexistent/x.pcap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.pcap"));
}

/// A tree with a webshell, clean files, a binary file, a fifo, a symlink
/// loop and a file over the size limit.
fn scan_tree_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("www/uploads")).unwrap();
    std::fs::write(
        root.join("www/uploads/x.php"),
        "<?php @eval($_POST['cmd']); ?>",
    )
    .unwrap();
    std::fs::write(
        root.join("www/index.html"),
        "<html><body>hello</body></html>",
    )
    .unwrap();
    std::fs::write(
        root.join("www/logo.png"),
        [0x89u8, b'P', b'N', b'G', 0, 0xff, 0xfe],
    )
    .unwrap();
    std::fs::write(root.join("www/big.js"), vec![b'a'; 4096]).unwrap();
    std::os::unix::fs::symlink(root.join("www"), root.join("www/uploads/loop")).unwrap();
    let fifo = root.join("www/pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    dir
}

#[test]
fn scan_prints_findings_as_json_and_exits_1_on_a_match() {
    let dir = scan_tree_fixture();
    let out = agent()
        .args(["scan", "--max-size", "1000"])
        .arg(dir.path().join("www"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let findings: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect();
    assert!(!findings.is_empty());
    for f in &findings {
        assert!(
            f["path"].as_str().unwrap().ends_with("uploads/x.php"),
            "{f}"
        );
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
        for field in ["rule", "tags", "strings", "severity", "title", "size"] {
            assert!(f.get(field).is_some(), "missing {field} in {f}");
        }
    }
    let eval = findings
        .iter()
        .find(|f| f["rule"] == "ward_php_eval_request")
        .expect("the eval rule matched");
    assert!(
        eval["tags"]
            .as_array()
            .unwrap()
            .contains(&"webshell".into())
    );
    assert!(
        eval["strings"][0]["data"]
            .as_str()
            .unwrap()
            .contains("eval($_POST")
    );
    // Skips are counted, never fatal: the fifo and the symlink as special
    // files, big.js over the limit.
    assert!(stderr.contains("scanned 3 files"), "{stderr}");
    assert!(stderr.contains("2 special"), "{stderr}");
    assert!(stderr.contains("1 too_large"), "{stderr}");
}

#[test]
fn scan_of_a_clean_tree_exits_0_and_a_missing_path_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.php"), "<?php echo 'hello';").unwrap();
    let out = agent().arg("scan").arg(dir.path()).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = agent().args(["scan", "/nonexistent/www"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/www"));
}

#[test]
fn scan_with_other_rules_skips_the_rules_yara_x_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("mixed.yar"),
        "import \"pe\"\nrule needs_pe { condition: pe.is_dll() }\nrule marker : test { strings: $a = \"MARKER-1234\" condition: $a }\nrule broken { condition: nothing_here }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("file.txt"), "xx MARKER-1234 yy").unwrap();
    let out = agent()
        .args(["scan", "--rules"])
        .arg(&rules)
        .arg(dir.path().join("file.txt"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let f: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(f["rule"], "marker");
    assert!(
        stderr.contains("needs_pe") && stderr.contains("broken"),
        "{stderr}"
    );
}

#[test]
fn check_reports_each_rejected_yara_rule_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("community.yar"),
        "rule good { strings: $a = \"x\" condition: $a }\n\nrule bad_ident {\n  condition: no_such_thing\n}\n",
    )
    .unwrap();
    let out = agent().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error[")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("community.yar:4")
            && lines[0].contains("bad_ident")
            && lines[0].contains("no_such_thing"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 YARA rules compiled"));
}

#[test]
fn check_loads_the_community_webshell_rules() {
    let sb = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/yara/signature-base/yara"
    ));
    assert!(
        sb.is_dir(),
        "the shared corpus is expected at {}",
        sb.display()
    );
    let out = agent()
        .arg("check")
        .arg(sb.join("gen_webshells.yar"))
        .arg(sb.join("thor-webshells.yar"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let n: usize = stdout
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(n > 600, "{stdout}");
}

#[test]
fn check_names_the_line_of_a_bad_indicator() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sigma")).unwrap();
    std::fs::create_dir_all(dir.path().join("ioc")).unwrap();
    std::fs::copy(
        rules_root().join("sigma/network/c2_indicators.yml"),
        dir.path().join("sigma/c2.yml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ioc/feed.txt"),
        "# feed\n203.0.113.5\nevil.example\nnot a domain\n",
    )
    .unwrap();
    let out = agent().arg("check").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("feed.txt:4: error[bad-ioc]: 'not a domain'"),
        "{stderr}"
    );
}

/// (source address, TCP flags) of an Ethernet/IPv4/TCP frame.
fn ipv4_tcp(frame: &[u8]) -> Option<(std::net::Ipv4Addr, u8)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 6 {
        return None;
    }
    let src = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    Some((src, *ip.get(ihl + 13)?))
}

#[test]
fn replay_of_a_network_fixture_prints_alerts_with_their_packets() {
    let out = agent()
        .args(["replay", "--host", "gw01", "--pcap"])
        .arg(rules_root().join("fixtures/network/port_scan_vertical/positive.pcap"))
        .arg("--pcap")
        .arg(rules_root().join("fixtures/network/http_attacks/positive.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<ward_agent::wire::Alert> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an alert"))
        .collect();
    let scan = alerts
        .iter()
        .find(|a| a.title == "Vertical port scan")
        .expect("the scan alert");
    let scanner: std::net::Ipv4Addr = scan.entities["src_ip"].parse().unwrap();
    // The correlation carries the SYNs of the events that made it.
    assert!(scan.packets.len() >= 10, "{} packets", scan.packets.len());
    for p in &scan.packets {
        assert_eq!(p.linktype, 1);
        let (src, flags) = ipv4_tcp(&p.data).expect("an IPv4 TCP frame");
        assert_eq!(src, scanner);
        assert_eq!(flags & 0x12, 0x02, "a SYN");
    }
    assert!(scan.packets.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
    // A detection on an HTTP request carries the request's flow up to it.
    let web = alerts
        .iter()
        .find(|a| a.title == "Webshell command in an HTTP request")
        .unwrap();
    let last = web.packets.last().expect("packets");
    assert!(String::from_utf8_lossy(&last.data).contains("cmd=whoami"));
    assert!(
        web.packets.iter().map(|p| p.data.len()).sum::<usize>()
            <= ward_agent::wire::MAX_ALERT_PACKET_BYTES
    );
}
