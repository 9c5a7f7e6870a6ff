//! The durable delivery spool under `STATE/spool/`: alerts and gap records
//! wait here between detection and the coordinator's acknowledgement.
//!
//! Layout: segment files `seg-<id>.log` of records
//! `[len: u32 LE][crc32 of payload: u32 LE][payload: JSON]`, appended and
//! fsynced before [`Spool::append`] returns (the pipeline commits log offsets
//! only after that), and `deleted.log`, the sequence numbers of entries that
//! are gone (acknowledged or dropped), 12 bytes each
//! (`[seq: u64 LE][crc32 of seq: u32 LE]`), fsynced too. A segment whose
//! entries are all deleted is unlinked; a mostly dead sealed segment is
//! rewritten (tmp → fsync → rename).
//!
//! Crash safety: a torn record at the end of a segment (the process died in
//! `write`) was never fsynced, so its log offset was never committed: it is
//! cut off and counted on open, and the source re-reads the line. A
//! complete record whose checksum fails (damage on disk) is skipped,
//! counted, and reported as a `spool_damaged` gap. Nothing here panics on
//! what it reads.
//!
//! The byte cap (`spool_max_bytes`) counts the records of live entries.
//! When an append would exceed it, alerts are dropped lowest severity
//! first, oldest first within a severity (entries being delivered are not
//! candidates), and a `spool_full` gap record saying what was dropped is
//! spooled first. Gap records are never dropped.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::wire::{Alert, GAP_SPOOL_DAMAGED, GAP_SPOOL_FULL, Gap, Severity, packet_bytes};

/// Default byte cap of the spool (256 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Smallest byte cap accepted.
pub const MIN_MAX_BYTES: u64 = 4096;
/// Largest record accepted on read; a bigger length field is damage.
const MAX_RECORD: u32 = 64 * 1024 * 1024;
const HEADER: u64 = 8;
const DELETED_FILE: &str = "deleted.log";
/// Room kept under the cap for the gap record a drop writes.
const GAP_RESERVE: u64 = 1024;

/// What the spool holds.
#[derive(Debug, Clone, PartialEq)]
pub enum SpoolItem {
    /// An alert for the coordinator.
    Alert(Alert),
    /// A gap record for the coordinator.
    Gap(Gap),
}

#[derive(Serialize, Deserialize)]
struct Record {
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alert: Option<Alert>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gap: Option<Gap>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Alert {
        severity: Severity,
        time: DateTime<Utc>,
        packet_bytes: u32,
    },
    Gap,
}

#[derive(Debug, Clone)]
struct Entry {
    seg: u64,
    offset: u64,
    len: u32,
    kind: Kind,
    in_flight: bool,
}

#[derive(Debug, Default, Clone)]
struct SegInfo {
    file_len: u64,
    live: u64,
    live_bytes: u64,
    first_seq: u64,
    last_seq: u64,
}

/// What opening the spool found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Entries waiting for delivery.
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Torn records cut off the end of segments (never acknowledged to a
    /// source, so nothing is lost).
    pub torn_tails: u64,
    /// Bytes cut off with them.
    pub torn_bytes: u64,
    /// Complete records that failed their checksum and were skipped.
    pub damaged: u64,
}

/// The result of an append.
#[derive(Debug, Default, Clone)]
pub struct AppendOutcome {
    /// Items written.
    pub written: u64,
    /// The `spool_full` gap written because alerts had to be dropped.
    pub gap: Option<Gap>,
}

/// The spool.
pub struct Spool {
    dir: PathBuf,
    host: String,
    max_bytes: u64,
    seg_max: u64,
    entries: BTreeMap<u64, Entry>,
    by_severity: [BTreeSet<u64>; 4],
    segments: BTreeMap<u64, SegInfo>,
    active: File,
    active_id: u64,
    deleted: File,
    deleted_count: u64,
    next_seq: u64,
    live_bytes: u64,
    gaps_made: u64,
}

fn sev_index(s: Severity) -> usize {
    match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
        Severity::Critical => 3,
    }
}

