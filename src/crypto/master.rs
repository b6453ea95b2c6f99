//! The master key and where it comes from: raw bytes (from hex, the environment or a key
//! file), a passphrase stretched with Argon2id, or an external key service through
//! [`KeyProvider`].

use std::path::Path;
use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::{random_bytes, SecretKey};
use crate::error::{Error, Result};

/// An external key-management service (KMS, HSM, key agent) that wraps and unwraps the key
/// protecting the key registry. sealdb never sees the provider's own key.
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// Wraps (encrypts) `key`; the result is stored in the key registry.
    fn wrap(&self, key: &[u8; 32]) -> Result<Vec<u8>>;
    /// Unwraps what [`KeyProvider::wrap`] returned. A blob the provider cannot open must be
    /// [`Error::WrongMasterKey`].
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>>;
    /// A short name for the provider (a service or key name, never a secret): the only thing
    /// `MasterKey`'s `Debug` prints about it. Its own `Debug` is never printed by sealdb.
    #[expect(
        clippy::unnecessary_literal_bound,
        reason = "implementations may return a name they hold, borrowed from self"
    )]
    fn name(&self) -> &str {
        "key provider"
    }
}

/// Argon2id cost parameters for a passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassphraseCost {
    pub(crate) m_kib: u32,
    pub(crate) t: u32,
    pub(crate) p: u32,
}

/// OWASP's recommended Argon2id minimum: 19 MiB, 2 passes, 1 lane.
pub(crate) const DEFAULT_COST: PassphraseCost = PassphraseCost { m_kib: 19 * 1024, t: 2, p: 1 };

/// Largest Argon2id memory cost accepted, in KiB: 2 GiB (RFC 9106's first recommended option).
pub(crate) const MAX_M_KIB: u32 = 2 << 20;
/// Largest Argon2id work accepted, memory (KiB) × passes: 4 GiB·pass, a few seconds of one
/// core. It bounds the time a forged `KEYS` can make an open spend.
pub(crate) const MAX_WORK_KIB: u64 = 4 << 20;
/// Largest Argon2id parallelism (lanes) accepted.
pub(crate) const MAX_LANES: u32 = 16;
/// Bytes of Argon2id parameters in the registry: m u32, t u32, p u32, salt [16].
const ARGON2_PARAMS_LEN: usize = 28;

impl PassphraseCost {
    /// Checks the costs against the limits: `1 ≤ p ≤ 16`, `8·p KiB ≤ m ≤ 2 GiB`, `t ≥ 1` and
    /// `m·t ≤ 4 GiB·pass`. On failure, the offset of the failing field within the registry's
    /// parameters (m 0, t 4, p 8) and the reason.
    pub(crate) fn check(self) -> std::result::Result<(), (usize, &'static str)> {
        if self.p == 0 || self.p > MAX_LANES {
            return Err((8, "Argon2id parallelism out of range (1 to 16 lanes)"));
        }
        if self.m_kib < 8 * self.p || self.m_kib > MAX_M_KIB {
            return Err((0, "Argon2id memory cost out of range (8 KiB per lane to 2 GiB)"));
        }
        if self.t == 0 || u64::from(self.m_kib) * u64::from(self.t) > MAX_WORK_KIB {
            return Err((
                4,
                "Argon2id time cost out of range (at least 1, memory × passes ≤ 4 GiB)",
            ));
        }
        Ok(())
    }
}

/// Parses and bounds the Argon2id parameters a registry records, before anything is allocated
/// or computed from them. On failure, the offset within `params` and the reason.
pub(crate) fn argon2_params(
    params: &[u8],
) -> std::result::Result<(PassphraseCost, [u8; 16]), (usize, &'static str)> {
    if params.len() != ARGON2_PARAMS_LEN {
        return Err((0, "Argon2id parameters are not 28 bytes"));
    }
    let mut r = crate::coding::Reader::new(params);
    let (Some(m_kib), Some(t), Some(p), Some(salt)) = (r.u32(), r.u32(), r.u32(), r.array()) else {
        return Err((0, "Argon2id parameters are not 28 bytes"));
    };
    let cost = PassphraseCost { m_kib, t, p };
    cost.check()?;
    Ok((cost, salt))
}

