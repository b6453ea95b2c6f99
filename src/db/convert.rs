//! Turning encryption on for an existing database (online, `Encryption::encrypt_existing`) and
//! off again (offline, [`decrypt_database`]).
//!
//! # Encrypting online
//!
//! A database being encrypted is an encrypted database (it has `KEYS`, every new file is
//! sealed, the manifest is sealed) that still reads the plaintext files of its past. Which
//! ones is fixed once, when the conversion starts, by the *plaintext boundary*: the first file
//! number beyond every file then in the directory. A file numbered below it may be plaintext;
//! any other file must be sealed. The boundary is kept in `CONVERT`, authenticated under the
//! audit key (below), so nobody without the master key can make a database accept plaintext:
//!
//! ```text
//! CONVERT = magic "SEALCNV\0" ‖ version u8 (1) ‖ plaintext boundary u64
//!           ‖ HMAC-SHA256(HKDF(audit key, "", "sealdb/v1/convert"), every byte before) [32]
//! ```
//!
//! A plaintext table is named in the (sealed) manifest with key id 0, and a sealed table may
//! not stand in for it or the reverse (the manifest's key id is checked at open). Plaintext
//! value-log segments are rewritten through the write path like value-log GC (their entries'
//! offsets change when sealed, so they cannot be re-sealed in place). The plaintext WALs are
//! replayed into a sealed table by the open that starts the conversion and removed once the
//! sealed manifest names that table.
//!
//! Order on disk, each step durable before the next: `KEYS` (from here on the master key is
//! needed), `CONVERT`, then the sealed manifest the open writes before any other file. A crash
//! between `KEYS` and `CONVERT` leaves a plaintext manifest beside `KEYS`: opening with the key
//! and `encrypt_existing` starts over under that same registry; without the flag it is
//! [`Error::NotEncrypted`]. Once `CONVERT` exists the key alone opens the database. When no live
//! file is plaintext any more, a manifest naming only sealed files is written and `CONVERT`
//! removed: from then on a plaintext file is refused.
//!
//! # Decrypting offline
//!
//! [`decrypt_database`] writes every live entry into new plaintext tables (values inline),
//! then uses the same state in reverse: `CONVERT` with a boundary beyond those tables, a
//! plaintext manifest naming only them (a database the key still opens), then `KEYS` goes (a
//! database that opens without encryption), then the audit log, `CONVERT` and the sealed
//! files.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{gc, Inner};
use crate::crypto::audit::AUDIT_LOG;
use crate::crypto::registry::KeyRing;
use crate::crypto::{hkdf32, Kek, SecretKey};
use crate::error::{Error, Result};
use crate::io::{names, Fs};
use crate::key::ValueKind;
use crate::manifest::{self, FileMeta, ManifestData};
use crate::options::{Encryption, Options};
use crate::sstable::TableBuilder;
use crate::vlog::Segment;
use crate::wal::WalWriter;

/// The conversion state file.
pub(crate) const CONVERT: &str = "CONVERT";
const MAGIC: &[u8; 8] = b"SEALCNV\0";
const VERSION: u8 = 1;
const BODY_LEN: usize = 8 + 1 + 8;
const FILE_LEN: usize = BODY_LEN + 32;

fn mac(audit_key: &SecretKey, body: &[u8]) -> Hmac<Sha256> {
    let k = hkdf32(&audit_key.0, b"", &[b"sealdb/v1/convert"]);
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&k.0).unwrap_or_else(|_| unreachable!());
    m.update(body);
    m
}

/// Reads `CONVERT`: the plaintext boundary, or `None` when there is no conversion state. Any
/// audit key of the ring (retired ones too: a `rekey` may have crashed part-way) authenticates.
fn read_state(fs: &dyn Fs, dir: &Path, ring: &KeyRing) -> Result<Option<u64>> {
    let path = dir.join(CONVERT);
    let bytes = match fs.read_all(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |offset: u64, why: &str| Error::corruption(&path, offset, why);
    if bytes.len() != FILE_LEN {
        return Err(bad(0, "conversion state has the wrong length"));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad(0, "bad magic number"));
    }
    if bytes[8] != VERSION {
        return Err(bad(8, "unknown conversion state version"));
    }
    let (body, tag) = bytes.split_at(BODY_LEN);
    if !ring.audit_keys().iter().any(|k| mac(k, body).verify_slice(tag).is_ok()) {
        return Err(bad(BODY_LEN as u64, "conversion state failed authentication"));
    }
    let boundary = crate::coding::get_u64_at(body, 9).unwrap_or(0);
    if boundary == 0 {
        return Err(bad(9, "conversion state boundary is zero"));
    }
    Ok(Some(boundary))
}

