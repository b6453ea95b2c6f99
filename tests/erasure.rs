//! Erasure: after `erase_now` (or within the `erase_within` bound, without a call) no file in
//! the directory (tables, value log, WAL, cold-tier objects and their cached parts) holds a
//! value deleted or overwritten before; checked on unencrypted, uncompressed databases, where
//! values are readable in the files, against markers of the live values, which must be found.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealdb::object_store::memory::InMemory;
use sealdb::object_store::ObjectStore;
use sealdb::{ColdStorage, Encryption, Error, MasterKey, Options, DB};

const KEYS: usize = 120;

fn opts(dir: &Path) -> Options {
    Options::new(dir)
        .compression(false)
        .background_work(false)
        .memtable_size(64 << 10)
        .value_threshold(256)
        .vlog_segment_size(64 << 10)
        .target_file_size(64 << 10)
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// A marker unique to (key, version), found nowhere else.
fn marker(i: usize, version: u32) -> Vec<u8> {
    format!("<MARK{i:05}v{version}>").into_bytes()
}

/// Value for (key, version): the marker repeated, short (inline) for even keys, long (value
/// log) for odd ones.
fn value(i: usize, version: u32) -> Vec<u8> {
    let len = if i.is_multiple_of(2) { 120 } else { 3000 };
    marker(i, version).into_iter().cycle().take(len).collect()
}

/// Every file under `dir`, recursively: (path, bytes).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p.display().to_string(), b));
        }
    }
    out
}

fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The names of the files (or objects) among `blobs` that hold `needle`.
fn found_in(blobs: &[(String, Vec<u8>)], needle: &[u8]) -> Vec<String> {
    blobs.iter().filter(|(_, b)| holds(b, needle)).map(|(n, _)| n.clone()).collect()
}

/// What the workload leaves: the live value of each key (`None`: deleted), and the markers of
/// the versions deleted or overwritten.
struct Expect {
    live: BTreeMap<usize, Option<u32>>,
    dead: Vec<Vec<u8>>,
}

/// Writes version 1 of every key, flushes, overwrites a third and deletes a third (partly
/// flushed and compacted, partly left in the memtable), overwrites some keys twice.
fn workload(db: &DB, compact_part: bool) -> Expect {
    let mut live = BTreeMap::new();
    let mut dead = Vec::new();
    for i in 0..KEYS {
        db.put(key(i), value(i, 1)).unwrap();
        live.insert(i, Some(1));
    }
    db.flush().unwrap();
    for i in (0..KEYS).filter(|i| i % 3 != 2) {
        if i % 3 == 0 {
            db.put(key(i), value(i, 2)).unwrap();
            live.insert(i, Some(2));
        } else {
            db.delete(key(i)).unwrap();
            live.insert(i, None);
        }
        dead.push(marker(i, 1));
        if i == KEYS / 2 {
            db.flush().unwrap();
            if compact_part {
                db.compact_range(key(0)..key(KEYS / 4)).unwrap();
            }
        }
    }
    // Overwritten twice, the second time in the memtable only.
    for i in (0..KEYS).step_by(9) {
        db.put(key(i), value(i, 3)).unwrap();
        if let Some(Some(v)) = live.insert(i, Some(3)) {
            if v != 1 {
                dead.push(marker(i, v));
            }
        }
    }
    Expect { live, dead }
}

/// Reads every key right, and finds each live marker in some file of `blobs` (the scan can
/// see values).
fn check_live(db: &DB, e: &Expect, blobs: &[(String, Vec<u8>)]) {
    for (&i, v) in &e.live {
        assert_eq!(db.get(key(i)).unwrap(), v.map(|v| value(i, v)), "key {i}");
        if let Some(v) = v {
            assert!(
                !found_in(blobs, &marker(i, *v)).is_empty(),
                "live marker of key {i} not found"
            );
        }
    }
}

/// The dead markers some blob still holds, with where.
fn dead_hits(e: &Expect, blobs: &[(String, Vec<u8>)]) -> Vec<(String, Vec<String>)> {
    e.dead
        .iter()
        .filter_map(|m| {
            let f = found_in(blobs, m);
            (!f.is_empty()).then(|| (String::from_utf8_lossy(m).into_owned(), f))
        })
        .collect()
}