#[derive(Clone)]
pub(crate) enum Source {
    Raw(SecretKey),
    Passphrase(Zeroizing<String>, PassphraseCost),
    Provider(Arc<dyn KeyProvider>),
}

/// The master key (key-encryption key): it wraps the data keys and is never stored in the data
/// directory. Zeroized on drop; `Debug` prints no key bytes.
#[derive(Clone)]
pub struct MasterKey(pub(crate) Source);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Source::Raw(_) => f.write_str("MasterKey(<redacted>)"),
            Source::Passphrase(..) => f.write_str("MasterKey(passphrase <redacted>)"),
            Source::Provider(p) => write!(f, "MasterKey(provider {:?})", p.name()),
        }
    }
}

// A provider is used only through `&self` calls that either finish or return an error; a panic
// inside one leaves sealdb's own state consistent, so a key holding one may cross
// `catch_unwind`.
impl std::panic::UnwindSafe for MasterKey {}
impl std::panic::RefUnwindSafe for MasterKey {}

/// On-disk ids of the ways a registry key is obtained (never renumbered).
pub(crate) const KDF_RAW: u8 = 0;
pub(crate) const KDF_ARGON2ID: u8 = 1;
pub(crate) const KDF_PROVIDER: u8 = 2;

/// A master key resolved to 32 bytes, with what the registry records about how.
/// `Debug` shows the kind only.
#[derive(Clone)]
pub(crate) struct Kek {
    pub(crate) kdf: u8,
    pub(crate) params: Vec<u8>,
    pub(crate) key: SecretKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek(kdf {}, <redacted>)", self.kdf)
    }
}

fn argon2id(pass: &str, salt: &[u8], cost: PassphraseCost) -> Result<SecretKey> {
    let params = argon2::Params::new(cost.m_kib, cost.t, cost.p, Some(32))
        .map_err(|e| Error::BadKeySource(format!("bad Argon2id parameters: {e}")))?;
    // The memory blocks are ours, so they are cleared afterwards: `hash_password_into` would
    // free them uncleared (the crate's `zeroize` feature clears only its own small buffers).
    let mut blocks = vec![argon2::Block::default(); params.block_count()];
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = SecretKey([0; 32]);
    let r = a.hash_password_into_with_memory(pass.as_bytes(), salt, &mut out.0, &mut blocks[..]);
    blocks.zeroize();
    r.map_err(|e| Error::BadKeySource(format!("Argon2id failed: {e}")))?;
    Ok(out)
}

/// Largest key file accepted (a key file holds 32 bytes, or 64 hex characters and whitespace).
const MAX_KEY_FILE: u64 = 4096;

