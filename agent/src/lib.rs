//! # ward-agent
//!
//! The host agent of Ward and the detection engine it shares with the
//! coordinator. Sources (log files) produce [`event::Event`]s through
//! [`decode`]rs; the [`engine`] judges them against Sigma rules and produces
//! [`wire::Alert`]s; they wait in the durable [`spool`] until [`delivery`]
//! has sent them through the [`uplink`] and the coordinator acknowledged them. The
//! [`files`] watcher YARA-scans web roots ([`engine::yara`]) and turns
//! changes against its integrity baseline into file events.
//!
//! ```
//! use ward_agent::decode::{LineDecoder, LogFormat};
//! use ward_agent::engine::{Detector, RulePack, SigmaDetector};
//!
//! let pack = RulePack::shipped().expect("the shipped pack loads");
//! let mut detector = SigmaDetector::new(&pack).unwrap();
//! let decoder = LineDecoder::new(LogFormat::Syslog, "web01");
//! let mut alerts = Vec::new();
//! for i in 0..5 {
//!     let line = format!("Nov 22 04:00:0{i} web01 sshd[7]: Failed password for root from 203.0.113.7 port 4000{i} ssh2");
//!     let event = decoder.decode(&line, format!("doc:{i}")).unwrap();
//!     alerts.extend(detector.process(&event));
//! }
//! assert_eq!(alerts.len(), 1);
//! assert_eq!(alerts[0].title, "SSH brute force");
//! assert_eq!(alerts[0].entities["src_ip"], "203.0.113.7");
//! ```
#![deny(missing_docs)]

pub mod bundle;
pub mod config;
pub mod decode;
pub mod delivery;
pub mod drill;
pub mod engine;
pub mod event;
pub mod files;
pub mod identity;
pub mod load;
pub mod memory;
pub mod pipeline;
pub mod rates;
pub mod replay;
pub mod rules_refresh;
pub mod sources;
pub mod spool;
pub mod uplink;
pub mod wire;

/// The agent's version, reported at enrollment and in heartbeats.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Installs the process-wide TLS crypto provider (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
