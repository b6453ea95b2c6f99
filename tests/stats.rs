//! `DB::stats` and `DB::approximate_size` under a scripted workload: each step moves the
//! figures it should, and only those.

use std::path::Path;

use sealdb::{Encryption, MasterKey, Options, Stats, DB};

fn opts(dir: &Path, key: &MasterKey) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .memtable_size(1 << 20)
        .value_threshold(500)
        .cache_size(8 << 20)
        .background_work(false)
}

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

fn key(i: u32) -> String {
    format!("key{i:05}")
}

/// Value-log bytes not known to be garbage, headers included.
fn vlog_live(s: &Stats) -> u64 {
    s.vlog_segments.iter().map(|g| g.bytes - g.garbage).sum()
}

fn table_bytes(s: &Stats) -> u64 {
    s.levels.iter().map(|l| l.bytes).sum()
}

/// `approximate_size` of everything: the tables and the live value-log bytes (segment
/// headers, at most 256 bytes each, not counted).
fn assert_total_size(db: &DB, s: &Stats, what: &str) {
    let total = db.approximate_size::<&[u8], _>(..).unwrap();
    let (tables, live) = (table_bytes(s), vlog_live(s));
    let headers = 256 * s.vlog_segments.len() as u64;
    assert!(
        total <= tables + live && total + headers >= tables + live,
        "{what}: {total} is not tables {tables} + value log {live}"
    );
}

fn files(s: &Stats) -> Vec<u64> {
    s.levels.iter().map(|l| l.files).collect()
}

fn read_all(db: &DB, n: u32, round: u32) {
    for i in 0..n {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i, round)));
    }
}

#[test]
fn counters_follow_a_scripted_workload() {
    let dir = tempfile::tempdir().unwrap();
    let k = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &k)).unwrap();
    let s0 = db.stats();
    assert_eq!(s0.levels.len(), 7);
    assert_eq!(files(&s0), vec![0; 7]);
    assert_eq!(s0.memtable_bytes, 0);
    assert_eq!(s0.vlog_segments.len(), 1);
    assert!(s0.vlog_segments[0].active && s0.vlog_segments[0].garbage == 0);
    assert_eq!(db.approximate_size::<&[u8], _>(..).unwrap(), 0);
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 0);
    assert_eq!((s0.flushes, s0.compactions, s0.gc_segments_collected), (0, 0, 0));
    assert!(!s0.flush_running && !s0.gc_running && !s0.compaction_running);

    // Writes fill the memtable and the active segment; nothing reaches a table.
    for i in 0..2000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let s1 = db.stats();
    assert!(s1.memtable_bytes > 2000 * 50, "memtable bytes {}", s1.memtable_bytes);
    assert!(s1.vlog_segments[0].bytes >= s0.vlog_segments[0].bytes + 500 * 1000);
    assert_eq!(files(&s1), vec![0; 7]);
    // The memtable's entries are counted one by one.
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    assert_eq!(db.approximate_keys(key(100).as_bytes()..=key(199).as_bytes()).unwrap(), 100);

    // A flush moves them into one L0 table.
    db.flush().unwrap();
    let s2 = db.stats();
    assert_eq!(s2.memtable_bytes, 0);
    assert_eq!(s2.levels[0].files, 1);
    assert_eq!(s2.flushes, 1);
    assert_total_size(&db, &s2, "after the flush");
    assert!(db.approximate_size::<&[u8], _>(..).unwrap() > s2.levels[0].bytes + 500 * 1000);
    // The table's entries: all of them for the whole range, a block-grained share of a part.
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    let some = db.approximate_keys(key(100).as_bytes()..=key(199).as_bytes()).unwrap();
    assert!((50..=300).contains(&some), "keys 100..=199 estimated at {some}");
    assert_eq!(db.approximate_keys(b"zzz".as_slice()..).unwrap(), 0);

    // Reads: the first pass misses the cache, the second hits it.
    read_all(&db, 2000, 0);
    let s3 = db.stats();
    assert!(s3.cache_misses > s2.cache_misses, "first pass: no miss counted");
    assert!(s3.block_cache_misses > s2.block_cache_misses, "first pass: no block miss");
    assert!(s3.value_cache_misses >= s2.value_cache_misses + 500, "a miss per large value");
    assert_eq!(s3.cache_misses, s3.block_cache_misses + s3.value_cache_misses);
    read_all(&db, 2000, 0);
    let s4 = db.stats();
    assert!(s4.cache_hits >= s3.cache_hits + 2000, "second pass: {} hits", s4.cache_hits);
    assert!(s4.cache_misses - s3.cache_misses < 2000 / 10, "second pass missed too often");
    assert!(s4.value_cache_hits >= s3.value_cache_hits + 500, "second pass: value hits");
    assert!(s4.block_cache_hits >= s3.block_cache_hits + 2000, "second pass: block hits");
    assert_eq!(s4.cache_hits, s4.block_cache_hits + s4.value_cache_hits);

    // Overwrites, flushed and compacted (no GC in compact_range): the old values become
    // garbage of the first segment, and the tables move to L1.
    for i in (0..2000).step_by(4) {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    let s5 = db.stats();
    assert_eq!(s5.levels[0].files, 0);
    assert!(s5.levels[1].files >= 1);
    let first = s5.vlog_segments.iter().find(|s| s.number == s0.vlog_segments[0].number);
    let garbage = first.expect("first segment still live").garbage;
    assert!(garbage >= 500 * 1000, "garbage {garbage}");
    assert_eq!(s5.write_stalls, 0, "no background work, no stall");
    assert!(!s5.compaction_running);
    assert_eq!(s5.flushes, 2);
    assert!(s5.compactions >= 1, "compact_range ran no compaction");

    // Sizes of ranges: all, part, none.
    let all = db.approximate_size::<&[u8], _>(..).unwrap();
    assert_total_size(&db, &s5, "after compact_range");
    let none = db.approximate_size(b"zzz".as_slice()..).unwrap();
    assert_eq!(none, 0);
    let part = db.approximate_size(key(0).as_bytes()..=key(10).as_bytes()).unwrap();
    assert!(part > 0 && part <= all);

    // `compact` collects the garbage; a watcher sees the work in progress.
    let seen = std::sync::Mutex::new((false, false));
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let s = db.stats();
                let mut seen = seen.lock().unwrap();
                seen.0 |= s.compaction_running;
                seen.1 |= s.gc_running;
            }
        });
        db.compact().unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let s6 = db.stats();
    assert!(s6.vlog_segments.iter().all(|s| s.number != s0.vlog_segments[0].number));
    assert!(s6.gc_segments_collected >= 1, "no segment collected");
    assert!(s6.compactions > s5.compactions);
    assert!(!s6.gc_running && !s6.compaction_running && !s6.flush_running);
    assert_eq!(*seen.lock().unwrap(), (true, true), "(compaction, GC) never seen running");
    assert_total_size(&db, &s6, "after compact");
}

