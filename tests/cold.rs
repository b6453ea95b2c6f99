//! The cold tier on `object_store`'s in-memory store (and a fault-injecting wrapper): files move
//! to the store and back, reads stay right, the bucket holds no plaintext, tampered objects are
//! `Corruption`, an unreachable store is `Io` naming the object while hot work goes on.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{block_on, check_model, find, objects, Mode, Model};
use rand::{Rng, SeedableRng};
use sealdb::object_store::memory::InMemory;
use sealdb::object_store::path::Path as ObjectPath;
use sealdb::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sealdb::objstore::FaultStore;
use sealdb::{ColdStorage, Error, MasterKey, Options, DB};

fn put_object(store: &Arc<dyn ObjectStore>, name: &str, bytes: Vec<u8>) {
    block_on(store.put(&ObjectPath::from(name), PutPayload::from(bytes))).expect("put");
}

fn opts(dir: &std::path::Path, mode: Mode, key: &MasterKey, cold: ColdStorage) -> Options {
    common::options(dir, mode, key)
        .cold_storage(cold)
        .background_work(false)
        .memtable_size(64 << 10)
        .value_threshold(256)
        .vlog_segment_size(32 << 10)
        .target_file_size(32 << 10)
}

fn cold(store: &Arc<dyn ObjectStore>) -> ColdStorage {
    ColdStorage::new(store.clone(), "db").cold_after(Duration::ZERO).cache_size(0)
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

/// A value: long ones (past the value threshold) go to the value log. Pseudo-random bytes
/// after a readable head, so compression leaves them long.
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

fn local_tables(dir: &std::path::Path) -> usize {
    common::files_with_suffix(dir, ".sst").len()
}

#[test]
fn archive_reads_reopen_and_recall() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut model = Model::new();
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
        fill(&db, &mut model, 0..600, 0);
        db.flush().unwrap();
        db.archive().unwrap();
        let s = db.tiering_status().unwrap();
        assert!(s.cold_files >= 2, "{s:?}");
        assert!(s.uploads >= s.cold_files, "{s:?}");
        assert_eq!(local_tables(dir.path()), 0, "every table went cold");
        assert!(!objects(&store).is_empty());
        check_model("after archive", &db, &model);
        fill(&db, &mut model, 300..700, 1);
        check_model("hot over cold", &db, &model);
    }
    // Reopen: cold tables and segments are read from the store.
    let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
    check_model("reopened", &db, &model);
    db.compact().unwrap();
    check_model("compacted", &db, &model);
    db.archive().unwrap();
    db.recall().unwrap();
    let s = db.tiering_status().unwrap();
    assert_eq!((s.cold_files, s.cold_bytes), (0, 0), "{s:?}");
    assert!(objects(&store).is_empty(), "recall deletes every object");
    drop(db);
    // Detached: opens without cold storage.
    let db = DB::open(
        common::options(dir.path(), Mode::Aes, &mk).background_work(false).value_threshold(256),
    )
    .unwrap();
    check_model("detached", &db, &model);
}

#[test]
fn cold_files_need_cold_storage_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    {
        let db = DB::open(opts(dir.path(), Mode::Plain, &mk, cold(&store))).unwrap();
        let mut m = Model::new();
        fill(&db, &mut m, 0..50, 0);
        db.flush().unwrap();
        db.archive().unwrap();
    }
    let e = common::open_err(DB::open(Options::new(dir.path())), "open without cold storage");
    assert!(matches!(e, Error::ColdStorageRequired { files, .. } if files >= 1), "{e}");
    assert!(!e.is_corruption());
    // Read-only, too, is refused clearly without the store.
    let e = common::open_err(
        DB::open(Options::new(dir.path()).read_only(true)),
        "read-only open without cold storage",
    );
    assert!(matches!(e, Error::ColdStorageRequired { .. }), "{e}");
}