const SEVERITIES: [Severity; 4] = [
    Severity::Low,
    Severity::Medium,
    Severity::High,
    Severity::Critical,
];

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:016}.log"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn encode(seq: u64, item: &SpoolItem) -> io::Result<Vec<u8>> {
    let rec = match item {
        SpoolItem::Alert(a) => Record {
            seq,
            alert: Some(a.clone()),
            gap: None,
        },
        SpoolItem::Gap(g) => Record {
            seq,
            alert: None,
            gap: Some(g.clone()),
        },
    };
    let payload = serde_json::to_vec(&rec).map_err(io::Error::other)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD)
        .ok_or_else(|| io::Error::other("spool entry too large"))?;
    let mut out = Vec::with_capacity(payload.len() + HEADER as usize);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

fn kind_of(item: &SpoolItem) -> Kind {
    match item {
        SpoolItem::Alert(a) => Kind::Alert {
            severity: a.severity,
            time: a.time,
            packet_bytes: u32::try_from(packet_bytes(a)).unwrap_or(u32::MAX),
        },
        SpoolItem::Gap(_) => Kind::Gap,
    }
}

fn decode_record(payload: &[u8]) -> Option<(u64, SpoolItem)> {
    let rec: Record = serde_json::from_slice(payload).ok()?;
    match (rec.alert, rec.gap) {
        (Some(a), None) => Some((rec.seq, SpoolItem::Alert(a))),
        (None, Some(g)) => Some((rec.seq, SpoolItem::Gap(g))),
        _ => None,
    }
}

/// One segment's readable records, and what was wrong with it.
struct Scan {
    records: Vec<(u64, u64, u32, SpoolItem)>,
    good_len: u64,
    torn: bool,
    torn_bytes: u64,
    damaged: u64,
}

fn scan_segment(path: &Path) -> io::Result<Scan> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut scan = Scan {
        records: Vec::new(),
        good_len: 0,
        torn: false,
        torn_bytes: 0,
        damaged: 0,
    };
    let mut off = 0usize;
    while off < data.len() {
        let rest = &data[off..];
        if rest.len() < HEADER as usize {
            scan.torn = true;
            break;
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
        if len > MAX_RECORD || rest.len() < HEADER as usize + len as usize {
            scan.torn = true;
            break;
        }
        let payload = &rest[HEADER as usize..HEADER as usize + len as usize];
        let total = HEADER as usize + len as usize;
        match (crc32fast::hash(payload) == crc)
            .then(|| decode_record(payload))
            .flatten()
        {
            Some((seq, item)) => scan.records.push((seq, off as u64, total as u32, item)),
            None => scan.damaged += 1,
        }
        off += total;
        scan.good_len = off as u64;
    }
    scan.torn_bytes = data.len() as u64 - scan.good_len;
    Ok(scan)
}

/// Marks a record of the deleted list as "highest sequence number used"
/// rather than a deleted entry.
const SEQ_MARK: u64 = 1 << 63;

