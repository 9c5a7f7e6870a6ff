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
    let mut stats = PcapStats::default();
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let reader = BufReader::with_capacity(1 << 20, file);
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
        read_classic(file, &name, &mut stats, frame)?;
    }
    Ok(stats)
}

/// Largest record a classic pcap file may hold (GRO/jumbo frames are far
/// smaller): a larger length is damage, not a frame to buffer.
const MAX_RECORD_BYTES: usize = 16 << 20;

/// Bytes read from a classic pcap file at a time.
const READ_CHUNK_BYTES: usize = 4 << 20;

/// A classic pcap file's header: byte order, timestamp unit, snap length
/// and link type.
struct ClassicHeader {
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    linktype: u32,
}

impl ClassicHeader {
    fn parse(b: &[u8; 24]) -> Option<ClassicHeader> {
        let (big_endian, nanos) = match [b[0], b[1], b[2], b[3]] {
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
            _ => return None,
        };
        let h = ClassicHeader {
            big_endian,
            nanos,
            snaplen: 0,
            linktype: 0,
        };
        Some(ClassicHeader {
            snaplen: h.u32_at(b, 16),
            linktype: h.u32_at(b, 20),
            ..h
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> u32 {
        // One bounds check for the four bytes (read per record).
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[at..at + 4]);
        if self.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    }
}

/// A file read in large chunks, records taken as slices of the chunk.
struct Chunks<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
}

impl<R: Read> Chunks<R> {
    /// Makes at least `n` unread bytes available, reading more as needed;
    /// false when the file ends first. Inlined: nearly every record is
    /// already in the chunk.
    #[inline]
    fn ensure(&mut self, n: usize) -> std::io::Result<bool> {
        if self.len - self.pos >= n {
            return Ok(true);
        }
        self.refill(n)
    }

    /// [`Chunks::ensure`] when the chunk holds fewer than `n` bytes.
    #[inline(never)]
    fn refill(&mut self, n: usize) -> std::io::Result<bool> {
        while self.len - self.pos < n {
            if self.eof {
                return Ok(false);
            }
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
            while self.len < self.buf.len() {
                match self.r.read(&mut self.buf[self.len..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(k) => self.len += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(true)
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }
}

/// Reads a classic (libpcap) file's frames in large chunks, parsing the
/// 16-byte record headers in place: no copy per frame. The checks are
/// `pcap-file`'s: a record cut short, a fraction of a second out of range
/// or a length past the snap length ends the reading as damage.
fn read_classic(
    r: impl Read,
    name: &str,
    stats: &mut PcapStats,
    mut frame: impl FnMut(Duration, LinkType, &[u8]),
) -> Result<(), PcapError> {
    let io = |source| PcapError::Io {
        path: name.to_string(),
        source,
    };
    let mut file = Chunks {
        r,
        buf: vec![0u8; READ_CHUNK_BYTES],
        pos: 0,
        len: 0,
        eof: false,
    };
    let whole = file.ensure(24).map_err(io)?;
    let header = file
        .unread()
        .first_chunk::<24>()
        .and_then(ClassicHeader::parse)
        .ok_or_else(|| PcapError::Format {
            path: name.to_string(),
            message: if whole {
                "unknown magic number".to_string()
            } else {
                "the file header is cut short".to_string()
            },
        })?;
    file.pos += 24;
    let link = LinkType::from_linktype(header.linktype);
    loop {
        if !file.ensure(16).map_err(io)? {
            if !file.unread().is_empty() {
                stats.damaged = Some("the file ends inside a record header".into());
            }
            return Ok(());
        }
        let incl = header.u32_at(file.unread(), 8) as usize;
        if incl > MAX_RECORD_BYTES {
            stats.damaged = Some(format!("a record of {incl} bytes is past any frame size"));
            return Ok(());
        }
        if !file.ensure(16 + incl).map_err(io)? {
            stats.damaged = Some(format!(
                "the file ends inside a record ({} of {} bytes)",
                file.unread().len(),
                16 + incl
            ));
            return Ok(());
        }
        let rec = &file.buf[file.pos..file.pos + 16 + incl];
        file.pos += 16 + incl;
        let (secs, frac) = (header.u32_at(rec, 0), header.u32_at(rec, 4));
        let nanos = match header.nanos {
            true if frac < 1_000_000_000 => frac,
            false if frac < 1_000_000 => frac * 1000,
            _ => {
                stats.damaged = Some(format!("fraction of a second {frac} is out of range"));
                return Ok(());
            }
        };
        if incl > header.snaplen as usize {
            stats.damaged = Some(format!(
                "a record of {incl} bytes is longer than the snap length {}",
                header.snaplen
            ));
            return Ok(());
        }
        match link {
            Some(link) => {
                stats.frames += 1;
                frame(Duration::new(u64::from(secs), nanos), link, &rec[16..]);
            }
            None => stats.unsupported += 1,
        }
    }
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

    /// A classic file in the other byte order with nanosecond stamps,
    /// written by hand: the same frames and times; a record past the snap
    /// length is damage.
    #[test]
    fn big_endian_nanosecond_files_and_snap_length() {
        let frame = [0xabu8; 60];
        let mut f = Vec::new();
        f.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
        f.extend_from_slice(&2u16.to_be_bytes());
        f.extend_from_slice(&4u16.to_be_bytes());
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&64u32.to_be_bytes()); // snap length
        f.extend_from_slice(&1u32.to_be_bytes()); // Ethernet
        for (secs, nanos, len) in [
            (1_795_000_000u32, 123_456_789u32, 60u32),
            (1_795_000_001, 5, 40),
        ] {
            for v in [secs, nanos, len, len] {
                f.extend_from_slice(&v.to_be_bytes());
            }
            f.extend_from_slice(&frame[..len as usize]);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("be.pcap");
        std::fs::write(&path, &f).unwrap();
        let mut got = Vec::new();
        let stats = read_file(&path, |ts, link, data| {
            assert_eq!(link, LinkType::Ethernet);
            got.push((ts, data.len()));
        })
        .unwrap();
        assert_eq!(stats.damaged, None);
        assert_eq!(
            got,
            [
                (Duration::new(1_795_000_000, 123_456_789), 60),
                (Duration::new(1_795_000_001, 5), 40)
            ]
        );
        // A third record longer than the snap length ends the reading.
        for v in [1_795_000_002u32, 0, 65, 65] {
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0; 65]);
        std::fs::write(&path, &f).unwrap();
        let stats = read_file(&path, |_, _, _| {}).unwrap();
        assert_eq!(stats.frames, 2);
        assert!(stats.damaged.unwrap().contains("snap length"));
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
