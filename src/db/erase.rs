//! Erasure: making values that were deleted or overwritten physically gone from the directory,
//! at once ([`DB::erase_now`](crate::DB::erase_now)) or within a bound
//! ([`Options::erase_within`](crate::Options::erase_within)).
//!
//! A delete or an overwrite only hides the old version; it stays in the WAL until its memtable
//! is flushed, in a table until a compaction merges that table with the one standing over it,
//! and in a value-log segment until GC rewrites the segment's live entries. Erasure drives
//! each of the three, by age:
//!
//! - **Memtable and WAL.** A memtable records when its first entry was written
//!   ([`MemTable::first_write`](crate::memtable::MemTable::first_write)); flushing it keeps
//!   only the newest version of each key, and the WAL holding every version is deleted.
//! - **Tables.** Every table records the time of the oldest write it holds (a lower bound,
//!   inherited by compaction outputs from their inputs) and its tombstone count (manifest,
//!   `docs/format.md`). A version of a key is shadowed only by a newer version in a table
//!   above it (or a newer L0 table), which holds a write at least as old as its oldest write.
//!   [`compaction::pick_erase`] picks, from L0 down, a table older than the cutoff that may
//!   shadow something (another table overlaps it in L0 or below) or holds tombstones, and
//!   takes it one level down with what it overlaps there; repeated until nothing is picked,
//!   no version written before the cutoff is shadowed by another table and no such tombstone
//!   is left. Every version a merge drops that points into the value log is counted as that
//!   segment's garbage.
//! - **Value log.** Segments with counted garbage are collected (the active one is closed
//!   first): live entries are rewritten through the write path, the segment leaves the
//!   manifest and is deleted.
//!
//! Background ([`Options::erase_within`] = *B*): the maintenance thread flushes a memtable whose
//! first write is older than *B*/4 and collects a segment first seen with garbage more than
//! *B*/8 ago; the compaction thread, when no ordinary compaction is due, runs
//! [`compaction::pick_erase`] with the cutoff *now − B/2* at full speed, then with *now − B/4*
//! paced at [`Options::erase_rate`](crate::Options::erase_rate). Both look at least every *B*/8.
//! Work done is logged to the audit log (encrypted databases) at most once a minute (or once
//! per *B*, when longer); `erase_now` logs one line per call.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::compaction::{self, Compaction};
use super::version::Version;
use super::{gc, jobs, Inner};
use crate::error::{Error, Result};
use crate::io::names::{self, FileName};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Work done toward erasure (for the audit log).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Work {
    memtables: u64,
    tables: u64,
    table_bytes: u64,
    segments: u64,
    segment_bytes: u64,
}

impl Work {
    fn is_empty(&self) -> bool {
        *self == Work::default()
    }

    fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("memtables_flushed", self.memtables),
            ("tables_rewritten", self.tables),
            ("table_bytes_rewritten", self.table_bytes),
            ("segments_collected", self.segments),
            ("segment_bytes_read", self.segment_bytes),
        ]
    }

    /// Counts a finished compaction (a move rewrites nothing).
    fn add_compaction(&mut self, c: &Compaction) {
        if !c.trivial_move {
            self.tables += c.inputs.len() as u64;
            self.table_bytes += c.inputs.iter().map(|f| f.meta.size).sum::<u64>();
        }
    }
}

/// The background erasure's bookkeeping, under its own lock (taken innermost).
#[derive(Default)]
pub(crate) struct Tracker {
    state: Mutex<TrackerState>,
}

#[derive(Default)]
struct TrackerState {
    /// When each segment was first seen holding garbage (ms since the epoch; 0 for those seen
    /// at the first look after open, whose garbage may be older).
    garbage_since: HashMap<u64, u64>,
    looked: bool,
    /// Work since the last audit line.
    pending: Work,
    last_audit: Option<Instant>,
    /// Earliest moment the next paced erasure compaction may start.
    next_paced: Option<Instant>,
}

/// How often the workers look, with a bound set (at most a second, at least 10 ms).
pub(crate) fn tick(inner: &Inner) -> Option<Duration> {
    let b = inner.tuning.erase_within?;
    Some((b / 8).clamp(Duration::from_millis(10), Duration::from_secs(1)))
}

