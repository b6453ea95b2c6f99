//! Checkpoints and backups of a database with cold files (on `object_store`'s in-memory store,
//! wrapped in the fault-injecting store): a checkpoint keeps its files cold under objects of its
//! own (server-side copies, or GET and PUT where the store cannot copy) and outlives the
//! original's objects; a backup holds every file, restores without the store, verifies, and
//! does not fetch again a cold file an earlier backup holds; a damaged cold object stops both,
//! named, instead of being copied.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{block_on, check_model, objects, Mode, Model};
use sealdb::object_store::memory::InMemory;
use sealdb::object_store::path::Path as ObjectPath;
use sealdb::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sealdb::objstore::FaultStore;
use sealdb::{Backups, ColdStorage, Error, MasterKey, Options, DB};

/// The database ids the cold tier's objects under `db/` carry (`db/HHHH/<id>/<file>`), with
/// how many objects each has.
fn ids(store: &Arc<dyn ObjectStore>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for name in objects(store).into_keys() {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() == 4 && parts[0] == "db" {
            *out.entry(parts[2].to_owned()).or_default() += 1;
        }
    }
    out
}

fn put_object(store: &Arc<dyn ObjectStore>, name: &str, bytes: Vec<u8>) {
    block_on(store.put(&ObjectPath::from(name), PutPayload::from(bytes))).expect("put");
}

fn cold(store: &Arc<dyn ObjectStore>) -> ColdStorage {
    ColdStorage::new(store.clone(), "db").cold_after(Duration::ZERO).cache_size(0)
}

fn opts(dir: &Path, key: &MasterKey, cold: ColdStorage) -> Options {
    common::options(dir, Mode::Aes, key)
        .cold_storage(cold)
        .background_work(false)
        .memtable_size(64 << 10)
        .value_threshold(256)
        .vlog_segment_size(32 << 10)
        .target_file_size(32 << 10)
}

