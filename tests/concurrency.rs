//! Concurrency: writers and readers on one `Arc<DB>` while flushes and compactions run in the
//! background (reads see only written values, never older than what they saw before nor older
//! than writes that had returned), and snapshots that stay frozen through overwrites,
//! deletes, flushes and compactions.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use common::{
    check_gets, check_model, check_scan, collect, describe_opt, describe_range, describe_value,
    hex_key, in_range, Mode, Model,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sealdb::{MasterKey, Options, Snapshot, WriteBatch, DB};

// `DB` is shared between threads; errors travel between them.
const _: fn() = || {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<DB>();
    send_sync::<Arc<DB>>();
    send_sync::<sealdb::Error>();
};

const WRITERS: usize = 4;
const READERS: usize = 3;
const KEYS_PER_WRITER: u32 = 250;
/// Every writer writes every one of its keys once per round; the version is the round.
const ROUNDS: u64 = 30;

fn open(path: &Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key)
        .memtable_size(64 << 10)
        .block_size(1 << 10)
        .target_file_size(64 << 10)
        .level_base_size(256 << 10)
        .cache_size(512 << 10)
        .l0_triggers(2, 4, 8)
        // About half the values (25 to 185 bytes) go to the value log: writers compress
        // those before they queue, at once, and the leader seals them.
        .value_threshold(100)
        .background_work(true);
    DB::open(o).unwrap_or_else(|e| panic!("open: {e}"))
}

fn ckey(w: usize, i: u32) -> Vec<u8> {
    format!("w{w}/k{i:04}").into_bytes()
}

/// Keys that are deleted in even rounds and written in odd ones.
fn is_delete_key(i: u32) -> bool {
    i.is_multiple_of(10)
}

/// Whether key `i` is absent at `version` (0 is before the first write).
fn absent_at(i: u32, version: u64) -> bool {
    version == 0 || (is_delete_key(i) && version.is_multiple_of(2))
}

/// key ‖ '#' ‖ version (u64 BE) ‖ a filler determined by key and version.
fn cvalue(key: &[u8], version: u64) -> Vec<u8> {
    let mut v = key.to_vec();
    v.push(b'#');
    v.extend_from_slice(&version.to_be_bytes());
    let h = key.iter().fold(version.wrapping_mul(0x9E37_79B9_7F4A_7C15), |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    });
    let len = 16 + (h % 160) as usize;
    v.extend((0..len).map(|j| (h >> (j % 8)) as u8 ^ j as u8));
    v
}

/// The version in a value, after checking the value is exactly one that was written for `key`.
fn parse_version(key: &[u8], value: &[u8]) -> Result<u64, String> {
    let n = key.len();
    if value.len() < n + 9 || &value[..n] != key || value[n] != b'#' {
        return Err(format!(
            "value {} does not belong to key {}",
            describe_value(value),
            hex_key(key)
        ));
    }
    let version = u64::from_be_bytes(value[n + 1..n + 9].try_into().expect("8 bytes"));
    if value != cvalue(key, version).as_slice() {
        return Err(format!("value {} of key {} is garbled", describe_value(value), hex_key(key)));
    }
    Ok(version)
}

/// Per-writer progress: the round it has started and the last round it has finished.
#[derive(Default)]
struct Progress {
    started: AtomicU64,
    done: AtomicU64,
}