/// For the compaction thread, when no ordinary compaction is due: the erasure compaction to
/// run next, if any (see the module documentation for the cutoffs and the pace).
pub(super) fn pick_due(inner: &Inner, v: &Version) -> Option<Compaction> {
    let b = millis(inner.tuning.erase_within?);
    let now = now_ms();
    if let Some(c) = compaction::pick_erase(v, now.saturating_sub(b / 2)) {
        return Some(c);
    }
    if inner.erase.state.lock().next_paced.is_some_and(|t| Instant::now() < t) {
        return None;
    }
    compaction::pick_erase(v, now.saturating_sub(b / 4))
}

/// For the compaction thread: `c`, picked by [`pick_due`], finished; the next paced one waits
/// until its bytes at `erase_rate` have passed.
pub(super) fn ran(inner: &Inner, c: &Compaction) {
    let mut w = Work::default();
    w.add_compaction(c);
    let rate = inner.tuning.erase_rate.max(1);
    let mut t = inner.erase.state.lock();
    t.pending.tables += w.tables;
    t.pending.table_bytes += w.table_bytes;
    t.next_paced =
        Some(Instant::now() + Duration::from_secs_f64(w.table_bytes as f64 / rate as f64));
}

/// Paces bytes read to a rate (none: full speed).
struct Pace {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Pace {
    fn tick(&mut self, n: u64) {
        self.bytes += n;
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(self.start.elapsed()) {
                std::thread::sleep(wait.min(Duration::from_secs(1)));
            }
        }
    }
}

/// For the maintenance thread, with a bound set: flushes the memtable if its first write is
/// older than a quarter of the bound; collects the segments first seen with garbage more than
/// an eighth of the bound ago (paced, unless half the bound has passed); logs the work done.
pub(super) fn maintain(inner: &Inner) -> Result<()> {
    let Some(bound) = inner.tuning.erase_within else { return Ok(()) };
    let b = millis(bound);
    let now = now_ms();
    let first = inner.state.lock().mem.first_write();
    if first != 0 && first < now.saturating_sub(b / 4) {
        inner.flush()?;
        inner.erase.state.lock().pending.memtables += 1;
    }
    {
        let _g = inner.gc_lock.lock();
        let (dirty, active): (Vec<(u64, u64)>, u64) = {
            let st = inner.state.lock();
            let dirty = st
                .vlog
                .segments
                .values()
                .map(|s| (s.number, s.discard.load(std::sync::atomic::Ordering::Relaxed)))
                .filter(|&(_, d)| d > 0)
                .collect();
            (dirty, st.active_segment)
        };
        let (due, urgent) = {
            let mut t = inner.erase.state.lock();
            let first_look = !t.looked;
            t.looked = true;
            let numbers: HashSet<u64> = dirty.iter().map(|&(n, _)| n).collect();
            t.garbage_since.retain(|n, _| numbers.contains(n));
            for &(n, _) in &dirty {
                t.garbage_since.entry(n).or_insert(if first_look { 0 } else { now });
            }
            let due: HashSet<u64> = t
                .garbage_since
                .iter()
                .filter(|&(_, &since)| since < now.saturating_sub(b / 8))
                .map(|(&n, _)| n)
                .collect();
            let urgent = t.garbage_since.values().any(|&s| s < now.saturating_sub(b / 2));
            (due, urgent)
        };
        if due.contains(&active) {
            inner.seal_active_segment()?;
        }
        let mut pace = Pace {
            rate: (!urgent).then_some(inner.tuning.erase_rate.max(1)),
            start: Instant::now(),
            bytes: 0,
        };
        for seg in gc::gc_candidates(inner, 0.0) {
            if !due.contains(&seg.number) {
                continue;
            }
            let before = pace.bytes;
            gc::gc_segment_paced(inner, &seg, &mut |n| pace.tick(n))?;
            let mut t = inner.erase.state.lock();
            t.pending.segments += 1;
            t.pending.segment_bytes += pace.bytes - before;
        }
    }
    let every = bound.max(Duration::from_secs(60));
    let work = {
        let mut t = inner.erase.state.lock();
        if t.pending.is_empty() || t.last_audit.is_some_and(|l| l.elapsed() < every) {
            return Ok(());
        }
        t.last_audit = Some(Instant::now());
        std::mem::take(&mut t.pending)
    };
    let mut fields = vec![("bound_ms", b)];
    fields.extend(work.fields());
    record(inner, "erase_within", &fields)
}

