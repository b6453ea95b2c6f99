//! The backup manifest: one object per backup, `backups/<id, 20 digits>.backup`.
//!
//! ```text
//! clear part
//! +0  magic       [8]  "SEALBKP\0"
//! +8  version     u16  (1)
//! +10 flags       u16  (bit 0: encrypted; other bits zero)
//! +12 id          u64
//! +20 created at  u64  (Unix seconds)
//! +28 new bytes   u64  (bytes this backup sent that no earlier one held)
//! +36 file count  u32
//! +40 file*       name (varint len ‖ bytes) ‖ size u64 ‖ SHA-256 [32]
//! ..  keys len    u32  ‖ KEYS [keys len]  (the registry, wrapped by the master key; 0 when plain)
//! ..  crc32       u32  of every byte before it
//! sealed part
//! ..  file header (kind BackupManifest, file number = id; under the registry's current data
//!     key when encrypted, crc-protected when plain)
//! ..  one sealed block (kind BackupManifest, nonce 1) holding: version u8 (1) ‖ id u64 ‖
//!     file count u32 ‖ SHA-256 of the clear part; the whole clear part is its extra
//!     associated data
//! ```
//!
//! The clear part holds no user data (file names, sizes and digests of sealed files, counts,
//! a time, and `KEYS`, which is itself wrapped), so listing, restoring and deleting need no
//! key: the crc guards against accidents. With the master key the sealed block authenticates
//! every byte of the clear part (what `Backups::verify` checks): a file list or digest edited
//! by someone without the key fails there.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::coding::{put_len_prefixed, put_u32, put_u64, Reader};
use crate::crypto::registry::KeyRing;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::io::names;
use crate::seal::{BlockKind, FileHeader, FileKind};

const MAGIC: &[u8; 8] = b"SEALBKP\0";
const VERSION: u16 = 1;
const BODY_VERSION: u8 = 1;
const FLAG_ENCRYPTED: u16 = 1;
const MAX_FILES: u32 = 1 << 24;
const MAX_NAME: usize = 255;
const MAX_KEYS: usize = 16 << 20;

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its name in a data directory.
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) sha256: [u8; 32],
}

impl Entry {
    /// The object that holds it: `files/<name>-<SHA-256 in hex>`.
    pub(crate) fn object(&self) -> String {
        format!("files/{}-{}", self.name, hex::encode(self.sha256))
    }
}

/// A backup manifest's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BackupManifest {
    pub(crate) id: u64,
    pub(crate) created_at: u64,
    pub(crate) new_bytes: u64,
    pub(crate) files: Vec<Entry>,
    /// `KEYS` (empty when unencrypted).
    pub(crate) keys: Vec<u8>,
}

