//! An uncontended transaction (read 2 keys, write 2) against the same work as two `get`s and
//! a plain `WriteBatch`, and the cost of the conflict window to plain writes while a
//! transaction is open.
//!
//! `cargo bench --bench txn`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sealdb::{Options, WriteBatch, DB};

const KEYS: u64 = 10_000;

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn txn(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(Options::new(dir.path())).unwrap();
    let mut load = WriteBatch::new();
    for n in 0..KEYS {
        load.put(key(n), [0u8; 100]);
    }
    db.write(load).unwrap();
    let mut group = c.benchmark_group("read2_write2");
    let mut next = 0u64;
    group.bench_function("plain_batch", |bench| {
        bench.iter(|| {
            next = (next + 2) % KEYS;
            let first = db.get(key(next)).unwrap().unwrap();
            let second = db.get(key(next + 1)).unwrap().unwrap();
            let mut batch = WriteBatch::new();
            batch.put(key(next), &second);
            batch.put(key(next + 1), &first);
            db.write(batch).unwrap();
        });
    });
    group.bench_function("transaction", |bench| {
        bench.iter(|| {
            next = (next + 2) % KEYS;
            let mut txn = db.transaction();
            let first = txn.get(key(next)).unwrap().unwrap();
            let second = txn.get(key(next + 1)).unwrap().unwrap();
            txn.put(key(next), &second);
            txn.put(key(next + 1), &first);
            txn.commit().unwrap();
        });
    });
    group.bench_function("plain_batch_while_a_transaction_is_open", |bench| {
        let open = db.transaction();
        bench.iter(|| {
            next = (next + 2) % KEYS;
            let first = db.get(key(next)).unwrap().unwrap();
            let second = db.get(key(next + 1)).unwrap().unwrap();
            let mut batch = WriteBatch::new();
            batch.put(key(next), &second);
            batch.put(key(next + 1), &first);
            db.write(batch).unwrap();
        });
        black_box(open);
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = txn
}
criterion_main!(benches);
