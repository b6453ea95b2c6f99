//! Fault injection under the engine: every fault reaches the caller as an error, the database
//! never corrupts itself, an fsync failure makes it refuse writes until reopened, and after the
//! fault clears and a reopen every acknowledged write is there.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::check_model;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::io::{Fault, FaultFs, FaultOp};
use sealdb::{Encryption, Error, MasterKey, Options, WriteBatch, DB};

fn opts(dir: &Path, key: &MasterKey, fs: &FaultFs, background: bool) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .with_fs(Arc::new(fs.clone()))
        .memtable_size(64 << 10)
        .value_threshold(400)
        .vlog_segment_size(96 << 10)
        .target_file_size(64 << 10)
        .level_base_size(256 << 10)
        .cache_size(0)
        .background_work(background)
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let len = if i.is_multiple_of(4) { 900 } else { 40 };
    format!("v{round}-{i}-").repeat(len / 6).into_bytes()
}

#[test]
fn fsync_failure_poisons_until_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    {
        // Without background work: a flush running when the fault is armed would take it.
        let db = DB::open(opts(dir.path(), &key, &fs, false)).unwrap();
        for i in 0..300 {
            let k = format!("k{i:04}").into_bytes();
            db.put(&k, value(i, 0)).unwrap();
            model.insert(k, value(i, 0));
        }
        db.sync().unwrap();
        fs.fail_after(FaultOp::Sync, 0, Fault::Error, false);
        db.put("after", "x").unwrap();
        let err = db.sync().unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err}");
        // Refuses writes now, even though the fault is gone (the fsyncgate lesson).
        assert!(matches!(db.put("more", "y"), Err(Error::Poisoned(_))));
        assert!(matches!(db.sync(), Err(Error::Poisoned(_))));
        // Reads still work.
        check_model("poisoned, before reopening", &db, &{
            let mut m = model.clone();
            m.insert(b"after".to_vec(), b"x".to_vec());
            m
        });
    }
    fs.clear();
    let db = DB::open(opts(dir.path(), &key, &fs, true)).unwrap();
    // The write whose fsync failed may or may not have survived; everything synced did.
    if let Some(v) = db.get("after").unwrap() {
        assert_eq!(v, b"x", "the unsynced write came back with another value");
        model.insert(b"after".to_vec(), v);
    }
    check_model("reopened after the failed fsync", &db, &model);
    db.put("works", "again").unwrap();
    db.sync().unwrap();
}

#[test]
fn write_errors_short_writes_and_enospc() {
    for fault in [Fault::Error, Fault::ShortWrite, Fault::NoSpace] {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let fs = FaultFs::new();
        let mut model = BTreeMap::new();
        {
            let db = DB::open(opts(dir.path(), &key, &fs, false)).unwrap();
            for i in 0..200 {
                let k = format!("k{i:04}").into_bytes();
                db.put(&k, value(i, 1)).unwrap();
                model.insert(k, value(i, 1));
            }
            fs.fail_after(FaultOp::Write, 0, fault, false);
            let mut b = WriteBatch::new();
            b.put("x1", value(1, 9));
            b.put("x2", value(4, 9)); // large: value log
            let err = db.write(b).unwrap_err();
            if fault == Fault::NoSpace {
                assert!(err.to_string().contains("No space left"), "{err}");
            }
            assert!(db.put("y", "z").is_err());
        }
        fs.clear();
        let db = DB::open(opts(dir.path(), &key, &fs, false)).unwrap();
        check_model(&format!("{fault:?}: reopened"), &db, &model);
        // The failed batch is all or nothing.
        let (a, b) = (db.get("x1").unwrap(), db.get("x2").unwrap());
        assert_eq!(a.is_some(), b.is_some(), "{fault:?}: half a batch survived");
    }
}

