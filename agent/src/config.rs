//! The agent's configuration file (TOML).
//!
//! ```toml
//! state_dir = "/var/lib/ward-agent"
//! rules = "/etc/ward/rules"          # optional; default: the shipped pack
//! [[logs]]
//! path = "/var/log/auth.log"         # globs allowed
//! format = "auto"
//! [[journal]]                        # journald, through journalctl
//! units = ["ssh.service"]            # optional; default: every entry
//! directory = "/var/log/journal/remote"   # optional; or file = "..."
//! [[net]]
//! interface = "eth0"                 # live capture (needs CAP_NET_RAW)
//! [[files]]
//! path = "/var/www/html"             # YARA scans + integrity baseline
//! exclude = ["*/cache/*"]            # optional
//! max_file_size = 33554432           # optional, bytes
//! quarantine = false                 # optional, off by default
//! [[pcap]]
//! dir = "/var/lib/ward-agent/capture" # capture files renamed in are replayed once (drills)
//! ```
//!
//! Top-level options also include `spool_max_bytes` (delivery spool cap,
//! default 256 MiB), `heartbeat_interval_s` and `poll_interval_ms`.
//! `drill_id = "..."` marks a drill's sandboxed agent: its alerts carry the id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::decode::LogFormat;
use crate::engine::{Suppression, Suppressions};

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Identity, checkpoints and spool live here.
    pub state_dir: PathBuf,
    /// Local rules (a pack root or a directory of Sigma files). Without it the
    /// shipped pack is used.
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Host name reported in alerts; defaults to the system's host name.
    #[serde(default)]
    pub host: Option<String>,
    /// How often files are polled for new data, in milliseconds (the
    /// safety net under file-system notifications). Default 1000.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// How often the agent reports its health, in seconds. Default 30.
    #[serde(default = "default_heartbeat_s")]
    pub heartbeat_interval_s: u64,
    /// How often the agent asks the coordinator for a newer signed rule
    /// bundle, in seconds (0: only at start). Default 300. Ignored with
    /// local `rules`.
    #[serde(default = "default_bundle_refresh_secs")]
    pub bundle_refresh_secs: u64,
    /// Log files to tail.
    #[serde(default)]
    pub logs: Vec<LogInput>,
    /// journald sources, read through `journalctl`.
    #[serde(default)]
    pub journal: Vec<JournalInput>,
    /// Allow-lists: alerts they match are dropped and counted.
    #[serde(default)]
    pub suppress: Vec<Suppression>,
    /// Network interfaces to capture on.
    #[serde(default)]
    pub net: Vec<NetInput>,
    /// Directory trees to watch (YARA scans and file integrity).
    #[serde(default)]
    pub files: Vec<FilesInput>,
    /// How often the watched trees get a full pass (the safety net under
    /// notifications), in seconds. Default 3600.
    #[serde(default = "default_files_rescan_s")]
    pub files_rescan_interval_s: u64,
    /// Byte cap of the delivery spool (`STATE/spool/`). When alerts would
    /// exceed it, the lowest-severity oldest ones are dropped and a gap
    /// record says so. Default 256 MiB, at least 4096.
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Capture directories: pcap/pcapng files that appear there are
    /// replayed once through the network decoders, their timestamps
    /// shifted so the capture ends when it is read (drills use this as a
    /// host's capture source).
    #[serde(default)]
    pub pcap: Vec<PcapInput>,
    /// Set on the sandboxed agents of a drill: every alert carries this id,
    /// and the coordinator keeps its incidents apart from real ones.
    #[serde(default)]
    pub drill_id: Option<String>,
}

/// One `[[pcap]]` entry: a directory whose new capture files are replayed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcapInput {
    /// The directory. Files named `*.pcap` or `*.pcapng` (not starting with
    /// `.`) are read once each; write them elsewhere and rename them in.
    pub dir: PathBuf,
}

/// One `[[net]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetInput {
    /// The interface name (`eth0`, `ens3`, ...).
    pub interface: String,
}

