//! Crash harness: a child process runs a random workload on an encrypted database and is
//! killed with SIGKILL at a random moment; after each kill the database must reopen and equal
//! the state after some prefix of the issued batches that contains every batch acknowledged
//! by `sync()`.
//!
//! The child is this test binary itself, re-run on the ignored test `crash_child` with the
//! workload's parameters in the environment. Short mode (default, about 20 cycles) runs in
//! `cargo test`; the long mode is
//! `SEALDB_CRASH_CYCLES=200 cargo test --release --test crash -- --nocapture`.
//!
//! The archive loop (`crash_during_archive_and_recall_loses_nothing`) runs the same workload
//! with a cold tier on a local-directory object store, the child moving files to the store and
//! back over and over (`archive`, `recall`, the background archiver); most kills are aimed
//! into a move (an upload, its read-back, the manifest edit, a local or remote deletion).
//! After each kill the parent also checks that the leftovers are cleaned up: no local table or
//! segment but the live local ones after open, and no object but the named ones after the
//! first archive pass (the orphan sweep). Cycles: `SEALDB_CRASH_ARCHIVE_CYCLES` (default 24).
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::object_store::local::LocalFileSystem;
use sealdb::{ColdStorage, Encryption, MasterKey, Options, WriteBatch, DB};

const KEYS: u32 = 400;
const MASTER: [u8; 32] = [0x42; 32];

fn options(dir: &Path) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(MasterKey::from_bytes(MASTER)).reencrypt_rate(8 << 20))
        .memtable_size(64 << 10)
        .value_threshold(512)
        .vlog_segment_size(128 << 10)
        .target_file_size(64 << 10)
        .level_base_size(256 << 10)
        .vlog_gc_ratio(0.3)
}

/// The harness's two workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Harness {
    /// Writes, syncs, flushes, compactions, key rotation and re-encryption.
    Plain,
    /// The same with a cold tier, plus archive and recall in a loop.
    Archive,
}

impl Harness {
    fn name(self) -> &'static str {
        match self {
            Harness::Plain => "plain",
            Harness::Archive => "archive",
        }
    }
}

/// The object store of the archive loop: a directory beside the database.
fn bucket_dir(db_dir: &Path) -> std::path::PathBuf {
    db_dir.with_file_name("bucket")
}

/// The options of `harness` for the database at `dir`: every closed file may go cold at once,
/// and the part cache is small, so that it evicts.
fn harness_options(harness: Harness, dir: &Path) -> Options {
    match harness {
        Harness::Plain => options(dir),
        Harness::Archive => {
            let store = LocalFileSystem::new_with_prefix(bucket_dir(dir)).expect("bucket dir");
            options(dir).cold_storage(
                ColdStorage::new(std::sync::Arc::new(store), "db")
                    .cold_after(Duration::ZERO)
                    .cache_size(256 << 10),
            )
        }
    }
}

/// Objects in the archive loop's bucket (files under it, less `LocalFileSystem`'s staging
/// files `NAME#N`, which are not objects: an upload killed before its rename leaves one), and
/// how many staging files there are.
fn bucket_objects(bucket: &Path) -> (usize, usize) {
    fn walk(dir: &Path, out: &mut (usize, usize)) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let staging = name
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if staging {
                    out.1 += 1;
                } else {
                    out.0 += 1;
                }
            }
        }
    }
    let mut out = (0, 0);
    walk(bucket, &mut out);
    out
}

/// One batch of the workload: (key, Some(value) | None for delete).
type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

fn value(cycle: u64, batch: u64, key: u32, large: bool) -> Vec<u8> {
    let unit = format!("[{cycle}:{batch}:{key}]");
    let len = if large { 600 + (key as usize * 37) % 6000 } else { 1 + (key as usize * 13) % 150 };
    unit.repeat(len / unit.len() + 1).into_bytes()[..len].to_vec()
}

/// The batches of one cycle, generated identically by child and parent.
struct Workload {
    rng: StdRng,
    cycle: u64,
    next: u64,
}

