//! The coordinator's TLS: the first-start self-signed certificate (rcgen),
//! given certificate files, the rustls server config (ring provider) and the
//! certificate's SHA-256 pin that enrollment tokens carry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Directory under the data dir holding the generated certificate and key.
pub const TLS_DIR: &str = "tls";
/// The generated certificate (PEM), for `WARD_CA`.
pub const CERT_FILE: &str = "cert.pem";
/// The generated private key (PEM, mode 0600).
pub const KEY_FILE: &str = "key.pem";

/// A certificate chain and its key, ready to serve.
pub struct TlsMaterial {
    /// The chain, end-entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// Where the certificate came from (for the log).
    pub cert_path: PathBuf,
    /// Whether this start generated it.
    pub generated: bool,
}

impl TlsMaterial {
    /// SHA-256 (lower-case hex) of the end-entity certificate's DER: the pin
    /// agents compare the coordinator's certificate with.
    pub fn pin(&self) -> String {
        cert_sha256(&self.chain[0])
    }

    /// The rustls server config (ring provider, TLS 1.2 and 1.3, ALPN h2
    /// and http/1.1).
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(self.chain.clone(), self.key.clone_key())
        .context("the TLS certificate and key do not fit together")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// SHA-256 (lower-case hex) of a certificate's DER.
pub fn cert_sha256(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

/// Reads a PEM certificate chain and a PEM private key.
pub fn load_files(cert: &Path, key: &Path) -> anyhow::Result<TlsMaterial> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS private key {}", key.display()))?;
    Ok(TlsMaterial {
        chain,
        key,
        cert_path: cert.to_owned(),
        generated: false,
    })
}

/// The names the generated certificate is valid for: localhost, the
/// loopback addresses, this host's name and the public URL's host.
pub fn subject_alt_names(public_host: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let host = ward_agent::config::system_host_name();
    let extra = [Some(host.as_str()), public_host];
    for name in extra.into_iter().flatten() {
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

/// The host part of a base URL (`https://ward.example:8443/` → `ward.example`).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// The certificate in `DATA/tls/`, generated (self-signed) on first start.
pub fn load_or_generate(data: &Path, public_host: Option<&str>) -> anyhow::Result<TlsMaterial> {
    let dir = data.join(TLS_DIR);
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    if cert_path.exists() && key_path.exists() {
        return load_files(&cert_path, &key_path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = subject_alt_names(public_host);
    let mut params = rcgen::CertificateParams::new(names.clone())
        .with_context(|| format!("certificate names {names:?}"))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "Ward coordinator");
    dn.push(rcgen::DnType::OrganizationName, "Ward");
    params.distinguished_name = dn;
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 24 * 3600)).into();
    let key = rcgen::KeyPair::generate().context("generating the TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("making the self-signed TLS certificate")?;
    ward_agent::sources::write_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    ward_agent::sources::write_atomically(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(TlsMaterial {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| anyhow::anyhow!("the generated TLS key: {e}"))?,
        cert_path,
        generated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://ward.example:8443/").as_deref(),
            Some("ward.example")
        );
        assert_eq!(url_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(url_host("10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(url_host("https://"), None);
    }

    #[test]
    fn generated_once_then_reused_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), Some("ward.example")).unwrap();
        assert!(first.generated);
        let second = load_or_generate(dir.path(), None).unwrap();
        assert!(!second.generated);
        assert_eq!(first.pin(), second.pin());
        assert_eq!(first.pin().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        first.server_config().unwrap();
    }
}