/// Checkpoints keep cold files cold (under objects of their own: the checkpoint needs the
/// store to open) and backups hold every file (the restored copy opens without it). More in
/// `tests/cold_copies.rs`.
#[test]
fn checkpoints_stay_cold_and_backups_come_home() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
    let mut m = Model::new();
    fill(&db, &mut m, 0..200, 0);
    db.flush().unwrap();
    db.archive().unwrap();
    let cold_files = db.tiering_status().unwrap().cold_files;
    assert!(cold_files >= 1);
    let objects_before = objects(&store).len();
    let copy = dir.path().with_extension("copy");
    db.checkpoint(&copy).unwrap();
    assert_eq!(objects(&store).len() as u64, objects_before as u64 + cold_files);
    let backups_dir = tempfile::tempdir().unwrap();
    let backups = sealdb::Backups::dir(backups_dir.path()).unwrap();
    let info = backups.create(&db).unwrap();
    drop(db);
    let e = common::open_err(
        DB::open(common::options(&copy, Mode::Aes, &mk)),
        "checkpoint without cold storage",
    );
    assert!(matches!(e, Error::ColdStorageRequired { files, .. } if files == cold_files), "{e}");
    let db = DB::open(opts(&copy, Mode::Aes, &mk, cold(&store))).unwrap();
    common::check_model("checkpoint with cold files", &db, &m);
    drop(db);
    let restored = dir.path().with_extension("restored");
    backups.restore(info.id, &restored).unwrap();
    let db = DB::open(common::options(&restored, Mode::Aes, &mk)).unwrap();
    common::check_model("restored backup, without the store", &db, &m);
    drop(db);
    std::fs::remove_dir_all(&copy).unwrap();
    std::fs::remove_dir_all(&restored).unwrap();
}

/// Markers in keys and values appear in the local files of a plain database (the scan finds
/// them) and never in any object of an encrypted one.
#[test]
fn no_plaintext_in_the_bucket() {
    let marker = b"SECRETMARKER";
    let marked_key = |i: u32| {
        let mut k = marker.to_vec();
        k.extend_from_slice(format!("-k{i:05}").as_bytes());
        k
    };
    let mv = |i: u32| {
        let mut v = marker.to_vec();
        v.resize(if i.is_multiple_of(2) { 700 } else { 40 }, b'z');
        v
    };
    for mode in [Mode::Plain, Mode::Aes, Mode::ChaCha] {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::generate();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let o = opts(dir.path(), mode, &mk, cold(&store)).compression(false);
        let db = DB::open(o).unwrap();
        for i in 0..400 {
            db.put(marked_key(i), mv(i)).unwrap();
        }
        db.flush().unwrap();
        if mode == Mode::Plain {
            // The control: before archiving, the scan finds the markers in the local files.
            let hits: usize = common::dir_contents(dir.path())
                .values()
                .filter(|b| find(b, marker).is_some())
                .count();
            assert!(hits > 0, "the scan must find markers in a plain database's files");
        }
        db.archive().unwrap();
        let objs = objects(&store);
        assert!(!objs.is_empty());
        let hits: Vec<&String> =
            objs.iter().filter(|(_, b)| find(b, marker).is_some()).map(|(n, _)| n).collect();
        if mode == Mode::Plain {
            assert!(!hits.is_empty(), "plain control: markers are in the uploaded objects");
        } else {
            assert!(hits.is_empty(), "{mode:?}: plaintext in objects {hits:?}");
            for name in objs.keys() {
                assert!(find(name.as_bytes(), marker).is_none(), "marker in object name {name}");
            }
        }
    }
}

/// Every key read after the bucket was tampered with is either right or `Corruption`, and the
/// reads touching the tampered object include at least one `Corruption`.
fn reads_after_tamper(what: &str, tamper: impl Fn(&Arc<dyn ObjectStore>, &[String])) {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut model = Model::new();
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
        fill(&db, &mut model, 0..300, 0);
        db.flush().unwrap();
        fill(&db, &mut model, 300..600, 0);
        db.flush().unwrap();
        db.archive().unwrap();
    }
    let names: Vec<String> = objects(&store).into_keys().collect();
    tamper(&store, &names);
    let o = opts(dir.path(), Mode::Aes, &mk, cold(&store)).cache_size(0);
    let db = match DB::open(o) {
        Ok(db) => db,
        Err(e) => {
            assert!(e.is_corruption(), "{what}: open must fail with Corruption, got {e}");
            return;
        }
    };
    let mut corrupt = 0;
    for (k, v) in &model {
        match db.get(k) {
            Ok(got) => assert_eq!(got.as_deref(), Some(&v[..]), "{what}: wrong answer"),
            Err(e) => {
                assert!(e.is_corruption(), "{what}: {e}");
                corrupt += 1;
            }
        }
    }
    let scan: sealdb::Result<Vec<_>> = db.iter().collect();
    match scan {
        Ok(all) => {
            assert!(corrupt == 0, "{what}: a scan over corrupt data succeeded");
            assert_eq!(all.len(), model.len());
        }
        Err(e) => assert!(e.is_corruption(), "{what}: {e}"),
    }
    assert!(corrupt > 0, "{what}: no read noticed the tampering");
}

