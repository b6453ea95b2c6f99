//! Data and index blocks: sorted entries with prefix-compressed keys and restart points.
//!
//! ```text
//! block   = entry* ‖ restart* (u32 each, offset of an entry with shared = 0) ‖ count u32
//! entry   = shared varint ‖ unshared varint ‖ value len varint ‖ key[shared..] ‖ value
//! ```
//!
//! Keys are encoded internal keys. A block is the plaintext of one sealed block; its bytes are
//! only parsed after the seal has authenticated them, and still parsed with bounds checks.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::coding::{get_u32_at, put_u32, put_varint, Reader};
use crate::key;

/// Builds one block.
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    counter: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            restart_interval: restart_interval.max(1),
            counter: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Adds an entry; keys must arrive in increasing order.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut shared = 0;
        if self.counter < self.restart_interval {
            shared = self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count();
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.counter = 0;
        }
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, (key.len() - shared) as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
        self.entries += 1;
    }

    /// Bytes the finished block would take.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + self.restarts.len() * 4 + 4
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }
    pub(crate) fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Finishes the block, returning its bytes and resetting the builder.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            put_u32(&mut out, *r);
        }
        put_u32(&mut out, self.restarts.len() as u32);
        self.restarts.clear();
        self.restarts.push(0);
        self.counter = 0;
        self.entries = 0;
        self.last_key.clear();
        out
    }
}

/// An opened (authenticated, decompressed) block.
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    restarts_offset: usize,
    num_restarts: usize,
}

impl Block {
    /// Checks the restart array of `data`.
    pub fn new(data: Vec<u8>) -> Result<Block, &'static str> {
        let n =
            data.len().checked_sub(4).and_then(|p| get_u32_at(&data, p)).ok_or("block too short")?
                as usize;
        let restarts_offset = n
            .checked_mul(4)
            .and_then(|b| b.checked_add(4))
            .and_then(|b| data.len().checked_sub(b))
            .ok_or("block restart count out of range")?;
        if n == 0 {
            return Err("block without restart points");
        }
        for i in 0..n {
            let r = get_u32_at(&data, restarts_offset + i * 4)
                .ok_or("block restart out of range")? as usize;
            if r >= restarts_offset.max(1) && !(r == 0 && restarts_offset == 0) {
                return Err("block restart out of range");
            }
        }
        Ok(Block { data, restarts_offset, num_restarts: n })
    }

    /// Bytes held (for the cache's accounting).
    pub fn size(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn restart(&self, i: usize) -> usize {
        get_u32_at(&self.data, self.restarts_offset + i * 4).unwrap_or(0) as usize
    }

    /// The offset of every entry, first to last.
    #[cfg(test)]
    pub(crate) fn entry_offsets(self: &Arc<Self>) -> Vec<usize> {
        let mut it = BlockIter::new(self.clone());
        it.seek_to_first();
        let mut out = Vec::new();
        while it.valid() {
            out.push(it.offset);
            it.next();
        }
        out
    }

    /// The block's bytes with restart point `i` set to `to`.
    #[cfg(test)]
    pub(crate) fn with_restart(&self, i: usize, to: usize) -> Vec<u8> {
        let mut d = self.data.clone();
        let at = self.restarts_offset + i * 4;
        d[at..at + 4].copy_from_slice(&u32::try_from(to).unwrap().to_le_bytes());
        d
    }
}

/// A cursor over a block's entries.
pub struct BlockIter {
    block: Arc<Block>,
    /// Offset of the current entry; `restarts_offset` when past the end.
    offset: usize,
    next_offset: usize,
    key: Vec<u8>,
    value: (usize, usize),
    err: Option<&'static str>,
}

impl BlockIter {
    /// A cursor before the first entry (call a seek).
    pub fn new(block: Arc<Block>) -> BlockIter {
        let end = block.restarts_offset;
        BlockIter {
            block,
            offset: end,
            next_offset: end,
            key: Vec::new(),
            value: (0, 0),
            err: None,
        }
    }

