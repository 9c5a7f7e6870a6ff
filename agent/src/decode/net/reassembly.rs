//! Bounded reassembly of the first bytes of each TCP direction, so that an
//! HTTP request head or a TLS ClientHello split over several segments is
//! parsed whole.
//!
//! Only the head of a stream is reassembled: the bytes from the first data
//! byte (the SYN's sequence number + 1, or the first data segment's when no
//! SYN was seen) while they start like an HTTP request or a TLS handshake
//! record and are not complete yet ([`head_status`]). A head that one
//! segment holds entirely is judged from that segment, as every later
//! segment is, without copying. Limits:
//! - at most [`MAX_HEAD_BYTES`] per direction; a head still incomplete
//!   then is judged as it is;
//! - segments ahead of the next expected byte are held, at most
//!   [`MAX_HELD_SEGMENTS`] per direction, and only within the head's
//!   window; more are not held (a gap that never fills ends the head at
//!   flow end);
//! - overlapping bytes: the first copy received wins (retransmissions and
//!   overlaps cannot rewrite what was judged);
//! - all flows together hold at most [`MAX_TABLE_REASSEMBLY_BYTES`]
//!   ([`Budget`]); a head that would pass it is judged as it is and
//!   counted in [`Budget::evicted`].
//!
//! A head still pending when its flow ends is judged then (what arrived).
//! IP fragments and frames the capture cut short (snap length) are not
//! reassembled: they are judged alone, as before.

use super::{http, tls};

/// Bytes reassembled per direction at most.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Out-of-order segments held per direction at most.
pub const MAX_HELD_SEGMENTS: usize = 8;
/// Bytes all flows' pending heads hold at most.
pub const MAX_TABLE_REASSEMBLY_BYTES: usize = 16 * 1024 * 1024;

/// Whether bytes at the start of a stream are an application head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadStatus {
    /// Not HTTP or TLS: nothing to reassemble.
    NotApplicable,
    /// Starts like a head that is not complete yet.
    Incomplete,
    /// A complete HTTP request head or TLS record.
    Complete,
}

/// Classifies `b`, the first bytes of a stream (cheap: no parsing).
pub fn head_status(b: &[u8]) -> HeadStatus {
    if http::looks_like_request(b) {
        let ended = memchr::memmem::find(b, b"\r\n\r\n").is_some()
            || memchr::memmem::find(b, b"\n\n").is_some();
        return if ended {
            HeadStatus::Complete
        } else {
            HeadStatus::Incomplete
        };
    }
    if tls::looks_like_client_hello(b) {
        let record = 5 + usize::from(u16::from_be_bytes([b[3], b[4]]));
        return if b.len() >= record {
            HeadStatus::Complete
        } else {
            HeadStatus::Incomplete
        };
    }
    // Too short to tell: a prefix of a method and its space, or of a
    // handshake record header.
    let short_http = b.len() < 9
        && http::METHODS
            .iter()
            .any(|m| m.len() >= b.len() && m.as_bytes().starts_with(b));
    let short_tls =
        b.len() < 6 && !b.is_empty() && b[0] == 0x16 && b.get(1).is_none_or(|&v| v == 3);
    if !b.is_empty() && (short_http || short_tls) {
        HeadStatus::Incomplete
    } else {
        HeadStatus::NotApplicable
    }
}

/// The reassembly memory of a whole flow table.
#[derive(Debug, Default)]
pub struct Budget {
    /// Bytes held by pending heads.
    pub bytes: usize,
    /// Most bytes held ([`MAX_TABLE_REASSEMBLY_BYTES`]).
    pub max_bytes: usize,
    /// Heads judged early because the budget was spent.
    pub evicted: u64,
}

impl Budget {
    /// An empty budget of `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Budget {
            bytes: 0,
            max_bytes,
            evicted: 0,
        }
    }
}

/// One direction's head reassembly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamHead {
    state: State,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum State {
    /// Neither a SYN nor data seen.
    #[default]
    Unknown,
    /// SYN seen: the head starts at this sequence number.
    Expect(u32),
    /// Collecting a head.
    Collecting(Box<Collect>),
    /// The head was judged (or there is none): segments are judged alone.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Collect {
    /// Index (in its source) of the packet that started collecting.
    index: u64,
    /// Sequence number of the head's first byte.
    base: u32,
    /// Contiguous bytes from `base`.
    data: Vec<u8>,
    /// Segments past the end of `data`: (offset from `base`, bytes).
    held: Vec<(usize, Vec<u8>)>,
}

