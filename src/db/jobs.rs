//! Flush and compaction execution: writing tables from an iterator, building an L0 table from
//! a memtable, flushing the oldest frozen memtable, running a picked compaction.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::compaction::{self, Compaction};
use super::version::TableFile;
use super::Inner;
use crate::error::{Error, Result};
use crate::io::names;
use crate::iter::InternalIterator;
use crate::key::ValueKind;
use crate::manifest::FileMeta;
use crate::memtable::{MemIter, MemTable};
use crate::sstable::{Table, TableBuilder};
use crate::vlog::{Pointer, VlogSet};

/// Bytes of value-log entries that became garbage, per segment.
pub(crate) type Discards = HashMap<u64, u64>;

/// Writes the newest version of each key of `source` (already positioned) into tables numbered
/// by `alloc`, splitting at `target_size`; `drop_tombstone` says whether a tombstone can go
/// (nothing older is below it). Shadowed value-log pointers are counted in `discards`.
fn write_tables(
    inner: &Inner,
    source: &mut dyn InternalIterator,
    target_size: u64,
    mut alloc: impl FnMut() -> u64,
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
                let n = alloc();
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
            number
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
        (imm, st.alloc_file_number())
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

/// Runs `c` and installs its result.
pub(super) fn run(inner: &Inner, c: &Compaction) -> Result<()> {
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
        write_tables(
            inner,
            &mut merged,
            inner.tuning.target_file_size,
            || inner.state.lock().alloc_file_number(),
            |uk| compaction::may_drop_tombstone(&base, c.output_level, uk),
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

/// Compacts every table into one level (the deepest in use, at least 1).
pub(crate) fn compact_all(inner: &Inner) -> Result<()> {
    let _g = inner.compaction_lock.lock();
    let v = inner.state.lock().version.clone();
    let Some(c) = compaction::pick_all(&v) else { return Ok(()) };
    run(inner, &c)?;
    if let Some(e) = &inner.state.lock().bg_error {
        return Err(Error::Poisoned(e.clone()));
    }
    Ok(())
}
