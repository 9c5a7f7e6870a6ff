//! Live network detection end to end: two network namespaces made by the
//! test and joined by a veth pair; the coordinator and an agent capturing on
//! the inside veth run in one, a real port scan and a DNS query for a listed
//! C2 domain come from the other; the incidents appear on the coordinator,
//! and the scan incident's packets download as a pcap file (read back with
//! `pcap-file`, and with `tshark` when it is installed).
//! Traffic stays inside the test's namespaces.

use std::net::Ipv4Addr;
use std::path::Path;
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

/// (source, destination, TCP flags) of an Ethernet/IPv4/TCP frame.
fn ipv4_tcp(frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 6 {
        return None;
    }
    let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
    Some((addr(12), addr(16), *ip.get(ihl + 13)?))
}

/// Downloads incident `id`'s capture with `ward incidents pcap` and checks it
/// holds SYNs from the scanner, with pcap-file and (if installed) tshark.
fn check_scan_pcap(server: &ward_e2e::Server, id: i64, dir: &Path) {
    let file = dir.join("scan.pcap");
    let out = server.ward(&[
        "incidents",
        "pcap",
        &id.to_string(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(file.to_str().unwrap()), "{said}");
    let bytes = std::fs::read(&file).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(&bytes[..]).expect("a classic pcap file");
    assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
    let (scanner, target): (Ipv4Addr, Ipv4Addr) = (
        NetnsPair::OUTSIDE_IP.parse().unwrap(),
        NetnsPair::INSIDE_IP.parse().unwrap(),
    );
    let (mut syns, mut last) = (0, std::time::Duration::ZERO);
    while let Some(p) = r.next_packet() {
        let p = p.expect("whole records");
        assert!(p.timestamp() >= last, "time-ordered");
        last = p.timestamp();
        if let Some((src, dst, flags)) = ipv4_tcp(p.data())
            && (src, dst) == (scanner, target)
            && flags & 0x12 == 0x02
        {
            syns += 1;
        }
    }
    assert!(syns >= 10, "{syns} SYNs from the scanner in the capture");
    let tshark = std::process::Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&file)
        .args([
            "-Y",
            "tcp.flags.syn == 1 && tcp.flags.ack == 0",
            "-T",
            "fields",
            "-e",
            "ip.src",
        ])
        .output();
    match tshark {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "\n*** WARNING: tshark is not installed: SKIPPED reading the incident pcap with tshark \
                 (apt-get install -y tshark) ***\n"
            );
        }
        Err(e) => panic!("cannot run tshark: {e}"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "tshark: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let from_scanner = text
                .lines()
                .filter(|l| l.trim() == NetnsPair::OUTSIDE_IP)
                .count();
            assert_eq!(from_scanner, syns, "tshark sees the same SYNs:\n{text}");
        }
    }
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
            "state_dir = {:?}\nhost = \"gw01\"\nheartbeat_interval_s = 1\n[[net]]\ninterface = {:?}\n",
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
    let scan_id = scan["id"].as_i64().unwrap();
    let shown = server.ward_json(&["incidents", "show", &scan_id.to_string()]);
    assert!(
        shown["alerts"][0]["packet_count"].as_i64().unwrap() >= 10,
        "{shown:#?}"
    );
    check_scan_pcap(&server, scan_id, tmp.path());
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

    // The heartbeat reports the capture socket's kernel counters: every
    // frame the agent read reached the socket, and this light traffic lost none.
    let hb = eventually(
        Duration::from_secs(30),
        "a heartbeat with kernel counters",
        || {
            let agents = server.ward_json(&["agents", "list"]);
            let hb = agents[0]["heartbeat"].clone();
            let n = |k: &str| hb[k].as_u64();
            (n("packets_total")? > 0 && n("capture_kernel_packets_total")? >= n("packets_total")?)
                .then_some(hb)
        },
    );
    assert_eq!(hb["capture_kernel_drops_total"], 0, "{hb:#?}");
    assert!(
        hb["evidence_frames_dropped_total"].as_u64().is_some(),
        "{hb:#?}"
    );
    assert!(
        hb["evidence_budget_dropped_total"].as_u64().is_some(),
        "{hb:#?}"
    );
    let table = server.ward(&["agents", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("NET DROP Q/K"), "{table}");
    let column = format!(" {}/0 ", hb["dropped_total"]);
    assert!(table.contains(&column), "{column:?} in\n{table}");

    let status = agent.terminate();
    assert!(status.success(), "agent exit: {status}\n{}", agent.stderr());
    assert!(agent.stderr().contains("capture stopped"));
}
