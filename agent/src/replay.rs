//! Offline detection over files, with the same engine as the live agent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

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
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                continue;
            }
            stats.lines += 1;
            match decoder.decode(line, format!("{source}:{start}")) {
                Ok(event) => {
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
