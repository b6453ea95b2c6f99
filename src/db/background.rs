//! The background worker loops: flush, compaction, and value-log GC with key upkeep.

use std::time::Duration;

use super::{compaction, erase, gc, jobs, Inner};
use crate::error::Error;

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
        if let Err(e) = jobs::flush_one(inner) {
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

pub(crate) fn compaction_worker(inner: &Inner) {
    loop {
        let guard = inner.compaction_lock.lock();
        let mut st = inner.state.lock();
        if st.shutting_down {
            return;
        }
        // The version is held only while picking: a clone kept across the wait below would
        // keep the files of a replaced version on disk.
        // An ordinary compaction first; else one that erasure needs (`erase.rs`).
        let picked = if st.bg_error.is_none() {
            let v = st.version.clone();
            compaction::pick(&v, &inner.tuning, &mut st.compact_pointer)
                .map(|c| (c, false))
                .or_else(|| erase::pick_due(inner, &v).map(|c| (c, true)))
        } else {
            None
        };
        let Some((c, erasing)) = picked else {
            drop(guard);
            // With an erasure bound, tables age into being due without any event.
            match erase::tick(inner) {
                Some(t) => {
                    inner.bg_cv.wait_for(&mut st, t);
                }
                None => inner.bg_cv.wait(&mut st),
            }
            continue;
        };
        drop(st);
        match jobs::run(inner, &c) {
            Ok(()) if erasing => erase::ran(inner, &c),
            Ok(()) => {}
            Err(e) => fail(inner, "compaction failed", &e),
        }
        // The inputs go from disk before the next holder of the lock looks.
        drop(c);
        drop(guard);
    }
}

pub(crate) fn gc_worker(inner: &Inner) {
    loop {
        {
            let mut st = inner.state.lock();
            if st.shutting_down {
                return;
            }
            inner.bg_cv.wait_for(&mut st, erase::tick(inner).unwrap_or(Duration::from_secs(1)));
            if st.shutting_down {
                return;
            }
            if st.bg_error.is_some() {
                continue;
            }
        }
        {
            let _g = inner.gc_lock.lock();
            if let Some(seg) = gc::gc_candidates(inner, inner.tuning.vlog_gc_ratio).first() {
                if let Err(e) = gc::gc_segment(inner, seg) {
                    fail(inner, "value-log GC failed", &e);
                }
            }
        }
        if let Err(e) = super::keys::maintain(inner) {
            fail(inner, "key maintenance failed", &e);
        }
        if let Err(e) = erase::maintain(inner) {
            fail(inner, "erasure failed", &e);
        }
        #[cfg(feature = "metrics")]
        super::metrics::publish(&inner.dir, &inner.stats());
    }
}