/// Whether `name` is a file a backup may hold: a table, value-log segment or WAL, the
/// manifest or the audit log (never a path, a temp file or `KEYS`, which travels inline).
fn allowed_name(name: &str) -> bool {
    name == names::MANIFEST
        || name == crate::crypto::audit::AUDIT_LOG
        || matches!(
            names::parse(name),
            Some(
                names::FileName::Table(_) | names::FileName::ValueLog(_) | names::FileName::Wal(_)
            )
        )
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl BackupManifest {
    /// Whether the backup is of an encrypted database.
    pub(crate) fn encrypted(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Bytes of the backup: its files and `KEYS`.
    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum::<u64>() + self.keys.len() as u64
    }

    fn encode_clear(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        let flags = if self.encrypted() { FLAG_ENCRYPTED } else { 0 };
        out.extend_from_slice(&flags.to_le_bytes());
        put_u64(&mut out, self.id);
        put_u64(&mut out, self.created_at);
        put_u64(&mut out, self.new_bytes);
        put_u32(&mut out, self.files.len() as u32);
        for f in &self.files {
            put_len_prefixed(&mut out, f.name.as_bytes());
            put_u64(&mut out, f.size);
            out.extend_from_slice(&f.sha256);
        }
        put_u32(&mut out, self.keys.len() as u32);
        out.extend_from_slice(&self.keys);
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        out
    }

    fn body(&self, clear: &[u8]) -> Vec<u8> {
        let mut body = vec![BODY_VERSION];
        put_u64(&mut body, self.id);
        put_u32(&mut body, self.files.len() as u32);
        body.extend_from_slice(&sha256(clear));
        body
    }

    /// Encodes the manifest, sealed under `ring`'s current data key (`None`: plain). `ring`
    /// must be the ring `self.keys` holds.
    pub(crate) fn encode(&self, ring: Option<&KeyRing>) -> Result<Vec<u8>> {
        let clear = self.encode_clear();
        let (header, cipher) = FileHeader::create(FileKind::BackupManifest, self.id, ring)?;
        let mut out = clear.clone();
        out.extend_from_slice(&header);
        let offset = out.len() as u64;
        cipher.seal_with_ad(
            BlockKind::BackupManifest,
            offset,
            1,
            false,
            &self.body(&clear),
            &clear,
            &mut out,
        );
        Ok(out)
    }

    /// Decodes a backup manifest read from `path`. Without `master` only the clear part is
    /// checked (its crc); with it, `KEYS` is opened and the sealed block authenticates the
    /// whole clear part. A master key for a plain backup is [`Error::NotEncrypted`], none for
    /// an encrypted one is checked later by the caller.
    pub(crate) fn decode(
        bytes: &[u8],
        path: &Path,
        master: Option<&MasterKey>,
    ) -> Result<BackupManifest> {
        let (m, clear_len) = Self::decode_clear(bytes, path)?;
        let Some(master) = master else { return Ok(m) };
        if !m.encrypted() {
            return Err(Error::NotEncrypted(path.to_path_buf()));
        }
        let (ring, _) = KeyRing::decode(&m.keys, path, master)?;
        m.open_sealed(bytes, clear_len, path, Some(&ring))?;
        Ok(m)
    }

    /// Checks the sealed part of a plain backup manifest (its crc-protected block).
    pub(crate) fn check_plain(&self, bytes: &[u8], path: &Path) -> Result<()> {
        let (_, clear_len) = Self::decode_clear(bytes, path)?;
        self.open_sealed(bytes, clear_len, path, None)
    }

    fn open_sealed(
        &self,
        bytes: &[u8],
        clear_len: usize,
        path: &Path,
        ring: Option<&KeyRing>,
    ) -> Result<()> {
        let clear = &bytes[..clear_len];
        let rest = &bytes[clear_len..];
        let hlen = FileHeader::len(ring.is_some());
        let header = rest.get(..hlen).ok_or_else(|| {
            Error::corruption(path, clear_len as u64, "backup manifest truncated")
        })?;
        // The file header is checked at its own offsets; errors are shifted to the object's.
        let cipher = FileHeader::open(FileKind::BackupManifest, path, self.id, header, ring)
            .map_err(|e| match e {
                Error::Corruption { file, offset, reason } => {
                    Error::Corruption { file, offset: offset + clear_len as u64, reason }
                }
                other => other,
            })?;
        let offset = (clear_len + hlen) as u64;
        let body = cipher
            .open_with_ad(BlockKind::BackupManifest, offset, &rest[hlen..], clear)
            .map_err(|e| Error::corruption(path, offset, e.reason()))?;
        let mut r = Reader::new(&body);
        let ok = r.u8() == Some(BODY_VERSION)
            && r.u64() == Some(self.id)
            && r.u32() == Some(self.files.len() as u32)
            && r.array::<32>() == Some(sha256(clear))
            && r.is_empty();
        if !ok {
            return Err(Error::corruption(path, offset, "backup manifest body disagrees"));
        }
        Ok(())
    }

    /// Decodes and crc-checks the clear part; returns it with its length.
    fn decode_clear(bytes: &[u8], path: &Path) -> Result<(BackupManifest, usize)> {
        let bad = |offset: usize, reason: &str| Error::corruption(path, offset as u64, reason);
        let mut r = Reader::new(bytes);
        if r.array::<8>().as_ref() != Some(MAGIC) {
            return Err(bad(0, "not a backup manifest (bad magic number)"));
        }
        if r.u16() != Some(VERSION) {
            return Err(bad(8, "unknown backup manifest version"));
        }
        let encrypted = match r.u16() {
            Some(0) => false,
            Some(FLAG_ENCRYPTED) => true,
            Some(_) => return Err(bad(10, "unknown backup manifest flags")),
            None => return Err(bad(10, "backup manifest truncated")),
        };
        let truncated = |at: usize| bad(at, "backup manifest truncated");
        let id = r.u64().ok_or_else(|| truncated(12))?;
        let created_at = r.u64().ok_or_else(|| truncated(20))?;
        let new_bytes = r.u64().ok_or_else(|| truncated(28))?;
        let count = r.u32().ok_or_else(|| truncated(36))?;
        if count > MAX_FILES {
            return Err(bad(36, "backup manifest file count out of range"));
        }
        let mut files = Vec::new();
        for _ in 0..count {
            let at = r.pos();
            let name = r.len_prefixed().ok_or_else(|| truncated(at))?;
            let name = std::str::from_utf8(name)
                .ok()
                .filter(|n| n.len() <= MAX_NAME && allowed_name(n))
                .ok_or_else(|| bad(at, "backup manifest names a file a backup cannot hold"))?;
            if files.iter().any(|f: &Entry| f.name == name) {
                return Err(bad(at, "backup manifest names a file twice"));
            }
            let size = r.u64().ok_or_else(|| truncated(r.pos()))?;
            let sha256 = r.array::<32>().ok_or_else(|| truncated(r.pos()))?;
            files.push(Entry { name: name.to_owned(), size, sha256 });
        }
        let at = r.pos();
        let klen = r.u32().ok_or_else(|| truncated(at))? as usize;
        if klen > MAX_KEYS || (klen > 0) != encrypted {
            return Err(bad(at, "backup manifest key registry length out of range"));
        }
        let keys = r.bytes(klen).ok_or_else(|| truncated(at + 4))?.to_vec();
        let crc_at = r.pos();
        let crc = r.u32().ok_or_else(|| truncated(crc_at))?;
        if crc != crc32fast::hash(&bytes[..crc_at]) {
            return Err(bad(crc_at, "backup manifest checksum mismatch"));
        }
        let m = BackupManifest { id, created_at, new_bytes, files, keys };
        Ok((m, r.pos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Cipher;

    fn sample(keys: Vec<u8>) -> BackupManifest {
        BackupManifest {
            id: 7,
            created_at: 1_700_000_000,
            new_bytes: 10,
            files: vec![
                Entry { name: "000003.sst".into(), size: 100, sha256: [1; 32] },
                Entry { name: "MANIFEST".into(), size: 50, sha256: [2; 32] },
            ],
            keys,
        }
    }

    #[test]
    fn plain_roundtrip_and_every_flip_fails() {
        let m = sample(Vec::new());
        let enc = m.encode(None).unwrap();
        let p = Path::new("b");
        assert_eq!(BackupManifest::decode(&enc, p, None).unwrap(), m);
        m.check_plain(&enc, p).unwrap();
        for i in 0..enc.len() {
            let mut t = enc.clone();
            t[i] ^= 1;
            let r = BackupManifest::decode(&t, p, None).and_then(|d| d.check_plain(&t, p));
            assert!(r.unwrap_err().is_corruption(), "flip at {i}");
        }
        for n in 0..enc.len() {
            let r = BackupManifest::decode(&enc[..n], p, None)
                .and_then(|d| d.check_plain(&enc[..n], p));
            assert!(r.is_err(), "cut at {n}");
        }
    }

    #[test]
    fn encrypted_roundtrip_wrong_key_and_edits() {
        let master = MasterKey::generate();
        let ring = KeyRing::generate(Cipher::Aes256Gcm).unwrap();
        let keys = ring.encode(&master.resolve_new().unwrap()).unwrap();
        let m = sample(keys);
        let enc = m.encode(Some(&ring)).unwrap();
        let p = Path::new("b");
        assert_eq!(BackupManifest::decode(&enc, p, Some(&master)).unwrap(), m);
        assert!(matches!(
            BackupManifest::decode(&enc, p, Some(&MasterKey::generate())),
            Err(Error::WrongMasterKey)
        ));
        // An edit of the clear part with its crc recomputed passes the crc, not the key.
        let mut forged = m.clone();
        forged.files[0].sha256 = [9; 32];
        let clear_len = m.encode_clear().len();
        let mut t = forged.encode_clear();
        t.extend_from_slice(&enc[clear_len..]);
        assert!(BackupManifest::decode(&t, p, None).is_ok());
        assert!(BackupManifest::decode(&t, p, Some(&master)).unwrap_err().is_corruption());
        // A path in a file name is refused.
        let mut evil = sample(Vec::new());
        evil.files[0].name = "../000003.sst".into();
        let t = evil.encode(None).unwrap();
        assert!(BackupManifest::decode(&t, p, None).unwrap_err().is_corruption());
    }
}
