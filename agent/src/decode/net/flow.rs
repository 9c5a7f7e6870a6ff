//! The flow table: one entry per 5-tuple, both directions together.
//!
//! A flow's initiator is the sender of its first packet seen. Flows end on
//! an idle timeout (TCP [`FlowConfig::tcp_timeout`], closed TCP
//! [`FlowConfig::closed_timeout`], UDP and others
//! [`FlowConfig::udp_timeout`]), when a closed TCP flow's 5-tuple opens
//! again, at the end of a capture, or by eviction: the table holds at most
//! [`FlowConfig::max_flows`] flows, and when it is full the least recently
//! seen tenth is ended early and counted in [`FlowTable::evicted`].
//! Time is packet time in microseconds, never the wall clock, so a replayed
//! capture ends the same flows as live capture did.
//!
//! Each flow keeps its first frames as evidence
//! ([`FlowConfig::max_flow_frames`], at most
//! [`FlowConfig::max_flow_frame_bytes`] bytes, the last one cut to fit as a
//! snap length would), and the whole table holds at most
//! [`FlowConfig::max_frame_bytes`] of them: past that, new frames are not
//! kept (counted in [`FlowTable::frames_not_kept`]) until flows end. Frames
//! past a flow's own limits are counted too
//! ([`FlowTable::frames_past_flow_cap`]), so that the agent can say how
//! much traffic it judged but holds no evidence of. Events
//! get the frames through [`FlowTable::frames`] (a shared snapshot, no copy).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::packet::{FRAGMENT, Packet, Proto, TRUNCATED, tcp};
use super::reassembly::{Budget, MAX_TABLE_REASSEMBLY_BYTES, StreamHead};
use crate::event::{FrameSet, Frames};

/// Frames kept per flow by default.
pub const MAX_FLOW_FRAMES: usize = 16;
/// Bytes of frames kept per flow by default.
pub const MAX_FLOW_FRAME_BYTES: usize = 16 * 1024;
/// Bytes of frames the whole table keeps by default.
pub const MAX_TABLE_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// A frame handed to [`FlowTable::packet_with_frame`] to keep as evidence.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// pcap `LINKTYPE_*`.
    pub linktype: u32,
    /// The frame as captured.
    pub data: &'a [u8],
}

/// Limits and timeouts of a [`FlowTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// Idle time after which an open TCP flow ends, in µs.
    pub tcp_timeout: i64,
    /// Idle time after which a TCP flow that saw FIN or RST ends, in µs.
    pub closed_timeout: i64,
    /// Idle time after which a UDP, ICMP or other flow ends, in µs.
    pub udp_timeout: i64,
    /// Most flows held at once.
    pub max_flows: usize,
    /// Frames kept per flow ([`MAX_FLOW_FRAMES`]; 0 keeps none).
    pub max_flow_frames: usize,
    /// Bytes of frames kept per flow ([`MAX_FLOW_FRAME_BYTES`]).
    pub max_flow_frame_bytes: usize,
    /// Bytes of frames kept by the whole table ([`MAX_TABLE_FRAME_BYTES`]).
    pub max_frame_bytes: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            tcp_timeout: 300_000_000,
            closed_timeout: 5_000_000,
            udp_timeout: 60_000_000,
            max_flows: 100_000,
            max_flow_frames: MAX_FLOW_FRAMES,
            max_flow_frame_bytes: MAX_FLOW_FRAME_BYTES,
            max_frame_bytes: MAX_TABLE_FRAME_BYTES,
        }
    }
}

/// The 5-tuple of a flow, as seen from its initiator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// Initiator address.
    pub src: IpAddr,
    /// Responder address.
    pub dst: IpAddr,
    /// Initiator port.
    pub src_port: u16,
    /// Responder port.
    pub dst_port: u16,
    /// Transport protocol.
    pub proto: Proto,
}

