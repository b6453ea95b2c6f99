//! The cold tier: immutable files (tables, closed value-log segments) moved to an object store
//! and read from there by ranged GETs, as they are (sealed; nothing is re-sealed).
//!
//! | to read how ...                                                  | open        |
//! | ---------------------------------------------------------------- | ----------- |
//! | the application configures the tier ([`ColdStorage`])            | this file   |
//! | object names are made (database id, spread prefix, upload nonce) | this file   |
//! | a cold file is read (ranged GETs, read-ahead, the part cache)    | `file.rs`   |
//! | a cold file's path reaches its object (the [`Fs`] layer)         | `fs.rs`     |
//! | files move (archive, recall, orphans, the archiver's backoff)    | `db/tier.rs`|
//!
//! A cold file keeps its path in the engine: the [`TieredFs`] layer beneath `Inner::fs` maps
//! the paths of cold files to their objects. Opening one gives a [`ColdFile`]; removing one
//! (the engine removes a file once no manifest names it) queues its object for deletion.
//! Every object request goes through [`Bucket`].

mod file;
mod fs;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

pub(crate) use file::{ColdFile, PartCache};
pub(crate) use fs::TieredFs;

use crate::error::{CorruptionCarrier, Error, Result};
use crate::io::Fs;
use crate::manifest::{ColdKind, ColdMeta};
use crate::objstore::Bucket;

/// Default age after which an immutable file goes cold.
pub const DEFAULT_COLD_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default size of the local disk cache of fetched parts.
pub const DEFAULT_CACHE_SIZE: u64 = 256 << 20;
/// Name of the part cache's directory inside the data directory.
pub(crate) const CACHE_DIR: &str = "cold-cache";

/// Where and when a database keeps its cold files: an object store (any
/// [`ObjectStore`](object_store::ObjectStore), or S3 and compatibles from the environment),
/// a prefix in it, the age after which immutable files move there, and the local disk cache of
/// fetched parts.
///
/// Only sealed bytes reach the store: object names carry the database id, the file number and
/// kind, never a key or a value (see `docs/security.md` for what the store learns).
#[derive(Clone)]
pub struct ColdStorage {
    pub(crate) store: Arc<dyn object_store::ObjectStore>,
    pub(crate) prefix: String,
    pub(crate) cold_after: Duration,
    pub(crate) cache_size: u64,
    pub(crate) request_timeout: Duration,
}

impl std::fmt::Debug for ColdStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStorage")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .field("cold_after", &self.cold_after)
            .field("cache_size", &self.cache_size)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ColdStorage {
    /// Any object store; sealdb's objects go under `prefix`.
    pub fn new(
        store: Arc<dyn object_store::ObjectStore>,
        prefix: impl Into<String>,
    ) -> ColdStorage {
        ColdStorage {
            store,
            prefix: prefix.into(),
            cold_after: DEFAULT_COLD_AFTER,
            cache_size: DEFAULT_CACHE_SIZE,
            request_timeout: crate::objstore::DEFAULT_TIMEOUT,
        }
    }

    /// S3 or S3-compatible, configured from the standard `AWS_*` environment variables
    /// (`AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true` for a local server).
    pub fn s3_from_env(bucket: &str, prefix: impl Into<String>) -> Result<ColdStorage> {
        Ok(ColdStorage::new(crate::objstore::s3_from_env(bucket)?, prefix))
    }

    /// Immutable files untouched (not modified) for `age` go cold (default 7 days);
    /// `Duration::ZERO`: every immutable file.
    #[must_use]
    pub fn cold_after(mut self, age: Duration) -> ColdStorage {
        self.cold_after = age;
        self
    }

    /// Bytes of the local disk cache of fetched parts, in the data directory (default
    /// 256 MiB); 0: no cache, every cold read fetches from the store.
    #[must_use]
    pub fn cache_size(mut self, bytes: u64) -> ColdStorage {
        self.cache_size = bytes;
        self
    }

    /// How long one request to the store may take before it fails (default 120 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> ColdStorage {
        self.request_timeout = timeout;
        self
    }
}

