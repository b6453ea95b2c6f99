//! The block cache: opened (authenticated, decrypted, decompressed) SSTable blocks and
//! value-log values, so a hit costs no crypto and no I/O. Keyed by (file number, offset): file
//! numbers are never reused, and a value-log segment re-sealed under a new key keeps its
//! entries' plaintext at the same offsets.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::block::Block;

/// A value-log entry as opened (authenticated, decrypted, decompressed): its sequence number,
/// and its key and value as parts of the buffer it was opened into (kept as it is, so opening
/// an entry copies no value bytes).
pub(crate) struct CachedValue {
    pub(crate) seq: u64,
    buf: Vec<u8>,
    key: Range<usize>,
    value: Range<usize>,
}

impl std::fmt::Debug for CachedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key or value bytes.
        f.debug_struct("CachedValue").field("seq", &self.seq).finish_non_exhaustive()
    }
}

impl CachedValue {
    /// The entry of sequence `seq` whose key and value are `buf[key]` and `buf[value]`, both
    /// in bounds.
    pub(crate) fn new(seq: u64, buf: Vec<u8>, key: Range<usize>, value: Range<usize>) -> Self {
        debug_assert!(key.end <= buf.len() && value.end <= buf.len());
        CachedValue { seq, buf, key, value }
    }
    /// The entry's key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.buf[self.key.clone()]
    }
    /// The entry's value.
    pub(crate) fn value(&self) -> &[u8] {
        &self.buf[self.value.clone()]
    }
    /// The value, in the entry's own buffer (moved to its front; no new allocation).
    pub(crate) fn into_value(self) -> Vec<u8> {
        let CachedValue { mut buf, value, .. } = self;
        buf.truncate(value.end);
        buf.drain(..value.start);
        buf
    }
    /// Bytes the entry holds in memory.
    fn size(&self) -> usize {
        self.buf.len()
    }
}

#[derive(Clone)]
enum Cached {
    Block(Arc<Block>),
    Value(Arc<CachedValue>),
}

#[derive(Clone)]
struct CacheWeighter;

impl Weighter<(u64, u64), Cached> for CacheWeighter {
    fn weight(&self, _key: &(u64, u64), val: &Cached) -> u64 {
        64 + match val {
            Cached::Block(b) => b.size() as u64,
            Cached::Value(v) => v.size() as u64,
        }
    }
}

/// A sharded, weighted cache of opened blocks and values.
pub(crate) struct BlockCache {
    cache: Option<Cache<(u64, u64), Cached, CacheWeighter>>,
    /// Hits and misses of SSTable block lookups, then of value-log value lookups.
    counts: [AtomicU64; 4],
}

/// Hits and misses of the cache's two kinds of lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheCounts {
    pub(crate) block_hits: u64,
    pub(crate) block_misses: u64,
    pub(crate) value_hits: u64,
    pub(crate) value_misses: u64,
}

impl BlockCache {
    pub(crate) fn new(capacity_bytes: u64) -> BlockCache {
        let cache = (capacity_bytes > 0).then(|| {
            let items = (capacity_bytes / 4096).max(16) as usize;
            Cache::with_weighter(items, capacity_bytes, CacheWeighter)
        });
        BlockCache { cache, counts: Default::default() }
    }
    /// Lookups answered and not answered so far, by kind (every lookup misses when the cache
    /// is off).
    pub(crate) fn detailed_counts(&self) -> CacheCounts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        CacheCounts { block_hits: c(0), block_misses: c(1), value_hits: c(2), value_misses: c(3) }
    }
    /// Counts a lookup of a block (`value` false) or a value.
    fn count<T>(&self, value: bool, found: Option<T>) -> Option<T> {
        let i = usize::from(value) * 2 + usize::from(found.is_none());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        found
    }
    pub(crate) fn get(&self, file: u64, offset: u64) -> Option<Arc<Block>> {
        let found = match self.cache.as_ref().and_then(|c| c.get(&(file, offset))) {
            Some(Cached::Block(b)) => Some(b),
            _ => None,
        };
        self.count(false, found)
    }
    pub(crate) fn insert(&self, file: u64, offset: u64, block: Arc<Block>) {
        if let Some(c) = &self.cache {
            c.insert((file, offset), Cached::Block(block));
        }
    }
    pub(crate) fn get_value(&self, file: u64, offset: u64) -> Option<Arc<CachedValue>> {
        let found = match self.cache.as_ref().and_then(|c| c.get(&(file, offset))) {
            Some(Cached::Value(v)) => Some(v),
            _ => None,
        };
        self.count(true, found)
    }
    pub(crate) fn insert_value(&self, file: u64, offset: u64, value: Arc<CachedValue>) {
        if let Some(c) = &self.cache {
            c.insert((file, offset), Cached::Value(value));
        }
    }
}
