//! Link, network and transport layers with `etherparse`.
//!
//! Limits and behaviour:
//! - Link types: Ethernet (with up to etherparse's 3 VLAN / MACsec tags), raw
//!   IP, Linux cooked capture (SLL, 16-byte header) and BSD loopback (NULL).
//! - Truncated packets (short snap length) are decoded as far as they go
//!   ([`TRUNCATED`]); non-first IP fragments carry no ports ([`FRAGMENT`]).
//! - Non-IP frames (ARP, LLDP, ...) are [`PacketError::NotIp`].
//! - Parsing only reads inside the given slice; it never allocates.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{EtherType, LaxNetSlice, LaxSlicedPacket, TransportSlice};

/// Anomaly: the packet was shorter than its headers said (snap length,
/// corruption); decoded as far as possible.
pub const TRUNCATED: u16 = 1;
/// Anomaly: an IP fragment; only the first fragment carries ports.
pub const FRAGMENT: u16 = 2;
/// Anomaly: the transport header could not be read.
pub const BAD_TRANSPORT: u16 = 4;

/// TCP flag bits as on the wire (low byte).
pub mod tcp {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;

    /// Flags as letters, Zeek/tcpdump style: `S`, `SA`, `FA`, `R`, ...
    /// (SYN, FIN, RST, PSH, ACK, URG in that order; the two high bits
    /// have no letter). A static string: no allocation per event.
    pub fn letters(flags: u8) -> &'static str {
        LETTERS[usize::from(flags & 0x3f)]
    }

    /// [`letters`] for every combination of the six named bits.
    const LETTERS: [&str; 64] = [
        "", "F", "S", "SF", "R", "FR", "SR", "SFR", "P", "FP", "SP", "SFP", "RP", "FRP", "SRP",
        "SFRP", "A", "FA", "SA", "SFA", "RA", "FRA", "SRA", "SFRA", "PA", "FPA", "SPA", "SFPA",
        "RPA", "FRPA", "SRPA", "SFRPA", "U", "FU", "SU", "SFU", "RU", "FRU", "SRU", "SFRU", "PU",
        "FPU", "SPU", "SFPU", "RPU", "FRPU", "SRPU", "SFRPU", "AU", "FAU", "SAU", "SFAU", "RAU",
        "FRAU", "SRAU", "SFRAU", "PAU", "FPAU", "SPAU", "SFPAU", "RPAU", "FRPAU", "SRPAU",
        "SFRPAU",
    ];

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn letters_follow_the_bit_order() {
            for flags in 0..=255u8 {
                let mut want = String::new();
                for (bit, c) in [
                    (SYN, 'S'),
                    (FIN, 'F'),
                    (RST, 'R'),
                    (PSH, 'P'),
                    (ACK, 'A'),
                    (URG, 'U'),
                ] {
                    if flags & bit != 0 {
                        want.push(c);
                    }
                }
                assert_eq!(letters(flags), want, "flags {flags:#x}");
            }
        }
    }
}

/// The link-layer type of captured frames (pcap `LINKTYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Ethernet II (LINKTYPE_ETHERNET, 1).
    Ethernet,
    /// Raw IPv4/IPv6 (LINKTYPE_RAW 101, IPV4 228, IPV6 229).
    Raw,
    /// Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 113).
    LinuxSll,
    /// BSD loopback: a 4-byte address family, then IP (LINKTYPE_NULL 0, LOOP 108).
    Null,
}

impl LinkType {
    /// The link type for a pcap `LINKTYPE_*` number, if supported.
    pub fn from_linktype(n: u32) -> Option<LinkType> {
        match n {
            1 => Some(LinkType::Ethernet),
            101 | 228 | 229 | 12 | 14 => Some(LinkType::Raw),
            113 => Some(LinkType::LinuxSll),
            0 | 108 => Some(LinkType::Null),
            _ => None,
        }
    }

