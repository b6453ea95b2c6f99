//! The memtable: a concurrent skip list of internal keys.
//!
//! Thread safety: any number of readers run alongside the one writer (the group-commit
//! leader); the skip list is lock-free. Entries are never removed; a memtable is dropped whole
//! once flushed and no reader holds it.

use std::cmp::Reverse;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;
use smallvec::SmallVec;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{ValueKind, MAX_SEQ};

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
    /// When the first entry was inserted, in milliseconds since the Unix epoch (0: empty).
    first_write: AtomicU64,
    /// Number of the WAL its entries were logged to.
    pub(crate) wal_number: u64,
}

/// Per-entry overhead counted toward the memtable size (skip-list node, allocations).
const ENTRY_OVERHEAD: usize = 64;

impl MemTable {
    pub(crate) fn new(wal_number: u64) -> MemTable {
        MemTable {
            map: SkipMap::new(),
            bytes: AtomicUsize::new(0),
            first_write: AtomicU64::new(0),
            wal_number,
        }
    }

    /// When the first entry was inserted, in milliseconds since the Unix epoch (0 while empty):
    /// no entry is older. Erasure flushes a memtable whose first write is older than its bound.
    pub(crate) fn first_write(&self) -> u64 {
        self.first_write.load(Ordering::Relaxed)
    }

    /// Inserts one entry. Sequence numbers are unique, so no entry is replaced.
    pub(crate) fn insert(&self, user_key: &[u8], seq: u64, kind: ValueKind, value: &[u8]) {
        if self.first_write.load(Ordering::Relaxed) == 0 {
            // Only the one writer inserts: no race between the load and the store.
            self.first_write.store(crate::db::erase::now_ms().max(1), Ordering::Relaxed);
        }
        self.bytes.fetch_add(user_key.len() + value.len() + ENTRY_OVERHEAD, Ordering::Relaxed);
        self.map.insert(MemKey::new(user_key, seq), (kind, value.to_vec()));
    }

    /// Approximate memory used.
    pub(crate) fn approximate_size(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Entries (every version and tombstone) whose user key lies in [`lo`, `hi`] (`None`:
    /// unbounded), counted by walking them.
    pub(crate) fn count_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> u64 {
        let start = lo.map(|l| MemKey::new(l, MAX_SEQ));
        let from = start.as_ref().map_or(Bound::Unbounded, Bound::Included);
        self.map
            .range((from, Bound::Unbounded))
            .take_while(|e| hi.is_none_or(|h| e.key().user.as_slice() <= h))
            .count() as u64
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
    /// Loads the last entry before `bound`.
    fn load_back(&mut self, bound: Bound<&MemKey>) {
        self.cur = self.mem.map.upper_bound(bound).map(|e| {
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
    fn seek_to_last(&mut self) -> Result<()> {
        self.load_back(Bound::Unbounded);
        Ok(())
    }
    fn seek_before(&mut self, user_key: &[u8]) -> Result<()> {
        // The newest possible version of `user_key` sorts before all of its versions.
        let probe = MemKey::new(user_key, MAX_SEQ);
        self.load_back(Bound::Excluded(&probe));
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        if let Some((k, _, _)) = self.cur.take() {
            self.load_back(Bound::Excluded(&k));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_sequence() {
        let m = MemTable::new(1);
        m.insert(b"k", 3, ValueKind::Put, b"a");
        m.insert(b"k", 7, ValueKind::Put, b"b");
        m.insert(b"k", 9, ValueKind::Delete, b"");
        m.insert(b"j", 8, ValueKind::Put, b"other");
        m.insert(b"k\0", 2, ValueKind::Put, b"longer");
        let get = |seq| m.get(b"k", seq);
        // Written after the reader's sequence: invisible.
        assert_eq!(get(2), None);
        for seq in 3..7 {
            assert_eq!(get(seq), Some((3, ValueKind::Put, b"a".to_vec())));
        }
        for seq in 7..9 {
            assert_eq!(get(seq), Some((7, ValueKind::Put, b"b".to_vec())));
        }
        // The delete hides every older version from readers at or after it.
        for seq in [9, 10, MAX_SEQ] {
            assert_eq!(get(seq), Some((9, ValueKind::Delete, Vec::new())));
        }
        assert_eq!(m.get(b"k\0", 1), None);
        assert_eq!(m.get(b"", MAX_SEQ), None);
    }

    #[test]
    fn iterator_walks_versions_both_ways() {
        let m = Arc::new(MemTable::new(1));
        let mut want = Vec::new();
        for i in 0..50u64 {
            let k = format!("key{i:03}").into_bytes();
            for seq in (1..=i % 4 + 1).rev() {
                let seq = seq * 100 + i;
                m.insert(&k, seq, ValueKind::Put, &seq.to_le_bytes());
                want.push((k.clone(), seq));
            }
        }
        let mut it = MemIter::new(m);
        let at = |it: &MemIter| it.valid().then(|| (it.user_key().to_vec(), it.seq()));
        it.seek_to_first().unwrap();
        let mut fwd = Vec::new();
        while let Some(e) = at(&it) {
            assert_eq!(it.value(), e.1.to_le_bytes());
            fwd.push(e);
            it.next().unwrap();
        }
        assert_eq!(fwd, want, "user key ascending, newest version first");
        it.seek_to_last().unwrap();
        let mut back = Vec::new();
        while let Some(e) = at(&it) {
            back.push(e);
            it.prev().unwrap();
        }
        want.reverse();
        assert_eq!(back, want);
        want.reverse();
        for i in 0..=50u64 {
            let k = format!("key{i:03}").into_bytes();
            it.seek_before(&k).unwrap();
            let before = want.iter().rposition(|e| e.0 < k).map(|j| want[j].clone());
            assert_eq!(at(&it), before);
        }
    }
}
