//! The block cache: opened (authenticated, decrypted, decompressed) blocks, so a hit costs no
//! crypto. Keyed by (file number, offset); file numbers are never reused.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::block::Block;

#[derive(Clone)]
struct BlockWeighter;

impl Weighter<(u64, u64), Arc<Block>> for BlockWeighter {
    fn weight(&self, _key: &(u64, u64), val: &Arc<Block>) -> u64 {
        val.size() as u64 + 64
    }
}

/// A sharded, weighted cache of opened blocks.
pub(crate) struct BlockCache {
    cache: Option<Cache<(u64, u64), Arc<Block>, BlockWeighter>>,
}

impl BlockCache {
    pub(crate) fn new(capacity_bytes: u64) -> BlockCache {
        let cache = (capacity_bytes > 0).then(|| {
            let items = (capacity_bytes / 4096).max(16) as usize;
            Cache::with_weighter(items, capacity_bytes, BlockWeighter)
        });
        BlockCache { cache }
    }
    pub(crate) fn get(&self, file: u64, offset: u64) -> Option<Arc<Block>> {
        self.cache.as_ref()?.get(&(file, offset))
    }
    pub(crate) fn insert(&self, file: u64, offset: u64, block: Arc<Block>) {
        if let Some(c) = &self.cache {
            c.insert((file, offset), block);
        }
    }
}
