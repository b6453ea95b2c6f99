//! Building user iterators over a super-version.

use std::ops::Bound;
use std::sync::Arc;

use super::version::{SuperVersion, TableFile};
use crate::error::Result;
use crate::iter::{InternalIterator, Iter, MergingIter};
use crate::key::ValueKind;
use crate::memtable::MemIter;
use crate::sstable::TableIter;

/// Concatenates the non-overlapping, sorted tables of one level, opening one at a time.
pub(crate) struct LevelIter {
    files: Vec<Arc<TableFile>>,
    index: usize,
    cur: Option<TableIter>,
}

impl LevelIter {
    pub(crate) fn new(files: Vec<Arc<TableFile>>) -> LevelIter {
        LevelIter { files, index: 0, cur: None }
    }

    fn open(&mut self, i: usize) {
        self.index = i;
        self.cur = self.files.get(i).map(|f| f.table.iter());
    }

    /// Moves to later files until positioned at an entry or past the last file.
    fn skip_empty(&mut self) -> Result<()> {
        while self.cur.as_ref().is_some_and(|c| !c.valid()) {
            self.open(self.index + 1);
            if let Some(c) = &mut self.cur {
                c.seek_to_first()?;
            }
        }
        Ok(())
    }

    /// Moves to earlier files until positioned at an entry or before the first file.
    fn skip_empty_back(&mut self) -> Result<()> {
        while self.cur.as_ref().is_some_and(|c| !c.valid()) && self.index > 0 {
            self.open(self.index - 1);
            if let Some(c) = &mut self.cur {
                c.seek_to_last()?;
            }
        }
        Ok(())
    }
}

impl InternalIterator for LevelIter {
    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(InternalIterator::valid)
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.open(0);
        if let Some(c) = &mut self.cur {
            c.seek_to_first()?;
        }
        self.skip_empty()
    }
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()> {
        let i = self.files.partition_point(|f| f.meta.largest_user() < user_key);
        self.open(i);
        if let Some(c) = &mut self.cur {
            c.seek(user_key, seq)?;
        }
        self.skip_empty()
    }
    fn next(&mut self) -> Result<()> {
        if let Some(c) = &mut self.cur {
            c.next()?;
        }
        self.skip_empty()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        let Some(last) = self.files.len().checked_sub(1) else {
            self.cur = None;
            return Ok(());
        };
        self.open(last);
        if let Some(c) = &mut self.cur {
            c.seek_to_last()?;
        }
        self.skip_empty_back()
    }
    fn seek_before(&mut self, user_key: &[u8]) -> Result<()> {
        // The last file that starts before `user_key` holds the entry before it, if any does.
        let i = self.files.partition_point(|f| f.meta.smallest_user() < user_key);
        let Some(i) = i.checked_sub(1) else {
            self.cur = None;
            return Ok(());
        };
        self.open(i);
        if let Some(c) = &mut self.cur {
            c.seek_before(user_key)?;
        }
        self.skip_empty_back()
    }
    fn prev(&mut self) -> Result<()> {
        if let Some(c) = &mut self.cur {
            c.prev()?;
        }
        self.skip_empty_back()
    }
    fn user_key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[][..], |c| c.user_key())
    }
    fn seq(&self) -> u64 {
        self.cur.as_ref().map_or(0, InternalIterator::seq)
    }
    fn kind(&self) -> ValueKind {
        self.cur.as_ref().map_or(ValueKind::Delete, InternalIterator::kind)
    }
    fn value(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[][..], |c| c.value())
    }
}

/// Every source of a super-version, merged.
pub(crate) fn merged(sv: &SuperVersion) -> MergingIter {
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    children.push(Box::new(MemIter::new(sv.mem.clone())));
    for m in &sv.imms {
        children.push(Box::new(MemIter::new(m.clone())));
    }
    for f in &sv.version.levels[0] {
        children.push(Box::new(f.table.iter()));
    }
    for level in &sv.version.levels[1..] {
        if !level.is_empty() {
            children.push(Box::new(LevelIter::new(level.clone())));
        }
    }
    MergingIter::new(children)
}

pub(crate) fn new_iter(
    sv: Arc<SuperVersion>,
    seq: u64,
    (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> Iter {
    let vlog = sv.vlog.clone();
    Iter::new(vlog, seq, start, end, Box::new(move || merged(&sv)))
}

/// An iterator over the keyspace with tree-key prefix `prefix`, within `bounds` on its user
/// keys; it returns user keys (the prefix stripped).
pub(crate) fn new_iter_in(
    sv: Arc<SuperVersion>,
    seq: u64,
    prefix: &[u8],
    bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> Iter {
    new_iter(sv, seq, super::keyspace::bounds_in(prefix, bounds)).strip(prefix.len())
}
