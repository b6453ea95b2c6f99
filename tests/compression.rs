//! `Options::compression(false)` covers every file kind: no sealed block of any WAL, SSTable,
//! value-log segment or manifest says it is compressed. With compression on, the same workload
//! does produce compressed blocks of each log and table kind, so the check can fail.
//!
//! Files are walked with the public sealed-block header parser (`sealdb::seal::parse_header`,
//! as the fuzz targets use it), following docs/format.md: each file starts with the 64 clear
//! bytes of its file header, followed by sealed blocks back to back (the header's check block
//! first); an SSTable ends with a 12-byte trailer that is not a block.

use std::collections::BTreeMap;
use std::path::Path;

use sealdb::seal::{parse_header, FILE_HEADER_LEN};
use sealdb::{Encryption, MasterKey, Options, WriteBatch, DB};

/// Per file kind: (blocks, compressed blocks).
type Census = BTreeMap<&'static str, (usize, usize)>;

fn kind_of(name: &str) -> Option<&'static str> {
    if name == "MANIFEST" {
        return Some("manifest");
    }
    match name.rsplit_once('.')?.1 {
        "wal" => Some("wal"),
        "sst" => Some("sst"),
        "vlog" => Some("vlog"),
        _ => None,
    }
}

/// Walks every sealed block of every sealed file in `dir`.
fn census(dir: &Path) -> Census {
    let mut out = Census::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if Path::new(&name).extension().is_some_and(|e| e.eq_ignore_ascii_case("tmp")) {
            continue; // an unfinished rewrite; its finished form is walked
        }
        let Some(kind) = kind_of(&name) else {
            // KEYS (one AES-GCM body, never compressed), AUDIT.log (text), LOCK (empty).
            assert!(["KEYS", "AUDIT.log", "LOCK"].contains(&name.as_str()), "unexpected {name}");
            continue;
        };
        let bytes = std::fs::read(e.path()).unwrap();
        let end = if kind == "sst" { bytes.len() - 12 } else { bytes.len() };
        let mut pos = FILE_HEADER_LEN;
        let entry = out.entry(kind).or_default();
        while pos < end {
            if kind == "wal" && bytes[pos..end].iter().all(|&b| b == 0) {
                break; // a WAL allocated ahead: zeros past its last record
            }
            let h = parse_header(&bytes[pos..end])
                .unwrap_or_else(|e| panic!("{name} at {pos}: {}", e.reason()));
            entry.0 += 1;
            entry.1 += usize::from(h.compressed());
            pos += h.sealed_len();
        }
        assert!(pos == end || kind == "wal", "{name}: blocks do not end at the end of the file");
    }
    out
}

/// A compressible workload leaving every kind of file behind; returns the census taken while
/// the database is open (the newest WAL holds records) and after it is closed.
fn run(dir: &Path, compression: bool, encrypted: bool) -> Census {
    let mut opts = Options::new(dir)
        .compression(compression)
        .memtable_size(64 << 10)
        .value_threshold(1024)
        .vlog_segment_size(64 << 10)
        .target_file_size(64 << 10)
        .background_work(false);
    if encrypted {
        opts = opts.with_encryption(Encryption::new(MasterKey::generate()));
    }
    let db = DB::open(opts).unwrap();
    let text = "the quick brown fox jumps over the lazy dog; ";
    for round in 0..3 {
        let mut batch = WriteBatch::new();
        for i in 0..200 {
            let reps = if i % 4 == 0 { 60 } else { 4 };
            batch.put(format!("key{i:05}"), format!("{round} {text}").repeat(reps));
            if batch.len() == 20 {
                db.write(std::mem::take(&mut batch)).unwrap();
            }
        }
        db.write(batch).unwrap();
        db.flush().unwrap();
    }
    db.compact().unwrap();
    // Leave records in the live WAL.
    let mut batch = WriteBatch::new();
    for i in 0..20 {
        batch.put(format!("tail{i:03}"), text.repeat(3));
    }
    db.write(batch).unwrap();
    let mut c = census(dir);
    db.close().unwrap();
    for (k, (n, z)) in census(dir) {
        let e = c.entry(k).or_default();
        e.0 = e.0.max(n);
        e.1 = e.1.max(z);
    }
    c
}

#[test]
fn compression_off_leaves_no_compressed_block_in_any_file() {
    for encrypted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let c = run(dir.path(), false, encrypted);
        for kind in ["wal", "sst", "vlog", "manifest"] {
            let (blocks, compressed) = c.get(kind).copied().unwrap_or_default();
            assert!(blocks > 1, "encrypted {encrypted}: no {kind} block walked: {c:?}");
            assert_eq!(compressed, 0, "encrypted {encrypted}: compressed {kind} blocks: {c:?}");
        }
    }
}

#[test]
fn compression_on_compresses_every_log_and_table_kind() {
    for encrypted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let c = run(dir.path(), true, encrypted);
        for kind in ["wal", "sst", "vlog"] {
            let (blocks, compressed) = c.get(kind).copied().unwrap_or_default();
            assert!(
                compressed > 0,
                "encrypted {encrypted}: no compressed {kind} block among {blocks}: {c:?}"
            );
        }
    }
}
