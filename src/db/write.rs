//! The write path: the group-commit queue, the leader's `write_group`, making room in the
//! memtable, switching memtable, WAL and value-log segment, and syncing the logs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::read::points_at;
use super::{jobs, keyspace, txn, Inner, MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE};
use crate::batch::{OpKind, WriteBatch};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::names;
use crate::key::ValueKind;
use crate::memtable::MemTable;
use crate::vlog::{VlogWriter, POINTER_LEN};
use crate::wal::{self, WalWriter};

/// Largest group of batches written as one WAL record.
const MAX_GROUP_BYTES: usize = 4 << 20;

pub(super) struct WalState {
    pub(super) writer: WalWriter,
    pub(super) vlog: VlogWriter,
    pub(super) mem: Arc<MemTable>,
    pub(super) ops: Vec<u8>,
    pub(super) record: Vec<u8>,
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
    batch: WriteBatch,
    sync: bool,
    /// A transaction's commit: validated by the leader before the group is applied.
    txn: Option<Box<txn::Check>>,
    /// Set by the leader when the transaction conflicts: the batch is left out.
    conflict: bool,
    /// Where a writer that is not the leader waits (`None`: it leads at once).
    slot: Option<Arc<Slot>>,
    /// Value-log entries of the batch compressed by its writer, by op index (empty: none; see
    /// [`Inner::precompress`]).
    prepared: Vec<Option<Vec<u8>>>,
}

/// What a waiting writer is woken with.
enum Wake {
    /// Its batch was committed (or failed, or conflicted).
    Done(Result<()>),
    /// It leads the next group; its batch is first in the queue.
    Lead,
}

/// One waiting writer's wake-up.
#[derive(Default)]
struct Slot {
    wake: Mutex<Option<Wake>>,
    /// Set with `wake`, for a writer that looks before it sleeps.
    set: AtomicBool,
    cv: Condvar,
}

/// How long a writer whose batch is not synced looks for its wake-up, yielding the processor
/// between looks, before it sleeps: an unsynced group takes microseconds, and a writer that
/// sleeps costs its leader a futex wake and itself a reschedule, more than the wait.
const WAIT_BEFORE_SLEEP: Duration = Duration::from_micros(50);

impl Slot {
    fn wake(&self, w: Wake) {
        *self.wake.lock() = Some(w);
        self.set.store(true, Ordering::Release);
        // Without a sleeper, parking_lot's notify is a load, no system call.
        self.cv.notify_one();
    }

    /// Waits for the leader's word; first looks for it for up to `look` without sleeping.
    fn wait(&self, look: Duration) -> Wake {
        if !look.is_zero() {
            let until = Instant::now() + look;
            while !self.set.load(Ordering::Acquire) && Instant::now() < until {
                std::thread::yield_now();
            }
        }
        let mut g = self.wake.lock();
        loop {
            if let Some(w) = g.take() {
                return w;
            }
            self.cv.wait(&mut g);
        }
    }
}

#[derive(Default)]
pub(super) struct Queue {
    pending: Vec<Pending>,
    leader: bool,
    /// The last synced group, for the next leader's gathering (see [`gather_until`]).
    last_sync: Option<SyncedGroup>,
}

/// What the last synced commit group saw: how many writers were committing at once (the
/// group's and those that queued during it) and how long its write and fsync took.
#[derive(Clone, Copy, Debug)]
struct SyncedGroup {
    writers: usize,
    ended: Instant,
    took: Duration,
}

/// Longest a leader waits for writers to gather before a synced group.
const MAX_GATHER: Duration = Duration::from_millis(1);

