//! Figures about a running database: [`Stats`] (`DB::stats`), `DB::approximate_size`, and the
//! counters the engine bumps for them.

use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::compaction::KeyRange;
use super::version::Version;
use super::{Inner, DB};
use crate::error::Result;
use crate::manifest::NUM_LEVELS;

/// Figures about a database at one moment, from [`DB::stats`]. New fields may be added.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Tables per level; index = level (always every level, L0 to L6).
    pub levels: Vec<LevelStats>,
    /// Bytes in the memtables (the mutable one and the frozen ones), as they count toward
    /// `memtable_size`: each entry's key, value, sequence, kind and skip-list links, padded to
    /// 8 bytes, and each non-empty memtable's key filter (about 2% of `memtable_size`).
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for flush (background work in progress or pending).
    pub frozen_memtables: u64,
    /// Whether a compaction (background or manual) is running at this moment.
    pub compaction_running: bool,
    /// Whether a memtable is being flushed at this moment.
    pub flush_running: bool,
    /// Flushes completed since open (a memtable written to an L0 table).
    pub flushes: u64,
    /// Compactions completed since open (background and manual; a move of a table to the next
    /// level without rewriting it counts too).
    pub compactions: u64,
    /// Whether value-log GC is rewriting a segment at this moment.
    pub gc_running: bool,
    /// Value-log segments GC collected since open.
    pub gc_segments_collected: u64,
    /// Re-encryption's remaining work: bytes of live tables and value-log segments sealed
    /// under a retired data key or another cipher (0 when unencrypted).
    pub reencrypt_bytes_left: u64,
    /// Re-encryption's remaining work: the files of `reencrypt_bytes_left`.
    pub reencrypt_files_left: u64,
    /// Lookups of opened SSTable blocks and value-log values that the block cache answered
    /// (`block_cache_hits + value_cache_hits`).
    pub cache_hits: u64,
    /// Lookups the block cache could not answer (every lookup when the cache is off).
    pub cache_misses: u64,
    /// SSTable block lookups the cache answered.
    pub block_cache_hits: u64,
    /// SSTable block lookups it could not answer (the block was read and opened).
    pub block_cache_misses: u64,
    /// Value-log value lookups the cache answered.
    pub value_cache_hits: u64,
    /// Value-log value lookups it could not answer (the entry was read and opened).
    pub value_cache_misses: u64,
    /// Writes that had to wait (L0 slowdown or stop, or too many frozen memtables), since open.
    pub write_stalls: u64,
    /// Total time those writes waited, since open.
    pub write_stall_time: Duration,
    /// The live value-log segments, oldest first.
    pub vlog_segments: Vec<SegmentStats>,
}

/// The tables of one level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LevelStats {
    /// Tables in the level.
    pub files: u64,
    /// Their bytes on disk.
    pub bytes: u64,
}

/// One live value-log segment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentStats {
    /// The segment's file number (`NNNNNN.vlog`).
    pub number: u64,
    /// Bytes of whole entries in it, header included.
    pub bytes: u64,
    /// Bytes of entries known to be garbage (overwritten or deleted values); GC rewrites a
    /// segment once `garbage / bytes` reaches `vlog_gc_ratio`.
    pub garbage: u64,
    /// Whether new values are being appended to it (never collected while so).
    pub active: bool,
}

/// Counters the engine bumps, under no lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    write_stalls: AtomicU64,
    write_stall_nanos: AtomicU64,
    /// Flushes completed.
    pub(crate) flushes: AtomicU64,
    /// Compactions installed.
    pub(crate) compactions: AtomicU64,
    /// Value-log segments collected.
    pub(crate) gc_segments: AtomicU64,
    /// Value-log segments being collected now.
    pub(crate) gc_running: AtomicU64,
}

/// Counts one piece of work in progress while alive.
pub(crate) struct Running<'a>(&'a AtomicU64);

