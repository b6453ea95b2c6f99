//! Opens an encrypted database, writes and reads back 100,000 keys, shows that no plaintext is
//! on disk, reopens it and prints a short summary.
//!
//! `cargo run --release --example quickstart [DIR]` (default: a fresh directory under the
//! system temp directory, removed at the end).

use std::path::{Path, PathBuf};
use std::time::Instant;

use sealdb::{Encryption, MasterKey, Options, DB};

const N: u32 = 100_000;

fn key(i: u32) -> String {
    format!("user:{i:08}")
}
fn value(i: u32) -> String {
    format!("quickstart-secret-value-{i:08}-{}", "x".repeat(40))
}

/// Counts files under `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> std::io::Result<(usize, usize)> {
    let (mut files, mut hits) = (0, 0);
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_file() {
            files += 1;
            let data = std::fs::read(&p)?;
            if data.windows(needle.len()).any(|w| w == needle) {
                hits += 1;
            }
        }
    }
    Ok((files, hits))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, temp): (PathBuf, bool) = match std::env::args().nth(1) {
        Some(d) => (PathBuf::from(d), false),
        None => {
            (std::env::temp_dir().join(format!("sealdb-quickstart-{}", std::process::id())), true)
        }
    };
    // In a real deployment the key comes from MasterKey::from_env / from_file / a KMS.
    let master = MasterKey::generate();
    let open = || DB::open(Options::new(&dir).with_encryption(Encryption::new(master.clone())));

    let db = open()?;
    let t = Instant::now();
    for i in 0..N {
        db.put(key(i), value(i))?;
    }
    db.sync()?;
    let write_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    for i in 0..N {
        let got = db.get(key(i))?;
        assert_eq!(got.as_deref(), Some(value(i).as_bytes()), "key {i} read back wrong");
    }
    let read_secs = t.elapsed().as_secs_f64();

    // While open (WAL and memtable data), then after flush and compaction (SSTables).
    let needles: [&[u8]; 3] = [b"quickstart-secret-value", b"user:00000042", b"xxxxxxxxxxxxxxxx"];
    let mut plaintext_hits = 0;
    for stage in ["open", "flushed"] {
        if stage == "flushed" {
            db.flush()?;
            db.compact()?;
        }
        for n in needles {
            plaintext_hits += files_containing(&dir, n)?.1;
        }
    }
    let status = db.encryption_status().ok_or("database should be encrypted")?;
    db.close()?;

    let db = open()?;
    let count = db.iter().count();
    let scanned_ok = db.iter().all(|r| r.is_ok());
    assert_eq!(db.get(key(N - 1))?.as_deref(), Some(value(N - 1).as_bytes()));
    let (files, _) = files_containing(&dir, b"-")?;
    let bytes: u64 =
        std::fs::read_dir(&dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    db.close()?;

    println!("sealdb quickstart: {}", dir.display());
    println!("  cipher                 {:?}, data key id {}", status.cipher, status.current_key_id);
    println!("  wrote {N} keys         {:.0} puts/s", f64::from(N) / write_secs);
    println!("  read back {N} keys     {:.0} gets/s, all correct", f64::from(N) / read_secs);
    println!(
        "  plaintext on disk      {plaintext_hits} hits for key/value markers in {files} files"
    );
    println!("  after reopen           {count} keys iterated, all readable: {scanned_ok}");
    println!("  directory size         {:.1} MiB", bytes as f64 / f64::from(1u32 << 20));
    if plaintext_hits != 0 || count != N as usize || !scanned_ok {
        return Err("quickstart check failed".into());
    }
    if temp {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
