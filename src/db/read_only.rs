//! Read-only open (`Options::read_only(true)`): load the database into memory without writing
//! a byte to its directory, and refuse every call that would write.
//!
//! What a writable open writes and a read-only open does not: the lock file (a shared lock is
//! taken only on one that exists), the key registry (never created nor rewritten), the audit
//! log (no `open` line: the audit state is not loaded at all), the manifest (neither the
//! reservation nor the one recording a flushed WAL), a new WAL and value-log segment, the L0
//! table of the replayed WALs (they are replayed into the memtable only), and the removal of
//! obsolete files. No background thread starts.
//!
//! # Beside a writer
//!
//! A writer holds the exclusive lock; the shared lock is then not taken and the open goes on
//! without one (a read-only handle that did get the shared lock keeps it until closed, so a
//! writer or `DB::destroy` meanwhile is refused with `Error::Locked`). The writer goes on
//! appending, flushing, compacting and removing files, so the open reads its files in an order
//! that gives one consistent view:
//! - the key registry, then the manifest (both replaced only by an atomic rename);
//! - the bytes of every WAL from the manifest's log number on, *before* the value-log segments
//!   are opened: the writer appends a value to its segment before the WAL record pointing to
//!   it, so every pointer read is within the segment as opened. A WAL's tail being appended
//!   looks like a crash's torn tail and ends the log, never corruption;
//! - the tables and segments the manifest names, each kept open from then on: a file the
//!   writer deletes later stays readable through the open handle (on Unix).
//!
//! When a step fails because the writer moved on between the reads (a WAL, table or segment
//! the manifest named was removed; a WAL names a next WAL that was not listed; a WAL record
//! points into a segment started after the manifest was read), the manifest, registry or file
//! list on disk differ from when the attempt began: the open starts again from the registry,
//! up to [`ATTEMPTS`] times. A failure with nothing changed on disk is returned at once.
//!
//! The view is the database as of the open: later writes are not seen until a new open.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, MappedMutexGuard, Mutex, MutexGuard, RwLock};

use super::recovery::{open_segments, open_tables, replay_wals};
use super::version::SuperVersion;
use super::write::{Queue, WalState};
use super::{Inner, State, Tuning};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{names, DirLock, Fs};
use crate::manifest;
use crate::options::Options;
use crate::sstable::BlockCache;

/// Attempts at loading a consistent view while a writer keeps replacing files.
pub(crate) const ATTEMPTS: u32 = 20;

/// What a read-only engine keeps instead of the key administration it does not load.
pub(crate) struct ReadOnly {
    /// The key ring read from the registry (`None` when unencrypted).
    pub(crate) ring: Option<Arc<KeyRing>>,
}

/// Stands for the lock a read-only handle does not hold (no lock file, or a writer holds it).
struct NoLock;
impl DirLock for NoLock {}

impl Inner {
    /// [`Error::ReadOnly`] when the database was opened read-only.
    pub(crate) fn refuse_read_only(&self) -> Result<()> {
        if self.read_only.is_some() {
            return Err(Error::ReadOnly(self.dir.clone()));
        }
        Ok(())
    }

    /// `DB::verify_audit_log` of a read-only database: the audit log on disk checked with
    /// the audit keys of the registry read at open, against the anchor of the manifest on
    /// disk (nothing is appended, so the two agree unless a writer is at work beside it).
    pub(crate) fn verify_audit_log_read_only(&self) -> Result<usize> {
        let Some(ring) = self.keys() else {
            return Err(Error::InvalidArgument("the database is not encrypted".into()));
        };
        let path = self.dir.join(crate::crypto::audit::AUDIT_LOG);
        let anchor = manifest::read(self.fs.as_ref(), &self.dir, Some(&ring))?.audit;
        let bytes = match self.fs.read_all(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corruption(&path, 1, "audit log missing"));
            }
            Err(e) => return Err(e.into()),
        };
        let n = crate::crypto::audit::verify(&bytes, &ring.audit_keys(), anchor.as_ref())
            .map_err(|b| Error::corruption(&path, b.line, b.reason))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// The WAL and active value-log segment, locked; [`Error::ReadOnly`] when the database was
    /// opened read-only (it has neither).
    pub(super) fn logs(&self) -> Result<MappedMutexGuard<'_, WalState>> {
        MutexGuard::try_map(self.wal.lock(), Option::as_mut)
            .map_err(|_| Error::ReadOnly(self.dir.clone()))
    }
}

