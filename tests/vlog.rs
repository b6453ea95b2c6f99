//! Value-log separation: large values in sealed segments, written once, with GC.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{check_model, Mode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use sealdb::io::FaultFs;
use sealdb::{Encryption, MasterKey, Options, WriteBatch, DB};

fn opts(dir: &Path, mode: Mode, key: &MasterKey) -> Options {
    common::options(dir, mode, key)
        .value_threshold(256)
        .vlog_segment_size(256 << 10)
        .memtable_size(128 << 10)
        .target_file_size(128 << 10)
        .level_base_size(512 << 10)
        .background_work(false)
}

fn value_of(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.gen_range(0..100) {
        0..=39 => rng.gen_range(0..255),
        40..=79 => rng.gen_range(200..5000),
        80..=97 => rng.gen_range(5000..40_000),
        _ => rng.gen_range(1 << 20..3 << 20),
    };
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    if rng.gen_bool(0.5) {
        // Half compressible.
        for (i, b) in v.iter_mut().enumerate() {
            if i % 3 != 0 {
                *b = b'v';
            }
        }
    }
    v
}

fn model_run(mode: Mode, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = BTreeMap::new();
    let mut db = DB::open(opts(dir.path(), mode, &key)).unwrap();
    for step in 0..1500 {
        let k = format!("key{:04}", rng.gen_range(0..300)).into_bytes();
        match rng.gen_range(0..100) {
            0..=59 => {
                let v = value_of(&mut rng);
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            60..=74 => {
                db.delete(&k).unwrap();
                model.remove(&k);
            }
            75..=89 => {
                let mut b = WriteBatch::new();
                for _ in 0..rng.gen_range(1..6) {
                    let k = format!("key{:04}", rng.gen_range(0..300)).into_bytes();
                    if rng.gen_bool(0.8) {
                        let v = value_of(&mut rng);
                        b.put(&k, &v);
                        model.insert(k, v);
                    } else {
                        b.delete(&k);
                        model.remove(&k);
                    }
                }
                db.write(b).unwrap();
            }
            90..=93 => db.flush().unwrap(),
            94..=96 => db.compact().unwrap(),
            _ => {
                drop(db);
                db = DB::open(opts(dir.path(), mode, &key)).unwrap();
            }
        }
        if step % 250 == 0 {
            check_model(&format!("{mode:?} step {step}"), &db, &model);
        }
    }
    check_model(&format!("{mode:?} end"), &db, &model);
    db.compact().unwrap();
    check_model(&format!("{mode:?} after compaction"), &db, &model);
    drop(db);
    let db = DB::open(opts(dir.path(), mode, &key)).unwrap();
    check_model(&format!("{mode:?} after reopening"), &db, &model);
}

#[test]
fn model_mixed_sizes_plain() {
    model_run(Mode::Plain, 11);
}

#[test]
fn model_mixed_sizes_encrypted() {
    model_run(Mode::ChaCha, 12);
}

fn fill_4k(threshold: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    // The fault-free FaultFs counts the bytes the database writes, exactly.
    let fs = FaultFs::new();
    let o = Options::new(dir.path())
        .with_encryption(Encryption::new(MasterKey::generate()))
        .with_fs(Arc::new(fs.clone()))
        .value_threshold(threshold)
        .memtable_size(1 << 20)
        .target_file_size(1 << 20)
        .level_base_size(4 << 20);
    let db = DB::open(o).unwrap();
    let base = fs.bytes_written();
    let mut rng = StdRng::seed_from_u64(7);
    let n = 6000u32;
    let mut user = 0u64;
    for i in 0..n {
        let k = format!("{:016}", rng.gen_range(0..u64::MAX / 2) ^ u64::from(i));
        let mut v = vec![0u8; 4096];
        rng.fill_bytes(&mut v);
        user += (k.len() + v.len()) as u64;
        db.put(k, v).unwrap();
    }
    db.flush().unwrap();
    let wa = (fs.bytes_written() - base) as f64 / user as f64;
    db.close().unwrap();
    wa
}

#[test]
fn write_amplification_of_4k_fill_is_low() {
    let separated = fill_4k(1024);
    let inline = fill_4k(usize::MAX);
    println!("write amplification, 4 KiB values: value log {separated:.3}, inline {inline:.3}");
    assert!(separated <= 1.3, "write amplification {separated:.3} > 1.3");
    // Inline, every value goes through the WAL and then the SSTable at least.
    assert!(inline > separated);
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

#[test]
fn overwrite_delete_compact_reclaims_space() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let o = || {
        Options::new(dir.path())
            .with_encryption(Encryption::new(key.clone()))
            .value_threshold(1024)
            .vlog_segment_size(1 << 20)
            .memtable_size(1 << 20)
            .target_file_size(1 << 20)
    };
    let db = DB::open(o()).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let n = 1000u32;
    let mut model = BTreeMap::new();
    for round in 0..4 {
        for i in 0..n {
            let mut v = vec![0u8; 4096];
            rng.fill_bytes(&mut v);
            v[0] = round;
            let k = format!("k{i:06}").into_bytes();
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
    for i in (0..n).step_by(2) {
        let k = format!("k{i:06}").into_bytes();
        db.delete(&k).unwrap();
        model.remove(&k);
    }
    db.compact().unwrap();
    let live: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    let on_disk = dir_bytes(dir.path());
    println!(
        "live {live} bytes, on disk {on_disk} bytes, ratio {:.3}",
        on_disk as f64 / live as f64
    );
    assert!(on_disk as f64 <= 1.5 * live as f64, "{on_disk} on disk for {live} live bytes");
    check_model("after compaction", &db, &model);
    drop(db);
    let db = DB::open(o()).unwrap();
    check_model("after reopening", &db, &model);
}

#[test]
fn flipped_segment_bytes_are_detected() {
    let key = MasterKey::generate();
    for mode in [Mode::Plain, Mode::ChaCha] {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        {
            let db = DB::open(opts(dir.path(), mode, &key)).unwrap();
            for i in 0..6u32 {
                let v = vec![b'a' + i as u8; 300 + i as usize * 50];
                let k = format!("key{i}").into_bytes();
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
            db.flush().unwrap();
        }
        let seg = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "vlog"))
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap();
        let original = std::fs::read(&seg).unwrap();
        let (mut detected, mut harmless) = (0, 0);
        for pos in 0..original.len() {
            let mut t = original.clone();
            t[pos] ^= 0x20;
            std::fs::write(&seg, &t).unwrap();
            let outcome =
                std::panic::catch_unwind(|| match DB::open(opts(dir.path(), mode, &key)) {
                    Err(e) => {
                        assert!(e.is_corruption(), "unexpected error {e}");
                        true
                    }
                    Ok(db) => {
                        let mut any_err = false;
                        for (k, v) in &model {
                            match db.get(k) {
                                Ok(got) => assert_eq!(
                                    got.as_deref(),
                                    Some(v.as_slice()),
                                    "wrong value at flip {pos}"
                                ),
                                Err(e) => {
                                    assert!(e.is_corruption(), "unexpected error {e}");
                                    any_err = true;
                                }
                            }
                        }
                        any_err
                    }
                });
            match outcome {
                Ok(true) => detected += 1,
                Ok(false) => harmless += 1,
                Err(payload) => panic!("panic at flip {pos}: {payload:?}"),
            }
        }
        std::fs::write(&seg, &original).unwrap();
        println!("segment flips: {detected} detected, {harmless} harmless");
        assert!(detected > 0);
    }
}

/// Regression: background GC may collect a segment that the unflushed WAL still points into;
/// recovery must skip those collected pointers (GC rewrote the live ones later in the log) and
/// replay everything after them.
#[test]
fn gc_of_a_segment_the_wal_points_into_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = || {
        Options::new(dir.path())
            .memtable_size(64 << 10)
            .vlog_segment_size(64 << 10)
            .value_threshold(100)
            .vlog_gc_ratio(0.01)
    };
    let val =
        |tag: u8, i: usize| -> Vec<u8> { (0..300).map(|j| tag ^ (i * 31 + j * 7) as u8).collect() };
    let first_segment = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "vlog"))
            .min()
    };
    {
        let db = DB::open(o()).unwrap();
        for i in 0..10 {
            db.put(b"a", val(b'a', i)).unwrap();
        }
        db.flush().unwrap(); // garbage counted on the first segment
        let segment = first_segment(dir.path()).unwrap();
        db.put(b"b", val(b'b', 0)).unwrap();
        for i in 0..300 {
            db.put(format!("c{i:04}"), val(b'c', i)).unwrap();
        }
        db.sync().unwrap();
        // Wait for the background collector to take the first segment.
        for _ in 0..100 {
            if !segment.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(!segment.exists(), "GC did not collect the segment");
        db.close().unwrap();
    }
    let db = DB::open(o()).unwrap();
    let mut model = BTreeMap::new();
    model.insert(b"a".to_vec(), val(b'a', 9));
    model.insert(b"b".to_vec(), val(b'b', 0));
    for i in 0..300 {
        model.insert(format!("c{i:04}").into_bytes(), val(b'c', i));
    }
    check_model("reopened after GC took the segment", &db, &model);
}