impl Workload {
    fn new(seed: u64, cycle: u64) -> Workload {
        Workload {
            rng: StdRng::seed_from_u64(seed ^ cycle.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            cycle,
            next: 0,
        }
    }
    fn batch(&mut self) -> Batch {
        let id = self.next;
        self.next += 1;
        let n = self.rng.gen_range(1..8);
        (0..n)
            .map(|_| {
                let k = self.rng.gen_range(0..KEYS);
                let key = format!("key{k:05}").into_bytes();
                if self.rng.gen_bool(0.2) {
                    (key, None)
                } else {
                    let large = self.rng.gen_bool(0.3);
                    (key, Some(value(self.cycle, id, k, large)))
                }
            })
            .collect()
    }
}

fn apply(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: &Batch) {
    for (k, v) in batch {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

/// The child: runs batches until killed, logging acknowledgements to the ack file.
#[test]
#[ignore = "run by the crash harness as its child process"]
fn crash_child() {
    let (Ok(dir), Ok(seed), Ok(cycle), Ok(ack)) = (
        std::env::var("SEALDB_CRASH_DIR"),
        std::env::var("SEALDB_CRASH_SEED"),
        std::env::var("SEALDB_CRASH_CYCLE"),
        std::env::var("SEALDB_CRASH_ACK"),
    ) else {
        return;
    };
    let (seed, cycle): (u64, u64) = (seed.parse().unwrap(), cycle.parse().unwrap());
    let harness = match std::env::var("SEALDB_CRASH_HARNESS").as_deref() {
        Ok("archive") => Harness::Archive,
        _ => Harness::Plain,
    };
    let db = DB::open(harness_options(harness, Path::new(&dir))).unwrap();
    let mut ack = std::fs::OpenOptions::new().create(true).append(true).open(ack).unwrap();
    writeln!(ack, "open").unwrap();
    let mut w = Workload::new(seed, cycle);
    let mut ops = StdRng::seed_from_u64(seed.wrapping_add(cycle));
    loop {
        let id = w.next;
        let batch = w.batch();
        let mut b = WriteBatch::new();
        for (k, v) in &batch {
            match v {
                Some(v) => b.put(k, v),
                None => b.delete(k),
            }
        }
        db.write(b).unwrap();
        writeln!(ack, "ack {id}").unwrap();
        match ops.gen_range(0..1000) {
            0..=149 => {
                db.sync().unwrap();
                writeln!(ack, "sync {id}").unwrap();
            }
            150..=159 => db.flush().unwrap(),
            160..=162 => db.compact().unwrap(),
            163..=164 => {
                db.rotate_data_key().unwrap();
            }
            165 => db.reencrypt().unwrap(),
            // The archive loop: flush (so there is something new to move), then move it all.
            200..=239 if harness == Harness::Archive => {
                db.flush().unwrap();
                writeln!(ack, "archive-begin").unwrap();
                db.archive().unwrap();
                writeln!(ack, "archive-end").unwrap();
            }
            240..=259 if harness == Harness::Archive => {
                writeln!(ack, "recall-begin").unwrap();
                db.recall().unwrap();
                writeln!(ack, "recall-end").unwrap();
            }
            _ => {}
        }
    }
}

#[derive(Debug, Default)]
struct Acks {
    acked: Option<u64>,
    synced: Option<u64>,
    opened: bool,
    /// The move under way when the log ends ("archive" or "recall"), if any.
    moving: Option<String>,
    /// Moves begun.
    moves: u64,
}

fn read_acks(path: &Path) -> Acks {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut a = Acks::default();
    for line in text.lines() {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next().and_then(|n| n.parse().ok())) {
            (Some("open"), _) => a.opened = true,
            (Some(m), _) if m.ends_with("-begin") => {
                a.moving = Some(m.trim_end_matches("-begin").to_owned());
                a.moves += 1;
            }
            (Some(m), _) if m.ends_with("-end") => a.moving = None,
            (Some("ack"), Some(n)) => a.acked = Some(n),
            (Some("sync"), Some(n)) => a.synced = Some(n),
            _ => {} // a line cut by the kill
        }
    }
    a
}

fn contents(db: &DB) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter().map(|r| r.expect("iteration after recovery")).collect()
}

#[test]
fn crash_recovery_keeps_every_synced_batch() {
    let cycles: u64 =
        std::env::var("SEALDB_CRASH_CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(20);
    run_harness(Harness::Plain, cycles);
}

/// The archive loop: kills during uploads, read-backs, manifest edits and deletions, both
/// ways, lose no synced batch, and what they leave behind (objects no manifest names, local
/// copies of cold files, half-written recalls) is cleaned up.
#[test]
fn crash_during_archive_and_recall_loses_nothing() {
    let cycles: u64 = std::env::var("SEALDB_CRASH_ARCHIVE_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(24);
    run_harness(Harness::Archive, cycles);
}

/// What the archive loop's parent saw over its cycles.
#[derive(Debug, Default)]
struct Leftovers {
    /// Kills that came while a move was under way (the child's log ends in a `-begin`).
    killed_moving: u64,
    /// Objects found at reopen that no cold file names (swept by the first archive pass).
    orphan_objects: usize,
    /// Local tables and segments found before reopen that open removed.
    orphan_locals: usize,
    /// `LocalFileSystem` staging files (uploads killed before their rename).
    staging: usize,
}

/// Names of the local tables and value-log segments in `dir`.
fn local_data_files(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut names: std::collections::BTreeSet<String> =
        common::files_with_suffix(dir, ".sst").into_iter().collect();
    names.extend(common::files_with_suffix(dir, ".vlog"));
    names
}

/// Waits until the child's log shows a move of kind `target` under way (up to `patience`),
/// then a little more, at random, so the kill lands somewhere inside it.
fn wait_for_move(ack: &Path, target: &str, patience: Duration, rng: &mut StdRng) {
    let start = std::time::Instant::now();
    while start.elapsed() < patience {
        if read_acks(ack).moving.as_deref() == Some(target) {
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..15_000)));
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn run_harness(harness: Harness, cycles: u64) {
    let seed: u64 =
        std::env::var("SEALDB_CRASH_SEED").ok().and_then(|c| c.parse().ok()).unwrap_or(0x5ea1);
    println!("crash harness ({}): {cycles} cycles, seed {seed}", harness.name());
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let bucket = bucket_dir(&db_dir);
    std::fs::create_dir_all(&bucket).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let (mut total_acked, mut total_synced, mut total_applied) = (0u64, 0u64, 0u64);
    let mut left = Leftovers::default();
    for cycle in 0..cycles {
        let ack = dir.path().join(format!("ack-{cycle}"));
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("SEALDB_CRASH_HARNESS", harness.name())
            .env("SEALDB_CRASH_DIR", &db_dir)
            .env("SEALDB_CRASH_SEED", seed.to_string())
            .env("SEALDB_CRASH_CYCLE", cycle.to_string())
            .env("SEALDB_CRASH_ACK", &ack)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the child to open the database, then let it run a random while.
        for _ in 0..2000 {
            if read_acks(&ack).opened {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("child exited early in cycle {cycle} ({status}): {err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..400)));
        if harness == Harness::Archive {
            // Two kills in three are aimed into a move: an archive, then a recall.
            match cycle % 3 {
                0 => wait_for_move(&ack, "archive", Duration::from_secs(2), &mut rng),
                1 => wait_for_move(&ack, "recall", Duration::from_secs(2), &mut rng),
                _ => {}
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("child died on its own in cycle {cycle} ({status}): {err}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let acks = read_acks(&ack);
        if acks.moving.is_some() {
            left.killed_moving += 1;
        }
        let locals_before = local_data_files(&db_dir);
        let db = DB::open(harness_options(harness, &db_dir).background_work(false))
            .unwrap_or_else(|e| panic!("reopen after kill in cycle {cycle}: {e}"));
        let got = contents(&db);
        // Find the prefix of this cycle's batches that the database holds.
        let mut w = Workload::new(seed, cycle);
        let limit = acks.acked.map_or(0, |a| a + 1) + 1; // the batch in flight may have landed
        let min = acks.synced.map_or(0, |s| s + 1);
        let mut candidate = model.clone();
        let mut found = None;
        for p in 0..=limit {
            if p >= min && candidate == got {
                found = Some(p);
                break;
            }
            if p < limit {
                apply(&mut candidate, &w.batch());
            }
        }
        let Some(p) = found else {
            panic!(
                "cycle {cycle}: state matches no prefix between {min} (synced) and {limit} batches; \
                 {} keys in the database",
                got.len()
            );
        };
        // The recovered state, through every read path.
        common::check_model(&format!("cycle {cycle}, after {p} batches"), &db, &got);
        if harness == Harness::Archive {
            check_leftovers(cycle, &db, &db_dir, &bucket, &locals_before, &mut left);
            common::check_model(&format!("cycle {cycle}, after the sweep"), &db, &got);
        }
        drop(db);
        total_acked += acks.acked.map_or(0, |a| a + 1);
        total_synced += min;
        total_applied += p;
        model = got;
    }
    println!(
        "crash harness: {cycles} cycles, {total_acked} batches acknowledged, {total_synced} synced, \
         {total_applied} recovered, lost synced batches: 0"
    );
    if harness == Harness::Archive {
        println!(
            "archive loop: {} of {cycles} kills inside a move; swept {} orphan objects, removed \
             {} orphan local files; {} upload staging files left by the local store",
            left.killed_moving, left.orphan_objects, left.orphan_locals, left.staging
        );
        assert!(
            left.killed_moving * 3 >= cycles,
            "too few kills landed inside an archive or recall: {left:?}"
        );
    }
}

/// After a kill in the archive loop: open removed every local table and segment that is not a
/// live local file, every cold file's object is there (the model check read them all), and
/// the first archive pass leaves no object but the named ones.
fn check_leftovers(
    cycle: u64,
    db: &DB,
    db_dir: &Path,
    bucket: &Path,
    locals_before: &std::collections::BTreeSet<String>,
    left: &mut Leftovers,
) {
    let s = db.tiering_status().expect("cold storage");
    let locals = local_data_files(db_dir);
    assert_eq!(locals.len() as u64, s.local_files, "cycle {cycle}: local files after open: {s:?}");
    left.orphan_locals += locals_before.difference(&locals).count();
    let (objects, staging) = bucket_objects(bucket);
    assert!(objects as u64 >= s.cold_files, "cycle {cycle}: {objects} objects, {s:?}");
    left.orphan_objects += objects - s.cold_files as usize;
    left.staging = staging;
    db.archive().unwrap_or_else(|e| panic!("cycle {cycle}: archive after reopen: {e}"));
    let s = db.tiering_status().expect("cold storage");
    let (objects, _) = bucket_objects(bucket);
    assert_eq!(objects as u64, s.cold_files, "cycle {cycle}: objects after the sweep: {s:?}");
    assert_eq!(s.pending_deletes, 0, "cycle {cycle}: {s:?}");
    assert_eq!(
        local_data_files(db_dir).len() as u64,
        s.local_files,
        "cycle {cycle}: local files after archive: {s:?}"
    );
}

/// The child of `second_process_is_refused_by_the_lock`: must find the directory locked.
#[test]
#[ignore = "run by second_process_is_refused_by_the_lock as its child process"]
fn lock_child() {
    let Ok(dir) = std::env::var("SEALDB_LOCK_DIR") else { return };
    match DB::open(options(Path::new(&dir))) {
        Err(sealdb::Error::Locked(_)) => println!("LOCKED"),
        Err(e) => panic!("expected Error::Locked, got {e}"),
        Ok(_) => panic!("a second process opened a database that is open"),
    }
}

#[test]
fn second_process_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(options(dir.path())).unwrap();
    db.put("k", "v").unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["lock_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("SEALDB_LOCK_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("LOCKED"), "child: {stdout}");
    // Nothing was disturbed, and once closed the directory opens again.
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    drop(db);
    let db = DB::open(options(dir.path())).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}