/// Applies the conversion state of `dir`, if any, to `ring`: for readers that open files
/// without the engine (offline verification), so that a database mid-conversion checks out.
pub(crate) fn apply_state(fs: &dyn Fs, dir: &Path, ring: &mut KeyRing) -> Result<()> {
    if let Some(boundary) = read_state(fs, dir, ring)? {
        ring.set_plain_below(boundary);
    }
    Ok(())
}

/// Writes `CONVERT` atomically with `boundary`, under the ring's current audit key.
fn write_state(fs: &dyn Fs, dir: &Path, ring: &KeyRing, boundary: u64) -> Result<()> {
    let mut out = Vec::with_capacity(FILE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&boundary.to_le_bytes());
    let tag = mac(&ring.audit_key, &out).finalize().into_bytes();
    out.extend_from_slice(&tag);
    crate::io::write_atomic(fs, dir, CONVERT, &out)?;
    Ok(())
}

fn remove_if_present(fs: &dyn Fs, path: &Path) -> Result<()> {
    match fs.remove(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io(e)),
        _ => Ok(()),
    }
}

/// The plaintext boundary of a conversion starting now: beyond the plaintext manifest's
/// reservation and every numbered file in the directory.
fn boundary_now(fs: &dyn Fs, dir: &Path) -> Result<u64> {
    let data = manifest::read(fs, dir, None)?;
    let mut b = data.next_file_number.max(1);
    for name in fs.list(dir)? {
        let Some(
            names::FileName::Wal(n) | names::FileName::Table(n) | names::FileName::ValueLog(n),
        ) = names::parse(&name)
        else {
            continue;
        };
        b = b.max(n.saturating_add(1));
    }
    Ok(b)
}

/// Starts encrypting the plaintext database at `dir` (its manifest is plaintext): writes the
/// registry unless `keys_written`, then the conversion state, and returns the ring that accepts
/// the plaintext files. Nothing is written if the manifest cannot be read.
pub(super) fn begin(
    fs: &dyn Fs,
    dir: &Path,
    mut ring: KeyRing,
    kek: Kek,
    keys_written: bool,
) -> Result<(KeyRing, Kek)> {
    let boundary = boundary_now(fs, dir)?;
    if !keys_written {
        super::keys::write_registry(fs, dir, &ring, &kek)?;
    }
    write_state(fs, dir, &ring, boundary)?;
    tracing::info!(dir = %dir.display(), boundary, "sealdb: encrypting an existing database");
    ring.set_plain_below(boundary);
    Ok((ring, kek))
}

/// At open, after the registry opened `ring`: sets its plaintext boundary from `CONVERT`, or,
/// for a registry beside a plaintext manifest (a crash before `CONVERT` was written), starts
/// the conversion over when `encrypt_existing` is set and refuses otherwise.
pub(super) fn resume(
    fs: &dyn Fs,
    dir: &Path,
    ring: KeyRing,
    kek: Kek,
    manifest_encrypted: Option<bool>,
    enc: &Encryption,
) -> Result<(KeyRing, Kek)> {
    let mut ring = ring;
    match read_state(fs, dir, &ring)? {
        Some(boundary) => {
            ring.set_plain_below(boundary);
            Ok((ring, kek))
        }
        None if manifest_encrypted == Some(false) => {
            if enc.encrypt_existing {
                begin(fs, dir, ring, kek, true)
            } else {
                // A sealed manifest whose flag was flipped is damage, not a plaintext database.
                manifest::read(fs, dir, None)?;
                Err(Error::NotEncrypted(dir.to_path_buf()))
            }
        }
        None => Ok((ring, kek)),
    }
}