/// Scans over values written in another order than their keys (each pointer jumps: read alone,
/// through the value cache) and in key order (read-ahead windows that grow), in plain and AES
/// modes: every value comes back right, forward, backward and from random starts, from the
/// active segment and from closed ones, and again after reopening.
#[test]
fn scans_over_values_written_in_random_key_order_return_every_value() {
    let key = MasterKey::generate();
    for mode in [Mode::Plain, Mode::Aes] {
        let dir = tempfile::tempdir().unwrap();
        let o = || opts(dir.path(), mode, &key).cache_size(256 << 10);
        let mut rng = StdRng::seed_from_u64(common::seed("random_order_scans", 16));
        let mut model = BTreeMap::new();
        let mut order: Vec<u32> = (0..400).collect();
        order.shuffle(&mut rng);
        // Shuffled keys, then a run written in key order.
        order.extend(1000..1150);
        let db = DB::open(o()).unwrap();
        for i in order {
            let k = format!("key{i:05}").into_bytes();
            let mut v = vec![b'v'; 4096];
            let random = if i % 3 == 0 { 4096 } else { 1500 };
            rng.fill_bytes(&mut v[..random]);
            v[..4].copy_from_slice(&i.to_be_bytes());
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        let check = |db: &DB, what: &str| {
            // Twice: the second scan meets values the first put in the value cache.
            for pass in 0..2 {
                let got: Vec<_> = db.iter().map(Result::unwrap).collect();
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert!(got == want, "{mode:?} {what}: forward scan, pass {pass}");
                let mut back: Vec<_> = db.iter().rev().map(Result::unwrap).collect();
                back.reverse();
                assert!(back == want, "{mode:?} {what}: backward scan, pass {pass}");
            }
            let mut rng = StdRng::seed_from_u64(3);
            let keys: Vec<&Vec<u8>> = model.keys().collect();
            for _ in 0..30 {
                let from = rng.gen_range(0..keys.len());
                let got: Vec<_> =
                    db.range(keys[from].clone()..).take(100).map(Result::unwrap).collect();
                let want: Vec<_> = model
                    .range(keys[from].clone()..)
                    .take(100)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert!(got == want, "{mode:?} {what}: 100 keys from {from}");
            }
        };
        check(&db, "memtable and active segment");
        db.flush().unwrap();
        check(&db, "flushed");
        drop(db);
        let db = DB::open(o()).unwrap();
        check(&db, "reopened");
        check_model("random-order values, reopened", &db, &model);
    }
}