/// Whether object `name` is a table's.
fn is_table(name: &str) -> bool {
    std::path::Path::new(name).extension().is_some_and(|e| e == "sst")
}

fn data_object(names: &[String]) -> &String {
    names.iter().find(|n| is_table(n)).expect("a table object")
}

#[test]
fn a_flipped_byte_is_corruption() {
    reads_after_tamper("flip", |store, names| {
        for name in names.iter().filter(|n| is_table(n)) {
            let mut b = objects(store).remove(name).unwrap();
            let at = b.len() / 3;
            b[at] ^= 0x40;
            put_object(store, name, b);
        }
    });
}

#[test]
fn a_truncated_object_is_corruption() {
    reads_after_tamper("truncate", |store, names| {
        let name = data_object(names);
        let mut b = objects(store).remove(name).unwrap();
        b.truncate(b.len() / 2);
        put_object(store, name, b);
    });
}

#[test]
fn swapped_objects_are_corruption() {
    reads_after_tamper("swap", |store, names| {
        let tables: Vec<&String> = names.iter().filter(|n| is_table(n)).collect();
        assert!(tables.len() >= 2);
        let all = objects(store);
        put_object(store, tables[0], all[tables[1]].clone());
        put_object(store, tables[1], all[tables[0]].clone());
    });
}

#[test]
fn a_deleted_object_is_corruption() {
    reads_after_tamper("delete", |store, names| {
        for name in names.iter().filter(|n| is_table(n)) {
            block_on(store.delete(&ObjectPath::from(name.as_str()))).unwrap();
        }
    });
}

/// An object replaced by an earlier upload (of a table since compacted away).
#[test]
fn a_rolled_back_object_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut model = Model::new();
    let earlier: Vec<u8>;
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
        fill(&db, &mut model, 0..300, 0);
        db.flush().unwrap();
        db.archive().unwrap();
        let first = objects(&store);
        earlier = first.iter().find(|(n, _)| is_table(n)).unwrap().1.clone();
        fill(&db, &mut model, 0..300, 1);
        db.compact().unwrap();
        db.archive().unwrap();
    }
    let now = objects(&store);
    let target = data_object(&now.keys().cloned().collect::<Vec<_>>()).clone();
    put_object(&store, &target, earlier);
    let o = opts(dir.path(), Mode::Aes, &mk, cold(&store));
    match DB::open(o) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(db) => {
            let mut corrupt = 0;
            for (k, v) in &model {
                match db.get(k) {
                    Ok(got) => assert_eq!(got.as_deref(), Some(&v[..]), "wrong answer"),
                    Err(e) => {
                        assert!(e.is_corruption(), "{e}");
                        corrupt += 1;
                    }
                }
            }
            assert!(corrupt > 0);
        }
    }
}

/// With the store offline: writes, flushes and hot reads go on; cold reads and archive are
/// `Io` naming the object; back online, everything is there and archive completes.
#[test]
fn an_offline_store_stops_cold_reads_only() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let mut model = Model::new();
    let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
    fill(&db, &mut model, 0..300, 0);
    db.flush().unwrap();
    db.archive().unwrap();
    fault.set_offline(true);
    fill(&db, &mut model, 1000..1100, 0);
    db.flush().unwrap();
    assert_eq!(db.get(key(1000)).unwrap().as_deref(), Some(&value(1000, 0)[..]));
    let e = db.get(key(1)).unwrap_err();
    match &e {
        Error::Io(io) => assert!(io.to_string().contains("db/"), "names the object: {io}"),
        other => panic!("offline cold read: {other}"),
    }
    let e = db.archive().unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");
    assert!(local_tables(dir.path()) >= 1, "the new table stays local");
    fault.set_offline(false);
    db.archive().unwrap();
    assert_eq!(local_tables(dir.path()), 0);
    check_model("back online", &db, &model);
}

