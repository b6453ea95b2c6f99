//! The header every sealdb file starts with.
//!
//! ```text
//! +0  magic        [8]  "SEALWAL\0" | "SEALSST\0" | "SEALVLG\0" | "SEALMAN\0" | "SEALBKM\0"
//! +8  version      u16  (1)
//! +10 flags        u16  (bit 0: encrypted; other bits zero)
//! +12 algorithm    u8   (as in a sealed block)
//! +13 reserved     [3]  zero
//! +16 key id       u32  (data key; 0 when unencrypted)
//! +20 keyspace     u32  (0: the file's blocks are sealed under the data key alone; n: under a
//!                        key derived from it and keyspace n's key, see `FileCipher::in_keyspace`)
//! +24 file number  u64
//! +32 salt         [32] random; with the key id, kind and number it derives the file key
//! +64 check block  a sealed block of kind FileHeader, empty payload, nonce 0, binding bytes
//!                  0..64 as associated data
//! ```
//!
//! The salt, key id, kind and file number all enter the file key's derivation and the header
//! bytes are bound into the check block, so an edited header fails at open.

use std::path::Path;

use super::{cipher_of, BlockKind, FileCipher, HEADER_LEN};
use crate::coding::Reader;
use crate::crypto::random_bytes;
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};

/// Bytes of the clear part of a file header.
pub const FILE_HEADER_LEN: usize = 64;
const VERSION: u16 = 1;
const FLAG_ENCRYPTED: u16 = 1;

/// Whether the file numbered `number` starting with `head` is a plaintext file that `keys`
/// still accepts: its flags say unencrypted and its number lies below the ring's
/// plaintext boundary (0 outside an encryption in progress, so never).
fn plain_accepted(head: &[u8], number: u64, keys: Option<&KeyRing>) -> bool {
    keys.is_some_and(|r| number < r.plain_below()) && head.get(10..12) == Some(&[0, 0][..])
}

/// The kinds of file that carry a [`FileHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Write-ahead log.
    Wal,
    /// SSTable.
    Table,
    /// Value-log segment.
    ValueLog,
    /// Manifest.
    Manifest,
    /// Backup manifest (in a backup location, not a data directory).
    BackupManifest,
}

impl FileKind {
    /// The kind's magic.
    pub fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Wal => b"SEALWAL\0",
            FileKind::Table => b"SEALSST\0",
            FileKind::ValueLog => b"SEALVLG\0",
            FileKind::Manifest => b"SEALMAN\0",
            FileKind::BackupManifest => b"SEALBKM\0",
        }
    }
}

/// A file's header, parsed or to be written.
#[derive(Debug)]
pub struct FileHeader;

impl FileHeader {
    /// Total bytes of the header with its check block.
    pub fn len(encrypted: bool) -> usize {
        FILE_HEADER_LEN + HEADER_LEN + if encrypted { 16 } else { 4 }
    }

    /// Bytes of the header (with its check block) of file `number`, whose first bytes are
    /// `head` (at least 12 for the flags to count): as [`FileHeader::len`], except that a
    /// plaintext file a database being encrypted still accepts (see [`FileHeader::open`]) has
    /// the plaintext header's length.
    pub(crate) fn len_for(head: &[u8], number: u64, keys: Option<&KeyRing>) -> usize {
        Self::len(keys.is_some() && !plain_accepted(head, number, keys))
    }

    /// Makes a header for a new file with a fresh random salt, returning its bytes and the
    /// cipher that seals the file's blocks. `keys` is `None` in an unencrypted database.
    pub(crate) fn create(
        kind: FileKind,
        file_number: u64,
        keys: Option<&KeyRing>,
    ) -> Result<(Vec<u8>, FileCipher)> {
        Self::create_in(kind, file_number, keys, 0)
    }

    /// As [`FileHeader::create`], for a file holding only keyspace `keyspace`'s entries: in an
    /// encrypted database its blocks are sealed under that keyspace's key too (keyspace 0,
    /// the default one, has none).
    pub(crate) fn create_in(
        kind: FileKind,
        file_number: u64,
        keys: Option<&KeyRing>,
        keyspace: u32,
    ) -> Result<(Vec<u8>, FileCipher)> {
        let mut salt = [0u8; 32];
        let cipher = match keys {
            None => FileCipher::plain(file_number),
            Some(ring) => {
                random_bytes(&mut salt)?;
                let dk = ring.current();
                let fk = dk.file_key(&salt, kind.magic(), file_number);
                if keyspace == 0 {
                    FileCipher::new(ring.cipher(), dk.id, &fk, file_number)
                } else {
                    let kk = ring.keyspace_key(keyspace).ok_or_else(|| {
                        Error::InvalidArgument(format!("keyspace {keyspace} has no key"))
                    })?;
                    FileCipher::in_keyspace(ring.cipher(), dk.id, &fk, keyspace, kk, file_number)
                }
            }
        };
        let mut out = Vec::with_capacity(Self::len(keys.is_some()));
        out.extend_from_slice(kind.magic());
        out.extend_from_slice(&VERSION.to_le_bytes());
        let flags = if keys.is_some() { FLAG_ENCRYPTED } else { 0 };
        out.extend_from_slice(&flags.to_le_bytes());
        out.push(cipher.alg);
        out.extend_from_slice(&[0; 3]);
        out.extend_from_slice(&cipher.key_id.to_le_bytes());
        out.extend_from_slice(&cipher.keyspace().to_le_bytes());
        out.extend_from_slice(&file_number.to_le_bytes());
        out.extend_from_slice(&salt);
        debug_assert_eq!(out.len(), FILE_HEADER_LEN);
        let clear = out.clone();
        cipher.seal_with_ad(
            BlockKind::FileHeader,
            FILE_HEADER_LEN as u64,
            0,
            false,
            &[],
            &clear,
            &mut out,
        );
        Ok((out, cipher))
    }

