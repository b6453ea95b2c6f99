//! Keyspaces: named, independent key spaces inside the one tree.
//!
//! Every key is stored in the tree as `keyspace id (varint) ‖ user key` (the *tree key*); the
//! unnamed default keyspace — the one `DB::get`/`put`/... use — has id 0, so its prefix is the
//! single byte `0x00`. The varint is prefix-free, so the tree keys of one keyspace are exactly
//! those starting with its prefix: a contiguous run of the tree. A [`WriteBatch`] therefore
//! spans keyspaces atomically through the one WAL and memtable, and every read of a keyspace
//! is a read of the tree bounded to its prefix, with the prefix stripped from what it returns.
//!
//! The name → id map, the next id and the dropped ids live in the manifest (sealed like the
//! rest of it: names are never readable on disk). Ids are never reused: a name dropped and
//! created again gets a fresh id, so entries left anywhere under the old id stay garbage.
//! A dropped id's entries are skipped by flushes and compactions, whole tables of it are
//! deleted at once, and value-log GC treats its values as garbage.
//!
//! [`WriteBatch`]: crate::WriteBatch

use std::collections::{BTreeSet, HashMap};
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use super::compaction::KeyRange;
use super::jobs::{apply_discards, Discards};
use super::read::{self, get_at};
use super::version::TableFile;
use super::{iters, Inner, Snapshot, DB};
use crate::batch::WriteBatch;
use crate::coding::{put_varint, Reader};
use crate::error::{Error, Result};
use crate::iter::{prefix_end, InternalIterator, Iter};
use crate::key::ValueKind;
use crate::manifest::{KeyspaceTable, MAX_KEYSPACE_NAME};
use crate::vlog::Pointer;

/// The id of the unnamed default keyspace.
pub(crate) const DEFAULT_ID: u32 = 0;
/// The tree-key prefix of the default keyspace.
pub(crate) const DEFAULT_PREFIX: &[u8] = &[0];
/// Longest prefix: a `u32` id as a varint.
pub(crate) const MAX_PREFIX_LEN: usize = 5;

/// The tree-key prefix of keyspace `id`.
pub(crate) fn prefix(id: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(MAX_PREFIX_LEN);
    put_varint(&mut v, u64::from(id));
    v
}

/// `prefix ‖ key`.
pub(crate) fn tree_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prefix.len() + key.len());
    v.extend_from_slice(prefix);
    v.extend_from_slice(key);
    v
}

/// The keyspace id of a tree key and the length of its prefix (`None` if malformed).
pub(crate) fn split(tree_key: &[u8]) -> Option<(u32, usize)> {
    let mut r = Reader::new(tree_key.get(..MAX_PREFIX_LEN.min(tree_key.len()))?);
    let id = u32::try_from(r.varint()?).ok()?;
    Some((id, r.pos()))
}

/// The prefix bytes of a tree key (empty if malformed).
pub(crate) fn prefix_of(tree_key: &[u8]) -> &[u8] {
    split(tree_key).map_or(&[][..], |(_, n)| &tree_key[..n])
}

/// Whether tree key `k` belongs to a keyspace in `dropped`.
pub(crate) fn is_dropped(dropped: &BTreeSet<u32>, k: &[u8]) -> bool {
    !dropped.is_empty() && split(k).is_some_and(|(id, _)| dropped.contains(&id))
}

/// Bounds on user keys of the keyspace with `prefix`, as bounds on tree keys.
pub(crate) fn bounds_in(
    prefix: &[u8],
    (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let start = match start {
        Bound::Unbounded => Bound::Included(prefix.to_vec()),
        Bound::Included(k) => Bound::Included(tree_key(prefix, &k)),
        Bound::Excluded(k) => Bound::Excluded(tree_key(prefix, &k)),
    };
    let end = match end {
        // A varint's last byte is below 0x80: the prefix always has an end.
        Bound::Unbounded => prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded),
        Bound::Included(k) => Bound::Included(tree_key(prefix, &k)),
        Bound::Excluded(k) => Bound::Excluded(tree_key(prefix, &k)),
    };
    (start, end)
}

