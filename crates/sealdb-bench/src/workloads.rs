//! The workloads, and the keys, values and key distributions they use.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::VALUE_4K;
use crate::Res;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Workload {
    FillSeq,
    FillRandom,
    Overwrite,
    ReadRandom,
    ReadMissing,
    ReadSeq,
    SeekRandom,
    YcsbA,
    YcsbB,
    YcsbC,
    YcsbF,
    Fill4k,
    Read4k,
    Seek4k,
    Reencrypt,
    Reencrypt4k,
    Cold,
    Batch2,
    Txn,
    // Appended, so that the other workloads keep their discriminants (their client seeds).
    FillSync,
    FillSync8,
}

impl Workload {
    pub(crate) const ALL: [Workload; 21] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::ReadSeq,
        Workload::SeekRandom,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbF,
        Workload::Fill4k,
        Workload::Read4k,
        Workload::Seek4k,
        Workload::FillSync,
        Workload::FillSync8,
        Workload::Reencrypt,
        Workload::Reencrypt4k,
        Workload::Cold,
        Workload::Batch2,
        Workload::Txn,
    ];

    /// The workloads run when `--workloads` is not given: all but reencrypt4k, cold, fillsync
    /// and fillsync8 (each synced put costs an fsync: slow, and not what `--quick` is for).
    pub(crate) const DEFAULT: [Workload; 17] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::ReadSeq,
        Workload::SeekRandom,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbF,
        Workload::Fill4k,
        Workload::Read4k,
        Workload::Seek4k,
        Workload::Reencrypt,
        Workload::Batch2,
        Workload::Txn,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadMissing => "readmissing",
            Workload::ReadSeq => "readseq",
            Workload::SeekRandom => "seekrandom",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbF => "ycsb-f",
            Workload::Fill4k => "fill4k",
            Workload::Read4k => "read4k",
            Workload::Seek4k => "seek4k",
            Workload::Reencrypt => "reencrypt",
            Workload::Reencrypt4k => "reencrypt4k",
            Workload::Cold => "cold",
            Workload::Batch2 => "batch2",
            Workload::Txn => "txn",
            Workload::FillSync => "fillsync",
            Workload::FillSync8 => "fillsync8",
        }
    }

    /// One line on what an operation of the workload is.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Workload::FillSeq => "fresh DB; put every key once in ascending order, then flush",
            Workload::FillRandom => "fresh DB; put every key once in shuffled order, then flush",
            Workload::Overwrite => "put a uniformly random existing key (on the fillrandom DB)",
            Workload::ReadRandom => "get a uniformly random existing key",
            Workload::ReadMissing => "get an absent key that sorts between two present ones",
            Workload::ReadSeq => "one full ascending scan; an op is one key",
            Workload::SeekRandom => "seek to a random existing key, then read 100 keys",
            Workload::YcsbA => "YCSB A: 50% get / 50% put, scrambled zipfian 0.99",
            Workload::YcsbB => "YCSB B: 95% get / 5% put, scrambled zipfian 0.99",
            Workload::YcsbC => "YCSB C: 100% get, scrambled zipfian 0.99",
            Workload::YcsbF => "YCSB F: get, change a byte, put back, scrambled zipfian 0.99",
            Workload::Fill4k => {
                "fresh DB; put --num4k keys with 4 KiB values, shuffled, then flush"
            }
            Workload::Read4k => "get a uniformly random key of the fill4k DB",
            Workload::Seek4k => {
                "seek to a random existing key of the fill4k DB, then read 100 keys"
            }
            Workload::Reencrypt => {
                "encrypted sealdb only: fresh DB of --num keys; readrandom idle, then during \
                 background re-encryption after rotate_data_key, then DB::reencrypt() MB/s"
            }
            Workload::Reencrypt4k => "reencrypt with --num4k keys of 4 KiB values",
            Workload::Cold => {
                "sealdb only: fresh DB of --num keys, compacted, all archived to an object store \
                 with --cold-latency-ms per request; cold point reads, a cold scan, a zipfian mix \
                 through the part cache"
            }
            Workload::Batch2 => {
                "fresh DB of --num keys; get 2 random keys, then put both in one write batch \
                 (no transaction): txn's baseline"
            }
            Workload::Txn => {
                "fresh DB of --num keys; begin a transaction, get 2 random keys, put both, \
                 commit (retried on conflict)"
            }
            Workload::FillSync => {
                "fresh DB opened as --sync opens it; put --sync-num keys once each in shuffled \
                 order from 1 thread, each acknowledged only once durable, then flush"
            }
            Workload::FillSync8 => {
                "fillsync from 8 threads at once, so that concurrent commits can share an fsync"
            }
        }
    }

    pub(crate) fn parse(s: &str) -> Res<Workload> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "a" | "ycsba" | "ycsb_a" => "ycsb-a",
            "b" | "ycsbb" | "ycsb_b" => "ycsb-b",
            "c" | "ycsbc" | "ycsb_c" => "ycsb-c",
            "f" | "ycsbf" | "ycsb_f" => "ycsb-f",
            other => other,
        };
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == alias)
            .ok_or_else(|| format!("unknown workload {s:?}").into())
    }

    pub(crate) fn is_fill(self) -> bool {
        matches!(
            self,
            Workload::FillSeq
                | Workload::FillRandom
                | Workload::Fill4k
                | Workload::FillSync
                | Workload::FillSync8
        )
    }

    /// Workloads that run on the database loaded by fillrandom.
    pub(crate) fn needs_main_db(self) -> bool {
        matches!(
            self,
            Workload::FillRandom
                | Workload::Overwrite
                | Workload::ReadRandom
                | Workload::ReadMissing
                | Workload::ReadSeq
                | Workload::SeekRandom
                | Workload::YcsbA
                | Workload::YcsbB
                | Workload::YcsbC
                | Workload::YcsbF
        )
    }
}

