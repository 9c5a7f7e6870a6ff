//! The signed rule bundle the coordinator serves to agents, re-signed when
//! its rules change: `POST /api/v1/rules/reload` (admins, audited) or the
//! rules directory's file notifications ([`watch`]). A reload whose rules
//! do not load keeps the served bundle and records why; an unchanged pack
//! keeps its version (agents asking `?have=` get 304).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use ring::signature::Ed25519KeyPair;
use tracing::{info, warn};
use ward_agent::bundle::{RuleBundle, SignedBundle};

/// File in the data dir holding the Ed25519 key that signs rule bundles.
pub const BUNDLE_KEY_FILE: &str = "bundle-signing.pk8";

/// One signed version of the rule pack.
#[derive(Debug, Clone)]
pub struct ServedBundle {
    /// The bundle and its signature.
    pub signed: SignedBundle,
    /// The pack's version.
    pub version: String,
    /// Sigma rule files in it.
    pub rules: usize,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
    /// Its rules, for the rules page.
    pub catalogue: Vec<crate::model::RuleInfo>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// The version served before.
    pub previous: String,
    /// The version served now.
    pub version: String,
}

impl Reloaded {
    /// Whether the rules changed.
    pub fn changed(&self) -> bool {
        self.previous != self.version
    }
}

/// The served bundle, its signing key and where its rules come from.
pub struct Bundles {
    key: Ed25519KeyPair,
    public_key: String,
    rules: Option<PathBuf>,
    current: RwLock<Arc<ServedBundle>>,
    last_error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Bundles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundles")
            .field("rules", &self.rules)
            .field("version", &self.current().version)
            .finish_non_exhaustive()
    }
}

impl Bundles {
    /// Loads (or at first start makes, mode 0600) the signing key in `data`
    /// and signs the pack in `rules` (default: the shipped one). Rules that
    /// do not load are an error: the coordinator never signs a pack agents
    /// cannot compile.
    pub fn open(data: &Path, rules: Option<PathBuf>) -> anyhow::Result<Bundles> {
        let path = data.join(BUNDLE_KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = ward_agent::bundle::generate_key()?;
                ward_agent::sources::write_atomically(&path, &k, 0o600)?;
                info!(path = %path.display(), "first start: made the rule-bundle signing key");
                k
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let key = ward_agent::bundle::key_pair(&pkcs8)?;
        let first = sign(&key, rules.as_deref())
            .map_err(|e| anyhow::anyhow!("the rules to serve do not load:\n{e}"))?;
        info!(version = %first.version, rules = first.rules, "serving the rule bundle");
        Ok(Bundles {
            public_key: ward_agent::bundle::public_key(&key),
            key,
            rules,
            current: RwLock::new(Arc::new(first)),
            last_error: Mutex::new(None),
        })
    }

    /// The bundle served now.
    pub fn current(&self) -> Arc<ServedBundle> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The signing key's public half (base64), handed to agents at enrollment.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The rules directory, when the pack is not the shipped one.
    pub fn rules_dir(&self) -> Option<&Path> {
        self.rules.as_deref()
    }

    /// Why the last reload failed, when it did (the served bundle stayed).
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the rules again and serves them, re-signed, when they load and
    /// changed. Blocking (reads and compiles the pack): call it off the
    /// async threads. On failure the served bundle stays and the error
    /// (every diagnostic) is kept for [`Bundles::last_error`].
    pub fn reload(&self) -> Result<Reloaded, String> {
        let previous = self.current();
        let outcome = sign(&self.key, self.rules.as_deref());
        let mut last_error = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Ok(next) => {
                *last_error = None;
                let done = Reloaded {
                    previous: previous.version.clone(),
                    version: next.version.clone(),
                };
                if done.changed() {
                    info!(from = %done.previous, to = %done.version, rules = next.rules, "serving a new rule bundle");
                    *self
                        .current
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
                }
                Ok(done)
            }
            Err(e) => {
                warn!(error = %e, version = %previous.version, "the changed rules do not load; still serving the previous bundle");
                *last_error = Some(e.clone());
                Err(e)
            }
        }
    }
}

