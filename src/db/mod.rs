//! The database facade: open and recovery, the write path with group commit, reads,
//! snapshots, iterators and the background workers.
//!
//! Thread safety and lock order: `queue` (writers waiting for group commit) is taken alone;
//! then `gc_lock` → `wal` → `compaction_lock` → `flush_lock` → `state` (the group-commit
//! leader takes `wal`, then `flush_lock` when it must flush inline, then `state`; background
//! workers take `flush_lock` or `compaction_lock`, then `state` briefly). `sv` (the
//! super-version readers clone) is written only while `state` is held.

mod background;
mod iters;
pub(crate) mod keys;
pub(crate) mod version;

use std::collections::{HashMap, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::batch::{OpKind, WriteBatch};
use crate::crypto::registry::KeyRing;
use crate::crypto::{Kek, MasterKey};
use crate::error::{Error, Result};
use crate::io::{names, DirLock, Fs};
use crate::iter::{prefix_end, Iter};
use crate::key::ValueKind;
use crate::manifest::{self, ManifestData};
use crate::memtable::MemTable;
use crate::options::{Cipher, Options};
use crate::sstable::BlockCache;
use crate::vlog::{Pointer, VlogSet, VlogWriter, POINTER_LEN};
use crate::wal::{self, WalWriter};
use version::{SuperVersion, TableFile, Version};

/// Largest key accepted.
pub const MAX_KEY_SIZE: usize = 64 << 20;
/// Largest value accepted.
pub const MAX_VALUE_SIZE: usize = 256 << 20;
/// Largest batch accepted (keys and values together).
pub const MAX_BATCH_SIZE: usize = 512 << 20;
/// Largest group of batches written as one WAL record.
const MAX_GROUP_BYTES: usize = 4 << 20;

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
}

impl State {
    pub(crate) fn alloc_file_number(&mut self) -> u64 {
        let n = self.next_file_number;
        self.next_file_number += 1;
        n
    }
}

struct WalState {
    writer: WalWriter,
    vlog: VlogWriter,
    mem: Arc<MemTable>,
    ops: Vec<u8>,
    record: Vec<u8>,
}

/// A value as the memtable stores it: inline, or a value-log pointer.
enum Stored<'a> {
    Inline(&'a [u8]),
    Pointer([u8; POINTER_LEN]),
}

impl Stored<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Stored::Inline(v) => v,
            Stored::Pointer(p) => p,
        }
    }
}

struct Pending {
    ticket: u64,
    batch: WriteBatch,
    sync: bool,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    leader: bool,
    next_ticket: u64,
    done: HashMap<u64, Result<()>>,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) tuning: Tuning,
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
    queue_cv: Condvar,
    wal: Mutex<WalState>,
    pub(crate) flush_lock: Mutex<()>,
    pub(crate) compaction_lock: Mutex<()>,
    pub(crate) gc_lock: Mutex<()>,
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

/// Makes an error that stands for `e` for every writer of a failed group.
fn replicate(e: &Error) -> Error {
    match e {
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        Error::Corruption { file, offset, reason } => {
            Error::Corruption { file: file.clone(), offset: *offset, reason: reason.clone() }
        }
        Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
        Error::Poisoned(s) => Error::Poisoned(s.clone()),
        Error::Closed => Error::Closed,
        other => Error::Poisoned(other.to_string()),
    }
}

fn check_sizes(key: &[u8], value: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes exceeds {MAX_KEY_SIZE}",
            key.len()
        )));
    }
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes exceeds {MAX_VALUE_SIZE}",
            value.len()
        )));
    }
    Ok(())
}

impl DB {
    /// Opens the database at `options.path()`, creating it if missing, and recovers any
    /// writes left in its WAL.
    pub fn open(options: Options) -> Result<DB> {
        let inner = Arc::new(open_inner(options)?);
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
        }
        Ok(DB { inner, threads })
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

