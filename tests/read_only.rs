//! `Options::read_only(true)`: every write call is refused, the directory is left byte for byte
//! as it was (plain and encrypted, with un-flushed WAL data), a missing database is
//! `Error::NotFound`, a torn WAL tail ends the log, and a read-only open beside another process
//! that keeps writing reads one consistent view.
//!
//! The writer of `reads_beside_a_writing_process` is this test binary itself, re-run on the
//! ignored test `writer_child` (as `tests/crash.rs` does).
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{dir_contents, Mode};
use sealdb::{Error, MasterKey, Options, WriteBatch, DB};

const MASTER: [u8; 32] = [0x5a; 32];

fn master() -> MasterKey {
    MasterKey::from_bytes(MASTER)
}

/// Small memtables, tables and segments, so a few hundred writes make several of each.
fn options(dir: &Path, mode: Mode) -> Options {
    common::options(dir, mode, &master())
        .memtable_size(64 << 10)
        .value_threshold(512)
        .vlog_segment_size(64 << 10)
        .target_file_size(64 << 10)
        .level_base_size(256 << 10)
}

fn read_only(dir: &Path, mode: Mode) -> Options {
    options(dir, mode).read_only(true)
}

fn value(round: u32, i: u32) -> Vec<u8> {
    let unit = format!("{round:08}:{i:05}:");
    let len = if i.is_multiple_of(4) { 700 } else { 40 };
    unit.repeat(len / unit.len() + 1).into_bytes()[..len].to_vec()
}

fn key(i: u32) -> String {
    format!("key{i:05}")
}

fn open(o: Options) -> DB {
    DB::open(o).unwrap_or_else(|e| panic!("open failed: {e}"))
}

/// A database with tables in two levels, value-log values, a deletion, and writes that only
/// the WAL holds (the memtable is not flushed at close). Returns what it must read as.
fn build(dir: &Path, mode: Mode) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = open(options(dir, mode).background_work(false));
    let mut model = BTreeMap::new();
    for round in 0..3 {
        for i in 0..300 {
            db.put(key(i), value(round, i)).unwrap();
            model.insert(key(i).into_bytes(), value(round, i));
        }
        if round == 0 {
            db.compact().unwrap();
        } else if round == 1 {
            db.flush().unwrap();
        }
    }
    db.delete(key(7)).unwrap();
    model.remove(key(7).as_bytes());
    db.close().unwrap();
    model
}

fn contents(db: &DB) -> BTreeMap<Vec<u8>, Vec<u8>> {
    db.iter().map(|r| r.expect("iteration")).collect()
}

fn assert_read_only(r: sealdb::Result<impl std::fmt::Debug>, what: &str) {
    match r {
        Err(Error::ReadOnly(_)) => {}
        other => panic!("{what} on a read-only database: expected Error::ReadOnly, got {other:?}"),
    }
}

#[test]
fn every_write_call_is_refused() {
    for mode in [Mode::Plain, Mode::Aes] {
        let dir = tempfile::tempdir().unwrap();
        let model = build(dir.path(), mode);
        let before = dir_contents(dir.path());
        let db = open(read_only(dir.path(), mode));
        assert_read_only(db.put("k", "v"), "put");
        assert_read_only(db.delete(key(1)), "delete");
        let mut b = WriteBatch::new();
        b.put("a", "b");
        assert_read_only(db.write(b), "write");
        assert_read_only(db.write(WriteBatch::new()), "an empty write");
        assert_read_only(db.sync(), "sync");
        assert_read_only(db.flush(), "flush");
        assert_read_only(db.compact(), "compact");
        assert_read_only(db.compact_range(key(1)..key(9)), "compact_range");
        assert_read_only(db.rotate_data_key(), "rotate_data_key");
        assert_read_only(db.rotate_master_key(MasterKey::generate()), "rotate_master_key");
        assert_read_only(db.rekey(MasterKey::generate()), "rekey");
        assert_read_only(db.reencrypt(), "reencrypt");
        // Nothing was applied, and the reads are those of the database.
        assert_eq!(contents(&db), model, "{mode:?}");
        assert_eq!(db.get("k").unwrap(), None);
        assert_eq!(db.encryption_status().is_some(), mode.encrypted(), "{mode:?}");
        let e = db.put("k", "v").unwrap_err().to_string();
        assert!(e.contains("read-only"), "the error says why: {e}");
        db.close().unwrap();
        assert_eq!(dir_contents(dir.path()), before, "{mode:?}: the refused calls wrote");
    }
}

