//! Keyspaces: a model test (one map per keyspace, batches across them, drop and recreate,
//! flush, compaction, reopen), handles of dropped keyspaces, whole tables of a dropped
//! keyspace deleted, its values collected by value-log GC, and no keyspace name on disk in
//! the clear.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{check_model, dir_contents, find, KeyRange, Mode, Model, View};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Error, Iter, Keyspace, MasterKey, Options, Snapshot, WriteBatch, DB};

impl View for Keyspace {
    fn read(&self, key: &[u8]) -> sealdb::Result<Option<Vec<u8>>> {
        self.get(key)
    }
    fn scan(&self) -> Iter {
        self.iter()
    }
    fn scan_range(&self, range: KeyRange) -> Iter {
        self.range(range)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Iter {
        self.prefix(prefix)
    }
}

/// A keyspace as a snapshot sees it.
struct SnapIn<'a>(&'a Snapshot, &'a Keyspace);

impl View for SnapIn<'_> {
    fn read(&self, key: &[u8]) -> sealdb::Result<Option<Vec<u8>>> {
        self.0.get_in(self.1, key)
    }
    fn scan(&self) -> Iter {
        self.0.iter_in(self.1)
    }
    fn scan_range(&self, range: KeyRange) -> Iter {
        self.0.range_in(self.1, range)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Iter {
        self.0.prefix_in(self.1, prefix)
    }
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

fn small(path: &Path, mode: Mode, key: &MasterKey) -> Options {
    common::options(path, mode, key)
        .memtable_size(64 << 10)
        .target_file_size(64 << 10)
        .value_threshold(200)
        .vlog_segment_size(64 << 10)
}

/// Handles: index 0 is the default keyspace, 1.. the named ones of `NAMES`.
fn handles(db: &DB) -> Vec<Keyspace> {
    let mut v = vec![db.default_keyspace()];
    v.extend(NAMES.iter().map(|n| db.keyspace(n).unwrap()));
    v
}

fn check_all(ctx: &str, db: &DB, ks: &[Keyspace], models: &[Model]) {
    for (i, (k, m)) in ks.iter().zip(models).enumerate() {
        check_model(&format!("{ctx}, keyspace {i}"), k, m);
    }
    // The DB's own methods are the default keyspace.
    check_model(&format!("{ctx}, DB"), db, &models[0]);
}

fn run_model(mode: Mode, default_seed: u64) {
    let seed = common::seed("keyspaces model", default_seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let mut db = common::open(small(dir.path(), mode, &key), "first open");
    let mut ks = handles(&db);
    let mut models: Vec<Model> = vec![Model::new(); ks.len()];
    // Each snapshot with the handles it was taken with and the models then.
    let mut snaps: Vec<(Snapshot, Vec<Keyspace>, Vec<Model>)> = Vec::new();
    // A small key pool shared by all keyspaces, so equal user keys meet in several of them.
    let pool: Vec<Vec<u8>> =
        (0..300u32).map(|i| format!("k{:04}", i * 7 % 1000).into_bytes()).collect();
    for round in 0..400 {
        let mut batch = WriteBatch::new();
        for _ in 0..rng.gen_range(1..12) {
            let i = rng.gen_range(0..ks.len());
            let k = pool[rng.gen_range(0..pool.len())].clone();
            if rng.gen_bool(0.2) {
                batch.delete_in(&ks[i], &k);
                models[i].remove(&k);
            } else {
                let len = if rng.gen_bool(0.2) { 600 } else { rng.gen_range(1..60) };
                let v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                batch.put_in(&ks[i], &k, &v);
                models[i].insert(k, v);
            }
        }
        db.write(batch).unwrap();
        match rng.gen_range(0..100) {
            0..=3 => db.flush().unwrap(),
            4..=5 => db.compact().unwrap(),
            6..=8 => {
                // Drop and recreate a named keyspace: the new one is empty.
                let i = rng.gen_range(1..ks.len());
                let old = ks[i].clone();
                db.drop_keyspace(NAMES[i - 1]).unwrap();
                assert!(matches!(old.get(b"k0000"), Err(Error::KeyspaceDropped)));
                ks[i] = db.keyspace(NAMES[i - 1]).unwrap();
                models[i].clear();
                check_model(&format!("round {round}: recreated"), &ks[i], &models[i]);
            }
            9..=10 => {
                drop(ks);
                snaps.clear();
                db.close().unwrap();
                db = common::open(small(dir.path(), mode, &key), "reopen");
                ks = handles(&db);
                check_all(&format!("round {round}: reopened"), &db, &ks, &models);
            }
            11..=13 => snaps.push((db.snapshot(), ks.clone(), models.clone())),
            _ => {}
        }
        if round % 50 == 49 {
            check_all(&format!("round {round}"), &db, &ks, &models);
            for (s, handles, m) in &snaps {
                for (i, k) in handles.iter().enumerate() {
                    // A keyspace dropped since reads nothing but the error.
                    if k.is_dropped() {
                        assert!(matches!(s.get_in(k, b"x"), Err(Error::KeyspaceDropped)));
                    } else {
                        check_model(&format!("round {round}: snapshot {i}"), &SnapIn(s, k), &m[i]);
                    }
                }
            }
            snaps.truncate(2);
        }
    }
    drop(snaps);
    db.compact().unwrap();
    check_all("after the last compaction", &db, &ks, &models);
    assert_eq!(db.keyspace_names().unwrap(), NAMES.to_vec());
    drop(ks);
    db.close().unwrap();
    let db = common::open(small(dir.path(), mode, &key), "last reopen");
    let ks = handles(&db);
    check_all("after the last reopen", &db, &ks, &models);
}

#[test]
fn model_plain() {
    run_model(Mode::Plain, 11);
}

#[test]
fn model_aes() {
    run_model(Mode::Aes, 12);
}

#[test]
fn dropped_handles_fail_and_a_recreated_name_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(Options::new(dir.path()).background_work(false)).unwrap();
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    a.put(b"k", b"in a").unwrap();
    b.put(b"k", b"in b").unwrap();
    db.put(b"k", b"default").unwrap();
    assert_eq!(a.get(b"k").unwrap().as_deref(), Some(&b"in a"[..]));
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"in b"[..]));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(db.iter().count(), 1, "the default keyspace sees only its own keys");
    let a2 = db.keyspace("a").unwrap();
    let snap = db.snapshot();
    let mut pending = WriteBatch::new();
    pending.put_in(&a, b"late", b"x");
    let mut txn = db.transaction();
    txn.put_in(&a, b"t", b"x");