/// How long a new leader of a synced group waits for more writers, if at all: until the
/// returned instant, or until `pending` writers reach the last synced group's count.
///
/// Writers that share an fsync are woken together when it ends, and the first of them back
/// (often the leader itself, which is still running) would otherwise start the next group
/// alone while the others are still waking: the writers split into two groups that take
/// turns, each fsync covering half of them. The leader waits only when the last synced group
/// ended less than its own duration ago (writers are committing concurrently right now) and
/// saw more writers than are queued now, and at most that duration (never over
/// [`MAX_GATHER`]): a writer committing alone never waits, and a burst that ends costs its
/// last writer at most one fsync's time once.
fn gather_until(last: Option<SyncedGroup>, pending: usize, now: Instant) -> Option<Instant> {
    let last = last?;
    let since = now.checked_duration_since(last.ended)?;
    (pending < last.writers && since < last.took).then(|| now + last.took.min(MAX_GATHER))
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
        Error::ReadOnly(p) => Error::ReadOnly(p.clone()),
        other => Error::Poisoned(other.to_string()),
    }
}

/// Checks the sizes of an op on tree key `key`.
fn check_sizes(key: &[u8], value: &[u8]) -> Result<()> {
    let user_len = key.len() - keyspace::prefix_of(key).len();
    if user_len > MAX_KEY_SIZE {
        return Err(Error::InvalidArgument(format!(
            "key of {user_len} bytes exceeds {MAX_KEY_SIZE}"
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

/// Stages a value-log entry for the commit group; on failure drops what the group staged
/// (the whole group fails).
fn stage(
    vlog: &mut crate::vlog::VlogWriter,
    seq: u64,
    key: &[u8],
    value: &[u8],
    compress: bool,
    prepared: Option<&[u8]>,
) -> Result<[u8; POINTER_LEN]> {
    match vlog.add_prepared(seq, key, value, compress, prepared) {
        Ok(p) => Ok(p.encode()),
        Err(e) => {
            vlog.discard_staged();
            Err(e)
        }
    }
}

impl Inner {
    /// Whether the WAL or the active value-log segment is sealed under a key or cipher other
    /// than the current one.
    pub(crate) fn logs_stale(&self, ring: &KeyRing) -> bool {
        let Ok(ws) = self.logs() else { return false };
        let cur = (ring.current().id, crate::seal::alg_id(Some(ring.cipher())));
        (ws.writer.key_id(), ws.writer.alg()) != cur
            || (ws.vlog.segment.key_id(), ws.vlog.segment.alg()) != cur
    }

    /// Starts a new WAL (freezing the memtable) and a new value-log segment, both under the
    /// current key.
    pub(crate) fn start_new_logs(&self) -> Result<()> {
        let mut ws = self.logs()?;
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
            while jobs::flush_one(self)? {}
            Ok(())
        }
    }

    /// Group commit: queue the batch; the first writer without a leader becomes leader and
    /// writes everything queued as one WAL record with one (optional) fsync.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<()> {
        self.submit(batch, sync, None)
    }

    /// Commits a transaction's writes: validated against the conflict window by the leader
    /// (see `txn.rs`), then applied like a batch; [`Error::Conflict`] when validation fails.
    pub(crate) fn commit_txn(&self, batch: WriteBatch, check: txn::Check) -> Result<()> {
        self.submit(batch, false, Some(Box::new(check)))
    }

    fn submit(&self, batch: WriteBatch, sync: bool, txn: Option<Box<txn::Check>>) -> Result<()> {
        self.refuse_read_only()?;
        if batch.names_dropped_keyspace() {
            return Err(Error::KeyspaceDropped);
        }
        for (_, k, v) in &batch.ops {
            check_sizes(k, v)?;
        }
        if batch.bytes > MAX_BATCH_SIZE {
            return Err(Error::InvalidArgument(format!(
                "batch of {} bytes exceeds {MAX_BATCH_SIZE}",
                batch.bytes
            )));
        }
        if batch.is_empty() && !sync && txn.is_none() {
            return Ok(());
        }
        let prepared = self.precompress(&batch);
        let mut q = self.queue.lock();
        // A writer that finds a leader waits on a slot of its own, where the leader puts its
        // result, or hands it the lead: the writers of a group wake at once, not one after
        // another through the queue's lock.
        let slot = q.leader.then(|| Arc::new(Slot::default()));
        q.pending.push(Pending { batch, sync, txn, conflict: false, slot: slot.clone(), prepared });
        if let Some(slot) = slot {
            drop(q);
            // A synced writer waits for an fsync: it sleeps at once. (Letting only as many
            // writers look as there are processors beside the leader's was tried: with 4
            // writers on 2 processors, the sleepers' p99 went back to 4 ms, the scheduler's
            // time slice.)
            let look =
                if sync || self.tuning.sync_writes { Duration::ZERO } else { WAIT_BEFORE_SLEEP };
            match slot.wait(look) {
                Wake::Done(r) => return r,
                Wake::Lead => q = self.queue.lock(),
            }
        }
        // The leader: its own batch is first in the queue (a writer leads only when the queue
        // was empty, or when handed the lead as its first), so it is in the group it takes.
        q.leader = true;
        let synced = self.tuning.sync_writes || q.pending.iter().any(|p| p.sync);
        if synced {
            Self::gather(&mut q);
        }
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
        let mut group: Vec<Pending> = q.pending.drain(..take).collect();
        drop(q);
        let started = synced.then(Instant::now);
        let res = self.write_group(&mut group);
        let mut q = self.queue.lock();
        if let Some(started) = started {
            let ended = Instant::now();
            let writers = group.len() + q.pending.len();
            q.last_sync = Some(SyncedGroup { writers, ended, took: ended - started });
        }
        // The lead passes to the first writer queued meanwhile, if any.
        match q.pending.first().and_then(|p| p.slot.as_ref()) {
            Some(next) => next.wake(Wake::Lead),
            None => q.leader = false,
        }
        drop(q);
        let mut own = Ok(());
        for (i, p) in group.iter().enumerate() {
            let r = match &res {
                Ok(()) if p.conflict => Err(Error::Conflict),
                Ok(()) => Ok(()),
                Err(e) => Err(replicate(e)),
            };
            match (&p.slot, i) {
                (_, 0) => own = r,
                (Some(s), _) => s.wake(Wake::Done(r)),
                (None, _) => {}
            }
        }
        own
    }

    /// Compresses the value-log entries of `batch` in the calling writer's thread, before it
    /// queues, so that the writers of a group compress at once, each on its own processor,
    /// and the leader only seals and writes (`vlog::precompress_tail`). An entry is compressed
    /// if the options in effect now send its value to the value log with compression; the
    /// leader judges again with the options in effect at commit, and uses what was prepared
    /// only where they still agree.
    fn precompress(&self, batch: &WriteBatch) -> Vec<Option<Vec<u8>>> {
        // Nothing for the value log (GC rewrites always are): nothing to look up.
        let least = self.ks_tuning.least_value_threshold();
        if batch.ops.iter().all(|(op, _, v)| !matches!(op, OpKind::Rewrite(_)) && v.len() < least) {
            return Vec::new();
        }
        let tuning = self.ks_tuning.snapshot();
        let base = self.ks_tuning.base();
        let mut out = Vec::new();
        for (i, (op, k, v)) in batch.ops.iter().enumerate() {
            let o = super::keyspace_options::for_key(&tuning, base, k);
            let to_vlog = match op {
                OpKind::Delete => false,
                OpKind::Put => v.len() >= o.value_threshold,
                OpKind::Rewrite(_) => true,
            };
            if to_vlog && o.build.compression {
                if out.is_empty() {
                    out.resize(batch.ops.len(), None);
                }
                out[i] = crate::vlog::precompress_tail(k, v);
            }
        }
        out
    }

    /// Lets the writers of the last synced group queue before this leader takes its group
    /// (see [`gather_until`]). Called by the leader with the queue locked; it yields the
    /// processor between looks rather than sleeping, as the writers it waits for need a
    /// processor to come back, and a sleeping leader would need waking as well.
    fn gather(q: &mut parking_lot::MutexGuard<'_, Queue>) {
        let Some(until) = gather_until(q.last_sync, q.pending.len(), Instant::now()) else {
            return;
        };
        let want = q.last_sync.map_or(0, |l| l.writers);
        while q.pending.len() < want && Instant::now() < until {
            parking_lot::MutexGuard::unlocked(q, std::thread::yield_now);
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

    /// Validates the transactions of `group`, in order, against the conflict window and the
    /// batches ahead of them in the group; marks the ones that conflict. Called with the WAL
    /// locked, so no other group commits between this and the apply.
    fn validate_group(&self, group: &mut [Pending]) {
        let mut ahead: std::collections::BTreeSet<&[u8]> = std::collections::BTreeSet::new();
        for p in group.iter_mut() {
            if let Some(check) = &p.txn {
                if self.txns.conflicts(check, &p.batch, &ahead) {
                    p.conflict = true;
                    continue;
                }
            }
            for (op, k, _) in &p.batch.ops {
                if !matches!(op, OpKind::Rewrite(_)) {
                    ahead.insert(k);
                }
            }
        }
    }

    fn write_group(&self, group: &mut [Pending]) -> Result<()> {
        let mut guard = self.logs()?;
        if group.iter().any(|p| p.txn.is_some()) {
            self.validate_group(group);
        }
        let group = &*group;
        let count: usize = group.iter().filter(|p| !p.conflict).map(|p| p.batch.len()).sum();
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
            // Whether each applied op is a user write (not a GC rewrite), for the window.
            let mut user_op: Vec<bool> = Vec::with_capacity(count);
            ws.ops.clear();
            let ks_tuning = self.ks_tuning.snapshot();
            let ks_base = self.ks_tuning.base();
            let opts_of = |k: &[u8]| super::keyspace_options::for_key(&ks_tuning, ks_base, k);
            for p in group.iter().filter(|p| !p.conflict) {
                for (i, (op, k, v)) in p.batch.ops.iter().enumerate() {
                    let prepared = p.prepared.get(i).and_then(Option::as_deref);
                    let (kind, val) = match op {
                        OpKind::Delete => (ValueKind::Delete, Stored::Inline(&[])),
                        OpKind::Put if v.len() >= opts_of(k).value_threshold => {
                            let compress = opts_of(k).build.compression;
                            let ptr = stage(&mut ws.vlog, seq, k, v, compress, prepared)?;
                            (ValueKind::Pointer, Stored::Pointer(ptr))
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
                            let compress = opts_of(k).build.compression;
                            let ptr = stage(&mut ws.vlog, seq, k, v, compress, prepared)?;
                            (ValueKind::Pointer, Stored::Pointer(ptr))
                        }
                    };
                    if has_rewrites {
                        written.insert(k);
                    }
                    wal::encode_op(&mut ws.ops, kind, k, val.bytes());
                    applied.push((k, seq, kind, val));
                    user_op.push(!matches!(op, OpKind::Rewrite(_)));
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
                if self.txns.active() {
                    self.txns.record(
                        applied.iter().zip(&user_op).filter(|(_, u)| **u).map(|(a, _)| (a.0, a.1)),
                    );
                }
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
            let number = self.alloc_file_number(&mut self.state.lock())?;
            let keys = self.keys();
            let path = names::vlog(&self.dir, number);
            let w =
                VlogWriter::create(&self.fs, &path, number, keys.as_deref()).inspect_err(|_| {
                    // Nothing names it yet: a half-made segment goes at once.
                    let _ = self.fs.remove(&path);
                })?;
            // Reopened as a file that never changes again (read through a map where the file
            // system allows); if that fails, it is read as it was.
            let reopened = self.fs.open_immutable(ws.vlog.segment.path()).ok();
            let mut st = self.state.lock();
            // Synced above and never appended to again: its length is final, and the manifest
            // records it exactly.
            ws.vlog.segment.close();
            let mut set = (*st.vlog).clone();
            set.segments.insert(number, w.segment.clone());
            if let Some(file) = reopened {
                if let Some(s) = set.segments.get_mut(&ws.vlog.segment.number) {
                    // Under the state lock: no garbage count is added to the old one meanwhile.
                    *s = Arc::new(s.with_file(file));
                }
            }
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
        let mut ws = self.logs()?;
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
        let mut stall = super::stats::StallTimer::new(&self.counters);
        loop {
            let mut st = self.state.lock();
            if let Some(e) = &st.bg_error {
                return Err(Error::Poisoned(e.clone()));
            }
            if st.shutting_down {
                return Err(Error::Closed);
            }
            let l0 = st.version.l0_depth();
            if t.background_work && l0 >= t.l0_stop_trigger {
                stall.stall();
                self.bg_cv.wait(&mut st);
                continue;
            }
            if t.background_work && l0 >= t.l0_slowdown_trigger && !slowed {
                drop(st);
                stall.stall();
                std::thread::sleep(std::time::Duration::from_millis(1));
                slowed = true;
                continue;
            }
            if ws.mem.approximate_size() < t.memtable_size {
                return Ok(());
            }
            if st.imms.len() >= t.max_immutable_memtables {
                if t.background_work {
                    stall.stall();
                    self.bg_cv.wait(&mut st);
                } else {
                    drop(st);
                    jobs::flush_one(self)?;
                }
                continue;
            }
            drop(st);
            return self.switch_memtable(ws);
        }
    }

    /// Freezes the memtable and starts a new one with a new WAL.
    fn switch_memtable(&self, ws: &mut WalState) -> Result<()> {
        let number = match self.alloc_file_number(&mut self.state.lock()) {
            Ok(n) => n,
            Err(e) => {
                self.poison("reserving file numbers failed", &e);
                return Err(e);
            }
        };
        // The new WAL exists durably (header and directory entry) before the old one ends
        // naming it; the values the old WAL points at are durable before that end record. So
        // an end record always names a WAL that exists, and recovery treats a missing one as
        // corruption.
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
                // The old WAL does not name it yet: a half-made WAL goes at once.
                let _ = self.fs.remove(&path);
                self.poison("creating a WAL failed", &e);
                return Err(e);
            }
        };
        if let Err(e) = ws.vlog.sync().and_then(|()| ws.writer.finish(number)) {
            self.poison("closing a WAL failed", &e);
            return Err(e);
        }
        let mem = Arc::new(MemTable::new(number, self.tuning.memtable_size));
        let mut st = self.state.lock();
        st.imms.push_back(std::mem::replace(&mut ws.mem, mem.clone()));
        st.mem = mem;
        self.install_sv(&st);
        self.bg_cv.notify_all();
        ws.writer = writer;
        Ok(())
    }

    pub(super) fn flush(&self) -> Result<()> {
        {
            let mut ws = self.logs()?;
            self.check_writable()?;
            if !ws.mem.is_empty() {
                self.switch_memtable(&mut ws)?;
            }
        }
        self.flush_frozen()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(writers: usize, ended: Instant, took_us: u64) -> SyncedGroup {
        SyncedGroup { writers, ended, took: Duration::from_micros(took_us) }
    }

    #[test]
    fn a_leader_gathers_only_while_writers_commit_concurrently() {
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        // No synced group yet: nothing to wait for.
        assert_eq!(gather_until(None, 1, at(0)), None);
        // Eight writers shared the last fsync, which took 100 us and ended 10 us ago: wait
        // for them, at most 100 us.
        assert_eq!(gather_until(Some(group(8, at(0), 100)), 1, at(10)), Some(at(110)));
        assert_eq!(gather_until(Some(group(8, at(0), 100)), 7, at(10)), Some(at(110)));
        // As many queued as last time: go at once.
        assert_eq!(gather_until(Some(group(8, at(0), 100)), 8, at(10)), None);
        assert_eq!(gather_until(Some(group(8, at(0), 100)), 9, at(10)), None);
        // A writer alone never waits.
        assert_eq!(gather_until(Some(group(1, at(0), 100)), 1, at(1)), None);
        // The last group ended longer ago than it took: nobody is committing concurrently.
        assert_eq!(gather_until(Some(group(8, at(0), 100)), 1, at(100)), None);
        assert_eq!(gather_until(Some(group(8, at(0), 100)), 1, at(5000)), None);
        // A slow fsync bounds the wait at MAX_GATHER.
        assert_eq!(
            gather_until(Some(group(8, at(0), 50_000)), 1, at(10)),
            Some(at(10) + MAX_GATHER)
        );
        // A clock reading before the group's end (another thread's instant): no wait.
        assert_eq!(gather_until(Some(group(8, at(100), 100)), 1, at(50)), None);
    }
}