/// The workloads that run, in order, on the database fill4k loads.
pub(crate) const PHASE_4K: [Workload; 2] = [Workload::Read4k, Workload::Seek4k];

/// The workloads that run, in order, on the database fillrandom loads.
pub(crate) const MAIN_PHASE: [Workload; 9] = [
    Workload::Overwrite,
    Workload::ReadRandom,
    Workload::ReadMissing,
    Workload::ReadSeq,
    Workload::SeekRandom,
    Workload::YcsbA,
    Workload::YcsbB,
    Workload::YcsbC,
    Workload::YcsbF,
];

// ------------------------------------------------------------------------------------------
// Keys, values, key distributions
// ------------------------------------------------------------------------------------------

/// Writes key `i` into `buf`: `i` as zero-padded decimal over `key_size - 1` bytes, then a suffix
/// byte, `k` for keys that are loaded and `m` for keys that never are. A missing key therefore
/// sorts between two present ones, inside the key range, as readmissing wants.
pub(crate) fn make_key(buf: &mut Vec<u8>, key_size: usize, i: u64, missing: bool) {
    buf.clear();
    buf.resize(key_size, b'0');
    buf[key_size - 1] = if missing { b'm' } else { b'k' };
    let mut pos = key_size - 1;
    let mut x = i;
    while x > 0 {
        pos -= 1;
        buf[pos] = b'0' + (x % 10) as u8;
        x /= 10;
    }
}

/// Value bytes compressible to about half, as `db_bench`'s default (`--compression_ratio 0.5`):
/// pieces of 100 bytes whose first half is random printable bytes and whose second half repeats
/// it. Values are successive slices of a 1 MiB buffer of such pieces.
pub(crate) struct ValueSource {
    pub(crate) data: Arc<Vec<u8>>,
}

impl ValueSource {
    pub(crate) const LEN: usize = 1 << 20;

    pub(crate) fn new(seed: u64) -> ValueSource {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_da7a);
        let mut data = Vec::with_capacity(Self::LEN + VALUE_4K);
        while data.len() < Self::LEN + VALUE_4K {
            let half: Vec<u8> = (0..50).map(|_| b' ' + rng.gen_range(0..95u8)).collect();
            data.extend_from_slice(&half);
            data.extend_from_slice(&half);
        }
        ValueSource { data: Arc::new(data) }
    }

    pub(crate) fn cursor(&self, start: usize) -> ValueCursor {
        ValueCursor { data: Arc::clone(&self.data), pos: start % Self::LEN }
    }
}

pub(crate) struct ValueCursor {
    pub(crate) data: Arc<Vec<u8>>,
    pub(crate) pos: usize,
}

impl ValueCursor {
    pub(crate) fn next(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        let start = self.pos;
        self.pos += len;
        &self.data[start..start + len]
    }
}

/// YCSB's scrambled zipfian generator (constant 0.99): a zipfian rank hashed (FNV-1a) over the
/// key space, so hot keys are spread out rather than clustered at the start.
#[derive(Clone)]
pub(crate) struct Zipfian {
    pub(crate) items: u64,
    pub(crate) theta: f64,
    pub(crate) zeta_n: f64,
    pub(crate) alpha: f64,
    pub(crate) eta: f64,
}

impl Zipfian {
    pub(crate) const THETA: f64 = 0.99;

    pub(crate) fn new(items: u64) -> Zipfian {
        let theta = Self::THETA;
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(items);
        let zeta2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zeta_n);
        Zipfian { items, theta, zeta_n, alpha, eta }
    }

    pub(crate) fn next(&self, rng: &mut StdRng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zeta_n;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            ((self.items as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64
        };
        fnv1a64(rank.min(self.items - 1)) % self.items
    }
}

pub(crate) fn fnv1a64(x: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::make_key;

    #[test]
    fn keys_are_fixed_width_and_missing_keys_sort_between_present_ones() {
        let key = |i, missing| {
            let mut buf = Vec::new();
            make_key(&mut buf, 16, i, missing);
            buf
        };
        assert_eq!(key(42, false), b"000000000000042k");
        assert_eq!(key(0, true), b"000000000000000m");
        assert!(key(7, false) < key(7, true) && key(7, true) < key(8, false));
        assert!(key(9, false) < key(10, false));
    }
}
