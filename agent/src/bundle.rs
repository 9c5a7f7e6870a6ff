//! Signed rule bundles: the coordinator serves its rule pack as a
//! versioned bundle signed with Ed25519; agents verify the signature before
//! compiling it and keep the last good bundle when a new one fails to verify
//! or to compile.
//!
//! The signature covers the exact bytes of the bundle's JSON (sent base64
//! encoded), so nothing is re-serialised before checking it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::engine::{Diagnostic, RulePack, RuleSource};

/// Largest signed bundle accepted, encoded (rule packs are text: a few MiB
/// is thousands of rules).
pub const MAX_BUNDLE_BYTES: usize = 32 * 1024 * 1024;

/// A rule pack as distributed: its version and every file's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleBundle {
    /// The pack's identity ([`RulePack::version`]).
    pub version: String,
    /// Sigma rule files.
    pub sigma: Vec<RuleSource>,
    /// Indicator lists (`ioc/<list>.txt`).
    pub ioc: Vec<RuleSource>,
}

/// What `GET /api/v1/agent/bundle` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBundle {
    /// The bundle's JSON, base64.
    pub bundle: String,
    /// Ed25519 signature of those JSON bytes, base64.
    pub signature: String,
}

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Too big to be a rule pack.
    #[error("rule bundle of {0} bytes is over the {MAX_BUNDLE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not base64 / not JSON of a bundle.
    #[error("rule bundle is malformed: {0}")]
    Malformed(String),
    /// The signature does not match the coordinator's key.
    #[error("rule bundle signature does not verify with the coordinator's key")]
    BadSignature,
    /// Verified, but the rules do not load.
    #[error("rule bundle {version} does not compile: {}", first(.diagnostics))]
    DoesNotCompile {
        /// The bundle's version.
        version: String,
        /// What is wrong with it.
        diagnostics: Vec<Diagnostic>,
    },
}

fn first(d: &[Diagnostic]) -> String {
    match d {
        [] => "no diagnostic".into(),
        [one] => one.to_string(),
        [one, rest @ ..] => format!("{one} (and {} more)", rest.len()),
    }
}

impl RuleBundle {
    /// The bundle of a set of rule and indicator files. Fails when they do
    /// not make a pack (the coordinator never signs rules that do not load).
    pub fn from_sources(
        sigma: Vec<RuleSource>,
        ioc: Vec<RuleSource>,
    ) -> Result<(RuleBundle, RulePack), Vec<Diagnostic>> {
        let pack = RulePack::from_parts(sigma.clone(), ioc.clone())?;
        Ok((
            RuleBundle {
                version: pack.version.clone(),
                sigma,
                ioc,
            },
            pack,
        ))
    }

    /// The bundle of the pack shipped in the binary.
    pub fn shipped() -> Result<(RuleBundle, RulePack), Vec<Diagnostic>> {
        let (sigma, ioc) = RulePack::shipped_sources();
        Self::from_sources(sigma, ioc)
    }

    /// Compiles the bundle's rules.
    pub fn pack(&self) -> Result<RulePack, BundleError> {
        RulePack::from_parts(self.sigma.clone(), self.ioc.clone()).map_err(|diagnostics| {
            BundleError::DoesNotCompile {
                version: self.version.clone(),
                diagnostics,
            }
        })
    }

    /// Signs the bundle with the coordinator's key.
    pub fn sign(&self, key: &Ed25519KeyPair) -> SignedBundle {
        let json = serde_json::to_vec(self).expect("a bundle serialises");
        SignedBundle {
            signature: B64.encode(key.sign(&json).as_ref()),
            bundle: B64.encode(json),
        }
    }
}

impl SignedBundle {
    /// Checks the signature with `public_key` (32 bytes, base64) and
    /// returns the bundle it covers.
    pub fn verify(&self, public_key: &str) -> Result<RuleBundle, BundleError> {
        if self.bundle.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge(self.bundle.len()));
        }
        let key = B64
            .decode(public_key)
            .map_err(|e| BundleError::Malformed(format!("public key: {e}")))?;
        let json = B64
            .decode(&self.bundle)
            .map_err(|e| BundleError::Malformed(format!("bundle: {e}")))?;
        let sig = B64
            .decode(&self.signature)
            .map_err(|e| BundleError::Malformed(format!("signature: {e}")))?;
        UnparsedPublicKey::new(&ED25519, &key)
            .verify(&json, &sig)
            .map_err(|_| BundleError::BadSignature)?;
        serde_json::from_slice(&json).map_err(|e| BundleError::Malformed(e.to_string()))
    }
}

