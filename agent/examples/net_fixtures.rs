//! Writes the network rule fixtures: `rules/fixtures/network/<rule>/{positive,negative}.pcap`.
//!
//! ```sh
//! cargo run -p ward-agent --example net_fixtures -- rules/fixtures/network
//! ```
//!
//! Every packet is built here (etherparse) with fixed addresses from the
//! documentation ranges, fixed times and a fixed-seed generator, so running
//! it again writes the same bytes.

// Packet builders read best with every address and port spelled out.
#![allow(clippy::too_many_arguments)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};

const START: u64 = 1_795_000_000; // 2026-11-18
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    PshAck,
    FinAck,
    RstAck,
}

#[derive(Default)]
struct Capture {
    packets: Vec<(Duration, Vec<u8>)>,
    seq: u32,
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(START * 1000 + ms)
}

impl Capture {
    fn tcp(
        &mut self,
        ms: u64,
        src: Ipv4Addr,
        sp: u16,
        dst: Ipv4Addr,
        dp: u16,
        f: Flags,
        payload: &[u8],
    ) {
        self.seq = self.seq.wrapping_add(7919);
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(src.octets(), dst.octets(), 64)
            .tcp(sp, dp, self.seq, 64240);
        let b = match f {
            Flags::Syn => b.syn(),
            Flags::SynAck => b.syn().ack(1),
            Flags::Ack => b.ack(1),
            Flags::PshAck => b.psh().ack(1),
            Flags::FinAck => b.fin().ack(1),
            Flags::RstAck => b.rst().ack(1),
        };
        let mut out = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut out, payload).expect("builds");
        self.packets.push((at(ms), out));
    }

    fn udp(&mut self, ms: u64, src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16, payload: &[u8]) {
        let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4(src.octets(), dst.octets(), 64)
            .udp(sp, dp);
        let mut out = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut out, payload).expect("builds");
        self.packets.push((at(ms), out));
    }

    /// A whole TCP conversation: handshake, request, response, close.
    fn session(
        &mut self,
        ms: u64,
        c: Ipv4Addr,
        cp: u16,
        s: Ipv4Addr,
        sp: u16,
        req: &[u8],
        resp: &[u8],
    ) {
        self.tcp(ms, c, cp, s, sp, Flags::Syn, &[]);
        self.tcp(ms + 1, s, sp, c, cp, Flags::SynAck, &[]);
        self.tcp(ms + 2, c, cp, s, sp, Flags::Ack, &[]);
        if !req.is_empty() {
            self.tcp(ms + 3, c, cp, s, sp, Flags::PshAck, req);
        }
        if !resp.is_empty() {
            self.tcp(ms + 5, s, sp, c, cp, Flags::PshAck, resp);
        }
        self.tcp(ms + 6, c, cp, s, sp, Flags::FinAck, &[]);
        self.tcp(ms + 7, s, sp, c, cp, Flags::FinAck, &[]);
        self.tcp(ms + 8, c, cp, s, sp, Flags::Ack, &[]);
    }

    /// A SYN answered by RST (a closed port).
    fn refused(&mut self, ms: u64, c: Ipv4Addr, cp: u16, s: Ipv4Addr, sp: u16) {
        self.tcp(ms, c, cp, s, sp, Flags::Syn, &[]);
        self.tcp(ms + 1, s, sp, c, cp, Flags::RstAck, &[]);
    }

    fn dns(
        &mut self,
        ms: u64,
        c: Ipv4Addr,
        cp: u16,
        resolver: Ipv4Addr,
        id: u16,
        name: &str,
        qtype: u16,
    ) {
        self.udp(ms, c, cp, resolver, 53, &dns_query(id, name, qtype));
    }

    fn write(mut self, path: &Path) {
        self.packets.sort_by_key(|(t, _)| *t);
        let f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut w = PcapWriter::new(f).expect("pcap header");
        for (t, data) in &self.packets {
            let p = PcapPacket::new(*t, data.len() as u32, data).expect("valid packet");
            w.write_packet(&p).expect("write packet");
        }
        println!("{} ({} packets)", path.display(), self.packets.len());
    }
}

fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