#[test]
fn erase_now_leaves_no_dead_value_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(opts(dir.path())).unwrap();
    let e = workload(&db, true);
    // Before: the dead values are there to find.
    assert!(!dead_hits(&e, &files(dir.path())).is_empty(), "the workload left no dead value");
    db.erase_now().unwrap();
    let blobs = files(dir.path());
    assert_eq!(dead_hits(&e, &blobs), vec![]);
    check_live(&db, &e, &blobs);
    // Again, with nothing to do: still clean, still right.
    db.erase_now().unwrap();
    check_live(&db, &e, &files(dir.path()));
    drop(db);
    let db = DB::open(opts(dir.path())).unwrap();
    let blobs = files(dir.path());
    assert_eq!(dead_hits(&e, &blobs), vec![]);
    check_live(&db, &e, &blobs);
}

#[test]
fn erase_now_only_rewrites_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(opts(dir.path())).unwrap();
    // Two disjoint batches of keys, each compacted to the bottom, nothing shadowed.
    for i in 0..KEYS {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact().unwrap();
    db.erase_now().unwrap();
    let before = db.live_files();
    // Nothing was deleted or overwritten: no file is replaced.
    db.erase_now().unwrap();
    assert_eq!(db.live_files(), before);
}

#[test]
fn erase_within_bound_without_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let bound = Duration::from_secs(3);
    let db = DB::open(opts(dir.path()).background_work(true).erase_within(bound)).unwrap();
    let e = workload(&db, true);
    let written = Instant::now();
    let deadline = written + bound * 4;
    let took = loop {
        let blobs = files(dir.path());
        if dead_hits(&e, &blobs).is_empty() {
            break written.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "dead values still on disk {:?} after the writes: {:?}",
            written.elapsed(),
            dead_hits(&e, &blobs)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("erase_within({bound:?}): clean {took:?} after the last write");
    assert!(took <= bound * 2, "took {took:?} for a bound of {bound:?}");
    check_live(&db, &e, &files(dir.path()));
    drop(db);
    let db = DB::open(opts(dir.path())).unwrap();
    check_live(&db, &e, &files(dir.path()));
}

#[test]
fn a_held_snapshot_makes_erase_now_an_error_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(opts(dir.path())).unwrap();
    let e = workload(&db, false);
    let snap = db.snapshot();
    match db.erase_now() {
        Err(Error::ErasureBlocked { files }) => assert!(files > 0),
        other => panic!("expected ErasureBlocked, got {other:?}"),
    }
    // The snapshot still reads its view.
    assert_eq!(snap.get(key(0)).unwrap(), Some(value(0, 3)));
    drop(snap);
    db.erase_now().unwrap();
    let blobs = files(dir.path());
    assert_eq!(dead_hits(&e, &blobs), vec![]);
    check_live(&db, &e, &blobs);
}

#[test]
fn erase_now_reaches_cold_objects_and_their_cached_parts() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cold = ColdStorage::new(store.clone(), "db").cold_after(Duration::ZERO);
    let db = DB::open(opts(dir.path()).cold_storage(cold)).unwrap();
    let e = workload(&db, true);
    db.archive().unwrap();
    assert!(db.tiering_status().unwrap().cold_files > 0, "nothing went cold");
    // Read everything once, so the part cache holds parts of the cold files.
    check_live(&db, &e, &[(String::new(), value_blob(&e))]);
    let blobs = || {
        let mut b = files(dir.path());
        b.extend(common::objects(&store));
        b
    };
    assert!(!dead_hits(&e, &blobs()).is_empty());
    db.erase_now().unwrap();
    let all = blobs();
    assert_eq!(dead_hits(&e, &all), vec![]);
    check_live(&db, &e, &all);
}

/// Every live value concatenated (so `check_live` can run before the scan matters).
fn value_blob(e: &Expect) -> Vec<u8> {
    e.live.iter().filter_map(|(&i, v)| v.map(|v| value(i, v))).flatten().collect()
}

#[test]
fn erase_now_is_audited_on_an_encrypted_database() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let o = || opts(dir.path()).with_encryption(Encryption::new(key.clone()));
    let db = DB::open(o()).unwrap();
    workload(&db, false);
    db.erase_now().unwrap();
    let lines = db.verify_audit_log().unwrap();
    let log = std::fs::read_to_string(dir.path().join("AUDIT.log")).unwrap();
    let last = log.lines().last().unwrap();
    assert!(last.contains("\"event\":\"erase_now\""), "{last}");
    assert!(last.contains("\"segments_collected\":"), "{last}");
    assert!(!last.contains("\"tables_rewritten\":0,"), "tables were rewritten: {last}");
    drop(db);
    // The line is anchored: the chain verifies after reopen too.
    let db = DB::open(o()).unwrap();
    assert!(db.verify_audit_log().unwrap() > lines);
}
