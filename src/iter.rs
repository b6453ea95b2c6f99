//! Iterators over internal entries, the merge of many sources, and the user-facing iterator.

use std::cmp::Ordering;
use std::ops::Bound;

use crate::error::Result;
use crate::key::{ValueKind, MAX_SEQ};
use crate::vlog::{ReadAhead, VlogSet};
use std::sync::Arc;

/// A cursor over entries in internal-key order (user key ascending, sequence descending).
pub(crate) trait InternalIterator: Send {
    fn valid(&self) -> bool;
    fn seek_to_first(&mut self) -> Result<()>;
    /// Positions at the first entry at or after (`user_key`, `seq`).
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()>;
    fn next(&mut self) -> Result<()>;
    fn user_key(&self) -> &[u8];
    fn seq(&self) -> u64;
    fn kind(&self) -> ValueKind;
    fn value(&self) -> &[u8];
}

fn order(a: &dyn InternalIterator, b: &dyn InternalIterator) -> Ordering {
    a.user_key().cmp(b.user_key()).then_with(|| b.seq().cmp(&a.seq()))
}

/// Merges sources; on equal user keys the newer sequence comes first.
pub(crate) struct MergingIter {
    children: Vec<Box<dyn InternalIterator>>,
    current: Option<usize>,
}

impl MergingIter {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> MergingIter {
        MergingIter { children, current: None }
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
    fn cur(&self) -> Option<&dyn InternalIterator> {
        self.current.map(|i| self.children[i].as_ref())
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
        self.find_smallest();
        Ok(())
    }
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()> {
        for c in &mut self.children {
            c.seek(user_key, seq)?;
        }
        self.find_smallest();
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        if let Some(i) = self.current {
            self.children[i].next()?;
            self.find_smallest();
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

/// The user-facing iterator: newest visible version of each key, tombstones hidden, within
/// bounds. Holds the memtables and files it reads alive.
pub struct Iter {
    inner: MergingIter,
    vlog: Arc<VlogSet>,
    read_ahead: ReadAhead,
    seq: u64,
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    started: bool,
    done: bool,
    last_key: Option<Vec<u8>>,
    _pin: Box<dyn Send + Sync>,
}

impl Iter {
    pub(crate) fn new(
        inner: MergingIter,
        vlog: Arc<VlogSet>,
        seq: u64,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        pin: Box<dyn Send + Sync>,
    ) -> Iter {
        Iter {
            inner,
            vlog,
            read_ahead: ReadAhead::default(),
            seq,
            start,
            end,
            started: false,
            done: false,
            last_key: None,
            _pin: pin,
        }
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
                self.last_key = Some(uk.to_vec());
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
}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(kv)) => Some(Ok(kv)),
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