/// Checks one observation of key `i` of a writer: `got` read after round `done` had finished
/// and before round `started` + 1 began, by a reader that earlier saw version `lb` or later.
/// Returns the new lower bound.
fn check_observation(
    i: u32,
    key: &[u8],
    got: Option<&[u8]>,
    lb: u64,
    done: u64,
    started: u64,
) -> Result<u64, String> {
    let lo = lb.max(done);
    match got {
        Some(v) => {
            let version = parse_version(key, v)?;
            if version < lo || version > started {
                return Err(format!(
                    "key {} has version {version}, outside [{lo}, {started}] (this reader saw \
                     {lb}, round {done} had finished, round {started} had started)",
                    hex_key(key)
                ));
            }
            if absent_at(i, version) {
                return Err(format!(
                    "key {} has version {version}, which deleted it",
                    hex_key(key)
                ));
            }
            Ok(version)
        }
        None => match (lo..=started).find(|&v| absent_at(i, v)) {
            Some(v) => Ok(v),
            None => Err(format!(
                "key {} is missing, but every version in [{lo}, {started}] has it (this reader \
                 saw {lb}, round {done} had finished)",
                hex_key(key)
            )),
        },
    }
}

fn writer(db: &DB, w: usize, seed: u64, progress: &Progress) {
    let mut rng = StdRng::seed_from_u64(seed ^ (w as u64 + 1).wrapping_mul(0x51_7CC1));
    let mut order: Vec<u32> = (0..KEYS_PER_WRITER).collect();
    for round in 1..=ROUNDS {
        progress.started.store(round, Ordering::SeqCst);
        order.shuffle(&mut rng);
        let mut rest = &order[..];
        while !rest.is_empty() {
            let n = rng.gen_range(1..=16).min(rest.len());
            let (group, tail) = rest.split_at(n);
            rest = tail;
            if rng.gen_bool(0.25) {
                let mut batch = WriteBatch::new();
                for &i in group {
                    let k = ckey(w, i);
                    if absent_at(i, round) {
                        batch.delete(&k);
                    } else {
                        batch.put(&k, cvalue(&k, round));
                    }
                }
                db.write(batch).unwrap_or_else(|e| panic!("writer {w} round {round}: batch: {e}"));
            } else {
                for &i in group {
                    let k = ckey(w, i);
                    let r = if absent_at(i, round) {
                        db.delete(&k)
                    } else {
                        db.put(&k, cvalue(&k, round))
                    };
                    r.unwrap_or_else(|e| panic!("writer {w} round {round}: {}: {e}", hex_key(&k)));
                }
            }
        }
        progress.done.store(round, Ordering::SeqCst);
    }
}

struct ReaderStats {
    gets: usize,
    scans: usize,
    snapshots: usize,
}