/// A `compact_range` / `approximate_size` range on the user keys of the keyspace with
/// `prefix`, on tree keys (both bounds inclusive).
pub(crate) fn key_range_in(prefix: &[u8], r: KeyRange) -> KeyRange {
    KeyRange {
        lo: Some(tree_key(prefix, r.lo.as_deref().unwrap_or_default())),
        hi: Some(match r.hi {
            Some(hi) => tree_key(prefix, &hi),
            None => prefix_end(prefix).unwrap_or_default(),
        }),
    }
}

/// The keyspace state of an open database, under `State`: the manifest's table, and one
/// shared "dropped" flag per id that has handles.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) table: KeyspaceTable,
    flags: HashMap<u32, Arc<AtomicBool>>,
}

impl Registry {
    pub(crate) fn new(table: KeyspaceTable) -> Registry {
        Registry { table, flags: HashMap::new() }
    }
}

/// A keyspace: an independent key space of the database, with its own keys, iterators and
/// ranges, written atomically with the others through a [`WriteBatch`] or a
/// [`Transaction`](crate::Transaction). `Clone + Send + Sync`; cheap to clone. Once the
/// keyspace is dropped ([`DB::drop_keyspace`]), every use of a handle returns
/// [`Error::KeyspaceDropped`]; once the database is closed, [`Error::Closed`].
#[derive(Clone)]
pub struct Keyspace {
    db: Weak<Inner>,
    pub(crate) id: u32,
    pub(crate) prefix: Arc<[u8]>,
    pub(crate) dropped: Arc<AtomicBool>,
    name: Arc<str>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Keyspace {
    /// Its name (empty for the unnamed default keyspace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it was dropped.
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// [`Error::KeyspaceDropped`] once dropped.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_dropped() {
            return Err(Error::KeyspaceDropped);
        }
        Ok(())
    }

    fn inner(&self) -> Result<Arc<Inner>> {
        let inner = self.db.upgrade().ok_or(Error::Closed)?;
        self.check()?;
        Ok(inner)
    }

    pub(crate) fn key(&self, key: &[u8]) -> Vec<u8> {
        tree_key(&self.prefix, key)
    }

    /// Reads the newest value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        let inner = self.inner()?;
        let (seq, sv) = inner.read_view();
        get_at(&self.key(key.as_ref()), seq, &sv)
    }

    /// Stores `value` under `key`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let inner = self.inner()?;
        let mut b = WriteBatch::new();
        b.put_in(self, key, value);
        inner.write(b, false)
    }

    /// Deletes `key` (a no-op if absent).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let inner = self.inner()?;
        let mut b = WriteBatch::new();
        b.delete_in(self, key);
        inner.write(b, false)
    }

    /// All pairs of the keyspace in ascending key order.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The pairs whose keys fall in `range`, ascending.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.iter_bounds(read::bounds(&range))
    }

    /// The pairs whose keys start with `prefix`, ascending.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        self.iter_bounds(read::prefix_bounds(prefix.as_ref()))
    }

    /// Compacts the keys of the keyspace in `range` only, as [`DB::compact_range`] does for the
    /// default keyspace (an excluded bound is taken as included): the memtable is flushed, then
    /// the tables meeting the range are compacted level by level, dropping its overwritten and
    /// deleted entries. Tables outside the range keep their numbers.
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        self.inner()?.compact_range_in(&self.prefix, KeyRange::from_bounds(&range))
    }

    /// Approximate bytes on disk of the keyspace's data in `range`, estimated as
    /// [`DB::approximate_size`] estimates the default keyspace's (tables, and the value-log
    /// bytes they reach; not the memtables).
    pub fn approximate_size<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<u64> {
        Ok(self.inner()?.approximate_size_in(&self.prefix, KeyRange::from_bounds(&range)))
    }

    /// Approximate number of entries of the keyspace in `range`, counted as
    /// [`DB::approximate_keys`] counts the default keyspace's (every version and deletion not
    /// yet compacted away).
    pub fn approximate_keys<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<u64> {
        Ok(self.inner()?.approximate_keys_in(&self.prefix, KeyRange::from_bounds(&range)))
    }

    fn iter_bounds(&self, bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>)) -> Iter {
        match self.inner() {
            Ok(inner) => {
                let (seq, sv) = inner.read_view();
                iters::new_iter_in(sv, seq, &self.prefix, bounds)
            }
            Err(e) => Iter::failed(e),
        }
    }
}