    db.drop_keyspace("a").unwrap();
    assert_eq!(db.keyspace_names().unwrap(), vec!["b".to_string()]);
    assert!(a.is_dropped() && a2.is_dropped() && !b.is_dropped());
    assert!(matches!(a.get(b"k"), Err(Error::KeyspaceDropped)));
    assert!(matches!(a2.put(b"k", b"v"), Err(Error::KeyspaceDropped)));
    assert!(matches!(a.delete(b"k"), Err(Error::KeyspaceDropped)));
    assert!(matches!(a.iter().next(), Some(Err(Error::KeyspaceDropped))));
    assert!(matches!(a.prefix(b"k").next_back(), Some(Err(Error::KeyspaceDropped))));
    assert!(matches!(snap.get_in(&a, b"k"), Err(Error::KeyspaceDropped)));
    assert!(matches!(snap.range_in(&a, ..b"z".to_vec()).next(), Some(Err(Error::KeyspaceDropped))));
    assert!(matches!(db.write(pending), Err(Error::KeyspaceDropped)));
    assert!(matches!(txn.commit(), Err(Error::KeyspaceDropped)));
    assert_eq!(b.get(b"k").unwrap().as_deref(), Some(&b"in b"[..]), "other keyspaces stay");
    assert_eq!(snap.get_in(&b, b"k").unwrap().as_deref(), Some(&b"in b"[..]));

    let a3 = db.keyspace("a").unwrap();
    assert_eq!(a3.get(b"k").unwrap(), None, "a recreated keyspace is new and empty");
    assert_eq!(a3.iter().count(), 0);
    db.flush().unwrap();
    db.compact().unwrap();
    assert_eq!(a3.iter().count(), 0);
    db.drop_keyspace("no such keyspace").unwrap();
    assert!(matches!(db.keyspace(""), Err(Error::InvalidArgument(_))));
    drop((a, a2, a3, b));
    db.close().unwrap();

    let db = DB::open(Options::new(dir.path()).background_work(false)).unwrap();
    assert_eq!(db.keyspace_names().unwrap(), vec!["a".to_string(), "b".to_string()]);
    assert_eq!(db.keyspace("a").unwrap().iter().count(), 0);
    assert_eq!(db.keyspace("b").unwrap().get(b"k").unwrap().as_deref(), Some(&b"in b"[..]));
}

fn table_bytes(db: &DB) -> u64 {
    db.stats().levels.iter().map(|l| l.bytes).sum()
}

