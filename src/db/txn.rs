//! Optimistic serializable transactions: a snapshot at begin, reads recorded (points and
//! ranges), writes buffered, and validation against a *conflict window* at commit.
//!
//! **The window.** While at least one transaction is open, the group-commit leader records,
//! after each group is applied, every key the group wrote with its sequence number (key →
//! newest sequence, plus a log in sequence order for pruning). When no transaction is open it
//! pays one fence and one atomic load per group and records nothing. Entries at or below the
//! start sequence of the oldest open transaction are pruned when a transaction ends.
//!
//! **Why nothing is missed.** `begin` increments the open count, fences, then reads the last
//! sequence; the leader publishes the last sequence, fences, then reads the open count. Of two
//! such fenced pairs at least one sees the other's write: either the leader sees the
//! transaction open and records the group, or the transaction's snapshot already includes the
//! group (its sequences are at or below the start), so it cannot conflict with it.
//!
//! **Commit.** The transaction's writes go through the write queue as one batch, carrying the
//! read set, the ranges read and the start sequence. The leader validates it, under the WAL
//! lock and before any op of the group is applied, against the window and against the keys
//! written by the batches ahead of it in the same group; a transaction that fails is left out
//! of the group and gets [`Error::Conflict`], having changed nothing. Validation and apply are
//! therefore one atomic step with respect to every other commit, transactional or not.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::keyspace::{self, Keyspace};
use super::read::{self, get_at};
use super::version::SuperVersion;
use super::{iters, Inner, DB};
use crate::batch::{OpKind, WriteBatch};
use crate::error::{Error, Result};

/// A key range on tree keys.
type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Whether `(lo, hi)` admits any key (a `BTreeMap::range` over it would not panic).
fn non_empty(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(l), Bound::Included(h)) => l <= h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h))
        | (Bound::Excluded(l), Bound::Included(h)) => l < h,
        _ => true,
    }
}

fn as_ref(r: &Range) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (r.0.as_ref().map(Vec::as_slice), r.1.as_ref().map(Vec::as_slice))
}

/// What the leader validates for a transaction's commit.
pub(crate) struct Check {
    /// The transaction's snapshot: changes with a larger sequence conflict.
    pub(crate) start: u64,
    /// Tree keys read.
    pub(crate) reads: BTreeSet<Vec<u8>>,
    /// Tree-key ranges read.
    pub(crate) ranges: Vec<Range>,
}

#[derive(Default)]
struct Window {
    /// Start sequences of the open transactions (with counts).
    starts: BTreeMap<u64, usize>,
    /// Tree key → sequence of its newest recorded write.
    writes: BTreeMap<Vec<u8>, u64>,
    /// (sequence, tree key) in sequence order, for pruning.
    log: VecDeque<(u64, Vec<u8>)>,
}

impl Window {
    fn prune(&mut self) {
        let Some(&oldest) = self.starts.keys().next() else {
            self.writes.clear();
            self.log.clear();
            return;
        };
        while self.log.front().is_some_and(|(s, _)| *s <= oldest) {
            if let Some((s, k)) = self.log.pop_front() {
                if self.writes.get(&k) == Some(&s) {
                    self.writes.remove(&k);
                }
            }
        }
    }

    fn changed(&self, key: &[u8], start: u64) -> bool {
        self.writes.get(key).is_some_and(|&s| s > start)
    }

    fn changed_in(&self, r: &Range, start: u64) -> bool {
        let (lo, hi) = as_ref(r);
        non_empty(lo, hi) && self.writes.range::<[u8], _>((lo, hi)).any(|(_, &s)| s > start)
    }
}

/// The open transactions and the conflict window (one per database).
#[derive(Default)]
pub(crate) struct Tracker {
    open: AtomicUsize,
    window: Mutex<Window>,
}

impl Tracker {
    /// Registers a transaction and takes its snapshot (see the module comment for the order).
    fn begin(&self, inner: &Inner) -> (u64, Arc<SuperVersion>) {
        let mut w = self.window.lock();
        self.open.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let (seq, sv) = inner.read_view();
        *w.starts.entry(seq).or_default() += 1;
        (seq, sv)
    }

    /// Unregisters a transaction that began at `start`, pruning the window.
    fn end(&self, start: u64) {
        let mut w = self.window.lock();
        if let Some(n) = w.starts.get_mut(&start) {
            *n -= 1;
            if *n == 0 {
                w.starts.remove(&start);
            }
        }
        self.open.fetch_sub(1, Ordering::SeqCst);
        w.prune();
    }

