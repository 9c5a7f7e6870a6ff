//! Offline detection over files, with the same engine as the live agent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use crate::decode::net::{FlowConfig, NetDecoder};
use crate::decode::{LineDecoder, LogFormat, MAX_LINE_BYTES};
use crate::engine::Detector;
use crate::wire::Alert;

/// What a replay read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// Lines read.
    pub lines: u64,
    /// Lines decoded into events.
    pub events: u64,
    /// Lines skipped as malformed or too long.
    pub malformed: u64,
    /// Alerts produced.
    pub alerts: u64,
    /// Frames read from capture files.
    pub packets: u64,
    /// Bytes of those frames.
    pub packet_bytes: u64,
    /// Frames that were not decodable IP packets (non-IP, malformed, unsupported link).
    pub packets_skipped: u64,
    /// Flows ended early because the flow table was full.
    pub flows_evicted: u64,
}

/// Replays capture files (pcap or pcapng), each in its own time order with
/// its own flow table, through `detector`, calling `emit` per alert.
/// Events are named `pcap:<file id>:<frame index>.<kind>` (see
/// [`crate::sources::pcap::source_id`]).
pub fn replay_pcaps(
    pcaps: &[PathBuf],
    host: &str,
    detector: &mut dyn Detector,
    mut emit: impl FnMut(Alert) -> std::io::Result<()>,
) -> anyhow::Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    for path in pcaps {
        let source = crate::sources::pcap::source_id(path)?;
        let mut decoder = NetDecoder::new(host, source, FlowConfig::default());
        let mut events = Vec::new();
        let mut index = 0u64;
        let mut failed: Option<std::io::Error> = None;
        let mut judge = |events: &mut Vec<_>, stats: &mut ReplayStats, decoder: &NetDecoder| {
            for event in events.drain(..) {
                stats.events += 1;
                for alert in detector.process(&event) {
                    stats.alerts += 1;
                    if failed.is_none()
                        && let Err(e) = emit(alert)
                    {
                        failed = Some(e);
                    }
                }
                decoder.recycle(event);
            }
        };
        let file = crate::sources::pcap::read_file(path, |ts, link, data| {
            let time = chrono::DateTime::from_timestamp(ts.as_secs() as i64, ts.subsec_nanos())
                .unwrap_or_default();
            decoder.decode(time, link, data, index, &mut events);
            index += 1;
            if !events.is_empty() {
                judge(&mut events, &mut stats, &decoder);
            }
        })?;
        decoder.finish(&mut events);
        judge(&mut events, &mut stats, &decoder);
        if let Some(e) = failed {
            return Err(e.into());
        }
        let net = decoder.stats();
        stats.packets += net.packets;
        stats.packet_bytes += net.bytes;
        stats.packets_skipped += net.not_ip + net.malformed + file.unsupported;
        stats.flows_evicted += net.flows_evicted;
        if let Some(why) = file.damaged {
            tracing::warn!(path = %path.display(), frames = file.frames, error = %why, "capture file is damaged; read the frames before the damage");
        }
    }
    Ok(stats)
}

impl ReplayStats {
    /// Adds another replay's counts to these.
    pub fn add(&mut self, o: &ReplayStats) {
        self.lines += o.lines;
        self.events += o.events;
        self.malformed += o.malformed;
        self.alerts += o.alerts;
        self.packets += o.packets;
        self.packet_bytes += o.packet_bytes;
        self.packets_skipped += o.packets_skipped;
        self.flows_evicted += o.flows_evicted;
    }
}

/// Replays log files in order through `detector`, calling `emit` per alert.
pub fn replay_logs(
    logs: &[(PathBuf, LogFormat)],
    host: &str,
    detector: &mut dyn Detector,
    mut emit: impl FnMut(Alert) -> std::io::Result<()>,
) -> anyhow::Result<ReplayStats> {
    let mut stats = ReplayStats::default();
    let mut decoders: HashMap<LogFormat, LineDecoder> = HashMap::new();
    for (path, format) in logs {
        let file = std::fs::File::open(path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let decoder = decoders
            .entry(*format)
            .or_insert_with(|| LineDecoder::new(*format, host));
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut buf = Vec::with_capacity(1024);
        let mut offset = 0u64;
        let source = format!("replay:{}", path.display());
        let mut origin = source.clone();
        let mut digits = itoa::Buffer::new();
        // One event, decoded into line after line.
        let mut event = crate::event::Event::new(chrono::DateTime::UNIX_EPOCH, host, "");
        loop {
            buf.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE_BYTES as u64 + 2)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            let start = offset;
            offset += n as u64;
            if buf.last() != Some(&b'\n') && n > MAX_LINE_BYTES {
                // Too long: skip the rest of it.
                stats.lines += 1;
                stats.malformed += 1;
                let mut rest = Vec::new();
                offset += reader.read_until(b'\n', &mut rest)? as u64;
                continue;
            }
            let line = crate::decode::line_text(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                continue;
            }
            stats.lines += 1;
            origin.truncate(source.len());
            origin.push(':');
            origin.push_str(digits.format(start));
            match decoder.decode_into(line, &origin, &mut event) {
                Ok(()) => {
                    stats.events += 1;
                    for alert in detector.process(&event) {
                        stats.alerts += 1;
                        emit(alert)?;
                    }
                }
                Err(_) => stats.malformed += 1,
            }
        }
    }
    Ok(stats)
}