#[test]
fn a_dropped_keyspace_loses_its_tables_at_once_and_its_values_at_gc() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        Options::new(dir.path())
            .background_work(false)
            .value_threshold(100)
            .vlog_segment_size(256 << 10)
    };
    let db = DB::open(opts()).unwrap();
    let big = db.keyspace("big").unwrap();
    let keep = db.keyspace("keep").unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..2000u32 {
        let mut b = WriteBatch::new();
        let v: Vec<u8> = (0..400).map(|_| rng.gen()).collect();
        b.put_in(&big, i.to_be_bytes(), &v);
        // Small inline values: the kept keyspace's table is small.
        b.put_in(&keep, i.to_be_bytes(), i.to_le_bytes());
        db.write(b).unwrap();
    }
    db.flush().unwrap();
    // One flush, two keyspaces: two tables (a table never spans keyspaces).
    assert_eq!(db.stats().levels[0].files, 2);
    db.compact().unwrap();
    let before = table_bytes(&db);
    let files_before: u64 = db.stats().levels.iter().map(|l| l.files).sum();
    // Entries of the dropped keyspace still in the memtable go at the next flush.
    big.put(b"in the memtable", [7u8; 400]).unwrap();
    db.drop_keyspace("big").unwrap();
    let after = table_bytes(&db);
    let files_after: u64 = db.stats().levels.iter().map(|l| l.files).sum();
    assert!(files_after < files_before, "{files_after} tables left of {files_before}");
    assert!(after * 2 < before, "tables of the dropped keyspace deleted: {before} → {after}");
    let vlog_before: u64 = db.stats().vlog_segments.iter().map(|s| s.bytes).sum();
    assert!(vlog_before > 2000 * 400, "the values went to the value log");
    db.compact().unwrap();
    let vlog_after: u64 = db.stats().vlog_segments.iter().map(|s| s.bytes).sum();
    assert!(vlog_after < vlog_before / 4, "value log {vlog_before} → {vlog_after} after GC");
    assert_eq!(keep.iter().count(), 2000);
    assert_eq!(keep.get(7u32.to_be_bytes()).unwrap(), Some(7u32.to_le_bytes().to_vec()));
    assert!(table_bytes(&db) <= after + 4096, "the flush left the dropped entries out");
    drop((big, keep));
    db.close().unwrap();
    let db = DB::open(opts()).unwrap();
    assert_eq!(db.keyspace("keep").unwrap().iter().count(), 2000);
    assert_eq!(db.keyspace("big").unwrap().iter().count(), 0);
}

#[test]
fn no_keyspace_name_on_disk_when_encrypted() {
    // Names share no four-byte substring, so LZ4 cannot fold one into a back-reference.
    const NAMES: [&str; 2] = ["zanzibar-payroll", "QUIXOTIC_LEDGER"];
    let scan = |mode: Mode| -> BTreeMap<String, usize> {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let db = DB::open(common::options(dir.path(), mode, &key).background_work(false)).unwrap();
        for n in NAMES {
            let ks = db.keyspace(n).unwrap();
            for i in 0..100u32 {
                // Values without the name: only the manifest could show it.
                ks.put(i.to_be_bytes(), i.to_le_bytes()).unwrap();
            }
        }
        db.flush().unwrap();
        db.drop_keyspace(NAMES[1]).unwrap();
        db.keyspace(NAMES[1]).unwrap().put(b"again", b"x").unwrap();
        db.compact().unwrap();
        db.close().unwrap();
        let mut hits = BTreeMap::new();
        for (_, data) in dir_contents(dir.path()) {
            for n in NAMES {
                if find(&data, n.as_bytes()).is_some() {
                    *hits.entry(n.to_string()).or_default() += 1;
                }
            }
        }
        hits
    };
    let plain = scan(Mode::Plain);
    assert_eq!(plain.len(), 2, "the scan finds the names without encryption: {plain:?}");
    for mode in [Mode::Aes, Mode::ChaCha] {
        assert_eq!(scan(mode), BTreeMap::new(), "{mode:?}: a keyspace name on disk");
    }
}

#[test]
fn neighbouring_keyspaces_do_not_leak_into_each_other_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(Options::new(dir.path()).background_work(false)).unwrap();
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    let edge: [&[u8]; 4] = [b"", b"\x00", b"\xff", b"\xff\xff\xff"];
    for k in edge {
        a.put(k, b"a").unwrap();
        b.put(k, b"b").unwrap();
        db.put(k, b"default").unwrap();
    }
    for flush in [false, true] {
        if flush {
            db.flush().unwrap();
        }
        for (ks, v) in [(&a, &b"a"[..]), (&b, b"b"), (&db.default_keyspace(), b"default")] {
            let fwd: Vec<_> = ks.iter().map(Result::unwrap).collect();
            let expect: Vec<_> = edge.iter().map(|k| (k.to_vec(), v.to_vec())).collect();
            assert_eq!(fwd, expect);
            let mut back: Vec<_> = ks.iter().rev().map(Result::unwrap).collect();
            back.reverse();
            assert_eq!(back, expect);
            assert_eq!(ks.prefix(b"\xff").count(), 2);
            assert_eq!(ks.range(b"\xff".to_vec()..).rev().count(), 2);
            assert_eq!(ks.range(..=b"".to_vec()).count(), 1);
        }
    }
}
