//! Iterators over internal entries, the merge of many sources, and the user-facing iterator.

use std::cmp::Ordering;
use std::iter::FusedIterator;
use std::ops::Bound;

use crate::error::{Error, Result};
use crate::key::{ValueKind, MAX_SEQ};
use crate::vlog::{ReadAhead, VlogSet};
use std::sync::Arc;

/// A cursor over entries in internal-key order (user key ascending, sequence descending).
///
/// `next` and `prev` move a valid cursor; past either end it is not valid, and only a seek
/// positions it again.
pub(crate) trait InternalIterator: Send {
    fn valid(&self) -> bool;
    fn seek_to_first(&mut self) -> Result<()>;
    /// Positions at the first entry at or after (`user_key`, `seq`).
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()>;
    fn next(&mut self) -> Result<()>;
    fn seek_to_last(&mut self) -> Result<()>;
    /// Positions at the last entry whose user key is before `user_key`.
    fn seek_before(&mut self, user_key: &[u8]) -> Result<()>;
    fn prev(&mut self) -> Result<()>;
    fn user_key(&self) -> &[u8];
    fn seq(&self) -> u64;
    fn kind(&self) -> ValueKind;
    fn value(&self) -> &[u8];
}

fn order(a: &dyn InternalIterator, b: &dyn InternalIterator) -> Ordering {
    a.user_key().cmp(b.user_key()).then_with(|| b.seq().cmp(&a.seq()))
}

/// Which way a [`MergingIter`] last moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Every child other than the current one is at its first entry after the current one.
    Forward,
    /// Every child other than the current one is at its last entry before the current one.
    Reverse,
}

/// Merges sources; on equal user keys the newer sequence comes first.
///
/// Entries are ordered by (user key ascending, sequence descending, child index ascending):
/// a total order even when two children hold the same internal key (the earlier child, a
/// newer source, comes first), so walking backward visits exactly the forward order reversed.
pub(crate) struct MergingIter {
    children: Vec<Box<dyn InternalIterator>>,
    current: Option<usize>,
    direction: Direction,
}