    /// Whether a transaction is open; called by the leader after publishing a sequence.
    pub(crate) fn active(&self) -> bool {
        fence(Ordering::SeqCst);
        self.open.load(Ordering::Relaxed) > 0
    }

    /// Records the (tree key, sequence) pairs a group wrote.
    pub(crate) fn record<'a>(&self, written: impl Iterator<Item = (&'a [u8], u64)>) {
        let mut w = self.window.lock();
        if w.starts.is_empty() {
            return;
        }
        for (k, s) in written {
            w.writes.insert(k.to_vec(), s);
            w.log.push_back((s, k.to_vec()));
        }
    }

    /// Whether the transaction of `check` writing `batch` conflicts with a recorded write or
    /// with `ahead` (the keys written by the batches ahead of it in its group).
    pub(crate) fn conflicts(
        &self,
        check: &Check,
        batch: &WriteBatch,
        ahead: &BTreeSet<&[u8]>,
    ) -> bool {
        let w = self.window.lock();
        let start = check.start;
        let keys = check.reads.iter().map(Vec::as_slice).chain(batch.ops.iter().map(|o| &o.1[..]));
        for k in keys {
            if w.changed(k, start) || ahead.contains(k) {
                return true;
            }
        }
        check.ranges.iter().any(|r| {
            let (lo, hi) = as_ref(r);
            w.changed_in(r, start)
                || (non_empty(lo, hi) && ahead.range::<[u8], _>((lo, hi)).next().is_some())
        })
    }

    /// Keys in the window now (for tests of pruning).
    #[cfg(test)]
    fn window_len(&self) -> usize {
        self.window.lock().writes.len()
    }
}

/// An optimistic, serializable transaction (see [`DB::transaction`]). Reads see the snapshot
/// taken at begin plus the transaction's own writes; writes are buffered until
/// [`Transaction::commit`]. Dropped without commit, it changes nothing.
pub struct Transaction {
    db: Weak<Inner>,
    seq: u64,
    sv: Arc<SuperVersion>,
    /// Tree key → value (`None`: deleted).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    reads: BTreeSet<Vec<u8>>,
    ranges: Vec<Range>,
    /// "Dropped" flags of the named keyspaces used.
    keyspaces: Vec<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("writes", &self.writes.len())
            .field("reads", &self.reads.len())
            .field("ranges", &self.ranges.len())
            .finish_non_exhaustive()
    }
}

impl DB {
    /// Begins a transaction: optimistic and serializable. Reads see a snapshot taken now plus
    /// the transaction's own writes; [`Transaction::commit`] fails with [`Error::Conflict`]
    /// if a key it read or wrote, or a key inside a range it read, was changed by any write
    /// committed after it began (transactional or not), and succeeds otherwise: conflicts are
    /// tracked per key and per range read, so disjoint transactions both commit.
    pub fn transaction(&self) -> Transaction {
        let (seq, sv) = self.inner.txns.begin(&self.inner);
        Transaction {
            db: Arc::downgrade(&self.inner),
            seq,
            sv,
            writes: BTreeMap::new(),
            reads: BTreeSet::new(),
            ranges: Vec::new(),
            keyspaces: Vec::new(),
        }
    }
}

impl Transaction {
    /// Remembers `ks`'s "dropped" flag (named keyspaces only), checked again at commit.
    fn remember(&mut self, ks: &Keyspace) {
        if ks.id != keyspace::DEFAULT_ID
            && !self.keyspaces.iter().any(|f| Arc::ptr_eq(f, &ks.dropped))
        {
            self.keyspaces.push(ks.dropped.clone());
        }
    }

    fn note(&mut self, ks: &Keyspace) -> Result<()> {
        self.remember(ks);
        ks.check()
    }