/// Uploads that fail part-way (errors, half-stored objects, timeouts) lose nothing and leave
/// no object behind once a later archive succeeds.
#[test]
fn failed_uploads_lose_nothing() {
    use sealdb::objstore::{StoreFault, StoreOp};
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let c = cold(&store).request_timeout(Duration::from_millis(300));
    let mut model = Model::new();
    let db = DB::open(opts(dir.path(), Mode::ChaCha, &mk, c.clone())).unwrap();
    for (round, f) in
        [StoreFault::Error, StoreFault::PartialPut, StoreFault::Hang].into_iter().enumerate()
    {
        fill(&db, &mut model, 0..200, round as u32);
        db.flush().unwrap();
        fault.fail_after(StoreOp::Put, 0, f, false);
        assert!(db.archive().is_err(), "{f:?}");
        fault.clear();
        check_model(&format!("after {f:?}"), &db, &model);
    }
    db.archive().unwrap();
    let s = db.tiering_status().unwrap();
    assert_eq!(s.local_files, 1, "only the active segment stays local: {s:?}");
    let known = objects(&store).len() as u64;
    assert_eq!(known, s.cold_files, "no orphan objects left");
    drop(db);
    let db = DB::open(opts(dir.path(), Mode::ChaCha, &mk, c)).unwrap();
    check_model("reopened", &db, &model);
}

/// The model test: random writes, flushes, compactions, archives, recalls, rotations with
/// re-encryption and reopens, with every key checked against a `BTreeMap` throughout.
#[test]
fn model_with_the_cold_tier() {
    let seed = common::seed("cold model", 0xC01D);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let o = || opts(dir.path(), Mode::Aes, &mk, cold(&store).cache_size(256 << 10));
    let mut db = DB::open(o()).unwrap();
    let mut model = Model::new();
    for step in 0..60u32 {
        for _ in 0..rng.gen_range(20..120) {
            let i = rng.gen_range(0..800);
            if rng.gen_bool(0.15) {
                db.delete(key(i)).unwrap();
                model.remove(&key(i));
            } else {
                db.put(key(i), value(i, step)).unwrap();
                model.insert(key(i), value(i, step));
            }
        }
        let op = rng.gen_range(0..8);
        match op {
            0 => db.flush().unwrap(),
            1 => db.compact().unwrap(),
            2 | 3 => {
                db.flush().unwrap();
                db.archive().unwrap();
            }
            4 => db.recall().unwrap(),
            5 => {
                db.rotate_data_key().unwrap();
                db.reencrypt().unwrap();
                let enc = db.encryption_status().unwrap();
                assert_eq!(enc.keys.len(), 1, "retired keys destroyed");
            }
            6 => {
                drop(db);
                db = DB::open(o()).unwrap();
            }
            _ => {}
        }
        check_model(&format!("seed {seed} step {step}"), &db, &model);
        let s = db.tiering_status().unwrap();
        let objs = objects(&store).len() as u64;
        assert!(objs >= s.cold_files, "step {step}: objects {objs}, {s:?}");
        if op == 2 || op == 3 || op == 4 {
            // Archive and recall sweep orphans and drain deletions: only named objects stay.
            assert_eq!(objs, s.cold_files, "step {step}: objects {objs}, {s:?}");
        }
    }
}

/// A database of `n` keys, all cold, on a counting store; reopened with no block cache so
/// every read reaches the cold tier.
fn cold_db(
    dir: &std::path::Path,
    mk: &MasterKey,
    n: u32,
    cache: u64,
) -> (Arc<FaultStore>, Model, impl Fn() -> DB) {
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let mut model = Model::new();
    {
        let db = DB::open(opts(dir, Mode::Aes, mk, cold(&store))).unwrap();
        fill(&db, &mut model, 0..n, 0);
        db.compact().unwrap();
        db.archive().unwrap();
    }
    let dir = dir.to_path_buf();
    let mk = mk.clone();
    let reopen = move || {
        DB::open(opts(&dir, Mode::Aes, &mk, cold(&store).cache_size(cache)).cache_size(0)).unwrap()
    };
    (fault, model, reopen)
}

