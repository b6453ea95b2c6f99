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

    fn restart(&self, i: usize) -> usize {
        get_u32_at(&self.data, self.restarts_offset + i * 4).unwrap_or(0) as usize
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
                }
            }
        }
        for n in 0..good.len() {
            let _ = Block::new(good[..n].to_vec());
        }
    }
}
