//! Keys: the master key and its sources, data keys, per-file keys, and the key registry.
//!
//! ```text
//! master key (never stored) ──HKDF──► KEK ──AES-256-GCM──► registry body (data keys)
//! data key (DEK, random, u32 id)
//!   ──HKDF(salt = per-file random salt, info = "sealdb/v1/file" ‖ kind magic ‖ number)──► file key
//! ```

pub(crate) mod audit;
mod master;
pub(crate) mod registry;

pub(crate) use master::{argon2_params, Kek, KDF_ARGON2ID};
pub use master::{KeyProvider, MasterKey};

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// A 256-bit key that is wiped from memory when dropped and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf)
        .map_err(|e| Error::Io(std::io::Error::other(format!("OS random source failed: {e}"))))
}

/// HKDF-SHA256 of `ikm` with `salt`, expanded under `info` into 32 bytes.
///
/// The output is expanded straight into the zeroizing [`SecretKey`], and the pseudorandom key
/// (PRK) that extraction returns is cleared here. What `hkdf`/`hmac`/`sha2` keep inside their
/// own states (the HMAC states keyed by the PRK, the hash buffer that held `ikm`, the
/// intermediate blocks of the expansion) they do not let a caller clear: see
/// `docs/security.md`, "Key material in memory".
pub(crate) fn hkdf32(ikm: &[u8], salt: &[u8], info: &[&[u8]]) -> SecretKey {
    let (mut prk, hk) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    prk.as_mut_slice().zeroize();
    let mut out = SecretKey([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    hk.expand_multi_info(info, &mut out.0).unwrap_or_else(|_| unreachable!());
    out
}

/// A data key: random, identified by a u32, stored only wrapped by the master key.
#[derive(Clone, Debug)]
pub(crate) struct DataKey {
    pub(crate) id: u32,
    pub(crate) key: SecretKey,
    /// Seconds since the Unix epoch when the key was made.
    pub(crate) created_at: u64,
}

impl DataKey {
    /// The key of one file: HKDF-SHA256(DEK, salt, "sealdb/v1/file" ‖ magic ‖ file number).
    pub(crate) fn file_key(&self, salt: &[u8; 32], magic: &[u8], file_number: u64) -> SecretKey {
        hkdf32(&self.key.0, salt, &[b"sealdb/v1/file", magic, &file_number.to_le_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1 through the same HKDF-SHA256 construction used for file keys.
    #[test]
    fn hkdf_matches_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm = hkdf32(&ikm, &salt, &[&info[..5], &info[5..]]);
        assert_eq!(
            hex::encode(okm.0),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn file_keys_differ_by_salt_kind_and_number() {
        let dk = DataKey { id: 1, key: SecretKey([7; 32]), created_at: 0 };
        let a = dk.file_key(&[1; 32], b"SEALSST\0", 5);
        assert_ne!(a.0, dk.file_key(&[2; 32], b"SEALSST\0", 5).0);
        assert_ne!(a.0, dk.file_key(&[1; 32], b"SEALWAL\0", 5).0);
        assert_ne!(a.0, dk.file_key(&[1; 32], b"SEALSST\0", 6).0);
        assert_eq!(format!("{a:?}"), "SecretKey(<redacted>)");
    }
}