/// Once a cold table's index and filter are held, a point read costs at most one ranged GET,
/// and with the part cache a repeated read costs none.
#[test]
fn a_cold_point_read_is_at_most_one_get() {
    use sealdb::objstore::StoreOp;
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let (fault, model, reopen) = cold_db(dir.path(), &mk, 2000, 4 << 20);
    let db = reopen();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..2 {
        for _ in 0..40 {
            let i = rng.gen_range(0..2000);
            let before = fault.requests(StoreOp::Get);
            let got = db.get(key(i)).unwrap();
            assert_eq!(got.as_deref(), model.get(&key(i)).map(Vec::as_slice));
            let gets = fault.requests(StoreOp::Get) - before;
            // A value in the value log is a second cold file: one GET each at most.
            let most = if i.is_multiple_of(3) { 2 } else { 1 };
            assert!(gets <= most, "round {round}: key {i} took {gets} GETs");
        }
        let s = db.tiering_status().unwrap();
        assert!(s.cache_misses > 0, "{s:?}");
    }
    // The same keys again: all from the part cache.
    let before = fault.requests(StoreOp::Get);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..40 {
        db.get(key(rng.gen_range(0..2000))).unwrap();
    }
    assert_eq!(fault.requests(StoreOp::Get), before, "repeated reads hit the part cache");
    let s = db.tiering_status().unwrap();
    assert!(s.cache_hits >= 40 && s.cache_bytes > 0 && s.cache_bytes <= 4 << 20, "{s:?}");
}

/// A damaged part in the local cache is dropped and fetched again: the read is right.
#[test]
fn a_damaged_cached_part_is_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let (_fault, model, reopen) = cold_db(dir.path(), &mk, 1000, 8 << 20);
    {
        let db = reopen();
        check_model("filling the cache", &db, &model);
        // Damage every cached part.
        let cache_dir = dir.path().join("cold-cache");
        let mut damaged = 0;
        for e in std::fs::read_dir(&cache_dir).unwrap() {
            let p = e.unwrap().path();
            let mut b = std::fs::read(&p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 1;
            std::fs::write(&p, b).unwrap();
            damaged += 1;
        }
        assert!(damaged > 0);
        check_model("damaged cache", &db, &model);
    }
}

/// Compaction reads cold inputs past the part cache, and a cache of size 0 keeps nothing.
#[test]
fn compaction_does_not_fill_the_part_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let (_fault, mut model, reopen) = cold_db(dir.path(), &mk, 1500, 8 << 20);
    let db = reopen();
    // Opening loaded the cold tables' indexes and filters (through the cache).
    let at_open = db.tiering_status().unwrap();
    fill(&db, &mut model, 0..10, 9);
    // Compaction only (`compact` would also collect the value log, whose liveness checks are
    // reads).
    db.compact_range::<&[u8], _>(..).unwrap();
    let s = db.tiering_status().unwrap();
    assert!(s.downloads > at_open.downloads, "compaction read the cold inputs: {s:?}");
    // Nothing was added; the replaced cold inputs' parts left the cache with their objects.
    assert!(s.cache_bytes < at_open.cache_bytes, "{s:?} vs {at_open:?}");
    check_model("compacted", &db, &model);
    drop(db);
    let (_fault, model, reopen) = cold_db(dir.path().join("b").as_path(), &mk, 500, 0);
    let db = reopen();
    check_model("no cache", &db, &model);
    assert_eq!(db.tiering_status().unwrap().cache_bytes, 0);
    assert!(!dir.path().join("b").join("cold-cache").exists());
}