/// The same database without cold storage.
fn local_opts(dir: &Path, key: &MasterKey) -> Options {
    common::options(dir, Mode::Aes, key).background_work(false).value_threshold(256)
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

/// A value: every third one is past the value threshold (value log). Pseudo-random bytes after
/// a readable head, so compression leaves them long.
fn value(i: u32, round: u32) -> Vec<u8> {
    let n = if i.is_multiple_of(3) { 600 } else { 20 };
    let mut v = format!("val-{i}-{round}-").into_bytes();
    let mut x = u64::from(i) << 32 | u64::from(round) | 1;
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

fn fill(db: &DB, model: &mut Model, range: std::ops::Range<u32>, round: u32) {
    for i in range {
        db.put(key(i), value(i, round)).unwrap();
        model.insert(key(i), value(i, round));
    }
}

/// A database in `dir` with tables and value-log segments in the store and more files local.
fn tiered(dir: &Path, key: &MasterKey, store: &Arc<dyn ObjectStore>, model: &mut Model) -> DB {
    let db = DB::open(opts(dir, key, cold(store))).unwrap();
    fill(&db, model, 0..600, 0);
    db.flush().unwrap();
    db.archive().unwrap();
    fill(&db, model, 400..800, 1);
    db.flush().unwrap();
    let s = db.tiering_status().unwrap();
    assert!(s.cold_files >= 2 && s.local_files >= 1, "{s:?}");
    db
}

const WRITERS: usize = 4;

/// Writer `t`'s `i`-th put: keys `w<t>:<slot>` overwritten in turn.
fn op(t: usize, i: u64) -> (Vec<u8>, Vec<u8>) {
    let pad = if i.is_multiple_of(3) { 300 } else { 4 };
    (
        format!("w{t}:{:03}", i % 40).into_bytes(),
        format!("{t}:{i}:{}", "y".repeat(pad)).into_bytes(),
    )
}

/// Checks that the copy holds writer `t`'s first `n` puts for one `n` at least `before`.
fn writer_prefix(copy: &DB, t: usize, before: u64, done: u64) -> Model {
    let prefix = format!("w{t}:");
    let got: Model = copy.prefix(prefix.as_bytes()).map(|r| r.unwrap()).collect();
    let mut model = Model::new();
    for n in 0..=done {
        if n >= before && model == got {
            return got;
        }
        if n < done {
            let (k, v) = op(t, n);
            model.insert(k, v);
        }
    }
    panic!("writer {t}: the checkpoint is no prefix of its writes from {before} on");
}

/// A checkpoint taken while four threads write (and a background archiver moves files) opens
/// with the same cold storage, equals the model, and keeps its files cold under objects of its
/// own id; the original then compacts, recalls (deleting all its objects) and the checkpoint
/// still reads right, also after reopening with no cache.
fn checkpoint_while_writing(refuse_copies: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    faults.refuse_copies(refuse_copies);
    let store: Arc<dyn ObjectStore> = Arc::new(faults.clone());
    let mut model = Model::new();
    let path = dir.path().join("db");
    drop(tiered(&path, &mk, &store, &mut model));
    let original_ids = ids(&store);
    assert_eq!(original_ids.len(), 1, "{original_ids:?}");
    // Reopened with background work: the archiver moves new files meanwhile.
    let db = Arc::new(DB::open(opts(&path, &mk, cold(&store)).background_work(true)).unwrap());
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, acked, stop) = (db.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (k, v) = op(t, i);
                    db.put(k, v).unwrap();
                    i += 1;
                    acked[t].store(i, Ordering::Release);
                }
                i
            })
        })
        .collect();
    while acked.iter().map(|a| a.load(Ordering::Acquire)).min().unwrap() < 400 {
        std::thread::yield_now();
    }
    // Compactions meanwhile merge cold tables into local ones: send what is there now.
    db.archive().unwrap();
    let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
    let cp = dir.path().join("checkpoint");
    db.checkpoint(&cp).unwrap();
    stop.store(true, Ordering::Relaxed);
    let done: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let db = Arc::into_inner(db).unwrap();

    // The checkpoint has objects of a new id, as many as it has cold files.
    let after_ids = ids(&store);
    let new: Vec<&String> = after_ids.keys().filter(|id| !original_ids.contains_key(*id)).collect();
    assert_eq!(new.len(), 1, "one new database id: {after_ids:?}");
    let copy = DB::open(opts(&cp, &mk, cold(&store))).unwrap();
    let s = copy.tiering_status().unwrap();
    assert!(s.cold_files >= 1, "the checkpoint's files stay cold: {s:?}");
    assert_eq!(after_ids[new[0]] as u64, s.cold_files, "{after_ids:?} {s:?}");
    let mut whole = model.clone();
    for t in 0..WRITERS {
        whole.extend(writer_prefix(&copy, t, before[t], done[t]));
    }
    check_model("checkpoint", &copy, &whole);
    drop(copy);

    // The original retires every object it has: the checkpoint does not need them.
    db.compact().unwrap();
    db.archive().unwrap();
    db.recall().unwrap();
    drop(db);
    let left = ids(&store);
    assert!(
        original_ids.keys().all(|id| !left.contains_key(id)),
        "the original's objects are gone: {left:?}"
    );
    let copy = DB::open(opts(&cp, &mk, cold(&store))).unwrap();
    check_model("checkpoint after the original recalled", &copy, &whole);
    // The checkpoint is a database of its own: it compacts and detaches too.
    copy.compact().unwrap();
    copy.recall().unwrap();
    drop(copy);
    assert!(ids(&store).is_empty(), "{:?}", ids(&store));
    let copy = DB::open(local_opts(&cp, &mk)).unwrap();
    check_model("checkpoint detached", &copy, &whole);
}

#[test]
fn a_checkpoint_while_writing_keeps_cold_files_in_objects_of_its_own() {
    checkpoint_while_writing(false);
}

#[test]
fn a_checkpoint_copies_by_get_and_put_where_the_store_cannot_copy() {
    checkpoint_while_writing(true);
}

