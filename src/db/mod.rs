//! The database facade: [`DB`], [`Snapshot`], and the engine they share ([`Inner`], its
//! mutable [`State`]). Each concern has one file:
//!
//! | to read how ...                                              | open            |
//! | ------------------------------------------------------------ | --------------- |
//! | open and recovery work (scan, keys, tables, WAL replay)      | `recovery.rs`   |
//! | a read-only open loads a view, beside a writer too           | `read_only.rs`  |
//! | a write reaches the WAL and memtable (group commit, stalls)  | `write.rs`      |
//! | a read finds a key (`get`, the shared read methods)          | `read.rs`       |
//! | iterators are built over a super-version                     | `iters.rs`      |
//! | compaction picks its inputs, where tombstones drop           | `compaction.rs` |
//! | flushes and compactions are executed                         | `jobs.rs`       |
//! | value-log GC works                                           | `gc.rs`         |
//! | keys rotate, files are re-encrypted, keys destroyed, audited | `keys.rs`       |
//! | the background threads loop                                  | `background.rs` |
//! | versions and super-versions hold tables alive                | `version.rs`    |
//! | keyspaces map onto the tree (prefixes, drop)                 | `keyspace.rs`   |
//! | transactions validate (conflict window)                      | `txn.rs`        |
//! | files move to and from the object store (cold tier)          | `tier.rs`       |
//! | deleted and overwritten values are made physically gone      | `erase.rs`      |
//!
//! Locks are taken in the order stated once, on [`Inner`].

mod background;
pub(crate) mod checkpoint;
mod compaction;
pub(crate) mod convert;
mod destroy;
pub(crate) mod erase;
mod gc;
mod iters;
mod jobs;
pub(crate) mod keys;
pub(crate) mod keyspace;
mod keyspace_options;
#[cfg(feature = "metrics")]
mod metrics;
mod read;
mod read_only;
mod recovery;
mod stats;
mod tier;
mod txn;
pub(crate) mod version;
mod write;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::WriteBatch;
use crate::crypto::registry::KeyRing;
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::io::{names, DirLock, Fs};
use crate::iter::Iter;
use crate::manifest::{self, ManifestData};
use crate::memtable::MemTable;
use crate::options::{Cipher, Options};
use crate::sstable::BlockCache;
use crate::vlog::VlogSet;
use read::{read_methods, ReadView};
use recovery::open_inner;
use version::{SuperVersion, Version};
use write::{Queue, WalState};

pub use convert::decrypt_database;
pub use keyspace::Keyspace;
pub use stats::{LevelStats, SegmentStats, Stats};
pub use txn::Transaction;

/// Largest key accepted.
pub const MAX_KEY_SIZE: usize = 64 << 20;
/// Largest value accepted.
pub const MAX_VALUE_SIZE: usize = 256 << 20;
/// Largest batch accepted (keys and values together).
pub const MAX_BATCH_SIZE: usize = 512 << 20;

/// Tuning copied out of [`Options`].
#[derive(Debug, Clone)]
pub(crate) struct Tuning {
    pub(crate) memtable_size: usize,
    pub(crate) max_immutable_memtables: usize,
    pub(crate) build: crate::sstable::BuildOptions,
    pub(crate) target_file_size: u64,
    pub(crate) l0_compaction_trigger: usize,
    pub(crate) l0_slowdown_trigger: usize,
    pub(crate) l0_stop_trigger: usize,
    pub(crate) level_base_size: u64,
    pub(crate) level_size_multiplier: u64,
    pub(crate) sync_writes: bool,
    pub(crate) background_work: bool,
    pub(crate) value_threshold: usize,
    pub(crate) vlog_segment_size: u64,
    pub(crate) vlog_gc_ratio: f64,
    /// [`Options::erase_within`], if set.
    pub(crate) erase_within: Option<std::time::Duration>,
    /// [`Options::erase_rate`].
    pub(crate) erase_rate: u64,
}