#[test]
fn reencryption_progress_is_readable() {
    let dir = tempfile::tempdir().unwrap();
    let k = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &k)).unwrap();
    for i in 0..2000 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let s = db.stats();
    assert_eq!((s.reencrypt_files_left, s.reencrypt_bytes_left), (0, 0));
    db.rotate_data_key().unwrap();
    let s = db.stats();
    // The table and the first segment are sealed under the retired key.
    assert_eq!(s.reencrypt_files_left, 2, "{s:?}");
    let expected = s.levels[0].bytes + s.vlog_segments[0].bytes;
    assert_eq!(s.reencrypt_bytes_left, expected);
    let status = db.encryption_status().unwrap();
    assert_eq!(s.reencrypt_bytes_left, status.reencrypt_bytes_left);
    db.reencrypt().unwrap();
    let s = db.stats();
    assert_eq!((s.reencrypt_files_left, s.reencrypt_bytes_left), (0, 0));
    // Unencrypted: nothing to re-encrypt, ever.
    let plain = tempfile::tempdir().unwrap();
    let db = DB::open(Options::new(plain.path()).background_work(false)).unwrap();
    db.put("k", "v").unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().reencrypt_files_left, 0);
}

#[test]
fn write_stalls_are_counted_with_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let k = MasterKey::generate();
    let db = DB::open(
        Options::new(dir.path())
            .with_encryption(Encryption::new(k))
            .memtable_size(64 << 10)
            .max_immutable_memtables(1)
            .l0_triggers(1, 1, 2)
            .value_threshold(usize::MAX),
    )
    .unwrap();
    for i in 0..10_000 {
        db.put(key(i % 5000), value(i, 7)).unwrap();
    }
    let s = db.stats();
    assert!(s.write_stalls > 0, "no stall counted under L0 slowdown at one file");
    assert!(!s.write_stall_time.is_zero());
}