/// Live plaintext files and their bytes: tables and value-log segments of the unencrypted
/// past (zero outside a conversion).
pub(crate) fn plaintext_left(inner: &Inner) -> (u64, u64) {
    if inner.keys.is_none() {
        return (0, 0);
    }
    let plain = crate::seal::alg_id(None);
    let st = inner.state.lock();
    let mut files = 0;
    let mut bytes = 0;
    for (_, f) in st.version.all_files() {
        if f.table.alg() == plain {
            files += 1;
            bytes += f.meta.size;
        }
    }
    for s in st.vlog.segments.values() {
        if s.alg() == plain {
            files += 1;
            bytes += s.size.load(Ordering::Acquire);
        }
    }
    (files, bytes)
}

/// Seals a plaintext value-log segment: its live entries are rewritten through the write path
/// (into the sealed active segment) and it leaves the manifest, as value-log GC does; the
/// caller holds `gc_lock` and paces the work with `progress`.
pub(super) fn seal_plain_segment(
    inner: &Inner,
    seg: &Arc<Segment>,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    gc::gc_segment_paced(inner, seg, progress)
}

/// Ends a conversion once no live file is plaintext: writes a manifest (naming sealed files
/// only), removes `CONVERT`, and from then on refuses plaintext files. Returns whether the
/// database is now free of live plaintext files (true outside a conversion).
pub(crate) fn finish_if_done(inner: &Inner) -> Result<bool> {
    let Some(ka) = inner.keys.as_ref() else { return Ok(true) };
    if ka.ring().plain_below() == 0 {
        return Ok(true);
    }
    // No background job holds a view of a replaced version while these are taken: plaintext
    // tables replaced before now are gone from disk unless a reader holds them.
    let _gc = inner.gc_lock.lock();
    let _c = inner.compaction_lock.lock();
    let mut st = inner.state.lock();
    let plain = crate::seal::alg_id(None);
    let boundary = ka.ring().plain_below();
    let left = st.version.all_files().any(|(_, f)| f.table.alg() == plain)
        || st.vlog.segments.values().any(|s| s.alg() == plain)
        || st.mem.wal_number < boundary
        || st.imms.iter().any(|m| m.wal_number < boundary);
    if left {
        return Ok(false);
    }
    ka.audit("encrypt_existing_finish", &[]);
    inner.write_manifest(&mut st)?;
    remove_if_present(inner.fs.as_ref(), &inner.dir.join(CONVERT))?;
    inner.fs.sync_dir(&inner.dir)?;
    ka.forbid_plain();
    tracing::info!(dir = %inner.dir.display(), "sealdb: no plaintext file is left");
    Ok(true)
}

/// At the end of an open: logs a conversion in progress in the audit log and ends it at once
/// if nothing is left (a crash after the last file was sealed).
pub(super) fn opened(inner: &Inner) -> Result<()> {
    let Some(ka) = inner.keys.as_ref() else { return Ok(()) };
    if ka.ring().plain_below() == 0 {
        return Ok(());
    }
    let (files, bytes) = plaintext_left(inner);
    ka.audit("encrypt_existing", &[("plaintext_files", files), ("plaintext_bytes", bytes)]);
    if !finish_if_done(inner)? {
        inner.write_manifest(&mut inner.state.lock())?;
    }
    Ok(())
}

