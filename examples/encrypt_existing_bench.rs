//! Online encryption of an existing database: conversion throughput at the default rate and
//! unthrottled, and foreground read throughput while the background conversion runs against
//! the same reads once it is done.
//!
//! ```sh
//! cargo run --release --example encrypt_existing_bench -- [keys] [seconds]
//! ```
//! Defaults: 200,000 keys of 1 KiB values (in the value log), 10 s of idle reads; reads during
//! the conversion run until it ends (at most three times as long).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use sealdb::{Encryption, MasterKey, Options, WriteBatch, DB};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:012}").into_bytes()
}

fn build(dir: &Path, n: u64) {
    let db = DB::open(tuned(dir)).expect("open plain");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut v = vec![0u8; 1024];
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            rng.fill(&mut v[..]);
            b.put(key(i), &v);
        }
        db.write(b).expect("write");
    }
    db.compact().expect("compact");
    db.close().expect("close");
}

/// Values of 1 KiB go to the value log.
fn tuned(dir: &Path) -> Options {
    Options::new(dir).value_threshold(512)
}

fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Random point reads for `secs` or until `stop` is set; returns reads per second.
fn reads(db: &DB, n: u64, secs: Duration, stop: &AtomicBool) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < secs && !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            let i = rng.gen_range(0..n);
            assert!(db.get(key(i)).expect("get").is_some());
        }
        done += 1000;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let secs = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(10));
    let master = [9u8; 32];
    let root = tempfile::tempdir().expect("tempdir");
    let plain = root.path().join("plain");
    build(&plain, n);
    let bytes = size_of(&plain);
    println!("plaintext database: {n} keys, {:.1} MiB", mib(bytes));

    // Unthrottled: open with encrypt_existing and reencrypt() at once.
    let a = root.path().join("a");
    copy(&plain, &a);
    let t = Instant::now();
    let enc = Encryption::new(MasterKey::from_bytes(master)).encrypt_existing();
    let db = DB::open(tuned(&a).with_encryption(enc)).expect("open a");
    db.reencrypt().expect("reencrypt");
    let el = t.elapsed().as_secs_f64();
    println!("unthrottled: {:.1} MiB in {el:.2} s = {:.1} MiB/s", mib(bytes), mib(bytes) / el);
    drop(db);
    // Idle reads: the same data, encrypted, nothing in the background; a fresh block cache.
    let enc = Encryption::new(MasterKey::from_bytes(master));
    let db = DB::open(tuned(&a).with_encryption(enc)).expect("reopen a");
    let idle = reads(&db, n, secs, &AtomicBool::new(false));
    drop(db);

    // Default rate (16 MiB/s): foreground reads while it runs, conversion progress.
    let b = root.path().join("b");
    copy(&plain, &b);
    let enc = Encryption::new(MasterKey::from_bytes(master)).encrypt_existing();
    let db = DB::open(tuned(&b).with_encryption(enc)).expect("open b");
    let left0 = db.encryption_status().expect("status").plaintext_bytes_left;
    let t = Instant::now();
    let finished = AtomicBool::new(false);
    let mut took = None;
    let during = std::thread::scope(|s| {
        let reader = s.spawn(|| reads(&db, n, secs * 3, &finished));
        while t.elapsed() < secs * 3 {
            if db.encryption_status().expect("status").plaintext_files_left == 0 {
                took = Some(t.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        finished.store(true, Ordering::Relaxed);
        reader.join().expect("reader")
    });
    let left1 = db.encryption_status().expect("status").plaintext_bytes_left;
    let el = took.unwrap_or_else(|| t.elapsed().as_secs_f64());
    println!(
        "default rate: {:.1} MiB converted in {el:.1} s = {:.1} MiB/s ({:.1} MiB left)",
        mib(left0 - left1),
        mib(left0 - left1) / el,
        mib(left1)
    );
    println!(
        "reads/s: {during:.0} during the conversion, {idle:.0} idle (encrypted) = {:.0}%",
        100.0 * during / idle
    );
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1 << 20)
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
    }
}