/// Where the database's files are and what the cold tier did since open
/// ([`DB::tiering_status`](crate::DB::tiering_status)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TieringStatus {
    /// Tables and value-log segments in the data directory (the active segment included).
    pub local_files: u64,
    /// Their bytes.
    pub local_bytes: u64,
    /// Tables and segments in the object store.
    pub cold_files: u64,
    /// Their bytes.
    pub cold_bytes: u64,
    /// Objects uploaded (and verified) since open.
    pub uploads: u64,
    /// Ranged or whole GETs of cold data since open.
    pub downloads: u64,
    /// Bytes those GETs returned.
    pub downloaded_bytes: u64,
    /// Cold reads served from the local part cache or read-ahead.
    pub cache_hits: u64,
    /// Cold reads that went to the store.
    pub cache_misses: u64,
    /// Bytes in the part cache now.
    pub cache_bytes: u64,
    /// Objects no manifest names any more, waiting to be deleted (the store was unreachable).
    pub pending_deletes: u64,
    /// The last failure of the background archiver, if its latest attempt failed.
    pub last_error: Option<String>,
}

/// A cold file: its manifest record and its object's full path (for messages).
#[derive(Debug)]
pub(crate) struct ColdObject {
    pub(crate) meta: ColdMeta,
    /// `prefix/name`: what errors name.
    pub(crate) full: PathBuf,
}

/// Counters behind [`TieringStatus`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) uploads: AtomicU64,
    pub(crate) downloads: AtomicU64,
    pub(crate) downloaded_bytes: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
}

/// The archiver's retry state: failures back off exponentially.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    pub(crate) next_try: Option<std::time::Instant>,
    pub(crate) delay: Duration,
    pub(crate) last_error: Option<String>,
}

/// First wait after a failed archiver pass; doubled on each failure up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between archiver attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The cold tier of one open database.
pub(crate) struct Tier {
    pub(crate) bucket: Bucket,
    pub(crate) db_id: [u8; 16],
    pub(crate) cold_after: Duration,
    pub(crate) cache: Option<PartCache>,
    /// The file system beneath the tiered layer (local files only).
    pub(crate) base: Arc<dyn Fs>,
    /// Cold files by their path in the data directory.
    cold: Mutex<HashMap<PathBuf, Arc<ColdObject>>>,
    /// Objects to delete once the next manifest is durable (a cold file replaced in place).
    after_manifest: Mutex<Vec<String>>,
    /// Objects no durable manifest names and no reader holds: deleted by the archiver.
    deletes: Mutex<Vec<String>>,
    /// Files that replaced a cold file (re-encryption) and go cold again at the next pass,
    /// whatever their age.
    recold: Mutex<HashSet<(ColdKind, u64)>>,
    pub(crate) counters: Counters,
    pub(crate) backoff: Mutex<Backoff>,
    /// Serializes archive, recall and orphan sweeps.
    pub(crate) op_lock: Mutex<()>,
    /// Whether the orphan sweep has run since open.
    pub(crate) swept: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier").field("bucket", &self.bucket.describe()).finish_non_exhaustive()
    }
}

/// SHA-256 of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A fresh object name for file `number` of `kind` of database `db_id` (see
/// [`Tier::object_name`]).
pub(crate) fn object_name(db_id: &[u8; 16], kind: ColdKind, number: u64) -> Result<String> {
    let mut nonce = [0u8; 8];
    crate::crypto::random_bytes(&mut nonce)?;
    let ext = match kind {
        ColdKind::Table => "sst",
        ColdKind::Segment => "vlog",
    };
    let rest = format!("{}/{number:06}-{}.{ext}", hex::encode(db_id), hex::encode(nonce));
    let h = digest(rest.as_bytes());
    Ok(format!("{}/{rest}", hex::encode(&h[..2])))
}

