//! Live network detection end to end: two network namespaces made by the
//! test and joined by a veth pair; the coordinator and an agent capturing on
//! the inside veth run in one, a real port scan and a DNS query for a listed
//! C2 domain come from the other; the incidents appear on the coordinator.
//! Traffic stays inside the test's namespaces.

use std::time::Duration;

use serde_json::Value;
use ward_e2e::{NetnsPair, Server, eventually, start_agent};

/// A DNS query for `name` (type A) as `\xNN` escapes for bash's printf.
fn dns_query_escaped(name: &str) -> String {
    let mut m = vec![0x77, 0x01, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.iter().map(|b| format!("\\x{b:02x}")).collect()
}

#[test]
fn live_capture_port_scan_and_c2_lookup_become_incidents() {
    let pair = NetnsPair::create().unwrap_or_else(|e| {
        panic!("this test needs root and iproute2 to make network namespaces: {e}")
    });
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("data"), Some(&pair.inside));

    let state = tmp.path().join("agent-state");
    server.enroll_agent("Sở TT&TT", "gw01", &state);

    let config = tmp.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nhost = \"gw01\"\n[[net]]\ninterface = {:?}\n",
            state.display().to_string(),
            pair.inside_if
        ),
    )
    .unwrap();
    let mut agent = start_agent(Some(&pair.inside), &config);
    agent.wait_for("capture started", Duration::from_secs(30));

    // A vertical scan of 40 closed ports, then a lookup of a listed C2 domain.
    let scan = format!(
        "for p in $(seq 1000 1039); do timeout 1 bash -c \"echo > /dev/tcp/{ip}/$p\" 2>/dev/null; done; \
         printf '{q}' > /dev/udp/{ip}/53; true",
        ip = NetnsPair::INSIDE_IP,
        q = dns_query_escaped("beacon.c2.example-botnet.test")
    );
    let out = pair.from_outside(&scan);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let list = eventually(Duration::from_secs(30), "the scan and C2 incidents", || {
        let l: Vec<Value> = server
            .ward_json(&["incidents", "list"])
            .as_array()
            .cloned()
            .unwrap_or_default();
        let titles: Vec<&str> = l.iter().filter_map(|i| i["title"].as_str()).collect();
        (titles.contains(&"Vertical port scan") && titles.contains(&"Lookup of a listed C2 domain"))
            .then_some(l)
    });
    let scan = list
        .iter()
        .find(|i| i["title"] == "Vertical port scan")
        .unwrap();
    assert_eq!(scan["host"], "gw01");
    assert_eq!(scan["entities"]["src_ip"], NetnsPair::OUTSIDE_IP);
    assert_eq!(scan["entities"]["dst_ip"], NetnsPair::INSIDE_IP);
    assert_eq!(scan["severity"], "medium");
    let c2 = list
        .iter()
        .find(|i| i["title"] == "Lookup of a listed C2 domain")
        .unwrap();
    assert_eq!(c2["entities"]["src_ip"], NetnsPair::OUTSIDE_IP, "{c2:#?}");
    assert_eq!(c2["severity"], "high");
    let shown = server.ward_json(&["incidents", "show", &c2["id"].as_i64().unwrap().to_string()]);
    let evidence = shown["alerts"][0]["evidence"][0].as_str().unwrap();
    assert!(
        evidence.contains("beacon.c2.example-botnet.test"),
        "{evidence}"
    );

    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
    assert!(agent.stderr().contains("capture stopped"));
}