    /// Reads the newest value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let (seq, sv) = self.inner.read_view();
        get_at(key.as_ref(), seq, &sv)
    }

    /// All pairs in ascending key order.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The pairs whose keys fall in `range`, ascending.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let (seq, sv) = self.inner.read_view();
        iters::new_iter(sv, seq, bounds(&range))
    }

    /// The pairs whose keys start with `prefix`, ascending.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (seq, sv) = self.inner.read_view();
        iters::new_iter(sv, seq, prefix_bounds(prefix.as_ref()))
    }

    /// A frozen view of the database as of now.
    pub fn snapshot(&self) -> Snapshot {
        let (seq, sv) = self.inner.read_view();
        Snapshot { seq, sv }
    }

    /// Writes the memtable to an SSTable; returns when it is on disk.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Compacts every table into the last level, dropping overwritten and deleted entries;
    /// returns when done.
    pub fn compact(&self) -> Result<()> {
        self.inner.flush()?;
        background::compact_all(&self.inner)?;
        if background::gc_all(&self.inner, || self.inner.seal_active_segment())? {
            // The rewrites made older tree entries garbage: fold them away too.
            self.inner.flush()?;
            background::compact_all(&self.inner)?;
        }
        Ok(())
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
        let mut ws = self.inner.wal.lock();
        ws.vlog.sync()?;
        ws.writer.sync()
    }

    /// Makes a new data key current for every file written from now on (WAL, SSTables, value
    /// log, manifest); returns its id. Older files stay readable under their keys until the
    /// re-encryption compactor moves them (see [`DB::reencrypt`]).
    pub fn rotate_data_key(&self) -> Result<u32> {
        keys::rotate_data_key(&self.inner)
    }

    /// Re-wraps every data key under `new`, atomically on disk; afterwards only `new` opens
    /// the database.
    #[allow(clippy::needless_pass_by_value)] // the contract takes the key by value, as a move
    pub fn rotate_master_key(&self, new: MasterKey) -> Result<()> {
        keys::rotate_master_key(&self.inner, &new)
    }

    /// Re-encrypts every live file still sealed under a data key other than the current one
    /// (or under another cipher), unthrottled, and destroys every retired data key. Returns
    /// when no live file uses a retired key and those keys are gone from the registry.
    pub fn reencrypt(&self) -> Result<()> {
        keys::reencrypt(&self.inner)
    }

    /// Checks the MAC chain of the audit log (`AUDIT.log`); returns its number of events.
    /// An edited, dropped or reordered line is [`Error::Corruption`] naming the line.
    pub fn verify_audit_log(&self) -> Result<usize> {
        keys::verify_audit_log(&self.inner)
    }

    /// Key ids, cipher and live bytes per data key; `None` when not encrypted.
    pub fn encryption_status(&self) -> Option<EncryptionStatus> {
        let ring = self.inner.keys.as_ref()?.ring();
        let mut per_key: HashMap<u32, (u64, u64)> = HashMap::new();
        let version = self.inner.state.lock().version.clone();
        for (_, f) in version.all_files() {
            let e = per_key.entry(f.meta.key_id).or_default();
            e.0 += f.meta.size;
            e.1 += 1;
        }
        {
            let ws = self.inner.wal.lock();
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
            reencrypt_bytes_left: keys::bytes_left(&self.inner),
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
    /// Reads `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        get_at(key.as_ref(), self.seq, &self.sv)
    }
    /// All pairs as of the snapshot.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }
    /// The pairs in `range` as of the snapshot.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        iters::new_iter(self.sv.clone(), self.seq, bounds(&range))
    }
    /// The pairs with `prefix` as of the snapshot.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        iters::new_iter(self.sv.clone(), self.seq, prefix_bounds(prefix.as_ref()))
    }
}

/// Reads `key` as of `seq` in `sv`: memtables, then L0 newest first, then each level.
fn get_at(key: &[u8], seq: u64, sv: &SuperVersion) -> Result<Option<Vec<u8>>> {
    match get_raw(key, seq, sv)? {
        None | Some((_, ValueKind::Delete, _)) => Ok(None),
        Some((_, ValueKind::Put, v)) => Ok(Some(v)),
        Some((s, ValueKind::Pointer, p)) => sv.vlog.read(&p, key, s, None).map(Some),
    }
}

/// Whether the newest entry of `key` is the value-log pointer `ptr`.
pub(crate) fn points_at(sv: &SuperVersion, key: &[u8], ptr: Pointer) -> Result<bool> {
    Ok(matches!(get_raw(key, crate::key::MAX_SEQ, sv)?,
        Some((_, ValueKind::Pointer, p)) if Pointer::decode(&p) == Some(ptr)))
}