/// A new Ed25519 signing key, PKCS#8 encoded.
pub fn generate_key() -> anyhow::Result<Vec<u8>> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| anyhow::anyhow!("generating the bundle signing key failed"))
}

/// The key pair of a PKCS#8 document.
pub fn key_pair(pkcs8: &[u8]) -> anyhow::Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_pkcs8(pkcs8)
        .map_err(|e| anyhow::anyhow!("the bundle signing key is not an Ed25519 PKCS#8 key: {e}"))
}

/// A key pair's public key, base64 (what enrollment hands agents).
pub fn public_key(key: &Ed25519KeyPair) -> String {
    B64.encode(key.public_key().as_ref())
}

/// Where the agent keeps its last good bundle.
pub fn saved_path(state_dir: &Path) -> PathBuf {
    state_dir.join("rules-bundle.json")
}

/// The last good bundle saved in `state_dir`, verified again with `public_key`.
pub fn load_saved(state_dir: &Path, public_key: &str) -> Option<RuleBundle> {
    let text = std::fs::read(saved_path(state_dir)).ok()?;
    let signed: SignedBundle = serde_json::from_slice(&text).ok()?;
    signed.verify(public_key).ok()
}

/// Saves a verified, compiled bundle as the last good one (tmp → fsync → rename).
pub fn save(state_dir: &Path, signed: &SignedBundle) -> anyhow::Result<()> {
    let json = serde_json::to_vec(signed)?;
    crate::sources::write_atomically(&saved_path(state_dir), &json, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (Ed25519KeyPair, String) {
        let k = key_pair(&generate_key().unwrap()).unwrap();
        let p = public_key(&k);
        (k, p)
    }

    #[test]
    fn a_signed_bundle_verifies_and_compiles() {
        let (key, public) = keys();
        let (bundle, pack) = RuleBundle::shipped().unwrap();
        let signed = bundle.sign(&key);
        let back = signed.verify(&public).unwrap();
        assert_eq!(back, bundle);
        assert_eq!(back.pack().unwrap().version, pack.version);
    }

    #[test]
    fn tampering_or_another_key_is_refused() {
        let (key, public) = keys();
        let (mut bundle, _) = RuleBundle::shipped().unwrap();
        let signed = bundle.sign(&key);
        // A rule changed after signing.
        bundle.sigma[0].text.push_str("\n# changed\n");
        let forged = SignedBundle {
            bundle: B64.encode(serde_json::to_vec(&bundle).unwrap()),
            signature: signed.signature.clone(),
        };
        assert!(matches!(
            forged.verify(&public),
            Err(BundleError::BadSignature)
        ));
        // Signed by someone else.
        let (_, other) = keys();
        assert!(matches!(
            signed.verify(&other),
            Err(BundleError::BadSignature)
        ));
        // Garbage.
        let junk = SignedBundle {
            bundle: "%%%".into(),
            signature: signed.signature,
        };
        assert!(matches!(
            junk.verify(&public),
            Err(BundleError::Malformed(_))
        ));
    }

    #[test]
    fn a_verified_bundle_that_does_not_compile_is_refused() {
        let (key, public) = keys();
        let bundle = RuleBundle {
            version: "x".into(),
            sigma: vec![RuleSource {
                name: "bad.yml".into(),
                text:
                    "title: broken\ndetection:\n  sel:\n    a|nosuchmodifier: 1\n  condition: sel\n"
                        .into(),
            }],
            ioc: vec![],
        };
        let back = bundle.sign(&key).verify(&public).unwrap();
        assert!(matches!(
            back.pack(),
            Err(BundleError::DoesNotCompile { .. })
        ));
    }

    #[test]
    fn the_last_good_bundle_survives_in_the_state_dir() {
        let (key, public) = keys();
        let dir = tempfile::tempdir().unwrap();
        let (bundle, _) = RuleBundle::shipped().unwrap();
        save(dir.path(), &bundle.sign(&key)).unwrap();
        assert_eq!(load_saved(dir.path(), &public), Some(bundle));
        let (_, other) = keys();
        assert_eq!(load_saved(dir.path(), &other), None);
    }
}
