//! Checkpoints: a consistent copy of the live database in another directory, still sealed
//! under the same keys, that opens like any database. Backups (`crate::backup`) send the same
//! set of files elsewhere.
//!
//! How a consistent set of files is taken ([`Capture`]):
//! 1. `gc_lock` is taken (first in the lock order, see [`Inner`]) and held until the copy is
//!    done: value-log GC, value-log re-sealing and key destruction wait, so no segment is
//!    removed or rewritten in place and no data key a captured file needs leaves `KEYS`.
//! 2. The memtable is switched and flushed (writers wait at most for that switch): every
//!    write acknowledged before the call is now in a table.
//! 3. Under the state lock the version and the value-log set are cloned: holding them keeps
//!    every captured table and segment on disk (they are removed only when the last holder
//!    lets go), whatever compactions and flushes do meanwhile.
//! 4. Under the key admin lock, `KEYS` and `AUDIT.log` are read with the audit anchor that
//!    matches that log and the key ring that registry holds.
//!
//! The copy's manifest is new: it names the captured tables and every captured segment as
//! closed at the length it had (whole entries only), needs no WAL (log number 0), and anchors
//! the copied audit log. Tables and closed segments are hard-linked where the file system
//! allows (copied otherwise); the active segment's whole entries are copied; `KEYS`, the
//! audit log and the manifest are written. Every copied file and the directory are fsynced.
//!
//! Checkpoints cover local files only.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::version::Version;
use super::{Inner, DB};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{names, Fs};
use crate::manifest::{self, SegmentMeta};
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
}

/// One file of a capture: its name in a data directory and where its bytes are.
pub(crate) struct CapturedFile {
    pub(crate) name: String,
    pub(crate) source: Source,
}

/// A consistent set of files of a live database (see the module documentation). Value-log
/// GC and key destruction wait while it is held.
pub(crate) struct Capture<'a> {
    _gc: MutexGuard<'a, ()>,
    _version: Arc<Version>,
    _vlog: Arc<VlogSet>,
    pub(crate) fs: Arc<dyn Fs>,
    /// Every file, data files first, then `KEYS` and `AUDIT.log`, the manifest last.
    pub(crate) files: Vec<CapturedFile>,
    /// The key ring the captured `KEYS` holds (`None` when unencrypted).
    pub(crate) ring: Option<Arc<KeyRing>>,
}

impl Capture<'_> {
    /// The whole content of `file`.
    pub(crate) fn read(&self, file: &CapturedFile) -> Result<Vec<u8>> {
        match &file.source {
            Source::Immutable { path, len } | Source::Prefix { path, len } => {
                let f = self.fs.open(path)?;
                let mut buf = vec![0u8; usize::try_from(*len).unwrap_or(usize::MAX)];
                f.read_exact_at(&mut buf, 0)?;
                Ok(buf)
            }
            Source::Bytes(b) => Ok(b.clone()),
        }
    }
}

/// Takes a capture of the database behind `inner`.
pub(crate) fn capture(inner: &Inner) -> Result<Capture<'_>> {
    let gc = inner.gc_lock.lock();
    inner.flush()?;
    let (version, vlog, mut data) = {
        let st = inner.state.lock();
        (st.version.clone(), st.vlog.clone(), inner.manifest_data(&st))
    };
    if !data.cold.is_empty() {
        // A copy naming the same objects would share them with this database, and either
        // could delete what the other still reads.
        return Err(Error::InvalidArgument(format!(
            "the database keeps {} file(s) in cold storage: checkpoints and backups copy local \
             files only; recall() them first",
            data.cold.len()
        )));
    }
    let dir = &inner.dir;
    let mut files = Vec::new();
    for (_, f) in version.all_files() {
        let path = names::table(dir, f.meta.number);
        files.push(CapturedFile {
            name: file_name(&path),
            source: Source::Immutable { path, len: f.meta.size },
        });
    }
    data.segments.clear();
    for seg in vlog.segments.values() {
        // Only whole entries count in `size`: a prefix of that length is a closed segment.
        let closed = seg.is_closed();
        let len = seg.size.load(Ordering::Acquire);
        let path = names::vlog(dir, seg.number);
        let source = if closed {
            Source::Immutable { path: path.clone(), len }
        } else {
            Source::Prefix { path: path.clone(), len }
        };
        files.push(CapturedFile { name: file_name(&path), source });
        data.segments.push(SegmentMeta {
            number: seg.number,
            discard: seg.discard.load(Ordering::Relaxed),
            len: Some(len),
            active: false,
        });
    }
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
    Ok(Capture { _gc: gc, _version: version, _vlog: vlog, fs: inner.fs.clone(), files, ring })
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

fn materialize(capture: &Capture<'_>, dir: &Path) -> Result<()> {
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
    /// Writers wait at most for one memtable switch; value-log GC and key destruction wait
    /// until the copy is made. A failed checkpoint removes what it wrote. The copy covers
    /// the database's local files only.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let fs = self.inner.fs.clone();
        if fs.exists(dir) {
            return Err(Error::InvalidArgument(format!(
                "{} already exists (a checkpoint needs a new directory)",
                dir.display()
            )));
        }
        let capture = capture(&self.inner)?;
        create_new_dir(fs.as_ref(), dir)?;
        let r = materialize(&capture, dir);
        if r.is_err() {
            remove_partial(fs.as_ref(), dir);
        }
        r
    }

    /// A consistent set of the database's files, for backups.
    pub(crate) fn capture(&self) -> Result<Capture<'_>> {
        capture(&self.inner)
    }
}