impl Collect {
    fn bytes(&self) -> usize {
        self.data.len() + self.held.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// Places `bytes` at `off`, first copy wins; merges held segments that
    /// now touch `data`. False when a segment could not be held.
    fn insert(&mut self, off: usize, bytes: &[u8]) -> bool {
        let end = (off + bytes.len()).min(MAX_HEAD_BYTES);
        if end <= off {
            return true;
        }
        let bytes = &bytes[..end - off];
        if off <= self.data.len() {
            if end > self.data.len() {
                self.data.extend_from_slice(&bytes[self.data.len() - off..]);
            }
            self.merge_held();
            true
        } else if self.held.len() < MAX_HELD_SEGMENTS {
            self.held.push((off, bytes.to_vec()));
            true
        } else {
            false
        }
    }

    fn merge_held(&mut self) {
        loop {
            let len = self.data.len();
            let Some(i) = self.held.iter().position(|(o, _)| *o <= len) else {
                return;
            };
            let (o, b) = self.held.swap_remove(i);
            if o + b.len() > len {
                self.data.extend_from_slice(&b[len - o..]);
            }
        }
    }
}

/// What [`StreamHead::segment`] decided for one segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// A head is complete (or as complete as it will get): judge these
    /// bytes as the start of the stream.
    pub head: Option<Vec<u8>>,
    /// Whether the segment should also be judged alone (false for a
    /// segment that starts a head being reassembled: the head stands in).
    pub judge_segment: bool,
}

const JUDGE_ALONE: Fed = Fed {
    head: None,
    judge_segment: true,
};

