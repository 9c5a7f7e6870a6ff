//! Secrets: generation and hashing. Only hashes are stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of API tokens (admins, responders, viewers).
pub const API_TOKEN_PREFIX: &str = "ward_";
/// Prefix of agent credentials.
pub const AGENT_TOKEN_PREFIX: &str = "wardagent_";

/// 256 random bits, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short random id (for agents).
pub fn random_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the store keeps of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

/// An argon2id PHC string of `password` (with a random salt). CPU-heavy:
/// run it with `tokio::task::spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher as _;
    let hash: argon2::PasswordHash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| format!("hashing the password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a PHC string made by [`hash_password`]
/// (argon2 compares in constant time). CPU-heavy, like hashing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier as _;
    argon2::PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify_password("correct horse battery", &a));
        assert!(!verify_password("wrong horse battery", &a));
        assert!(!verify_password("x", "not a phc string"));
    }
}