/// Mutable engine state, under `Inner::state`.
pub(crate) struct State {
    pub(crate) mem: Arc<MemTable>,
    /// Frozen memtables waiting for flush, oldest first.
    pub(crate) imms: VecDeque<Arc<MemTable>>,
    pub(crate) version: Arc<Version>,
    pub(crate) next_file_number: u64,
    /// Set when a background job or the WAL failed: writes are refused until reopen.
    pub(crate) bg_error: Option<String>,
    pub(crate) shutting_down: bool,
    /// Round-robin compaction cursor per level (largest user key last compacted).
    pub(crate) compact_pointer: Vec<Vec<u8>>,
    /// Live value-log segments.
    pub(crate) vlog: Arc<VlogSet>,
    /// The segment being appended to (never collected).
    pub(crate) active_segment: u64,
    /// Every number below it is reserved by the manifest on disk: no other number is used
    /// before a manifest reserves it (so none is reused after a crash).
    pub(crate) reserved_file_numbers: u64,
    /// Named and dropped keyspaces (recorded by every manifest).
    pub(crate) keyspaces: keyspace::Registry,
}

/// The engine behind a [`DB`], shared with its background threads.
///
/// # Lock order
///
/// The one statement of it; every other place links here. A thread holding a lock takes only
/// locks to its right:
///
/// `Tier::op_lock` → `gc_lock` → `wal` → `compaction_lock` → `flush_lock` → `state` → `sv`
/// (write) and `KeyAdmin::admin`
///
/// - The cold tier's `op_lock` (with cold storage only) is held by an archive, recall or
///   orphan-sweep pass, which takes `compaction_lock` or `gc_lock` under it, and by a
///   checkpoint or backup capture for its whole copy, which takes `gc_lock` under it.
/// - `queue` is taken alone (a writer releases it before the group-commit leader takes `wal`).
///   A waiting writer's slot lock (`write.rs`) is innermost: taken alone, or under `queue` when
///   the leader hands on the lead.
/// - The group-commit leader holds `wal`, then takes `flush_lock` when it must flush inline
///   (no background work), then `state`; nothing holding `compaction_lock` or `flush_lock`
///   waits for `wal`.
/// - Value-log GC holds `gc_lock` while it writes through the write path (`queue`, then
///   `wal`); key destruction holds `gc_lock`, `wal`, `compaction_lock` and `flush_lock`
///   together, in this order, then takes `state` and the key `admin` lock, one at a time.
/// - Background workers take `flush_lock` or `compaction_lock`, then `state` briefly.
/// - The cold tier's `Tier::op_lock` comes before all of these: the archiver holds it while it
///   takes `compaction_lock` or `gc_lock`; `erase_now`'s final check holds it, then `gc_lock`,
///   `wal`, `compaction_lock` and `flush_lock` together, in this order.
/// - `sv` (the super-version readers clone) is written only while `state` is held; readers
///   take only its read lock, also under `wal` (the leader checks GC rewrites).
/// - `admin` (key administration) and the erasure tracker's lock (`Inner::erase`) are taken
///   alone or innermost.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) tuning: Tuning,
    /// Per-keyspace options in effect.
    pub(crate) ks_tuning: keyspace_options::KeyspaceTuning,
    pub(crate) keys: Option<keys::KeyAdmin>,
    pub(crate) cache: Arc<BlockCache>,
    pub(crate) state: Mutex<State>,
    /// Signalled on every state change: new frozen memtable, flush or compaction installed,
    /// error, shutdown. Background workers and stalled writers wait on it.
    pub(crate) bg_cv: Condvar,
    sv: RwLock<Arc<SuperVersion>>,
    /// The last sequence number visible to readers.
    last_seq: AtomicU64,
    queue: Mutex<Queue>,
    /// `None` when opened read-only (see [`Inner::logs`]).
    wal: Mutex<Option<WalState>>,
    pub(crate) flush_lock: Mutex<()>,
    pub(crate) compaction_lock: Mutex<()>,
    pub(crate) gc_lock: Mutex<()>,
    /// Counters for [`DB::stats`].
    pub(crate) counters: stats::Counters,
    /// Set when opened read-only: every write is refused.
    pub(crate) read_only: Option<read_only::ReadOnly>,
    /// Open transactions and the conflict window.
    pub(crate) txns: txn::Tracker,
    /// The database id (in the manifest; object names carry it).
    pub(crate) db_id: [u8; 16],
    /// The cold tier, when the database has cold storage (`inner.fs` is then its
    /// [`TieredFs`](crate::cold::TieredFs)).
    pub(crate) tier: Option<Arc<crate::cold::Tier>>,
    /// Background erasure's bookkeeping ([`Options::erase_within`]).
    pub(crate) erase: erase::Tracker,
    _lock: Box<dyn DirLock>,
}