impl IntoIterator for &Keyspace {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    type IntoIter = Iter;
    fn into_iter(self) -> Iter {
        self.iter()
    }
}

impl DB {
    fn handle(&self, id: u32, name: &str, dropped: Arc<AtomicBool>) -> Keyspace {
        Keyspace {
            db: Arc::downgrade(&self.inner),
            id,
            prefix: prefix(id).into(),
            dropped,
            name: name.into(),
        }
    }

    /// The unnamed default keyspace: the one `DB::get`, `put`, `iter`, ... read and write. It
    /// cannot be dropped.
    pub fn default_keyspace(&self) -> Keyspace {
        self.handle(DEFAULT_ID, "", Arc::new(AtomicBool::new(false)))
    }

    /// The keyspace named `name`, created (durably, in the manifest) if missing. Names are 1 to
    /// 1024 bytes; they are kept only in the sealed manifest.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        if name.is_empty() || name.len() > MAX_KEYSPACE_NAME {
            return Err(Error::InvalidArgument(format!(
                "a keyspace name is 1 to {MAX_KEYSPACE_NAME} bytes long"
            )));
        }
        let mut st = self.inner.state.lock();
        let id = loop {
            if let Some(e) = &st.bg_error {
                return Err(Error::Poisoned(e.clone()));
            }
            if let Some(&id) = st.keyspaces.table.named.get(name) {
                break id;
            }
            self.inner.refuse_read_only()?;
            let id = st.keyspaces.table.next_id;
            if id == u32::MAX {
                return Err(Error::InvalidArgument("keyspace ids are used up".into()));
            }
            // The keyspace's own key is durable in the registry before the manifest names the
            // keyspace, so nothing of it is ever written without its key.
            drop(st);
            super::keys::ensure_keyspace_key(&self.inner, id)?;
            st = self.inner.state.lock();
            if st.keyspaces.table.next_id != id {
                continue; // another keyspace took the id meanwhile (the key waits for the next)
            }
            st.keyspaces.table.next_id += 1;
            st.keyspaces.table.named.insert(name.to_owned(), id);
            if let Err(e) = self.inner.write_manifest(&mut st) {
                st.keyspaces.table.named.remove(name);
                st.keyspaces.table.next_id = id;
                return Err(e);
            }
            break id;
        };
        let flag = st.keyspaces.flags.entry(id).or_default().clone();
        drop(st);
        self.inner.ks_tuning.apply(name, id, None);
        Ok(self.handle(id, name, flag))
    }

    /// The names of the named keyspaces, sorted (the default keyspace has none).
    pub fn keyspace_names(&self) -> Result<Vec<String>> {
        Ok(self.inner.state.lock().keyspaces.table.named.keys().cloned().collect())
    }

    /// Handles of the named keyspaces now, sorted by name (none is created).
    pub(crate) fn named_keyspaces(&self) -> Vec<Keyspace> {
        let mut st = self.inner.state.lock();
        let Registry { table, flags } = &mut st.keyspaces;
        table
            .named
            .iter()
            .map(|(name, &id)| self.handle(id, name, flags.entry(id).or_default().clone()))
            .collect()
    }

    /// Drops the keyspace `name` (a no-op if there is none): the drop is recorded in the
    /// manifest before this returns; from then on every handle of it returns
    /// [`Error::KeyspaceDropped`], and a keyspace created later under the same name is a new,
    /// empty one. Before this returns, the memtable is flushed (so no log holds the keyspace's
    /// entries), tables holding only its entries are deleted, and in an encrypted database the
    /// keyspace's key is destroyed (crypto-erasure): whatever of it remains in value-log
    /// segments, and any of its files in a copy of the database taken before the drop, can no
    /// longer be read with this database's keys. Its value-log entries are garbage for GC.
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        let inner = &self.inner;
        inner.refuse_read_only()?;
        let id = {
            let mut st = inner.state.lock();
            let Some(id) = st.keyspaces.table.named.remove(name) else { return Ok(()) };
            st.keyspaces.table.dropped.insert(id);
            if let Err(e) = inner.write_manifest(&mut st) {
                st.keyspaces.table.dropped.remove(&id);
                st.keyspaces.table.named.insert(name.to_owned(), id);
                return Err(e);
            }
            if let Some(flag) = st.keyspaces.flags.remove(&id) {
                flag.store(true, Ordering::Release);
            }
            id
        };
        inner.finish_drop(id)
    }
}
impl Inner {
    /// The dropped keyspace ids now.
    pub(crate) fn dropped_keyspaces(&self) -> BTreeSet<u32> {
        self.state.lock().keyspaces.table.dropped.clone()
    }