/// An address as one integer, IPv4 ones marked apart from IPv6 ones.
fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)) | 1 << 127,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Hashed as three integers (one hash per packet): the derived hash
/// would feed each address byte by byte. Keys equal by `Eq` hash alike.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let proto = match self.proto {
            Proto::Tcp => 256,
            Proto::Udp => 257,
            Proto::Icmp => 258,
            Proto::Icmpv6 => 259,
            Proto::Other(n) => u64::from(n),
        };
        h.write_u128(addr_bits(self.src));
        h.write_u128(addr_bits(self.dst));
        h.write_u64(u64::from(self.src_port) << 48 | u64::from(self.dst_port) << 32 | proto);
    }
}

impl FlowKey {
    /// The same flow seen from its responder.
    pub fn reversed(self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            proto: self.proto,
        }
    }
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Idle longer than its timeout.
    Timeout,
    /// The 5-tuple opened again after the flow closed.
    Reused,
    /// Evicted because the table was full.
    Evicted,
    /// The capture ended.
    EndOfCapture,
}

impl EndReason {
    /// As rules see it in `end_reason`.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Reused => "reused",
            EndReason::Evicted => "evicted",
            EndReason::EndOfCapture => "end_of_capture",
        }
    }
}

/// One flow's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The flow's 5-tuple from its initiator.
    pub key: FlowKey,
    /// First packet time, µs since the epoch.
    pub first_us: i64,
    /// Last packet time, µs since the epoch.
    pub last_us: i64,
    /// Packets from the initiator / from the responder.
    pub packets: [u64; 2],
    /// Captured bytes from the initiator / from the responder.
    pub bytes: [u64; 2],
    /// TCP flags seen from the initiator / from the responder (ORed).
    pub flags: [u8; 2],
    /// Index (in its source) of the flow's first packet; names its events.
    pub first_index: u64,
    /// The flow's first frames, kept as evidence (`None` when none kept).
    pub frames: Option<Frames>,
    /// Bytes in `frames`.
    pub frame_bytes: usize,
    /// Head reassembly from the initiator / from the responder.
    pub heads: [StreamHead; 2],
}

impl Flow {
    fn reassembly_bytes(&self) -> usize {
        self.heads[0].held_bytes() + self.heads[1].held_bytes()
    }

    fn closed(&self) -> bool {
        let all = self.flags[0] | self.flags[1];
        all & tcp::RST != 0 || (self.flags[0] & tcp::FIN != 0 && self.flags[1] & tcp::FIN != 0)
    }

    /// Zeek-style connection state: `S0` (SYN, no reply), `REJ` (SYN
    /// answered by RST), `S1` (established, not closed), `SF` (closed
    /// normally), `RSTO`/`RSTR` (reset by initiator/responder), `SH` (SYN
    /// then FIN, no reply), `OTH` (no SYN seen; also every non-TCP flow).
    pub fn conn_state(&self) -> &'static str {
        if self.key.proto != Proto::Tcp {
            return "OTH";
        }
        let [o, r] = self.flags;
        let syn = o & tcp::SYN != 0;
        let synack = r & tcp::SYN != 0 && r & tcp::ACK != 0;
        if !syn {
            "OTH"
        } else if !synack {
            if r & tcp::RST != 0 {
                "REJ"
            } else if o & tcp::FIN != 0 {
                "SH"
            } else if o & tcp::RST != 0 {
                "RSTOS0"
            } else {
                "S0"
            }
        } else if o & tcp::RST != 0 {
            "RSTO"
        } else if r & tcp::RST != 0 {
            "RSTR"
        } else if o & tcp::FIN != 0 && r & tcp::FIN != 0 {
            "SF"
        } else {
            "S1"
        }
    }
}

/// What a packet did to the table.
#[derive(Debug, Default)]
pub struct Update {
    /// The packet opened a new flow.
    pub new_flow: bool,
    /// The packet was sent by the flow's initiator.
    pub from_initiator: bool,
    /// The flow's key.
    pub key: Option<FlowKey>,
    /// A stream head this packet completed (see [`super::reassembly`]):
    /// the bytes to judge as the start of the packet's direction.
    pub head: Option<Vec<u8>>,
    /// The packet's payload starts a head being reassembled: judge the
    /// head when it is complete, not the payload alone.
    pub skip_payload: bool,
}

