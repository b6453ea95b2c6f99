//! The cold tier's moves: archive (local → object store), recall (back), the orphan sweep,
//! the background archiver with its backoff, and [`DB::tiering_status`].
//!
//! Archive, for each file: read the local bytes, upload them as a new object (create-if-absent
//! under a fresh name), check its size, read it back whole and check its SHA-256; then, under
//! the lock that guards the file's set (`compaction_lock` for tables, `gc_lock` for segments)
//! and `state`, switch the file to its object and make the manifest (which pins the object's
//! name, size and digest) durable; only then remove the local copy. A crash at any point
//! leaves either a manifest naming the local file (the object is an orphan: swept at the next
//! open's first archiver pass) or one naming the object (the local copy is an orphan: removed
//! at open). Recall is the mirror image: download, check digest, write the local file
//! atomically, switch, manifest, then delete the object.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::version::TableFile;
use super::{Inner, DB};
use crate::cold::{ColdFile, Tier, TieringStatus, MAX_BACKOFF, MIN_BACKOFF};
use crate::error::{Error, Result};
use crate::io::names;
use crate::manifest::ColdKind;
use crate::vlog::Segment;

/// Which files a pass moves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Files older than `cold_after`, and those marked to go cold again.
    Age,
    /// Only those marked to go cold again (re-encrypted cold files).
    Recold,
}

fn tier_of(inner: &Inner) -> Result<Arc<Tier>> {
    inner.tier.clone().ok_or_else(|| {
        Error::InvalidArgument("the database was opened without cold storage".into())
    })
}

/// Whether the local file at `path` is old enough to go cold.
fn old_enough(
    tier: &Tier,
    path: &std::path::Path,
    kind: ColdKind,
    number: u64,
    policy: Policy,
) -> bool {
    if tier.is_recold(kind, number, false) {
        return true;
    }
    if policy == Policy::Recold {
        return false;
    }
    if tier.cold_after.is_zero() {
        return true;
    }
    tier.base
        .modified(path)
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= tier.cold_after)
}

fn check_running(inner: &Inner) -> Result<()> {
    let st = inner.state.lock();
    if st.shutting_down {
        return Err(Error::Closed);
    }
    if let Some(e) = &st.bg_error {
        return Err(Error::Poisoned(e.clone()));
    }
    Ok(())
}

/// Deletes every object of this database (its id in the name) that no cold file refers to:
/// uploads a crash left unnamed, objects whose deletion was lost. Decided on names and the
/// authenticated manifest's records only, never on an object's bytes.
fn sweep(tier: &Tier) -> Result<()> {
    let known = tier.known_names();
    for (name, _) in tier.bucket.list("")? {
        if tier.owns(&name) && !known.contains(&name) {
            tier.bucket.delete(&name)?;
        }
    }
    Ok(())
}

/// One pass: the orphan sweep (once per open), queued deletions, then every file `policy`
/// makes cold.
fn pass(inner: &Inner, tier: &Arc<Tier>, policy: Policy) -> Result<()> {
    // A read-only handle moves nothing and deletes nothing (not even orphans).
    inner.refuse_read_only()?;
    let _op = tier.op_lock.lock();
    if !tier.swept.load(Ordering::Acquire) {
        sweep(tier)?;
        tier.swept.store(true, Ordering::Release);
    }
    tier.drain_deletes()?;
    let tables: Vec<Arc<TableFile>> = {
        let st = inner.state.lock();
        st.version.all_files().map(|(_, f)| f.clone()).collect()
    };
    for f in tables {
        check_running(inner)?;
        let path = names::table(&inner.dir, f.meta.number);
        if tier.object(&path).is_none()
            && old_enough(tier, &path, ColdKind::Table, f.meta.number, policy)
        {
            archive_table(inner, tier, &f)?;
        }
    }
    let segments: Vec<Arc<Segment>> = {
        let st = inner.state.lock();
        st.vlog
            .segments
            .values()
            .filter(|s| s.number != st.active_segment && s.is_closed())
            .cloned()
            .collect()
    };
    for s in segments {
        check_running(inner)?;
        if tier.object(s.path()).is_none()
            && old_enough(tier, s.path(), ColdKind::Segment, s.number, policy)
        {
            archive_segment(inner, tier, &s)?;
        }
    }
    tier.drain_deletes()
}