    /// Whether positioned at an entry.
    pub fn valid(&self) -> bool {
        self.err.is_none() && self.offset < self.block.restarts_offset
    }
    /// The first decode error met, if any.
    pub fn error(&self) -> Option<&'static str> {
        self.err
    }
    /// Current key (encoded internal key).
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    /// Current value.
    pub fn value(&self) -> &[u8] {
        self.block.data.get(self.value.0..self.value.1).unwrap_or(&[])
    }

    /// Decodes the entry at `next_offset`, with `self.key` holding the previous key.
    fn parse_next(&mut self) -> bool {
        self.offset = self.next_offset;
        let end = self.block.restarts_offset;
        if self.offset >= end {
            self.offset = end;
            return false;
        }
        let data = &self.block.data[..end];
        let mut r = Reader::new(&data[self.offset..]);
        let parsed = (|| {
            let shared = r.varint_len()?;
            let unshared = r.varint_len()?;
            let vlen = r.varint_len()?;
            let delta = r.bytes(unshared)?;
            let vstart = r.pos();
            r.bytes(vlen)?;
            Some((shared, delta, vstart, vlen))
        })();
        let Some((shared, delta, vstart, vlen)) = parsed else {
            self.err = Some("block entry malformed");
            return false;
        };
        if shared > self.key.len() {
            self.err = Some("block entry shares more than the previous key");
            return false;
        }
        self.key.truncate(shared);
        self.key.extend_from_slice(delta);
        let vs = self.offset + vstart;
        self.value = (vs, vs + vlen);
        self.next_offset = vs + vlen;
        true
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) {
        self.key.clear();
        self.next_offset = self.block.restart(0);
        self.parse_next();
    }

    /// Moves to the next entry.
    pub fn next(&mut self) {
        if self.valid() {
            self.parse_next();
        }
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) {
        self.key.clear();
        self.next_offset = self.block.restart(self.block.num_restarts - 1);
        // Decode to the end of the entries; every entry moves the offset forward.
        while self.parse_next() {
            if self.next_offset >= self.block.restarts_offset {
                return;
            }
        }
    }

    /// Moves to the previous entry (not valid once before the first).
    ///
    /// Entries are prefix-compressed, so the previous key is rebuilt by decoding forward from
    /// the last restart point before the current entry. The restart array is binary searched
    /// as if sorted; a restart point that does not lead exactly to the current entry (out of
    /// order, or not an entry boundary) is reported as an error, never followed further.
    pub fn prev(&mut self) {
        if !self.valid() {
            return;
        }
        let cur = self.offset;
        // The number of leading restart points before `cur` (exact when the array is sorted).
        let (mut lo, mut hi) = (0usize, self.block.num_restarts);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.block.restart(mid) < cur {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let end = self.block.restarts_offset;
        let start = match lo.checked_sub(1).map(|i| self.block.restart(i)) {
            Some(start) if start < cur => start,
            Some(_) => {
                self.err = Some("block restart points out of order");
                return;
            }
            None if cur != self.block.restart(0) => {
                // No restart point before an entry that is not the first.
                self.err = Some("block restart points out of order");
                return;
            }
            None => {
                // At the first entry: step off the front.
                self.key.clear();
                self.offset = end;
                self.next_offset = end;
                return;
            }
        };
        self.key.clear();
        self.next_offset = start;
        loop {
            if !self.parse_next() {
                if self.err.is_none() {
                    self.err = Some("block restart points out of order");
                }
                return;
            }
            match self.next_offset.cmp(&cur) {
                Ordering::Less => {}
                Ordering::Equal => return,
                Ordering::Greater => {
                    self.err = Some("block restart point is not an entry boundary");
                    return;
                }
            }
        }
    }

    /// Moves to the last entry whose key is before `target` in internal-key order (not valid
    /// if there is none).
    pub fn seek_before(&mut self, target: &[u8]) {
        self.seek(target);
        if self.err.is_some() {
            return;
        }
        if self.valid() {
            self.prev();
        } else {
            self.seek_to_last();
        }
    }

    /// Moves to the first entry whose key is at or after `target` in internal-key order.
    pub fn seek(&mut self, target: &[u8]) {
        // Binary search the restart points for the last one whose key is before target.
        let (mut lo, mut hi) = (0usize, self.block.num_restarts - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            self.key.clear();
            self.next_offset = self.block.restart(mid);
            if !self.parse_next() {
                if self.err.is_none() {
                    self.err = Some("block restart points past the entries");
                }
                return;
            }
            if key::compare(&self.key, target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.key.clear();
        self.next_offset = self.block.restart(lo);
        while self.parse_next() {
            if key::compare(&self.key, target) != Ordering::Less {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{encode, seek_key, ValueKind};

    fn ik(k: &[u8], seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&mut v, k, seq, ValueKind::Put);
        v
    }

    #[test]
    fn build_seek_iterate() {
        for interval in [1, 2, 16] {
            let mut b = BlockBuilder::new(interval);
            let keys: Vec<Vec<u8>> =
                (0..200u32).map(|i| format!("key{:05}", i * 2).into_bytes()).collect();
            for (i, k) in keys.iter().enumerate() {
                b.add(&ik(k, 10), format!("v{i}").as_bytes());
            }
            let block = Arc::new(Block::new(b.finish()).unwrap());
            let mut it = BlockIter::new(block.clone());
            it.seek_to_first();
            let mut n = 0;
            while it.valid() {
                assert_eq!(key::user_key(it.key()), keys[n].as_slice());
                assert_eq!(it.value(), format!("v{n}").as_bytes());
                n += 1;
                it.next();
            }
            assert_eq!(n, keys.len());
            for i in 0..400u32 {
                let target = format!("key{i:05}").into_bytes();
                it.seek(&seek_key(&target, 100));
                let want = keys.iter().position(|k| *k >= target);
                match want {
                    Some(w) => assert_eq!(key::user_key(it.key()), keys[w].as_slice()),
                    None => assert!(!it.valid()),
                }
            }
        }
    }

    #[test]
    fn malformed_blocks_do_not_panic() {
        let mut b = BlockBuilder::new(4);
        for i in 0..50u32 {
            b.add(&ik(format!("k{i:03}").as_bytes(), 1), b"value");
        }
        let good = b.finish();
        for i in 0..good.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut d = good.clone();
                d[i] ^= x;
                if let Ok(block) = Block::new(d) {
                    let mut it = BlockIter::new(Arc::new(block));
                    it.seek(&seek_key(b"k025", 5));
                    it.seek_to_first();
                    let mut steps = 0;
                    while it.valid() && steps < 1000 {
                        it.next();
                        steps += 1;
                    }
                    it.seek_before(&seek_key(b"k025", 5));
                    it.seek_to_last();
                    assert_backward_walk_ends(&mut it);
                }
            }
        }
        for n in 0..good.len() {
            let _ = Block::new(good[..n].to_vec());
        }
    }

    /// Steps back until not valid, asserting each step moves to an earlier entry (so a walk
    /// over a block of `n` bytes ends within `n` steps).
    fn assert_backward_walk_ends(it: &mut BlockIter) {
        let mut last = it.offset;
        while it.valid() {
            it.prev();
            if it.valid() {
                assert!(it.offset < last, "prev did not move back: {} -> {}", last, it.offset);
                last = it.offset;
            }
        }
    }

    fn build(keys: &[Vec<u8>], interval: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(interval);
        for (i, k) in keys.iter().enumerate() {
            b.add(&ik(k, 10), format!("v{i}").as_bytes());
        }
        Arc::new(Block::new(b.finish()).unwrap())
    }

    /// Keys with long shared prefixes, so entries inside a restart interval are compressed.
    fn keys(n: u32) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("key{:05}", i * 2).into_bytes()).collect()
    }

    /// The user key at the cursor, or `None` when not valid.
    fn at(it: &BlockIter) -> Option<Vec<u8>> {
        it.valid().then(|| key::user_key(it.key()).to_vec())
    }

    #[test]
    fn prev_over_restart_intervals() {
        for n in [0u32, 1, 2, 3, 17, 200] {
            for interval in [1, 2, 3, 16, 1000] {
                let keys = keys(n);
                let block = build(&keys, interval);
                let mut it = BlockIter::new(block.clone());
                // Last to first.
                it.seek_to_last();
                let mut back = Vec::new();
                while it.valid() {
                    back.push((at(&it).unwrap(), it.value().to_vec()));
                    it.prev();
                }
                assert!(it.error().is_none());
                let want: Vec<_> = keys
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, k)| (k.clone(), format!("v{i}").into_bytes()))
                    .collect();
                assert_eq!(back, want, "n {n} interval {interval}");
                // From every entry: one step back, then forward again.
                for i in 0..keys.len() {
                    it.seek(&seek_key(&keys[i], 100));
                    it.prev();
                    assert_eq!(at(&it), i.checked_sub(1).map(|j| keys[j].clone()));
                    if i > 0 {
                        it.next();
                        assert_eq!(at(&it), Some(keys[i].clone()));
                        it.next();
                        assert_eq!(at(&it), keys.get(i + 1).cloned());
                    }
                }
                // The last entry before every target, present or not.
                for t in 0..=2 * n + 1 {
                    let target = format!("key{t:05}").into_bytes();
                    it.seek_before(&seek_key(&target, key::MAX_SEQ));
                    let want = keys.iter().rposition(|k| *k < target).map(|j| keys[j].clone());
                    assert_eq!(at(&it), want, "before {t}, n {n} interval {interval}");
                }
            }
        }
    }

    #[test]
    fn random_mix_of_next_and_prev_matches_a_slice() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let keys = keys(300);
        for interval in [1, 4, 16] {
            let block = build(&keys, interval);
            let mut it = BlockIter::new(block);
            let mut model: Option<usize> = None;
            for _ in 0..5_000 {
                match rng.gen_range(0..10) {
                    0 => {
                        it.seek_to_first();
                        model = Some(0);
                    }
                    1 => {
                        it.seek_to_last();
                        model = Some(keys.len() - 1);
                    }
                    2 => {
                        let t = rng.gen_range(0..keys.len());
                        it.seek(&seek_key(&keys[t], 100));
                        model = Some(t);
                    }
                    3..=6 => {
                        it.next();
                        model = model.and_then(|m| (m + 1 < keys.len()).then_some(m + 1));
                    }
                    _ => {
                        it.prev();
                        model = model.and_then(|m| m.checked_sub(1));
                    }
                }
                assert_eq!(at(&it), model.map(|m| keys[m].clone()), "interval {interval}");
            }
        }
    }

    #[test]
    fn corrupt_restart_array() {
        let keys = keys(40);
        let good = build(&keys, 4);
        let offsets = good.entry_offsets();
        assert_eq!(offsets.len(), 40);
        assert_eq!(good.num_restarts, 10);

        // A restart point at an entry that shares a prefix with the one before: the rebuilt
        // key would be wrong, so stepping back from the next entry is an error.
        let block = Arc::new(Block::new(good.with_restart(1, offsets[5])).unwrap());
        let mut it = BlockIter::new(block);
        it.seek_to_first();
        for _ in 0..6 {
            it.next();
        }
        assert_eq!(at(&it), Some(keys[6].clone()));
        it.prev();
        assert!(!it.valid());
        assert_eq!(it.error(), Some("block entry shares more than the previous key"));

        // A restart point inside an entry: an error or a move back, never a loop or a panic.
        for i in 1..10 {
            for delta in 1..4 {
                let d = good.with_restart(i, offsets[i * 4] + delta);
                let mut it = BlockIter::new(Arc::new(Block::new(d).unwrap()));
                it.seek_to_last();
                assert_backward_walk_ends(&mut it);
            }
        }

        // Restart points in descending order: each one is an entry boundary with a whole key,
        // so the walk back is right as far as it goes, and ends in an error, not early.
        let mut d = good.data.clone();
        for i in 0..10 {
            let at = good.restarts_offset + i * 4;
            d[at..at + 4]
                .copy_from_slice(&u32::try_from(offsets[(9 - i) * 4]).unwrap().to_le_bytes());
        }
        let mut it = BlockIter::new(Arc::new(Block::new(d).unwrap()));
        it.seek(&seek_key(&keys[39], 100));
        let mut back = Vec::new();
        while it.valid() {
            back.push(at(&it).unwrap());
            it.prev();
        }
        assert_eq!(it.error(), Some("block restart points out of order"));
        assert!(back.len() > 1 && back.len() < keys.len(), "{} entries", back.len());
        assert_eq!(back, keys.iter().rev().take(back.len()).cloned().collect::<Vec<_>>());

        // Every byte of the restart array changed: the walks end.
        for i in good.restarts_offset..good.data.len() {
            for x in [0x01u8, 0x10, 0x80, 0xff] {
                let mut d = good.data.clone();
                d[i] ^= x;
                let Ok(block) = Block::new(d) else { continue };
                let mut it = BlockIter::new(Arc::new(block));
                it.seek_to_last();
                assert_backward_walk_ends(&mut it);
                it.seek_before(&seek_key(&keys[20], key::MAX_SEQ));
                assert_backward_walk_ends(&mut it);
            }
        }
    }
}
