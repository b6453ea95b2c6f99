//! Reads on a super-version: point lookups (`get_at`, `get_raw`, `points_at`) and the bounds
//! of range and prefix iterators.

use std::ops::{Bound, RangeBounds};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::version::SuperVersion;
use super::Inner;
use crate::error::Result;
use crate::iter::prefix_end;
use crate::key::ValueKind;
use crate::vlog::Pointer;

/// What every read works on: a sequence number and the super-version taken with it. [`DB`]
/// takes a fresh pair per call, a [`Snapshot`] keeps the pair it was made with; both get their
/// read methods from [`read_methods!`], the one implementation of `get`, `iter`, `range` and
/// `prefix`.
///
/// [`DB`]: super::DB
/// [`Snapshot`]: super::Snapshot
pub(super) trait ReadView {
    /// The sequence number and super-version a read sees.
    fn view(&self) -> (u64, Arc<SuperVersion>);
}

/// The public read methods of a [`ReadView`] type, on the default keyspace. `$which` completes "Reads ... value of
/// `key`", `$as_of` ends the iterator methods' first sentence.
macro_rules! read_methods {
    ($which:literal, $as_of:literal) => {
        #[doc = concat!("Reads ", $which, " value of `key`.")]
        pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
            let (seq, sv) = read::ReadView::view(self);
            let key = keyspace::tree_key(keyspace::DEFAULT_PREFIX, key.as_ref());
            read::get_at(&key, seq, &sv)
        }

        #[doc = concat!("All pairs in ascending key order", $as_of, ".")]
        pub fn iter(&self) -> Iter {
            self.range::<&[u8], _>(..)
        }

        #[doc = concat!("The pairs whose keys fall in `range`, ascending", $as_of, ".")]
        pub fn range<K: AsRef<[u8]>, R: std::ops::RangeBounds<K>>(&self, range: R) -> Iter {
            let (seq, sv) = read::ReadView::view(self);
            iters::new_iter_in(sv, seq, keyspace::DEFAULT_PREFIX, read::bounds(&range))
        }

        #[doc = concat!("The pairs whose keys start with `prefix`, ascending", $as_of, ".")]
        pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
            let (seq, sv) = read::ReadView::view(self);
            let bounds = read::prefix_bounds(prefix.as_ref());
            iters::new_iter_in(sv, seq, keyspace::DEFAULT_PREFIX, bounds)
        }
    };
}
pub(super) use read_methods;

/// Reads `key` as of `seq` in `sv`: memtables, then L0 newest first, then each level.
pub(super) fn get_at(key: &[u8], seq: u64, sv: &SuperVersion) -> Result<Option<Vec<u8>>> {
    match get_raw(key, seq, sv)? {
        None | Some((_, ValueKind::Delete, _)) => Ok(None),
        Some((_, ValueKind::Put, v)) => Ok(Some(v)),
        Some((s, ValueKind::Pointer, p)) => sv.vlog.read(&p, key, s, None).map(Some),
    }
}

/// Whether the newest entry of `key` is the value-log pointer `ptr`.
pub(crate) fn points_at(sv: &SuperVersion, key: &[u8], ptr: Pointer) -> Result<bool> {
    Ok(matches!(get_raw(key, crate::key::MAX_SEQ, sv)?,
        Some((_, ValueKind::Pointer, p)) if Pointer::decode(&p) == Some(ptr)))
}

/// The newest entry of `key` at or below `seq`: (sequence, kind, value or pointer bytes).
fn get_raw(key: &[u8], seq: u64, sv: &SuperVersion) -> Result<Option<(u64, ValueKind, Vec<u8>)>> {
    if let Some(e) = sv.mem.get(key, seq) {
        return Ok(Some(e));
    }
    for m in &sv.imms {
        if let Some(e) = m.get(key, seq) {
            return Ok(Some(e));
        }
    }
    for f in &sv.version.levels[0] {
        if f.meta.smallest_user() <= key && key <= f.meta.largest_user() {
            if let Some(e) = f.table.get(key, seq)? {
                return Ok(Some(e));
            }
        }
    }
    for level in 1..sv.version.levels.len() {
        if let Some(f) = sv.version.find_in_level(level, key) {
            if let Some(e) = f.table.get(key, seq)? {
                return Ok(Some(e));
            }
        }
    }
    Ok(None)
}

pub(super) fn bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(
    range: &R,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let conv = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (conv(range.start_bound()), conv(range.end_bound()))
}

pub(super) fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let end = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), end)
}

impl Inner {
    /// The sequence number and super-version a read works on, taken together (see
    /// `docs/design.md`, "Reads"): every table in the super-version holds only entries at or
    /// below the sequence, so no version a reader needs was compacted away.
    pub(crate) fn read_view(&self) -> (u64, Arc<SuperVersion>) {
        let guard = self.sv.read();
        let seq = self.last_seq.load(Ordering::Acquire);
        (seq, guard.clone())
    }
}