/// An open database. `Send + Sync`; share it with `Arc<DB>`. Dropping it closes it cleanly.
pub struct DB {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DB").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

/// A frozen view of the database: reads see exactly the writes made before it was taken,
/// across later writes, flushes and compactions.
pub struct Snapshot {
    seq: u64,
    sv: Arc<SuperVersion>,
}

/// The encryption state of a database.
#[derive(Debug, Clone)]
pub struct EncryptionStatus {
    /// The id of the data key that seals new files.
    pub current_key_id: u32,
    /// The cipher for new blocks.
    pub cipher: Cipher,
    /// Every data key still in the registry.
    pub keys: Vec<DataKeyInfo>,
    /// Bytes of live tables and value-log segments still sealed under a retired data key or
    /// another cipher: the re-encryption compactor's remaining work (a WAL under an old key
    /// is replaced at once and goes with its flush).
    pub reencrypt_bytes_left: u64,
    /// Live plaintext tables and value-log segments left from before
    /// [`Encryption::encrypt_existing`](crate::Encryption::encrypt_existing) (0 outside such a
    /// conversion); their bytes are part of `reencrypt_bytes_left`.
    pub plaintext_files_left: u64,
    /// Bytes of those plaintext files.
    pub plaintext_bytes_left: u64,
}

/// One data key and how much live data it seals.
#[derive(Debug, Clone)]
pub struct DataKeyInfo {
    /// The key id.
    pub id: u32,
    /// Bytes of live files (tables, value-log segments and WAL) sealed under it.
    pub live_bytes: u64,
    /// Live files sealed under it.
    pub live_files: u64,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: u64,
}

impl DB {
    /// Opens the database at `options.path()`, creating it if missing, and recovers any
    /// writes left in its WAL.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the public contract takes the options by value, as a move"
    )]
    pub fn open(options: Options) -> Result<DB> {
        let inner = Arc::new(open_inner(&options)?);
        let mut threads = Vec::new();
        if inner.tuning.background_work {
            for (name, f) in [
                ("sealdb-flush", background::flush_worker as fn(&Inner)),
                ("sealdb-compact", background::compaction_worker as fn(&Inner)),
                ("sealdb-vlog-gc", background::gc_worker as fn(&Inner)),
            ] {
                let i = inner.clone();
                threads.push(std::thread::Builder::new().name(name.into()).spawn(move || f(&i))?);
            }
            if inner.tier.is_some() {
                let i = inner.clone();
                threads.push(
                    std::thread::Builder::new()
                        .name("sealdb-archive".into())
                        .spawn(move || tier::archive_worker(&i))?,
                );
            }
        }
        Ok(DB { inner, threads })
    }

    /// Removes the database at `path`: only sealdb's own files (key registry first, so a
    /// half-destroyed directory has no usable keys), then the directory if it is left empty.
    /// Refuses with [`Error::Locked`](crate::Error::Locked) while a process holds the
    /// database open. A missing directory is no error. The objects of a database with cold
    /// files stay in their store (which is not known here): use [`DB::destroy_with`].
    pub fn destroy(path: impl AsRef<std::path::Path>) -> Result<()> {
        destroy::destroy(path.as_ref())
    }

    /// [`DB::destroy`] for the database at `options`' path, first deleting, when `options`
    /// has [cold storage](Options::cold_storage), every object of the database in the store
    /// (those its manifest names and orphans carrying its id; never another database's, not
    /// even one its manifest names). Needs the master key of an encrypted database to read
    /// the manifest. Removes nothing while anything fails: a wrong key, an unreachable store
    /// (run it again), or cold files with no cold storage in `options`
    /// ([`Error::ColdStorageRequired`](crate::Error::ColdStorageRequired)).
    pub fn destroy_with(options: &Options) -> Result<()> {
        destroy::destroy_with(options)
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.put(key, value);
        self.write(b)
    }

    /// Deletes `key` (a no-op if absent).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = WriteBatch::new();
        b.delete(key);
        self.write(b)
    }

    /// Applies `batch` atomically: readers and recovery after a crash see all of it or none.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.write(batch, false)
    }

    /// Makes every write that returned before this call durable (fsync of the WAL).
    pub fn sync(&self) -> Result<()> {
        self.inner.write(WriteBatch::new(), true)
    }

    read_methods!("the newest", "");

    /// A frozen view of the database as of now.
    pub fn snapshot(&self) -> Snapshot {
        let (seq, sv) = self.inner.read_view();
        Snapshot { seq, sv }
    }

    /// Writes the memtable to an SSTable; returns when it is on disk.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Flushes the memtable, compacts every table into one level (the deepest non-empty one,
    /// at least L1, not necessarily the last), dropping overwritten and deleted entries; then
    /// collects every value-log segment holding garbage and, if any was collected, flushes and
    /// compacts again. Returns when done.
    pub fn compact(&self) -> Result<()> {
        self.inner.flush()?;
        jobs::compact_all(&self.inner)?;
        if gc::gc_all(&self.inner, || self.inner.seal_active_segment())? {
            // The rewrites made older tree entries garbage: fold them away too.
            self.inner.flush()?;
            jobs::compact_all(&self.inner)?;
        }
        // See `compact_range`: no background view of a replaced version is left.
        drop(self.inner.gc_lock.lock());
        Ok(())
    }

    /// Names of the numbered files the database needs now, sorted: the tables of the current
    /// version, the live value-log segments and the WALs of the memtables (the manifest, key
    /// registry, audit log and lock file are not listed). Any other numbered file in the
    /// directory is an orphan; a table an open reader still holds is not listed once a
    /// compaction has replaced it, and is removed when the reader lets go.
    pub fn live_files(&self) -> Vec<String> {
        self.inner.live_file_names()
    }

    /// Makes every value deleted or overwritten before the call physically gone from the
    /// directory, and returns once it is: flushes the memtable (its WAL, which holds every
    /// version written to it, is deleted), compacts every table that may still stand over an
    /// older version or holds a tombstone down to where nothing older lies below it (only those
    /// tables and what they overlap, not the whole tree), collects every value-log segment
    /// holding a dead value (the active one is closed first; live values are rewritten to a
    /// new segment), and, with cold storage, deletes the replaced objects (and their parts in
    /// the local cache). On an encrypted database the audit log records an `erase_now` event
    /// with the cutoff and the work done.
    ///
    /// An open [`Snapshot`], iterator or transaction keeps the files of its view; if one still
    /// holds a replaced file when the work is done, this returns
    /// [`Error::ErasureBlocked`](crate::Error::ErasureBlocked) (the file goes when the holder is
    /// dropped; call again then). What erasure cannot reach (copies outside the directory,
    /// blocks the device or file system keeps) is in `docs/security.md`.
    pub fn erase_now(&self) -> Result<()> {
        erase::erase_now(&self.inner)
    }

    /// Compacts the key range `range` only: flushes the memtable, then, level by level from L0
    /// down to the deepest non-empty level (at least L1), compacts the tables meeting the
    /// range with the overlapping tables of the next level (from L0, every L0 table
    /// overlapping those too). Tables outside the range keep their numbers; the value log is
    /// not collected (see [`DB::compact`]). When it returns, the replaced tables are gone from
    /// disk unless an iterator or snapshot still holds them.
    pub fn compact_range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(
        &self,
        range: R,
    ) -> Result<()> {
        self.inner
            .compact_range_in(keyspace::DEFAULT_PREFIX, compaction::KeyRange::from_bounds(&range))
    }

    /// Closes the database: stops background work and syncs the WAL.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        {
            let mut st = self.inner.state.lock();
            st.shutting_down = true;
            self.inner.bg_cv.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let mut guard = self.inner.wal.lock();
        // Read-only: nothing was written, nothing is synced or recorded.
        let Some(ws) = guard.as_mut() else { return Ok(()) };
        ws.vlog.sync()?;
        ws.writer.sync()?;
        drop(guard);
        // A clean close records the rotation counter and the audit anchor as they are now
        // (unless a failure left the state in doubt).
        let mut st = self.inner.state.lock();
        if st.bg_error.is_some() {
            return Ok(());
        }
        self.inner.write_manifest(&mut st)
    }

    /// Makes a new data key current for every file written from now on (WAL, SSTables, value
    /// log, manifest); returns its id. Older files stay readable under their keys until the
    /// re-encryption compactor moves them (see [`DB::reencrypt`]).
    pub fn rotate_data_key(&self) -> Result<u32> {
        keys::rotate_data_key(&self.inner)
    }

    /// Re-wraps the data keys and the audit key under `new`, atomically on disk; afterwards
    /// only `new` opens the database's current `KEYS`.
    ///
    /// The keys themselves do not change: an old master key together with an old copy of
    /// `KEYS` (from a backup, say) still yields the current data keys. When the old master key
    /// may be compromised, use [`DB::rekey`] instead.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the public contract takes the key by value, as a move"
    )]
    pub fn rotate_master_key(&self, new: MasterKey) -> Result<()> {
        keys::rotate_master_key(&self.inner, &new)
    }

    /// The incident response to a compromised master key or `KEYS` copy: makes `new` the
    /// master key, a new data key and a new audit key current, re-encrypts every live file
    /// under the new data key (unthrottled, as [`DB::reencrypt`]) and destroys every old data
    /// key. Afterwards the old master key is refused, and no old copy of `KEYS` holds a key
    /// that opens a file in use. Retired audit keys stay in the registry so the whole audit
    /// log still verifies; the switch is logged as `audit_key_rotated`.
    ///
    /// A crash part-way leaves a database that `new` opens, with the remaining re-encryption
    /// done by the background compactor (or the next [`DB::reencrypt`]).
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the public contract takes the key by value, as a move"
    )]
    pub fn rekey(&self, new: MasterKey) -> Result<()> {
        keys::rekey(&self.inner, &new)?;
        tier::after_reencrypt(&self.inner)
    }

    /// Re-encrypts every live file still sealed under a data key other than the current one
    /// (or under another cipher), unthrottled, and destroys every retired data key. Returns
    /// when no live file uses a retired key and those keys are gone from the registry.
    ///
    /// During [`Encryption::encrypt_existing`](crate::Encryption::encrypt_existing) it also
    /// seals every plaintext table and value-log segment left, and returns once none is live
    /// and the database refuses plaintext files again (a replaced plaintext file an open
    /// iterator or snapshot still holds is removed when that is dropped).
    ///
    /// With cold storage, a re-sealed file that replaced a cold one goes cold at once as a new
    /// object, and this returns after the objects sealed under retired keys are deleted.
    pub fn reencrypt(&self) -> Result<()> {
        keys::reencrypt(&self.inner)?;
        tier::after_reencrypt(&self.inner)
    }

    /// Checks the MAC chain of the audit log (`AUDIT.log`), and its length and last MAC
    /// against the anchor in the manifest on disk; returns its number of events. An edited,
    /// dropped or reordered line, dropped trailing lines, a deleted or replaced log, and a log
    /// found damaged at an earlier open (an `audit_damaged` event) are
    /// [`Error::Corruption`](crate::Error::Corruption) naming the file and line (in the offset
    /// field).
    pub fn verify_audit_log(&self) -> Result<usize> {
        if self.inner.read_only.is_some() {
            return self.inner.verify_audit_log_read_only();
        }
        keys::verify_audit_log(&self.inner)
    }

    /// Key ids, cipher and live bytes per data key; `None` when not encrypted.
    pub fn encryption_status(&self) -> Option<EncryptionStatus> {
        let ring = self.inner.keys()?;
        let mut per_key: HashMap<u32, (u64, u64)> = HashMap::new();
        let version = self.inner.state.lock().version.clone();
        for (_, f) in version.all_files() {
            let e = per_key.entry(f.meta.key_id).or_default();
            e.0 += f.meta.size;
            e.1 += 1;
        }
        if let Some(ws) = &*self.inner.wal.lock() {
            let e = per_key.entry(ws.writer.key_id()).or_default();
            e.0 += ws.writer.len();
            e.1 += 1;
        }
        let vlog = self.inner.state.lock().vlog.clone();
        for seg in vlog.segments.values() {
            let e = per_key.entry(seg.key_id()).or_default();
            e.0 += seg.size.load(Ordering::Acquire);
            e.1 += 1;
        }
        let plain = convert::plaintext_left(&self.inner);
        let keys = ring
            .keys()
            .map(|k| {
                let (live_bytes, live_files) = per_key.get(&k.id).copied().unwrap_or_default();
                DataKeyInfo { id: k.id, live_bytes, live_files, created_at: k.created_at }
            })
            .collect();
        Some(EncryptionStatus {
            current_key_id: ring.current().id,
            cipher: ring.cipher(),
            keys,
            reencrypt_bytes_left: self.inner.reencrypt_left().1,
            plaintext_files_left: plain.0,
            plaintext_bytes_left: plain.1,
        })
    }
}

