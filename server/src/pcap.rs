//! Captured frames into a capture file Wireshark and tshark open.
//!
//! Frames of one link type make a classic libpcap file with nanosecond
//! timestamps (`application/vnd.tcpdump.pcap`, `.pcap`); frames of several
//! link types (an incident seen by agents on different links) make a pcapng
//! file with one interface per link type (`application/x-pcapng`,
//! `.pcapng`), since a pcap file has one link type. Written with
//! `pcap-file`; nothing here knows HTTP.

use std::borrow::Cow;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption, InterfaceTsResolution,
};
use ward_agent::wire::EvidencePacket;

/// Snap length written in headers: larger than any frame an alert carries.
pub const SNAPLEN: u32 = 262_144;

/// Which file format [`write_capture`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap (one link type).
    Pcap,
    /// pcapng (several link types).
    PcapNg,
}

impl CaptureFormat {
    /// The media type to serve it as.
    pub fn media_type(self) -> &'static str {
        match self {
            CaptureFormat::Pcap => "application/vnd.tcpdump.pcap",
            CaptureFormat::PcapNg => "application/x-pcapng",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            CaptureFormat::Pcap => "pcap",
            CaptureFormat::PcapNg => "pcapng",
        }
    }
}

fn timestamp(p: &EvidencePacket) -> Duration {
    let ns = u64::try_from(p.ts_ns).unwrap_or(0);
    Duration::new(ns / 1_000_000_000, (ns % 1_000_000_000) as u32)
}

/// Writes `packets` (already in the order wanted) as a capture file.
pub fn write_capture(packets: &[EvidencePacket]) -> Result<(Vec<u8>, CaptureFormat), String> {
    let mut links: Vec<u32> = packets.iter().map(|p| p.linktype).collect();
    links.sort_unstable();
    links.dedup();
    let err = |e: &dyn std::fmt::Display| format!("cannot write the capture: {e}");
    if links.len() <= 1 {
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::from(links.first().copied().unwrap_or(1)),
            ts_resolution: pcap_file::pcap::PcapTsResolution::NanoSecond,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).map_err(|e| err(&e))?;
        for p in packets {
            let pkt = PcapPacket::new(timestamp(p), p.wire_len(), Cow::Borrowed(&p.data[..]))
                .map_err(|e| err(&e))?;
            w.write_packet(&pkt).map_err(|e| err(&e))?;
        }
        return Ok((w.into_inner(), CaptureFormat::Pcap));
    }
    let mut w = PcapNgWriter::new(Vec::new()).map_err(|e| err(&e))?;
    for &l in &links {
        let mut idb = InterfaceDescriptionBlock::new(DataLink::from(l), SNAPLEN);
        // Nanosecond timestamps (10^-9).
        idb.options.push(InterfaceDescriptionOption::IfTsResol(
            InterfaceTsResolution::NANO,
        ));
        w.write_pcapng_block(idb).map_err(|e| err(&e))?;
    }
    for p in packets {
        let interface_id = links.binary_search(&p.linktype).unwrap_or(0) as u32;
        let epb = EnhancedPacketBlock {
            interface_id,
            timestamp: timestamp(p),
            original_len: p.wire_len(),
            data: Cow::Borrowed(&p.data[..]),
            options: vec![],
        };
        w.write_pcapng_block(epb).map_err(|e| err(&e))?;
    }
    Ok((w.into_inner(), CaptureFormat::PcapNg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::{Block, PcapNgReader};

    fn pkt(ts_ns: i64, linktype: u32, data: &[u8]) -> EvidencePacket {
        EvidencePacket {
            ts_ns,
            linktype,
            orig_len: data.len() as u32 + 10,
            data: data.to_vec(),
        }
    }

    #[test]
    fn one_link_type_is_a_classic_pcap_that_reads_back() {
        let ps = [
            pkt(1_700_000_000_123_456_789, 1, b"abc"),
            pkt(1_700_000_001_000_000_001, 1, b"defg"),
        ];
        let (bytes, format) = write_capture(&ps).unwrap();
        assert_eq!(format, CaptureFormat::Pcap);
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            assert_eq!(p.data(), &ps[n].data[..]);
            assert_eq!(p.orig_len(), ps[n].orig_len);
            assert_eq!(p.timestamp().as_nanos() as i64, ps[n].ts_ns);
            n += 1;
        }
        assert_eq!(n, 2);
    }

    #[test]
    fn several_link_types_make_a_pcapng_with_one_interface_each() {
        let ps = [
            pkt(1_000_000_000, 1, b"eth"),
            pkt(2_000_000_007, 101, b"raw"),
        ];
        let (bytes, format) = write_capture(&ps).unwrap();
        assert_eq!(format, CaptureFormat::PcapNg);
        let mut r = PcapNgReader::new(&bytes[..]).unwrap();
        let mut seen = Vec::new();
        while let Some(b) = r.next_block() {
            if let (Block::EnhancedPacket(e), _) = b.unwrap() {
                seen.push((
                    e.interface_id,
                    e.timestamp.as_nanos() as i64,
                    e.data.to_vec(),
                ));
            }
        }
        assert_eq!(
            seen,
            [
                (0, 1_000_000_000, b"eth".to_vec()),
                (1, 2_000_000_007, b"raw".to_vec())
            ]
        );
        assert_eq!(r.interfaces()[1].linktype, DataLink::RAW);
    }
}