    /// Completes the drop of keyspace `id` (recorded in the manifest): flushes the memtable
    /// (a flush leaves out a dropped keyspace's entries, and retires the log holding them),
    /// deletes the tables holding only dropped keyspaces' entries, then destroys the
    /// keyspace's key. Also run at open, for a drop a crash interrupted (idempotent).
    pub(crate) fn finish_drop(&self, id: u32) -> Result<()> {
        self.flush()?;
        let (files, bytes) = self.delete_dropped_tables()?;
        super::keys::erase_keyspace_key(
            self,
            id,
            &[("tables_deleted", files), ("bytes_deleted", bytes)],
        )?;
        Ok(())
    }

    /// Deletes, without rewriting them, the tables whose every entry belongs to a dropped
    /// keyspace; the value-log bytes their pointers reach are counted as garbage. Returns the
    /// number and bytes of the tables deleted.
    pub(crate) fn delete_dropped_tables(&self) -> Result<(u64, u64)> {
        let _c = self.compaction_lock.lock();
        let (dropped, version) = {
            let st = self.state.lock();
            (st.keyspaces.table.dropped.clone(), st.version.clone())
        };
        let doomed: Vec<Arc<TableFile>> = version
            .all_files()
            .filter(|(_, f)| {
                let (lo, hi) = (f.meta.smallest_user(), f.meta.largest_user());
                is_dropped(&dropped, lo) && split(lo) == split(hi) && prefix_of(lo) == prefix_of(hi)
            })
            .map(|(_, f)| f.clone())
            .collect();
        drop(version);
        if doomed.is_empty() {
            return Ok((0, 0));
        }
        let mut discards = Discards::new();
        for f in &doomed {
            let mut it = f.table.iter();
            it.seek_to_first()?;
            while it.valid() {
                if it.kind() == ValueKind::Pointer {
                    if let Some(p) = Pointer::decode(it.value()) {
                        *discards.entry(p.segment).or_default() += u64::from(p.len);
                    }
                }
                it.next()?;
            }
        }
        let gone: BTreeSet<u64> = doomed.iter().map(|f| f.meta.number).collect();
        let mut st = self.state.lock();
        let mut v = (*st.version).clone();
        for level in &mut v.levels {
            level.retain(|f| !gone.contains(&f.meta.number));
        }
        let old = std::mem::replace(&mut st.version, Arc::new(v));
        if let Err(e) = self.write_manifest(&mut st) {
            st.version = old;
            return Err(e);
        }
        apply_discards(&st.vlog, &discards);
        for f in &doomed {
            f.mark_obsolete();
        }
        drop(old);
        self.install_sv(&st);
        self.bg_cv.notify_all();
        Ok((doomed.len() as u64, doomed.iter().map(|f| f.meta.size).sum()))
    }
}