#[test]
fn background_failure_refuses_writes_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let fs = FaultFs::new();
    let mut model = BTreeMap::new();
    {
        let db = DB::open(opts(dir.path(), &key, &fs, true)).unwrap();
        // Table creation fails: flushes cannot complete.
        fs.fail_after(FaultOp::Create, 0, Fault::Error, true);
        let mut refused = false;
        for i in 0..3000 {
            let k = format!("k{i:05}").into_bytes();
            match db.put(&k, value(i, 2)) {
                Ok(()) => {
                    model.insert(k, value(i, 2));
                }
                Err(e) => {
                    assert!(matches!(e, Error::Poisoned(_) | Error::Io(_)), "{e}");
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "writes went on after background failures");
        assert!(db.flush().is_err());
    }
    fs.clear();
    let db = DB::open(opts(dir.path(), &key, &fs, true)).unwrap();
    check_model("reopened after the background failures", &db, &model);
}

#[test]
fn read_errors_are_errors_not_wrong_answers() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let fs = FaultFs::new();
    let db = DB::open(opts(dir.path(), &key, &fs, false)).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..500 {
        let k = format!("k{i:04}").into_bytes();
        db.put(&k, value(i, 3)).unwrap();
        model.insert(k, value(i, 3));
    }
    db.flush().unwrap();
    fs.fail_randomly(0.2, 99);
    let (mut errors, mut right) = (0, 0);
    for (k, v) in &model {
        match db.get(k) {
            Ok(got) => {
                assert_eq!(got.as_deref(), Some(v.as_slice()));
                right += 1;
            }
            Err(e) => {
                assert!(matches!(e, Error::Io(_)), "{e}");
                errors += 1;
            }
        }
    }
    assert!(errors > 0 && right > 0, "errors {errors}, right {right}");
    fs.clear();
    check_model("after the read faults cleared", &db, &model);
}

/// Random faults on every kind of call during a workload with flushes and compactions; after
/// each failure the database is reopened without faults and must hold every acknowledged
/// write (the failed batch: all or nothing).
#[test]
fn random_faults_during_a_workload() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let fs = FaultFs::new();
    let mut rng = StdRng::seed_from_u64(2024);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut failures = 0;
    for round in 0..12u32 {
        let db = match DB::open(opts(dir.path(), &key, &fs, false)) {
            Ok(db) => db,
            Err(e) => panic!("reopen without faults failed in round {round}: {e}"),
        };
        check_model(&format!("round {round}, reopened"), &db, &model);
        fs.fail_randomly(0.01, u64::from(round) + 1);
        for step in 0..400u32 {
            let mut b = WriteBatch::new();
            let mut pending = Vec::new();
            for _ in 0..rng.gen_range(1..5) {
                let i = rng.gen_range(0..500);
                let k = format!("k{i:04}").into_bytes();
                if rng.gen_bool(0.2) {
                    b.delete(&k);
                    pending.push((k, None));
                } else {
                    let v = value(i, round * 1000 + step);
                    b.put(&k, &v);
                    pending.push((k, Some(v)));
                }
            }
            let r = match rng.gen_range(0..20) {
                0 => db.flush().and_then(|()| db.write(b)),
                1 => db.compact().and_then(|()| db.write(b)),
                _ => db.write(b),
            };
            if r.is_ok() {
                for (k, v) in pending {
                    match v {
                        Some(v) => model.insert(k, v),
                        None => model.remove(&k),
                    };
                }
            } else {
                failures += 1;
                fs.clear();
                drop(db);
                let db = DB::open(opts(dir.path(), &key, &fs, false)).unwrap();
                // The failed batch may have landed whole; if so, take it into the model.
                let landed = pending.iter().all(|(k, v)| db.get(k).unwrap().as_ref() == v.as_ref());
                if landed {
                    for (k, v) in pending {
                        match v {
                            Some(v) => model.insert(k, v),
                            None => model.remove(&k),
                        };
                    }
                }
                check_model(&format!("round {round}, step {step}, after the fault"), &db, &model);
                break;
            }
        }
        fs.clear();
    }
    println!("random faults: {failures} failures, {} injected", fs.injected());
    assert!(failures > 0);
}
