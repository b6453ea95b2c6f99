//! The memtable: a concurrent skip list of internal keys.
//!
//! Thread safety: any number of readers run alongside the one writer (the group-commit
//! leader); the skip list is lock-free. Entries are never removed; a memtable is dropped whole
//! once flushed and no reader holds it.

use std::cmp::Reverse;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;
use smallvec::SmallVec;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::ValueKind;

/// User key (inline up to 24 bytes, so comparing keys during a skip-list search reads the
/// node itself, not another allocation) and sequence, newest first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MemKey {
    user: SmallVec<[u8; 24]>,
    seq: Reverse<u64>,
}

impl MemKey {
    fn new(user: &[u8], seq: u64) -> MemKey {
        MemKey { user: SmallVec::from_slice(user), seq: Reverse(seq) }
    }
}

/// A memtable and the WAL that holds its entries.
#[derive(Debug)]
pub(crate) struct MemTable {
    map: SkipMap<MemKey, (ValueKind, Vec<u8>)>,
    bytes: AtomicUsize,
    /// Number of the WAL its entries were logged to.
    pub(crate) wal_number: u64,
}

/// Per-entry overhead counted toward the memtable size (skip-list node, allocations).
const ENTRY_OVERHEAD: usize = 64;

impl MemTable {
    pub(crate) fn new(wal_number: u64) -> MemTable {
        MemTable { map: SkipMap::new(), bytes: AtomicUsize::new(0), wal_number }
    }

    /// Inserts one entry. Sequence numbers are unique, so no entry is replaced.
    pub(crate) fn insert(&self, user_key: &[u8], seq: u64, kind: ValueKind, value: &[u8]) {
        self.bytes.fetch_add(user_key.len() + value.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
        self.map.insert(MemKey::new(user_key, seq), (kind, value.to_vec()));
    }

    /// Approximate memory used.
    pub(crate) fn approximate_size(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The newest entry for `user_key` with sequence at most `seq`.
    pub(crate) fn get(&self, user_key: &[u8], seq: u64) -> Option<(u64, ValueKind, Vec<u8>)> {
        let probe = MemKey::new(user_key, seq);
        let e = self.map.lower_bound(Bound::Included(&probe))?;
        if e.key().user.as_slice() == user_key {
            let (k, v) = e.value();
            Some((e.key().seq.0, *k, v.clone()))
        } else {
            None
        }
    }
}

/// An iterator over a memtable (holds it alive).
pub(crate) struct MemIter {
    mem: Arc<MemTable>,
    cur: Option<(MemKey, ValueKind, Vec<u8>)>,
}

impl MemIter {
    pub(crate) fn new(mem: Arc<MemTable>) -> MemIter {
        MemIter { mem, cur: None }
    }
    fn load(&mut self, bound: Bound<&MemKey>) {
        self.cur = self.mem.map.lower_bound(bound).map(|e| {
            let (k, v) = e.value();
            (e.key().clone(), *k, v.clone())
        });
    }
}

impl InternalIterator for MemIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.load(Bound::Unbounded);
        Ok(())
    }
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()> {
        let probe = MemKey::new(user_key, seq);
        self.load(Bound::Included(&probe));
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if let Some((k, _, _)) = self.cur.take() {
            self.load(Bound::Excluded(&k));
        }
        Ok(())
    }
    fn user_key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[][..], |c| &c.0.user)
    }
    fn seq(&self) -> u64 {
        self.cur.as_ref().map_or(0, |c| c.0.seq.0)
    }
    fn kind(&self) -> ValueKind {
        self.cur.as_ref().map_or(ValueKind::Delete, |c| c.1)
    }
    fn value(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[][..], |c| &c.2)
    }
}
