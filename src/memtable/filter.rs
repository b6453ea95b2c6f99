//! A Bloom filter of a memtable's user keys, so that a point read of a key the memtable does
//! not hold (most reads, once the data outgrows the memtable) skips the skip list's search:
//! about ten cache misses in a full memtable, against one here.
//!
//! Blocked: all of a key's bits lie in one 64-byte block (8 words), so a look is one cache
//! line; 6 bits a key, about 10 bits a key at the memtable's expected entry count (false
//! positives about 1% there, more in a memtable that outgrows it, never a false negative).
//!
//! Visibility: the one writer sets an entry's bits before it links the entry and before the
//! group's last sequence is published (release); a reader whose sequence covers the entry
//! took that sequence with an acquire load, so it sees the bits.

use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::xxh3_128;

/// Bits of filter per entry the memtable is expected to hold.
const BITS_PER_KEY: usize = 10;
/// Bits set per key, all in one block.
const PROBES: u32 = 6;
const WORDS_PER_BLOCK: usize = 8;

pub(crate) struct KeyFilter {
    words: Box<[AtomicU64]>,
    blocks: u64,
}

impl std::fmt::Debug for KeyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFilter").field("blocks", &self.blocks).finish_non_exhaustive()
    }
}

/// The block of a key, and the bits to set or test in each of its words.
fn place(key: &[u8], blocks: u64) -> (usize, [u64; WORDS_PER_BLOCK]) {
    let h = xxh3_128(key);
    // The block from the high half (a multiply-shift onto 0..blocks), the bits from the low.
    let block = ((u128::from((h >> 64) as u64) * u128::from(blocks)) >> 64) as usize;
    let mut bits = h as u64;
    let mut masks = [0u64; WORDS_PER_BLOCK];
    for _ in 0..PROBES {
        let bit = (bits & 511) as usize;
        masks[bit / 64] |= 1 << (bit % 64);
        bits >>= 9;
    }
    (block * WORDS_PER_BLOCK, masks)
}

impl KeyFilter {
    /// A filter sized for `expected_keys` keys.
    pub(crate) fn new(expected_keys: usize) -> KeyFilter {
        let blocks = (expected_keys.max(1) * BITS_PER_KEY).div_ceil(64 * WORDS_PER_BLOCK);
        KeyFilter {
            words: (0..blocks * WORDS_PER_BLOCK).map(|_| AtomicU64::new(0)).collect(),
            blocks: blocks as u64,
        }
    }

    /// Bytes the filter takes.
    pub(crate) fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    pub(crate) fn add(&self, key: &[u8]) {
        let (at, masks) = place(key, self.blocks);
        for (word, mask) in self.words[at..at + WORDS_PER_BLOCK].iter().zip(masks) {
            if mask != 0 {
                word.fetch_or(mask, Ordering::Relaxed);
            }
        }
    }

    /// False only if `key` was never added.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        let (at, masks) = place(key, self.blocks);
        self.words[at..at + WORDS_PER_BLOCK]
            .iter()
            .zip(masks)
            .all(|(word, mask)| word.load(Ordering::Relaxed) & mask == mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let f = KeyFilter::new(10_000);
        for i in 0..10_000u32 {
            f.add(format!("key{i}").as_bytes());
        }
        for i in 0..10_000u32 {
            assert!(f.may_contain(format!("key{i}").as_bytes()), "key{i} lost");
        }
        let false_positives =
            (0..100_000u32).filter(|i| f.may_contain(format!("other{i}").as_bytes())).count();
        // About 1% at 10 bits a key with 6 probes in one block; 2% leaves room for the blocking.
        assert!(false_positives < 2_000, "{false_positives} false positives in 100,000");
        assert!(!KeyFilter::new(0).may_contain(b"anything"));
    }
}
