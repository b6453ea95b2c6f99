//! Disk full during flush and compaction: ENOSPC at every fault point of each, in turn. A
//! failed job leaves no file behind (the directory holds exactly the live files), every key
//! reads right while the fault lasts, and after the space returns (and a reopen, when the
//! failure poisoned the database) the database is whole and writable.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sealdb::io::{names, Fault, FaultFs, FaultOp};
use sealdb::{Encryption, Error, MasterKey, Options, DB};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const OPS: [FaultOp; 4] = [FaultOp::Create, FaultOp::Write, FaultOp::Sync, FaultOp::Rename];

fn opts(dir: &Path, key: &MasterKey, fs: &FaultFs) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .with_fs(Arc::new(fs.clone()))
        .memtable_size(1 << 20)
        .value_threshold(300)
        .target_file_size(8 << 10)
        .block_size(1024)
        .background_work(false)
}

/// Round 0 puts every fifth value in the value log; later rounds overwrite only small values,
/// so no segment holds garbage and `compact()` runs one compaction (no GC, no second round:
/// the inputs a failed compaction keeps on disk all existed before the call).
fn value(i: u32, round: u32) -> Vec<u8> {
    let len = if i.is_multiple_of(5) { 600 } else { 30 };
    format!("r{round}i{i}-").repeat(len / 6).into_bytes()
}

/// Numbered or temporary files in `dir` that `db` does not list as live; with `tables_only`,
/// only tables and temporary files. (A WAL or value-log segment that the write path or GC
/// started when the fault hit may be named by the old WAL or the manifest on disk: it poisons
/// the database and the next open removes it if it is an orphan, which the caller checks.)
fn orphans(dir: &Path, db: &DB, tables_only: bool) -> Vec<String> {
    let live = db.live_files();
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| match names::parse(n) {
            Some(names::FileName::Table(_) | names::FileName::Temp) => !live.contains(n),
            Some(_) => !tables_only && !live.contains(n),
            None => false,
        })
        .collect();
    out.sort();
    out
}

fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn check(db: &DB, model: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    for (k, v) in model {
        let got = db.get(k).unwrap_or_else(|e| panic!("{what}: get failed: {e}"));
        assert_eq!(got.as_deref(), Some(&v[..]), "{what}: wrong value for a key");
    }
    let all: Vec<_> = db.iter().collect::<sealdb::Result<_>>().unwrap();
    assert_eq!(all.len(), model.len(), "{what}: scan length");
    for ((k, v), (mk, mv)) in all.iter().zip(model) {
        assert!(k == mk && v == mv, "{what}: scan differs");
    }
}

fn put_round(db: &DB, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, round: u32, step: u32) {
    for i in (0..120u32).step_by(step as usize) {
        if round > 0 && i.is_multiple_of(5) {
            continue;
        }
        let k = format!("key{i:04}").into_bytes();
        db.put(&k, value(i, round)).unwrap();
        model.insert(k, value(i, round));
    }
}

/// Runs `job` with ENOSPC injected at call `skip` of `op` (and every later one), for every
/// `skip` until the job passes without reaching the fault. `setup` fills a fresh database.
fn every_fault_point(
    what: &str,
    setup: &dyn Fn(&DB, &mut Model),
    job: &dyn Fn(&DB) -> sealdb::Result<()>,
) {
    let key = MasterKey::generate();
    let mut failures = 0;
    for op in OPS {
        for skip in 0.. {
            assert!(skip < 500, "{what}: {op:?} never stops failing");
            let here = format!("{what}, ENOSPC at {op:?} #{skip}");
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultFs::new();
            let mut model = BTreeMap::new();
            let db = DB::open(opts(dir.path(), &key, &fs)).unwrap();
            setup(&db, &mut model);
            assert_eq!(orphans(dir.path(), &db, false), Vec::<String>::new(), "{here}: before");
            let before = files(dir.path());
            fs.fail_after(op, skip, Fault::NoSpace, true);
            let result = job(&db);
            let injected = fs.injected();
            if injected == 0 {
                result.unwrap_or_else(|e| panic!("{here}: failed without a fault: {e}"));
                fs.clear();
                drop(db);
                break;
            }
            failures += 1;
            // Whatever happened, nothing the job made is left behind, and reads are right.
            // (An input of a compaction whose new manifest was renamed in but not made durable
            // stays until the next open: it existed before the job.)
            let left: Vec<String> = orphans(dir.path(), &db, true)
                .into_iter()
                .filter(|n| !before.contains(n))
                .collect();
            assert_eq!(left, Vec::<String>::new(), "{here}: orphans");
            check(&db, &model, &format!("{here}, faulted"));
            // Space returns: writable again, unless the failure poisoned the database.
            fs.clear();
            match db.put("after", "space") {
                Ok(()) => {
                    model.insert(b"after".to_vec(), b"space".to_vec());
                    job(&db).unwrap_or_else(|e| panic!("{here}: retry failed: {e}"));
                    assert_eq!(
                        orphans(dir.path(), &db, false),
                        Vec::<String>::new(),
                        "{here}: retry"
                    );
                }
                Err(Error::Poisoned(_)) => {}
                Err(e) => panic!("{here}: unexpected error after the fault: {e}"),
            }
            check(&db, &model, &format!("{here}, after the fault"));
            drop(db);
            let db = DB::open(opts(dir.path(), &key, &fs)).unwrap();
            check(&db, &model, &format!("{here}, reopened"));
            assert_eq!(orphans(dir.path(), &db, false), Vec::<String>::new(), "{here}: reopened");
            put_round(&db, &mut model, 9, 7);
            db.flush().unwrap();
            check(&db, &model, &format!("{here}, written after reopen"));
        }
    }
    assert!(failures >= OPS.len(), "{what}: only {failures} fault points reached");
}

#[test]
fn enospc_at_every_step_of_a_flush() {
    every_fault_point(
        "flush",
        &|db, model| {
            put_round(db, model, 0, 1);
            db.flush().unwrap();
            put_round(db, model, 1, 2);
        },
        &DB::flush,
    );
}

#[test]
fn enospc_at_every_step_of_a_compaction() {
    every_fault_point(
        "compaction",
        &|db, model| {
            put_round(db, model, 0, 1);
            db.flush().unwrap();
            put_round(db, model, 1, 2);
            db.flush().unwrap();
            put_round(db, model, 2, 3);
            db.flush().unwrap();
        },
        &DB::compact,
    );
}