/// One `[[files]]` entry: a directory tree (web root, upload dir) whose new
/// and changed files are YARA-scanned and kept in the integrity baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesInput {
    /// The directory (or single file) to watch, recursively.
    pub path: PathBuf,
    /// Glob patterns of paths to leave alone (caches, sessions).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Largest file hashed and scanned, in bytes (default 32 MiB); larger
    /// files are counted and skipped.
    #[serde(default = "default_max_file_size")]
    pub max_file_size: u64,
    /// Per-file scan timeout in seconds (default 10).
    #[serde(default = "default_scan_timeout_s")]
    pub scan_timeout_s: u64,
    /// Move files that match a high or critical YARA rule to a 0700
    /// quarantine dir in the state dir. Off by default.
    #[serde(default)]
    pub quarantine: bool,
}

/// One `[[journal]]` entry: journald entries read through
/// `journalctl --output=json --follow`. Without `directory` or `file` it
/// reads the system journal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalInput {
    /// Only entries of these units (`journalctl -u`, repeated); every entry
    /// when empty.
    #[serde(default)]
    pub units: Vec<String>,
    /// A journal directory (`journalctl --directory`), e.g. what
    /// systemd-journal-remote writes.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Journal files (`journalctl --file`; globs allowed).
    #[serde(default)]
    pub file: Option<String>,
}

impl JournalInput {
    /// What the entry reads, for messages and as its checkpoint key:
    /// `system`, `directory:<path>` or `file:<glob>`, then `units:<a,b>`
    /// when units are given.
    pub fn describe(&self) -> String {
        let mut s = match (&self.directory, &self.file) {
            (Some(d), _) => format!("directory:{}", d.display()),
            (None, Some(f)) => format!("file:{f}"),
            (None, None) => "system".to_string(),
        };
        if !self.units.is_empty() {
            let mut units = self.units.clone();
            units.sort();
            units.dedup();
            s.push_str(" units:");
            s.push_str(&units.join(","));
        }
        s
    }

    /// Why the entry cannot be used, if it cannot.
    fn problem(&self) -> Option<String> {
        if self.directory.is_some() && self.file.is_some() {
            return Some("give either directory or file, not both".into());
        }
        if self
            .directory
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
            || self.file.as_ref().is_some_and(|f| f.is_empty())
        {
            return Some("an empty directory or file".into());
        }
        if let Some(f) = &self.file
            && let Err(e) = glob::Pattern::new(f)
        {
            return Some(format!("file '{f}': {e}"));
        }
        for u in &self.units {
            if u.is_empty()
                || u.len() > 256
                || u.starts_with('-')
                || u.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Some(format!("'{u}' is not a unit name"));
            }
        }
        None
    }
}

/// One `[[logs]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogInput {
    /// A path or glob.
    pub path: String,
    /// The lines' format.
    #[serde(default)]
    pub format: LogFormat,
}

fn default_poll_ms() -> u64 {
    1000
}
fn default_heartbeat_s() -> u64 {
    30
}
fn default_bundle_refresh_secs() -> u64 {
    300
}
fn default_files_rescan_s() -> u64 {
    3600
}
fn default_spool_max_bytes() -> u64 {
    crate::spool::DEFAULT_MAX_BYTES
}
fn default_max_file_size() -> u64 {
    crate::files::DEFAULT_MAX_FILE_SIZE
}
fn default_scan_timeout_s() -> u64 {
    10
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl AgentConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cfg: AgentConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        for n in &cfg.net {
            if n.interface.is_empty() || n.interface.len() > 15 || n.interface.contains(['/', ' '])
            {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    message: format!("net.interface '{}' is not an interface name", n.interface),
                });
            }
        }
        for l in &cfg.logs {
            glob::Pattern::new(&l.path).map_err(|e| ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("logs.path '{}': {e}", l.path),
            })?;
        }
        for (i, j) in cfg.journal.iter().enumerate() {
            if let Some(problem) = j.problem() {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    message: format!("[[journal]] entry {}: {problem}", i + 1),
                });
            }
        }
        Suppressions::new(&cfg.suppress).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        if cfg.spool_max_bytes < crate::spool::MIN_MAX_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "spool_max_bytes must be at least {}",
                    crate::spool::MIN_MAX_BYTES
                ),
            });
        }
        if let Some(d) = &cfg.drill_id
            && !crate::drill::valid_drill_id(d)
        {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "drill_id '{d}' must be 1-64 characters of letters, digits, '-' and '_'"
                ),
            });
        }
        for f in &cfg.files {
            for pat in &f.exclude {
                glob::Pattern::new(pat).map_err(|e| ConfigError::Invalid {
                    path: path.to_owned(),
                    message: format!("files.exclude '{pat}': {e}"),
                })?;
            }
        }
        Ok(cfg)
    }

    /// The host name alerts carry.
    pub fn host_name(&self) -> String {
        self.host.clone().unwrap_or_else(system_host_name)
    }

    /// The polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.clamp(50, 60_000))
    }
}

