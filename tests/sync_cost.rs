//! What a synced write costs in device flushes: one per commit, the WAL's, unless the commit
//! put values in the value log (then the segment's too), and none for a `sync()` with nothing
//! new to make durable.

use std::sync::Arc;

use sealdb::io::FaultFs;
use sealdb::{Encryption, MasterKey, Options, DB};

fn open(dir: &std::path::Path, key: &MasterKey, fs: &FaultFs) -> DB {
    let opts = Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .with_fs(Arc::new(fs.clone()))
        .value_threshold(1024)
        .sync_writes(true)
        .background_work(false);
    DB::open(opts).unwrap()
}

#[test]
fn a_synced_small_write_costs_one_flush_and_a_large_one_two() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let key = MasterKey::generate();
    let db = open(dir.path(), &key, &fs);

    let before = fs.file_syncs();
    for i in 0..50u32 {
        db.put(i.to_be_bytes(), b"small value").unwrap();
    }
    assert_eq!(fs.file_syncs() - before, 50, "one WAL fsync per synced small write");

    let before = fs.file_syncs();
    for i in 0..20u32 {
        db.put(i.to_be_bytes(), vec![i as u8; 4096]).unwrap();
    }
    assert_eq!(fs.file_syncs() - before, 40, "value log, then WAL, per synced large write");

    // Everything is durable already: sync() has nothing to flush.
    let before = fs.file_syncs();
    db.sync().unwrap();
    db.sync().unwrap();
    assert_eq!(fs.file_syncs(), before);
    drop(db);

    // And every write is there after a reopen.
    let db = open(dir.path(), &key, &FaultFs::new());
    for i in 0..50u32 {
        let want = if i < 20 { vec![i as u8; 4096] } else { b"small value".to_vec() };
        assert_eq!(db.get(i.to_be_bytes()).unwrap().as_deref(), Some(&want[..]));
    }
}