/// Appends an erasure event to the audit log (encrypted databases) and writes a manifest that
/// anchors it; always traced.
fn record(inner: &Inner, event: &str, fields: &[(&str, u64)]) -> Result<()> {
    tracing::info!(event, ?fields, "sealdb: erasure");
    let Some(ka) = &inner.keys else { return Ok(()) };
    ka.audit(event, fields);
    inner.write_manifest(&mut inner.state.lock())
}

/// Runs [`compaction::pick_erase`] with `cutoff` until it picks nothing.
fn erase_tables(inner: &Inner, cutoff: u64, w: &mut Work) -> Result<()> {
    let _g = inner.compaction_lock.lock();
    loop {
        let picked = {
            let v = inner.state.lock().version.clone();
            compaction::pick_erase(&v, cutoff)
        };
        let Some(c) = picked else { return Ok(()) };
        jobs::run(inner, &c)?;
        w.add_compaction(&c);
        if let Some(e) = &inner.state.lock().bg_error {
            return Err(Error::Poisoned(e.clone()));
        }
    }
}

/// Collects every segment holding counted garbage, the active one included (closed first);
/// returns whether any was collected.
fn collect_segments(inner: &Inner, w: &mut Work) -> Result<bool> {
    let _g = inner.gc_lock.lock();
    let active_dirty = {
        let st = inner.state.lock();
        st.vlog
            .segments
            .get(&st.active_segment)
            .is_some_and(|s| s.discard.load(std::sync::atomic::Ordering::Relaxed) > 0)
    };
    if active_dirty {
        inner.seal_active_segment()?;
    }
    let segments = gc::gc_candidates(inner, 0.0);
    for seg in &segments {
        let mut read = 0;
        gc::gc_segment_paced(inner, seg, &mut |n| read += n)?;
        w.segments += 1;
        w.segment_bytes += read;
    }
    Ok(!segments.is_empty())
}

/// Tables, segments and WALs in the directory that the database no longer needs: replaced
/// files an open snapshot, iterator or transaction still holds. Looked at with the cold tier's
/// pass lock and the GC, WAL, compaction and flush locks held (so no new file is
/// half-installed and no background pass holds a replaced file), a few times over a second
/// (a background thread may still hold one for a moment).
fn leftovers(inner: &Inner) -> Result<u64> {
    let mut left = 0;
    for attempt in 0..20 {
        left = {
            let _op = inner.tier.as_ref().map(|t| t.op_lock.lock());
            let _g = inner.gc_lock.lock();
            let _w = inner.wal.lock();
            let _c = inner.compaction_lock.lock();
            let _f = inner.flush_lock.lock();
            let live: HashSet<String> = inner.live_file_names().into_iter().collect();
            inner
                .fs
                .list(&inner.dir)?
                .into_iter()
                .filter(|n| {
                    matches!(
                        names::parse(n),
                        Some(FileName::Wal(_) | FileName::Table(_) | FileName::ValueLog(_))
                    ) && !live.contains(n)
                })
                .count() as u64
        };
        if left == 0 || attempt == 19 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(left)
}

/// [`DB::erase_now`](crate::DB::erase_now): flush, erase tables, collect segments, fold the
/// GC rewrites away, delete cold objects, check that no replaced file is left, log the event.
pub(crate) fn erase_now(inner: &Inner) -> Result<()> {
    inner.refuse_read_only()?;
    // Every write made before the call has a time at most now.
    let cutoff = now_ms() + 1;
    let mut w = Work { memtables: 1, ..Work::default() };
    inner.flush()?;
    erase_tables(inner, cutoff, &mut w)?;
    if collect_segments(inner, &mut w)? {
        // The rewrites stand over older tree entries pointing into the collected segments:
        // those hold no value any more, but fold them away too.
        inner.flush()?;
        erase_tables(inner, now_ms() + 1, &mut w)?;
    }
    // No background thread keeps a view of a replaced version (see `DB::compact_range`).
    drop(inner.gc_lock.lock());
    if let Some(t) = &inner.tier {
        t.drain_deletes()?;
    }
    let left = leftovers(inner)?;
    if left > 0 {
        return Err(Error::ErasureBlocked { files: left });
    }
    let mut fields = vec![("cutoff_ms", cutoff - 1)];
    fields.extend(w.fields());
    record(inner, "erase_now", &fields)
}