/// Flows by 5-tuple, with timeouts and a hard cap.
#[derive(Debug)]
pub struct FlowTable {
    config: FlowConfig,
    /// Keyed by the ordered 5-tuple (both directions); a keyed fast hash,
    /// since flow keys are chosen by whoever sends packets.
    flows: HashMap<TableKey, Flow, foldhash::fast::RandomState>,
    next_sweep_us: i64,
    /// No held flow times out at or before this packet time, µs: a sweep
    /// that would end nothing is skipped (see [`FlowTable::expire`]).
    expiry_floor_us: i64,
    /// Flows ended early because the table was full.
    pub evicted: u64,
    /// Bytes of frames the held flows keep.
    frame_bytes: usize,
    /// Frames a flow would have kept but the table's frame budget was spent.
    pub frames_not_kept: u64,
    /// Frames not kept because their flow had kept its
    /// [`FlowConfig::max_flow_frames`] or [`FlowConfig::max_flow_frame_bytes`].
    pub frames_past_flow_cap: u64,
    /// Memory of the flows' pending stream heads.
    pub reassembly: Budget,
}

/// Where [`FlowTable::keep`] counts the frames it refuses.
struct Refused<'a> {
    table_full: &'a mut u64,
    past_flow_cap: &'a mut u64,
}

/// Packet time between two timeout sweeps, µs.
const SWEEP_EVERY_US: i64 = 1_000_000;

