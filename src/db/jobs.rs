//! Flush and compaction execution: writing tables from an iterator, building an L0 table from
//! a memtable, flushing the oldest frozen memtable, running a picked compaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::compaction::{self, Compaction};
use super::version::TableFile;
use super::{keyspace, Inner};
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
/// by `alloc`, splitting at `target_size` and at every keyspace boundary (a table holds one
/// keyspace's entries only); `drop_tombstone` says whether a tombstone can go (nothing older
/// is below it). Entries of the `dropped` keyspaces are left out. Shadowed and dropped
/// value-log pointers are counted in `discards`. `oldest_write` (milliseconds since the Unix
/// epoch, no later than the oldest write `source` holds) is recorded in every table made.
#[expect(clippy::too_many_arguments, reason = "the shared core of flush and compaction")]
fn write_tables(
    inner: &Inner,
    source: &mut dyn InternalIterator,
    target_size: u64,
    mut alloc: impl FnMut() -> Result<u64>,
    mut drop_tombstone: impl FnMut(&[u8]) -> bool,
    dropped: &BTreeSet<u32>,
    abort: &dyn Fn() -> bool,
    discards: &mut Discards,
    oldest_write: u64,
) -> Result<Vec<Arc<TableFile>>> {
    let mut out = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    // The number of the table being created or finished, until it is in `out`: whatever step
    // fails (create, a block write, the footer, the fsync, the reopen), that file goes.
    let mut pending: Option<u64> = None;
    let mut last_key: Option<Vec<u8>> = None;
    // The keyspace prefix of the table being built.
    let mut table_prefix: Vec<u8> = Vec::new();
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
            oldest_write,
            tombstones: info.deletions,
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
            if last_key.as_deref() == Some(uk) || keyspace::is_dropped(dropped, uk) {
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
            let prefix = keyspace::prefix_of(uk);
            if builder.as_ref().is_some_and(|(_, b)| {
                b.file_size() >= target_size || prefix != table_prefix.as_slice()
            }) {
                if let Some((n, b)) = builder.take() {
                    finish(inner, n, b, &mut out)?;
                    pending = None;
                }
            }
            if builder.is_none() {
                table_prefix = prefix.to_vec();
                let n = alloc()?;
                pending = Some(n);
                let path = names::table(&inner.dir, n);
                builder = Some((
                    n,
                    TableBuilder::create(
                        inner.fs.as_ref(),
                        &path,
                        n,
                        inner.keys().as_deref(),
                        keyspace::split(uk).map_or(0, |(id, _)| id),
                        inner.ks_tuning.build_for(keyspace::split(uk).map_or(0, |(id, _)| id)),
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
            pending = None;
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Remove partial outputs at once; nothing refers to them. Finished ones go when `out`
        // drops them (marked obsolete); the unfinished one is closed first, then removed.
        for f in &out {
            f.mark_obsolete();
        }
        drop(builder);
        if let Some(n) = pending {
            remove_unnamed(inner, n);
        }
        return Err(e);
    }
    Ok(out)
}

/// Removes table `n`, which no manifest names (a missing file is fine: its creation failed).
fn remove_unnamed(inner: &Inner, n: u64) {
    let path = names::table(&inner.dir, n);
    if let Err(e) = inner.fs.remove(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a failed job's table");
        }
    }
}

/// After a failed manifest write (the caller holds `state`): the rename may or may not have
/// happened, so the manifest on disk is read back and authenticated. Returns true if it names
/// every one of `outputs` (the new state is on disk: the caller keeps it); otherwise each
/// output it does not name is marked obsolete (removed once the caller's version drops it).
/// If it cannot be read, every output is kept for the next open to sort out.
fn discard_unnamed_outputs(inner: &Inner, outputs: &[Arc<TableFile>]) -> bool {
    let keys = inner.keys();
    let on_disk = match crate::manifest::read(inner.fs.as_ref(), &inner.dir, keys.as_deref()) {
        Ok(data) => data,
        Err(e) => {
            tracing::warn!(error = %e, "sealdb: manifest unreadable after a failed write; new tables kept until reopen");
            return false;
        }
    };
    let named: std::collections::HashSet<u64> =
        on_disk.files.iter().map(|(_, f)| f.number).collect();
    let mut all = true;
    for f in outputs {
        if !named.contains(&f.meta.number) {
            f.mark_obsolete();
            all = false;
        }
    }
    all && !outputs.is_empty()
}

/// Adds counted garbage to the live segments (segments already gone are skipped).
pub(crate) fn apply_discards(vlog: &VlogSet, discards: &Discards) {
    for (n, d) in discards {
        if let Some(s) = vlog.segments.get(n) {
            s.discard.fetch_add(*d, Ordering::Relaxed);
        }
    }
}

/// Writes a memtable to L0 tables, one per keyspace it holds (none if it holds only entries
/// of `dropped` keyspaces), numbered by `alloc`. `oldest_write` is recorded in the tables (see
/// [`MemTable::first_write`]; 0 when unknown).
pub(crate) fn build_l0(
    inner: &Inner,
    mem: &Arc<MemTable>,
    alloc: impl FnMut() -> Result<u64>,
    dropped: &BTreeSet<u32>,
    discards: &mut Discards,
    oldest_write: u64,
) -> Result<Vec<Arc<TableFile>>> {
    let mut it = MemIter::new(mem.clone());
    it.seek_to_first()?;
    write_tables(
        inner,
        &mut it,
        u64::MAX,
        alloc,
        |_| false,
        dropped,
        &|| false,
        discards,
        oldest_write,
    )
}

/// Flushes the oldest frozen memtable; returns whether there was one.
pub(crate) fn flush_one(inner: &Inner) -> Result<bool> {
    let _g = inner.flush_lock.lock();
    let (imm, dropped) = {
        let st = inner.state.lock();
        let Some(imm) = st.imms.front().cloned() else { return Ok(false) };
        (imm, st.keyspaces.table.dropped.clone())
    };
    let mut discards = Discards::new();
    let file = if imm.is_empty() {
        Vec::new()
    } else {
        build_l0(
            inner,
            &imm,
            || inner.alloc_file_number(&mut inner.state.lock()),
            &dropped,
            &mut discards,
            imm.first_write(),
        )?
    };
    let mut st = inner.state.lock();
    apply_discards(&st.vlog, &discards);
    let mut v = (*st.version).clone();
    v.levels[0].extend(file.iter().cloned());
    v.normalize();
    let old_version = std::mem::replace(&mut st.version, Arc::new(v));
    st.imms.pop_front();
    if let Err(e) = inner.write_manifest(&mut st) {
        // Keep the memtable; its WAL still holds its writes. The new table goes unless the
        // manifest on disk names it.
        if discard_unnamed_outputs(inner, file.as_slice()) {
            // The new manifest is on disk (its directory entry maybe not durable): keep the
            // state it describes; the WAL stays until the next open.
            inner.install_sv(&st);
            inner.bg_cv.notify_all();
            return Err(e);
        }
        drop(file);
        st.version = old_version;
        st.imms.push_front(imm);
        return Err(e);
    }
    inner.install_sv(&st);
    // Counted with the state locked, as the version changes: `stats` reads both under it.
    inner.counters.flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Let go of the replaced version before waiters wake: a compaction they start must not
    // find its inputs still held here once it returns.
    drop(old_version);
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
        let (base, dropped) = {
            let st = inner.state.lock();
            (st.version.clone(), st.keyspaces.table.dropped.clone())
        };
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        for f in &c.inputs {
            children.push(Box::new(f.table.compaction_iter()));
        }
        let mut merged = crate::iter::MergingIter::new(children);
        merged.seek_to_first()?;
        // The outputs hold the inputs' entries: none older than the oldest input's oldest.
        let oldest = c.inputs.iter().map(|f| f.meta.oldest_write).min().unwrap_or(0);
        write_tables(
            inner,
            &mut merged,
            inner.tuning.target_file_size,
            || inner.alloc_file_number(&mut inner.state.lock()),
            |uk| compaction::may_drop_tombstone(&base, c.output_level, uk),
            &dropped,
            &|| inner.state.lock().shutting_down,
            &mut discards,
            oldest,
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
        // The new manifest may be on disk: outputs it names stay (the next open sorts out
        // which set is orphaned); the others go now. A trivial move made no new file.
        if !c.trivial_move && discard_unnamed_outputs(inner, &outputs) {
            // The new manifest is on disk (its directory entry maybe not durable): keep the
            // state it describes, but keep the inputs' files until the next open.
            inner.install_sv(&st);
            inner.bg_cv.notify_all();
            return Err(e);
        }
        drop(outputs);
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
    // Counted with the state locked, as the version changes: `stats` reads both under it.
    inner.counters.compactions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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

/// Compacts the tables meeting `range`, level by level from L0 down to the deepest non-empty
/// level (at least L1), each step a [`compaction::pick_range`]; tables outside the range are
/// untouched. Returns when done (obsolete inputs are removed from disk unless a reader still
/// holds them).
pub(crate) fn compact_range(inner: &Inner, range: &compaction::KeyRange) -> Result<()> {
    let _g = inner.compaction_lock.lock();
    let deepest = {
        let st = inner.state.lock();
        (1..crate::manifest::NUM_LEVELS)
            .rev()
            .find(|&l| !st.version.levels[l].is_empty())
            .unwrap_or(1)
    };
    for level in 0..deepest {
        let picked = {
            let v = inner.state.lock().version.clone();
            compaction::pick_range(&v, level, range)
        };
        if let Some(c) = picked {
            run(inner, &c)?;
        }
        if let Some(e) = &inner.state.lock().bg_error {
            return Err(Error::Poisoned(e.clone()));
        }
    }
    Ok(())
}