/// The crash points of an archive, rebuilt by hand: an upload no manifest names (a crash
/// before the manifest edit) is swept by the next archive pass, while an object of another
/// database id is left alone; a local copy the manifest says is cold (a crash before the local
/// removal) is removed at open. Nothing is lost either way.
#[test]
fn archive_crash_leftovers_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut model = Model::new();
    let local_copy;
    let our_orphan;
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
        fill(&db, &mut model, 0..300, 0);
        db.flush().unwrap();
        let before = common::dir_contents(dir.path());
        db.archive().unwrap();
        // A table whose local copy went: put it back as a crash would have left it.
        local_copy = before
            .into_iter()
            .find(|(p, _)| p.extension().is_some_and(|e| e == "sst"))
            .map(|(p, b)| (dir.path().join(p), b))
            .expect("a table before archive");
        assert!(!local_copy.0.exists(), "archive removed the local copy");
        std::fs::write(&local_copy.0, &local_copy.1).unwrap();
        let name = objects(&store).into_keys().next().unwrap();
        let mut parts: Vec<&str> = name.split('/').collect();
        let file = "999999-0000000000000000.sst".to_owned();
        parts[3] = &file;
        our_orphan = parts.join("/");
    }
    put_object(&store, &our_orphan, b"uploaded, never named".to_vec());
    let foreign = "db/abcd/00000000000000000000000000000000/000001-00.sst".to_owned();
    put_object(&store, &foreign, b"another database's".to_vec());
    let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
    assert!(!local_copy.0.exists(), "the local copy of a cold table is removed at open");
    check_model("after open", &db, &model);
    assert!(objects(&store).contains_key(&our_orphan), "nothing swept before a pass");
    db.archive().unwrap();
    let names = objects(&store);
    assert!(!names.contains_key(&our_orphan), "our orphan is swept");
    assert!(names.contains_key(&foreign), "another database's object stays");
    check_model("after sweep", &db, &model);
}

/// The background archiver moves files by itself, backs off while the store is offline
/// (reporting the failure), and catches up when it is back.
#[test]
fn the_background_archiver_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let db =
        DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store)).background_work(true)).unwrap();
    let wait_for = |what: &str, f: &dyn Fn(&sealdb::TieringStatus) -> bool| {
        for _ in 0..200 {
            if f(&db.tiering_status().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: {:?}", db.tiering_status());
    };
    let mut model = Model::new();
    fault.set_offline(true);
    fill(&db, &mut model, 0..300, 0);
    db.flush().unwrap();
    wait_for("failure reported", &|s| s.last_error.is_some());
    assert_eq!(db.tiering_status().unwrap().cold_files, 0);
    check_model("offline", &db, &model);
    fault.set_offline(false);
    wait_for("archived after the store came back", &|s| {
        s.cold_files > 0 && s.last_error.is_none() && s.local_files == 1
    });
    check_model("archived in the background", &db, &model);
}

/// A segment that was active when the process died may end in a torn (here: zeroed) tail past
/// its length; archived, only its entries go, and every value reads back.
#[test]
fn a_torn_segment_tail_stays_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut model = Model::new();
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
        fill(&db, &mut model, 0..30, 0);
        db.sync().unwrap();
    }
    let mut segs = common::files_with_suffix(dir.path(), ".vlog");
    segs.sort();
    let last = dir.path().join(segs.last().expect("a segment"));
    let mut f = std::fs::OpenOptions::new().append(true).open(&last).unwrap();
    std::io::Write::write_all(&mut f, &[0u8; 700]).unwrap();
    drop(f);
    let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
    db.archive().unwrap();
    let s = db.tiering_status().unwrap();
    assert!(s.cold_files >= 2, "{s:?}");
    check_model("torn tail archived", &db, &model);
}

