//! API keys. A key is shown to its owner once; the service stores only its SHA-256, so a
//! leaked table does not leak working keys.

use std::future::Future;

use sha2::{Digest, Sha256};

use crate::domain::Tenant;
use crate::error::Error;

/// The stored form of a key: lowercase hex SHA-256 of the exact key text.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key: `sb_` and 64 hex digits (256 random bits).
pub fn generate_key() -> String {
    format!("sb_{}", random_hex())
}

/// A new callback signing secret: `whsec_` and 64 hex digits (256 random bits).
pub fn generate_callback_secret() -> String {
    format!("whsec_{}", random_hex())
}

/// 64 hex digits from two v4 UUIDs (the OS's random source), hashed into an even spread.
fn random_hex() -> String {
    let a = uuid::Uuid::new_v4().as_u128();
    let b = uuid::Uuid::new_v4().as_u128();
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&a.to_be_bytes());
    bytes[16..].copy_from_slice(&b.to_be_bytes());
    hex::encode(Sha256::digest(bytes))
}

pub trait KeyStore: Send + Sync {
    fn tenant_for_key_hash(&self, hash: &str) -> impl Future<Output = Result<Option<Tenant>, Error>> + Send;

    fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> impl Future<Output = Result<(), Error>> + Send;

    /// The tenant's callback signing secret, created on first use. Unlike API keys it is
    /// stored as is: signing needs it back.
    fn callback_secret(&self, tenant: &Tenant) -> impl Future<Output = Result<String, Error>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_sha256_hex() {
        // Known answer: the same digest `sha256sum` and Python's hashlib give.
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn generated_keys_are_distinct_and_well_formed() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
        assert!(a.starts_with("sb_") && a[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
