//! The detection engine: rule packs, their diagnostics, and the
//! [`Detector`] trait the pipeline calls.
//!
//! The engine knows events and rules, never sources or the network.

pub mod evidence;
mod gate;
mod ioc;
mod pack;
mod sigma;
mod suppress;
pub mod yara;

use crate::event::Event;
use crate::wire::Alert;

pub use ioc::{IOC_FIELDS, IocSet};
pub use pack::{Diagnostic, RulePack, RuleSource, SHIPPED_IOC, SHIPPED_PACK};
pub use sigma::{SigmaDetector, alert_id};
pub use suppress::{Suppression, Suppressions};
pub use yara::{YaraRules, YaraScanner};

/// Judges events against rules. Stateful (correlation windows), so one
/// detector serves one stream of events in event-time order.
pub trait Detector: Send {
    /// Judges one event and returns the alerts it completes.
    fn process(&mut self, event: &Event) -> Vec<Alert>;
    /// Number of rules loaded (detection and correlation).
    fn rule_count(&self) -> usize;
    /// Correlation state entries currently held.
    fn state_entries(&self) -> usize;
    /// Correlation groups (open windows) dropped since start because the
    /// state reached its cap before their window ended: a flood of distinct
    /// keys. Each is detection that may have been lost, reported as a gap.
    fn state_evicted(&self) -> u64;
}