/// The newest entry of `key` at or below `seq`: (sequence, kind, value or pointer bytes).
fn get_raw(key: &[u8], seq: u64, sv: &SuperVersion) -> Result<Option<(u64, ValueKind, Vec<u8>)>> {
    if let Some(e) = sv.mem.get(key, seq) {
        return Ok(Some(e));
    }
    for m in &sv.imms {
        if let Some(e) = m.get(key, seq) {
            return Ok(Some(e));
        }
    }
    for f in &sv.version.levels[0] {
        if f.meta.smallest_user() <= key && key <= f.meta.largest_user() {
            if let Some(e) = f.table.get(key, seq)? {
                return Ok(Some(e));
            }
        }
    }
    for level in 1..sv.version.levels.len() {
        if let Some(f) = sv.version.find_in_level(level, key) {
            if let Some(e) = f.table.get(key, seq)? {
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

fn bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let conv = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (conv(range.start_bound()), conv(range.end_bound()))
}

fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), end)
}

impl Inner {
    /// The sequence number and super-version a read works on, taken together (see
    /// `docs/design.md`, "Reads"): every table in the super-version holds only entries at or
    /// below the sequence, so no version a reader needs was compacted away.
    pub(crate) fn read_view(&self) -> (u64, Arc<SuperVersion>) {
        let guard = self.sv.read();
        let seq = self.last_seq.load(Ordering::Acquire);
        (seq, guard.clone())
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
        self.keys.as_ref().map(keys::KeyAdmin::ring)
    }

    /// Counts bytes sealed under the current data key (for rotation by volume).
    pub(crate) fn count_sealed(&self, n: u64) {
        if let Some(k) = &self.keys {
            k.sealed_bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Whether the WAL or the active value-log segment is sealed under a key or cipher other
    /// than the current one.
    pub(crate) fn logs_stale(&self, ring: &KeyRing) -> bool {
        let ws = self.wal.lock();
        let cur = (ring.current().id, crate::seal::alg_id(Some(ring.cipher())));
        (ws.writer.key_id(), ws.writer.alg()) != cur
            || (ws.vlog.segment.key_id(), ws.vlog.segment.alg()) != cur
    }

    /// Starts a new WAL (freezing the memtable) and a new value-log segment, both under the
    /// current key.
    pub(crate) fn start_new_logs(&self) -> Result<()> {
        let mut ws = self.wal.lock();
        self.check_writable()?;
        self.switch_memtable(&mut ws)?;
        self.switch_vlog(&mut ws)
    }

    /// Waits until every frozen memtable is flushed (flushing them here without background
    /// work).
    pub(crate) fn flush_frozen(&self) -> Result<()> {
        if self.tuning.background_work {
            let mut st = self.state.lock();
            loop {
                if let Some(e) = &st.bg_error {
                    return Err(Error::Poisoned(e.clone()));
                }
                if st.imms.is_empty() {
                    return Ok(());
                }
                if st.shutting_down {
                    return Err(Error::Closed);
                }
                self.bg_cv.wait(&mut st);
            }
        } else {
            while background::flush_one(self)? {}
            Ok(())
        }
    }

    /// Group commit: queue the batch; the first writer without a leader becomes leader and
    /// writes everything queued as one WAL record with one (optional) fsync.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        for (_, k, v) in &batch.ops {
            check_sizes(k, v)?;
        }
        if batch.bytes > MAX_BATCH_SIZE {
            return Err(Error::InvalidArgument(format!(
                "batch of {} bytes exceeds {MAX_BATCH_SIZE}",
                batch.bytes
            )));
        }
        if batch.is_empty() && !sync {
            return Ok(());
        }
        let mut q = self.queue.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push(Pending { ticket, batch, sync });
        loop {
            if let Some(r) = q.done.remove(&ticket) {
                return r;
            }
            if q.leader {
                self.queue_cv.wait(&mut q);
                continue;
            }
            q.leader = true;
            let mut bytes = 0;
            let take = q
                .pending
                .iter()
                .position(|p| {
                    bytes += p.batch.bytes + 16 * p.batch.len();
                    bytes > MAX_GROUP_BYTES
                })
                .unwrap_or(q.pending.len())
                .max(1);
            let group: Vec<Pending> = q.pending.drain(..take).collect();
            drop(q);
            let res = self.write_group(&group);
            q = self.queue.lock();
            for p in &group {
                let r = match &res {
                    Ok(()) => Ok(()),
                    Err(e) => Err(replicate(e)),
                };
                q.done.insert(p.ticket, r);
            }
            q.leader = false;
            self.queue_cv.notify_all();
        }
    }

