//! Bloom filter over the user keys of one SSTable.
//!
//! ```text
//! filter = bits[m / 8] ‖ probes u8
//! ```
//! Hash: XXH3-64 of the user key; probe i tests bit (h1 + i·h2) mod m, with h1 and h2 the low
//! and high halves of the hash, the latter forced odd (double hashing).

use xxhash_rust::xxh3::xxh3_64;

/// Collects key hashes and builds a filter.
pub(crate) struct FilterBuilder {
    hashes: Vec<u64>,
    bits_per_key: u32,
}

impl FilterBuilder {
    pub(crate) fn new(bits_per_key: u32) -> FilterBuilder {
        FilterBuilder { hashes: Vec::new(), bits_per_key }
    }
    pub(crate) fn add(&mut self, user_key: &[u8]) {
        let h = xxh3_64(user_key);
        if self.hashes.last() != Some(&h) {
            self.hashes.push(h);
        }
    }
    pub(crate) fn finish(&self) -> Vec<u8> {
        let bits = (self.hashes.len() as u64 * u64::from(self.bits_per_key)).max(64);
        let bytes = bits.div_ceil(8) as usize;
        let m = bytes as u64 * 8;
        // ln 2 · bits per key, between 1 and 30 probes.
        let probes = ((f64::from(self.bits_per_key) * 0.69) as u8).clamp(1, 30);
        let mut out = vec![0u8; bytes + 1];
        for &h in &self.hashes {
            let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
            for i in 0..u64::from(probes) {
                let bit = h1.wrapping_add(i.wrapping_mul(h2)) % m;
                out[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        out[bytes] = probes;
        out
    }
}

/// A filter read from disk (after authentication).
#[derive(Debug)]
pub struct Filter {
    data: Vec<u8>,
}

impl Filter {
    /// Checks the layout of `data`.
    pub fn new(data: Vec<u8>) -> Result<Filter, &'static str> {
        match data.last() {
            Some(&p) if (1..=30).contains(&p) && data.len() >= 2 => Ok(Filter { data }),
            _ => Err("bloom filter malformed"),
        }
    }
    /// The filter's bytes as stored.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.data
    }
    /// Whether `user_key` may be in the table (false means certainly not).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        let Some((&probes, bits)) = self.data.split_last() else { return true };
        let m = bits.len() as u64 * 8;
        if m == 0 {
            return true;
        }
        let h = xxh3_64(user_key);
        let (h1, h2) = (h & 0xffff_ffff, (h >> 32) | 1);
        (0..u64::from(probes)).all(|i| {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) % m;
            bits.get((bit / 8) as usize).is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut b = FilterBuilder::new(10);
        for i in 0..10_000u32 {
            b.add(format!("key{i}").as_bytes());
        }
        let f = Filter::new(b.finish()).unwrap();
        assert!((0..10_000u32).all(|i| f.may_contain(format!("key{i}").as_bytes())));
        let fp = (0..10_000u32).filter(|i| f.may_contain(format!("other{i}").as_bytes())).count();
        assert!(fp < 300, "false positive rate too high: {fp}/10000");
        assert!(Filter::new(vec![]).is_err());
        assert!(Filter::new(vec![0, 0]).is_err());
    }
}
