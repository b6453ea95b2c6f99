//! Background work: flushing frozen memtables and leveled compaction.

use std::sync::Arc;

use super::version::{TableFile, Version};
use super::Inner;
use crate::error::{Error, Result};
use crate::io::names;
use crate::iter::InternalIterator;
use crate::key::ValueKind;
use crate::manifest::{FileMeta, NUM_LEVELS};
use crate::memtable::{MemIter, MemTable};
use crate::sstable::{Table, TableBuilder};

/// Writes the newest version of each key of `source` (already positioned) into tables numbered
/// by `alloc`, splitting at `target_size`; `keep` decides per entry whether it is written
/// (tombstones at the bottom are dropped).
fn write_tables(
    inner: &Inner,
    source: &mut dyn InternalIterator,
    target_size: u64,
    mut alloc: impl FnMut() -> u64,
    mut drop_tombstone: impl FnMut(&[u8]) -> bool,
    abort: &dyn Fn() -> bool,
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
        let path = names::table(&inner.dir, number);
        let table =
            Table::open(inner.fs.as_ref(), &path, number, inner.keys(), inner.cache.clone())?;
        let meta = FileMeta {
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
                let n = alloc();
                let path = names::table(&inner.dir, n);
                builder = Some((
                    n,
                    TableBuilder::create(
                        inner.fs.as_ref(),
                        &path,
                        n,
                        inner.keys(),
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

/// Writes a memtable to one L0 table.
pub(crate) fn build_l0(inner: &Inner, mem: &Arc<MemTable>, number: u64) -> Result<Arc<TableFile>> {
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
            number
        },
        |_| false,
        &|| false,
    )?;
    files.pop().ok_or_else(|| Error::InvalidArgument("flush of an empty memtable".into()))
}

/// Flushes the oldest frozen memtable; returns whether there was one.
pub(crate) fn flush_one(inner: &Inner) -> Result<bool> {
    let _g = inner.flush_lock.lock();
    let (imm, number) = {
        let mut st = inner.state.lock();
        let Some(imm) = st.imms.front().cloned() else { return Ok(false) };
        (imm, st.alloc_file_number())
    };
    let file = if imm.is_empty() { None } else { Some(build_l0(inner, &imm, number)?) };
    let mut st = inner.state.lock();
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
            || inner.state.lock().alloc_file_number(),
            |uk| {
                deeper.iter().all(|lvl| {
                    lvl.iter().all(|f| uk < f.meta.smallest_user() || uk > f.meta.largest_user())
                })
            },
            &|| inner.state.lock().shutting_down,
        )?
    };
    let mut st = inner.state.lock();
    let mut v = (*st.version).clone();
    let gone: std::collections::HashSet<u64> = c.inputs.iter().map(|f| f.meta.number).collect();
    for level in &mut v.levels {
        level.retain(|f| !gone.contains(&f.meta.number));
    }
    v.levels[c.output_level].extend(outputs.iter().cloned());
    v.normalize();
    let old = std::mem::replace(&mut st.version, Arc::new(v));
    if let Err(e) = inner.write_manifest(&mut st) {
        st.version = old;
        for f in &outputs {
            if !c.trivial_move {
                f.mark_obsolete();
            }
        }
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