fn client_hello(sni: &str) -> Vec<u8> {
    let n = sni.len() as u16;
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&(n + 5).to_be_bytes());
    ext.extend_from_slice(&(n + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&n.to_be_bytes());
    ext.extend_from_slice(sni.as_bytes());
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0x00, 0x9c, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn label(&mut self, n: usize) -> String {
        const B32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        (0..n)
            .map(|_| char::from(B32[(self.next() % 32) as usize]))
            .collect()
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

fn http_get(target: &str, host: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n\r\n").into_bytes()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn main() {
    let root: PathBuf = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "rules/fixtures/network".into())
        .into();
    write_all(&root);
}

/// Writes every network fixture under `root` (`<rule>/{positive,negative}.pcap`).
pub fn write_all(root: &Path) {
    let dir = |name: &str| {
        let d = root.join(name);
        std::fs::create_dir_all(&d).expect("fixture dir");
        d
    };
    let scanner = ip("192.0.2.45");
    let server = ip("10.20.0.10");
    let client = ip("10.20.0.55");
    let resolver = ip("10.20.0.2");

    // Vertical scan: one source, 30 ports of one host in 3 s.
    let d = dir("port_scan_vertical");
    let mut c = Capture::default();
    for (i, port) in [
        21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1433, 1521, 1723,
        3306, 3389, 5432, 5900, 6379, 8000, 8080, 8443, 9000, 9200, 11211, 27017,
    ]
    .iter()
    .enumerate()
    {
        c.refused(i as u64 * 100, scanner, 40000, server, *port);
    }
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    for i in 0..12u64 {
        let port = if i % 2 == 0 { 80 } else { 443 };
        c.session(i * 2000, client, 50000 + i as u16, server, port, b"", b"");
    }
    c.write(&d.join("negative.pcap"));

    // Horizontal scan: one source, port 445 on 30 hosts in 3 s.
    let d = dir("port_scan_horizontal");
    let mut c = Capture::default();
    for i in 0..30u8 {
        c.tcp(
            u64::from(i) * 100,
            scanner,
            41000,
            Ipv4Addr::new(10, 20, 1, 1 + i),
            445,
            Flags::Syn,
            &[],
        );
    }
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    for i in 0..10u8 {
        c.session(
            u64::from(i) * 1000,
            client,
            51000 + u16::from(i),
            Ipv4Addr::new(10, 20, 1, 1 + i),
            445,
            b"",
            b"",
        );
    }
    c.write(&d.join("negative.pcap"));

    // SYN flood: 400 SYNs from spoofed sources to one web server in 2 s.
    let d = dir("syn_flood");
    let mut rng = Rng(0xf100d);
    let mut c = Capture::default();
    for i in 0..400u64 {
        let r = rng.next();
        let src = Ipv4Addr::new(198, 18, (r >> 8) as u8, r as u8);
        c.tcp(
            i * 5,
            src,
            1024 + (r >> 16) as u16 % 60000,
            server,
            80,
            Flags::Syn,
            &[],
        );
    }
    c.write(&d.join("positive.pcap"));
    // A busy but normal server: 150 complete requests over 60 s.
    let mut c = Capture::default();
    for i in 0..150u64 {
        let src = Ipv4Addr::new(10, 20, 2, (i % 200) as u8 + 1);
        c.session(
            i * 400,
            src,
            30000 + i as u16,
            server,
            80,
            &http_get("/", "portal.example.gov.vn"),
            OK,
        );
    }
    c.write(&d.join("negative.pcap"));

    // Brute force: 25 SSH connections from one source in 50 s.
    let d = dir("admin_port_brute_force");
    let attacker = ip("192.0.2.99");
    let mut c = Capture::default();
    for i in 0..25u64 {
        c.session(
            i * 2000,
            attacker,
            42000 + i as u16,
            server,
            22,
            b"SSH-2.0-libssh2_1.10.0\r\n",
            b"SSH-2.0-OpenSSH_9.2p1\r\n",
        );
    }
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    for (i, t) in [0u64, 3000, 17_000, 21_000, 38_000, 52_000]
        .iter()
        .enumerate()
    {
        let i = i as u64;
        c.session(
            *t,
            client,
            43000 + i as u16,
            server,
            22,
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"SSH-2.0-OpenSSH_9.2p1\r\n",
        );
    }
    for i in 0..30u64 {
        // Many connections to a web port are not an admin-port brute force.
        c.session(
            60_000 + i * 1000,
            client,
            44000 + i as u16,
            server,
            80,
            &http_get("/", "portal.example.gov.vn"),
            OK,
        );
    }
    c.write(&d.join("negative.pcap"));

    // C2: a TLS connection to a listed address, a DNS lookup of a listed domain.
    let d = dir("c2_indicators");
    let mut c = Capture::default();
    c.session(
        0,
        client,
        45000,
        ip("203.0.113.66"),
        443,
        &client_hello("cdn.example.net"),
        b"",
    );
    c.dns(
        5000,
        client,
        45001,
        resolver,
        0x4242,
        "beacon.c2.example-botnet.test",
        1,
    );
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    c.session(
        0,
        client,
        45000,
        ip("203.0.113.67"),
        443,
        &client_hello("www.example.org"),
        b"",
    );
    c.dns(
        5000,
        client,
        45001,
        resolver,
        0x4243,
        "xc2.example-botnet.test",
        1,
    );
    c.dns(
        6000,
        client,
        45002,
        resolver,
        0x4244,
        "c2.example-botnet.test.example.org",
        1,
    );
    c.session(
        7000,
        client,
        45003,
        ip("198.51.100.16"),
        80,
        &http_get("/", "www.example.org"),
        OK,
    );
    c.write(&d.join("negative.pcap"));

    // DNS tunnelling: encoded labels and a burst of TXT queries.
    let d = dir("dns_tunnelling");
    let mut rng = Rng(0x7d45);
    let mut c = Capture::default();
    for i in 0..15u64 {
        let name = format!("{}.{}.t.tunnel-exfil.test", rng.label(52), rng.label(20));
        c.dns(
            i * 500,
            client,
            46000 + i as u16,
            resolver,
            i as u16,
            &name,
            1,
        );
    }
    for i in 0..60u64 {
        let name = format!("{}.t.tunnel-exfil.test", rng.label(8));
        c.dns(
            20_000 + i * 300,
            client,
            47000 + i as u16,
            resolver,
            1000 + i as u16,
            &name,
            16,
        );
    }
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    for (i, name) in [
        "www.example.com",
        "mail.example.gov.vn",
        "portal.example.gov.vn",
        "update.example.org",
    ]
    .iter()
    .enumerate()
    {
        c.dns(
            i as u64 * 1000,
            client,
            48000 + i as u16,
            resolver,
            i as u16,
            name,
            1,
        );
    }
    for i in 0..5u64 {
        c.dns(
            5000 + i * 1000,
            client,
            48100 + i as u16,
            resolver,
            100 + i as u16,
            "_dmarc.example.gov.vn",
            16,
        );
    }
    // One long label (a DKIM-like selector) is not a tunnel.
    c.dns(
        12_000,
        client,
        48200,
        resolver,
        200,
        "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3._domainkey.example.com",
        16,
    );
    c.write(&d.join("negative.pcap"));

    // Beaconing: a check-in every 60 s (± 0.4 s) to one address and port.
    let d = dir("beaconing");
    let c2 = ip("192.0.2.50");
    let mut c = Capture::default();
    for i in 0..8u64 {
        let jitter = [0, 400, 150, 300, 50, 250, 100, 350][i as usize];
        c.session(
            i * 60_000 + jitter,
            client,
            49000 + i as u16,
            c2,
            8080,
            b"POST /gate HTTP/1.1\r\nHost: 192.0.2.50\r\n\r\n",
            OK,
        );
    }
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    for (i, t) in [
        0u64, 7_000, 95_000, 101_000, 240_000, 262_000, 410_000, 415_000,
    ]
    .iter()
    .enumerate()
    {
        c.session(
            *t,
            client,
            49100 + i as u16,
            c2,
            8080,
            &http_get("/", "app.example.org"),
            OK,
        );
    }
    // Regular NTP polling is infrastructure, not a beacon.
    for i in 0..8u64 {
        c.udp(
            i * 64_000,
            client,
            49200 + i as u16,
            ip("10.20.0.3"),
            123,
            &[0x23; 48],
        );
    }
    c.write(&d.join("negative.pcap"));

    // Cleartext HTTP attacks: SQL injection, traversal, a webshell command.
    let d = dir("http_attacks");
    let web = ip("10.20.0.80");
    let mut c = Capture::default();
    c.session(
        0,
        scanner,
        50001,
        web,
        80,
        &http_get(
            "/news.php?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--",
            "portal.example.gov.vn",
        ),
        OK,
    );
    c.session(
        1000,
        scanner,
        50002,
        web,
        80,
        &http_get(
            "/download.php?file=..%2f..%2f..%2fetc%2fpasswd",
            "portal.example.gov.vn",
        ),
        OK,
    );
    c.session(
        2000,
        scanner,
        50003,
        web,
        80,
        &http_get("/uploads/img.php?cmd=whoami", "portal.example.gov.vn"),
        OK,
    );
    c.write(&d.join("positive.pcap"));
    let mut c = Capture::default();
    for (i, t) in [
        "/",
        "/news.php?id=12",
        "/search?q=union+station+schedule",
        "/docs/guide.pdf",
        "/login?next=%2Fadmin%2F",
        "/api/items?select=name,price",
    ]
    .iter()
    .enumerate()
    {
        c.session(
            i as u64 * 1000,
            client,
            50100 + i as u16,
            web,
            80,
            &http_get(t, "portal.example.gov.vn"),
            OK,
        );
    }
    c.write(&d.join("negative.pcap"));
}