/// What the directory holds at one moment, as far as an open depends on it: the manifest and
/// key registry bytes and the file names.
#[derive(PartialEq, Eq)]
struct Fingerprint {
    manifest: Vec<u8>,
    keys: Vec<u8>,
    names: Vec<String>,
}

fn fingerprint(fs: &dyn Fs, dir: &Path) -> Result<Fingerprint> {
    let read = |name: &str| match fs.read_all(&dir.join(name)) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io(e)),
    };
    let mut names = fs.list(dir)?;
    names.sort_unstable();
    Ok(Fingerprint { manifest: read(names::MANIFEST)?, keys: read(names::KEYS)?, names })
}

/// Opens the database at `options.path()` read-only (see the module documentation).
pub(super) fn open(options: &Options) -> Result<Inner> {
    let fs = options.file_system();
    let dir = options.path.clone();
    if !fs.exists(&dir.join(names::MANIFEST)) {
        return Err(Error::NotFound(dir));
    }
    if options.error_if_exists {
        return Err(Error::AlreadyExists(dir));
    }
    let lock: Box<dyn DirLock> = match fs.lock_shared(&dir.join(names::LOCK)) {
        Ok(Some(lock)) => lock,
        Ok(None) => Box::new(NoLock),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Unsupported
            ) =>
        {
            Box::new(NoLock)
        }
        Err(e) => return Err(e.into()),
    };
    let mut attempt: u32 = 0;
    loop {
        let before = fingerprint(fs.as_ref(), &dir)?;
        match load(options, &fs, &dir) {
            Ok(view) => return Ok(assemble(options, view, lock)),
            Err(e) => {
                attempt += 1;
                if attempt >= ATTEMPTS || fingerprint(fs.as_ref(), &dir)? == before {
                    return Err(e);
                }
                tracing::debug!(
                    dir = %dir.display(),
                    attempt,
                    error = %e,
                    "sealdb: read-only open raced a writer; reading the manifest again"
                );
                std::thread::sleep(Duration::from_millis(u64::from(attempt) * 5));
            }
        }
    }
}

/// The key ring of the registry, checked against the options as a writable open checks it,
/// without creating or rewriting the registry.
fn load_ring(options: &Options, fs: &dyn Fs, dir: &Path) -> Result<Option<KeyRing>> {
    let keys_path = dir.join(names::KEYS);
    let has_keys = fs.exists(&keys_path);
    let manifest_enc = manifest::peek_encrypted(fs, dir);
    let Some(enc) = &options.encryption else {
        super::recovery::refuse_encrypted(dir, has_keys, manifest_enc)?;
        return Ok(None);
    };
    if !has_keys {
        if manifest_enc == Some(false) {
            return Err(Error::NotEncrypted(dir.to_path_buf()));
        }
        return Err(Error::corruption(&keys_path, 0, "key registry missing"));
    }
    let bytes = fs.read_all(&keys_path)?;
    let (mut ring, _kek) = KeyRing::decode(&bytes, &keys_path, &enc.master)?;
    // Mid-conversion (`Encryption::encrypt_existing`): the plaintext files below the boundary.
    super::convert::apply_state(fs, dir, &mut ring)?;
    Ok(Some(ring))
}

/// One consistent view loaded from the directory.
struct View {
    ring: Option<KeyRing>,
    data: manifest::ManifestData,
    version: super::version::Version,
    vlog: crate::vlog::VlogSet,
    was_active: Option<u64>,
    recovered: Arc<crate::memtable::MemTable>,
    last_seq: u64,
    cache: Arc<BlockCache>,
    /// The file system the view reads through (the tiered one with cold files).
    fs: Arc<dyn Fs>,
    tier: Option<Arc<crate::cold::Tier>>,
}

