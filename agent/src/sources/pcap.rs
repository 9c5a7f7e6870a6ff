//! pcap and pcapng files as a source of frames, with their timestamps.
//!
//! The format is told by the magic number. Timestamps are the file's own
//! (microsecond or nanosecond pcap; pcapng per interface `if_tsresol` and
//! `if_tsoffset`, decoded by `pcap-file` 3). Frames of link types Ward does
//! not decode are counted in [`PcapStats::unsupported`]. A file that ends
//! inside a record, or has a corrupt record after good ones, yields the
//! frames before it and sets [`PcapStats::damaged`].

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use sha2::{Digest, Sha256};

use crate::decode::net::LinkType;

/// What reading a file found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PcapStats {
    /// Frames handed on.
    pub frames: u64,
    /// Frames of link types Ward does not decode.
    pub unsupported: u64,
    /// Why reading stopped early, if it did.
    pub damaged: Option<String>,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error("{path} is not a pcap or pcapng file: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Bytes of a file hashed to name its events (with its length).
const ID_PREFIX_BYTES: u64 = 1 << 20;

/// A stable name for a capture file: `pcap:` and 12 hex digits of the
/// SHA-256 of its first MiB and its length. The same file gives the same
/// event origins, hence the same alert ids, wherever it is replayed.
pub fn source_id(path: &Path) -> Result<String, PcapError> {
    let io = |source| PcapError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let mut h = Sha256::new();
    let mut buf = Vec::new();
    (&mut f)
        .take(ID_PREFIX_BYTES)
        .read_to_end(&mut buf)
        .map_err(io)?;
    h.update(&buf);
    h.update(len.to_le_bytes());
    Ok(format!("pcap:{}", &hex::encode(h.finalize())[..12]))
}

/// Reads every frame of a pcap or pcapng file in file order, calling
/// `frame(timestamp since the epoch, link type, bytes)`.
pub fn read_file(
    path: &Path,
    mut frame: impl FnMut(Duration, LinkType, &[u8]),
) -> Result<PcapStats, PcapError> {
    let name = path.display().to_string();
    let io = |source| PcapError::Io {
        path: name.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(|e| PcapError::Format {
        path: name.clone(),
        message: format!("too short ({e})"),
    })?;
    let file = File::open(path).map_err(io)?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let mut stats = PcapStats::default();
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut r = PcapNgReader::new(reader).map_err(|e| PcapError::Format {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let mut last_ts = Duration::ZERO;
        while let Some(block) = r.next_block() {
            let (block, state) = match block {
                Ok(b) => b,
                Err(e) => {
                    stats.damaged = Some(e.to_string());
                    break;
                }
            };
            let (iface, ts, data) = match &block {
                Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, &p.data),
                // No timestamp of its own: the previous packet's.
                Block::SimplePacket(p) => (0, last_ts, &p.data),
                Block::Packet(p) => (u32::from(p.interface_id), p.timestamp, &p.data),
                _ => continue,
            };
            let link = state
                .interfaces()
                .get(iface as usize)
                .and_then(|i| LinkType::from_linktype(u32::from(i.linktype)));
            last_ts = ts;
            match link {
                Some(link) => {
                    stats.frames += 1;
                    frame(ts, link, data);
                }
                None => stats.unsupported += 1,
            }
        }
    } else {
        let mut r = PcapReader::new(reader).map_err(|e| PcapError::Format {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let link = LinkType::from_linktype(u32::from(r.header().datalink));
        while let Some(p) = r.next_packet() {
            let p = match p {
                Ok(p) => p,
                Err(e) => {
                    stats.damaged = Some(e.to_string());
                    break;
                }
            };
            match link {
                Some(link) => {
                    stats.frames += 1;
                    frame(p.timestamp(), link, p.data());
                }
                None => stats.unsupported += 1,
            }
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../rules/fixtures/network/port_scan_vertical/positive.pcap")
    }

    #[test]
    fn reads_frames_with_their_timestamps() {
        let mut times = Vec::new();
        let stats = read_file(&fixture(), |ts, link, data| {
            assert_eq!(link, LinkType::Ethernet);
            assert!(data.len() >= 54);
            times.push(ts);
        })
        .unwrap();
        assert_eq!(stats.frames, 60);
        assert_eq!(stats.damaged, None);
        assert_eq!(times[0].as_secs(), 1_795_000_000);
        assert_eq!(times[1].subsec_micros(), 1_000);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_cut_file_yields_the_frames_before_the_cut() {
        let bytes = std::fs::read(fixture()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.pcap");
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let stats = read_file(&cut, |_, _, _| {}).unwrap();
        assert_eq!(stats.frames, 59);
        assert!(stats.damaged.is_some());
        // The id names the content, not the path.
        let copy = dir.path().join("copy.pcap");
        std::fs::write(&copy, &bytes).unwrap();
        assert_eq!(source_id(&copy).unwrap(), source_id(&fixture()).unwrap());
        assert_ne!(source_id(&cut).unwrap(), source_id(&copy).unwrap());
        std::fs::write(&cut, b"xy").unwrap();
        assert!(matches!(
            read_file(&cut, |_, _, _| {}),
            Err(PcapError::Format { .. })
        ));
    }
}