/// Reads a key file through one descriptor, checked before it is read (see
/// [`MasterKey::from_file`]).
#[cfg(unix)]
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use rustix::fs::{Mode, OFlags};

    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            // Only to word the error: the open above already refused the link.
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::BadKeySource(format!(
                    "key file {} is a symbolic link (refused: name the file itself)",
                    path.display()
                )));
            }
            let e = std::io::Error::from(e);
            return Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("key file {}: {e}", path.display()),
            )));
        }
    };
    let mut file = std::fs::File::from(fd);
    // fstat of the open descriptor: what is checked is what is read.
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(Error::BadKeySource(format!(
            "key file {} is not a regular file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::KeyFilePermissions { path: path.to_path_buf(), mode: mode & 0o777 });
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(Error::BadKeySource(format!(
            "key file {} is owned by uid {}, not by the effective user (uid {euid})",
            path.display(),
            meta.uid()
        )));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(Error::BadKeySource(format!("key file {} is too large", path.display())));
    }
    // Capacity for the largest accepted file plus one byte, so the buffer never reallocates
    // (a reallocation would leave an unzeroized copy behind).
    let mut data = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
    (&mut file).take(MAX_KEY_FILE + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_KEY_FILE {
        return Err(Error::BadKeySource(format!("key file {} is too large", path.display())));
    }
    Ok(data)
}

/// Reads a key file. Without unix permissions there is no mode or owner to check: the file's
/// access control (on Windows, its ACL) is the operator's to restrict.
#[cfg(not(unix))]
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut data = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
    file.take(MAX_KEY_FILE + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_KEY_FILE {
        return Err(Error::BadKeySource(format!("key file {} is too large", path.display())));
    }
    Ok(data)
}

impl MasterKey {
    /// Resolves the key for a new registry (fresh salt or wrapping).
    pub(crate) fn resolve_new(&self) -> Result<Kek> {
        match &self.0 {
            Source::Raw(k) => Ok(Kek { kdf: KDF_RAW, params: Vec::new(), key: k.clone() }),
            Source::Passphrase(pass, cost) => {
                cost.check().map_err(|(_, why)| Error::BadKeySource(why.into()))?;
                let mut salt = [0u8; 16];
                random_bytes(&mut salt)?;
                let key = argon2id(pass, &salt, *cost)?;
                let mut params = Vec::with_capacity(28);
                for v in [cost.m_kib, cost.t, cost.p] {
                    params.extend_from_slice(&v.to_le_bytes());
                }
                params.extend_from_slice(&salt);
                Ok(Kek { kdf: KDF_ARGON2ID, params, key })
            }
            Source::Provider(p) => {
                let mut key = SecretKey([0; 32]);
                random_bytes(&mut key.0)?;
                let params = p.wrap(&key.0)?;
                Ok(Kek { kdf: KDF_PROVIDER, params, key })
            }
        }
    }

    /// Resolves the key as an existing registry records it; a source of another kind is the
    /// wrong key.
    pub(crate) fn resolve_existing(&self, kdf: u8, params: &[u8]) -> Result<Kek> {
        let key = match (&self.0, kdf) {
            (Source::Raw(k), KDF_RAW) if params.is_empty() => k.clone(),
            (Source::Passphrase(pass, _), KDF_ARGON2ID) => {
                // The registry decoder has already refused out-of-bound costs as corruption
                // (naming the field); this keeps the bound wherever else params come from.
                let (cost, salt) =
                    argon2_params(params).map_err(|(_, why)| Error::corruption("KEYS", 16, why))?;
                argon2id(pass, &salt, cost)?
            }
            (Source::Provider(p), KDF_PROVIDER) => SecretKey(*p.unwrap(params)?),
            _ => return Err(Error::WrongMasterKey),
        };
        Ok(Kek { kdf, params: params.to_vec(), key })
    }

    /// A master key derived from `passphrase` with Argon2id (19 MiB, 2 passes, 1 lane). The
    /// salt and costs are kept in the key registry, so the same passphrase opens the database.
    pub fn from_passphrase(passphrase: &str) -> MasterKey {
        MasterKey(Source::Passphrase(Zeroizing::new(passphrase.to_owned()), DEFAULT_COST))
    }

    /// As [`MasterKey::from_passphrase`] with explicit Argon2id costs (memory in KiB, passes,
    /// lanes), used when a new registry is written. The costs must lie within the limits an
    /// open accepts from `KEYS` (`1 ≤ lanes ≤ 16`, `8 KiB × lanes ≤ memory ≤ 2 GiB`,
    /// `passes ≥ 1`, `memory × passes ≤ 4 GiB`; every RFC 9106 and OWASP recommended setting
    /// fits), or creating the database fails with [`Error::BadKeySource`].
    pub fn from_passphrase_with_cost(passphrase: &str, m_kib: u32, t: u32, p: u32) -> MasterKey {
        let cost = PassphraseCost { m_kib, t, p };
        MasterKey(Source::Passphrase(Zeroizing::new(passphrase.to_owned()), cost))
    }

    /// A master key held by an external key service.
    pub fn from_provider(provider: Arc<dyn KeyProvider>) -> MasterKey {
        MasterKey(Source::Provider(provider))
    }

    /// A master key from 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        let mut bytes = Zeroizing::new(bytes);
        MasterKey(Source::Raw(SecretKey(std::mem::take(&mut *bytes))))
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
        Ok(MasterKey::from_bytes(*out))
    }

    /// A master key from the environment variable `var`, holding 64 hex characters.
    pub fn from_env(var: &str) -> Result<MasterKey> {
        let val = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::BadKeySource(format!("environment variable {var} is not set or not UTF-8"))
        })?);
        MasterKey::from_hex(&val)
            .map_err(|e| Error::BadKeySource(format!("environment variable {var}: {e}")))
    }

    /// A master key from a file holding 64 hex characters (or 32 raw bytes).
    ///
    /// On unix the file is opened without following a symbolic link (`O_NOFOLLOW`, and
    /// `O_NONBLOCK` so a FIFO cannot stall the open), and the *open descriptor* is checked
    /// before anything is read from it: it must be a regular file of at most 4 KiB, owned by
    /// the effective user, and not accessible by group or others (mode 0600 or 0400). Checking
    /// the descriptor rather than the path leaves no window in which the file could be swapped
    /// between the check and the read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<MasterKey> {
        let path = path.as_ref();
        let data = read_key_file(path)?;
        if data.len() == 32 {
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&data);
            return Ok(MasterKey::from_bytes(*k));
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
        MasterKey::from_bytes(*k)
    }

    /// A raw key as 64 lowercase hex characters, to store in a secret manager (`None` for a
    /// passphrase or provider source). Handle with care.
    pub fn to_hex(&self) -> Option<Zeroizing<String>> {
        match &self.0 {
            Source::Raw(k) => Some(Zeroizing::new(hex::encode(k.0))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_errors() {
        let k = MasterKey::generate();
        let k2 = MasterKey::from_hex(&k.to_hex().unwrap()).unwrap();
        assert_eq!(k.resolve_new().unwrap().key.0, k2.resolve_new().unwrap().key.0);
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
        std::fs::write(&p, k.to_hex().unwrap().as_bytes()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKey::from_file(&p).unwrap_err();
        assert!(matches!(err, Error::KeyFilePermissions { .. }));
        assert!(err.to_string().contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let back = MasterKey::from_file(&p).unwrap();
        assert_eq!(back.resolve_new().unwrap().key.0, k.resolve_new().unwrap().key.0);
    }

    #[test]
    fn recommended_argon2_costs_fit_the_bounds() {
        // RFC 9106 (first and second recommended), OWASP's five, sealdb's default.
        let fit = [
            (2 << 20, 1, 4),
            (64 << 10, 3, 4),
            (47_104, 1, 1),
            (19_456, 2, 1),
            (12_288, 3, 1),
            (9_216, 4, 1),
            (7_168, 5, 1),
            (DEFAULT_COST.m_kib, DEFAULT_COST.t, DEFAULT_COST.p),
        ];
        for (m_kib, t, p) in fit {
            assert_eq!(PassphraseCost { m_kib, t, p }.check(), Ok(()), "{m_kib} {t} {p}");
        }
        let refused = [
            ((2 << 20) + 1, 1, 1, 0),
            (7, 1, 1, 0),
            (64, 1, 9, 0), // under 8 KiB per lane
            (64, 0, 1, 4),
            (2 << 20, 3, 1, 4),
            (64, 1, 0, 8),
            (1024, 1, 17, 8),
        ];
        for (m_kib, t, p, at) in refused {
            let r = PassphraseCost { m_kib, t, p }.check();
            assert_eq!(r.map_err(|(o, _)| o), Err(at), "{m_kib} {t} {p}");
        }
        let mut params = Vec::new();
        for v in [64u32, 1, 1] {
            params.extend_from_slice(&v.to_le_bytes());
        }
        params.extend_from_slice(&[7; 16]);
        assert_eq!(argon2_params(&params).unwrap().1, [7; 16]);
        assert!(argon2_params(&params[..27]).is_err());
        params.push(0);
        assert!(argon2_params(&params).is_err());
    }

    #[test]
    fn passphrase_resolves_the_same_from_params() {
        let k = MasterKey::from_passphrase_with_cost("correct horse", 64, 1, 1);
        let kek = k.resolve_new().unwrap();
        let again = k.resolve_existing(kek.kdf, &kek.params).unwrap();
        assert_eq!(kek.key.0, again.key.0);
        let other = MasterKey::from_passphrase_with_cost("wrong horse", 64, 1, 1);
        assert_ne!(other.resolve_existing(kek.kdf, &kek.params).unwrap().key.0, kek.key.0);
        assert!(matches!(
            MasterKey::generate().resolve_existing(kek.kdf, &kek.params),
            Err(Error::WrongMasterKey)
        ));
        assert!(!format!("{k:?}").contains("horse"));
    }
}
