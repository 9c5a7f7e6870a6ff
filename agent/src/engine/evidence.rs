//! Captured frames as alert evidence.
//!
//! Network events carry their flow's first frames ([`Event::packets`]); the
//! engine only moves them into alerts, bounded: an alert carries at most
//! [`MAX_ALERT_PACKETS`] frames and [`MAX_ALERT_PACKET_BYTES`], time-ordered
//! and without repeats (the events of one flow share its frames). Frames of
//! building-block matches are kept by origin in a [`PacketCache`] (at most
//! [`PacketCache::CAPACITY`] origins and [`PacketCache::CAPACITY_BYTES`]) so
//! a correlation alert carries the frames of the events that made it.
//!
//! [`Event::packets`]: crate::event::Event::packets

use std::collections::{HashMap, HashSet, VecDeque};

use crate::event::Frames;
use crate::wire::{EvidencePacket, MAX_ALERT_PACKET_BYTES, MAX_ALERT_PACKETS};

/// The frames of `sets` as an alert's evidence: in the given order until a
/// cap is reached, repeats (the same shared frame) left out, then sorted by
/// capture time.
pub fn alert_packets<'a>(sets: impl IntoIterator<Item = &'a Frames>) -> Vec<EvidencePacket> {
    let mut seen = HashSet::with_hasher(foldhash::fast::RandomState::default());
    let mut out: Vec<EvidencePacket> = Vec::new();
    let mut bytes = 0;
    'sets: for frames in sets {
        for f in frames.iter() {
            if !seen.insert(f.id) {
                continue;
            }
            if out.len() >= MAX_ALERT_PACKETS || bytes + f.data.len() > MAX_ALERT_PACKET_BYTES {
                break 'sets;
            }
            bytes += f.data.len();
            out.push(EvidencePacket {
                ts_ns: f.ts_ns,
                linktype: f.linktype,
                orig_len: f.orig_len,
                data: f.data.to_vec(),
            });
        }
    }
    out.sort_by_key(|p| p.ts_ns);
    out
}

/// Frames of recent building-block matches by event origin, the oldest
/// forgotten past [`PacketCache::CAPACITY`] origins or
/// [`PacketCache::CAPACITY_BYTES`].
#[derive(Default)]
pub struct PacketCache {
    /// A keyed fast hash (an origin is looked up per building-block match).
    frames: HashMap<String, Frames, foldhash::fast::RandomState>,
    order: VecDeque<(String, usize)>,
    bytes: usize,
}

impl PacketCache {
    /// Origins kept: as many as the building-block lines kept beside them.
    pub const CAPACITY: usize = 50_000;
    /// Bytes of frames kept (counted per origin, shared frames counted again).
    pub const CAPACITY_BYTES: usize = 16 * 1024 * 1024;

    /// Keeps the frames of the event at `origin`, if it has any.
    pub fn insert(&mut self, origin: &str, frames: Option<&Frames>) {
        let Some(frames) = frames else { return };
        if frames.is_empty() || self.frames.contains_key(origin) {
            return;
        }
        let size = frames.bytes();
        while !self.order.is_empty()
            && (self.order.len() >= Self::CAPACITY || self.bytes + size > Self::CAPACITY_BYTES)
        {
            if let Some((old, n)) = self.order.pop_front() {
                self.frames.remove(&old);
                self.bytes -= n;
            }
        }
        self.order.push_back((origin.to_string(), size));
        self.frames.insert(origin.to_string(), frames.clone());
        self.bytes += size;
    }

    /// The alert evidence of the events at `origins` that are still kept.
    pub fn collect<'a>(&self, origins: impl IntoIterator<Item = &'a str>) -> Vec<EvidencePacket> {
        alert_packets(origins.into_iter().filter_map(|o| self.frames.get(o)))
    }

    /// Bytes of frames held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::FrameSet;

    fn frames(start: i64, n: usize, size: usize) -> Frames {
        let mut set = FrameSet::with_capacity(n);
        for i in 0..n {
            set.push(
                start + i as i64,
                1,
                size as u32,
                &vec![i as u8; size],
                usize::MAX,
            );
        }
        Arc::new(set)
    }

    #[test]
    fn an_alert_carries_each_frame_once_in_time_order() {
        let a = frames(100, 3, 60);
        // A later snapshot of the same flow names the first frames alike.
        let mut longer = (*a).clone();
        for f in frames(50, 2, 60).iter() {
            longer.push(f.ts_ns, f.linktype, f.orig_len, f.data, usize::MAX);
        }
        let longer = Arc::new(longer);
        let got = alert_packets([&a, &longer]);
        let times: Vec<i64> = got.iter().map(|p| p.ts_ns).collect();
        assert_eq!(times, [50, 51, 100, 101, 102]);
    }

    #[test]
    fn an_alert_carries_at_most_the_packet_and_byte_caps() {
        let many: Vec<Frames> = (0..100).map(|i| frames(i * 10, 4, 100)).collect();
        let got = alert_packets(&many);
        assert_eq!(got.len(), MAX_ALERT_PACKETS);
        let big: Vec<Frames> = (0..10).map(|i| frames(i * 10, 1, 16 * 1024)).collect();
        let got = alert_packets(&big);
        assert_eq!(got.len(), MAX_ALERT_PACKET_BYTES / (16 * 1024));
        assert!(got.iter().map(|p| p.data.len()).sum::<usize>() <= MAX_ALERT_PACKET_BYTES);
    }

    #[test]
    fn the_cache_forgets_the_oldest_past_its_byte_cap() {
        let mut c = PacketCache::default();
        let size = 16 * 1024;
        let n = PacketCache::CAPACITY_BYTES / size + 10;
        for i in 0..n {
            c.insert(&format!("o{i}"), Some(&frames(i as i64, 1, size)));
            assert!(c.bytes() <= PacketCache::CAPACITY_BYTES);
        }
        assert!(c.collect(["o0"]).is_empty());
        assert_eq!(c.collect([format!("o{}", n - 1).as_str()]).len(), 1);
        // Events without frames take no room.
        c.insert("none", None);
        assert!(c.collect(["none"]).is_empty());
    }
}
