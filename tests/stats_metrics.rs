//! Feature `metrics`: `DB::publish_metrics` publishes the figures of `DB::stats` through the
//! `metrics` facade, each labelled with the database directory, and a database with background
//! work publishes them by itself. Run with `cargo test --features metrics --test stats_metrics`.
#![expect(
    clippy::float_cmp,
    reason = "every published figure is a whole number well below 2^53, exact in an f64"
)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use sealdb::{Encryption, MasterKey, Options, DB};

/// The published values of the database at `dir`, by name (and level, for per-level ones).
fn published(snap: &Snapshotter, dir: &Path) -> HashMap<String, f64> {
    let db = dir.display().to_string();
    let mut out = HashMap::new();
    for (key, _, _, value) in snap.snapshot().into_vec() {
        let k = key.key();
        if !k.labels().any(|l| l.key() == "db" && l.value() == db) {
            continue;
        }
        let mut name = k.name().to_string();
        if let Some(level) = k.labels().find(|l| l.key() == "level") {
            name = format!("{name}[{}]", level.value());
        }
        let v = match value {
            DebugValue::Counter(c) => c as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => panic!("{name}: no histogram is published"),
        };
        out.insert(name, v);
    }
    out
}

/// An incompressible value: 1000 bytes for every fourth `i` (to the value log), else 50.
fn value(i: u32, round: u32) -> Vec<u8> {
    let len = if i.is_multiple_of(4) { 1000 } else { 50 };
    let mut x = u64::from(i) << 16 | u64::from(round) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn opts(dir: &Path) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(MasterKey::generate()))
        .memtable_size(1 << 20)
        .value_threshold(500)
        .background_work(false)
}

#[test]
fn publish_metrics_publishes_the_stats() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(opts(dir.path())).unwrap();
    let publish = || metrics::with_local_recorder(&recorder, || db.publish_metrics());
    publish();
    let m0 = published(&snap, dir.path());
    assert_eq!(m0.get("sealdb_flushes_total"), Some(&0.0), "{m0:?}");
    assert_eq!(m0.get("sealdb_level_files[0]"), Some(&0.0));
    assert_eq!(m0.get("sealdb_vlog_segments"), Some(&1.0));
    for i in 0..1000u32 {
        db.put(format!("k{i:05}"), value(i, 0)).unwrap();
    }
    publish();
    let m1 = published(&snap, dir.path());
    assert!(m1["sealdb_memtable_bytes"] > 50_000.0, "{m1:?}");
    assert!(m1["sealdb_vlog_bytes"] > 250_000.0);
    db.flush().unwrap();
    for i in 0..1000u32 {
        db.get(format!("k{i:05}")).unwrap().unwrap();
    }
    db.rotate_data_key().unwrap();
    publish();
    let m2 = published(&snap, dir.path());
    let s = db.stats();
    assert_eq!(m2["sealdb_flushes_total"], 1.0);
    assert_eq!(m2["sealdb_level_files[0]"], 1.0);
    assert_eq!(m2["sealdb_level_bytes[0]"], s.levels[0].bytes as f64);
    assert_eq!(m2["sealdb_memtable_bytes"], 0.0);
    assert_eq!(m2["sealdb_block_cache_misses_total"], s.block_cache_misses as f64);
    assert!(m2["sealdb_block_cache_misses_total"] > 0.0);
    assert_eq!(m2["sealdb_value_cache_misses_total"], 250.0, "one miss per large value");
    assert_eq!(m2["sealdb_reencrypt_files_left"], 2.0, "the table and the first segment");
    assert_eq!(m2["sealdb_reencrypt_bytes_left"], s.reencrypt_bytes_left as f64);
    for name in [
        "sealdb_frozen_memtables",
        "sealdb_flush_running",
        "sealdb_compaction_running",
        "sealdb_gc_running",
        "sealdb_compactions_total",
        "sealdb_gc_segments_collected_total",
        "sealdb_block_cache_hits_total",
        "sealdb_value_cache_hits_total",
        "sealdb_write_stalls_total",
        "sealdb_write_stall_microseconds_total",
        "sealdb_vlog_garbage_bytes",
        "sealdb_vlog_max_garbage_ratio",
    ] {
        assert!(m2.contains_key(name), "{name} not published: {m2:?}");
    }
    // Overwrites make garbage; compact collects it and counts the work.
    for i in (0..1000u32).step_by(4) {
        db.put(format!("k{i:05}"), value(i, 1)).unwrap();
    }
    db.compact().unwrap();
    publish();
    let m3 = published(&snap, dir.path());
    assert!(m3["sealdb_compactions_total"] >= 1.0, "{m3:?}");
    assert!(m3["sealdb_gc_segments_collected_total"] >= 1.0);
    assert!(m3["sealdb_flushes_total"] >= 2.0);
}

#[test]
fn background_work_publishes_by_itself() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder.install().expect("the only global recorder of this test binary");
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(opts(dir.path()).background_work(true)).unwrap();
    db.put("k", "v").unwrap();
    db.flush().unwrap();
    let t = Instant::now();
    // The recorder's snapshot is read value by value while the background thread may be
    // publishing: wait until both figures of the flush have arrived.
    loop {
        let m = published(&snap, dir.path());
        let flushed = m.get("sealdb_flushes_total") == Some(&1.0);
        if flushed && m.get("sealdb_level_files[0]") == Some(&1.0) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the flush not published in 10 s: {m:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