fn archive_table(inner: &Inner, tier: &Arc<Tier>, f: &Arc<TableFile>) -> Result<()> {
    let n = f.meta.number;
    let path = names::table(&inner.dir, n);
    let bytes = tier.base.read_all(&path)?;
    if bytes.len() as u64 != f.meta.size {
        return Err(Error::corruption(&path, 0, "table size differs from the manifest"));
    }
    let meta = tier.upload(ColdKind::Table, n, bytes.into())?;
    let guard = inner.compaction_lock.lock();
    let mut st = inner.state.lock();
    let mut v = (*st.version).clone();
    let Some(slot) = v.levels.iter_mut().flat_map(|l| l.iter_mut()).find(|x| Arc::ptr_eq(x, f))
    else {
        // Compacted or re-sealed away meanwhile: the object was never named.
        drop(st);
        drop(guard);
        tier.delete_later(meta.name);
        return Ok(());
    };
    let obj = tier.set_cold(path.clone(), meta);
    let file = Arc::new(ColdFile::new(obj, tier.clone()));
    *slot = Arc::new(TableFile::new(
        f.meta.clone(),
        Arc::new(f.table.with_file(file)),
        inner.fs.clone(),
        path.clone(),
    ));
    let prev = std::mem::replace(&mut st.version, Arc::new(v));
    if let Err(e) = inner.write_manifest(&mut st) {
        // The new manifest may be on disk: keep both copies; the next open sorts them out.
        st.version = prev;
        tier.unset_cold(&path);
        return Err(e);
    }
    inner.install_sv(&st);
    drop(prev);
    drop(st);
    drop(guard);
    tier.is_recold(ColdKind::Table, n, true);
    // Readers still holding the local table keep their open handle.
    let _ = tier.base.remove(&path);
    Ok(())
}

fn archive_segment(inner: &Inner, tier: &Arc<Tier>, s: &Arc<Segment>) -> Result<()> {
    let n = s.number;
    let path = s.path().to_path_buf();
    let mut bytes = tier.base.read_all(&path)?;
    let (len, _) = s.recorded();
    if (bytes.len() as u64) < len {
        return Err(Error::corruption(
            &path,
            bytes.len() as u64,
            "value-log segment shorter than the manifest records",
        ));
    }
    // A segment that was active when a crash came may hold a torn tail past its length: only
    // its entries go.
    bytes.truncate(len as usize);
    let meta = tier.upload(ColdKind::Segment, n, bytes.into())?;
    let guard = inner.gc_lock.lock();
    let mut st = inner.state.lock();
    if !st.vlog.segments.get(&n).is_some_and(|x| Arc::ptr_eq(x, s)) {
        drop(st);
        drop(guard);
        tier.delete_later(meta.name);
        return Ok(());
    }
    let obj = tier.set_cold(path.clone(), meta);
    let cold = Arc::new(s.with_file(Arc::new(ColdFile::new(obj, tier.clone()))));
    let mut set = (*st.vlog).clone();
    set.segments.insert(n, cold);
    let prev = std::mem::replace(&mut st.vlog, Arc::new(set));
    if let Err(e) = inner.write_manifest(&mut st) {
        st.vlog = prev;
        tier.unset_cold(&path);
        return Err(e);
    }
    inner.install_sv(&st);
    drop(prev);
    drop(st);
    tier.is_recold(ColdKind::Segment, n, true);
    // Under `gc_lock` still: a re-sealing of the segment, which writes a new local file under
    // the same number, cannot come between.
    let _ = tier.base.remove(&path);
    drop(guard);
    Ok(())
}

/// Brings every cold file back to the data directory.
fn recall_all(inner: &Inner, tier: &Arc<Tier>) -> Result<()> {
    inner.refuse_read_only()?;
    let _op = tier.op_lock.lock();
    let tables: Vec<Arc<TableFile>> = {
        let st = inner.state.lock();
        st.version.all_files().map(|(_, f)| f.clone()).collect()
    };
    for f in tables {
        check_running(inner)?;
        let path = names::table(&inner.dir, f.meta.number);
        let Some(obj) = tier.object(&path) else { continue };
        let bytes = tier.fetch_whole(&obj)?;
        let file_name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::io::write_atomic(tier.base.as_ref(), &inner.dir, &file_name, &bytes)?;
        let guard = inner.compaction_lock.lock();
        let mut st = inner.state.lock();
        let mut v = (*st.version).clone();
        let Some(slot) =
            v.levels.iter_mut().flat_map(|l| l.iter_mut()).find(|x| Arc::ptr_eq(x, &f))
        else {
            drop(st);
            drop(guard);
            let _ = tier.base.remove(&path);
            continue;
        };
        let local = tier.base.open_immutable(&path)?;
        tier.unset_cold(&path);
        *slot = Arc::new(TableFile::new(
            f.meta.clone(),
            Arc::new(f.table.with_file(local)),
            inner.fs.clone(),
            path.clone(),
        ));
        let prev = std::mem::replace(&mut st.version, Arc::new(v));
        if let Err(e) = inner.write_manifest(&mut st) {
            st.version = prev;
            tier.set_cold(path, obj.meta.clone());
            return Err(e);
        }
        inner.install_sv(&st);
        drop(prev);
        drop(st);
        drop(guard);
        tier.delete_later(obj.meta.name.clone());
    }
    let segments: Vec<Arc<Segment>> = {
        let st = inner.state.lock();
        st.vlog.segments.values().cloned().collect()
    };
    for s in segments {
        check_running(inner)?;
        let path = s.path().to_path_buf();
        // Held from the look at the segment to its install: a segment re-sealed meanwhile
        // keeps its number, so its new local file would share this path.
        let guard = inner.gc_lock.lock();
        let Some(obj) = tier.object(&path) else { continue };
        let bytes = tier.fetch_whole(&obj)?;
        let file_name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        crate::io::write_atomic(tier.base.as_ref(), &inner.dir, &file_name, &bytes)?;
        let mut st = inner.state.lock();
        if !st.vlog.segments.get(&s.number).is_some_and(|x| Arc::ptr_eq(x, &s)) {
            drop(st);
            drop(guard);
            let _ = tier.base.remove(&path);
            continue;
        }
        let local = tier.base.open_immutable(&path)?;
        tier.unset_cold(&path);
        let mut set = (*st.vlog).clone();
        set.segments.insert(s.number, Arc::new(s.with_file(local)));
        let prev = std::mem::replace(&mut st.vlog, Arc::new(set));
        if let Err(e) = inner.write_manifest(&mut st) {
            st.vlog = prev;
            tier.set_cold(path, obj.meta.clone());
            return Err(e);
        }
        inner.install_sv(&st);
        drop(prev);
        drop(st);
        drop(guard);
        tier.delete_later(obj.meta.name.clone());
    }
    tier.drain_deletes()
}