/// Decrypts the encrypted database at `options.path()` in place, offline: afterwards it opens
/// without encryption and holds the same data; its key registry, audit log and every sealed
/// file are gone. `options` must carry the master key ([`Options::with_encryption`]); its
/// tuning (block size, compression, target file size) shapes the new tables. Every value ends
/// up inline in the tables (the value log starts empty).
///
/// Refused with [`Error::Locked`] while the database is open, with
/// [`Error::WrongMasterKey`] (and nothing changed) under another master key, and with
/// [`Error::NotEncrypted`] for a database that has no key registry and is not a finished
/// decryption. A database part-way through `encrypt_existing` is decrypted as a whole.
///
/// Crash-safe: at every moment the directory opens with the master key (before `KEYS` is
/// removed) or without encryption (after), with nothing lost; running this again finishes an
/// interrupted decryption. Blocks of the removed sealed files may remain on the device (as
/// with any deletion); the new plaintext files are exactly as readable as an unencrypted
/// database's.
pub fn decrypt_database(options: Options) -> Result<()> {
    let dir = options.path.clone();
    let fs = options.file_system();
    if options.encryption.is_none() {
        return Err(Error::InvalidArgument(
            "decrypt_database needs the master key: Options::with_encryption".into(),
        ));
    }
    if !fs.exists(&dir.join(names::KEYS)) {
        return tidy_decrypted(fs.as_ref(), &dir);
    }
    // Offline, inline, never rotating; a database whose conversion crashed before its
    // conversion state was written is taken up as if encrypt_existing were given.
    let mut options = options;
    options.background_work = false;
    options.create_if_missing = false;
    options.error_if_exists = false;
    if let Some(e) = &mut options.encryption {
        e.rotate_every = None;
        e.encrypt_existing = true;
    }
    let inner = super::recovery::open_inner(&options)?;
    let r = decrypt_open(&inner, &dir);
    // Dropped without a manifest write: the files on disk are as `decrypt_open` left them.
    drop(inner);
    r
}

/// The work of [`decrypt_database`] on the open engine (which holds the directory's lock).
fn decrypt_open(inner: &Inner, dir: &Path) -> Result<()> {
    let fs = inner.fs.as_ref();
    let ring = inner.keys().ok_or_else(|| Error::NotEncrypted(dir.to_path_buf()))?;
    inner.flush()?;
    let (seq, sv) = inner.read_view();
    // Every keyspace's entries as tree keys (prefix kept), less those of dropped keyspaces.
    let (table, dropped) = {
        let st = inner.state.lock();
        (st.keyspaces.table.clone(), st.keyspaces.table.dropped.clone())
    };
    let all = super::iters::new_iter(sv, seq, (Bound::Unbounded, Bound::Unbounded));
    // 1. Plaintext tables holding every live entry, values inline; orphans to the sealed
    //    manifest until step 3 (a crash removes them at the next open).
    let mut files: Vec<FileMeta> = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let finish = |n: u64, b: TableBuilder, files: &mut Vec<FileMeta>| -> Result<()> {
        let info = b.finish()?;
        files.push(FileMeta {
            number: n,
            size: info.size,
            key_id: info.key_id,
            max_seq: info.max_seq,
            smallest: info.smallest,
            largest: info.largest,
            // A snapshot's live entries, values inline: nothing shadowed, no tombstone.
            oldest_write: 0,
            tombstones: 0,
        });
        Ok(())
    };
    for item in all {
        let (k, v) = item?;
        if super::keyspace::is_dropped(&dropped, &k) {
            continue;
        }
        if builder.is_none() {
            let n = inner.alloc_file_number(&mut inner.state.lock())?;
            let b =
                TableBuilder::create(fs, &names::table(dir, n), n, None, 0, inner.tuning.build)?;
            builder = Some((n, b));
        }
        if let Some((_, b)) = &mut builder {
            b.add(&k, seq, ValueKind::Put, &v)?;
            if b.file_size() >= inner.tuning.target_file_size {
                if let Some((n, b)) = builder.take() {
                    finish(n, b, &mut files)?;
                }
            }
        }
    }
    if let Some((n, b)) = builder.take() {
        finish(n, b, &mut files)?;
    }
    // An empty plaintext WAL for the manifest to name as the oldest needed.
    let (wal_number, manifest_number, reserved) = {
        let mut st = inner.state.lock();
        let w = inner.alloc_file_number(&mut st)?;
        (w, inner.alloc_file_number(&mut st)?, st.reserved_file_numbers)
    };
    let boundary = manifest_number + 1;
    // 2. The state that lets the key open a database of plaintext files below `boundary`.
    write_state(fs, dir, &ring, boundary)?;
    // Only now the WAL: a plaintext WAL the state does not yet accept would stop the encrypted
    // database from opening if this run failed before the state was written.
    let wal = names::wal(dir, wal_number);
    drop(WalWriter::create(fs, &wal, wal_number, None, inner.tuning.build.compression)?);
    // 3. The plaintext manifest: from here on the data is in the plaintext tables alone.
    let last = (manifest::NUM_LEVELS - 1) as u8;
    let data = ManifestData {
        next_file_number: boundary.max(reserved),
        last_sequence: seq,
        log_number: wal_number,
        files: files.iter().map(|f| (last, f.clone())).collect(),
        segments: Vec::new(),
        rotation: (0, 0),
        audit: None,
        keyspaces: table,
        legacy_keys: false,
        db_id: Some(inner.db_id),
        // Every entry is in the new local tables: nothing is cold any more (objects the
        // database had in cold storage stay in the bucket, sealed, unnamed by any manifest).
        cold: Vec::new(),
    };
    manifest::write(fs, dir, manifest_number, &data, None, inner.tuning.build.compression)?;
    // 4. No registry: the database opens without encryption (and no longer with it).
    remove_if_present(fs, &dir.join(names::KEYS))?;
    fs.sync_dir(dir)?;
    tracing::info!(dir = %dir.display(), "sealdb: database decrypted");
    // 5. The rest of the encrypted state and every sealed file.
    let keep: std::collections::HashSet<u64> = files.iter().map(|f| f.number).collect();
    for name in fs.list(dir)? {
        let sealed = match names::parse(&name) {
            Some(names::FileName::Table(n)) => !keep.contains(&n),
            Some(names::FileName::Wal(n)) => n != wal_number,
            Some(names::FileName::ValueLog(_)) => true,
            _ => false,
        };
        if sealed {
            remove_if_present(fs, &dir.join(&name))?;
        }
    }
    tidy_files(fs, dir)
}