impl FlowTable {
    /// An empty table.
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            config,
            flows: HashMap::with_capacity_and_hasher(
                config.max_flows.min(4096),
                foldhash::fast::RandomState::default(),
            ),
            next_sweep_us: i64::MIN,
            expiry_floor_us: i64::MIN,
            evicted: 0,
            frame_bytes: 0,
            frames_not_kept: 0,
            frames_past_flow_cap: 0,
            reassembly: Budget::new(MAX_TABLE_REASSEMBLY_BYTES),
        }
    }

    /// Bytes of frames the held flows keep (at most
    /// [`FlowConfig::max_frame_bytes`]).
    pub fn frame_bytes(&self) -> usize {
        self.frame_bytes
    }

    /// The frames kept so far for the flow `key` (either direction), as a
    /// shared snapshot: later frames do not change it.
    pub fn frames(&self, key: &FlowKey) -> Option<Frames> {
        self.flows.get(&TableKey::of(key))?.frames.clone()
    }

    /// Takes a flow out of the table, returning its frame budget.
    fn remove(&mut self, k: &TableKey) -> Option<Flow> {
        let f = self.flows.remove(k)?;
        self.frame_bytes -= f.frame_bytes;
        self.reassembly.bytes -= f.reassembly_bytes();
        Some(f)
    }

    /// Keeps `frame` in `flow` if the flow's and the table's limits allow.
    fn keep(
        config: &FlowConfig,
        table_bytes: &mut usize,
        refused: Refused<'_>,
        flow: &mut Flow,
        frame: &RawFrame<'_>,
    ) {
        if config.max_flow_frames == 0 || frame.data.is_empty() {
            return;
        }
        let count = flow.frames.as_ref().map_or(0, |f| f.len());
        let room = config
            .max_flow_frame_bytes
            .saturating_sub(flow.frame_bytes)
            .min(frame.data.len());
        if count >= config.max_flow_frames || room == 0 {
            *refused.past_flow_cap += 1;
            return;
        }
        if *table_bytes + room > config.max_frame_bytes {
            *refused.table_full += 1;
            return;
        }
        // One buffer per flow: a snapshot an event still holds is left as
        // it is (the set is copied first), which in replay, where events
        // are judged before the next frame, only cached building-block
        // evidence makes happen.
        let frames = flow.frames.get_or_insert_with(|| {
            Arc::new(FrameSet::with_capacity(config.max_flow_frames.min(8)))
        });
        Arc::make_mut(frames).push(
            frame.ts_ns,
            frame.linktype,
            u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
            &frame.data[..room],
            config.max_flow_frame_bytes,
        );
        flow.frame_bytes += room;
        *table_bytes += room;
    }

    /// Flows held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Accounts one packet seen at `ts_us` (its `index` in its source),
    /// keeping no frame. Flows that end meanwhile are appended to `ended`.
    pub fn packet(
        &mut self,
        p: &Packet<'_>,
        ts_us: i64,
        index: u64,
        ended: &mut Vec<(Flow, EndReason)>,
    ) -> Update {
        self.account(p, ts_us, index, None, ended)
    }

    /// [`FlowTable::packet`], keeping `frame` as evidence within the limits.
    pub fn packet_with_frame(
        &mut self,
        p: &Packet<'_>,
        ts_us: i64,
        index: u64,
        frame: RawFrame<'_>,
        ended: &mut Vec<(Flow, EndReason)>,
    ) -> Update {
        self.account(p, ts_us, index, Some(frame), ended)
    }

    fn account(
        &mut self,
        p: &Packet<'_>,
        ts_us: i64,
        index: u64,
        frame: Option<RawFrame<'_>>,
        ended: &mut Vec<(Flow, EndReason)>,
    ) -> Update {
        if ts_us >= self.next_sweep_us {
            if ts_us > self.expiry_floor_us {
                self.expire(ts_us, ended);
            }
            self.next_sweep_us = ts_us.saturating_add(SWEEP_EVERY_US);
        }
        // ICMP: type/code are not a conversation; one flow per address pair.
        let (sp, dp) = if matches!(p.proto, Proto::Icmp | Proto::Icmpv6) {
            (0, 0)
        } else {
            (p.src_port, p.dst_port)
        };
        let fwd = FlowKey {
            src: p.src,
            dst: p.dst,
            src_port: sp,
            dst_port: dp,
            proto: p.proto,
        };
        // Both directions share one entry under the ordered 5-tuple: one
        // hash lookup per packet.
        let canon = TableKey::of(&fwd);
        let is_syn = p.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN;
        let min_timeout = self.min_timeout();
        if let Some(flow) = self.flows.get_mut(&canon) {
            if !(is_syn && flow.closed()) {
                let dir = usize::from(!(flow.key.src == p.src && flow.key.src_port == sp));
                flow.last_us = flow.last_us.max(ts_us);
                // A packet may shorten the flow's timeout (it closed).
                self.expiry_floor_us = self
                    .expiry_floor_us
                    .min(flow.last_us.saturating_add(min_timeout));
                flow.packets[dir] += 1;
                flow.bytes[dir] += p.len as u64;
                flow.flags[dir] |= p.tcp_flags;
                if let Some(frame) = &frame {
                    Self::keep(
                        &self.config,
                        &mut self.frame_bytes,
                        Refused {
                            table_full: &mut self.frames_not_kept,
                            past_flow_cap: &mut self.frames_past_flow_cap,
                        },
                        flow,
                        frame,
                    );
                }
                let mut update = Update {
                    new_flow: false,
                    from_initiator: dir == 0,
                    key: Some(flow.key),
                    ..Update::default()
                };
                Self::reassemble(&mut self.reassembly, flow, dir, p, index, &mut update);
                return update;
            }
            // A SYN on a closed TCP flow starts a new one.
            if let Some(old) = self.remove(&canon) {
                ended.push((old, EndReason::Reused));
            }
        }
        if self.flows.len() >= self.config.max_flows {
            self.evict(ended);
        }
        self.expiry_floor_us = self.expiry_floor_us.min(ts_us.saturating_add(min_timeout));
        let mut flow = Flow {
            key: fwd,
            first_us: ts_us,
            last_us: ts_us,
            packets: [1, 0],
            bytes: [p.len as u64, 0],
            flags: [p.tcp_flags, 0],
            first_index: index,
            frames: None,
            frame_bytes: 0,
            heads: Default::default(),
        };
        if let Some(frame) = &frame {
            Self::keep(
                &self.config,
                &mut self.frame_bytes,
                Refused {
                    table_full: &mut self.frames_not_kept,
                    past_flow_cap: &mut self.frames_past_flow_cap,
                },
                &mut flow,
                frame,
            );
        }
        let mut update = Update {
            new_flow: true,
            from_initiator: true,
            key: Some(fwd),
            ..Update::default()
        };
        Self::reassemble(&mut self.reassembly, &mut flow, 0, p, index, &mut update);
        self.flows.insert(canon, flow);
        update
    }

    /// Feeds a TCP packet to its direction's head reassembly.
    fn reassemble(
        budget: &mut Budget,
        flow: &mut Flow,
        dir: usize,
        p: &Packet<'_>,
        index: u64,
        update: &mut Update,
    ) {
        if p.proto != Proto::Tcp {
            return;
        }
        let head = &mut flow.heads[dir];
        if p.tcp_flags & tcp::SYN != 0 {
            head.syn(p.tcp_seq);
        }
        // A fragment has no place in the stream, and a frame the capture
        // cut short would leave a gap no later segment fills.
        if p.payload.is_empty() || p.anomalies & (FRAGMENT | TRUNCATED) != 0 {
            return;
        }
        let fed = head.segment(p.tcp_seq, p.payload, index, budget);
        update.head = fed.head;
        update.skip_payload = !fed.judge_segment;
    }

    /// The shortest of the timeouts: no flow seen at `t` ends before
    /// `t` plus this.
    fn min_timeout(&self) -> i64 {
        let c = &self.config;
        c.closed_timeout.min(c.tcp_timeout).min(c.udp_timeout)
    }

    /// Ends flows idle past their timeout at `now_us`.
    pub fn expire(&mut self, now_us: i64, ended: &mut Vec<(Flow, EndReason)>) {
        let cfg = self.config;
        // With each flow's first index beside its key: sorting by a
        // lookup in the table per comparison cost more than the sweep.
        let mut done = Vec::new();
        let mut floor = i64::MAX;
        for (k, f) in &self.flows {
            let timeout = match f.key.proto {
                Proto::Tcp if f.closed() => cfg.closed_timeout,
                Proto::Tcp => cfg.tcp_timeout,
                _ => cfg.udp_timeout,
            };
            if now_us.saturating_sub(f.last_us) > timeout {
                done.push((f.first_index, *k));
            } else {
                floor = floor.min(f.last_us.saturating_add(timeout));
            }
        }
        self.expiry_floor_us = floor;
        // Stable, as before: flows with one first index (none are, each
        // packet opens at most one) keep the table's order.
        done.sort_by_key(|(first, _)| *first);
        for (_, k) in done {
            if let Some(f) = self.remove(&k) {
                ended.push((f, EndReason::Timeout));
            }
        }
    }

    /// Ends the least recently seen tenth of the flows.
    fn evict(&mut self, ended: &mut Vec<(Flow, EndReason)>) {
        let mut by_age: Vec<(i64, u64, TableKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.last_us, f.first_index, *k))
            .collect();
        let n = (by_age.len() / 10).max(1);
        by_age.select_nth_unstable_by_key(n - 1, |(t, i, _)| (*t, *i));
        by_age.truncate(n);
        by_age.sort_by_key(|(t, i, _)| (*t, *i));
        for (_, _, k) in by_age {
            if let Some(f) = self.remove(&k) {
                self.evicted += 1;
                ended.push((f, EndReason::Evicted));
            }
        }
    }

    /// Ends every flow (end of a capture), oldest first.
    pub fn drain(&mut self, ended: &mut Vec<(Flow, EndReason)>) {
        let mut all: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        self.frame_bytes = 0;
        self.reassembly.bytes = 0;
        all.sort_by_key(|f| f.first_index);
        ended.extend(all.into_iter().map(|f| (f, EndReason::EndOfCapture)));
    }
}