/// Backups of a tiered database, on a directory and on the object store: each restores
/// without cold storage and equals its model, verifies, and the second backup fetches no cold
/// file the first holds. A restored copy gets its own database id: archiving and recalling it
/// on the original's bucket leaves the original's objects alone.
fn backups_of_a_tiered_database(backups: &Backups, store: &Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let mut model = Model::new();
    let db = tiered(&dir.path().join("db"), &mk, store, &mut model);
    let first = backups.create(&db).unwrap();
    let fetched = db.tiering_status().unwrap().downloads;
    assert!(fetched >= 2, "the first backup fetches the cold files");
    let model1 = model.clone();
    fill(&db, &mut model, 700..900, 2);
    db.flush().unwrap();
    let second = backups.create(&db).unwrap();
    assert_eq!(
        db.tiering_status().unwrap().downloads,
        fetched,
        "the second backup fetched a cold file the first holds"
    );
    assert!(second.new_bytes < second.bytes, "{second:?}");
    let original = ids(store);
    assert_eq!(original.len(), 1, "{original:?}");

    for (info, m) in [(&first, &model1), (&second, &model)] {
        let to = dir.path().join(format!("restored-{}", info.id));
        backups.restore(info.id, &to).unwrap();
        backups.verify(info.id, Some(mk.clone())).unwrap();
        // Everything is local: it opens without the store.
        let r = DB::open(local_opts(&to, &mk)).unwrap();
        check_model(&format!("restored backup {}", info.id), &r, m);
        drop(r);
        // On the original's bucket it is another database.
        let r = DB::open(opts(&to, &mk, cold(store))).unwrap();
        r.archive().unwrap();
        assert!(r.tiering_status().unwrap().cold_files >= 2);
        check_model("restored, archived", &r, m);
        assert_eq!(ids(store).len(), 2, "a new id for the restored copy");
        r.recall().unwrap();
        drop(r);
        assert_eq!(ids(store), original, "the original's objects are untouched");
    }
    check_model("original", &db, &model);
}

#[test]
fn backups_of_a_tiered_database_to_a_directory() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let target = tempfile::tempdir().unwrap();
    backups_of_a_tiered_database(&Backups::dir(target.path()).unwrap(), &store);
}

#[test]
fn backups_of_a_tiered_database_to_the_object_store() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    backups_of_a_tiered_database(&Backups::object_store(store.clone(), "backups"), &store);
}

/// A flipped byte in a cold object (a table's, then a segment's) stops a checkpoint and a
/// backup with `Corruption` naming the object; neither leaves anything behind.
#[test]
fn a_damaged_cold_object_is_caught_not_copied() {
    for (ext, refuse_copies) in [("sst", false), ("vlog", false), ("sst", true)] {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::generate();
        let faults = FaultStore::new(Arc::new(InMemory::new()));
        faults.refuse_copies(refuse_copies);
        let store: Arc<dyn ObjectStore> = Arc::new(faults);
        let mut model = Model::new();
        let db = tiered(&dir.path().join("db"), &mk, &store, &mut model);
        let all = objects(&store);
        let (name, bytes) =
            all.iter().find(|(n, _)| n.ends_with(ext)).expect("an object of the kind");
        let mut bad = bytes.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x10;
        put_object(&store, name, bad);
        let what = format!("{ext}, copies refused: {refuse_copies}");

        let cp = dir.path().join("checkpoint");
        let e = db.checkpoint(&cp).unwrap_err();
        assert!(e.is_corruption(), "{what}: {e}");
        assert!(e.to_string().contains(name.as_str()), "{what}: {e} does not name {name}");
        assert!(!cp.exists(), "{what}: a failed checkpoint leaves no directory");
        let now: BTreeSet<String> = objects(&store).into_keys().collect();
        let was: BTreeSet<String> = all.keys().cloned().collect();
        assert_eq!(now, was, "{what}: a failed checkpoint leaves no object");

        let target = tempfile::tempdir().unwrap();
        let backups = Backups::dir(target.path()).unwrap();
        let e = backups.create(&db).unwrap_err();
        assert!(matches!(&e, Error::Corruption { .. }), "{what}: {e}");
        assert!(e.to_string().contains(name.as_str()), "{what}: {e} does not name {name}");
        assert!(backups.list().unwrap().is_empty(), "{what}");
    }
}