/// After re-encryption: re-sealed files that replaced cold ones go cold at once (each a new
/// object), and the objects of the replaced files are deleted before this returns.
pub(super) fn after_reencrypt(inner: &Inner) -> Result<()> {
    let Some(tier) = inner.tier.clone() else { return Ok(()) };
    pass(inner, &tier, Policy::Recold)?;
    tier.drain_deletes()
}

/// The background archiver: a pass at most once a second while the store answers; after a
/// failure, the next attempt waits twice as long as the last (1 s up to 5 min).
pub(super) fn archive_worker(inner: &Inner) {
    let Some(tier) = inner.tier.clone() else { return };
    let mut last = Instant::now();
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
            if st.bg_error.is_some() || last.elapsed() < Duration::from_secs(1) {
                continue;
            }
        }
        if tier.backoff.lock().next_try.is_some_and(|t| Instant::now() < t) {
            continue;
        }
        last = Instant::now();
        match pass(inner, &tier, Policy::Age) {
            Ok(()) => *tier.backoff.lock() = crate::cold::Backoff::default(),
            Err(Error::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "sealdb: cold tier archiver pass failed; retrying later");
                let mut b = tier.backoff.lock();
                b.delay = (b.delay * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
                b.next_try = Some(Instant::now() + b.delay);
                b.last_error = Some(e.to_string());
            }
        }
    }
}

impl DB {
    /// Moves every file that the policy makes cold (immutable files untouched for
    /// [`ColdStorage::cold_after`](crate::ColdStorage::cold_after)) to the object store now;
    /// returns once the move is durable and the local copies are gone. Also removes orphan
    /// objects and objects no manifest names any more. Without cold storage: `InvalidArgument`;
    /// on a read-only handle: `ReadOnly`.
    pub fn archive(&self) -> Result<()> {
        let tier = tier_of(&self.inner)?;
        pass(&self.inner, &tier, Policy::Age)
    }

    /// Brings every cold file back to local disk (to detach from the object store: recall,
    /// then open without cold storage). The background archiver applies the policy again
    /// afterwards.
    pub fn recall(&self) -> Result<()> {
        let tier = tier_of(&self.inner)?;
        recall_all(&self.inner, &tier)
    }

    /// Where the files are and what the cold tier did since open; `None` without cold storage.
    pub fn tiering_status(&self) -> Option<TieringStatus> {
        let tier = self.inner.tier.clone()?;
        let mut s = TieringStatus::default();
        let st = self.inner.state.lock();
        for (_, f) in st.version.all_files() {
            let path = names::table(&self.inner.dir, f.meta.number);
            if tier.object(&path).is_some() {
                s.cold_files += 1;
                s.cold_bytes += f.meta.size;
            } else {
                s.local_files += 1;
                s.local_bytes += f.meta.size;
            }
        }
        for seg in st.vlog.segments.values() {
            let size = seg.size.load(Ordering::Acquire);
            if tier.object(seg.path()).is_some() {
                s.cold_files += 1;
                s.cold_bytes += size;
            } else {
                s.local_files += 1;
                s.local_bytes += size;
            }
        }
        drop(st);
        let c = &tier.counters;
        s.uploads = c.uploads.load(Ordering::Relaxed);
        s.downloads = c.downloads.load(Ordering::Relaxed);
        s.downloaded_bytes = c.downloaded_bytes.load(Ordering::Relaxed);
        s.cache_hits = c.cache_hits.load(Ordering::Relaxed);
        s.cache_misses = c.cache_misses.load(Ordering::Relaxed);
        s.cache_bytes = tier.cache.as_ref().map_or(0, crate::cold::PartCache::bytes);
        s.pending_deletes = tier.pending_deletes();
        s.last_error.clone_from(&tier.backoff.lock().last_error);
        Some(s)
    }
}