/// Reads and signs the pack (`None`: the shipped one); the error lists
/// every diagnostic.
fn sign(key: &Ed25519KeyPair, rules: Option<&Path>) -> Result<ServedBundle, String> {
    let built = match rules {
        Some(dir) => ward_agent::engine::RulePack::read_sources(&[dir.to_path_buf()])
            .and_then(|(sigma, ioc)| RuleBundle::from_sources(sigma, ioc)),
        None => RuleBundle::shipped(),
    };
    let (bundle, pack) = built.map_err(|diags| {
        diags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(ServedBundle {
        signed: bundle.sign(key),
        version: bundle.version.clone(),
        rules: bundle.sigma.len(),
        signed_at: crate::store::ts(chrono::Utc::now()),
        catalogue: crate::api::catalogue(&pack),
    })
}

/// How long changes must settle before the rules are read again (an
/// editor's save or a `cp -r` is many events).
pub const SETTLE: Duration = Duration::from_millis(500);

/// Appends the audit entry of a reload by `actor` from `peer`.
pub async fn audit_reload(
    store: &crate::store::Store,
    actor: &str,
    peer: &str,
    outcome: &Result<Reloaded, String>,
) {
    let (result, status, detail) = match outcome {
        Ok(r) if r.changed() => ("ok", 200, format!("{} -> {}", r.previous, r.version)),
        Ok(r) => ("ok", 200, format!("unchanged {}", r.version)),
        Err(e) => (
            "failed",
            422,
            format!("rules do not load; still serving the previous bundle: {e}"),
        ),
    };
    let rec = crate::store::AuditRecord {
        actor,
        action: "rules.reload",
        target: "rules",
        outcome: result,
        status,
        peer,
        detail: &detail,
    };
    if let Err(e) = store.audit(&rec).await {
        tracing::error!(error = %e, "cannot append to the audit log");
    }
}

/// Watches the rules directory and reloads after changes settle; each
/// reload that changed the bundle or failed is audited (actor
/// `coordinator`). Returns the watcher (dropping it stops watching);
/// `None` when the pack is the shipped one.
pub fn watch(
    bundles: Arc<Bundles>,
    store: crate::store::Store,
) -> anyhow::Result<Option<notify::RecommendedWatcher>> {
    use notify::Watcher as _;
    let Some(dir) = bundles.rules_dir().map(Path::to_path_buf) else {
        return Ok(None);
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.as_ref().map_or(true, |e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })
    .context("watching the rules directory")?;
    watcher
        .watch(&dir, notify::RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    info!(dir = %dir.display(), "re-signing the rule bundle when the rules change");
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let the burst settle, then read once.
            loop {
                tokio::select! {
                    more = rx.recv() => if more.is_none() { return },
                    () = tokio::time::sleep(SETTLE) => break,
                }
            }
            let b = bundles.clone();
            let outcome = tokio::task::spawn_blocking(move || b.reload())
                .await
                .unwrap_or_else(|e| Err(format!("reloading the rules failed: {e}")));
            if outcome.as_ref().map_or(true, Reloaded::changed) {
                audit_reload(&store, "coordinator", "local", &outcome).await;
            }
        }
    });
    Ok(Some(watcher))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "title: T\nid: 5e9b3c43-6a2a-4b39-9d0b-2d2b1b1c0a01\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: sshd\n  condition: sel\nlevel: low\n";
    const OTHER: &str = "title: U\nid: 0b5f0e4e-2f7c-4d59-9a43-8c1d7e6f5a11\nlogsource:\n  product: linux\ndetection:\n  sel:\n    program: cron\n  condition: sel\nlevel: low\n";

    #[test]
    fn reload_re_signs_changes_keeps_unchanged_versions_and_refuses_broken_rules() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(rules.join("sigma")).unwrap();
        std::fs::write(rules.join("sigma/a.yml"), RULE).unwrap();
        let b = Bundles::open(dir.path(), Some(rules.clone())).unwrap();
        let v1 = b.current().version.clone();
        assert_eq!(b.current().rules, 1);

        let same = b.reload().unwrap();
        assert!(!same.changed());
        assert_eq!(b.current().version, v1);

        std::fs::write(rules.join("sigma/b.yml"), OTHER).unwrap();
        let r = b.reload().unwrap();
        assert!(r.changed());
        assert_eq!((r.previous.as_str(), b.current().rules), (v1.as_str(), 2));
        let v2 = b.current().version.clone();
        // The new version verifies with the key agents were given.
        let back = b.current().signed.verify(b.public_key()).unwrap();
        assert_eq!(back.version, v2);

        std::fs::write(rules.join("sigma/broken.yml"), "title: x\ndetection: 3\n").unwrap();
        let why = b.reload().unwrap_err();
        assert!(why.contains("broken.yml"), "{why}");
        assert_eq!(b.current().version, v2, "the served bundle stays");
        assert!(b.last_error().is_some());

        std::fs::remove_file(rules.join("sigma/broken.yml")).unwrap();
        assert!(!b.reload().unwrap().changed());
        assert_eq!(b.last_error(), None);

        // The same key signs after a restart.
        let again = Bundles::open(dir.path(), Some(rules)).unwrap();
        assert_eq!(again.public_key(), b.public_key());
    }
}