/// Names and bytes of every file, before and after a read-only session that reads everything.
#[test]
fn a_read_only_session_leaves_every_byte_as_it_was() {
    for mode in [Mode::Plain, Mode::Aes, Mode::ChaCha] {
        for without_lock_file in [false, true] {
            let what = format!("{mode:?}, lock file removed: {without_lock_file}");
            let dir = tempfile::tempdir().unwrap();
            let model = build(dir.path(), mode);
            if without_lock_file {
                std::fs::remove_file(dir.path().join("LOCK")).unwrap();
            }
            let wals = common::files_with_suffix(dir.path(), ".wal");
            assert!(!wals.is_empty(), "{what}: the memtable's writes are in a WAL");
            let before = dir_contents(dir.path());
            let db = open(read_only(dir.path(), mode));
            assert_eq!(contents(&db), model, "{what}");
            for i in (0..300).step_by(7) {
                assert_eq!(db.get(key(i)).unwrap().as_ref(), model.get(key(i).as_bytes()));
            }
            let s = db.stats();
            assert!(s.levels.iter().map(|l| l.files).sum::<u64>() >= 2, "{what}: {s:?}");
            assert!(s.memtable_bytes > 0, "{what}: the WAL was replayed into memory");
            assert!(db.approximate_size::<&[u8], _>(..).unwrap() > 0);
            let snap = db.snapshot();
            assert_eq!(snap.get(key(8)).unwrap(), Some(value(2, 8)));
            drop(snap);
            db.close().unwrap();
            let after = dir_contents(dir.path());
            assert_eq!(
                after.keys().collect::<Vec<_>>(),
                before.keys().collect::<Vec<_>>(),
                "{what}: the set of files changed"
            );
            assert!(after == before, "{what}: a file's bytes changed");
            // A writable open afterwards still finds every write, the WAL's included.
            let db = open(options(dir.path(), mode));
            assert_eq!(contents(&db), model, "{what}: after a writable reopen");
        }
    }
}

/// The key figures and the audit check read what a writable open would, and write nothing.
#[test]
fn key_status_and_audit_check_work_read_only() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), Mode::Aes);
    let db = open(options(dir.path(), Mode::Aes));
    let retired = db.encryption_status().unwrap().current_key_id;
    db.rotate_data_key().unwrap();
    db.close().unwrap();
    let before = dir_contents(dir.path());
    let db = open(read_only(dir.path(), Mode::Aes));
    let status = db.encryption_status().expect("encrypted");
    assert_eq!(status.keys.len(), 2, "the retired key and the current one");
    assert_ne!(status.current_key_id, retired);
    let s = db.stats();
    assert!(s.reencrypt_files_left >= 2, "tables and segments under the retired key: {s:?}");
    assert!(s.reencrypt_bytes_left > 0);
    assert_eq!(status.reencrypt_bytes_left, s.reencrypt_bytes_left);
    let lines = db.verify_audit_log().unwrap();
    assert!(lines >= 3, "opens and the rotation are logged: {lines} lines");
    db.close().unwrap();
    assert!(dir_contents(dir.path()) == before, "the read-only session wrote");
    // A writable open appends its own `open` line, after those the read-only check counted.
    let db = open(options(dir.path(), Mode::Aes));
    assert_eq!(db.verify_audit_log().unwrap(), lines + 1);
}

#[test]
fn a_missing_database_is_not_found_and_nothing_is_created() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("nowhere");
    match DB::open(read_only(&missing, Mode::Plain)) {
        Err(Error::NotFound(p)) => assert_eq!(p, missing),
        Err(e) => panic!("expected Error::NotFound, got {e}"),
        Ok(_) => panic!("a read-only open of a missing directory succeeded"),
    }
    assert!(!missing.exists(), "the read-only open created the directory");
    // An existing empty directory holds no database either; it stays empty.
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = common::open_err(DB::open(read_only(&empty, Mode::Aes)), "read-only open of nothing");
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "files created in {empty:?}");
}

#[test]
fn a_torn_wal_tail_ends_the_log() {
    for mode in [Mode::Plain, Mode::Aes] {
        let dir = tempfile::tempdir().unwrap();
        // Without maps, the WAL is appended with `write` and ends at its last record, so the
        // record can be cut by the file's length (a WAL written through a map commits records
        // by their first byte: `wal::tests::a_record_cut_before_its_commit_ends_the_log`).
        let db = open(options(dir.path(), mode).background_work(false).mmap(false));
        for i in 0..3 {
            db.put(key(i), value(1, i + 1)).unwrap();
        }
        db.close().unwrap();
        let wals = common::files_with_suffix(dir.path(), ".wal");
        let newest = dir.path().join(wals.last().unwrap());
        let len = std::fs::metadata(&newest).unwrap().len();
        // The last record (a put of 40 bytes) cut short, as a writer appending it would leave
        // it to a reader.
        std::fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(len - 9).unwrap();
        let before = dir_contents(dir.path());
        let db = open(read_only(dir.path(), mode));
        assert_eq!(db.get(key(0)).unwrap(), Some(value(1, 1)), "{mode:?}");
        assert_eq!(db.get(key(1)).unwrap(), Some(value(1, 2)), "{mode:?}");
        assert_eq!(db.get(key(2)).unwrap(), None, "{mode:?}: the torn record is not applied");
        drop(db);
        assert!(dir_contents(dir.path()) == before, "{mode:?}: the torn WAL was rewritten");
    }
}