impl IntoIterator for &DB {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    type IntoIter = Iter;
    fn into_iter(self) -> Iter {
        self.iter()
    }
}

impl IntoIterator for &Snapshot {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    type IntoIter = Iter;
    fn into_iter(self) -> Iter {
        self.iter()
    }
}

impl Drop for DB {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "sealdb: closing the database failed");
        }
    }
}

impl Snapshot {
    read_methods!("the snapshot's", " as of the snapshot");
}

impl ReadView for DB {
    fn view(&self) -> (u64, Arc<SuperVersion>) {
        self.inner.read_view()
    }
}

impl ReadView for Snapshot {
    fn view(&self) -> (u64, Arc<SuperVersion>) {
        (self.seq, self.sv.clone())
    }
}

impl Inner {
    /// `DB::compact_range` and `Keyspace::compact_range`: compacts `range`, on the user keys of
    /// the keyspace with `prefix`.
    pub(crate) fn compact_range_in(
        &self,
        prefix: &[u8],
        range: compaction::KeyRange,
    ) -> Result<()> {
        let r = keyspace::key_range_in(prefix, range);
        self.flush()?;
        jobs::compact_range(self, &r)?;
        // Value-log GC holds a super-version while it looks for work, under `gc_lock`: once
        // taken here, no view of a replaced version is left in a background thread.
        drop(self.gc_lock.lock());
        Ok(())
    }

