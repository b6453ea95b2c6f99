//! The master key and where it comes from.

use std::path::Path;

use zeroize::Zeroizing;

use super::{random_bytes, SecretKey};
use crate::error::{Error, Result};

/// The master key (key-encryption key, 32 bytes). It wraps the data keys and is never stored
/// in the data directory. Zeroized on drop; `Debug` prints no key bytes.
#[derive(Clone)]
pub struct MasterKey(pub(crate) SecretKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A master key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let mut bytes = Zeroizing::new(bytes);
        MasterKey(SecretKey(std::mem::take(&mut *bytes)))
    }

    /// A master key from 64 hexadecimal characters (surrounding whitespace ignored).
    pub fn from_hex(hex_str: &str) -> Result<MasterKey> {
        let s = hex_str.trim();
        if s.len() != 64 {
            return Err(Error::BadKeySource(format!(
                "a master key is 64 hex characters, got {}",
                s.len()
            )));
        }
        let mut out = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(s, out.as_mut())
            .map_err(|_| Error::BadKeySource("the master key is not valid hex".into()))?;
        Ok(MasterKey(SecretKey(*out)))
    }

    /// A master key from the environment variable `var`, holding 64 hex characters.
    pub fn from_env(var: &str) -> Result<MasterKey> {
        let val = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::BadKeySource(format!("environment variable {var} is not set or not UTF-8"))
        })?);
        MasterKey::from_hex(&val)
            .map_err(|e| Error::BadKeySource(format!("environment variable {var}: {e}")))
    }

    /// A master key from a file holding 64 hex characters (or 32 raw bytes). The file must not
    /// be readable by group or others.
    pub fn from_file(path: impl AsRef<Path>) -> Result<MasterKey> {
        let path = path.as_ref();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(Error::KeyFilePermissions {
                    path: path.to_path_buf(),
                    mode: mode & 0o777,
                });
            }
        }
        let data = Zeroizing::new(std::fs::read(path)?);
        if data.len() == 32 {
            let mut k = [0u8; 32];
            k.copy_from_slice(&data);
            return Ok(MasterKey::from_bytes(k));
        }
        let text = std::str::from_utf8(&data).map_err(|_| {
            Error::BadKeySource(format!("key file {} is neither 32 bytes nor hex", path.display()))
        })?;
        MasterKey::from_hex(text)
            .map_err(|e| Error::BadKeySource(format!("key file {}: {e}", path.display())))
    }

    /// A new random master key from the OS random source.
    ///
    /// # Panics
    /// If the OS random source fails, which leaves no safe way to make a key.
    pub fn generate() -> MasterKey {
        let mut k = Zeroizing::new([0u8; 32]);
        random_bytes(k.as_mut()).expect("the OS random source failed");
        MasterKey(SecretKey(*k))
    }

    /// The key as 64 lowercase hex characters, to store in a secret manager. Handle with care.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0 .0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_errors() {
        let k = MasterKey::generate();
        let k2 = MasterKey::from_hex(&k.to_hex()).unwrap();
        assert_eq!(k.0 .0, k2.0 .0);
        assert!(MasterKey::from_hex("abc").is_err());
        assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
        let msg = MasterKey::from_hex(&"zz".repeat(32)).unwrap_err().to_string();
        assert!(!msg.contains("zz"));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_permissions_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        let k = MasterKey::generate();
        std::fs::write(&p, k.to_hex().as_bytes()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::from_file(&p).unwrap_err();
        assert!(matches!(err, Error::KeyFilePermissions { .. }));
        assert!(err.to_string().contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(MasterKey::from_file(&p).unwrap().0 .0, k.0 .0);
    }
}