impl Snapshot {
    /// Reads the value of `key` in keyspace `ks` as of the snapshot.
    pub fn get_in(&self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        ks.check()?;
        get_at(&ks.key(key.as_ref()), self.seq, &self.sv)
    }

    /// The pairs of keyspace `ks` whose keys fall in `range`, ascending, as of the snapshot.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, ks: &Keyspace, range: R) -> Iter {
        self.iter_in_bounds(ks, read::bounds(&range))
    }

    /// All pairs of keyspace `ks`, ascending, as of the snapshot.
    pub fn iter_in(&self, ks: &Keyspace) -> Iter {
        self.range_in::<&[u8], _>(ks, ..)
    }

    /// The pairs of keyspace `ks` whose keys start with `prefix`, ascending, as of the
    /// snapshot.
    pub fn prefix_in(&self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> Iter {
        self.iter_in_bounds(ks, read::prefix_bounds(prefix.as_ref()))
    }

    fn iter_in_bounds(&self, ks: &Keyspace, bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>)) -> Iter {
        match ks.check() {
            Ok(()) => iters::new_iter_in(self.sv.clone(), self.seq, &ks.prefix, bounds),
            Err(e) => Iter::failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    #[test]
    fn a_database_without_keyspace_prefixes_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let opts = || Options::new(dir.path()).background_work(false);
        let db = DB::open(opts()).unwrap();
        db.put(b"k", b"v").unwrap();
        db.flush().unwrap();
        let fs = db.inner.fs.clone();
        drop(db);
        // The manifest as the previous format wrote it: version 2, no keyspace table (12 bytes
        // when empty) and no database id or cold files (16 + 4 bytes when none is cold).
        let data = crate::manifest::read(fs.as_ref(), dir.path(), None).unwrap();
        assert!(data.cold.is_empty());
        let mut v2 = data.encode_as(3);
        v2[0] = 2;
        v2.truncate(v2.len() - 12 - 20);
        crate::manifest::write_payload(
            fs.as_ref(),
            dir.path(),
            data.next_file_number,
            &v2,
            None,
            true,
        )
        .unwrap();
        match DB::open(opts()) {
            Err(Error::UnsupportedFormat(p)) => assert_eq!(p, dir.path()),
            Err(e) => panic!("expected UnsupportedFormat, got {e}"),
            Ok(_) => panic!("an older database opened"),
        }
    }

    #[test]
    fn prefixes_are_prefix_free_and_split_back() {
        let ids = [0u32, 1, 2, 127, 128, 255, 300, 16_384, u32::MAX];
        for &a in &ids {
            let pa = prefix(a);
            assert!(pa.len() <= MAX_PREFIX_LEN);
            let k = tree_key(&pa, b"\x00\xffuser");
            assert_eq!(split(&k), Some((a, pa.len())));
            for &b in &ids {
                if a != b {
                    assert!(!prefix(b).starts_with(&pa), "{a} is a prefix of {b}");
                }
            }
            // Every tree key of the keyspace lies in its unbounded bounds, no other's does.
            let (lo, hi) = bounds_in(&pa, (Bound::Unbounded, Bound::Unbounded));
            let inside = |k: &[u8]| {
                matches!(&lo, Bound::Included(l) if k >= l.as_slice())
                    && matches!(&hi, Bound::Excluded(h) if k < h.as_slice())
            };
            assert!(inside(&k) && inside(&pa));
            for &b in &ids {
                if a != b {
                    assert!(!inside(&tree_key(&prefix(b), b"\xff\xff")), "{b} inside {a}");
                }
            }
        }
        assert_eq!(prefix(DEFAULT_ID), DEFAULT_PREFIX);
        assert_eq!(split(&[0x80]), None);
        assert!(is_dropped(&BTreeSet::from([300]), &tree_key(&prefix(300), b"k")));
        assert!(!is_dropped(&BTreeSet::from([300]), &tree_key(&prefix(3), b"k")));
    }
}