    /// [`DB::live_files`]: names of the numbered files the database needs now, sorted.
    pub(crate) fn live_file_names(&self) -> Vec<String> {
        let dir = &self.dir;
        let st = self.state.lock();
        let mut paths: Vec<PathBuf> =
            st.version.all_files().map(|(_, f)| names::table(dir, f.meta.number)).collect();
        paths.extend(st.vlog.segments.keys().map(|&n| names::vlog(dir, n)));
        paths.push(names::wal(dir, st.mem.wal_number));
        paths.extend(st.imms.iter().map(|m| names::wal(dir, m.wal_number)));
        drop(st);
        let mut names: Vec<String> = paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub(crate) fn install_sv(&self, st: &State) {
        let sv = SuperVersion {
            mem: st.mem.clone(),
            imms: st.imms.iter().rev().cloned().collect(),
            version: st.version.clone(),
            vlog: st.vlog.clone(),
        };
        *self.sv.write() = Arc::new(sv);
    }

    /// The current key ring (`None` when unencrypted).
    pub(crate) fn keys(&self) -> Option<Arc<KeyRing>> {
        self.keys
            .as_ref()
            .map(keys::KeyAdmin::ring)
            .or_else(|| self.read_only.as_ref()?.ring.clone())
    }

    /// Counts bytes sealed under the current data key (for rotation by volume).
    pub(crate) fn count_sealed(&self, n: u64) {
        if let Some(k) = &self.keys {
            k.sealed_bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The manifest record of the current state; its next file number reserves
    /// [`manifest::FILE_NUMBER_RESERVE`] numbers beyond those allocated.
    pub(crate) fn manifest_data(&self, st: &State) -> ManifestData {
        let log_number = st.imms.front().map_or(st.mem.wal_number, |m| m.wal_number);
        ManifestData {
            next_file_number: st.next_file_number + manifest::FILE_NUMBER_RESERVE,
            last_sequence: self.last_seq.load(Ordering::Acquire),
            log_number,
            files: st.version.all_files().map(|(l, f)| (l as u8, f.meta.clone())).collect(),
            segments: st
                .vlog
                .segments
                .values()
                .map(|s| {
                    let (len, active) = s.recorded();
                    manifest::SegmentMeta {
                        number: s.number,
                        discard: s.discard.load(Ordering::Relaxed),
                        len: Some(len),
                        active,
                    }
                })
                .collect(),
            rotation: self.keys.as_ref().map_or((0, 0), keys::KeyAdmin::rotation),
            audit: self.keys.as_ref().and_then(keys::KeyAdmin::anchor),
            keyspaces: st.keyspaces.table.clone(),
            legacy_keys: false,
            db_id: Some(self.db_id),
            cold: self.tier.as_ref().map_or_else(Vec::new, |t| {
                t.manifest_entries(|kind, n| match kind {
                    manifest::ColdKind::Table => {
                        st.version.all_files().any(|(_, f)| f.meta.number == n)
                    }
                    manifest::ColdKind::Segment => st.vlog.segments.contains_key(&n),
                })
            }),
        }
    }

    /// A new file number, reserved by a manifest on disk (one is written first when the
    /// reservation is used up).
    pub(crate) fn alloc_file_number(&self, st: &mut State) -> Result<u64> {
        if st.next_file_number >= st.reserved_file_numbers {
            self.write_manifest(st)?;
        }
        let n = st.next_file_number;
        st.next_file_number += 1;
        Ok(n)
    }

    /// Writes the manifest for `st` (which the caller holds).
    ///
    /// On failure the database is poisoned: the rename may or may not have happened, so the
    /// caller keeps every file the old or the new manifest could name (the next open removes
    /// whichever are orphans).
    pub(crate) fn write_manifest(&self, st: &mut State) -> Result<()> {
        // A read-only database writes nothing (every public write path refuses earlier).
        self.refuse_read_only()?;
        // The manifest's own number is reserved by the manifest itself.
        let number = st.next_file_number;
        st.next_file_number += 1;
        let data = self.manifest_data(st);
        let r = manifest::write(
            self.fs.as_ref(),
            &self.dir,
            number,
            &data,
            self.keys().as_deref(),
            self.tuning.build.compression,
        );
        if r.is_ok() {
            st.reserved_file_numbers = data.next_file_number;
            if let Some(t) = &self.tier {
                t.manifest_written();
            }
        }
        if let Err(e) = &r {
            // A temp file left by the failed write goes at once (the manifest itself is the
            // old one or the new one, whole).
            let tmp = self.dir.join(format!("{}.tmp", names::MANIFEST));
            if self.fs.exists(&tmp) {
                let _ = self.fs.remove(&tmp);
            }
            if st.bg_error.is_none() {
                st.bg_error = Some(format!("manifest write failed: {e}"));
            }
            self.bg_cv.notify_all();
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_up_reservation_is_renewed_before_a_number_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let db = DB::open(Options::new(dir.path()).background_work(false)).unwrap();
        let on_disk =
            || manifest::read(db.inner.fs.as_ref(), dir.path(), None).unwrap().next_file_number;
        for round in 0..3u8 {
            let before = on_disk();
            let n = {
                let mut st = db.inner.state.lock();
                // As if every reserved number had been handed out since the last manifest write.
                assert_eq!(st.reserved_file_numbers, before);
                st.next_file_number = st.reserved_file_numbers;
                db.inner.alloc_file_number(&mut st).unwrap()
            };
            assert!(n >= before, "round {round}: the number lies beyond the old reservation");
            assert!(n < on_disk(), "round {round}: {n} used before a manifest reserved it");
            // Within a reservation no manifest is written.
            let again = on_disk();
            let m = db.inner.alloc_file_number(&mut db.inner.state.lock()).unwrap();
            assert_eq!((m, on_disk()), (n + 1, again));
            db.put([round], [round]).unwrap();
            db.flush().unwrap();
        }
    }
}