/// Reads until the writers are done, checking every observation.
fn reader(
    db: &DB,
    r: usize,
    seed: u64,
    progress: &[Progress],
    stop: &AtomicBool,
) -> Result<ReaderStats, String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xDEAD_0000 ^ r as u64);
    let mut lb = vec![vec![0u64; KEYS_PER_WRITER as usize]; WRITERS];
    let mut stats = ReaderStats { gets: 0, scans: 0, snapshots: 0 };
    // Checks at least a few rounds even if the writers finish first.
    let mut extra = 20;
    while !stop.load(Ordering::SeqCst) || extra > 0 {
        if stop.load(Ordering::SeqCst) {
            extra -= 1;
        }
        let w = rng.gen_range(0..WRITERS);
        match rng.gen_range(0..10) {
            0..=5 => {
                for _ in 0..50 {
                    let i = rng.gen_range(0..KEYS_PER_WRITER);
                    let k = ckey(w, i);
                    let done = progress[w].done.load(Ordering::SeqCst);
                    let got = db.get(&k).map_err(|e| format!("get {}: {e}", hex_key(&k)))?;
                    let started = progress[w].started.load(Ordering::SeqCst);
                    let slot = &mut lb[w][i as usize];
                    *slot = check_observation(i, &k, got.as_deref(), *slot, done, started)
                        .map_err(|e| format!("reader {r}, get: {e}"))?;
                    stats.gets += 1;
                }
            }
            6..=8 => {
                let a = rng.gen_range(0..KEYS_PER_WRITER);
                let b = rng.gen_range(a..KEYS_PER_WRITER);
                let whole = rng.gen_bool(0.3);
                let done = progress[w].done.load(Ordering::SeqCst);
                let it = if whole {
                    db.prefix(format!("w{w}/"))
                } else {
                    db.range(ckey(w, a)..=ckey(w, b))
                };
                let items = collect(it).map_err(|e| format!("reader {r}, scan: {e}"))?;
                let started = progress[w].started.load(Ordering::SeqCst);
                let (a, b) = if whole { (0, KEYS_PER_WRITER - 1) } else { (a, b) };
                check_writer_scan(w, a, b, &items, &mut lb[w], done, started)
                    .map_err(|e| format!("reader {r}, scan of writer {w} keys {a}..={b}: {e}"))?;
                stats.scans += 1;
            }
            _ => {
                // A snapshot: its scan and its gets agree, and stay the same.
                let done = progress[w].done.load(Ordering::SeqCst);
                let snap = db.snapshot();
                let items = collect(snap.prefix(format!("w{w}/")))
                    .map_err(|e| format!("reader {r}, snapshot scan: {e}"))?;
                let started = progress[w].started.load(Ordering::SeqCst);
                check_writer_scan(w, 0, KEYS_PER_WRITER - 1, &items, &mut lb[w], done, started)
                    .map_err(|e| format!("reader {r}, snapshot scan of writer {w}: {e}"))?;
                let scanned: BTreeMap<Vec<u8>, Vec<u8>> = items.into_iter().collect();
                for _ in 0..2 {
                    for i in 0..KEYS_PER_WRITER {
                        let k = ckey(w, i);
                        let got = snap.get(&k).map_err(|e| format!("snapshot get: {e}"))?;
                        if got.as_ref() != scanned.get(&k) {
                            return Err(format!(
                                "reader {r}: snapshot get {} returned {}, its scan {}",
                                hex_key(&k),
                                describe_opt(got.as_deref()),
                                describe_opt(scanned.get(&k).map(Vec::as_slice))
                            ));
                        }
                    }
                }
                stats.snapshots += 1;
            }
        }
    }
    Ok(stats)
}

/// Checks a scan of keys `a..=b` of writer `w` while it writes.
fn check_writer_scan(
    w: usize,
    a: u32,
    b: u32,
    items: &[(Vec<u8>, Vec<u8>)],
    lb: &mut [u64],
    done: u64,
    started: u64,
) -> Result<(), String> {
    let mut seen: BTreeMap<u32, &[u8]> = BTreeMap::new();
    let prefix = format!("w{w}/k");
    for pair in items.windows(2) {
        if pair[0].0 >= pair[1].0 {
            return Err(format!(
                "keys out of order: {} then {}",
                hex_key(&pair[0].0),
                hex_key(&pair[1].0)
            ));
        }
    }
    for (k, v) in items {
        let i: u32 = std::str::from_utf8(k)
            .ok()
            .and_then(|s| s.strip_prefix(&prefix))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("unexpected key {}", hex_key(k)))?;
        if i < a || i > b {
            return Err(format!("key {} outside the range", hex_key(k)));
        }
        seen.insert(i, v);
    }
    for i in a..=b {
        let new_lb = check_observation(
            i,
            &ckey(w, i),
            seen.get(&i).copied(),
            lb[i as usize],
            done,
            started,
        )?;
        lb[i as usize] = new_lb;
    }
    Ok(())
}

/// The expected final state.
fn final_state() -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for w in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            if !absent_at(i, ROUNDS) {
                let k = ckey(w, i);
                let v = cvalue(&k, ROUNDS);
                m.insert(k, v);
            }
        }
    }
    m
}

/// Checks the final state: the shared model check, and `get` of every key of every writer
/// (the deleted ones read as absent).
fn check_final(ctx: &str, db: &DB, expected: &Model) {
    check_model(ctx, db, expected);
    let all: Vec<Vec<u8>> =
        (0..WRITERS).flat_map(|w| (0..KEYS_PER_WRITER).map(move |i| ckey(w, i))).collect();
    check_gets(ctx, db, expected, all.iter().map(Vec::as_slice));
}

