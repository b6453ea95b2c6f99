//! Background work: flushing frozen memtables and leveled compaction.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::version::{TableFile, Version};
use super::Inner;
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::io::names;
use crate::iter::InternalIterator;
use crate::key::ValueKind;
use crate::manifest::{FileMeta, NUM_LEVELS};
use crate::memtable::{MemIter, MemTable};
use crate::sstable::{Table, TableBuilder};
use crate::vlog::{Pointer, Segment, VlogSet};

/// Bytes of value-log entries that became garbage, per segment.
pub(crate) type Discards = HashMap<u64, u64>;

/// Writes the newest version of each key of `source` (already positioned) into tables numbered
/// by `alloc`, splitting at `target_size`; `drop_tombstone` says whether a tombstone can go
/// (nothing older is below it). Shadowed value-log pointers are counted in `discards`.
fn write_tables(
    inner: &Inner,
    source: &mut dyn InternalIterator,
    target_size: u64,
    mut alloc: impl FnMut() -> Result<u64>,
    mut drop_tombstone: impl FnMut(&[u8]) -> bool,
    abort: &dyn Fn() -> bool,
    discards: &mut Discards,
) -> Result<Vec<Arc<TableFile>>> {
    let mut out = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut last_key: Option<Vec<u8>> = None;
    let finish = |inner: &Inner,
                  number: u64,
                  b: TableBuilder,
                  out: &mut Vec<Arc<TableFile>>|
     -> Result<()> {
        let info = b.finish()?;
        inner.count_sealed(info.size);
        let path = names::table(&inner.dir, number);
        let table = Table::open(
            inner.fs.as_ref(),
            &path,
            number,
            inner.keys().as_deref(),
            inner.cache.clone(),
        )?;
        let meta = FileMeta {
            max_seq: info.max_seq,
            number,
            size: info.size,
            key_id: info.key_id,
            smallest: info.smallest,
            largest: info.largest,
        };
        out.push(Arc::new(TableFile::new(meta, Arc::new(table), inner.fs.clone(), path)));
        Ok(())
    };
    let result = (|| -> Result<()> {
        while source.valid() {
            if abort() {
                return Err(Error::Closed);
            }
            let uk = source.user_key();
            if last_key.as_deref() == Some(uk) {
                if source.kind() == ValueKind::Pointer {
                    if let Some(p) = Pointer::decode(source.value()) {
                        *discards.entry(p.segment).or_default() += u64::from(p.len);
                    }
                }
                source.next()?;
                continue;
            }
            last_key = Some(uk.to_vec());
            if source.kind() == ValueKind::Delete && drop_tombstone(uk) {
                source.next()?;
                continue;
            }
            if builder.as_ref().is_some_and(|(_, b)| b.file_size() >= target_size) {
                if let Some((n, b)) = builder.take() {
                    finish(inner, n, b, &mut out)?;
                }
            }
            if builder.is_none() {
                let n = alloc()?;
                let path = names::table(&inner.dir, n);
                builder = Some((
                    n,
                    TableBuilder::create(
                        inner.fs.as_ref(),
                        &path,
                        n,
                        inner.keys().as_deref(),
                        inner.tuning.build,
                    )?,
                ));
            }
            if let Some((_, b)) = &mut builder {
                b.add(uk, source.seq(), source.kind(), source.value())?;
            }
            source.next()?;
        }
        if let Some((n, b)) = builder.take() {
            finish(inner, n, b, &mut out)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Remove partial outputs; nothing refers to them.
        for f in &out {
            f.mark_obsolete();
        }
        if let Some((n, _)) = builder {
            let _ = inner.fs.remove(&names::table(&inner.dir, n));
        }
        return Err(e);
    }
    Ok(out)
}

/// Adds counted garbage to the live segments (segments already gone are skipped).
pub(crate) fn apply_discards(vlog: &VlogSet, discards: &Discards) {
    for (n, d) in discards {
        if let Some(s) = vlog.segments.get(n) {
            s.discard.fetch_add(*d, Ordering::Relaxed);
        }
    }
}

/// Writes a memtable to one L0 table.
pub(crate) fn build_l0(
    inner: &Inner,
    mem: &Arc<MemTable>,
    number: u64,
    discards: &mut Discards,
) -> Result<Arc<TableFile>> {
    let mut it = MemIter::new(mem.clone());
    it.seek_to_first()?;
    let mut used = false;
    let mut files = write_tables(
        inner,
        &mut it,
        u64::MAX,
        || {
            debug_assert!(!used);
            used = true;
            Ok(number)
        },
        |_| false,
        &|| false,
        discards,
    )?;
    files.pop().ok_or_else(|| Error::InvalidArgument("flush of an empty memtable".into()))
}

/// Flushes the oldest frozen memtable; returns whether there was one.
pub(crate) fn flush_one(inner: &Inner) -> Result<bool> {
    let _g = inner.flush_lock.lock();
    let (imm, number) = {
        let mut st = inner.state.lock();
        let Some(imm) = st.imms.front().cloned() else { return Ok(false) };
        (imm, inner.alloc_file_number(&mut st)?)
    };
    let mut discards = Discards::new();
    let file =
        if imm.is_empty() { None } else { Some(build_l0(inner, &imm, number, &mut discards)?) };
    let mut st = inner.state.lock();
    apply_discards(&st.vlog, &discards);
    let mut v = (*st.version).clone();
    if let Some(f) = file {
        v.levels[0].push(f);
    }
    v.normalize();
    let old_version = std::mem::replace(&mut st.version, Arc::new(v));
    st.imms.pop_front();
    if let Err(e) = inner.write_manifest(&mut st) {
        // Keep the memtable; its WAL still holds its writes.
        st.version = old_version;
        st.imms.push_front(imm);
        return Err(e);
    }
    inner.install_sv(&st);
    inner.bg_cv.notify_all();
    drop(st);
    let _ = inner.fs.remove(&names::wal(&inner.dir, imm.wal_number));
    Ok(true)
}

pub(crate) fn flush_worker(inner: &Inner) {
    loop {
        {
            let mut st = inner.state.lock();
            while st.imms.is_empty() && !st.shutting_down {
                inner.bg_cv.wait(&mut st);
            }
            if st.shutting_down {
                return;
            }
            if st.bg_error.is_some() {
                inner.bg_cv.wait(&mut st);
                continue;
            }
        }
        if let Err(e) = flush_one(inner) {
            fail(inner, "flush failed", &e);
        }
    }
}

fn fail(inner: &Inner, what: &str, e: &Error) {
    if matches!(e, Error::Closed) {
        return;
    }
    tracing::error!(error = %e, "sealdb: {what}");
    let mut st = inner.state.lock();
    if st.bg_error.is_none() {
        st.bg_error = Some(format!("{what}: {e}"));
    }
    inner.bg_cv.notify_all();
}

/// A chosen compaction.
struct Compaction {
    inputs: Vec<Arc<TableFile>>,
    output_level: usize,
    /// Move the single input down without rewriting it.
    trivial_move: bool,
}

fn max_bytes_for_level(inner: &Inner, level: usize) -> u64 {
    let mut b = inner.tuning.level_base_size;
    for _ in 1..level {
        b = b.saturating_mul(inner.tuning.level_size_multiplier);
    }
    b
}

fn key_range(files: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
    let lo = files.iter().map(|f| f.meta.smallest_user()).min().unwrap_or_default().to_vec();
    let hi = files.iter().map(|f| f.meta.largest_user()).max().unwrap_or_default().to_vec();
    (lo, hi)
}

fn pick(inner: &Inner, v: &Version, pointers: &mut [Vec<u8>]) -> Option<Compaction> {
    let t = &inner.tuning;
    let mut best = (0.0f64, 0usize);
    let l0_score = v.levels[0].len() as f64 / t.l0_compaction_trigger as f64;
    if l0_score >= 1.0 {
        best = (l0_score, 0);
    }
    for level in 1..NUM_LEVELS - 1 {
        let score = v.level_size(level) as f64 / max_bytes_for_level(inner, level) as f64;
        if score >= 1.0 && score > best.0 {
            best = (score, level);
        }
    }
    if best.0 < 1.0 {
        return None;
    }
    let level = best.1;
    let inputs: Vec<Arc<TableFile>> = if level == 0 {
        v.levels[0].clone()
    } else {
        let files = &v.levels[level];
        let ptr = &pointers[level];
        let f = files.iter().find(|f| f.meta.smallest_user() > ptr.as_slice()).or(files.first())?;
        pointers[level] = f.meta.largest_user().to_vec();
        vec![f.clone()]
    };
    let (lo, hi) = key_range(&inputs);
    let next = v.overlapping(level + 1, &lo, &hi);
    let trivial_move = next.is_empty() && inputs.len() == 1;
    let mut all = inputs;
    all.extend(next);
    Some(Compaction { inputs: all, output_level: level + 1, trivial_move })
}

/// Runs `c` and installs its result.
fn run(inner: &Inner, c: &Compaction) -> Result<()> {
    let mut discards = Discards::new();
    let outputs = if c.trivial_move {
        c.inputs.clone()
    } else {
        let base = inner.state.lock().version.clone();
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        for f in &c.inputs {
            children.push(Box::new(f.table.iter()));
        }
        let mut merged = crate::iter::MergingIter::new(children);
        merged.seek_to_first()?;
        let deeper = &base.levels[c.output_level + 1..];
        write_tables(
            inner,
            &mut merged,
            inner.tuning.target_file_size,
            || inner.alloc_file_number(&mut inner.state.lock()),
            |uk| {
                deeper.iter().all(|lvl| {
                    lvl.iter().all(|f| uk < f.meta.smallest_user() || uk > f.meta.largest_user())
                })
            },
            &|| inner.state.lock().shutting_down,
            &mut discards,
        )?
    };
    let mut st = inner.state.lock();
    apply_discards(&st.vlog, &discards);
    let mut v = (*st.version).clone();
    let gone: std::collections::HashSet<u64> = c.inputs.iter().map(|f| f.meta.number).collect();
    for level in &mut v.levels {
        level.retain(|f| !gone.contains(&f.meta.number));
    }
    v.levels[c.output_level].extend(outputs.iter().cloned());
    v.normalize();
    let old = std::mem::replace(&mut st.version, Arc::new(v));
    if let Err(e) = inner.write_manifest(&mut st) {
        // The new manifest may be on disk: keep the outputs (an orphan set is removed at open).
        st.version = old;
        return Err(e);
    }
    if !c.trivial_move {
        for f in &c.inputs {
            f.mark_obsolete();
        }
    }
    inner.install_sv(&st);
    inner.bg_cv.notify_all();
    Ok(())
}

pub(crate) fn compaction_worker(inner: &Inner) {
    loop {
        let guard = inner.compaction_lock.lock();
        let mut st = inner.state.lock();
        if st.shutting_down {
            return;
        }
        let v = st.version.clone();
        let picked =
            if st.bg_error.is_none() { pick(inner, &v, &mut st.compact_pointer) } else { None };
        let Some(c) = picked else {
            drop(guard);
            inner.bg_cv.wait(&mut st);
            continue;
        };
        drop(st);
        if let Err(e) = run(inner, &c) {
            fail(inner, "compaction failed", &e);
        }
        drop(guard);
    }
}

/// Compacts every table into one level (the deepest in use, at least 1).
pub(crate) fn compact_all(inner: &Inner) -> Result<()> {
    let _g = inner.compaction_lock.lock();
    let v = inner.state.lock().version.clone();
    let inputs: Vec<Arc<TableFile>> = v.all_files().map(|(_, f)| f.clone()).collect();
    if inputs.is_empty() {
        return Ok(());
    }
    let deepest = (1..NUM_LEVELS).rev().find(|&l| !v.levels[l].is_empty()).unwrap_or(1);
    let c = Compaction { inputs, output_level: deepest, trivial_move: false };
    run(inner, &c)?;
    if let Some(e) = &inner.state.lock().bg_error {
        return Err(Error::Poisoned(e.clone()));
    }
    Ok(())
}

/// Rewrites the live entries of `seg` through the write path (each applied only if its key
/// still points at it), makes them durable, then drops the segment from the manifest; the file
/// is deleted once no reader holds it.
fn gc_segment(inner: &Inner, seg: &Arc<Segment>) -> Result<()> {
    const BATCH_BYTES: usize = 1 << 20;
    let mut batch = WriteBatch::new();
    let mut live = 0u64;
    seg.scan(|e| {
        let ptr = Pointer { segment: seg.number, offset: e.offset, len: e.len };
        let (_, sv) = inner.read_view();
        if super::points_at(&sv, e.key, ptr)? {
            batch.rewrite(e.key, e.value, ptr);
            live += u64::from(e.len);
        }
        if batch.bytes >= BATCH_BYTES {
            inner.write(std::mem::take(&mut batch), false)?;
        }
        if inner.state.lock().shutting_down {
            return Err(Error::Closed);
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        inner.write(batch, false)?;
    }
    // The rewrites must be durable before the segment leaves the manifest.
    inner.write(WriteBatch::new(), true)?;
    let mut st = inner.state.lock();
    let mut set = (*st.vlog).clone();
    set.segments.remove(&seg.number);
    let old = std::mem::replace(&mut st.vlog, Arc::new(set));
    if let Err(e) = inner.write_manifest(&mut st) {
        st.vlog = old;
        return Err(e);
    }
    inner.install_sv(&st);
    seg.mark_obsolete();
    tracing::debug!(segment = seg.number, live_bytes = live, "value-log segment collected");
    Ok(())
}

/// Segments other than the active one whose garbage ratio is at least `ratio` (any garbage at
/// all when `ratio` is 0), most garbage first.
fn gc_candidates(inner: &Inner, ratio: f64) -> Vec<Arc<Segment>> {
    let st = inner.state.lock();
    let mut c: Vec<(f64, Arc<Segment>)> = st
        .vlog
        .segments
        .values()
        .filter(|s| s.number != st.active_segment)
        .filter_map(|s| {
            let size = s.size.load(Ordering::Acquire).saturating_sub(s.header_len).max(1);
            let d = s.discard.load(Ordering::Relaxed);
            let r = d as f64 / size as f64;
            (d > 0 && r >= ratio).then(|| (r, s.clone()))
        })
        .collect();
    c.sort_by(|a, b| b.0.total_cmp(&a.0));
    c.into_iter().map(|(_, s)| s).collect()
}

pub(crate) fn gc_worker(inner: &Inner) {
    loop {
        {
            let mut st = inner.state.lock();
            if st.shutting_down {
                return;
            }
            inner.bg_cv.wait_for(&mut st, Duration::from_secs(1));
            if st.shutting_down {
                return;
            }
            if st.bg_error.is_some() {
                continue;
            }
        }
        {
            let _g = inner.gc_lock.lock();
            if let Some(seg) = gc_candidates(inner, inner.tuning.vlog_gc_ratio).first() {
                if let Err(e) = gc_segment(inner, seg) {
                    fail(inner, "value-log GC failed", &e);
                }
            }
        }
        if let Err(e) = super::keys::maintain(inner) {
            fail(inner, "key maintenance failed", &e);
        }
    }
}

/// Collects every segment holding garbage, after `seal_active` has made the active segment
/// collectable; returns whether any segment was collected.
pub(crate) fn gc_all(inner: &Inner, seal_active: impl FnOnce() -> Result<()>) -> Result<bool> {
    let _g = inner.gc_lock.lock();
    seal_active()?;
    let segments = gc_candidates(inner, 0.0);
    for seg in &segments {
        gc_segment(inner, seg)?;
    }
    Ok(!segments.is_empty())
}
