//! Sources of events: log files ([`tail`]), journald ([`journal`]), capture
//! files ([`pcap`]) and live capture ([`capture`], on a [`packet_socket`]).

pub mod capture;
pub mod checkpoint;
pub mod journal;
pub mod packet_socket;
pub mod pcap;
pub mod pcap_dir;
pub mod tail;

use std::path::Path;

use crate::identity::{create_with_mode, write_all_synced};

/// Replaces `path` with `bytes` so that a crash leaves either the old or the
/// new content: write a temp file, fsync it, rename it over, fsync the dir.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = create_with_mode(&tmp, mode)?;
    write_all_synced(&mut f, bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