impl<'a> Running<'a> {
    pub(crate) fn start(c: &'a AtomicU64) -> Running<'a> {
        c.fetch_add(1, Ordering::Relaxed);
        Running(c)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Times one write's stall: [`StallTimer::stall`] at each wait; on drop, a write that waited
/// counts once, with the time from its first wait.
pub(crate) struct StallTimer<'a> {
    counters: &'a Counters,
    since: Option<Instant>,
}

impl<'a> StallTimer<'a> {
    pub(crate) fn new(counters: &'a Counters) -> StallTimer<'a> {
        StallTimer { counters, since: None }
    }
    /// The write is about to wait.
    pub(crate) fn stall(&mut self) {
        self.since.get_or_insert_with(Instant::now);
    }
}

impl Drop for StallTimer<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.since {
            let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.counters.write_stalls.fetch_add(1, Ordering::Relaxed);
            self.counters.write_stall_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }
}

fn to_range<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> KeyRange {
    let bound = |b: Bound<&K>| match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.as_ref().to_vec()),
        Bound::Unbounded => None,
    };
    KeyRange { lo: bound(range.start_bound()), hi: bound(range.end_bound()) }
}

impl KeyRange {
    /// The range of `DB::compact_range` and `DB::approximate_size` (an excluded bound is taken
    /// as included).
    pub(crate) fn from_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> KeyRange {
        to_range(range)
    }
}

/// What the tables of a version hold of a key range.
struct TableShare {
    /// Bytes of the tables, each counted by its share in the range.
    bytes: f64,
    /// Entries of the tables, each counted by its share in the range.
    entries: f64,
    /// Entries of every table.
    all_entries: u64,
}

impl TableShare {
    fn of(version: &Version, r: &KeyRange) -> TableShare {
        let mut t = TableShare { bytes: 0.0, entries: 0.0, all_entries: 0 };
        for (_, f) in version.all_files() {
            let n = f.table.entries();
            t.all_entries += n;
            let (lo, hi) = (f.meta.smallest_user(), f.meta.largest_user());
            if !r.meets(lo, hi) {
                continue;
            }
            let whole =
                r.lo.as_deref().is_none_or(|l| l <= lo) && r.hi.as_deref().is_none_or(|h| hi <= h);
            let share =
                if whole { 1.0 } else { f.table.share_in(r.lo.as_deref(), r.hi.as_deref()) };
            t.bytes += f.meta.size as f64 * share;
            t.entries += n as f64 * share;
        }
        t
    }
}

impl DB {
    /// Approximate bytes on disk of the data in `range`: the tables' bytes and the value-log
    /// bytes their entries reach. A table wholly inside counts whole, one partly inside by the
    /// share of its data blocks that meet the range (from its index, nothing else read). The
    /// live value-log bytes (segment bytes less the known garbage) count in proportion to the
    /// range's share of the tables' entries. Not counted: the memtables.
    pub fn approximate_size<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<u64> {
        Ok(self.inner.approximate_size_in(super::keyspace::DEFAULT_PREFIX, to_range(&range)))
    }

    /// Approximate number of entries in `range`: in the memtables, counted; in the tables, as
    /// [`DB::approximate_size`] shares them (a table partly inside by the share of its data
    /// blocks meeting the range). Every version of a key and every deletion not yet compacted
    /// away counts, as in the peers' estimates, so after overwrites it exceeds the live keys
    /// until compaction folds them.
    pub fn approximate_keys<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<u64> {
        Ok(self.inner.approximate_keys_in(super::keyspace::DEFAULT_PREFIX, to_range(&range)))
    }

    /// Figures about the database now: tables per level, memtables, block-cache hits and
    /// misses, write stalls, value-log segments and their garbage, work in progress.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Publishes [`DB::stats`] through the `metrics` crate facade, to whichever recorder the
    /// application installed (cargo feature `metrics`). A database with background work also
    /// publishes about once a second from its background thread. The metric names are listed
    /// in `docs/design.md`, "Statistics and metrics".
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        super::metrics::publish(&self.inner.dir, &self.inner.stats());
    }
}

impl Inner {
    /// [`DB::approximate_size`] and `Keyspace::approximate_size`: `range` is on the user keys
    /// of the keyspace with `prefix`.
    pub(crate) fn approximate_size_in(&self, prefix: &[u8], range: KeyRange) -> u64 {
        let r = super::keyspace::key_range_in(prefix, range);
        let (version, vlog) = {
            let st = self.state.lock();
            (st.version.clone(), st.vlog.clone())
        };
        let e = TableShare::of(&version, &r);
        let live: u64 = vlog
            .segments
            .values()
            .map(|s| {
                let body = s.size.load(Ordering::Acquire).saturating_sub(s.header_len);
                body.saturating_sub(s.discard.load(Ordering::Relaxed))
            })
            .sum();
        let vlog_share =
            if e.all_entries == 0 { 0.0 } else { live as f64 * e.entries / e.all_entries as f64 };
        (e.bytes + vlog_share).round() as u64
    }