    /// The pcap `LINKTYPE_*` frames of this type are written under as
    /// evidence: 1, 101 (raw IPv4 and IPv6), 113, or 0 (Wireshark reads the
    /// loopback address family in either byte order).
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Raw => 101,
            LinkType::LinuxSll => 113,
            LinkType::Null => 0,
        }
    }
}

/// The transport protocol of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP
    Tcp,
    /// UDP
    Udp,
    /// ICMP for IPv4
    Icmp,
    /// ICMP for IPv6
    Icmpv6,
    /// Anything else, by IP protocol number.
    Other(u8),
}

impl Proto {
    /// The name rules see in `proto`.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            Proto::Tcp => "tcp".into(),
            Proto::Udp => "udp".into(),
            Proto::Icmp => "icmp".into(),
            Proto::Icmpv6 => "icmpv6".into(),
            Proto::Other(n) => format!("ip-{n}").into(),
        }
    }
}

/// One decoded packet: addresses, ports and the transport payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol.
    pub proto: Proto,
    /// Source port (ICMP: type; 0 when none).
    pub src_port: u16,
    /// Destination port (ICMP: code; 0 when none).
    pub dst_port: u16,
    /// TCP flag bits (see [`tcp`]); 0 for other protocols.
    pub tcp_flags: u8,
    /// TCP sequence number; 0 for other protocols.
    pub tcp_seq: u32,
    /// The transport payload present in the capture.
    pub payload: &'a [u8],
    /// Bytes of the frame as captured.
    pub len: usize,
    /// Anomaly flags ([`TRUNCATED`], [`FRAGMENT`], [`BAD_TRANSPORT`]).
    pub anomalies: u16,
}

/// Why a frame gave no IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Not IPv4/IPv6 (ARP, LLDP, STP, ...).
    #[error("not an IP packet")]
    NotIp,
    /// Headers that cannot be read.
    #[error("malformed {0} header")]
    Malformed(&'static str),
}

/// Decodes one captured frame.
pub fn parse(link: LinkType, data: &[u8]) -> Result<Packet<'_>, PacketError> {
    match parse_ipv4_tcp(link, data) {
        Some(p) => Ok(p),
        None => parse_general(link, data),
    }
}

/// The common frames — untagged Ethernet II carrying a whole unfragmented
/// IPv4 packet, or an IPv6 one with no extension header, and a TCP header
/// that reads — without `etherparse`'s general slicing (whose per-layer
/// structures cost more than the fields read here); `None` for every other
/// frame, which [`parse_general`] reads. Gives what [`parse_general`]
/// gives for the frames it accepts (tested on every frame of the fixtures
/// and of the corpus, and cut and altered copies of them).
fn parse_ipv4_tcp(link: LinkType, data: &[u8]) -> Option<Packet<'_>> {
    if link != LinkType::Ethernet || data.len() < 14 + 20 + 20 {
        return None;
    }
    let ip = &data[14..];
    let (src, dst, t) = match [data[12], data[13]] {
        [0x08, 0x00] => {
            if ip[0] >> 4 != 4 || ip[9] != 6 {
                return None;
            }
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            // Options fit, the packet is whole (trailing bytes are link
            // padding), and it is no fragment (neither more-fragments nor
            // an offset).
            if ihl < 20 || total < ihl || total > ip.len() || ip[6] & 0x3f != 0 || ip[7] != 0 {
                return None;
            }
            (
                IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                &ip[ihl..total],
            )
        }
        [0x86, 0xdd] => {
            // TCP straight after the fixed header, and the packet whole
            // (a zero payload length would be a jumbogram's).
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if ip.len() < 40 || ip[0] >> 4 != 6 || ip[6] != 6 || payload == 0 {
                return None;
            }
            if 40 + payload > ip.len() {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddr> {
                let b: [u8; 16] = ip[at..at + 16].try_into().ok()?;
                Some(IpAddr::V6(std::net::Ipv6Addr::from(b)))
            };
            (addr(8)?, addr(24)?, &ip[40..40 + payload])
        }
        _ => return None,
    };
    if t.len() < 20 {
        return None;
    }
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < 20 || doff > t.len() {
        return None;
    }
    Some(Packet {
        src,
        dst,
        proto: Proto::Tcp,
        src_port: u16::from_be_bytes([t[0], t[1]]),
        dst_port: u16::from_be_bytes([t[2], t[3]]),
        // FIN, SYN, RST, PSH, ACK, URG: the wire's low six bits.
        tcp_flags: t[13] & 0x3f,
        tcp_seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        payload: &t[doff..],
        len: data.len(),
        anomalies: 0,
    })
}

