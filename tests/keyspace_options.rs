//! Per-keyspace options: a keyspace's value threshold decides where its values go, its
//! compression and bloom bits shape the tables written for it, other keyspaces keep the
//! database's options, and `Options::keyspace_options` puts them in effect at open.

use std::path::Path;

use sealdb::{Encryption, KeyspaceOptions, MasterKey, Options, DB};

fn options(dir: &Path) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(MasterKey::from_bytes([0x33; 32])))
        .value_threshold(2048)
        .memtable_size(8 << 20)
}

fn vlog_bytes(db: &DB) -> u64 {
    db.stats().vlog_segments.iter().map(|s| s.bytes).sum()
}

fn table_bytes(db: &DB) -> u64 {
    db.stats().levels.iter().map(|l| l.bytes).sum()
}

/// `n` bytes that do not compress.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

#[test]
fn a_keyspace_value_threshold_decides_where_its_values_go() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(options(dir.path())).unwrap();
    let blobs = db.keyspace_with("blobs", KeyspaceOptions::new().value_threshold(64)).unwrap();
    let rows =
        db.keyspace_with("rows", KeyspaceOptions::new().value_threshold(usize::MAX)).unwrap();
    let plain = db.keyspace("plain").unwrap();

    // 1 KiB values: below the database's threshold, above "blobs"'s.
    let v1k = noise(1024, 1);
    let before = vlog_bytes(&db);
    for i in 0..100 {
        plain.put(key(i), &v1k).unwrap();
    }
    assert_eq!(vlog_bytes(&db), before, "plain keyspace: 1 KiB values stay inline");
    for i in 0..100 {
        blobs.put(key(i), &v1k).unwrap();
    }
    let after_blobs = vlog_bytes(&db);
    assert!(after_blobs >= before + 100 * 1024, "blobs: values go to the value log");
    // 8 KiB values: above the database's threshold, below "rows"'s.
    let v8k = noise(8192, 2);
    for i in 0..50 {
        rows.put(key(i), &v8k).unwrap();
    }
    assert_eq!(vlog_bytes(&db), after_blobs, "rows: 8 KiB values stay inline");
    for i in 0..50 {
        db.put(key(i), &v8k).unwrap();
    }
    assert!(vlog_bytes(&db) >= after_blobs + 50 * 8192, "default keyspace: value log");

    db.flush().unwrap();
    for i in 0..100 {
        assert_eq!(plain.get(key(i)).unwrap().as_deref(), Some(&v1k[..]));
        assert_eq!(blobs.get(key(i)).unwrap().as_deref(), Some(&v1k[..]));
    }
    for i in 0..50 {
        assert_eq!(rows.get(key(i)).unwrap().as_deref(), Some(&v8k[..]));
        assert_eq!(db.get(key(i)).unwrap().as_deref(), Some(&v8k[..]));
    }
}

/// Table bytes written by a flush of `n` compressible 512-byte values into `name`.
fn flushed_bytes(db: &DB, name: &str, n: u32) -> u64 {
    let ks = db.keyspace(name).unwrap();
    let before = table_bytes(db);
    for i in 0..n {
        ks.put(key(i), &format!("{name}:{i:06}:").repeat(60).as_bytes()[..512]).unwrap();
    }
    db.flush().unwrap();
    table_bytes(db) - before
}

#[test]
fn compression_and_bloom_bits_per_keyspace_at_open_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |d: &Path| {
        options(d)
            .background_work(false)
            .keyspace_options("raw", KeyspaceOptions::new().compression(false))
            .keyspace_options("nofilter", KeyspaceOptions::new().bloom_bits_per_key(0))
            .keyspace_options("bigfilter", KeyspaceOptions::new().bloom_bits_per_key(32))
    };
    for round in 0..2 {
        let db = DB::open(opts(dir.path())).unwrap();
        let zipped = flushed_bytes(&db, "zipped", 2000);
        let raw = flushed_bytes(&db, "raw", 2000);
        assert!(raw > 4 * zipped, "round {round}: raw {raw} vs compressed {zipped}");
        let small = flushed_bytes(&db, "nofilter", 20_000);
        let big = flushed_bytes(&db, "bigfilter", 20_000);
        // 32 bits per key is 80 KB of filter for 20,000 keys; no filter is none.
        assert!(big >= small + 60_000, "round {round}: 32-bit filter {big} vs none {small}");
        let ks = db.keyspace("raw").unwrap();
        assert_eq!(
            ks.get(key(7)).unwrap().unwrap(),
            "raw:000007:".repeat(60).as_bytes()[..512].to_vec()
        );
    }
}