impl Tier {
    pub(crate) fn new(
        cold: &ColdStorage,
        db_id: [u8; 16],
        dir: &Path,
        base: Arc<dyn Fs>,
    ) -> Result<Tier> {
        let bucket =
            Bucket::new(cold.store.clone(), &cold.prefix).with_timeout(cold.request_timeout);
        let cache = if cold.cache_size == 0 {
            None
        } else {
            Some(PartCache::open(base.clone(), dir.join(CACHE_DIR), cold.cache_size)?)
        };
        Ok(Tier {
            bucket,
            db_id,
            cold_after: cold.cold_after,
            cache,
            base,
            cold: Mutex::new(HashMap::new()),
            after_manifest: Mutex::new(Vec::new()),
            deletes: Mutex::new(Vec::new()),
            recold: Mutex::new(HashSet::new()),
            counters: Counters::default(),
            backoff: Mutex::new(Backoff::default()),
            op_lock: Mutex::new(()),
            swept: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The database id as object names carry it.
    pub(crate) fn id_hex(&self) -> String {
        hex::encode(self.db_id)
    }

    /// A fresh object name for file `number` of `kind`:
    /// `HHHH/<database id>/<number>-<nonce>.<sst|vlog>`, where `HHHH` (from a hash of the rest)
    /// spreads the names of one database over 65536 key prefixes, as Pebble's do, and the
    /// random nonce makes every upload's name new (names are written once).
    pub(crate) fn object_name(&self, kind: ColdKind, number: u64) -> Result<String> {
        object_name(&self.db_id, kind, number)
    }

    /// Whether `name` is an object of this database (its names carry the id): the only ones
    /// it ever deletes. A copy of the database (a checkpoint, a restored backup) with another
    /// id never deletes objects it shares with its origin.
    pub(crate) fn owns(&self, name: &str) -> bool {
        name.split('/').nth(1) == Some(self.id_hex().as_str())
    }

    /// The object's full path for messages.
    pub(crate) fn full_path(&self, name: &str) -> PathBuf {
        PathBuf::from(self.bucket.path(name).to_string())
    }

    /// Records `path` as cold, in object `meta`.
    pub(crate) fn set_cold(&self, path: PathBuf, meta: ColdMeta) -> Arc<ColdObject> {
        let obj = Arc::new(ColdObject { full: self.full_path(&meta.name), meta });
        self.cold.lock().insert(path, obj.clone());
        obj
    }

    /// Forgets that `path` is cold (its object stays: the caller queues it when no manifest
    /// names it any more).
    pub(crate) fn unset_cold(&self, path: &Path) -> Option<Arc<ColdObject>> {
        self.cold.lock().remove(path)
    }

    /// The object holding `path`, if it is cold.
    pub(crate) fn object(&self, path: &Path) -> Option<Arc<ColdObject>> {
        self.cold.lock().get(path).cloned()
    }

    /// Every cold file's record whose (kind, number) `live` accepts: what the manifest records.
    pub(crate) fn manifest_entries(&self, live: impl Fn(ColdKind, u64) -> bool) -> Vec<ColdMeta> {
        let mut v: Vec<ColdMeta> = self
            .cold
            .lock()
            .values()
            .filter(|o| live(o.meta.kind, o.meta.number))
            .map(|o| o.meta.clone())
            .collect();
        v.sort_by_key(|m| (m.kind == ColdKind::Segment, m.number));
        v
    }

    /// Names of every object a cold file of this session refers to, or that the manifest on
    /// disk may still name (replaced, waiting for the next manifest): the sweep keeps them.
    pub(crate) fn known_names(&self) -> HashSet<String> {
        let mut names: HashSet<String> =
            self.cold.lock().values().map(|o| o.meta.name.clone()).collect();
        names.extend(self.after_manifest.lock().iter().cloned());
        names
    }

    /// Queues `name` for deletion once the next manifest is durable.
    pub(crate) fn delete_after_manifest(&self, name: String) {
        self.after_manifest.lock().push(name);
    }

    /// A manifest was made durable: what waited for one may go.
    pub(crate) fn manifest_written(&self) {
        let mut waiting = std::mem::take(&mut *self.after_manifest.lock());
        self.deletes.lock().append(&mut waiting);
    }

    /// Queues `name` for deletion (no durable manifest names it).
    pub(crate) fn delete_later(&self, name: String) {
        self.deletes.lock().push(name);
    }

    /// Objects waiting to be deleted.
    pub(crate) fn pending_deletes(&self) -> u64 {
        self.deletes.lock().len() as u64 + self.after_manifest.lock().len() as u64
    }

    /// Deletes every queued object this database owns; those that fail stay queued.
    pub(crate) fn drain_deletes(&self) -> Result<()> {
        let queued = std::mem::take(&mut *self.deletes.lock());
        let mut first_err = None;
        let mut failed = Vec::new();
        for name in queued {
            if !self.owns(&name) {
                continue;
            }
            if let Err(e) = self.bucket.delete(&name) {
                failed.push(name);
                first_err.get_or_insert(e);
            }
        }
        self.deletes.lock().extend(failed);
        first_err.map_or(Ok(()), Err)
    }

    /// Marks file (`kind`, `number`) to go cold at the next pass whatever its age.
    pub(crate) fn mark_recold(&self, kind: ColdKind, number: u64) {
        self.recold.lock().insert((kind, number));
    }

    /// Whether (`kind`, `number`) is marked to go cold again; clears the mark if `clear`.
    pub(crate) fn is_recold(&self, kind: ColdKind, number: u64, clear: bool) -> bool {
        let mut r = self.recold.lock();
        if clear {
            r.remove(&(kind, number))
        } else {
            r.contains(&(kind, number))
        }
    }

    /// Bytes `range` of `obj`, exactly: one ranged GET. A missing object, or one shorter than
    /// its pinned size, is `Corruption` naming it; an unreachable store is `Io` naming it.
    pub(crate) fn fetch(
        &self,
        obj: &ColdObject,
        range: std::ops::Range<u64>,
    ) -> Result<bytes::Bytes> {
        let want = range.end - range.start;
        let got = match self.bucket.get_range(&obj.meta.name, range.clone()) {
            Ok(b) => b,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corruption(&obj.full, 0, "cold object missing from the store"));
            }
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::Other => {
                // A store refuses a range past an object's end: ask for its size, and call a
                // size other than the pinned one what it is.
                return Err(match self.bucket.size(&obj.meta.name) {
                    Ok(Some(n)) if n != obj.meta.size => Error::corruption(
                        &obj.full,
                        n.min(obj.meta.size),
                        "cold object size differs from the manifest",
                    ),
                    Ok(None) => {
                        Error::corruption(&obj.full, 0, "cold object missing from the store")
                    }
                    _ => Error::Io(e),
                });
            }
            Err(e) => return Err(e),
        };
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        self.counters.downloaded_bytes.fetch_add(got.len() as u64, Ordering::Relaxed);
        if got.len() as u64 != want {
            return Err(Error::corruption(
                &obj.full,
                range.start,
                "cold object shorter than the manifest records",
            ));
        }
        Ok(got)
    }

    /// The whole of `obj`, checked against its pinned size and digest.
    pub(crate) fn fetch_whole(&self, obj: &ColdObject) -> Result<bytes::Bytes> {
        let got = match self.bucket.get(&obj.meta.name) {
            Ok(b) => b,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::corruption(&obj.full, 0, "cold object missing from the store"));
            }
            Err(e) => return Err(e),
        };
        self.counters.downloads.fetch_add(1, Ordering::Relaxed);
        self.counters.downloaded_bytes.fetch_add(got.len() as u64, Ordering::Relaxed);
        if got.len() as u64 != obj.meta.size {
            return Err(Error::corruption(
                &obj.full,
                got.len().min(obj.meta.size as usize) as u64,
                "cold object size differs from the manifest",
            ));
        }
        if digest(&got) != obj.meta.digest {
            return Err(Error::corruption(
                &obj.full,
                0,
                "cold object digest differs from the manifest",
            ));
        }
        Ok(got)
    }

    /// Uploads `bytes` (file `number` of `kind`, read from the data directory) as a new
    /// object, checks its size, reads it back whole and checks its digest. Returns its record;
    /// on failure the object (if any part of it was stored) is deleted.
    pub(crate) fn upload(
        &self,
        kind: ColdKind,
        number: u64,
        bytes: bytes::Bytes,
    ) -> Result<ColdMeta> {
        let name = self.object_name(kind, number)?;
        let meta = ColdMeta {
            kind,
            number,
            size: bytes.len() as u64,
            digest: digest(&bytes),
            name: name.clone(),
        };
        let checked = self.bucket.put_new(&name, bytes).and_then(|()| self.check_stored(&meta));
        if let Err(e) = checked {
            // Never named by a manifest: safe to remove (or left to the orphan sweep).
            if self.bucket.delete(&name).is_err() {
                self.delete_later(name);
            }
            return Err(e);
        }
        self.counters.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(meta)
    }

    /// Checks a newly stored object against the record it was stored for: its size, then its
    /// bytes read back whole and their SHA-256. A difference is `Corruption` naming it.
    fn check_stored(&self, meta: &ColdMeta) -> Result<()> {
        let full = self.full_path(&meta.name);
        match self.bucket.size(&meta.name)? {
            Some(n) if n == meta.size => {}
            _ => return Err(Error::corruption(&full, 0, "stored object has the wrong size")),
        }
        let back = self.bucket.get(&meta.name)?;
        if back.len() as u64 != meta.size || digest(&back) != meta.digest {
            return Err(Error::corruption(&full, 0, "stored object reads back differently"));
        }
        Ok(())
    }

    /// Copies cold file `obj` to the new object `to` (a checkpoint's, named with the
    /// checkpoint's database id), which must hold the same sealed bytes: nothing a file's
    /// blocks authenticate depends on where the file lives. A server-side copy
    /// (create-if-absent) where the store offers one, else a GET checked against the pinned
    /// size and digest, then a create-if-absent PUT. Either way the new object is then read
    /// back whole and checked, so a damaged source is never copied silently: it is
    /// `Corruption` naming the source object. On failure nothing is left under `to`
    /// (deletion is attempted; the caller owns what it could not delete).
    pub(crate) fn copy_object(&self, obj: &ColdObject, to: &str) -> Result<()> {
        let meta = ColdMeta { name: to.to_owned(), ..obj.meta.clone() };
        let copied = match self.bucket.copy_new(&obj.meta.name, to) {
            Ok(()) => self.check_stored(&meta).map_err(|e| match e {
                // The copy is the source byte for byte: a damaged copy is a damaged source
                // (re-read to name it precisely), unless the source reads back right.
                Error::Corruption { .. } => self.fetch_whole(obj).err().unwrap_or(e),
                other => other,
            }),
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::Unsupported => self
                .fetch_whole(obj)
                .and_then(|bytes| self.bucket.put_new(to, bytes))
                .and_then(|()| self.check_stored(&meta)),
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::corruption(&obj.full, 0, "cold object missing from the store"))
            }
            Err(e) => Err(e),
        };
        match &copied {
            // Not this call's object (names are random: not expected to happen).
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => {
                let _ = self.bucket.delete(to);
            }
            Ok(()) => {}
        }
        copied
    }
}

/// A corruption found in a cold object, as a `std::io::Error` (see [`CorruptionCarrier`]).
pub(crate) fn io_error(e: Error) -> std::io::Error {
    match e {
        Error::Io(e) => e,
        Error::Corruption { file, offset, reason } => {
            CorruptionCarrier { file, offset, reason }.into_io()
        }
        other => std::io::Error::other(other.to_string()),
    }
}