/// Reads the registry, the manifest, the WALs' bytes, then opens the tables and segments and
/// replays the WALs into a memtable (in that order: see the module documentation).
fn load(options: &Options, fs: &Arc<dyn Fs>, dir: &Path) -> Result<View> {
    let ring = load_ring(options, fs.as_ref(), dir)?;
    let keyref = ring.as_ref();
    let data = manifest::read(fs.as_ref(), dir, keyref)?;
    let (tiered, tier) = read_tier(options, fs, dir, &data)?;
    let fs = &tiered;
    let mut wals: Vec<u64> = fs
        .list(dir)?
        .iter()
        .filter_map(|name| match names::parse(name) {
            Some(names::FileName::Wal(n)) if n >= data.log_number => Some(n),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    let mut bytes = HashMap::with_capacity(wals.len());
    for &n in &wals {
        bytes.insert(n, fs.read_all(&names::wal(dir, n))?);
    }
    let cache = Arc::new(BlockCache::new(options.cache_size));
    let version = open_tables(fs, dir, &data, keyref, &cache)?;
    let (vlog, was_active) = open_segments(fs, dir, &data, keyref, &cache)?;
    let (recovered, last_seq) = replay_wals(
        fs.as_ref(),
        dir,
        (&wals, options.memtable_size),
        Some(&bytes),
        &data,
        (&vlog, was_active),
        keyref,
    )?;
    Ok(View { ring, data, version, vlog, was_active, recovered, last_seq, cache, fs: tiered, tier })
}

/// The cold tier of a read-only view: with cold files, the configured store with no part
/// cache (it would live in the data directory), every cold file mapped to its object, and the
/// file system reads go through. Without cold files, `fs` itself and no tier (the store is
/// not needed). Cold files without cold storage: [`Error::ColdStorageRequired`].
fn read_tier(
    options: &Options,
    fs: &Arc<dyn Fs>,
    dir: &Path,
    data: &manifest::ManifestData,
) -> Result<super::recovery::Tiered> {
    if data.cold.is_empty() {
        return Ok((fs.clone(), None));
    }
    let Some(cold) = &options.cold_storage else {
        return Err(Error::ColdStorageRequired {
            path: dir.to_path_buf(),
            files: data.cold.len() as u64,
        });
    };
    let id = data.db_id.unwrap_or_default();
    let tier = Arc::new(crate::cold::Tier::new(&cold.clone().cache_size(0), id, dir, fs.clone())?);
    super::recovery::tiered_fs(fs, dir, &dir.join(names::MANIFEST), data, tier)
}

/// The engine around a loaded view: no WAL, no key administration, no background work.
fn assemble(options: &Options, view: View, lock: Box<dyn DirLock>) -> Inner {
    let mut tuning = Tuning::from_options(options);
    tuning.background_work = false;
    let vlog = Arc::new(view.vlog);
    let version = Arc::new(view.version);
    let state = State {
        mem: view.recovered.clone(),
        imms: VecDeque::new(),
        version: version.clone(),
        next_file_number: view.data.next_file_number,
        bg_error: None,
        shutting_down: false,
        compact_pointer: vec![Vec::new(); manifest::NUM_LEVELS],
        vlog: vlog.clone(),
        active_segment: view.was_active.unwrap_or(0),
        reserved_file_numbers: view.data.next_file_number,
        keyspaces: super::keyspace::Registry::new(view.data.keyspaces.clone()),
    };
    let sv = SuperVersion { mem: view.recovered, imms: Vec::new(), version, vlog };
    let ks_tuning =
        super::keyspace_options::KeyspaceTuning::new(options, &tuning, &view.data.keyspaces);
    Inner {
        dir: options.path.clone(),
        fs: view.fs,
        tuning,
        ks_tuning,
        keys: None,
        read_only: Some(ReadOnly { ring: view.ring.map(Arc::new) }),
        cache: view.cache,
        state: Mutex::new(state),
        bg_cv: Condvar::new(),
        sv: RwLock::new(Arc::new(sv)),
        last_seq: AtomicU64::new(view.last_seq),
        queue: Mutex::new(Queue::default()),
        wal: Mutex::new(None),
        flush_lock: Mutex::new(()),
        compaction_lock: Mutex::new(()),
        gc_lock: Mutex::new(()),
        counters: super::stats::Counters::default(),
        txns: super::txn::Tracker::default(),
        db_id: view.data.db_id.unwrap_or_default(),
        tier: view.tier,
        erase: super::erase::Tracker::default(),
        _lock: lock,
    }
}