/// Decodes one captured frame of any supported kind with `etherparse`.
fn parse_general(link: LinkType, data: &[u8]) -> Result<Packet<'_>, PacketError> {
    let sliced = match link {
        LinkType::Ethernet => {
            LaxSlicedPacket::from_ethernet(data).map_err(|_| PacketError::Malformed("ethernet"))?
        }
        LinkType::Raw => {
            LaxSlicedPacket::from_ip(data).map_err(|_| PacketError::Malformed("ip"))?
        }
        LinkType::LinuxSll => {
            if data.len() < 16 {
                return Err(PacketError::Malformed("linux sll"));
            }
            let proto = u16::from_be_bytes([data[14], data[15]]);
            LaxSlicedPacket::from_ether_type(EtherType(proto), &data[16..])
        }
        LinkType::Null => {
            if data.len() < 4 {
                return Err(PacketError::Malformed("loopback"));
            }
            LaxSlicedPacket::from_ip(&data[4..]).map_err(|_| PacketError::Malformed("ip"))?
        }
    };
    let mut anomalies = 0;
    if sliced.stop_err.is_some() {
        anomalies |= TRUNCATED;
    }
    let (src, dst, ip_number, fragmented, incomplete) = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload().ip_number.0,
                v4.payload().fragmented,
                v4.payload().incomplete,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload().ip_number.0,
                v6.payload().fragmented,
                v6.payload().incomplete,
            )
        }
        Some(LaxNetSlice::Arp(_)) | None => return Err(PacketError::NotIp),
    };
    if incomplete {
        anomalies |= TRUNCATED;
    }
    if fragmented {
        anomalies |= FRAGMENT;
    }
    let mut p = Packet {
        src,
        dst,
        proto: Proto::Other(ip_number),
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        tcp_seq: 0,
        payload: &[],
        len: data.len(),
        anomalies,
    };
    match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => {
            p.proto = Proto::Tcp;
            p.src_port = t.source_port();
            p.dst_port = t.destination_port();
            let bits = [
                (t.fin(), tcp::FIN),
                (t.syn(), tcp::SYN),
                (t.rst(), tcp::RST),
                (t.psh(), tcp::PSH),
                (t.ack(), tcp::ACK),
                (t.urg(), tcp::URG),
            ];
            p.tcp_flags = bits.iter().filter(|(on, _)| *on).fold(0, |a, (_, b)| a | b);
            p.tcp_seq = t.sequence_number();
            p.payload = t.payload();
        }
        Some(TransportSlice::Udp(u)) => {
            p.proto = Proto::Udp;
            p.src_port = u.source_port();
            p.dst_port = u.destination_port();
            p.payload = u.payload();
        }
        Some(TransportSlice::Icmpv4(i)) => {
            p.proto = Proto::Icmp;
            let b = i.slice();
            p.src_port = u16::from(b.first().copied().unwrap_or(0));
            p.dst_port = u16::from(b.get(1).copied().unwrap_or(0));
            p.payload = i.payload();
        }
        Some(TransportSlice::Icmpv6(i)) => {
            p.proto = Proto::Icmpv6;
            let b = i.slice();
            p.src_port = u16::from(b.first().copied().unwrap_or(0));
            p.dst_port = u16::from(b.get(1).copied().unwrap_or(0));
            p.payload = i.payload();
        }
        Some(_) => {}
        None => {
            p.proto = match ip_number {
                6 => Proto::Tcp,
                17 => Proto::Udp,
                1 => Proto::Icmp,
                58 => Proto::Icmpv6,
                n => Proto::Other(n),
            };
            if !fragmented && matches!(ip_number, 6 | 17 | 1 | 58) {
                p.anomalies |= BAD_TRANSPORT;
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// A hand-built SYN frame (see `tests::eth_ipv4_tcp_syn`).
    pub(crate) fn syn() -> Vec<u8> {
        super::tests::eth_ipv4_tcp_syn()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet / IPv4 / TCP SYN 192.168.1.10:40000 → 192.168.1.20:22, built by hand.
    pub(crate) fn eth_ipv4_tcp_syn() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        // IPv4: ver/ihl, tos, total len 40, id, flags/frag (DF), ttl 64, proto 6, checksum 0
        f.extend_from_slice(&[0x45, 0, 0, 40, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[192, 168, 1, 10, 192, 168, 1, 20]);
        // TCP: sport 40000, dport 22, seq, ack, offset 5, flags SYN, window
        f.extend_from_slice(&[
            0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    }

    /// Ethernet / IPv6 / TCP SYN 2001:db8::a:40000 → 2001:db8::14:443, built by hand.
    fn eth_ipv6_tcp_syn() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd]);
        // IPv6: version, payload length 20, next header 6, hop limit 64
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = 10;
        f.extend_from_slice(&a);
        a[15] = 20;
        f.extend_from_slice(&a);
        f.extend_from_slice(&[
            0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
        ]);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    }

    #[test]
    fn ethernet_ipv4_tcp_syn() {
        let f = eth_ipv4_tcp_syn();
        let p = parse(LinkType::Ethernet, &f).unwrap();
        assert_eq!(p.src.to_string(), "192.168.1.10");
        assert_eq!(p.dst.to_string(), "192.168.1.20");
        assert_eq!((p.proto, p.src_port, p.dst_port), (Proto::Tcp, 40000, 22));
        assert_eq!(tcp::letters(p.tcp_flags), "S");
        assert_eq!(p.anomalies, 0);
    }

    #[test]
    fn vlan_tagged_frame() {
        let plain = eth_ipv4_tcp_syn();
        let mut f = plain[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]); // 802.1Q, VLAN 100
        f.extend_from_slice(&plain[12..]);
        let p = parse(LinkType::Ethernet, &f).unwrap();
        assert_eq!((p.proto, p.dst_port), (Proto::Tcp, 22));
    }

    #[test]
    fn ipv6_udp_raw() {
        // IPv6 header: payload len 12, next header 17, hop limit 64, ::1 → ::2
        let mut f = vec![0x60, 0, 0, 0, 0, 12, 17, 64];
        let mut a = [0u8; 16];
        a[15] = 1;
        f.extend_from_slice(&a);
        a[15] = 2;
        f.extend_from_slice(&a);
        f.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 12, 0, 0, b'a', b'b', b'c', b'd']);
        let p = parse(LinkType::Raw, &f).unwrap();
        assert_eq!(p.src.to_string(), "::1");
        assert_eq!((p.proto, p.src_port, p.dst_port), (Proto::Udp, 12345, 53));
        assert_eq!(p.payload, b"abcd");
    }

    #[test]
    fn icmp_echo_and_truncation() {
        let mut f = vec![
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        f.extend_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
        let p = parse(LinkType::Raw, &f).unwrap();
        assert_eq!((p.proto, p.src_port, p.dst_port), (Proto::Icmp, 8, 0));
        // Cut inside the TCP header of a SYN: still an IP packet, flagged.
        let syn = eth_ipv4_tcp_syn();
        let p = parse(LinkType::Ethernet, &syn[..40]).unwrap();
        assert_eq!(p.proto, Proto::Tcp);
        assert_ne!(p.anomalies & (TRUNCATED | BAD_TRANSPORT), 0);
    }

    /// Every frame of the network fixtures, and cut and altered copies of
    /// the IPv4/TCP ones: the fast path gives what `etherparse` gives, and
    /// takes most of them.
    #[test]
    fn the_ipv4_tcp_path_reads_as_etherparse() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/fixtures/network");
        let mut frames = Vec::new();
        for entry in walkdir::WalkDir::new(root) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                crate::sources::pcap::read_file(entry.path(), |_, link, data| {
                    frames.push((link, data.to_vec()));
                })
                .expect("fixture reads");
            }
        }
        frames.push((LinkType::Ethernet, eth_ipv4_tcp_syn()));
        frames.push((LinkType::Ethernet, eth_ipv6_tcp_syn()));
        // The corpus's captures, where present, carry IPv6 traffic too:
        // read as they are (the fixtures' and built frames are also cut
        // and altered).
        let mut whole_only = Vec::new();
        let corpus =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps");
        for entry in walkdir::WalkDir::new(corpus).into_iter().flatten() {
            if entry.file_type().is_file() {
                let _ = crate::sources::pcap::read_file(entry.path(), |_, link, data| {
                    whole_only.push((link, data.to_vec()));
                });
            }
        }
        let (mut fast, mut checked) = (0, 0);
        let mut check = |link: LinkType, data: &[u8]| {
            checked += 1;
            if let Some(p) = parse_ipv4_tcp(link, data) {
                fast += 1;
                assert_eq!(Ok(p), parse_general(link, data), "{data:02x?}");
            }
        };
        for (link, data) in &whole_only {
            check(*link, data);
        }
        for (link, data) in &frames {
            check(*link, data);
            if parse_ipv4_tcp(*link, data).is_none() {
                continue;
            }
            for cut in 0..data.len() {
                check(*link, &data[..cut]);
            }
            let mut padded = data.clone();
            padded.extend_from_slice(&[0; 6]);
            check(*link, &padded);
            // Header fields at and past their limits.
            let v4: &[(usize, &[u8])] = &[
                (14, &[0x44u8, 0x45, 0x46, 0x4f, 0x55, 0x65][..]),
                (16, &[0, 19, 20, 39, 40, 41, 0xff]),
                (17, &[0, 19, 20, 39, 40, 41, 0xff]),
                (20, &[0x20, 0x40, 0x01, 0x80, 0x1f]),
                (21, &[1, 0xff]),
                (23, &[6, 17, 1]),
                (46, &[0x00, 0x40, 0x50, 0x60, 0xf0, 0x5f]),
                (47, &[0xff, 0x3f, 0x12, 0x02, 0x11]),
            ];
            let v6: &[(usize, &[u8])] = &[
                (14, &[0x40u8, 0x50, 0x60, 0x6f, 0x70]),
                (18, &[0, 1, 0xff]),
                (19, &[0, 19, 20, 21, 0xff]),
                (20, &[0, 6, 17, 43, 44, 58, 60]),
                (66, &[0x00, 0x40, 0x50, 0x60, 0xf0, 0x5f]),
                (67, &[0xff, 0x3f, 0x12, 0x02, 0x11]),
            ];
            let fields = if data.get(12..14) == Some(&[0x86, 0xdd][..]) {
                v6
            } else {
                v4
            };
            for &(at, values) in fields {
                for v in values.iter().filter(|_| at < data.len()) {
                    let mut altered = data.clone();
                    altered[at] = *v;
                    check(*link, &altered);
                }
            }
        }
        assert!(fast > 1000 && checked > fast, "{fast} fast of {checked}");
        let v6 = eth_ipv6_tcp_syn();
        let p = parse_ipv4_tcp(LinkType::Ethernet, &v6).expect("IPv6 TCP takes the fast path");
        assert_eq!(p.src.to_string(), "2001:db8::a");
        assert_eq!((p.dst_port, tcp::letters(p.tcp_flags)), (443, "S"));
    }

    #[test]
    fn arp_and_garbage() {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[0; 20]);
        assert_eq!(parse(LinkType::Ethernet, &arp), Err(PacketError::NotIp));
        assert!(parse(LinkType::Ethernet, &[1, 2, 3]).is_err());
        assert!(parse(LinkType::LinuxSll, &[0; 5]).is_err());
        assert!(parse(LinkType::Raw, &[]).is_err());
    }
}