    /// [`DB::approximate_keys`] and `Keyspace::approximate_keys`: `range` is on the user keys
    /// of the keyspace with `prefix`.
    pub(crate) fn approximate_keys_in(&self, prefix: &[u8], range: KeyRange) -> u64 {
        let r = super::keyspace::key_range_in(prefix, range);
        let (version, mems) = {
            let st = self.state.lock();
            let mut mems = vec![st.mem.clone()];
            mems.extend(st.imms.iter().cloned());
            (st.version.clone(), mems)
        };
        let in_mem: u64 =
            mems.iter().map(|m| m.count_range(r.lo.as_deref(), r.hi.as_deref())).sum();
        in_mem + TableShare::of(&version, &r).entries.round() as u64
    }

    /// [`DB::stats`].
    pub(crate) fn stats(&self) -> Stats {
        let inner = self;
        let c = &inner.counters;
        // The flush and compaction counts with the version they made (both change under the
        // state lock): a snapshot never counts a flush whose table it does not show.
        let (version, memtable_bytes, frozen, vlog, flushes, compactions) = {
            let st = inner.state.lock();
            let mem = st.mem.approximate_size()
                + st.imms.iter().map(|m| m.approximate_size()).sum::<usize>();
            let flushes = c.flushes.load(Ordering::Relaxed);
            let compactions = c.compactions.load(Ordering::Relaxed);
            (
                st.version.clone(),
                mem as u64,
                st.imms.len() as u64,
                st.vlog.clone(),
                flushes,
                compactions,
            )
        };
        let levels = (0..NUM_LEVELS)
            .map(|l| LevelStats {
                files: version.levels[l].len() as u64,
                bytes: version.level_size(l),
            })
            .collect();
        drop(version);
        let vlog_segments = vlog
            .segments
            .values()
            .map(|s| SegmentStats {
                number: s.number,
                bytes: s.size.load(Ordering::Acquire),
                garbage: s.discard.load(Ordering::Relaxed),
                active: s.recorded().1,
            })
            .collect();
        let cc = inner.cache.detailed_counts();
        let (reencrypt_files_left, reencrypt_bytes_left) = self.reencrypt_left();
        Stats {
            levels,
            memtable_bytes,
            frozen_memtables: frozen,
            compaction_running: inner.compaction_lock.is_locked(),
            flush_running: inner.flush_lock.is_locked(),
            flushes,
            compactions,
            gc_running: c.gc_running.load(Ordering::Relaxed) > 0,
            gc_segments_collected: c.gc_segments.load(Ordering::Relaxed),
            reencrypt_bytes_left,
            reencrypt_files_left,
            cache_hits: cc.block_hits + cc.value_hits,
            cache_misses: cc.block_misses + cc.value_misses,
            block_cache_hits: cc.block_hits,
            block_cache_misses: cc.block_misses,
            value_cache_hits: cc.value_hits,
            value_cache_misses: cc.value_misses,
            write_stalls: c.write_stalls.load(Ordering::Relaxed),
            write_stall_time: Duration::from_nanos(c.write_stall_nanos.load(Ordering::Relaxed)),
            vlog_segments,
        }
    }
}

impl Inner {
    /// Files and bytes of live tables and value-log segments sealed under a data key other
    /// than the current one or under another cipher: what re-encryption has left to do.
    pub(super) fn reencrypt_left(&self) -> (u64, u64) {
        let Some(ring) = self.keys() else { return (0, 0) };
        let current = (ring.current().id, crate::seal::alg_id(Some(ring.cipher())));
        let (version, vlog) = {
            let st = self.state.lock();
            (st.version.clone(), st.vlog.clone())
        };
        let tables = version
            .all_files()
            .filter(|(_, f)| (f.meta.key_id, f.table.alg()) != current)
            .map(|(_, f)| f.meta.size);
        let segments = vlog
            .segments
            .values()
            .filter(|s| (s.key_id(), s.alg()) != current)
            .map(|s| s.size.load(Ordering::Acquire));
        tables.chain(segments).fold((0, 0), |(n, b), size| (n + 1, b + size))
    }
}