/// Removes the audit log and the conversion state, then syncs the directory.
fn tidy_files(fs: &dyn Fs, dir: &Path) -> Result<()> {
    remove_if_present(fs, &dir.join(AUDIT_LOG))?;
    remove_if_present(fs, &dir.join(CONVERT))?;
    fs.sync_dir(dir)?;
    Ok(())
}

/// [`decrypt_database`] on a directory without a key registry: a decryption that removed the
/// registry before a crash is tidied; anything else is refused.
fn tidy_decrypted(fs: &dyn Fs, dir: &Path) -> Result<()> {
    if !fs.exists(&dir.join(names::MANIFEST)) {
        return Err(Error::NotFound(dir.to_path_buf()));
    }
    if manifest::peek_encrypted(fs, dir) != Some(false) {
        return Err(Error::corruption(dir.join(names::KEYS), 0, "key registry missing"));
    }
    let leftovers = fs.exists(&dir.join(AUDIT_LOG)) || fs.exists(&dir.join(CONVERT));
    if !leftovers {
        return Err(Error::NotEncrypted(dir.to_path_buf()));
    }
    let _lock = fs.lock(&dir.join(names::LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::Io(e)
        }
    })?;
    tidy_files(fs, dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Cipher;

    #[test]
    fn state_roundtrip_and_forgery() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::io::StdFs;
        let ring = KeyRing::generate(Cipher::Aes256Gcm).unwrap();
        assert_eq!(read_state(&fs, dir.path(), &ring).unwrap(), None);
        write_state(&fs, dir.path(), &ring, 77).unwrap();
        assert_eq!(read_state(&fs, dir.path(), &ring).unwrap(), Some(77));
        // Another registry's audit key does not authenticate it.
        let other = KeyRing::generate(Cipher::Aes256Gcm).unwrap();
        assert!(read_state(&fs, dir.path(), &other).unwrap_err().is_corruption());
        // A retired audit key still does (a rekey that crashed part-way).
        let mut rotated = ring.clone();
        rotated.rotate_audit_key().unwrap();
        assert_eq!(read_state(&fs, dir.path(), &rotated).unwrap(), Some(77));
        // Every flipped bit and every cut is refused.
        let path = dir.path().join(CONVERT);
        let good = std::fs::read(&path).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            std::fs::write(&path, &bad).unwrap();
            assert!(read_state(&fs, dir.path(), &ring).unwrap_err().is_corruption(), "byte {i}");
            std::fs::write(&path, &good[..i]).unwrap();
            assert!(read_state(&fs, dir.path(), &ring).unwrap_err().is_corruption(), "cut {i}");
        }
    }
}