fn writers_and_readers(mode: Mode, default_seed: u64) {
    let seed = common::seed(&format!("concurrency {mode:?}"), default_seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let key = MasterKey::generate();
    let db = Arc::new(open(&path, mode, &key));
    let progress: Arc<Vec<Progress>> =
        Arc::new((0..WRITERS).map(|_| Progress::default()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let maintenance_runs = Arc::new(AtomicUsize::new(0));

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, progress) = (db.clone(), progress.clone());
            std::thread::spawn(move || writer(&db, w, seed, &progress[w]))
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (db, progress, stop) = (db.clone(), progress.clone(), stop.clone());
            std::thread::spawn(move || reader(&db, r, seed, &progress, &stop))
        })
        .collect();
    // Explicit flushes and full compactions racing with everything else.
    let maintenance = {
        let (db, stop, runs) = (db.clone(), stop.clone(), maintenance_runs.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                db.flush().unwrap_or_else(|e| panic!("concurrent flush: {e}"));
                db.compact().unwrap_or_else(|e| panic!("concurrent compact: {e}"));
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };

    let mut failures = Vec::new();
    for (w, h) in writers.into_iter().enumerate() {
        if let Err(p) = h.join() {
            failures.push(format!("writer {w} panicked: {}", common::panic_message(&*p)));
        }
    }
    stop.store(true, Ordering::SeqCst);
    for (r, h) in readers.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(s)) => {
                eprintln!(
                    "reader {r}: {} gets, {} scans, {} snapshots",
                    s.gets, s.scans, s.snapshots
                );
                if s.gets + s.scans + s.snapshots == 0 {
                    failures.push(format!("reader {r} checked nothing"));
                }
            }
            Ok(Err(e)) => failures.push(e),
            Err(p) => failures.push(format!("reader {r} panicked: {}", common::panic_message(&*p))),
        }
    }
    if let Err(p) = maintenance.join() {
        failures.push(format!("maintenance thread panicked: {}", common::panic_message(&*p)));
    }
    assert!(failures.is_empty(), "{mode:?} (seed {seed}):\n{}", failures.join("\n"));
    eprintln!(
        "{mode:?}: {} concurrent flush+compact runs",
        maintenance_runs.load(Ordering::SeqCst)
    );

    let expected = final_state();
    check_final("after the writers finished", &db, &expected);
    db.flush().expect("flush");
    db.compact().expect("compact");
    check_final("after flush and compaction", &db, &expected);
    let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("DB still shared"));
    db.close().expect("close");
    let db = open(&path, mode, &key);
    check_final("after reopening", &db, &expected);
}

#[test]
fn writers_and_readers_plain() {
    writers_and_readers(Mode::Plain, 0xC0C0_0001);
}

#[test]
fn writers_and_readers_chacha20poly1305() {
    writers_and_readers(Mode::ChaCha, 0xC0C0_0002);
}

/// Checks a snapshot against the state it must show: the shared model check, `get` of the
/// whole key space, and random ranges and prefixes.
fn check_snapshot(ctx: &str, snap: &Snapshot, model: &Model, rng: &mut StdRng) {
    check_model(ctx, snap, model);
    let all: Vec<Vec<u8>> = (0..600).map(skey).collect();
    check_gets(ctx, snap, model, all.iter().map(Vec::as_slice));
    for _ in 0..10 {
        let (a, b) = (rng.gen_range(0..600), rng.gen_range(0..600));
        let (a, b) = (skey(a.min(b)), skey(a.max(b)));
        let r = (Bound::Included(a), Bound::Excluded(b));
        let what = format!("range{}", describe_range(&r));
        let expected = model.iter().filter(|(k, _)| in_range(k, &r));
        check_scan(ctx, &what, snap.range(r.clone()), expected);
        let p = format!("s{:02}", rng.gen_range(0..60)).into_bytes();
        let expected = model.iter().filter(|(k, _)| k.starts_with(&p));
        check_scan(ctx, &format!("prefix({})", hex_key(&p)), snap.prefix(&p), expected);
    }
}