    fn get_tree(&mut self, tk: Vec<u8>) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.writes.get(&tk) {
            return Ok(v.clone());
        }
        let v = get_at(&tk, self.seq, &self.sv)?;
        self.reads.insert(tk);
        Ok(v)
    }

    /// Reads `key` (default keyspace): the transaction's own write if any, else the snapshot.
    pub fn get(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.get_tree(keyspace::tree_key(keyspace::DEFAULT_PREFIX, key.as_ref()))
    }

    /// Reads `key` in keyspace `ks`.
    pub fn get_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.note(ks)?;
        self.get_tree(ks.key(key.as_ref()))
    }

    fn range_tree(
        &mut self,
        prefix: &[u8],
        bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let r = keyspace::bounds_in(prefix, bounds);
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for kv in iters::new_iter(self.sv.clone(), self.seq, r.clone()) {
            let (k, v) = kv?;
            found.insert(k, v);
        }
        let (lo, hi) = as_ref(&r);
        if non_empty(lo, hi) {
            for (k, v) in self.writes.range::<[u8], _>((lo, hi)) {
                match v {
                    Some(v) => found.insert(k.clone(), v.clone()),
                    None => found.remove(k),
                };
            }
        }
        self.ranges.push(r);
        let n = prefix.len();
        Ok(found.into_iter().map(|(mut k, v)| (k.split_off(n), v)).collect())
    }

    /// The pairs (default keyspace) whose keys fall in `range`, ascending: the snapshot with
    /// the transaction's own writes applied. The whole range counts as read: a key another
    /// commit inserts into it, changes or deletes makes this transaction's commit fail.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        range: R,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.range_tree(keyspace::DEFAULT_PREFIX, read::bounds(&range))
    }

    /// As [`Transaction::range`], in keyspace `ks`.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &mut self,
        ks: &Keyspace,
        range: R,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.note(ks)?;
        let prefix = ks.prefix.clone();
        self.range_tree(&prefix, read::bounds(&range))
    }

    /// Buffers a put of `value` under `key` (default keyspace).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let k = keyspace::tree_key(keyspace::DEFAULT_PREFIX, key.as_ref());
        self.writes.insert(k, Some(value.as_ref().to_vec()));
    }

    /// Buffers a put of `value` under `key` in keyspace `ks` (a dropped keyspace makes the
    /// commit fail with [`Error::KeyspaceDropped`]).
    pub fn put_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        // A dropped keyspace is reported by `commit`.
        self.remember(ks);
        self.writes.insert(ks.key(key.as_ref()), Some(value.as_ref().to_vec()));
    }

    /// Buffers a delete of `key` (default keyspace).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.writes.insert(keyspace::tree_key(keyspace::DEFAULT_PREFIX, key.as_ref()), None);
    }

    /// Buffers a delete of `key` in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) {
        self.remember(ks);
        self.writes.insert(ks.key(key.as_ref()), None);
    }

    /// Validates and applies the transaction atomically, durable like a [`WriteBatch`]
    /// written with [`DB::write`]. Fails with [`Error::Conflict`], changing nothing, if a key
    /// it read or wrote, or a range it read, was changed by a write committed after it began;
    /// with [`Error::KeyspaceDropped`] if it used a keyspace dropped since.
    pub fn commit(mut self) -> Result<()> {
        let inner = self.db.upgrade().ok_or(Error::Closed)?;
        if self.keyspaces.iter().any(|f| f.load(Ordering::Acquire)) {
            return Err(Error::KeyspaceDropped);
        }
        let mut batch = WriteBatch::new();
        for (k, v) in std::mem::take(&mut self.writes) {
            match v {
                Some(v) => batch.push(OpKind::Put, k, v),
                None => batch.push(OpKind::Delete, k, Vec::new()),
            }
        }
        batch.keyspaces = std::mem::take(&mut self.keyspaces);
        let check = Check {
            start: self.seq,
            reads: std::mem::take(&mut self.reads),
            ranges: std::mem::take(&mut self.ranges),
        };
        inner.commit_txn(batch, check)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(inner) = self.db.upgrade() {
            inner.txns.end(self.seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    #[test]
    fn the_window_records_only_while_a_transaction_is_open_and_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let db = DB::open(Options::new(dir.path()).background_work(false)).unwrap();
        db.put(b"a", b"1").unwrap();
        assert_eq!(db.inner.txns.window_len(), 0, "no transaction open: nothing recorded");
        let t1 = db.transaction();
        db.put(b"b", b"1").unwrap();
        db.put(b"c", b"1").unwrap();
        assert_eq!(db.inner.txns.window_len(), 2);
        let t2 = db.transaction();
        db.put(b"d", b"1").unwrap();
        assert_eq!(db.inner.txns.window_len(), 3);
        drop(t1);
        // Only writes after t2's start are kept.
        assert_eq!(db.inner.txns.window_len(), 1);
        drop(t2);
        assert_eq!(db.inner.txns.window_len(), 0);
        assert_eq!(db.inner.txns.open.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn empty_and_reversed_ranges_are_empty() {
        let (a, b) = (&b"a"[..], &b"b"[..]);
        assert!(non_empty(Bound::Included(a), Bound::Included(a)));
        assert!(!non_empty(Bound::Included(a), Bound::Excluded(a)));
        assert!(!non_empty(Bound::Excluded(a), Bound::Included(a)));
        assert!(!non_empty(Bound::Included(b), Bound::Included(a)));
        assert!(non_empty(Bound::Excluded(a), Bound::Excluded(b)));
        assert!(non_empty(Bound::Unbounded, Bound::Excluded(a)));
    }
}
