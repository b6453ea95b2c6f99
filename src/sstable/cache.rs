//! The block cache: opened (authenticated, decrypted, decompressed) SSTable blocks and
//! value-log values, so a hit costs no crypto and no I/O. Keyed by (file number, offset): file
//! numbers are never reused, and a value-log segment re-sealed under a new key keeps its
//! entries' plaintext at the same offsets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::block::Block;

/// A value-log entry as cached: its sequence number, key and value.
pub(crate) struct CachedValue {
    pub(crate) seq: u64,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
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
            Cached::Value(v) => (v.key.len() + v.value.len()) as u64,
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
