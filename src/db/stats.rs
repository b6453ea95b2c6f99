//! Figures about a running database: [`Stats`] (`DB::stats`), `DB::approximate_size`, and the
//! counters the engine bumps for them.

use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::compaction::KeyRange;
use super::DB;
use crate::error::Result;
use crate::manifest::NUM_LEVELS;

/// Figures about a database at one moment, from [`DB::stats`]. New fields may be added.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Tables per level; index = level (always every level, L0 to L6).
    pub levels: Vec<LevelStats>,
    /// Bytes in the memtables (the mutable one and the frozen ones), as they count toward
    /// `memtable_size` (64 bytes per entry included).
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for flush (background work in progress or pending).
    pub frozen_memtables: u64,
    /// Whether a compaction (background or manual) is running at this moment.
    pub compaction_running: bool,
    /// Lookups of opened SSTable blocks and value-log values that the block cache answered.
    pub cache_hits: u64,
    /// Lookups the block cache could not answer (every lookup when the cache is off).
    pub cache_misses: u64,
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

impl DB {
    /// Approximate bytes on disk of the data in `range`: the whole size of every live table
    /// whose key range meets it (a table only partly inside counts whole). Not counted: the
    /// memtables, and the value-log bytes the tables' pointers reach (not known per table
    /// without reading it; [`Stats::vlog_segments`] gives the value log's bytes).
    pub fn approximate_size<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<u64> {
        let r = super::keyspace::key_range_in(super::keyspace::DEFAULT_PREFIX, to_range(&range));
        let version = self.inner.state.lock().version.clone();
        Ok(version
            .all_files()
            .filter(|(_, f)| r.meets(f.meta.smallest_user(), f.meta.largest_user()))
            .map(|(_, f)| f.meta.size)
            .sum())
    }

    /// Figures about the database now: tables per level, memtables, block-cache hits and
    /// misses, write stalls, value-log segments and their garbage, work in progress.
    pub fn stats(&self) -> Stats {
        let inner = &self.inner;
        let (version, memtable_bytes, frozen, vlog) = {
            let st = inner.state.lock();
            let mem = st.mem.approximate_size()
                + st.imms.iter().map(|m| m.approximate_size()).sum::<usize>();
            (st.version.clone(), mem as u64, st.imms.len() as u64, st.vlog.clone())
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
        let (cache_hits, cache_misses) = inner.cache.counts();
        let c = &inner.counters;
        Stats {
            levels,
            memtable_bytes,
            frozen_memtables: frozen,
            compaction_running: inner.compaction_lock.is_locked(),
            cache_hits,
            cache_misses,
            write_stalls: c.write_stalls.load(Ordering::Relaxed),
            write_stall_time: Duration::from_nanos(c.write_stall_nanos.load(Ordering::Relaxed)),
            vlog_segments,
        }
    }
}