/// The child of `reads_beside_a_writing_process`: writes round after round, each one batch that
/// sets every key to that round's value, with background flushes, compactions and value-log
/// segment switches, until the stop file appears; then prints the last round.
#[test]
#[ignore = "run by reads_beside_a_writing_process as its child process"]
fn writer_child() {
    let (Ok(dir), Ok(stop), Ok(started), Ok(mode)) = (
        std::env::var("SEALDB_RO_DIR"),
        std::env::var("SEALDB_RO_STOP"),
        std::env::var("SEALDB_RO_STARTED"),
        std::env::var("SEALDB_RO_MODE"),
    ) else {
        return;
    };
    let mode = if mode == "aes" { Mode::Aes } else { Mode::Plain };
    let db = open(options(Path::new(&dir), mode).vlog_gc_ratio(0.3));
    let mut round = 0;
    while !Path::new(&stop).exists() {
        round += 1;
        let mut b = WriteBatch::new();
        for i in 0..KEYS {
            b.put(key(i), value(round, i));
        }
        db.write(b).unwrap();
        if round == 5 {
            std::fs::write(&started, b"").unwrap();
        }
        if round % 10 == 0 {
            db.compact().unwrap();
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    db.close().unwrap();
    println!("ROUNDS {round}");
}

const KEYS: u32 = 120;

/// The round a consistent view holds: every key has that round's value (each round is one
/// atomic batch).
fn view_round(db: &DB, what: &str) -> u32 {
    let all = contents(db);
    assert_eq!(all.len(), KEYS as usize, "{what}: keys missing from the view");
    let first = all.values().next().unwrap();
    let round: u32 = std::str::from_utf8(&first[..8]).unwrap().parse().unwrap();
    for i in 0..KEYS {
        let v = all.get(key(i).as_bytes()).unwrap();
        assert!(*v == value(round, i), "{what}: key {i} is not of round {round}: torn view");
        assert_eq!(db.get(key(i)).unwrap().as_ref(), Some(v), "{what}: get and scan differ");
    }
    round
}

fn writer(dir: &Path, mode: &str, stop: &Path, started: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["writer_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("SEALDB_RO_DIR", dir)
        .env("SEALDB_RO_STOP", stop)
        .env("SEALDB_RO_STARTED", started)
        .env("SEALDB_RO_MODE", mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn reads_beside_a_writing_process() {
    for (mode, name) in [(Mode::Plain, "plain"), (Mode::Aes, "aes")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let stop: PathBuf = tmp.path().join("stop");
        let started: PathBuf = tmp.path().join("started");
        let mut child = writer(&dir, name, &stop, &started);
        let t0 = Instant::now();
        while !started.exists() {
            assert!(t0.elapsed() < Duration::from_secs(60), "{name}: the writer did not start");
            assert!(child.try_wait().unwrap().is_none(), "{name}: the writer exited early");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut last = 0;
        let mut opens = 0;
        let t1 = Instant::now();
        while t1.elapsed() < Duration::from_secs(3) || opens < 5 {
            let what = format!("{name}: read-only open {opens}");
            let db = DB::open(read_only(&dir, mode)).unwrap_or_else(|e| panic!("{what}: {e}"));
            let round = view_round(&db, &what);
            assert!(round >= last, "{what}: round {round} after round {last}: went back");
            assert!(round >= 5, "{what}: round {round} is older than the writer's start");
            // The view stays as it was opened while the writer goes on.
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(view_round(&db, &what), round, "{what}: the view moved");
            assert_read_only(db.put("k", "v"), &what);
            last = round;
            opens += 1;
        }
        std::fs::write(&stop, b"").unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: the writer failed: {stdout}");
        // The test harness may print its "test writer_child ... " before the line.
        let rounds: u32 = stdout
            .split("ROUNDS ")
            .nth(1)
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no round count from the writer: {stdout}"));
        assert!(rounds >= last, "{name}: the writer ended before a round a reader saw");
        // With the writer gone, a read-only open sees its last round, as a writable open does.
        let db = open(read_only(&dir, mode));
        assert_eq!(view_round(&db, name), rounds, "{name}: read-only after the writer closed");
        drop(db);
        let db = open(options(&dir, mode));
        assert_eq!(view_round(&db, name), rounds, "{name}: writable after the writer closed");
    }
}

/// A file system that runs `hook` once, just before the first operation of kind `on` on a file
/// whose name ends with `suffix` (after it, for `list`; skipping the first `skip` of them):
/// there a writer moves on in the middle of a read-only open.
#[derive(Debug)]
struct HookFs {
    on: &'static str,
    suffix: &'static str,
    skip: std::sync::atomic::AtomicUsize,
    hook: Hook,
}

struct Hook(std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook")
    }
}

impl HookFs {
    fn fire(&self, op: &str, path: &Path) {
        use std::sync::atomic::Ordering::SeqCst;
        if op == self.on && path.to_string_lossy().ends_with(self.suffix) {
            let skip = &self.skip;
            if skip.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
                return;
            }
            if let Some(h) = self.hook.0.lock().unwrap().take() {
                h();
            }
        }
    }
}

impl sealdb::io::Fs for HookFs {
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn sealdb::io::WritableFile>> {
        panic!("a read-only open created {}", path.display())
    }
    fn open(
        &self,
        path: &Path,
    ) -> std::io::Result<std::sync::Arc<dyn sealdb::io::RandomAccessFile>> {
        self.fire("open", path);
        sealdb::io::StdFs.open(path)
    }
    fn read_all(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.fire("read_all", path);
        sealdb::io::StdFs.read_all(path)
    }
    fn rename(&self, _: &Path, to: &Path) -> std::io::Result<()> {
        panic!("a read-only open renamed to {}", to.display())
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        panic!("a read-only open removed {}", path.display())
    }
    fn exists(&self, path: &Path) -> bool {
        sealdb::io::StdFs.exists(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let names = sealdb::io::StdFs.list(dir);
        self.fire("list", dir);
        names
    }
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        panic!("a read-only open created {}", dir.display())
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        panic!("a read-only open synced {}", dir.display())
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn sealdb::io::DirLock>> {
        panic!("a read-only open took the exclusive lock {}", path.display())
    }
    fn lock_shared(&self, path: &Path) -> std::io::Result<Option<Box<dyn sealdb::io::DirLock>>> {
        sealdb::io::StdFs.lock_shared(path)
    }
}

/// A writer (in this process: the read-only open takes no exclusive lock) replaces the very
/// file the read-only open is about to read; the open reads the manifest again and sees the
/// database as the writer left it.
#[test]
fn a_writer_moving_on_mid_open_makes_it_read_again() {
    type Step = fn(&DB, &mut BTreeMap<Vec<u8>, Vec<u8>>);
    // (what, operation, file suffix, operations to let pass first, the writer's step)
    let cases: [(&str, &str, &str, usize, Step); 4] = [
        ("a compaction removes a table", "open", ".sst", 0, |db, _| db.compact().unwrap()),
        ("a flush removes a WAL", "read_all", ".wal", 0, |db, m| {
            db.put(key(1), value(9, 1)).unwrap();
            m.insert(key(1).into_bytes(), value(9, 1));
            db.flush().unwrap();
        }),
        // The first listing is the one taken to notice a change; the second the open's own.
        ("a new WAL after the listing", "list", "", 1, |db, m| {
            db.put(key(2), value(9, 2)).unwrap();
            m.insert(key(2).into_bytes(), value(9, 2));
            db.flush().unwrap();
            db.put(key(3), value(9, 3)).unwrap();
            m.insert(key(3).into_bytes(), value(9, 3));
        }),
        ("value-log GC removes a segment", "open", ".vlog", 0, |db, m| {
            for i in (0..300).step_by(4) {
                db.put(key(i), value(8, i)).unwrap();
                m.insert(key(i).into_bytes(), value(8, i));
            }
            db.compact().unwrap();
        }),
    ];
    for mode in [Mode::Plain, Mode::Aes] {
        for (what, on, suffix, skip, step) in cases {
            let what = format!("{mode:?}: {what}");
            let dir = tempfile::tempdir().unwrap();
            let model = std::sync::Arc::new(std::sync::Mutex::new(build(dir.path(), mode)));
            let writer =
                std::sync::Arc::new(open(options(dir.path(), mode).background_work(false)));
            let (w, m) = (writer.clone(), model.clone());
            let fs = HookFs {
                on,
                suffix,
                skip: skip.into(),
                hook: Hook(std::sync::Mutex::new(Some(Box::new(move || {
                    step(&w, &mut m.lock().unwrap());
                })))),
            };
            let fs = std::sync::Arc::new(fs);
            let db = DB::open(read_only(dir.path(), mode).with_fs(fs.clone()))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(fs.hook.0.lock().unwrap().is_none(), "{what}: the writer never moved on");
            assert_eq!(contents(&db), *model.lock().unwrap(), "{what}");
            drop(db);
            drop(writer);
        }
    }
}