/// The key both directions of a flow share in the table: the 5-tuple as
/// integers, its two ends in a fixed order (the lower address and port
/// first), so that a packet costs one hash of a few words and integer
/// comparisons. Distinct 5-tuples give distinct keys (the address family
/// is in `rest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TableKey {
    /// The first end's address bits (an IPv4 address in the low 32).
    a: u128,
    /// The second end's address bits.
    b: u128,
    /// The first end's port (bits 48..64), the second's (32..48), the
    /// protocol (2..12), whether each end is IPv4 (bits 1 and 0).
    rest: u64,
}

impl TableKey {
    fn of(k: &FlowKey) -> TableKey {
        let bits = |a: IpAddr| match a {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 1u64),
            IpAddr::V6(a) => (u128::from(a), 0),
        };
        let (s, s4) = bits(k.src);
        let (d, d4) = bits(k.dst);
        let proto = match k.proto {
            Proto::Tcp => 256,
            Proto::Udp => 257,
            Proto::Icmp => 258,
            Proto::Icmpv6 => 259,
            Proto::Other(n) => u64::from(n),
        };
        let ((a, a4, ap), (b, b4, bp)) = if (s4, s, k.src_port) <= (d4, d, k.dst_port) {
            ((s, s4, k.src_port), (d, d4, k.dst_port))
        } else {
            ((d, d4, k.dst_port), (s, s4, k.src_port))
        };
        TableKey {
            a,
            b,
            rest: u64::from(ap) << 48 | u64::from(bp) << 32 | proto << 2 | a4 << 1 | b4,
        }
    }
}

