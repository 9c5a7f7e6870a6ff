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
            // The time is built only for frames that make events.
            decoder.decode_at(
                ts.as_secs(),
                ts.subsec_nanos(),
                link,
                data,
                index,
                &mut events,
            );
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
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let mut buf = Vec::with_capacity(1024);
        let mut offset = 0u64;
        let mut lines = LineJudge {
            source_len: 0,
            origin: format!("replay:{}", path.display()),
            digits: itoa::Buffer::new(),
            // One event, decoded into line after line.
            event: crate::event::Event::new(chrono::DateTime::UNIX_EPOCH, host, ""),
        };
        lines.source_len = lines.origin.len();
        loop {
            // A whole line in the buffer is judged where it lies; one
            // that runs past the buffer's end is gathered into `buf`.
            let avail = reader.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', avail)
                && i < MAX_LINE_BYTES + 2
            {
                let start = offset;
                offset += i as u64 + 1;
                lines.judge(
                    &avail[..=i],
                    start,
                    decoder,
                    detector,
                    &mut stats,
                    &mut emit,
                )?;
                reader.consume(i + 1);
                continue;
            }
            buf.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE_BYTES as u64 + 2)
                .read_until(b'\n', &mut buf)?;
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
            lines.judge(&buf, start, decoder, detector, &mut stats, &mut emit)?;
        }
    }
    Ok(stats)
}

/// Read buffer of a replayed log: large enough that nearly every line is
/// judged in place (no copy per line), small enough to stay in cache.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What judging the lines of one replayed file reuses.
struct LineJudge {
    /// `replay:<path>`, to which each line's offset is appended.
    origin: String,
    /// Length of `origin` without the offset.
    source_len: usize,
    digits: itoa::Buffer,
    event: crate::event::Event,
}

impl LineJudge {
    /// Decodes the line (its bytes from offset `start`, terminator
    /// included) and hands the event to `detector`.
    fn judge(
        &mut self,
        bytes: &[u8],
        start: u64,
        decoder: &LineDecoder,
        detector: &mut dyn Detector,
        stats: &mut ReplayStats,
        emit: &mut impl FnMut(Alert) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let line = crate::decode::line_text(bytes);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            return Ok(());
        }
        stats.lines += 1;
        self.origin.truncate(self.source_len);
        self.origin.push(':');
        self.origin.push_str(self.digits.format(start));
        match decoder.decode_into(line, &self.origin, &mut self.event) {
            Ok(()) => {
                stats.events += 1;
                for alert in detector.process(&self.event) {
                    stats.alerts += 1;
                    emit(alert)?;
                }
            }
            Err(_) => stats.malformed += 1,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    /// Records the origin and record of every event it is given.
    #[derive(Default)]
    struct Recorder(Vec<(String, String)>);

    impl Detector for Recorder {
        fn process(&mut self, event: &Event) -> Vec<Alert> {
            self.0.push((event.origin.clone(), event.raw.clone()));
            Vec::new()
        }
        fn rule_count(&self) -> usize {
            0
        }
        fn state_entries(&self) -> usize {
            0
        }
        fn state_evicted(&self) -> u64 {
            0
        }
    }

    /// Lines judged in the read buffer, lines running past its end, lines
    /// over the limit, CRLF, empty lines and a last line without its
    /// newline: each line is an event named by its byte offset, the long
    /// ones are counted as malformed.
    #[test]
    fn every_line_is_read_once_at_its_offset() {
        let line = |i: usize| {
            format!("Nov 22 00:00:00 srv sshd[{i}]: Connection closed by 203.0.113.9 port 22")
        };
        let mut text = String::new();
        let mut expected = Vec::new();
        let mut too_long = 0;
        let mut i = 0;
        // Past two read buffers, so lines cross the buffer's end.
        while text.len() < 2 * READ_BUFFER_BYTES + 1000 {
            match i % 997 {
                500 => {
                    text.push_str(&"x".repeat(MAX_LINE_BYTES + 10));
                    text.push('\n');
                    too_long += 1;
                }
                600 => text.push('\n'),
                _ => {
                    let l = line(i);
                    expected.push((format!(":{}", text.len()), l.clone()));
                    text.push_str(&l);
                    text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
                }
            }
            i += 1;
        }
        let last = line(i);
        expected.push((format!(":{}", text.len()), last.clone()));
        text.push_str(&last);
        let dir = std::env::temp_dir().join(format!("ward-replay-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth.log");
        std::fs::write(&path, &text).unwrap();
        let mut rec = Recorder::default();
        let stats = replay_logs(&[(path.clone(), LogFormat::Syslog)], "h", &mut rec, |_| {
            Ok(())
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let source = format!("replay:{}", path.display());
        let got: Vec<(String, String)> = rec
            .0
            .into_iter()
            .map(|(o, r)| (o.strip_prefix(&source).unwrap_or(&o).to_string(), r))
            .collect();
        assert_eq!(got.len(), expected.len());
        assert_eq!(got, expected);
        assert_eq!(stats.lines, expected.len() as u64 + too_long);
        assert_eq!(stats.malformed, too_long);
        assert!(too_long >= 2, "{too_long}");
    }
}