impl StreamHead {
    /// A SYN with sequence number `seq`: the head starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        if self.state == State::Unknown {
            self.state = State::Expect(seq.wrapping_add(1));
        }
    }

    /// Bytes this direction holds (for the table's budget).
    pub fn held_bytes(&self) -> usize {
        match &self.state {
            State::Collecting(c) => c.bytes(),
            _ => 0,
        }
    }

    /// Takes a pending head (its flow ended): the index of the packet that
    /// started it and its bytes. The budget was returned when the flow left
    /// the table.
    pub fn take_pending(&mut self) -> Option<(u64, Vec<u8>)> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Collecting(c) if !c.data.is_empty() => Some((c.index, c.data)),
            _ => None,
        }
    }

    /// A data segment with sequence number `seq`, the `index`-th packet of
    /// its source.
    pub fn segment(&mut self, seq: u32, payload: &[u8], index: u64, budget: &mut Budget) -> Fed {
        let base = match &self.state {
            State::Done => return JUDGE_ALONE,
            State::Unknown => seq,
            State::Expect(base) => *base,
            State::Collecting(c) => c.base,
        };
        // Offset from the head's start, in sequence space; a segment that
        // begins before it keeps only its bytes from the start on.
        let delta = seq.wrapping_sub(base);
        let (off, bytes) = if delta > u32::MAX / 2 {
            let before = base.wrapping_sub(seq) as usize;
            if before >= payload.len() {
                return JUDGE_ALONE;
            }
            (0, &payload[before..])
        } else {
            (delta as usize, payload)
        };
        if off >= MAX_HEAD_BYTES {
            // Far past the head: it was lost; judge segments alone from now.
            return self.finish(budget, true);
        }
        let starts_head = off == 0;
        if !matches!(self.state, State::Collecting(_)) {
            if starts_head && head_status(bytes) != HeadStatus::Incomplete {
                // The common case: a head one segment holds, or no head.
                self.state = State::Done;
                return JUDGE_ALONE;
            }
            self.state = State::Collecting(Box::new(Collect {
                index,
                base,
                data: Vec::new(),
                held: Vec::new(),
            }));
        }
        let State::Collecting(c) = &mut self.state else {
            return JUDGE_ALONE;
        };
        let before = c.bytes();
        let placed = c.insert(off, bytes);
        // Merging can also shrink what is held (overlaps dropped).
        budget.bytes = budget.bytes - before + c.bytes();
        let judge_segment = !starts_head;
        if budget.bytes > budget.max_bytes {
            budget.evicted += 1;
            return self.finish(budget, judge_segment);
        }
        let status = if c.data.is_empty() {
            HeadStatus::Incomplete
        } else {
            head_status(&c.data)
        };
        if !placed || status != HeadStatus::Incomplete || c.data.len() >= MAX_HEAD_BYTES {
            return self.finish(budget, judge_segment);
        }
        Fed {
            head: None,
            judge_segment,
        }
    }

    /// Ends the head: returns its bytes (if any arrived) for judging and
    /// gives its memory back to `budget`.
    fn finish(&mut self, budget: &mut Budget, judge_segment: bool) -> Fed {
        budget.bytes -= self.held_bytes();
        Fed {
            head: self.take_pending().map(|(_, data)| data),
            judge_segment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget::new(MAX_TABLE_REASSEMBLY_BYTES)
    }

    #[test]
    fn status_of_heads() {
        assert_eq!(
            head_status(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            HeadStatus::Complete
        );
        assert_eq!(
            head_status(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            HeadStatus::Incomplete
        );
        assert_eq!(head_status(b"GE"), HeadStatus::Incomplete);
        assert_eq!(head_status(b"\x16\x03"), HeadStatus::Incomplete);
        assert_eq!(
            head_status(b"SSH-2.0-OpenSSH\r\n"),
            HeadStatus::NotApplicable
        );
        assert_eq!(head_status(b""), HeadStatus::NotApplicable);
    }

    #[test]
    fn a_whole_head_in_one_segment_is_judged_alone() {
        let mut s = StreamHead::default();
        let mut b = budget();
        s.syn(999);
        let fed = s.segment(1000, b"GET / HTTP/1.1\r\n\r\n", 0, &mut b);
        assert_eq!(fed, JUDGE_ALONE);
        assert_eq!(
            s.segment(1018, b"GET /2 HTTP/1.1\r\n\r\n", 0, &mut b),
            JUDGE_ALONE
        );
        assert_eq!(b.bytes, 0);
    }

    #[test]
    fn a_split_head_is_joined_in_order_and_out_of_order() {
        let head = b"GET /admin/login.php HTTP/1.1\r\nHost: victim\r\nUser-Agent: sqlmap\r\n\r\n";
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]] {
            let parts = [&head[..10], &head[10..40], &head[40..]];
            let offs = [0usize, 10, 40];
            let mut s = StreamHead::default();
            let mut b = budget();
            s.syn(41);
            let mut got = None;
            for i in order {
                let fed = s.segment(42 + offs[i] as u32, parts[i], 0, &mut b);
                assert_eq!(fed.judge_segment, i != 0, "{order:?}");
                if let Some(h) = fed.head {
                    assert!(got.is_none());
                    got = Some(h);
                }
            }
            assert_eq!(got.as_deref(), Some(&head[..]), "{order:?}");
            assert_eq!(b.bytes, 0, "{order:?}");
        }
    }

    #[test]
    fn overlaps_keep_the_first_copy_and_sequence_numbers_wrap() {
        let mut s = StreamHead::default();
        let mut b = budget();
        let base = u32::MAX - 3;
        s.syn(base.wrapping_sub(1));
        assert!(s.segment(base, b"GET /ok", 0, &mut b).head.is_none());
        // A retransmission that rewrites the target and adds more.
        let fed = s.segment(base.wrapping_add(5), b"EVIL HTTP/1.1\r\n\r\n", 0, &mut b);
        assert_eq!(
            fed.head.as_deref(),
            Some(&b"GET /okIL HTTP/1.1\r\n\r\n"[..])
        );
    }

    #[test]
    fn a_head_that_never_completes_is_cut_at_the_cap() {
        let mut s = StreamHead::default();
        let mut b = budget();
        let mut seq = 7u32;
        let first = b"POST /x HTTP/1.1\r\nX: ";
        assert!(s.segment(seq, first, 0, &mut b).head.is_none());
        seq += first.len() as u32;
        let filler = vec![b'a'; 1000];
        let head = loop {
            let fed = s.segment(seq, &filler, 0, &mut b);
            seq += 1000;
            if let Some(h) = fed.head {
                break h;
            }
            assert!(b.bytes <= MAX_HEAD_BYTES);
        };
        assert_eq!(head.len(), MAX_HEAD_BYTES);
        assert_eq!(b.bytes, 0);
        assert_eq!(
            s.segment(seq, b"GET / HTTP/1.1\r\n\r\n", 0, &mut b),
            JUDGE_ALONE
        );
    }

    #[test]
    fn held_segments_are_bounded_and_a_lost_start_gives_up() {
        let mut s = StreamHead::default();
        let mut b = budget();
        s.syn(0);
        for i in 0..MAX_HELD_SEGMENTS as u32 {
            let fed = s.segment(100 + i * 10, b"xxxxxxxxxx", 0, &mut b);
            assert!(fed.head.is_none() && fed.judge_segment);
        }
        assert_eq!(b.bytes, MAX_HELD_SEGMENTS * 10);
        // One more cannot be held: the head is given up (nothing contiguous).
        let fed = s.segment(500, b"yy", 0, &mut b);
        assert!(fed.head.is_none());
        assert_eq!(b.bytes, 0);
        assert_eq!(s.segment(1, b"GET", 0, &mut b), JUDGE_ALONE);
    }

    #[test]
    fn the_table_budget_is_a_hard_cap_with_counted_eviction() {
        let mut b = Budget::new(100);
        let mut a = StreamHead::default();
        assert!(
            a.segment(
                0,
                b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                0,
                &mut b
            )
            .head
            .is_none()
        );
        let mut c = StreamHead::default();
        let fed = c.segment(0, b"GET /bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0, &mut b);
        assert!(fed.head.is_some_and(|h| h.starts_with(b"GET /bbb")));
        assert_eq!(b.evicted, 1);
        assert!(b.bytes <= 100);
        assert_eq!(b.bytes, a.held_bytes());
    }
}
