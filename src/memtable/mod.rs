//! The memtable: a concurrent skip list of internal keys, with a filter of its user keys for
//! point reads.
//!
//! Thread safety: any number of readers run alongside the one writer (the group-commit
//! leader); readers take no lock. Entries are never removed; a memtable is dropped whole once
//! flushed and no reader holds it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key::{ValueKind, MAX_SEQ};

// The arena skip list is built on raw pointers into its arena; each `unsafe` block there states
// why it is sound, and the module's tests run its readers beside its writer.
#[allow(unsafe_code)]
mod skiplist;

mod filter;

use filter::KeyFilter;
use skiplist::{Pos, SkipList};

/// Bytes of a small memtable entry (header, links, a short key and value), for sizing the key
/// filter from the memtable's size.
const SMALL_ENTRY: usize = 64;

/// A memtable and the WAL that holds its entries.
#[derive(Debug)]
pub(crate) struct MemTable {
    map: SkipList,
    /// The user keys of `map`'s entries, for point reads of keys it does not hold.
    keys: KeyFilter,
    /// When the first entry was inserted, in milliseconds since the Unix epoch (0: empty).
    first_write: AtomicU64,
    /// Number of the WAL its entries were logged to.
    pub(crate) wal_number: u64,
}

impl MemTable {
    /// An empty memtable expected to grow to about `size` bytes (`Options::memtable_size`):
    /// its key filter is sized for that many small entries (about 2% of `size`).
    pub(crate) fn new(wal_number: u64, size: usize) -> MemTable {
        MemTable {
            map: SkipList::new(),
            keys: KeyFilter::new(size / SMALL_ENTRY),
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
        self.keys.add(user_key);
        self.map.insert(user_key, seq, kind, value);
    }

    /// Memory taken by the entries (the skip list's arena bytes in use) and the key filter
    /// (0 while empty).
    pub(crate) fn approximate_size(&self) -> usize {
        match self.map.bytes() {
            0 => 0,
            n => n + self.keys.bytes(),
        }
    }

    /// Entries (every version and tombstone) whose user key lies in [`lo`, `hi`] (`None`:
    /// unbounded), counted by walking them.
    pub(crate) fn count_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> u64 {
        let mut p = match lo {
            Some(l) => self.map.seek(l, MAX_SEQ),
            None => self.map.first(),
        };
        let mut n = 0;
        while let Some(pos) = p {
            if hi.is_some_and(|h| self.map.at(pos).user_key() > h) {
                break;
            }
            n += 1;
            p = self.map.next(pos);
        }
        n
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The newest entry for `user_key` with sequence at most `seq`.
    pub(crate) fn get(&self, user_key: &[u8], seq: u64) -> Option<(u64, ValueKind, Vec<u8>)> {
        if !self.keys.may_contain(user_key) {
            return None;
        }
        let e = self.map.at(self.map.seek(user_key, seq)?);
        (e.user_key() == user_key).then(|| (e.seq(), e.kind(), e.value().to_vec()))
    }
}

/// An iterator over a memtable (holds it alive). Keys and values are read in place.
pub(crate) struct MemIter {
    mem: Arc<MemTable>,
    cur: Option<Pos>,
}

impl MemIter {
    pub(crate) fn new(mem: Arc<MemTable>) -> MemIter {
        MemIter { mem, cur: None }
    }
}

impl InternalIterator for MemIter {
    fn valid(&self) -> bool {
        self.cur.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.cur = self.mem.map.first();
        Ok(())
    }
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()> {
        self.cur = self.mem.map.seek(user_key, seq);
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if let Some(pos) = self.cur {
            self.cur = self.mem.map.next(pos);
        }
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.cur = self.mem.map.seek_before(None);
        Ok(())
    }
    fn seek_before(&mut self, user_key: &[u8]) -> Result<()> {
        // The newest possible version of `user_key` sorts before all of its versions.
        self.cur = self.mem.map.seek_before(Some((user_key, MAX_SEQ)));
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        if let Some(pos) = self.cur {
            self.cur = self.mem.map.prev(pos);
        }
        Ok(())
    }
    fn user_key(&self) -> &[u8] {
        self.cur.map_or(&[][..], |p| self.mem.map.at(p).user_key())
    }
    fn seq(&self) -> u64 {
        self.cur.map_or(0, |p| self.mem.map.at(p).seq())
    }
    fn kind(&self) -> ValueKind {
        self.cur.map_or(ValueKind::Delete, |p| self.mem.map.at(p).kind())
    }
    fn value(&self) -> &[u8] {
        self.cur.map_or(&[][..], |p| self.mem.map.at(p).value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_sees_the_newest_version_at_or_below_the_sequence() {
        let m = MemTable::new(1, 1 << 20);
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
        let m = Arc::new(MemTable::new(1, 1 << 20));
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