/// The system's host name (`/proc/sys/kernel/hostname`, `$HOSTNAME`, or `localhost`).
pub fn system_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_example() {
        let cfg: AgentConfig = toml::from_str(
            r#"
state_dir = "/var/lib/ward-agent"
rules = "/etc/ward/rules"
[[logs]]
path = "/var/log/auth.log"
format = "auto"
[[net]]
interface = "eth0"
[[files]]
path = "/var/www/html"
"#,
        )
        .unwrap();
        assert_eq!(cfg.files.len(), 1);
        assert!(!cfg.files[0].quarantine);
        assert_eq!(
            cfg.files[0].max_file_size,
            crate::files::DEFAULT_MAX_FILE_SIZE
        );
        assert_eq!(cfg.logs.len(), 1);
        assert_eq!(cfg.net[0].interface, "eth0");
        assert_eq!(cfg.logs[0].format, LogFormat::Auto);
        assert_eq!(cfg.poll_interval(), Duration::from_secs(1));
        assert_eq!(cfg.spool_max_bytes, 256 * 1024 * 1024);
    }

    #[test]
    fn bad_interface_names_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "state_dir = \"/x\"\n[[net]]\ninterface = \"eth0/../x\"\n",
        )
        .unwrap();
        let err = AgentConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("net.interface 'eth0/../x'"), "{err}");
        std::fs::write(&path, "state_dir = \"/x\"\n[[net]]\niface = \"eth0\"\n").unwrap();
        assert!(AgentConfig::load(&path).is_err());
    }

    #[test]
    fn journal_entries_parse_and_are_checked() {
        let cfg: AgentConfig = toml::from_str(
            r#"
state_dir = "/x"
[[journal]]
units = ["ssh.service", "sudo.service"]
[[journal]]
directory = "/var/log/journal/remote"
[[journal]]
file = "/var/log/journal/*/system.journal"
"#,
        )
        .unwrap();
        assert_eq!(cfg.journal.len(), 3);
        assert_eq!(
            cfg.journal[0].describe(),
            "system units:ssh.service,sudo.service"
        );
        assert_eq!(
            cfg.journal[1].describe(),
            "directory:/var/log/journal/remote"
        );
        assert_eq!(
            cfg.journal[2].describe(),
            "file:/var/log/journal/*/system.journal"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        for (body, needle) in [
            (
                "directory = \"/a\"\nfile = \"/b\"",
                "either directory or file",
            ),
            ("units = [\"--merge\"]", "not a unit name"),
            ("units = [\"a b\"]", "not a unit name"),
            ("unit = [\"ssh\"]", "unknown field"),
        ] {
            std::fs::write(&path, format!("state_dir = \"/x\"\n[[journal]]\n{body}\n")).unwrap();
            let err = AgentConfig::load(&path).unwrap_err().to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn drill_agents_have_an_id_and_capture_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "state_dir = \"/x\"\ndrill_id = \"drill-20261122-090000-1a2b3c\"\n[[pcap]]\ndir = \"/x/capture\"\n",
        )
        .unwrap();
        let cfg = AgentConfig::load(&path).unwrap();
        assert_eq!(
            cfg.drill_id.as_deref(),
            Some("drill-20261122-090000-1a2b3c")
        );
        assert_eq!(cfg.pcap[0].dir, PathBuf::from("/x/capture"));
        std::fs::write(&path, "state_dir = \"/x\"\ndrill_id = \"a b\"\n").unwrap();
        let err = AgentConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("drill_id 'a b'"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<AgentConfig>("state_dir = \"/x\"\nstat_dir = 1\n").unwrap_err();
        assert!(err.to_string().contains("stat_dir"), "{err}");
    }
}
