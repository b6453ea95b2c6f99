//! Value-log garbage collection: choosing segments and rewriting their live entries.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::read::points_at;
use super::{keyspace, Inner};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::vlog::{Pointer, Segment};

/// Rewrites the live entries of `seg` through the write path (each applied only if its key
/// still points at it), makes them durable, then drops the segment from the manifest; the file
/// is deleted once no reader holds it.
pub(super) fn gc_segment(inner: &Inner, seg: &Arc<Segment>) -> Result<()> {
    gc_segment_paced(inner, seg, &mut |_| {})
}

/// As [`gc_segment`], reporting the bytes of each entry read to `progress` (which may pause:
/// the re-encryption compactor paces itself so).
pub(super) fn gc_segment_paced(
    inner: &Inner,
    seg: &Arc<Segment>,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    const BATCH_BYTES: usize = 1 << 20;
    let _running = super::stats::Running::start(&inner.counters.gc_running);
    let mut batch = WriteBatch::new();
    let mut live = 0u64;
    // Values of dropped keyspaces are garbage, whether or not the tree still points at them.
    let dropped = inner.dropped_keyspaces();
    seg.scan(|e| {
        let ptr = Pointer { segment: seg.number, offset: e.offset, len: e.len };
        let (_, sv) = inner.read_view();
        progress(u64::from(e.len));
        if !keyspace::is_dropped(&dropped, e.key) && points_at(&sv, e.key, ptr)? {
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
    inner.counters.gc_segments.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(segment = seg.number, live_bytes = live, "value-log segment collected");
    Ok(())
}

/// Segments other than the active one whose garbage ratio is at least `ratio` (any garbage at
/// all when `ratio` is 0), most garbage first.
pub(super) fn gc_candidates(inner: &Inner, ratio: f64) -> Vec<Arc<Segment>> {
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
