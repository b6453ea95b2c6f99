//! Checkpoints: a consistent copy of the live database in another directory, still sealed
//! under the same keys, that opens like any database. Backups (`crate::backup`) send the same
//! set of files elsewhere.
//!
//! How a consistent set of files is taken ([`Capture`]):
//! 1. `gc_lock` is taken (first in the lock order after the cold tier's `op_lock`, see
//!    [`Inner`]) and held until the copy is done: value-log GC, value-log re-sealing and key destruction wait, so no segment is
//!    removed or rewritten in place and no data key a captured file needs leaves `KEYS`.
//! 2. The memtable is switched and flushed (writers wait at most for that switch): every
//!    write acknowledged before the call is now in a table.
//! 3. Under the state lock the version and the value-log set are cloned: holding them keeps
//!    every captured table and segment on disk (they are removed only when the last holder
//!    lets go), whatever compactions and flushes do meanwhile.
//! 4. Under the key admin lock, `KEYS` and `AUDIT.log` are read with the audit anchor that
//!    matches that log and the key ring that registry holds.
//!
//! With cold storage, the tier's `op_lock` is taken before `gc_lock` (see [`Inner`]), so no
//! file is archived or recalled while the capture is held: a captured local file stays in the
//! data directory and a captured cold file's object stays in the store.
//!
//! The copy's manifest is new: it names the captured tables and every captured segment as
//! closed at the length it had (whole entries only), needs no WAL (log number 0), and anchors
//! the copied audit log. Tables and closed segments are hard-linked where the file system
//! allows (copied otherwise); the active segment's whole entries are copied; `KEYS`, the
//! audit log and the manifest are written. Every copied file and the directory are fsynced.
//!
//! Cold files and the database id ([`Purpose`]):
//! - A checkpoint gets a new database id. Its cold files stay cold: each object is copied
//!   (server-side where the store can, checked whole either way) to a new object named with
//!   the checkpoint's id, and its manifest pins the same size and SHA-256 (the sealed bytes do
//!   not depend on where a file lives). The checkpoint shares no object with the original, so
//!   neither deletes what the other reads; it opens with the same cold storage.
//! - A backup holds every file itself: cold files are fetched whole and checked against
//!   their pinned size and digest, and its manifest names no cold file and no database id,
//!   so each restored copy gets an id of its own when it is first opened.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::version::Version;
use super::{Inner, DB};
use crate::cold::{ColdObject, Tier};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{names, Fs};
use crate::manifest::{self, ColdKind, ColdMeta, SegmentMeta};
use crate::vlog::VlogSet;

/// Bytes copied at a time.
const COPY_CHUNK: u64 = 1 << 20;

/// Where the bytes of a captured file come from.
pub(crate) enum Source {
    /// The whole of an immutable file of the live directory (`len` bytes): linked or copied.
    Immutable { path: PathBuf, len: u64 },
    /// The first `len` bytes of a file still appended to: copied.
    Prefix { path: PathBuf, len: u64 },
    /// Bytes made or read for the copy (manifest, key registry, audit log).
    Bytes(Vec<u8>),
    /// A cold file of the live database: its object, fetched whole and checked against the
    /// size and digest the manifest pins.
    Cold(Arc<ColdObject>),
}

/// One file of a capture: its name in a data directory and where its bytes are.
pub(crate) struct CapturedFile {
    pub(crate) name: String,
    pub(crate) source: Source,
}

impl CapturedFile {
    /// The file's size and SHA-256 when known without reading it (a cold file's, pinned by the
    /// manifest).
    pub(crate) fn pinned(&self) -> Option<(u64, [u8; 32])> {
        match &self.source {
            Source::Cold(obj) => Some((obj.meta.size, obj.meta.digest)),
            _ => None,
        }
    }
}

/// A cold file a checkpoint copies to an object of its own.
pub(crate) struct ColdCopy {
    from: Arc<ColdObject>,
    /// The new object's name (carrying the checkpoint's database id).
    to: String,
}