/// Hashed as few words as the key needs: two IPv4 addresses are one.
/// Equal keys hash alike (the words are a function of the fields).
impl std::hash::Hash for TableKey {
    // Inlined into the table lookup of every frame: whether the compiler
    // chose to on its own came and went with unrelated changes (8 M
    // instructions of the pcap replay when it did not).
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        if self.rest & 3 == 3 {
            h.write_u64((self.a as u64) << 32 | self.b as u64);
        } else {
            h.write_u128(self.a);
            h.write_u128(self.b);
        }
        h.write_u64(self.rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pkt(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16, flags: u8) -> Packet<'static> {
        Packet {
            src: Ipv4Addr::from(src).into(),
            dst: Ipv4Addr::from(dst).into(),
            proto: Proto::Tcp,
            src_port: sp,
            dst_port: dp,
            tcp_flags: flags,
            tcp_seq: 0,
            payload: &[],
            len: 60,
            anomalies: 0,
        }
    }

    const C: [u8; 4] = [10, 0, 0, 1];
    const S: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn handshake_close_and_state() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let u = t.packet(&pkt(C, 4000, S, 80, tcp::SYN), 0, 0, &mut ended);
        assert!(u.new_flow && u.from_initiator);
        let u = t.packet(&pkt(S, 80, C, 4000, tcp::SYN | tcp::ACK), 10, 1, &mut ended);
        assert!(!u.new_flow && !u.from_initiator);
        t.packet(&pkt(C, 4000, S, 80, tcp::FIN | tcp::ACK), 20, 2, &mut ended);
        t.packet(&pkt(S, 80, C, 4000, tcp::FIN | tcp::ACK), 30, 3, &mut ended);
        assert_eq!(t.len(), 1);
        // Closed flows end after the short timeout.
        t.packet(&pkt(C, 5000, S, 81, tcp::SYN), 10_000_000, 4, &mut ended);
        assert_eq!(ended.len(), 1);
        let (f, why) = &ended[0];
        assert_eq!((f.conn_state(), *why), ("SF", EndReason::Timeout));
        assert_eq!(f.packets, [2, 2]);
        assert_eq!(f.bytes, [120, 120]);
    }

    #[test]
    fn rejected_and_unanswered() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        t.packet(&pkt(C, 1, S, 22, tcp::SYN), 0, 0, &mut ended);
        t.packet(&pkt(S, 22, C, 1, tcp::RST | tcp::ACK), 1, 1, &mut ended);
        t.packet(&pkt(C, 2, S, 23, tcp::SYN), 2, 2, &mut ended);
        t.drain(&mut ended);
        let states: Vec<_> = ended.iter().map(|(f, _)| f.conn_state()).collect();
        assert_eq!(states, ["REJ", "S0"]);
    }

    #[test]
    fn cap_evicts_oldest_and_counts() {
        let cfg = FlowConfig {
            max_flows: 100,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut ended = Vec::new();
        for i in 0..1000u16 {
            t.packet(
                &pkt(C, i, S, 80, tcp::SYN),
                i64::from(i),
                u64::from(i),
                &mut ended,
            );
            assert!(t.len() <= 100);
        }
        assert_eq!(t.evicted, 900);
        assert!(ended.iter().all(|(_, r)| *r == EndReason::Evicted));
        // The oldest went first.
        assert_eq!(ended[0].0.key.src_port, 0);
    }

    fn frame(ts_ns: i64, len: usize) -> (Vec<u8>, i64) {
        (vec![(ts_ns & 0xff) as u8; len], ts_ns)
    }

    fn feed(
        t: &mut FlowTable,
        p: &Packet<'_>,
        data: &[u8],
        ts_ns: i64,
        ended: &mut Vec<(Flow, EndReason)>,
    ) -> Update {
        t.packet_with_frame(
            p,
            ts_ns / 1000,
            ts_ns as u64,
            RawFrame {
                ts_ns,
                linktype: 1,
                data,
            },
            ended,
        )
    }

    #[test]
    fn a_flow_keeps_its_first_frames_up_to_the_count_cap() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        for i in 0..40 {
            let (data, ts) = frame(i, 100);
            let p = if i % 2 == 0 {
                pkt(C, 4000, S, 80, tcp::ACK)
            } else {
                pkt(S, 80, C, 4000, tcp::ACK)
            };
            feed(&mut t, &p, &data, ts, &mut ended);
        }
        let key = FlowKey {
            src: Ipv4Addr::from(S).into(),
            dst: Ipv4Addr::from(C).into(),
            src_port: 80,
            dst_port: 4000,
            proto: Proto::Tcp,
        };
        // Either direction finds the flow's frames.
        let frames = t.frames(&key).expect("frames kept");
        assert_eq!(frames.len(), MAX_FLOW_FRAMES);
        let times: Vec<i64> = frames.iter().map(|f| f.ts_ns).collect();
        assert_eq!(times, (0..MAX_FLOW_FRAMES as i64).collect::<Vec<_>>());
        assert!(
            frames
                .iter()
                .all(|f| f.linktype == 1 && f.data.len() == 100)
        );
        assert_eq!(frames.bytes(), MAX_FLOW_FRAMES * 100);
        assert_eq!(t.frame_bytes(), MAX_FLOW_FRAMES * 100);
        // The other 24 frames were judged but are not evidence: counted.
        assert_eq!(t.frames_past_flow_cap, 40 - MAX_FLOW_FRAMES as u64);
        assert_eq!(t.frames_not_kept, 0);
        t.drain(&mut ended);
        assert_eq!(t.frame_bytes(), 0);
        assert_eq!(ended[0].0.frames.as_ref().unwrap().len(), MAX_FLOW_FRAMES);
    }

    #[test]
    fn a_flow_keeps_at_most_its_byte_cap_cutting_the_last_frame() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        for i in 0..5 {
            let (data, ts) = frame(i, 6000);
            feed(&mut t, &pkt(C, 1, S, 2, tcp::ACK), &data, ts, &mut ended);
        }
        t.drain(&mut ended);
        let f = &ended[0].0;
        let frames = f.frames.as_ref().unwrap();
        let sizes: Vec<usize> = frames.iter().map(|f| f.data.len()).collect();
        assert_eq!(sizes, [6000, 6000, MAX_FLOW_FRAME_BYTES - 12000]);
        assert_eq!(f.frame_bytes, MAX_FLOW_FRAME_BYTES);
        // The cut frame still says how long it was.
        assert_eq!(frames.get(2).unwrap().orig_len, 6000);
        // The two frames after the byte cap was reached are counted.
        assert_eq!(t.frames_past_flow_cap, 2);
    }

    #[test]
    fn the_table_budget_bounds_all_flows_and_comes_back_when_they_end() {
        let cfg = FlowConfig {
            max_frame_bytes: 10_000,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut ended = Vec::new();
        for i in 0..100u16 {
            let (data, ts) = frame(i64::from(i), 1000);
            feed(&mut t, &pkt(C, i, S, 80, tcp::SYN), &data, ts, &mut ended);
            assert!(t.frame_bytes() <= 10_000);
        }
        assert_eq!(t.frame_bytes(), 10_000);
        assert_eq!(t.frames_not_kept, 90);
        assert_eq!(t.frames_past_flow_cap, 0);
        t.drain(&mut ended);
        let kept = ended.iter().filter(|(f, _)| f.frames.is_some()).count();
        assert_eq!(kept, 10);
        assert_eq!(t.frame_bytes(), 0);
        // With the budget back, a new flow keeps frames again.
        let (data, ts) = frame(1_000_000, 1000);
        feed(&mut t, &pkt(C, 9, S, 80, tcp::SYN), &data, ts, &mut ended);
        assert_eq!(t.frame_bytes(), 1000);
    }

    #[test]
    fn evicted_and_timed_out_flows_return_their_frame_budget() {
        let cfg = FlowConfig {
            max_flows: 10,
            ..FlowConfig::default()
        };
        let mut t = FlowTable::new(cfg);
        let mut ended = Vec::new();
        for i in 0..50u16 {
            let (data, ts) = frame(i64::from(i) * 1000, 200);
            feed(&mut t, &pkt(C, i, S, 80, tcp::SYN), &data, ts, &mut ended);
        }
        assert_eq!(t.frame_bytes(), t.len() * 200);
        // Far later: everything times out.
        let (data, ts) = frame(1_000_000_000_000, 200);
        feed(&mut t, &pkt(C, 999, S, 81, tcp::SYN), &data, ts, &mut ended);
        assert_eq!(t.len(), 1);
        assert_eq!(t.frame_bytes(), 200);
    }

    #[test]
    fn a_snapshot_does_not_change_when_the_flow_keeps_more() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        let (d0, t0) = frame(1, 60);
        let u = feed(&mut t, &pkt(C, 1, S, 2, tcp::SYN), &d0, t0, &mut ended);
        let snap = t.frames(&u.key.unwrap()).unwrap();
        let (d1, t1) = frame(2, 60);
        feed(
            &mut t,
            &pkt(S, 2, C, 1, tcp::SYN | tcp::ACK),
            &d1,
            t1,
            &mut ended,
        );
        assert_eq!(snap.len(), 1);
        assert_eq!(t.frames(&u.key.unwrap()).unwrap().len(), 2);
        // The first frame is the same frame in both, for de-duplication.
        let now = t.frames(&u.key.unwrap()).unwrap();
        assert_eq!(snap.get(0).unwrap().id, now.get(0).unwrap().id);
        assert_ne!(now.get(0).unwrap().id, now.get(1).unwrap().id);
        assert_eq!(snap.get(0), now.get(0));
    }

    #[test]
    fn table_keys_join_directions_and_keep_tuples_apart() {
        use std::net::Ipv6Addr;
        let v4 = |a: [u8; 4]| IpAddr::from(Ipv4Addr::from(a));
        let mapped = |a: [u8; 4]| IpAddr::from(Ipv4Addr::from(a).to_ipv6_mapped());
        let low = |a: [u8; 4]| IpAddr::from(Ipv6Addr::from(u128::from(u32::from_be_bytes(a))));
        let key = |src, sp, dst, dp, proto| FlowKey {
            src,
            dst,
            src_port: sp,
            dst_port: dp,
            proto,
        };
        let mut keys = Vec::new();
        for proto in [Proto::Tcp, Proto::Udp, Proto::Other(6)] {
            for (a, b) in [
                (v4(C), v4(S)),
                (mapped(C), mapped(S)),
                (low(C), low(S)),
                (v4(C), low(S)),
                (low(C), v4(S)),
                (v4(C), v4(C)),
            ] {
                for (sp, dp) in [(1, 2), (2, 1), (1, 1), (0, 65535)] {
                    let k = key(a, sp, b, dp, proto);
                    assert_eq!(TableKey::of(&k), TableKey::of(&k.reversed()), "{k:?}");
                    keys.push(k);
                }
            }
        }
        for (i, x) in keys.iter().enumerate() {
            for y in &keys[i + 1..] {
                let same = x == y || *x == y.reversed();
                assert_eq!(TableKey::of(x) == TableKey::of(y), same, "{x:?} {y:?}");
            }
        }
    }

    #[test]
    fn syn_after_close_starts_a_new_flow() {
        let mut t = FlowTable::new(FlowConfig::default());
        let mut ended = Vec::new();
        t.packet(&pkt(C, 1, S, 22, tcp::SYN), 0, 0, &mut ended);
        t.packet(&pkt(S, 22, C, 1, tcp::RST | tcp::ACK), 1, 1, &mut ended);
        let u = t.packet(&pkt(C, 1, S, 22, tcp::SYN), 2, 2, &mut ended);
        assert!(u.new_flow);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1, EndReason::Reused);
    }
}