impl MergingIter {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> MergingIter {
        MergingIter { children, current: None, direction: Direction::Forward }
    }
    fn find_smallest(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate() {
            if !c.valid() {
                continue;
            }
            best = match best {
                Some(b) if order(c.as_ref(), self.children[b].as_ref()) != Ordering::Less => {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        self.current = best;
    }
    /// The largest child; on equal internal keys the later child (it comes after).
    fn find_largest(&mut self) {
        let mut best: Option<usize> = None;
        for (i, c) in self.children.iter().enumerate().rev() {
            if !c.valid() {
                continue;
            }
            best = match best {
                Some(b) if order(c.as_ref(), self.children[b].as_ref()) != Ordering::Greater => {
                    Some(b)
                }
                _ => Some(i),
            };
        }
        self.current = best;
    }
    fn cur(&self) -> Option<&dyn InternalIterator> {
        self.current.map(|i| self.children[i].as_ref())
    }
    /// Moves every child but the current one (`cur`, at `key`/`seq`) to its first entry after
    /// the current one: entries equal to it come after it only in later children.
    fn turn_forward(&mut self, cur: usize) -> Result<()> {
        let key = self.children[cur].user_key().to_vec();
        let seq = self.children[cur].seq();
        for (i, c) in self.children.iter_mut().enumerate() {
            if i == cur {
                continue;
            }
            c.seek(&key, seq)?;
            if i < cur {
                while c.valid() && c.user_key() == key.as_slice() && c.seq() == seq {
                    c.next()?;
                }
            }
        }
        self.direction = Direction::Forward;
        Ok(())
    }
    /// Moves every child but the current one to its last entry before the current one:
    /// entries equal to it come before it only in earlier children.
    fn turn_reverse(&mut self, cur: usize) -> Result<()> {
        let key = self.children[cur].user_key().to_vec();
        let seq = self.children[cur].seq();
        for (i, c) in self.children.iter_mut().enumerate() {
            if i == cur {
                continue;
            }
            // First entry at or after the current one's internal key ...
            c.seek(&key, seq)?;
            if i < cur {
                // ... and past the equal ones, which come before the current entry here.
                while c.valid() && c.user_key() == key.as_slice() && c.seq() == seq {
                    c.next()?;
                }
            }
            // The entry before that one.
            if c.valid() {
                c.prev()?;
            } else {
                c.seek_to_last()?;
            }
        }
        self.direction = Direction::Reverse;
        Ok(())
    }
}

impl InternalIterator for MergingIter {
    fn valid(&self) -> bool {
        self.current.is_some()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        for c in &mut self.children {
            c.seek_to_first()?;
        }
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()> {
        for c in &mut self.children {
            c.seek(user_key, seq)?;
        }
        self.direction = Direction::Forward;
        self.find_smallest();
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if let Some(i) = self.current {
            if self.direction == Direction::Reverse {
                self.turn_forward(i)?;
            }
            self.children[i].next()?;
            self.find_smallest();
        }
        Ok(())
    }
    fn seek_to_last(&mut self) -> Result<()> {
        for c in &mut self.children {
            c.seek_to_last()?;
        }
        self.direction = Direction::Reverse;
        self.find_largest();
        Ok(())
    }
    fn seek_before(&mut self, user_key: &[u8]) -> Result<()> {
        for c in &mut self.children {
            c.seek_before(user_key)?;
        }
        self.direction = Direction::Reverse;
        self.find_largest();
        Ok(())
    }
    fn prev(&mut self) -> Result<()> {
        if let Some(i) = self.current {
            if self.direction == Direction::Forward {
                self.turn_reverse(i)?;
            }
            self.children[i].prev()?;
            self.find_largest();
        }
        Ok(())
    }
    fn user_key(&self) -> &[u8] {
        self.cur().map_or(&[][..], |c| c.user_key())
    }
    fn seq(&self) -> u64 {
        self.cur().map_or(0, InternalIterator::seq)
    }
    fn kind(&self) -> ValueKind {
        self.cur().map_or(ValueKind::Delete, InternalIterator::kind)
    }
    fn value(&self) -> &[u8] {
        self.cur().map_or(&[][..], |c| c.value())
    }
}

/// Builds a fresh merging cursor over the same sources (it also keeps them alive).
pub(crate) type CursorFactory = Box<dyn Fn() -> MergingIter + Send + Sync>;

/// The user-facing iterator: newest visible version of each key, tombstones hidden, within
/// bounds, ascending from the front ([`Iterator::next`]) and descending from the back
/// ([`DoubleEndedIterator::next_back`]). The two ends may be mixed: they meet and stop, and
/// no pair is returned twice. Holds the memtables and files it reads alive.
///
/// Reading from the back costs more per pair than reading from the front: each step back
/// decodes a data block from its last restart point, and values kept in the value log are
/// read one by one (through the value cache) rather than through the forward read-ahead.
pub struct Iter {
    /// The front cursor (built with the iterator).
    inner: MergingIter,
    vlog: Arc<VlogSet>,
    read_ahead: ReadAhead,
    seq: u64,
    /// Lower bound: where the front starts, and where the back stops.
    start: Bound<Vec<u8>>,
    /// Upper bound: where the back starts, and where the front stops; narrowed to the last key
    /// the back returned.
    end: Bound<Vec<u8>>,
    started: bool,
    done: bool,
    /// The last user key the front passed (returned or found deleted): the back stops there.
    last_key: Option<Vec<u8>>,
    /// The back cursor, built on the first step from the back; positioned at the newest entry
    /// not yet passed.
    back: Option<MergingIter>,
    cursor: CursorFactory,
    /// Bytes cut from the front of every key returned: the keyspace prefix.
    strip: usize,
    /// An error to return as the only item (an iterator over a dropped keyspace, say).
    error: Option<Error>,
}

impl Iter {
    pub(crate) fn new(
        vlog: Arc<VlogSet>,
        seq: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        cursor: CursorFactory,
    ) -> Iter {
        Iter {
            inner: cursor(),
            vlog,
            read_ahead: ReadAhead::default(),
            seq,
            start,
            end,
            started: false,
            done: false,
            last_key: None,
            back: None,
            cursor,
            strip: 0,
            error: None,
        }
    }

    /// Cuts `n` bytes (a keyspace prefix, within every key the bounds admit) from the front
    /// of every key returned.
    pub(crate) fn strip(mut self, n: usize) -> Iter {
        self.strip = n;
        self
    }

    /// An iterator whose only item is `e`.
    pub(crate) fn failed(e: Error) -> Iter {
        let mut it = Iter::new(
            Arc::new(VlogSet::default()),
            0,
            Bound::Unbounded,
            Bound::Unbounded,
            Box::new(|| MergingIter::new(Vec::new())),
        );
        it.error = Some(e);
        it
    }

    fn step(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.started {
            self.inner.next()?;
        } else {
            self.started = true;
            match &self.start {
                Bound::Unbounded => self.inner.seek_to_first()?,
                Bound::Included(k) => self.inner.seek(k, MAX_SEQ)?,
                Bound::Excluded(k) => {
                    self.inner.seek(k, MAX_SEQ)?;
                    // Treat the excluded key as already returned, so it is skipped.
                    self.last_key = Some(k.clone());
                }
            }
        }
        loop {
            if !self.inner.valid() {
                return Ok(None);
            }
            let uk = self.inner.user_key();
            let past_end = match &self.end {
                Bound::Unbounded => false,
                Bound::Included(e) => uk > e.as_slice(),
                Bound::Excluded(e) => uk >= e.as_slice(),
            };
            if past_end {
                return Ok(None);
            }
            let seen = self.last_key.as_deref() == Some(uk);
            if !seen && self.inner.seq() <= self.seq {
                // The previous key's buffer is reused: no allocation per key passed.
                let last = self.last_key.get_or_insert_with(Vec::new);
                last.clear();
                last.extend_from_slice(uk);
                match self.inner.kind() {
                    ValueKind::Put => return Ok(Some((uk.to_vec(), self.inner.value().to_vec()))),
                    ValueKind::Pointer => {
                        let v = self.vlog.read(
                            self.inner.value(),
                            uk,
                            self.inner.seq(),
                            Some(&mut self.read_ahead),
                        )?;
                        return Ok(Some((uk.to_vec(), v)));
                    }
                    ValueKind::Delete => {}
                }
            }
            self.inner.next()?;
        }
    }

    /// The back cursor, positioned at the last entry below the upper bound on first use.
    fn position_back(&mut self) -> Result<()> {
        if self.back.is_none() {
            let mut c = (self.cursor)();
            match &self.end {
                Bound::Unbounded => c.seek_to_last()?,
                Bound::Excluded(k) => c.seek_before(k)?,
                Bound::Included(k) => {
                    // Every version of `k` sorts before `k ‖ 0`, the next larger user key.
                    let mut after = Vec::with_capacity(k.len() + 1);
                    after.extend_from_slice(k);
                    after.push(0);
                    c.seek_before(&after)?;
                }
            }
            self.back = Some(c);
        }
        Ok(())
    }

    /// One step from the back: the newest visible version of the largest user key not yet
    /// passed by either end. Versions of a user key are met oldest first, so the cursor walks
    /// all of them and keeps the last one at or below the read sequence.
    fn step_back(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let seq = self.seq;
        self.position_back()?;
        let Some(c) = self.back.as_mut() else { return Ok(None) };
        loop {
            if !c.valid() {
                return Ok(None);
            }
            let uk = c.user_key();
            let below_start = match &self.start {
                Bound::Unbounded => false,
                Bound::Included(s) => uk < s.as_slice(),
                Bound::Excluded(s) => uk <= s.as_slice(),
            };
            if below_start || self.last_key.as_deref().is_some_and(|f| uk <= f) {
                return Ok(None);
            }
            let key = uk.to_vec();
            let mut newest: Option<(ValueKind, u64)> = None;
            let mut value = Vec::new();
            while c.valid() && c.user_key() == key.as_slice() {
                if c.seq() <= seq {
                    newest = Some((c.kind(), c.seq()));
                    value.clear();
                    value.extend_from_slice(c.value());
                }
                c.prev()?;
            }
            let value = match newest {
                Some((ValueKind::Put, _)) => value,
                Some((ValueKind::Pointer, s)) => self.vlog.read(&value, &key, s, None)?,
                Some((ValueKind::Delete, _)) | None => continue,
            };
            // The front must stop before this key from now on.
            self.end = Bound::Excluded(key.clone());
            return Ok(Some((key, value)));
        }
    }

    /// Turns a step's outcome into an item, ending the iteration at its end or first error.
    fn item(
        &mut self,
        r: Result<Option<(Vec<u8>, Vec<u8>)>>,
    ) -> Option<Result<(Vec<u8>, Vec<u8>)>> {
        match r {
            Ok(Some((mut k, v))) => {
                k.drain(..self.strip.min(k.len()));
                Some(Ok((k, v)))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let r = self.step();
        self.item(r)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let r = self.step_back();
        self.item(r)
    }
}

impl FusedIterator for Iter {}

/// The smallest key greater than every key with `prefix`, or `None` if there is none.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::{MemIter, MemTable};
    use crate::sstable::tests::build_table;
    use rand::{Rng, SeedableRng};
    use std::cmp::Reverse;

    /// (user key, sequence, value) of the current entry.
    type Seen = (Vec<u8>, u64, Vec<u8>);

    fn at(it: &MergingIter) -> Option<Seen> {
        it.valid().then(|| (it.user_key().to_vec(), it.seq(), it.value().to_vec()))
    }

    fn mem(entries: &[(&[u8], u64, &[u8])]) -> Box<dyn InternalIterator> {
        let m = MemTable::new(1, 1 << 20);
        for (k, seq, v) in entries {
            m.insert(k, *seq, ValueKind::Put, v);
        }
        Box::new(MemIter::new(Arc::new(m)))
    }

    fn forward(it: &mut MergingIter) -> Vec<Seen> {
        it.seek_to_first().unwrap();
        let mut out = Vec::new();
        while let Some(e) = at(it) {
            out.push(e);
            it.next().unwrap();
        }
        out
    }

    fn backward(it: &mut MergingIter) -> Vec<Seen> {
        it.seek_to_last().unwrap();
        let mut out = Vec::new();
        while let Some(e) = at(it) {
            out.push(e);
            it.prev().unwrap();
        }
        out
    }

    fn s(k: &[u8], seq: u64, v: &[u8]) -> Seen {
        (k.to_vec(), seq, v.to_vec())
    }

    #[test]
    fn same_user_key_in_several_children_newest_first() {
        let mut it = MergingIter::new(vec![
            mem(&[(b"k", 3, b"a3"), (b"k", 9, b"a9")]),
            mem(&[(b"k", 5, b"b5"), (b"k", 7, b"b7")]),
            mem(&[(b"j", 2, b"c2"), (b"k", 1, b"c1"), (b"m", 4, b"c4")]),
        ]);
        let want = vec![
            s(b"j", 2, b"c2"),
            s(b"k", 9, b"a9"),
            s(b"k", 7, b"b7"),
            s(b"k", 5, b"b5"),
            s(b"k", 3, b"a3"),
            s(b"k", 1, b"c1"),
            s(b"m", 4, b"c4"),
        ];
        assert_eq!(forward(&mut it), want);
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(backward(&mut it), rev);
        it.seek_before(b"k").unwrap();
        assert_eq!(at(&it), Some(s(b"j", 2, b"c2")));
        it.seek_before(b"k\0").unwrap();
        assert_eq!(at(&it), Some(s(b"k", 1, b"c1")));
        // Turning around in the middle of one user key's versions.
        it.seek(b"k", 6).unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"b5")));
        it.prev().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 7, b"b7")));
        it.prev().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 9, b"a9")));
        it.next().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 7, b"b7")));
        it.next().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"b5")));
    }

    #[test]
    fn equal_keys_in_memtable_and_table_keep_child_order_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let table = build_table(
            dir.path(),
            1,
            &[
                (b"a".to_vec(), 2, ValueKind::Put, b"table-a".to_vec()),
                (b"k".to_vec(), 5, ValueKind::Put, b"table-k".to_vec()),
                (b"z".to_vec(), 1, ValueKind::Put, b"table-z".to_vec()),
            ],
        );
        let mut it = MergingIter::new(vec![
            mem(&[(b"k", 5, b"mem-k"), (b"m", 6, b"mem-m")]),
            Box::new(table.iter()),
        ]);
        let want = vec![
            s(b"a", 2, b"table-a"),
            s(b"k", 5, b"mem-k"),
            s(b"k", 5, b"table-k"),
            s(b"m", 6, b"mem-m"),
            s(b"z", 1, b"table-z"),
        ];
        assert_eq!(forward(&mut it), want);
        let mut rev = want.clone();
        rev.reverse();
        assert_eq!(backward(&mut it), rev);
        // Back and forth across the tie.
        it.seek(b"k", 5).unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"mem-k")));
        it.next().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"table-k")));
        it.prev().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"mem-k")));
        it.prev().unwrap();
        assert_eq!(at(&it), Some(s(b"a", 2, b"table-a")));
        it.next().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"mem-k")));
        it.next().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"table-k")));
        it.next().unwrap();
        assert_eq!(at(&it), Some(s(b"m", 6, b"mem-m")));
        it.prev().unwrap();
        assert_eq!(at(&it), Some(s(b"k", 5, b"table-k")));
    }

    #[test]
    fn random_moves_match_a_sorted_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Vec<u8>> = (0..30u32).map(|i| format!("k{i:02}").into_bytes()).collect();
        for round in 0..20u64 {
            // Children: three memtables and two tables, overlapping, with some internal keys
            // repeated in several children. The value names the child.
            let mut model: Vec<(Vec<u8>, u64, usize, Vec<u8>)> = Vec::new();
            let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
            for child in 0..5usize {
                let mut entries: Vec<(Vec<u8>, u64, ValueKind, Vec<u8>)> = Vec::new();
                for _ in 0..rng.gen_range(0..40) {
                    let k = keys[rng.gen_range(0..keys.len())].clone();
                    let seq = rng.gen_range(1..20u64);
                    if entries.iter().any(|e| e.0 == k && e.1 == seq) {
                        continue;
                    }
                    entries.push((k, seq, ValueKind::Put, format!("c{child}").into_bytes()));
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
                model.extend(entries.iter().map(|e| (e.0.clone(), e.1, child, e.3.clone())));
                if child < 3 {
                    let m = MemTable::new(1, 1 << 20);
                    for e in &entries {
                        m.insert(&e.0, e.1, e.2, &e.3);
                    }
                    children.push(Box::new(MemIter::new(Arc::new(m))));
                } else if entries.is_empty() {
                    children.push(Box::new(MemIter::new(Arc::new(MemTable::new(1, 1 << 20)))));
                } else {
                    let t = build_table(dir.path(), round * 10 + child as u64, &entries);
                    children.push(Box::new(t.iter()));
                }
            }
            model.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
            let model: Vec<Seen> = model.into_iter().map(|(k, q, _, v)| (k, q, v)).collect();
            let mut it = MergingIter::new(children);
            let mut pos: Option<usize> = None;
            for _ in 0..400 {
                match rng.gen_range(0..12) {
                    0 => {
                        it.seek_to_first().unwrap();
                        pos = (!model.is_empty()).then_some(0);
                    }
                    1 => {
                        it.seek_to_last().unwrap();
                        pos = model.len().checked_sub(1);
                    }
                    2 => {
                        let k = &keys[rng.gen_range(0..keys.len())];
                        let seq = rng.gen_range(0..21u64);
                        it.seek(k, seq).unwrap();
                        let i = model.partition_point(|e| (&e.0, Reverse(e.1)) < (k, Reverse(seq)));
                        pos = (i < model.len()).then_some(i);
                    }
                    3 => {
                        let k = &keys[rng.gen_range(0..keys.len())];
                        it.seek_before(k).unwrap();
                        pos = model.partition_point(|e| e.0 < *k).checked_sub(1);
                    }
                    4..=7 => {
                        if let Some(p) = pos {
                            it.next().unwrap();
                            pos = (p + 1 < model.len()).then_some(p + 1);
                        }
                    }
                    _ => {
                        if let Some(p) = pos {
                            it.prev().unwrap();
                            pos = p.checked_sub(1);
                        }
                    }
                }
                assert_eq!(at(&it), pos.map(|p| model[p].clone()), "round {round}");
            }
        }
    }
}
