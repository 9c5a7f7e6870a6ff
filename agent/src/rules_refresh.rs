//! Rule bundles refreshed while the agent runs: every `bundle_refresh_secs`
//! the agent asks the coordinator for a bundle newer than the one it runs
//! (`?have=VERSION`, answered 304 when there is none), verifies its
//! signature and compiles a new detector on a blocking thread, off the
//! detection path. The pipeline swaps the detector between two rounds of
//! lines, so no line is lost or judged twice; correlation state is kept as
//! long as the version does not change. A bundle that fails to verify or
//! compile leaves the running rules in place and is reported in heartbeats
//! (`bundle_error`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::bundle::SignedBundle;
use crate::engine::{Detector, SigmaDetector};
use crate::uplink::Uplink;

/// What heartbeats say about the running rules.
#[derive(Debug, Clone)]
pub struct RulesStatus {
    /// Version of the running pack.
    pub version: String,
    /// Where it came from: `bundle`, `saved-bundle`, `local` or `shipped`.
    pub source: &'static str,
    /// Why the coordinator's newest bundle was refused, when it was.
    pub error: Option<String>,
}

/// The running rules' status, shared by the pipeline, the refresh task and
/// the heartbeat task.
pub type SharedStatus = Arc<Mutex<RulesStatus>>;

/// Locks the status (a panic elsewhere leaves plain data: take it over).
pub fn lock(status: &SharedStatus) -> std::sync::MutexGuard<'_, RulesStatus> {
    status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A verified bundle's compiled detector, for the pipeline to swap in.
pub struct NewRules {
    /// The bundle's version.
    pub version: String,
    /// The detector over its rules.
    pub detector: SigmaDetector,
}

impl std::fmt::Debug for NewRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRules")
            .field("version", &self.version)
            .field("rules", &self.detector.rule_count())
            .finish()
    }
}

/// Verifies `signed` with the coordinator's `public_key` and compiles it
/// into a detector; the error says why it cannot run.
pub fn prepare(signed: &SignedBundle, public_key: &str) -> Result<NewRules, String> {
    let bundle = signed.verify(public_key).map_err(|e| e.to_string())?;
    let pack = bundle.pack().map_err(|e| e.to_string())?;
    let detector = SigmaDetector::new(&pack)
        .map_err(|e| format!("rule bundle {} does not compile: {e}", pack.version))?;
    Ok(NewRules {
        version: pack.version,
        detector,
    })
}

/// One check with the coordinator: `Ok(None)` when the running version is
/// current or the bundle was refused (the status says why), the new rules
/// otherwise (already saved as the last good bundle).
pub async fn check_once(
    uplink: &Uplink,
    public_key: &str,
    state_dir: &std::path::Path,
    status: &SharedStatus,
) -> Option<NewRules> {
    let have = lock(status).version.clone();
    let signed = match uplink.rule_bundle_newer_than(Some(&have)).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            // The coordinator serves what runs: nothing refused any more.
            let mut s = lock(status);
            if s.error.take().is_some() {
                info!(version = %have, "the coordinator serves the running rule bundle again");
            }
            return None;
        }
        Err(e) => {
            warn!(error = %e, "could not ask the coordinator for a newer rule bundle");
            return None;
        }
    };
    let key = public_key.to_string();
    let checked = signed.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&checked, &key))
        .await
        .unwrap_or_else(|e| Err(format!("compiling the rule bundle failed: {e}")));
    match prepared {
        Ok(new) => {
            if let Err(e) = crate::bundle::save(state_dir, &signed) {
                warn!(error = %e, "could not save the rule bundle as the last good one");
            }
            info!(from = %have, to = %new.version, "new rule bundle verified and compiled");
            Some(new)
        }
        Err(e) => {
            warn!(error = %e, running = %have, "refused the coordinator's new rule bundle; keeping the running rules");
            lock(status).error = Some(e);
            None
        }
    }
}

/// Runs [`check_once`] every `every`, handing new rules to the pipeline.
/// Ends when the pipeline is gone.
pub fn spawn(
    uplink: Uplink,
    public_key: String,
    state_dir: PathBuf,
    every: Duration,
    status: SharedStatus,
    to_pipeline: mpsc::Sender<NewRules>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is now: the bundle was just fetched
        loop {
            tick.tick().await;
            if let Some(new) = check_once(&uplink, &public_key, &state_dir, &status).await
                && to_pipeline.send(new).await.is_err()
            {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{RuleBundle, generate_key, key_pair, public_key};
    use crate::engine::RuleSource;

    #[test]
    fn prepare_compiles_a_verified_bundle_and_refuses_a_bad_one() {
        let key = key_pair(&generate_key().unwrap()).unwrap();
        let public = public_key(&key);
        let (bundle, pack) = RuleBundle::shipped().unwrap();
        let new = prepare(&bundle.sign(&key), &public).unwrap();
        assert_eq!(new.version, pack.version);
        assert!(new.detector.rule_count() > 0);

        // Verified but not compilable: refused with the reason.
        let broken = RuleBundle {
            version: "broken".into(),
            sigma: vec![RuleSource {
                name: "bad.yml".into(),
                text: "title: b\ndetection:\n  sel:\n    a|nosuchmodifier: 1\n  condition: sel\n"
                    .into(),
            }],
            ioc: vec![],
        };
        let why = prepare(&broken.sign(&key), &public).unwrap_err();
        assert!(why.contains("does not compile"), "{why}");

        // Signed by another key: refused before compiling.
        let other = key_pair(&generate_key().unwrap()).unwrap();
        let why = prepare(&bundle.sign(&other), &public).unwrap_err();
        assert!(why.contains("signature"), "{why}");
    }
}