/// What a capture is for: how it treats cold files and the database id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A new database id; cold files copied to objects named with it.
    Checkpoint,
    /// Every file held by the copy itself (cold files fetched); no database id.
    Backup,
}

/// A consistent set of files of a live database (see the module documentation). Value-log
/// GC, key destruction, archiving and recall wait while it is held.
pub(crate) struct Capture<'a> {
    _gc: MutexGuard<'a, ()>,
    _tier_op: Option<MutexGuard<'a, ()>>,
    _version: Arc<Version>,
    _vlog: Arc<VlogSet>,
    pub(crate) fs: Arc<dyn Fs>,
    tier: Option<Arc<Tier>>,
    /// Every file, data files first, then `KEYS` and `AUDIT.log`, the manifest last.
    pub(crate) files: Vec<CapturedFile>,
    /// Cold files to copy to the checkpoint's own objects (checkpoints only).
    copies: Vec<ColdCopy>,
    /// The key ring the captured `KEYS` holds (`None` when unencrypted).
    pub(crate) ring: Option<Arc<KeyRing>>,
}

impl Capture<'_> {
    /// The whole content of `file` (a cold file's checked against its pinned size and digest:
    /// a difference is [`Error::Corruption`] naming the object).
    pub(crate) fn read(&self, file: &CapturedFile) -> Result<Vec<u8>> {
        match &file.source {
            Source::Immutable { path, len } | Source::Prefix { path, len } => {
                let f = self.fs.open(path)?;
                let mut buf = vec![0u8; usize::try_from(*len).unwrap_or(usize::MAX)];
                f.read_exact_at(&mut buf, 0)?;
                Ok(buf)
            }
            Source::Bytes(b) => Ok(b.clone()),
            Source::Cold(obj) => Ok(self.tier()?.fetch_whole(obj)?.to_vec()),
        }
    }

    fn tier(&self) -> Result<&Arc<Tier>> {
        self.tier.as_ref().ok_or_else(|| Error::InvalidArgument("no cold storage".into()))
    }

    /// Makes the checkpoint's copies of the cold files. On failure, deletes those made.
    fn copy_cold(&self) -> Result<()> {
        if self.copies.is_empty() {
            return Ok(());
        }
        let tier = self.tier()?;
        for (i, c) in self.copies.iter().enumerate() {
            if let Err(e) = tier.copy_object(&c.from, &c.to) {
                self.delete_copies(i);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Deletes the first `n` copies (a failed checkpoint's). One the store refuses to delete
    /// stays, under the abandoned checkpoint's id, which no database owns.
    fn delete_copies(&self, n: usize) {
        if let Some(tier) = &self.tier {
            for c in &self.copies[..n] {
                if let Err(e) = tier.bucket.delete(&c.to) {
                    tracing::warn!(error = %e, "sealdb: a failed checkpoint's object copy stays");
                }
            }
        }
    }
}

/// Takes a capture of the database behind `inner`.
pub(crate) fn capture(inner: &Inner, purpose: Purpose) -> Result<Capture<'_>> {
    let tier_op = inner.tier.as_ref().map(|t| t.op_lock.lock());
    let gc = inner.gc_lock.lock();
    inner.flush()?;
    let (version, vlog, mut data) = {
        let st = inner.state.lock();
        (st.version.clone(), st.vlog.clone(), inner.manifest_data(&st))
    };
    let tier = inner.tier.clone();
    // A checkpoint is a database of its own: a new id, so that it never owns (sweeps,
    // deletes) an object of this database, nor this one an object of it. A backup has none:
    // each database restored from it makes its own at its first open.
    let new_id = match purpose {
        Purpose::Checkpoint => {
            let mut id = [0u8; 16];
            crate::crypto::random_bytes(&mut id)?;
            Some(id)
        }
        Purpose::Backup => None,
    };
    data.db_id = new_id;
    let cold = std::mem::take(&mut data.cold);
    let cold_obj = |kind: ColdKind, number: u64| -> Option<Arc<ColdObject>> {
        let meta = cold.iter().find(|c| c.kind == kind && c.number == number)?;
        let tier = tier.as_ref()?;
        Some(Arc::new(ColdObject { full: tier.full_path(&meta.name), meta: meta.clone() }))
    };
    let dir = &inner.dir;
    let mut files = Vec::new();
    let mut copies = Vec::new();
    // A cold file: copied to a new object (checkpoint) or fetched (backup).
    let mut take_cold = |obj: Arc<ColdObject>, path: &Path, files: &mut Vec<CapturedFile>| {
        match new_id {
            Some(id) => {
                let to = crate::cold::object_name(&id, obj.meta.kind, obj.meta.number)?;
                data.cold.push(ColdMeta { name: to.clone(), ..obj.meta.clone() });
                copies.push(ColdCopy { from: obj, to });
            }
            None => files.push(CapturedFile { name: file_name(path), source: Source::Cold(obj) }),
        }
        Ok::<(), Error>(())
    };
    for (_, f) in version.all_files() {
        let path = names::table(dir, f.meta.number);
        if let Some(obj) = cold_obj(ColdKind::Table, f.meta.number) {
            take_cold(obj, &path, &mut files)?;
            continue;
        }
        files.push(CapturedFile {
            name: file_name(&path),
            source: Source::Immutable { path, len: f.meta.size },
        });
    }
    let mut segments = Vec::new();
    for seg in vlog.segments.values() {
        // Only whole entries count in `size`: a prefix of that length is a closed segment.
        let closed = seg.is_closed();
        let len = seg.size.load(Ordering::Acquire);
        let path = names::vlog(dir, seg.number);
        segments.push(SegmentMeta {
            number: seg.number,
            discard: seg.discard.load(Ordering::Relaxed),
            len: Some(len),
            active: false,
        });
        if let Some(obj) = cold_obj(ColdKind::Segment, seg.number) {
            take_cold(obj, &path, &mut files)?;
            continue;
        }
        let source = if closed {
            Source::Immutable { path: path.clone(), len }
        } else {
            Source::Prefix { path: path.clone(), len }
        };
        files.push(CapturedFile { name: file_name(&path), source });
    }
    data.segments = segments;
    // Every acknowledged write is in a table: no WAL is needed.
    data.log_number = 0;
    let ring = match &inner.keys {
        Some(ka) => {
            let kf = ka.key_files(inner.fs.as_ref(), dir)?;
            files.push(CapturedFile {
                name: names::KEYS.to_owned(),
                source: Source::Bytes(kf.registry),
            });
            if let Some(log) = kf.audit_log {
                files.push(CapturedFile {
                    name: crate::crypto::audit::AUDIT_LOG.to_owned(),
                    source: Source::Bytes(log),
                });
            }
            data.audit = kf.anchor;
            Some(kf.ring)
        }
        None => None,
    };
    let number = data.next_file_number;
    data.next_file_number += 1;
    let bytes =
        manifest::encode_file(number, &data, ring.as_deref(), inner.tuning.build.compression)?;
    files.push(CapturedFile { name: names::MANIFEST.to_owned(), source: Source::Bytes(bytes) });
    Ok(Capture {
        _gc: gc,
        _tier_op: tier_op,
        _version: version,
        _vlog: vlog,
        fs: inner.fs.clone(),
        tier,
        files,
        copies,
        ring,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Copies the first `len` bytes of `from` to a new file `to` and fsyncs it.
pub(crate) fn copy_file(fs: &dyn Fs, from: &Path, to: &Path, len: u64) -> Result<()> {
    let src = fs.open(from)?;
    if src.len() < len {
        return Err(Error::corruption(from, src.len(), "file shorter than recorded"));
    }
    let mut dst = fs.create(to)?;
    let mut buf = Vec::new();
    let mut pos = 0;
    while pos < len {
        let n = COPY_CHUNK.min(len - pos);
        buf.resize(n as usize, 0);
        src.read_exact_at(&mut buf, pos)?;
        dst.append(&buf)?;
        pos += n;
    }
    dst.sync()?;
    Ok(())
}

/// Writes `bytes` to a new file `to` and fsyncs it.
pub(crate) fn write_file(fs: &dyn Fs, to: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs.create(to)?;
    f.append(bytes)?;
    f.sync()?;
    Ok(())
}

/// Refuses an existing `dir`, then creates it (its parent's entry made durable).
pub(crate) fn create_new_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    if fs.exists(dir) {
        return Err(Error::InvalidArgument(format!(
            "{} already exists (a checkpoint or restore needs a new directory)",
            dir.display()
        )));
    }
    fs.create_dir_all(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs.sync_dir(parent)?;
    }
    Ok(())
}

/// Removes what a failed checkpoint or restore left in `dir` (which it created), then `dir`.
pub(crate) fn remove_partial(fs: &dyn Fs, dir: &Path) {
    if let Ok(entries) = fs.list(dir) {
        for name in entries {
            let _ = fs.remove(&dir.join(name));
        }
    }
    let _ = fs.remove_dir(dir);
}

/// Writes the capture into `dir`: the cold files' copies first, then the files, the manifest
/// last. On failure the copies made are deleted (the caller removes `dir`).
fn materialize(capture: &Capture<'_>, dir: &Path) -> Result<()> {
    capture.copy_cold()?;
    let r = write_files(capture, dir);
    if r.is_err() {
        capture.delete_copies(capture.copies.len());
    }
    r
}

fn write_files(capture: &Capture<'_>, dir: &Path) -> Result<()> {
    let fs = capture.fs.as_ref();
    for f in &capture.files {
        let to = dir.join(&f.name);
        match &f.source {
            Source::Immutable { path, len } => {
                if fs.hard_link(path, &to).is_err() {
                    copy_file(fs, path, &to, *len)?;
                }
            }
            Source::Prefix { path, len } => copy_file(fs, path, &to, *len)?,
            Source::Bytes(b) => write_file(fs, &to, b)?,
            Source::Cold(_) => write_file(fs, &to, &capture.read(f)?)?,
        }
    }
    fs.sync_dir(dir)?;
    Ok(())
}

impl DB {
    /// A consistent copy of the database as it is now, in `dir` (which must not exist), still
    /// sealed under the same keys (its `KEYS` is a copy of this one's, opened by the same
    /// master key); it opens like any database and holds every write acknowledged before the
    /// call. Tables and closed value-log segments are hard-linked where the file system
    /// allows (copied otherwise); the rest is copied and fsynced.
    ///
    /// The checkpoint is a database of its own, with a new database id. With cold storage its
    /// cold files stay cold: each object is copied (server-side where the store can) to a new
    /// object named with the checkpoint's id, read back whole and checked against the size and
    /// SHA-256 the manifest pins (a damaged object is [`Error::Corruption`] naming it, and no
    /// checkpoint is made). The checkpoint shares no object with this database, so either can
    /// compact, recall or be destroyed without harming the other; it opens with the same
    /// [`ColdStorage`](crate::ColdStorage) (store and prefix).
    ///
    /// Writers wait at most for one memtable switch; value-log GC, key destruction, archiving
    /// and recall wait until the copy is made. A failed checkpoint removes what it wrote
    /// (files and object copies).
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let fs = self.inner.fs.clone();
        if fs.exists(dir) {
            return Err(Error::InvalidArgument(format!(
                "{} already exists (a checkpoint needs a new directory)",
                dir.display()
            )));
        }
        let capture = capture(&self.inner, Purpose::Checkpoint)?;
        create_new_dir(fs.as_ref(), dir)?;
        let r = materialize(&capture, dir);
        if r.is_err() {
            remove_partial(fs.as_ref(), dir);
        }
        r
    }

    /// A consistent set of the database's files, for backups (cold files fetched).
    pub(crate) fn capture(&self) -> Result<Capture<'_>> {
        capture(&self.inner, Purpose::Backup)
    }
}
