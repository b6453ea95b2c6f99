//! The cost of a named keyspace's own key on large values: in an encrypted database a value of
//! a named keyspace in the value log is sealed twice (under the keyspace's entry key, then
//! under the segment's key), a value of the default keyspace once. Puts and cached-out gets of
//! 4 KiB values in each, AES-256-GCM.
//!
//! `cargo bench --bench keyspace_values`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sealdb::{Encryption, MasterKey, Options, DB};

const KEYS: u64 = 4_000;
const VALUE: usize = 4096;

fn value(i: u64) -> Vec<u8> {
    // Incompressible, so compression does not hide the sealing cost.
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..VALUE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn keyspace_values(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(
        Options::new(dir.path())
            .with_encryption(Encryption::new(MasterKey::from_bytes([9; 32])))
            .value_threshold(1024)
            // A cache smaller than the data: gets open entries, not cached values.
            .cache_size(1 << 20),
    )
    .unwrap();
    let named = db.keyspace("named").unwrap();
    let values: Vec<Vec<u8>> = (0..KEYS).map(value).collect();
    let mut group = c.benchmark_group("keyspace_values_4k");
    group.throughput(Throughput::Bytes(VALUE as u64));
    let mut i = 0u64;
    group.bench_function("put_default", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            db.put(i.to_be_bytes(), &values[i as usize]).unwrap();
        });
    });
    group.bench_function("put_named", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            named.put(i.to_be_bytes(), &values[i as usize]).unwrap();
        });
    });
    for n in 0..KEYS {
        db.put(n.to_be_bytes(), &values[n as usize]).unwrap();
        named.put(n.to_be_bytes(), &values[n as usize]).unwrap();
    }
    db.flush().unwrap();
    let mut j = 0u64;
    group.bench_function("get_default", |b| {
        b.iter(|| {
            j = (j + 7) % KEYS;
            black_box(db.get(j.to_be_bytes()).unwrap());
        });
    });
    group.bench_function("get_named", |b| {
        b.iter(|| {
            j = (j + 7) % KEYS;
            black_box(named.get(j.to_be_bytes()).unwrap());
        });
    });
    group.finish();
}

criterion_group!(benches, keyspace_values);
criterion_main!(benches);
