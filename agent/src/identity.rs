//! The agent's identity, issued at enrollment and kept in the state dir.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the identity inside the state dir.
pub const IDENTITY_FILE: &str = "identity.json";

/// Who this agent is to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The coordinator's base URL.
    pub server_url: String,
    /// The agent's id.
    pub agent_id: String,
    /// The agent's bearer credential.
    pub agent_token: String,
    /// The agency this agent belongs to.
    pub agency: String,
    /// SHA-256 of the coordinator certificate to pin, when TLS is used.
    #[serde(default)]
    pub cert_sha256: Option<String>,
    /// The coordinator's Ed25519 key (base64) that signs rule bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_key: Option<String>,
}

impl Identity {
    /// Where the identity lives in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(IDENTITY_FILE)
    }

    /// Reads the identity; a clear error when the agent was never enrolled.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(state_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the agent identity {}: {e} (run `ward-agent enroll --token TOKEN --state {}` first)",
                path.display(),
                state_dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("damaged agent identity {}: {e}", path.display()))
    }

    /// Writes the identity with mode 0600, atomically.
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let json = serde_json::to_vec_pretty(self)?;
        crate::sources::write_atomically(&Self::path(state_dir), &json, 0o600)
    }
}

/// Writes `bytes` to a file opened with `mode` (best effort on non-Unix).
pub(crate) fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

/// Writes and flushes a whole file.
pub(crate) fn write_all_synced(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}