/// The deleted list: deleted sequence numbers and the highest number ever used.
fn read_deleted(path: &Path) -> io::Result<(HashSet<u64>, Option<u64>)> {
    let mut data = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut data)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut set = HashSet::new();
    let mut high = None;
    for rec in data.chunks_exact(12) {
        let seq = u64::from_le_bytes(rec[0..8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(rec[8..12].try_into().unwrap_or_default());
        if crc32fast::hash(&rec[0..8]) == crc {
            if seq & SEQ_MARK != 0 {
                high = high.max(Some(seq & !SEQ_MARK));
            } else {
                high = high.max(Some(seq));
                set.insert(seq);
            }
        }
    }
    Ok((set, high))
}

fn deleted_record(seq: u64) -> [u8; 12] {
    let mut r = [0u8; 12];
    r[0..8].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32fast::hash(&r[0..8]);
    r[8..12].copy_from_slice(&crc.to_le_bytes());
    r
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Spool {
    /// Opens (creating) the spool in `dir`, recovering from a crash: torn
    /// tails are cut, damaged records skipped and counted (and spooled as a
    /// `spool_damaged` gap), deleted entries forgotten.
    pub fn open(dir: &Path, max_bytes: u64, host: &str) -> io::Result<(Spool, OpenReport)> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let max_bytes = max_bytes.max(MIN_MAX_BYTES);
        let (deleted, mut max_seq) = read_deleted(&dir.join(DELETED_FILE))?;
        let mut ids: Vec<u64> = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name
                .strip_prefix("seg-")
                .and_then(|r| r.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(id);
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        ids.sort_unstable();
        let mut report = OpenReport::default();
        let mut entries = BTreeMap::new();
        let mut by_severity: [BTreeSet<u64>; 4] = Default::default();
        let mut segments = BTreeMap::new();
        let mut live_bytes = 0;
        for &id in &ids {
            let path = seg_path(dir, id);
            let scan = scan_segment(&path)?;
            if scan.torn {
                report.torn_tails += 1;
                report.torn_bytes += scan.torn_bytes;
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(scan.good_len)?;
            }
            report.damaged += scan.damaged;
            let mut info = SegInfo {
                file_len: scan.good_len,
                first_seq: u64::MAX,
                ..SegInfo::default()
            };
            for (seq, offset, len, item) in scan.records {
                max_seq = max_seq.max(Some(seq));
                info.first_seq = info.first_seq.min(seq);
                info.last_seq = info.last_seq.max(seq);
                if deleted.contains(&seq) || entries.contains_key(&seq) {
                    continue;
                }
                let kind = kind_of(&item);
                if let Kind::Alert { severity, .. } = kind {
                    by_severity[sev_index(severity)].insert(seq);
                }
                entries.insert(
                    seq,
                    Entry {
                        seg: id,
                        offset,
                        len,
                        kind,
                        in_flight: false,
                    },
                );
                info.live += 1;
                info.live_bytes += u64::from(len);
                live_bytes += u64::from(len);
            }
            segments.insert(id, info);
        }
        // Rewrite the deleted list with what still matters (atomically).
        let mut keep = Vec::new();
        for info in segments.values() {
            if info.first_seq > info.last_seq {
                continue;
            }
            for seq in deleted.iter().copied() {
                if seq >= info.first_seq && seq <= info.last_seq && !entries.contains_key(&seq) {
                    keep.extend_from_slice(&deleted_record(seq));
                }
            }
        }
        // Keep the highest sequence number ever used, so new entries never
        // reuse a number the list names.
        if let Some(m) = max_seq {
            keep.extend_from_slice(&deleted_record(m | SEQ_MARK));
        }
        let tmp = dir.join("deleted.log.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&keep)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(DELETED_FILE))?;
        let active_id = ids.last().map_or(0, |l| l + 1);
        let active = open_append(&seg_path(dir, active_id))?;
        sync_dir(dir)?;
        segments.insert(
            active_id,
            SegInfo {
                first_seq: u64::MAX,
                ..SegInfo::default()
            },
        );
        let mut spool = Spool {
            dir: dir.to_owned(),
            host: host.to_string(),
            max_bytes,
            seg_max: (max_bytes / 8).clamp(4096, 8 * 1024 * 1024),
            entries,
            by_severity,
            segments,
            active,
            active_id,
            deleted: open_append(&dir.join(DELETED_FILE))?,
            deleted_count: (keep.len() / 12) as u64,
            next_seq: max_seq.map_or(0, |m| m + 1),
            live_bytes,
            gaps_made: 0,
        };
        spool.unlink_dead()?;
        report.entries = spool.entries.len() as u64;
        report.bytes = spool.live_bytes;
        if report.damaged > 0 {
            warn!(
                damaged = report.damaged,
                "spool entries failed their checksum and were skipped"
            );
            let gap = Gap::new(GAP_SPOOL_DAMAGED, host, report.damaged, spool.next_seq);
            spool.write_items(vec![SpoolItem::Gap(gap)])?;
        }
        Ok((spool, report))
    }

    /// The host name gap records made here carry.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Entries waiting and their bytes.
    pub fn depth(&self) -> (u64, u64) {
        (self.entries.len() as u64, self.live_bytes)
    }

    /// The byte cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Writes `items` durably (fsync) and returns; when the cap would be
    /// exceeded, drops alerts (lowest severity, oldest first; new ones
    /// included) and writes a `spool_full` gap record about them first.
    pub fn append(&mut self, items: Vec<SpoolItem>) -> io::Result<AppendOutcome> {
        if items.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let mut encoded: Vec<(SpoolItem, Vec<u8>)> = Vec::with_capacity(items.len());
        for item in items {
            // Sequence numbers are fixed at write time; 0 here only sizes the record.
            let bytes = encode(0, &item)?;
            encoded.push((item, bytes));
        }
        let new_bytes: u64 = encoded.iter().map(|(_, b)| b.len() as u64 + 20).sum();
        let limit = self.max_bytes.saturating_sub(GAP_RESERVE);
        if self.live_bytes + new_bytes <= limit {
            let written = self.write_items(encoded.into_iter().map(|(i, _)| i).collect())?;
            return Ok(AppendOutcome { written, gap: None });
        }
        // Choose victims: per severity, spooled (older) before new.
        let mut excess = (self.live_bytes + new_bytes).saturating_sub(limit);
        let mut victims: Vec<u64> = Vec::new();
        let mut new_dropped = vec![false; encoded.len()];
        let mut gap = Gap::new(GAP_SPOOL_FULL, &self.host, 0, self.gaps_made);
        self.gaps_made += 1;
        let note = |gap: &mut Gap, sev: Severity, time: DateTime<Utc>| {
            gap.count += 1;
            *gap.by_severity.entry(sev.as_str().to_string()).or_default() += 1;
            gap.first_time = Some(gap.first_time.map_or(time, |t| t.min(time)));
            gap.last_time = Some(gap.last_time.map_or(time, |t| t.max(time)));
        };
        'outer: for sev in SEVERITIES {
            for &seq in &self.by_severity[sev_index(sev)] {
                if excess == 0 {
                    break 'outer;
                }
                let e = &self.entries[&seq];
                if e.in_flight {
                    continue;
                }
                if let Kind::Alert { time, .. } = e.kind {
                    note(&mut gap, sev, time);
                }
                excess = excess.saturating_sub(u64::from(e.len));
                victims.push(seq);
            }
            for (i, (item, bytes)) in encoded.iter().enumerate() {
                if excess == 0 {
                    break 'outer;
                }
                if let SpoolItem::Alert(a) = item
                    && a.severity == sev
                {
                    note(&mut gap, sev, a.time);
                    excess = excess.saturating_sub(bytes.len() as u64 + 20);
                    new_dropped[i] = true;
                }
            }
        }
        let mut to_write = Vec::new();
        if gap.count > 0 {
            warn!(
                dropped = gap.count,
                by_severity = ?gap.by_severity,
                max_bytes = self.max_bytes,
                "spool full: dropped alerts, recorded as a gap"
            );
            to_write.push(SpoolItem::Gap(gap.clone()));
        }
        to_write.extend(
            encoded
                .into_iter()
                .zip(new_dropped)
                .filter(|(_, d)| !d)
                .map(|((i, _), _)| i),
        );
        // The gap is durable before anything it counts is deleted: a crash
        // in between over-reports, never under-reports.
        let written = self.write_items(to_write)?;
        self.delete(&victims)?;
        Ok(AppendOutcome {
            written: written.saturating_sub(u64::from(gap.count > 0)),
            gap: (gap.count > 0).then_some(gap),
        })
    }

    fn write_items(&mut self, items: Vec<SpoolItem>) -> io::Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(items.len());
        let info = self.segments.entry(self.active_id).or_default();
        let base = info.file_len;
        for item in &items {
            let seq = self.next_seq;
            self.next_seq += 1;
            let rec = encode(seq, item)?;
            placed.push((
                seq,
                base + buf.len() as u64,
                rec.len() as u32,
                kind_of(item),
            ));
            buf.extend_from_slice(&rec);
        }
        if let Err(e) = self
            .active
            .write_all(&buf)
            .and_then(|()| self.active.sync_data())
        {
            // Cut what may have been half written, so the segment stays readable.
            let _ = self.active.set_len(base);
            return Err(e);
        }
        let info = self.segments.entry(self.active_id).or_default();
        info.file_len = base + buf.len() as u64;
        for (seq, offset, len, kind) in placed {
            info.live += 1;
            info.live_bytes += u64::from(len);
            info.first_seq = info.first_seq.min(seq);
            info.last_seq = info.last_seq.max(seq);
            self.live_bytes += u64::from(len);
            if let Kind::Alert { severity, .. } = kind {
                self.by_severity[sev_index(severity)].insert(seq);
            }
            self.entries.insert(
                seq,
                Entry {
                    seg: self.active_id,
                    offset,
                    len,
                    kind,
                    in_flight: false,
                },
            );
        }
        if info.file_len >= self.seg_max {
            self.roll()?;
        }
        Ok(items.len() as u64)
    }

    fn roll(&mut self) -> io::Result<()> {
        let id = self.active_id + 1;
        self.active = open_append(&seg_path(&self.dir, id))?;
        self.active_id = id;
        self.segments.insert(
            id,
            SegInfo {
                first_seq: u64::MAX,
                ..SegInfo::default()
            },
        );
        sync_dir(&self.dir)?;
        self.unlink_dead()
    }

    /// The oldest entries not being delivered yet: at most `max_alerts`
    /// alerts with at most `max_packet_bytes` of frames (at least one), and
    /// up to `max_gaps` gap records. They are marked in flight until
    /// [`Spool::ack`] or [`Spool::release`].
    pub fn next_batch(
        &mut self,
        max_alerts: usize,
        max_packet_bytes: usize,
        max_gaps: usize,
    ) -> io::Result<Vec<(u64, SpoolItem)>> {
        let mut picked = Vec::new();
        let (mut alerts, mut gaps, mut pbytes) = (0usize, 0usize, 0usize);
        for (&seq, e) in &self.entries {
            if e.in_flight {
                continue;
            }
            match e.kind {
                Kind::Alert { packet_bytes, .. } => {
                    if alerts >= max_alerts
                        || (alerts > 0 && pbytes + packet_bytes as usize > max_packet_bytes)
                    {
                        continue;
                    }
                    alerts += 1;
                    pbytes += packet_bytes as usize;
                }
                Kind::Gap => {
                    if gaps >= max_gaps {
                        continue;
                    }
                    gaps += 1;
                }
            }
            picked.push((seq, e.seg, e.offset, e.len));
            if alerts >= max_alerts && gaps >= max_gaps {
                break;
            }
        }
        let mut out = Vec::with_capacity(picked.len());
        let mut files: BTreeMap<u64, File> = BTreeMap::new();
        let mut unreadable = Vec::new();
        for (seq, seg, offset, len) in picked {
            let file = match files.entry(seg) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(File::open(seg_path(&self.dir, seg))?)
                }
            };
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, offset)?;
            let item = (len as usize >= HEADER as usize)
                .then(|| {
                    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
                    let payload = &buf[HEADER as usize..];
                    (crc32fast::hash(payload) == crc)
                        .then(|| decode_record(payload))
                        .flatten()
                })
                .flatten()
                .filter(|(s, _)| *s == seq);
            match item {
                Some((_, item)) => {
                    if let Some(e) = self.entries.get_mut(&seq) {
                        e.in_flight = true;
                    }
                    out.push((seq, item));
                }
                None => unreadable.push(seq),
            }
        }
        if !unreadable.is_empty() {
            warn!(
                count = unreadable.len(),
                "spool entries became unreadable; recorded as a gap"
            );
            let gap = Gap::new(
                GAP_SPOOL_DAMAGED,
                &self.host,
                unreadable.len() as u64,
                self.gaps_made,
            );
            self.gaps_made += 1;
            self.write_items(vec![SpoolItem::Gap(gap)])?;
            self.delete(&unreadable)?;
        }
        Ok(out)
    }

    /// The coordinator stored these entries: delete them.
    pub fn ack(&mut self, seqs: &[u64]) -> io::Result<()> {
        self.delete(seqs)
    }

    /// Delivery of these entries failed: they wait for the next batch.
    pub fn release(&mut self, seqs: &[u64]) {
        for s in seqs {
            if let Some(e) = self.entries.get_mut(s) {
                e.in_flight = false;
            }
        }
    }

    fn delete(&mut self, seqs: &[u64]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(seqs.len() * 12);
        for &s in seqs {
            if self.entries.contains_key(&s) {
                buf.extend_from_slice(&deleted_record(s));
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.deleted.write_all(&buf)?;
        self.deleted.sync_data()?;
        self.deleted_count += (buf.len() / 12) as u64;
        for &s in seqs {
            let Some(e) = self.entries.remove(&s) else {
                continue;
            };
            if let Kind::Alert { severity, .. } = e.kind {
                self.by_severity[sev_index(severity)].remove(&s);
            }
            self.live_bytes -= u64::from(e.len);
            if let Some(info) = self.segments.get_mut(&e.seg) {
                info.live -= 1;
                info.live_bytes -= u64::from(e.len);
            }
        }
        self.unlink_dead()?;
        self.compact()?;
        Ok(())
    }

    /// Unlinks sealed segments without live entries.
    fn unlink_dead(&mut self) -> io::Result<()> {
        let dead: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, i)| **id != self.active_id && i.live == 0)
            .map(|(id, _)| *id)
            .collect();
        if dead.is_empty() {
            return Ok(());
        }
        for id in &dead {
            match std::fs::remove_file(seg_path(&self.dir, *id)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.segments.remove(id);
        }
        sync_dir(&self.dir)
    }

    /// Rewrites the sealed segment with the most dead bytes when the files
    /// hold more than twice the live bytes, and the deleted list when it
    /// has grown large.
    fn compact(&mut self) -> io::Result<()> {
        let file_bytes: u64 = self.segments.values().map(|i| i.file_len).sum();
        if file_bytes > 2 * self.live_bytes + 2 * self.seg_max {
            let worst = self
                .segments
                .iter()
                .filter(|(id, _)| **id != self.active_id)
                .max_by_key(|(_, i)| i.file_len - i.live_bytes)
                .map(|(id, _)| *id);
            if let Some(id) = worst {
                self.rewrite_segment(id)?;
            }
        }
        if self.deleted_count > 4 * self.entries.len() as u64 + 65_536 {
            self.rewrite_deleted()?;
        }
        Ok(())
    }

    fn rewrite_segment(&mut self, id: u64) -> io::Result<()> {
        let path = seg_path(&self.dir, id);
        let tmp = self.dir.join(format!("seg-{id:016}.log.tmp"));
        let src = File::open(&path)?;
        let mut out = File::create(&tmp)?;
        let mut moved = Vec::new();
        let mut off = 0u64;
        for (&seq, e) in self.entries.iter().filter(|(_, e)| e.seg == id) {
            let mut buf = vec![0u8; e.len as usize];
            src.read_exact_at(&mut buf, e.offset)?;
            out.write_all(&buf)?;
            moved.push((seq, off));
            off += u64::from(e.len);
        }
        out.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        for (seq, new_off) in moved {
            if let Some(e) = self.entries.get_mut(&seq) {
                e.offset = new_off;
            }
        }
        if let Some(info) = self.segments.get_mut(&id) {
            info.file_len = off;
        }
        Ok(())
    }

    fn rewrite_deleted(&mut self) -> io::Result<()> {
        let mut keep = Vec::new();
        for info in self.segments.values() {
            if info.first_seq > info.last_seq {
                continue;
            }
            for seq in info.first_seq..=info.last_seq {
                if !self.entries.contains_key(&seq) {
                    keep.extend_from_slice(&deleted_record(seq));
                }
            }
        }
        if let Some(m) = self.next_seq.checked_sub(1) {
            keep.extend_from_slice(&deleted_record(m | SEQ_MARK));
        }
        let tmp = self.dir.join("deleted.log.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&keep)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(DELETED_FILE))?;
        sync_dir(&self.dir)?;
        self.deleted = open_append(&self.dir.join(DELETED_FILE))?;
        self.deleted_count = (keep.len() / 12) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Map;

    fn alert(id: &str, sev: Severity, secs: i64) -> Alert {
        Alert {
            id: id.into(),
            rule_id: "r".into(),
            title: "t".into(),
            severity: sev,
            time: DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
            host: "h".into(),
            entities: Map::new(),
            evidence: vec!["x".repeat(200)],
            tags: vec![],
            source: String::new(),
            packets: vec![],
            drill_id: None,
        }
    }

    fn ids(items: &[(u64, SpoolItem)]) -> Vec<String> {
        items
            .iter()
            .filter_map(|(_, i)| match i {
                SpoolItem::Alert(a) => Some(a.id.clone()),
                SpoolItem::Gap(_) => None,
            })
            .collect()
    }

    #[test]
    fn survives_reopen_and_deletes_only_acked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        {
            let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
            assert_eq!(r.entries, 0);
            let items = (0..10)
                .map(|i| SpoolItem::Alert(alert(&format!("a{i}"), Severity::High, i)))
                .collect();
            assert_eq!(s.append(items).unwrap().written, 10);
            let b = s.next_batch(4, usize::MAX, 10).unwrap();
            assert_eq!(ids(&b), ["a0", "a1", "a2", "a3"]);
            let seqs: Vec<u64> = b.iter().map(|(s, _)| *s).collect();
            s.ack(&seqs).unwrap();
            // In flight but not acked: released, comes again.
            let b = s.next_batch(2, usize::MAX, 10).unwrap();
            assert_eq!(ids(&b), ["a4", "a5"]);
            s.release(&b.iter().map(|(s, _)| *s).collect::<Vec<_>>());
        }
        let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!(r.entries, 6);
        assert_eq!(r.torn_tails, 0);
        let b = s.next_batch(100, usize::MAX, 10).unwrap();
        assert_eq!(ids(&b), ["a4", "a5", "a6", "a7", "a8", "a9"]);
        s.ack(&b.iter().map(|(s, _)| *s).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(s.depth(), (0, 0));
        // New entries after everything was deleted are not taken for deleted ones.
        s.append(vec![SpoolItem::Alert(alert("b0", Severity::Low, 0))])
            .unwrap();
        drop(s);
        let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!(r.entries, 1);
        assert_eq!(ids(&s.next_batch(10, usize::MAX, 10).unwrap()), ["b0"]);
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".log") && !p.ends_with(DELETED_FILE))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn torn_tail_after_a_kill_is_cut_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        {
            let (mut s, _) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
            let items = (0..5)
                .map(|i| SpoolItem::Alert(alert(&format!("a{i}"), Severity::Medium, i)))
                .collect();
            s.append(items).unwrap();
        }
        let seg = segments(&dir).pop().unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        // A half-written record: its header and part of the payload.
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 30).unwrap();
        drop(f);
        let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!(r.entries, 4);
        assert_eq!(r.torn_tails, 1);
        assert!(r.torn_bytes > 0);
        assert_eq!(r.damaged, 0);
        assert_eq!(
            ids(&s.next_batch(10, usize::MAX, 10).unwrap()),
            ["a0", "a1", "a2", "a3"]
        );
        // The cut segment is whole again: appends and reopens work.
        s.append(vec![SpoolItem::Alert(alert("a9", Severity::Low, 9))])
            .unwrap();
        drop(s);
        let (_, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!((r.entries, r.torn_tails), (5, 0));

        // A header alone (4 bytes of length) at the end.
        let seg = segments(&dir).pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[7, 0, 0]).unwrap();
        drop(f);
        let (_, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!((r.entries, r.torn_tails, r.torn_bytes), (5, 1, 3));
    }

    #[test]
    fn damaged_record_is_skipped_counted_and_becomes_a_gap() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        {
            let (mut s, _) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
            let items = (0..3)
                .map(|i| SpoolItem::Alert(alert(&format!("a{i}"), Severity::High, i)))
                .collect();
            s.append(items).unwrap();
        }
        let seg = segments(&dir).pop().unwrap();
        let mut data = std::fs::read(&seg).unwrap();
        let first_len = u32::from_le_bytes(data[0..4].try_into().unwrap()) as usize;
        // Flip a byte inside the second record's payload.
        data[HEADER as usize + first_len + HEADER as usize + 5] ^= 0xff;
        std::fs::write(&seg, &data).unwrap();
        let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!(r.damaged, 1);
        assert_eq!(r.torn_tails, 0);
        let b = s.next_batch(10, usize::MAX, 10).unwrap();
        assert_eq!(ids(&b), ["a0", "a2"]);
        let gaps: Vec<&Gap> = b
            .iter()
            .filter_map(|(_, i)| match i {
                SpoolItem::Gap(g) => Some(g),
                SpoolItem::Alert(_) => None,
            })
            .collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].reason.as_str(), gaps[0].count),
            (GAP_SPOOL_DAMAGED, 1)
        );
    }

    #[test]
    fn garbage_files_do_not_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(seg_path(&dir, 3), [0xffu8; 100]).unwrap();
        std::fs::write(dir.join(DELETED_FILE), [1u8; 37]).unwrap();
        let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!(r.entries, 0);
        assert_eq!(r.torn_tails, 1);
        s.append(vec![SpoolItem::Alert(alert("a", Severity::Low, 0))])
            .unwrap();
        assert_eq!(s.depth().0, 1);
    }

    #[test]
    fn full_spool_drops_lowest_severity_oldest_first_and_records_a_gap() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        let (mut s, _) = Spool::open(&dir, 8192, "h").unwrap();
        let mut n = 0;
        // Fill: alternate low and high.
        while s.depth().1 < 5000 {
            let sev = if n % 2 == 0 {
                Severity::Low
            } else {
                Severity::High
            };
            s.append(vec![SpoolItem::Alert(alert(&format!("a{n}"), sev, n))])
                .unwrap();
            n += 1;
        }
        let before = s.depth().0;
        // A burst of criticals that does not fit.
        let burst: Vec<SpoolItem> = (0..10)
            .map(|i| SpoolItem::Alert(alert(&format!("c{i}"), Severity::Critical, 100 + i)))
            .collect();
        let out = s.append(burst).unwrap();
        let gap = out.gap.expect("a gap");
        assert_eq!(gap.reason, GAP_SPOOL_FULL);
        assert!(gap.count > 0);
        assert_eq!(
            gap.by_severity.get("low").copied(),
            Some(gap.count),
            "{gap:?}"
        );
        assert_eq!(gap.first_time, Some(alert("", Severity::Low, 0).time));
        assert!(s.depth().1 <= s.max_bytes());
        let all = s.next_batch(10_000, usize::MAX, 10).unwrap();
        let got = ids(&all);
        // Every critical kept, the oldest lows gone.
        assert!((0..10).all(|i| got.contains(&format!("c{i}"))));
        assert!(!got.contains(&"a0".to_string()));
        assert_eq!(got.len() as u64 + gap.count, before + 10);
        let gaps = all
            .iter()
            .filter(|(_, i)| matches!(i, SpoolItem::Gap(_)))
            .count();
        assert_eq!(gaps, 1);
    }

    #[test]
    fn in_flight_entries_are_not_dropped_and_space_is_reclaimed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        let (mut s, _) = Spool::open(&dir, 16 * 1024, "h").unwrap();
        for i in 0..40 {
            s.append(vec![SpoolItem::Alert(alert(
                &format!("a{i}"),
                Severity::Low,
                i,
            ))])
            .unwrap();
        }
        let first = s.next_batch(3, usize::MAX, 0).unwrap();
        assert_eq!(ids(&first), ["a0", "a1", "a2"]);
        for i in 40..200 {
            s.append(vec![SpoolItem::Alert(alert(
                &format!("a{i}"),
                Severity::Low,
                i,
            ))])
            .unwrap();
        }
        // The in-flight three survived the drops.
        s.ack(&first.iter().map(|(s, _)| *s).collect::<Vec<_>>())
            .unwrap();
        let rest = s.next_batch(10_000, usize::MAX, 10_000).unwrap();
        let dropped: u64 = rest
            .iter()
            .filter_map(|(_, i)| match i {
                SpoolItem::Gap(g) => Some(g.count),
                SpoolItem::Alert(_) => None,
            })
            .sum();
        assert_eq!(ids(&rest).len() as u64 + dropped + 3, 200);
        s.ack(&rest.iter().map(|(s, _)| *s).collect::<Vec<_>>())
            .unwrap();
        // Disk use follows the live bytes.
        let on_disk: u64 = segments(&dir)
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        assert!(on_disk <= 2 * s.seg_max + 4096, "{on_disk}");
    }

    #[test]
    fn rewritten_deleted_list_and_segments_keep_exactly_the_live_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        let (mut s, _) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        let items = (0..30)
            .map(|i| SpoolItem::Alert(alert(&format!("a{i}"), Severity::Medium, i)))
            .collect();
        s.append(items).unwrap();
        s.roll().unwrap();
        // Delete every other entry, then compact both files by hand.
        let b = s.next_batch(100, usize::MAX, 0).unwrap();
        let odd: Vec<u64> = b.iter().map(|(q, _)| *q).filter(|q| q % 2 == 1).collect();
        s.release(&b.iter().map(|(q, _)| *q).collect::<Vec<_>>());
        s.ack(&odd).unwrap();
        let seg = *s.segments.keys().next().unwrap();
        s.rewrite_segment(seg).unwrap();
        s.rewrite_deleted().unwrap();
        let want: Vec<String> = (0..30).step_by(2).map(|i| format!("a{i}")).collect();
        assert_eq!(ids(&s.next_batch(100, usize::MAX, 0).unwrap()), want);
        s.append(vec![SpoolItem::Alert(alert("new", Severity::Low, 99))])
            .unwrap();
        drop(s);
        let (mut s, r) = Spool::open(&dir, DEFAULT_MAX_BYTES, "h").unwrap();
        assert_eq!((r.entries, r.torn_tails, r.damaged), (16, 0, 0));
        let mut want = want;
        want.push("new".into());
        assert_eq!(ids(&s.next_batch(100, usize::MAX, 0).unwrap()), want);
    }
}