    /// Checks the header at the start of `bytes` (at least [`FileHeader::len`] bytes) of the
    /// file at `path`, which must be of `kind` and numbered `file_number`, and returns the cipher
    /// that opens its blocks.
    pub(crate) fn open(
        kind: FileKind,
        path: &Path,
        file_number: u64,
        bytes: &[u8],
        keys: Option<&KeyRing>,
    ) -> Result<FileCipher> {
        // A database being encrypted (`Encryption::encrypt_existing`) still reads the plaintext
        // files of its unencrypted past: only those numbered below the boundary its
        // authenticated conversion state records; any other file must be sealed.
        let keys = if plain_accepted(bytes, file_number, keys) { None } else { keys };
        let bad = |offset: u64, reason: &str| Error::corruption(path, offset, reason);
        let mut r = Reader::new(bytes);
        let magic: [u8; 8] = r.array().ok_or_else(|| bad(0, "file header truncated"))?;
        if &magic != kind.magic() {
            return Err(bad(0, "bad magic number"));
        }
        let version = r.u16().ok_or_else(|| bad(8, "file header truncated"))?;
        if version != VERSION {
            return Err(bad(8, "unknown file format version"));
        }
        let flags = r.u16().ok_or_else(|| bad(10, "file header truncated"))?;
        let encrypted = match flags {
            0 => false,
            FLAG_ENCRYPTED => true,
            _ => return Err(bad(10, "unknown file header flags")),
        };
        if encrypted != keys.is_some() {
            // A database is encrypted or not as a whole (decided by its registry); a file that
            // claims otherwise was swapped in or edited.
            return Err(bad(10, "file encryption flag does not match the database"));
        }
        let alg = r.u8().ok_or_else(|| bad(12, "file header truncated"))?;
        let reserved = r.array::<3>().ok_or_else(|| bad(13, "file header truncated"))?;
        let key_id = r.u32().ok_or_else(|| bad(16, "file header truncated"))?;
        let keyspace = r.u32().ok_or_else(|| bad(20, "file header truncated"))?;
        if reserved != [0; 3] {
            return Err(bad(13, "file header reserved bytes not zero"));
        }
        if keyspace != 0 && (keys.is_none() || !matches!(kind, FileKind::Table)) {
            return Err(bad(20, "file header names a keyspace key where none may be"));
        }
        let number = r.u64().ok_or_else(|| bad(24, "file header truncated"))?;
        if number != file_number {
            return Err(bad(24, "file number in header does not match the file name"));
        }
        let salt: [u8; 32] = r.array().ok_or_else(|| bad(32, "file header truncated"))?;
        let cipher = match (keys, cipher_of(alg)) {
            (None, Some(None)) => FileCipher::plain(file_number),
            (Some(ring), Some(Some(c))) => {
                let dk = ring.get(key_id).ok_or_else(|| {
                    bad(16, "file sealed under a data key that is not in the registry")
                })?;
                let fk = dk.file_key(&salt, kind.magic(), file_number);
                if keyspace == 0 {
                    FileCipher::new(c, key_id, &fk, file_number)
                } else {
                    let kk = ring.keyspace_key(keyspace).ok_or_else(|| {
                        bad(
                            20,
                            if ring.is_erased(keyspace) {
                                "file sealed under the key of a dropped keyspace (destroyed)"
                            } else {
                                "file sealed under a keyspace key that is not in the registry"
                            },
                        )
                    })?;
                    FileCipher::in_keyspace(c, key_id, &fk, keyspace, kk, file_number)
                }
            }
            _ => return Err(bad(12, "unknown or mismatched algorithm in file header")),
        };
        let check_len = Self::len(encrypted) - FILE_HEADER_LEN;
        let check = r.bytes(check_len).ok_or_else(|| bad(64, "file header truncated"))?;
        cipher
            .open_with_ad(
                BlockKind::FileHeader,
                FILE_HEADER_LEN as u64,
                check,
                &bytes[..FILE_HEADER_LEN],
            )
            .map_err(|e| bad(FILE_HEADER_LEN as u64, e.reason()))?;
        Ok(cipher)
    }
}
