//! API keys. A key is shown to its owner once; the service stores only its SHA-256, so a
//! leaked table does not leak working keys.

use sha2::{Digest, Sha256};

/// The stored form of a key: lowercase hex SHA-256 of the exact key text.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key: `sb_` and 64 hex digits (256 random bits).
pub fn generate_key() -> String {
    format!("sb_{}", random_hex())
}

/// Whether `key` has the form every key has (`sb_` and 64 hex digits). Anything else is
/// refused before it is hashed or looked up: a malformed key costs no read.
pub fn is_well_formed_key(key: &str) -> bool {
    key.len() == 67 && key.starts_with("sb_") && key[3..].bytes().all(|b| b.is_ascii_hexdigit())
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
        assert!(is_well_formed_key(&a));
        for bad in
            ["", "sb_", "sb_zz", &a[..66], &format!("{a}0"), &a.replacen("sb_", "pk_", 1), &a.replacen('a', "g", 1)]
        {
            assert!(!is_well_formed_key(bad) || bad == a, "{bad:?}");
        }
    }
}