/// Offline verification: without the store, cold files are reported as not checked (warnings,
/// not problems); with it, every object is fetched and checked, and a changed, truncated or
/// missing object is a problem naming it; an unreachable store leaves them unchecked, not
/// damaged; an unnamed object of this database is an orphan warning.
#[test]
fn verify_checks_cold_objects_when_given_the_store() {
    use sealdb::{verify, verify_with, VerifyOptions};
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store: Arc<dyn ObjectStore> = fault.clone();
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, cold(&store))).unwrap();
        let mut m = Model::new();
        fill(&db, &mut m, 0..400, 0);
        db.flush().unwrap();
        db.archive().unwrap();
        fill(&db, &mut m, 400..420, 1);
        db.close().unwrap();
    }
    let names: Vec<String> = objects(&store).into_keys().collect();
    assert!(names.len() >= 2, "{names:?}");
    let with_store = VerifyOptions::new().cold_storage(cold(&store));

    let plain = verify(dir.path(), Some(&mk)).unwrap();
    assert!(plain.is_clean(), "{:?}", plain.problems);
    assert_eq!(plain.cold_files, names.len() as u64);
    assert_eq!((plain.cold_checked, plain.cold_unchecked), (0, names.len() as u64));
    let unchecked = plain.warnings.iter().filter(|w| w.check.contains("not checked")).count();
    assert_eq!(unchecked, names.len(), "{:?}", plain.warnings);

    let full = verify_with(dir.path(), Some(&mk), &with_store).unwrap();
    assert!(full.is_clean(), "{:?}", full.problems);
    assert_eq!((full.cold_checked, full.cold_unchecked), (names.len() as u64, 0));
    assert!(full.warnings.is_empty(), "{:?}", full.warnings);
    assert_eq!(full.files_checked, plain.files_checked + names.len() as u64);
    assert!(full.blocks_checked > plain.blocks_checked, "{full:?} vs {plain:?}");

    // An unreachable store: nothing checked, nothing called damaged.
    fault.set_offline(true);
    let off = verify_with(dir.path(), Some(&mk), &with_store).unwrap();
    fault.set_offline(false);
    assert!(off.is_clean(), "{:?}", off.problems);
    assert_eq!(off.cold_unchecked, names.len() as u64);

    // Damage: a flipped byte, a truncation, a deletion; each named, each a problem.
    let saved = objects(&store);
    let name = data_object(&names).clone();
    for what in ["digest", "size", "missing"] {
        let mut b = saved[&name].clone();
        match what {
            "digest" => {
                let mid = b.len() / 2;
                b[mid] ^= 1;
                put_object(&store, &name, b);
            }
            "size" => put_object(&store, &name, b[..b.len() - 7].to_vec()),
            _ => block_on(store.delete(&ObjectPath::from(name.as_str()))).unwrap(),
        }
        let r = verify_with(dir.path(), Some(&mk), &with_store).unwrap();
        assert!(!r.is_clean(), "{what}: not detected");
        assert_eq!(r.problems.len(), 1, "{what}: {:?}", r.problems);
        let p = &r.problems[0];
        assert_eq!(p.file, std::path::PathBuf::from(&name), "{what}: {p}");
        assert!(p.check.contains(what), "{what}: {p}");
        put_object(&store, &name, saved[&name].clone());
    }

    // An object of this database that no manifest names: a warning, not a problem.
    let mut parts: Vec<&str> = name.split('/').collect();
    let file = "999999-0000000000000000.sst".to_owned();
    parts[3] = &file;
    let orphan = parts.join("/");
    put_object(&store, &orphan, b"never named".to_vec());
    let r = verify_with(dir.path(), Some(&mk), &with_store).unwrap();
    assert!(r.is_clean(), "{:?}", r.problems);
    assert!(r.warnings.iter().any(|w| w.file.as_os_str() == orphan.as_str()), "{:?}", r.warnings);
}