fn skey(i: u32) -> Vec<u8> {
    format!("s{i:04}").into_bytes()
}

/// Random puts and deletes over the snapshot key space, mirrored in `model`.
fn churn(db: &DB, rng: &mut StdRng, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, ops: usize, tag: u8) {
    for n in 0..ops {
        let k = skey(rng.gen_range(0..600));
        if rng.gen_bool(0.3) {
            db.delete(&k).expect("delete");
            model.remove(&k);
        } else {
            let mut v = vec![tag; rng.gen_range(0..300)];
            if v.len() >= 4 {
                v[..4].copy_from_slice(&(n as u32).to_be_bytes());
            }
            db.put(&k, &v).expect("put");
            model.insert(k, v);
        }
    }
}

/// Snapshots stay frozen through overwrites, deletes, flushes and compactions, including
/// ones running on other threads while the snapshot is read.
#[test]
fn snapshots_stay_frozen() {
    for (mode, default_seed) in [(Mode::Plain, 0x5A95_0001), (Mode::Aes, 0x5A95_0002)] {
        let seed = common::seed(&format!("snapshots {mode:?}"), default_seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let key = MasterKey::generate();
        let db = Arc::new(open(&dir.path().join("db"), mode, &key));
        let mut model = BTreeMap::new();

        churn(&db, &mut rng, &mut model, 3_000, b'a');
        let snap_a = db.snapshot();
        let model_a = model.clone();
        check_snapshot(
            &format!("{mode:?} seed {seed}: snapshot A at once"),
            &snap_a,
            &model_a,
            &mut rng,
        );

        churn(&db, &mut rng, &mut model, 3_000, b'b');
        db.flush().expect("flush");
        let snap_b = db.snapshot();
        let model_b = model.clone();
        // Delete everything in part of the key space, then overwrite the rest.
        for i in 0..300 {
            db.delete(skey(i)).expect("delete");
            model.remove(&skey(i));
        }
        churn(&db, &mut rng, &mut model, 2_000, b'c');
        db.flush().expect("flush");
        db.compact().expect("compact");
        check_snapshot(
            &format!("{mode:?} seed {seed}: snapshot A after compaction"),
            &snap_a,
            &model_a,
            &mut rng,
        );
        check_snapshot(
            &format!("{mode:?} seed {seed}: snapshot B after compaction"),
            &snap_b,
            &model_b,
            &mut rng,
        );

        // Other threads churn, flush and compact while this one reads the snapshots.
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..2u8)
            .map(|t| {
                let (db, stop) = (db.clone(), stop.clone());
                let mut trng = StdRng::seed_from_u64(seed ^ (u64::from(t) + 7));
                std::thread::spawn(move || {
                    let mut scratch = BTreeMap::new();
                    let mut rounds = 0;
                    while !stop.load(Ordering::SeqCst) || rounds < 3 {
                        churn(&db, &mut trng, &mut scratch, 500, b'd' + t);
                        if t == 0 {
                            db.flush().expect("flush");
                        } else {
                            db.compact().expect("compact");
                        }
                        rounds += 1;
                    }
                })
            })
            .collect();
        for round in 0..4 {
            let ctx = format!("{mode:?} seed {seed}: during concurrent churn, round {round}");
            check_snapshot(&format!("{ctx}, snapshot A"), &snap_a, &model_a, &mut rng);
            check_snapshot(&format!("{ctx}, snapshot B"), &snap_b, &model_b, &mut rng);
        }
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("churn thread panicked");
        }
        drop(snap_a);
        db.compact().expect("compact");
        check_snapshot(
            &format!("{mode:?} seed {seed}: snapshot B after dropping A"),
            &snap_b,
            &model_b,
            &mut rng,
        );
    }
}