    fn check_writable(&self) -> Result<()> {
        let st = self.state.lock();
        if let Some(e) = &st.bg_error {
            return Err(Error::Poisoned(e.clone()));
        }
        if st.shutting_down {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn poison(&self, what: &str, e: &Error) {
        let mut st = self.state.lock();
        if st.bg_error.is_none() {
            st.bg_error = Some(format!("{what}: {e}"));
        }
        self.bg_cv.notify_all();
    }

    fn write_group(&self, group: &[Pending]) -> Result<()> {
        let mut guard = self.wal.lock();
        let count: usize = group.iter().map(|p| p.batch.len()).sum();
        let sync = self.tuning.sync_writes || group.iter().any(|p| p.sync);
        if count > 0 {
            self.make_room(&mut guard)?;
            let ws = &mut *guard;
            let has_rewrites = group
                .iter()
                .any(|p| p.batch.ops.iter().any(|(op, _, _)| matches!(op, OpKind::Rewrite(_))));
            // Value-log GC rewrites apply only if the key still points where GC found it,
            // judged against everything written before, including earlier ops of this group.
            let check_sv = has_rewrites.then(|| self.sv.read().clone());
            let mut written: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
            let first = self.last_seq.load(Ordering::Acquire) + 1;
            let mut seq = first;
            let mut applied: Vec<(&[u8], u64, ValueKind, Stored)> = Vec::with_capacity(count);
            ws.ops.clear();
            let compress = self.tuning.build.compression;
            for p in group {
                for (op, k, v) in &p.batch.ops {
                    let (kind, val) = match op {
                        OpKind::Delete => (ValueKind::Delete, Stored::Inline(&[])),
                        OpKind::Put if v.len() >= self.tuning.value_threshold => {
                            let ptr = ws.vlog.add(seq, k, v, compress);
                            (ValueKind::Pointer, Stored::Pointer(ptr.encode()))
                        }
                        OpKind::Put => (ValueKind::Put, Stored::Inline(v)),
                        OpKind::Rewrite(old) => {
                            let sv = check_sv.as_ref().unwrap_or_else(|| unreachable!());
                            let live = match points_at(sv, k, *old) {
                                Ok(live) => live,
                                Err(e) => {
                                    ws.vlog.discard_staged();
                                    return Err(e);
                                }
                            };
                            if written.contains(k.as_slice()) || !live {
                                continue;
                            }
                            let ptr = ws.vlog.add(seq, k, v, compress);
                            (ValueKind::Pointer, Stored::Pointer(ptr.encode()))
                        }
                    };
                    if has_rewrites {
                        written.insert(k);
                    }
                    wal::encode_op(&mut ws.ops, kind, k, val.bytes());
                    applied.push((k, seq, kind, val));
                    seq += 1;
                }
            }
            if !applied.is_empty() {
                ws.record.clear();
                wal::encode_record_header(&mut ws.record, first, applied.len() as u32);
                ws.record.extend_from_slice(&ws.ops);
                // Values reach the value log before the WAL record that points at them.
                let before = ws.writer.len() + ws.vlog.len();
                if let Err(e) = ws.vlog.write_staged() {
                    self.poison("value-log write failed", &e);
                    return Err(e);
                }
                if let Err(e) = ws.writer.add_record(&ws.record) {
                    self.poison("WAL write failed", &e);
                    return Err(e);
                }
                self.count_sealed(ws.writer.len() + ws.vlog.len() - before);
                if sync {
                    self.sync_logs(ws)?;
                }
                for (k, s, kind, val) in &applied {
                    ws.mem.insert(k, *s, *kind, val.bytes());
                }
                self.last_seq.store(seq - 1, Ordering::Release);
                if ws.vlog.len() >= self.tuning.vlog_segment_size {
                    self.switch_vlog(ws)?;
                }
                return Ok(());
            }
            ws.vlog.discard_staged();
        }
        if sync {
            self.check_writable()?;
            self.sync_logs(&mut guard)?;
        }
        Ok(())
    }

    /// fsyncs the value log, then the WAL; a failure poisons the database.
    fn sync_logs(&self, ws: &mut WalState) -> Result<()> {
        if let Err(e) = ws.vlog.sync() {
            self.poison("value-log fsync failed", &e);
            return Err(e);
        }
        if let Err(e) = ws.writer.sync() {
            self.poison("WAL fsync failed", &e);
            return Err(e);
        }
        Ok(())
    }

    /// Closes the active value-log segment and starts a new one, recorded in the manifest
    /// before any entry is written to it.
    fn switch_vlog(&self, ws: &mut WalState) -> Result<()> {
        let r = (|| {
            ws.vlog.sync()?;
            let number = self.state.lock().alloc_file_number();
            let keys = self.keys();
            let path = names::vlog(&self.dir, number);
            let w = VlogWriter::create(&self.fs, &path, number, keys.as_deref())?;
            let mut st = self.state.lock();
            let mut set = (*st.vlog).clone();
            set.segments.insert(number, w.segment.clone());
            let old = std::mem::replace(&mut st.vlog, Arc::new(set));
            let old_active = std::mem::replace(&mut st.active_segment, number);
            if let Err(e) = self.write_manifest(&mut st) {
                st.vlog = old;
                st.active_segment = old_active;
                return Err(e);
            }
            self.install_sv(&st);
            ws.vlog = w;
            Ok(())
        })();
        if let Err(e) = &r {
            self.poison("starting a value-log segment failed", e);
        }
        r
    }

    /// Makes the active value-log segment collectable by starting a new one, if it holds any
    /// entry.
    pub(crate) fn seal_active_segment(&self) -> Result<()> {
        let mut ws = self.wal.lock();
        self.check_writable()?;
        if ws.vlog.len() > ws.vlog.segment.header_len {
            self.switch_vlog(&mut ws)?;
        }
        Ok(())
    }

    /// Waits for room in the memtable (switching to a new one when full) and applies L0
    /// back-pressure. Called by the group-commit leader with the WAL locked.
    fn make_room(&self, ws: &mut WalState) -> Result<()> {
        let t = &self.tuning;
        let mut slowed = false;
        loop {
            let mut st = self.state.lock();
            if let Some(e) = &st.bg_error {
                return Err(Error::Poisoned(e.clone()));
            }
            if st.shutting_down {
                return Err(Error::Closed);
            }
            let l0 = st.version.levels[0].len();
            if t.background_work && l0 >= t.l0_stop_trigger {
                self.bg_cv.wait(&mut st);
                continue;
            }
            if t.background_work && l0 >= t.l0_slowdown_trigger && !slowed {
                drop(st);
                std::thread::sleep(std::time::Duration::from_millis(1));
                slowed = true;
                continue;
            }
            if ws.mem.approximate_size() < t.memtable_size {
                return Ok(());
            }
            if st.imms.len() >= t.max_immutable_memtables {
                if t.background_work {
                    self.bg_cv.wait(&mut st);
                } else {
                    drop(st);
                    background::flush_one(self)?;
                }
                continue;
            }
            drop(st);
            return self.switch_memtable(ws);
        }
    }

    /// Freezes the memtable and starts a new one with a new WAL.
    fn switch_memtable(&self, ws: &mut WalState) -> Result<()> {
        let number = self.state.lock().alloc_file_number();
        // The values the old WAL points at, then the old WAL with its end record naming the
        // new one, are durable before the new WAL exists.
        if let Err(e) = ws.vlog.sync().and_then(|()| ws.writer.finish(number)) {
            self.poison("closing a WAL failed", &e);
            return Err(e);
        }
        let path = names::wal(&self.dir, number);
        let writer = match WalWriter::create(
            self.fs.as_ref(),
            &path,
            number,
            self.keys().as_deref(),
            self.tuning.build.compression,
        ) {
            Ok(w) => w,
            Err(e) => {
                self.poison("creating a WAL failed", &e);
                return Err(e);
            }
        };
        let mem = Arc::new(MemTable::new(number));
        let mut st = self.state.lock();
        st.imms.push_back(std::mem::replace(&mut ws.mem, mem.clone()));
        st.mem = mem;
        self.install_sv(&st);
        self.bg_cv.notify_all();
        ws.writer = writer;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        {
            let mut ws = self.wal.lock();
            self.check_writable()?;
            if !ws.mem.is_empty() {
                self.switch_memtable(&mut ws)?;
            }
        }
        self.flush_frozen()
    }

    /// The manifest record of the current state, to be written as file `number`.
    pub(crate) fn manifest_data(&self, st: &State) -> ManifestData {
        let log_number = st.imms.front().map_or(st.mem.wal_number, |m| m.wal_number);
        ManifestData {
            next_file_number: st.next_file_number,
            last_sequence: self.last_seq.load(Ordering::Acquire),
            log_number,
            files: st.version.all_files().map(|(l, f)| (l as u8, f.meta.clone())).collect(),
            segments: st
                .vlog
                .segments
                .values()
                .map(|s| (s.number, s.discard.load(Ordering::Relaxed)))
                .collect(),
        }
    }

    /// Writes the manifest for `st` (which the caller holds).
    ///
    /// On failure the database is poisoned: the rename may or may not have happened, so the
    /// caller keeps every file the old or the new manifest could name (the next open removes
    /// whichever are orphans).
    pub(crate) fn write_manifest(&self, st: &mut State) -> Result<()> {
        let number = st.alloc_file_number();
        let data = self.manifest_data(st);
        let r = manifest::write(
            self.fs.as_ref(),
            &self.dir,
            number,
            &data,
            self.keys().as_deref(),
            self.tuning.build.compression,
        );
        if let Err(e) = &r {
            if st.bg_error.is_none() {
                st.bg_error = Some(format!("manifest write failed: {e}"));
            }
            self.bg_cv.notify_all();
        }
        r
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound)
}

/// Loads the key registry, or creates one for a new encrypted database. Writes nothing unless
/// the master key opens the registry (or the database is new).
fn load_keys(options: &Options, fs: &dyn Fs, dir: &Path) -> Result<Option<(KeyRing, Kek)>> {
    let keys_path = dir.join(names::KEYS);
    let has_keys = fs.exists(&keys_path);
    let manifest_enc = manifest::peek_encrypted(fs, dir);
    let Some(enc) = &options.encryption else {
        if has_keys {
            return Err(Error::EncryptionRequired(dir.to_path_buf()));
        }
        if manifest_enc == Some(true) {
            // An encrypted database always has its registry; a manifest claiming encryption
            // without one was damaged (or the registry was deleted).
            return Err(Error::corruption(
                dir.join(names::MANIFEST),
                10,
                "manifest claims encryption but there is no key registry",
            ));
        }
        return Ok(None);
    };
    if !has_keys {
        match manifest_enc {
            Some(false) => return Err(Error::NotEncrypted(dir.to_path_buf())),
            Some(true) => return Err(Error::corruption(&keys_path, 0, "key registry missing")),
            None if fs.exists(&dir.join(names::MANIFEST)) => {
                return Err(Error::corruption(
                    dir.join(names::MANIFEST),
                    0,
                    "manifest header unreadable",
                ));
            }
            None => {}
        }
        let ring = KeyRing::generate(enc.cipher)?;
        let kek = enc.master.resolve_new()?;
        keys::write_registry(fs, dir, &ring, &kek)?;
        return Ok(Some((ring, kek)));
    }
    let bytes = fs.read_all(&keys_path)?;
    let (mut ring, kek) = KeyRing::decode(&bytes, &keys_path, &enc.master).inspect_err(|e| {
        if matches!(e, Error::WrongMasterKey) {
            tracing::warn!(dir = %dir.display(), "sealdb: open refused, wrong master key");
        }
    })?;
    if ring.cipher() != enc.cipher {
        ring.set_cipher(enc.cipher);
        keys::write_registry(fs, dir, &ring, &kek)?;
    }
    Ok(Some((ring, kek)))
}

#[allow(clippy::needless_pass_by_value)] // `DB::open` hands its options over for good
fn open_inner(options: Options) -> Result<Inner> {
    let fs = options.fs.clone();
    let dir = options.path.clone();
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} exists and is not a directory",
            dir.display()
        )));
    }
    fs.create_dir_all(&dir)?;
    let lock = fs.lock(&dir.join(names::LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.clone())
        } else {
            Error::Io(e)
        }
    })?;
    let loaded = load_keys(&options, fs.as_ref(), &dir)?;
    let ring0 = loaded.as_ref().map(|(r, _)| Arc::new(r.clone()));
    let keyref = ring0.as_deref();

    let has_manifest = fs.exists(&dir.join(names::MANIFEST));
    let mut data = if has_manifest {
        manifest::read(fs.as_ref(), &dir, keyref)?
    } else {
        ManifestData { next_file_number: 1, ..ManifestData::default() }
    };

    // Scan the directory: stale temp files, orphan tables, WALs to replay.
    let mut max_number = 0;
    let mut wals = Vec::new();
    let live: std::collections::HashSet<u64> = data.files.iter().map(|(_, f)| f.number).collect();
    let mut orphans = Vec::new();
    for name in fs.list(&dir)? {
        match names::parse(&name) {
            Some(names::FileName::Temp) => orphans.push(dir.join(&name)),
            Some(names::FileName::Wal(n)) => {
                max_number = max_number.max(n);
                if n >= data.log_number {
                    wals.push(n);
                } else {
                    orphans.push(dir.join(&name));
                }
            }
            Some(names::FileName::Table(n)) => {
                max_number = max_number.max(n);
                if !live.contains(&n) {
                    orphans.push(dir.join(&name));
                }
            }
            Some(names::FileName::ValueLog(n)) => {
                max_number = max_number.max(n);
                if !data.segments.iter().any(|(s, _)| *s == n) {
                    orphans.push(dir.join(&name));
                }
            }
            None => {}
        }
    }
    if !has_manifest && (!wals.is_empty() || !live.is_empty() || max_number > 0) {
        return Err(Error::corruption(
            dir.join(names::MANIFEST),
            0,
            "manifest missing but data files exist",
        ));
    }
    wals.sort_unstable();
    data.next_file_number = data.next_file_number.max(max_number + 1);
    if !has_manifest {
        // A new database: record it before creating any other file, so that a crash from
        // here on leaves a directory that opens.
        let number = data.next_file_number;
        data.next_file_number += 1;
        manifest::write(fs.as_ref(), &dir, number, &data, keyref, options.compression)?;
    }

    let tuning = Tuning {
        memtable_size: options.memtable_size,
        max_immutable_memtables: options.max_immutable_memtables,
        build: crate::sstable::BuildOptions {
            block_size: options.block_size,
            restart_interval: options.block_restart_interval,
            compression: options.compression,
            bloom_bits_per_key: options.bloom_bits_per_key,
        },
        target_file_size: options.target_file_size,
        l0_compaction_trigger: options.l0_compaction_trigger,
        l0_slowdown_trigger: options.l0_slowdown_trigger,
        l0_stop_trigger: options.l0_stop_trigger,
        level_base_size: options.level_base_size,
        level_size_multiplier: options.level_size_multiplier,
        sync_writes: options.sync_writes,
        background_work: options.background_work,
        value_threshold: options.value_threshold,
        vlog_segment_size: options.vlog_segment_size,
        vlog_gc_ratio: options.vlog_gc_ratio,
    };
    let cache = Arc::new(BlockCache::new(options.cache_size));

    // Open every table the manifest names.
    let mut version = Version::default();
    for (level, meta) in &data.files {
        let path = names::table(&dir, meta.number);
        let table =
            crate::sstable::Table::open(fs.as_ref(), &path, meta.number, keyref, cache.clone())
                .map_err(|e| {
                    if is_not_found(&e) {
                        Error::corruption(&path, 0, "table named by the manifest is missing")
                    } else {
                        e
                    }
                })?;
        if table.key_id() != meta.key_id {
            return Err(Error::corruption(&path, 16, "table key id differs from the manifest"));
        }
        let tf = TableFile::new(meta.clone(), Arc::new(table), fs.clone(), path);
        version.levels[usize::from(*level)].push(Arc::new(tf));
    }
    version.normalize();

    // Open the value-log segments the manifest names.
    let mut vlog = VlogSet { cache: Some(cache.clone()), ..VlogSet::default() };
    for &(n, discard) in &data.segments {
        let path = names::vlog(&dir, n);
        let seg = crate::vlog::Segment::open(&fs, &path, n, keyref).map_err(|e| {
            if is_not_found(&e) {
                Error::corruption(&path, 0, "value-log segment named by the manifest is missing")
            } else {
                e
            }
        })?;
        seg.discard.store(discard, Ordering::Relaxed);
        vlog.segments.insert(n, Arc::new(seg));
    }

    // Replay the WALs into one memtable. A record whose value-log pointer runs past the end of
    // its live segment lost its values in a crash before `sync()`: the log ends there. A pointer
    // into a segment that is no longer live points at a value GC collected: GC rewrote it under
    // a newer sequence later in the log if it was still the key's newest value, so the op is
    // skipped. (Segments enter the manifest before any entry is written to them.)
    let recovered = Arc::new(MemTable::new(0));
    let mut last_seq = data.last_sequence;
    let mut ended = false;
    let mut replayed = Vec::with_capacity(wals.len());
    for &n in &wals {
        if ended {
            break;
        }
        let path = names::wal(&dir, n);
        let r = wal::replay(fs.as_ref(), &path, n, keyref, |payload| {
            let mut complete = true;
            let mut malformed = false;
            wal::decode_ops(payload, |op| {
                if op.kind == ValueKind::Pointer {
                    match Pointer::decode(op.value) {
                        None => malformed = true,
                        Some(p) => {
                            if let Some(s) = vlog.segments.get(&p.segment) {
                                complete &= p
                                    .offset
                                    .checked_add(u64::from(p.len))
                                    .is_some_and(|e| e <= s.size.load(Ordering::Relaxed));
                            }
                        }
                    }
                }
            })
            .map_err(|why| Error::corruption(&path, 0, why))?;
            if malformed {
                return Err(Error::corruption(
                    &path,
                    0,
                    "malformed value-log pointer in WAL record",
                ));
            }
            if !complete {
                tracing::warn!(file = %path.display(), "WAL ends at a record whose values were lost before sync");
                ended = true;
                return Ok(false);
            }
            wal::decode_ops(payload, |op| {
                last_seq = last_seq.max(op.seq);
                let collected = op.kind == ValueKind::Pointer
                    && Pointer::decode(op.value)
                        .is_some_and(|p| !vlog.segments.contains_key(&p.segment));
                if !collected {
                    recovered.insert(op.key, op.seq, op.kind, op.value);
                }
            })
            .map_err(|why| Error::corruption(&path, 0, why))?;
            Ok(true)
        })?;
        replayed.push((n, r));
    }
    wal::check_chain(&dir, data.log_number, &replayed)?;

    let wal_number = data.next_file_number;
    data.next_file_number += 1;
    let writer = WalWriter::create(
        fs.as_ref(),
        &names::wal(&dir, wal_number),
        wal_number,
        keyref,
        options.compression,
    )?;
    let segment_number = data.next_file_number;
    data.next_file_number += 1;
    let vlog_writer =
        VlogWriter::create(&fs, &names::vlog(&dir, segment_number), segment_number, keyref)?;
    vlog.segments.insert(segment_number, vlog_writer.segment.clone());
    let vlog = Arc::new(vlog);
    let mem = Arc::new(MemTable::new(wal_number));
    let state = State {
        mem: mem.clone(),
        imms: VecDeque::new(),
        version: Arc::new(version),
        next_file_number: data.next_file_number,
        bg_error: None,
        shutting_down: false,
        compact_pointer: vec![Vec::new(); manifest::NUM_LEVELS],
        vlog: vlog.clone(),
        active_segment: segment_number,
    };
    let sv =
        SuperVersion { mem: mem.clone(), imms: Vec::new(), version: state.version.clone(), vlog };
    let keys = match (loaded, &options.encryption) {
        (Some((ring, kek)), Some(enc)) => {
            Some(keys::KeyAdmin::new(fs.as_ref(), &dir, ring, kek, enc)?)
        }
        _ => None,
    };
    let inner = Inner {
        dir: dir.clone(),
        fs: fs.clone(),
        tuning,
        keys,
        cache,
        state: Mutex::new(state),
        bg_cv: Condvar::new(),
        sv: RwLock::new(Arc::new(sv)),
        last_seq: AtomicU64::new(last_seq),
        queue: Mutex::new(Queue::default()),
        queue_cv: Condvar::new(),
        wal: Mutex::new(WalState {
            writer,
            vlog: vlog_writer,
            mem,
            ops: Vec::new(),
            record: Vec::new(),
        }),
        flush_lock: Mutex::new(()),
        compaction_lock: Mutex::new(()),
        gc_lock: Mutex::new(()),
        _lock: lock,
    };

    // Recovered writes go to an L0 table; then the manifest records the new WAL and the old
    // WALs can go.
    {
        let mut st = inner.state.lock();
        if !recovered.is_empty() {
            let number = st.alloc_file_number();
            let mut discards = background::Discards::new();
            let file = background::build_l0(&inner, &recovered, number, &mut discards)?;
            background::apply_discards(&st.vlog, &discards);
            let mut v = (*st.version).clone();
            v.levels[0].push(file);
            v.normalize();
            st.version = Arc::new(v);
        }
        inner.write_manifest(&mut st)?;
        inner.install_sv(&st);
    }
    for n in wals {
        let _ = fs.remove(&names::wal(&dir, n));
    }
    for p in orphans {
        let _ = fs.remove(&p);
    }
    Ok(inner)
}
