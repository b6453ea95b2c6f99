//! Times `DB::checkpoint`, a first and a second (incremental) `Backups::create` to a directory,
//! and a restore, against `cp -r` of the same data directory.
//!
//! `cargo run --release --example backup_bench -- [MiB] [scratch dir]` (default 256 MiB under
//! the system temp directory). The database is AES-256-GCM, values of 1 KiB with half of them
//! in the value log, written through the public API.

use std::path::PathBuf;
use std::time::Instant;

use sealdb::{Backups, Encryption, MasterKey, Options, DB};

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len())
        .sum()
}

fn main() -> sealdb::Result<()> {
    let mib: u64 = std::env::args().nth(1).map_or(256, |a| a.parse().expect("MiB"));
    let root = std::env::args().nth(2).map_or_else(std::env::temp_dir, PathBuf::from);
    let scratch = root.join(format!("sealdb-backup-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let key = MasterKey::generate();
    let db = DB::open(
        Options::new(scratch.join("db"))
            .with_encryption(Encryption::new(key))
            .value_threshold(1024),
    )?;
    let mut value = vec![0u8; 1024];
    let n = mib << 10;
    for i in 0..n {
        // Incompressible values (xorshift), half of them long enough for the value log.
        let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for chunk in value.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let len = if i % 2 == 0 { 1024 } else { 1000 };
        db.put(format!("key{i:012}"), &value[..len])?;
    }
    db.flush()?;
    let size = dir_bytes(&scratch.join("db"));
    let mb = size as f64 / 1e6;
    println!("database: {mb:.1} MB in {}", scratch.join("db").display());

    let t = Instant::now();
    db.checkpoint(scratch.join("checkpoint"))?;
    println!("checkpoint: {:.3} s", t.elapsed().as_secs_f64());

    let backups = Backups::dir(scratch.join("backups"))?;
    let t = Instant::now();
    let first = backups.create(&db)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "backup 1: {s:.2} s, {:.0} MB/s ({} bytes sent)",
        first.new_bytes as f64 / 1e6 / s,
        first.new_bytes
    );
    for i in 0..1000u64 {
        db.put(format!("new{i:06}"), &value)?;
    }
    let t = Instant::now();
    let second = backups.create(&db)?;
    println!(
        "backup 2 (1000 new keys): {:.2} s, {} of {} bytes sent",
        t.elapsed().as_secs_f64(),
        second.new_bytes,
        second.bytes
    );
    drop(db);
    let t = Instant::now();
    backups.restore(first.id, scratch.join("restored"))?;
    let s = t.elapsed().as_secs_f64();
    println!("restore 1: {s:.2} s, {:.0} MB/s", first.bytes as f64 / 1e6 / s);

    let t = Instant::now();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(scratch.join("db"))
        .arg(scratch.join("cp-copy"))
        .status()?;
    assert!(status.success());
    let s = t.elapsed().as_secs_f64();
    println!("cp -r: {s:.2} s, {:.0} MB/s (no fsync)", mb / s);
    let t = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cp -r '{}' '{}' && sync",
            scratch.join("db").display(),
            scratch.join("cp-synced").display()
        ))
        .status()?;
    assert!(status.success());
    let s = t.elapsed().as_secs_f64();
    println!("cp -r && sync: {s:.2} s, {:.0} MB/s", mb / s);
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}