/// `DB::destroy_with` deletes the database's objects (named ones and orphans carrying its id)
/// before its local files, never another database's; it removes nothing while it cannot read
/// the manifest, is not given the store, or the store does not answer.
#[test]
fn destroy_with_the_store_removes_the_objects() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let mk = MasterKey::generate();
    let fault = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let store: Arc<dyn ObjectStore> = fault.clone();
    let db = DB::open(opts(&dir, Mode::Aes, &mk, cold(&store))).unwrap();
    let mut m = Model::new();
    fill(&db, &mut m, 0..300, 0);
    db.flush().unwrap();
    db.archive().unwrap();
    let names: Vec<String> = objects(&store).into_keys().collect();
    assert!(names.len() >= 2, "{names:?}");
    let mut parts: Vec<&str> = names[0].split('/').collect();
    let file = "999999-0000000000000000.sst".to_owned();
    parts[3] = &file;
    let orphan = parts.join("/");
    put_object(&store, &orphan, b"uploaded, never named".to_vec());
    let foreign = "db/abcd/00000000000000000000000000000000/000001-00.sst".to_owned();
    put_object(&store, &foreign, b"another database's".to_vec());
    let all = objects(&store);

    let untouched = |what: &str| {
        assert_eq!(objects(&store), all, "{what}: objects changed");
        assert!(dir.join("MANIFEST").exists(), "{what}: local files removed");
    };
    let e = DB::destroy_with(&opts(&dir, Mode::Aes, &mk, cold(&store))).unwrap_err();
    assert!(matches!(e, Error::Locked(_)), "{e}");
    untouched("open");
    drop(db);
    let e = DB::destroy_with(&common::options(&dir, Mode::Aes, &mk)).unwrap_err();
    assert!(matches!(e, Error::ColdStorageRequired { .. }), "{e}");
    untouched("no store");
    let wrong = MasterKey::generate();
    let e = DB::destroy_with(&opts(&dir, Mode::Aes, &wrong, cold(&store))).unwrap_err();
    assert!(matches!(e, Error::WrongMasterKey), "{e}");
    untouched("wrong key");
    let e = DB::destroy_with(&opts(&dir, Mode::Plain, &mk, cold(&store))).unwrap_err();
    assert!(matches!(e, Error::EncryptionRequired(_)), "{e}");
    untouched("no key");
    fault.set_offline(true);
    let e = DB::destroy_with(&opts(&dir, Mode::Aes, &mk, cold(&store))).unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e}");
    fault.set_offline(false);
    untouched("store offline");

    DB::destroy_with(&opts(&dir, Mode::Aes, &mk, cold(&store))).unwrap();
    assert!(!dir.exists(), "the directory is gone");
    let left: Vec<String> = objects(&store).into_keys().collect();
    assert_eq!(left, vec![foreign], "only another database's object stays");
    // Nothing left to destroy: no error.
    DB::destroy_with(&opts(&dir, Mode::Aes, &mk, cold(&store))).unwrap();
}

/// A read-only open of a tiered database reads cold files from the store with no disk cache
/// and writes nothing: the data directory (part cache included) and the bucket are the same
/// byte for byte afterwards; archive and recall are refused.
#[test]
fn read_only_open_of_a_tiered_database_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let with_cache = || cold(&store).cache_size(1 << 20);
    let mut model = Model::new();
    {
        let db = DB::open(opts(dir.path(), Mode::Aes, &mk, with_cache())).unwrap();
        fill(&db, &mut model, 0..500, 0);
        db.flush().unwrap();
        db.archive().unwrap();
        check_model("writer, filling its part cache", &db, &model);
        // Some writes only in the WAL, and a local table over the cold ones.
        fill(&db, &mut model, 100..150, 1);
        db.flush().unwrap();
        fill(&db, &mut model, 200..220, 2);
        db.close().unwrap();
    }
    let entries = |p: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let files_before = common::dir_contents(dir.path());
    let entries_before = entries(dir.path());
    assert!(entries_before.contains(&"cold-cache".to_owned()), "{entries_before:?}");
    assert!(files_before.keys().any(|p| p.starts_with("cold-cache")), "the writer cached parts");
    let objects_before = objects(&store);
    {
        let db = DB::open(
            opts(dir.path(), Mode::Aes, &mk, with_cache()).read_only(true).background_work(true),
        )
        .unwrap();
        check_model("read-only", &db, &model);
        let s = db.tiering_status().unwrap();
        assert!(s.cold_files >= 2 && s.local_files >= 1, "{s:?}");
        assert!(s.downloads > 0, "cold reads went to the store: {s:?}");
        assert_eq!(s.cache_bytes, 0, "no part cache: {s:?}");
        assert!(matches!(db.archive(), Err(Error::ReadOnly(_))));
        assert!(matches!(db.recall(), Err(Error::ReadOnly(_))));
        assert!(matches!(db.put("k", "v"), Err(Error::ReadOnly(_))));
    }
    assert_eq!(entries(dir.path()), entries_before, "entries of the data directory");
    assert!(common::dir_contents(dir.path()) == files_before, "the data directory changed");
    assert!(objects(&store) == objects_before, "the bucket changed");
    // The writer opens it as before.
    let db = DB::open(opts(dir.path(), Mode::Aes, &mk, with_cache())).unwrap();
    check_model("writer after the read-only session", &db, &model);
}
