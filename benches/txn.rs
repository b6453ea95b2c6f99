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
    let mut b = WriteBatch::new();
    for i in 0..KEYS {
        b.put(key(i), [0u8; 100]);
    }
    db.write(b).unwrap();
    let mut group = c.benchmark_group("read2_write2");
    let mut i = 0u64;
    group.bench_function("plain_batch", |bench| {
        bench.iter(|| {
            i = (i + 2) % KEYS;
            let a = db.get(key(i)).unwrap().unwrap();
            let b2 = db.get(key(i + 1)).unwrap().unwrap();
            let mut b = WriteBatch::new();
            b.put(key(i), &b2);
            b.put(key(i + 1), &a);
            db.write(b).unwrap();
        });
    });
    group.bench_function("transaction", |bench| {
        bench.iter(|| {
            i = (i + 2) % KEYS;
            let mut t = db.transaction();
            let a = t.get(key(i)).unwrap().unwrap();
            let b2 = t.get(key(i + 1)).unwrap().unwrap();
            t.put(key(i), &b2);
            t.put(key(i + 1), &a);
            t.commit().unwrap();
        });
    });
    group.bench_function("plain_batch_while_a_transaction_is_open", |bench| {
        let open = db.transaction();
        bench.iter(|| {
            i = (i + 2) % KEYS;
            let a = db.get(key(i)).unwrap().unwrap();
            let b2 = db.get(key(i + 1)).unwrap().unwrap();
            let mut b = WriteBatch::new();
            b.put(key(i), &b2);
            b.put(key(i + 1), &a);
            db.write(b).unwrap();
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
