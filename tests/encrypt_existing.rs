//! Encrypting an existing (plaintext) database online with `Encryption::encrypt_existing`, and
//! decrypting it back with `sealdb::decrypt_database`.
//!
//! The plaintext database holds 100k keys whose values live in the value log (small value
//! threshold, small memtable: many tables and segments). Every key and value carries a marker;
//! a scan of every file finds the markers before the conversion (the control) and none once
//! `reencrypt()` returns.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{dir_contents, find, open_err};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{decrypt_database, Encryption, Error, MasterKey, Options, WriteBatch, DB};

const KEY_MARK: &[u8] = b"PLAINKEY-";
const VALUE_MARK: &[u8] = b"VALUEMARK:";
const MASTER: [u8; 32] = [0x5a; 32];

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: u32) -> Vec<u8> {
    format!("PLAINKEY-{i:07}").into_bytes()
}

/// A value of 80 to 200 bytes, with the marker at its start and bytes that do not repeat it.
fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("VALUEMARK:{i:07}:{round}:").into_bytes();
    let len = 80 + (i as usize * 7) % 120;
    let mut x = u64::from(i) * 0x9e37_79b9 + u64::from(round);
    while v.len() < len {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        v.push(b'a' + (x >> 59) as u8);
    }
    v
}

/// Tuning shared by every open: values in the value log, many small tables and segments.
fn tuned(dir: &Path) -> Options {
    Options::new(dir)
        .memtable_size(256 << 10)
        .value_threshold(64)
        .vlog_segment_size(512 << 10)
        .target_file_size(256 << 10)
        .level_base_size(1 << 20)
        .compression(false)
}

fn enc(rate: u64) -> Encryption {
    Encryption::new(MasterKey::from_bytes(MASTER)).reencrypt_rate(rate)
}

/// A plaintext database of keys `0..n`; returns its model.
fn build_plain(dir: &Path, n: u32) -> Model {
    let db = DB::open(tuned(dir)).unwrap();
    let mut model = Model::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(key(i), value(i, 0));
            model.insert(key(i), value(i, 0));
        }
        db.write(b).unwrap();
    }
    // Some of the values in unflushed memtables: their WAL is plaintext too.
    db.flush().unwrap();
    for i in (0..n).step_by(97) {
        db.put(key(i), value(i, 1)).unwrap();
        model.insert(key(i), value(i, 1));
    }
    db.close().unwrap();
    model
}

/// Every (file, marker) where a marker occurs.
fn markers(dir: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    for (file, data) in dir_contents(dir) {
        for m in [KEY_MARK, VALUE_MARK] {
            if let Some(off) = find(&data, m) {
                hits.push(format!("{} in {} at {off}", String::from_utf8_lossy(m), file.display()));
            }
        }
    }
    hits
}

fn check(db: &DB, model: &Model, what: &str) {
    let got: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(|r| r.unwrap()).collect();
    assert_eq!(got.len(), model.len(), "{what}: number of keys");
    for ((gk, gv), (mk, mv)) in got.iter().zip(model) {
        assert!(gk == mk && gv == mv, "{what}: entry {} differs", String::from_utf8_lossy(mk));
    }
    for (k, v) in model.iter().step_by(331) {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(&v[..]), "{what}: get");
    }
}

#[test]
fn online_encryption_then_decryption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut model = build_plain(path, 100_000);
    // The control: the scan finds plaintext in the database as written.
    let before = markers(path);
    assert!(before.iter().any(|h| h.contains(".sst")), "keys in plaintext tables: {before:?}");
    assert!(before.iter().any(|h| h.contains(".vlog")), "values in plaintext segments");
    let tables_before = common::files_with_suffix(path, ".sst").len();
    assert!(tables_before >= 10, "many tables: {tables_before}");

    // Encryption configured without encrypt_existing: the clear error, nothing written.
    let snapshot = dir_contents(path);
    let e = open_err(DB::open(tuned(path).with_encryption(enc(1 << 20))), "without the flag");
    assert!(matches!(e, Error::NotEncrypted(_)), "{e}");
    assert_eq!(dir_contents(path), snapshot, "a refused open changes nothing");

    // Start the conversion at a slow rate and write while it runs.
    let db = DB::open(tuned(path).with_encryption(enc(64 << 10).encrypt_existing())).unwrap();
    let status = db.encryption_status().unwrap();
    assert!(status.plaintext_files_left > 10, "plaintext left: {status:?}");
    assert!(status.plaintext_bytes_left <= status.reencrypt_bytes_left);
    for i in (0..100_000).step_by(13) {
        db.put(key(i), value(i, 2)).unwrap();
        model.insert(key(i), value(i, 2));
    }
    for i in 100_000..105_000 {
        db.put(key(i), value(i, 2)).unwrap();
        model.insert(key(i), value(i, 2));
    }
    for i in (5..100_000).step_by(211) {
        db.delete(key(i)).unwrap();
        model.remove(&key(i));
    }
    check(&db, &model, "during conversion");
    drop(db);

    // Mid-way: the key is needed, a wrong key changes nothing, the key alone opens it.
    let snapshot = dir_contents(path);
    let e = open_err(DB::open(tuned(path)), "without a key mid-conversion");
    assert!(matches!(e, Error::EncryptionRequired(_)), "{e}");
    let wrong = Encryption::new(MasterKey::from_bytes([1; 32])).encrypt_existing();
    let e = open_err(DB::open(tuned(path).with_encryption(wrong)), "wrong key");
    assert!(matches!(e, Error::WrongMasterKey), "{e}");
    assert_eq!(dir_contents(path), snapshot, "refused opens change nothing");
    assert!(path.join("CONVERT").exists(), "mid-way the conversion state is there");
    let report = sealdb::verify(path, Some(&MasterKey::from_bytes(MASTER))).unwrap();
    assert!(report.is_clean(), "offline verify mid-conversion: {:?}", report.problems);
    assert_eq!(dir_contents(path), snapshot, "verify changes nothing");

    let db = DB::open(tuned(path).with_encryption(enc(64 << 10))).unwrap();
    let status = db.encryption_status().unwrap();
    assert!(status.plaintext_files_left > 0, "still mid-way after reopen: {status:?}");
    check(&db, &model, "reopened mid-way");
    db.put(key(200_000), value(200_000, 3)).unwrap();
    model.insert(key(200_000), value(200_000, 3));
    db.reencrypt().unwrap();
    let status = db.encryption_status().unwrap();
    assert_eq!((status.plaintext_files_left, status.plaintext_bytes_left), (0, 0), "{status:?}");
    assert_eq!(status.reencrypt_bytes_left, 0);
    assert_eq!(markers(path), Vec::<String>::new(), "plaintext left after reencrypt()");
    assert!(!path.join("CONVERT").exists(), "the conversion state goes when done");
    check(&db, &model, "after reencrypt");
    assert!(db.verify_audit_log().unwrap() > 0);
    db.close().unwrap();
    assert_eq!(markers(path), Vec::<String>::new(), "plaintext left after close");

    // Finished: a plain open is refused, the key alone opens it.
    let e = open_err(DB::open(tuned(path)), "plain open of an encrypted database");
    assert!(matches!(e, Error::EncryptionRequired(_)), "{e}");
    let db = DB::open(tuned(path).with_encryption(enc(1 << 20))).unwrap();
    check(&db, &model, "reopened encrypted");
    drop(db);

    // Decrypt: a wrong key changes nothing; the right one leaves a plain database.
    let snapshot = dir_contents(path);
    let e = decrypt_database(
        tuned(path).with_encryption(Encryption::new(MasterKey::from_bytes([2; 32]))),
    )
    .unwrap_err();
    assert!(matches!(e, Error::WrongMasterKey), "{e}");
    assert_eq!(dir_contents(path), snapshot, "a refused decryption changes nothing");
    decrypt_database(tuned(path).with_encryption(enc(1 << 20))).unwrap();
    for gone in ["KEYS", "AUDIT.log", "CONVERT"] {
        assert!(!path.join(gone).exists(), "{gone} left after decryption");
    }
    let db = DB::open(tuned(path)).unwrap();
    check(&db, &model, "decrypted");
    db.put(key(300_000), value(300_000, 4)).unwrap();
    model.insert(key(300_000), value(300_000, 4));
    drop(db);
    let e = open_err(DB::open(tuned(path).with_encryption(enc(1 << 20))), "encrypted open");
    assert!(matches!(e, Error::NotEncrypted(_)), "{e}");
    let db = DB::open(tuned(path)).unwrap();
    check(&db, &model, "decrypted, reopened");
    drop(db);
    assert!(!markers(path).is_empty(), "a decrypted database is plaintext again");
    // Decrypting a plain database is refused.
    let e = decrypt_database(tuned(path).with_encryption(enc(1 << 20))).unwrap_err();
    assert!(matches!(e, Error::NotEncrypted(_)), "{e}");
}

/// Decrypting a database whose conversion is still under way: all of it ends up plain.
#[test]
fn decrypt_mid_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let mut model = build_plain(path, 20_000);
    let db = DB::open(tuned(path).with_encryption(enc(64 << 10).encrypt_existing())).unwrap();
    for i in 20_000..21_000 {
        db.put(key(i), value(i, 5)).unwrap();
        model.insert(key(i), value(i, 5));
    }
    assert!(db.encryption_status().unwrap().plaintext_files_left > 0);
    drop(db);
    decrypt_database(tuned(path).with_encryption(enc(1))).unwrap();
    let db = DB::open(tuned(path)).unwrap();
    check(&db, &model, "decrypted mid-conversion");
}

// ---- crash harness ------------------------------------------------------------------------

const CRASH_KEYS: u32 = 100_000;

/// One batch: (key index, Some(value) | None for delete).
type Batch = Vec<(u32, Option<Vec<u8>>)>;

struct Workload {
    rng: StdRng,
    cycle: u32,
    next: u64,
}

impl Workload {
    fn new(cycle: u32) -> Workload {
        Workload { rng: StdRng::seed_from_u64(0xc0_4e27 ^ u64::from(cycle)), cycle, next: 0 }
    }
    fn batch(&mut self) -> Batch {
        self.next += 1;
        let n = self.rng.gen_range(1..6);
        (0..n)
            .map(|_| {
                let k = self.rng.gen_range(0..CRASH_KEYS + 2000);
                if self.rng.gen_bool(0.15) {
                    (k, None)
                } else {
                    (k, Some(value(k, 10 + self.cycle)))
                }
            })
            .collect()
    }
}

fn apply(model: &mut Model, batch: &Batch) {
    for (k, v) in batch {
        match v {
            Some(v) => model.insert(key(*k), v.clone()),
            None => model.remove(&key(*k)),
        };
    }
}

/// The child: opens with `encrypt_existing` and writes until killed, logging acknowledgements.
#[test]
#[ignore = "run by the encryption crash harness as its child process"]
fn convert_crash_child() {
    let (Ok(dir), Ok(cycle), Ok(ack)) = (
        std::env::var("SEALDB_CONVERT_DIR"),
        std::env::var("SEALDB_CONVERT_CYCLE"),
        std::env::var("SEALDB_CONVERT_ACK"),
    ) else {
        return;
    };
    let cycle: u32 = cycle.parse().unwrap();
    let mut ack = std::fs::OpenOptions::new().create(true).append(true).open(ack).unwrap();
    let db = DB::open(tuned(Path::new(&dir)).with_encryption(enc(512 << 10).encrypt_existing()))
        .unwrap();
    writeln!(ack, "open").unwrap();
    std::thread::scope(|s| {
        // Some cycles are killed inside an unthrottled `reencrypt()`.
        if cycle % 8 == 7 {
            s.spawn(|| db.reencrypt().unwrap());
        }
        write_until_killed(&db, cycle, &mut ack);
    });
}

fn write_until_killed(db: &DB, cycle: u32, ack: &mut std::fs::File) {
    let mut w = Workload::new(cycle);
    let mut ops = StdRng::seed_from_u64(u64::from(cycle));
    loop {
        let id = w.next;
        let mut b = WriteBatch::new();
        for (k, v) in w.batch() {
            match v {
                Some(v) => b.put(key(k), v),
                None => b.delete(key(k)),
            }
        }
        db.write(b).unwrap();
        writeln!(ack, "ack {id}").unwrap();
        match ops.gen_range(0..1000) {
            0..=199 => {
                db.sync().unwrap();
                writeln!(ack, "sync {id}").unwrap();
            }
            200..=203 => db.flush().unwrap(),
            _ => {}
        }
    }
}

fn read_acks(path: &Path) -> (bool, Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut opened, mut acked, mut synced) = (false, None, None);
    for line in text.lines() {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next().and_then(|n| n.parse().ok())) {
            (Some("open"), _) => opened = true,
            (Some("ack"), Some(n)) => acked = Some(n),
            (Some("sync"), Some(n)) => synced = Some(n),
            _ => {}
        }
    }
    (opened, acked, synced)
}

#[test]
fn crash_during_conversion_loses_nothing() {
    let cycles: u32 =
        std::env::var("SEALDB_CONVERT_CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let mut model = build_plain(&db_dir, CRASH_KEYS);
    assert!(!markers(&db_dir).is_empty(), "the control finds plaintext");
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(0x0c0_47e2);
    let mut mid_way = 0;
    for cycle in 0..cycles {
        let ack = dir.path().join(format!("ack-{cycle}"));
        let mut child = Command::new(&exe)
            .args(["convert_crash_child", "--exact", "--ignored", "--nocapture"])
            .env("SEALDB_CONVERT_DIR", &db_dir)
            .env("SEALDB_CONVERT_CYCLE", cycle.to_string())
            .env("SEALDB_CONVERT_ACK", &ack)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Early kills land inside the open that starts (or resumes) the conversion.
        let wait = match cycle % 4 {
            0 => rng.gen_range(0..80),
            3 if cycle % 8 == 7 => rng.gen_range(40..400), // inside reencrypt()
            _ => rng.gen_range(100..800),
        };
        std::thread::sleep(Duration::from_millis(wait));
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("child died on its own in cycle {cycle} ({status}): {err}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let (_, acked, synced) = read_acks(&ack);
        // Mid-conversion the key opens it, with or without the flag (unless the kill came
        // before the conversion state was written: then the flag is needed).
        let plain_opts = tuned(&db_dir).with_encryption(enc(256 << 10));
        let db = match DB::open(plain_opts) {
            Ok(db) => db,
            Err(Error::NotEncrypted(_)) => {
                DB::open(tuned(&db_dir).with_encryption(enc(256 << 10).encrypt_existing()))
                    .unwrap_or_else(|e| panic!("reopen after kill in cycle {cycle}: {e}"))
            }
            Err(e) => panic!("reopen after kill in cycle {cycle}: {e}"),
        };
        let left = db.encryption_status().unwrap().plaintext_files_left;
        mid_way += u32::from(left > 0);
        println!(
            "cycle {cycle}: killed after {wait} ms, {acked:?} acked, {left} plaintext files left"
        );
        let got: Model = db.iter().map(|r| r.unwrap()).collect();
        let mut w = Workload::new(cycle);
        let limit = acked.map_or(0, |a| a + 1) + 1;
        let min = synced.map_or(0, |s| s + 1);
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
        assert!(found.is_some(), "cycle {cycle}: state matches no prefix from {min} to {limit}");
        drop(db);
        model = got;
    }
    assert!(mid_way >= cycles / 4, "only {mid_way} cycles were reopened mid-conversion");
    let db = DB::open(tuned(&db_dir).with_encryption(enc(4 << 20))).unwrap();
    db.reencrypt().unwrap();
    check(&db, &model, "after the crashes and reencrypt");
    assert_eq!(markers(&db_dir), Vec::<String>::new(), "plaintext left");
    drop(db);
    decrypt_database(tuned(&db_dir).with_encryption(enc(1))).unwrap();
    let db = DB::open(tuned(&db_dir)).unwrap();
    check(&db, &model, "decrypted after the crashes");
}

/// The crash windows before the first sealed manifest, rebuilt by hand: a plaintext database
/// beside the `KEYS` a conversion made (a crash before `CONVERT`), and beside `KEYS` and
/// `CONVERT` (a crash before the sealed manifest). Then a downgrade: the old plaintext manifest
/// put back into the finished database.
#[test]
fn crash_windows_before_the_first_sealed_manifest() {
    let root = tempfile::tempdir().unwrap();
    let plain = root.path().join("plain");
    let model = build_plain(&plain, 20_000);
    // A conversion started on a copy: its registry and conversion state.
    let started = root.path().join("started");
    common::copy_dir(&plain, &started);
    drop(DB::open(tuned(&started).with_encryption(enc(64 << 10).encrypt_existing())).unwrap());

    // KEYS only: the key and the flag are both needed; refusals change nothing.
    let a = root.path().join("a");
    common::copy_dir(&plain, &a);
    std::fs::copy(started.join("KEYS"), a.join("KEYS")).unwrap();
    let snapshot = dir_contents(&a);
    let e = open_err(DB::open(tuned(&a)), "no key");
    assert!(matches!(e, Error::EncryptionRequired(_)), "{e}");
    let e = open_err(DB::open(tuned(&a).with_encryption(enc(64 << 10))), "key without flag");
    assert!(matches!(e, Error::NotEncrypted(_)), "{e}");
    let wrong = Encryption::new(MasterKey::from_bytes([3; 32])).encrypt_existing();
    let e = open_err(DB::open(tuned(&a).with_encryption(wrong)), "wrong key");
    assert!(matches!(e, Error::WrongMasterKey), "{e}");
    assert_eq!(dir_contents(&a), snapshot, "refused opens change nothing");
    let db = DB::open(tuned(&a).with_encryption(enc(64 << 10).encrypt_existing())).unwrap();
    check(&db, &model, "KEYS window, resumed");
    db.reencrypt().unwrap();
    assert_eq!(markers(&a), Vec::<String>::new());
    drop(db);

    // KEYS and CONVERT beside the plaintext manifest: the key alone opens it.
    let b = root.path().join("b");
    common::copy_dir(&plain, &b);
    for f in ["KEYS", "CONVERT"] {
        std::fs::copy(started.join(f), b.join(f)).unwrap();
    }
    let e = open_err(DB::open(tuned(&b)), "no key");
    assert!(matches!(e, Error::EncryptionRequired(_)), "{e}");
    let db = DB::open(tuned(&b).with_encryption(enc(64 << 10))).unwrap();
    check(&db, &model, "CONVERT window, resumed");
    db.reencrypt().unwrap();
    check(&db, &model, "CONVERT window, finished");
    assert_eq!(markers(&b), Vec::<String>::new());
    drop(db);

    // A finished database refuses its old plaintext manifest (and files) put back, and a
    // forged conversion state.
    for f in std::fs::read_dir(&plain).unwrap() {
        let p = f.unwrap().path();
        std::fs::copy(&p, b.join(p.file_name().unwrap())).unwrap();
    }
    let e = open_err(DB::open(tuned(&b).with_encryption(enc(64 << 10))), "downgraded");
    assert!(matches!(e, Error::NotEncrypted(_)), "{e}");
    let mut forged = std::fs::read(started.join("CONVERT")).unwrap();
    forged[12] ^= 1;
    std::fs::write(b.join("CONVERT"), forged).unwrap();
    let e = open_err(DB::open(tuned(&b).with_encryption(enc(64 << 10))), "forged state");
    assert!(e.is_corruption(), "{e}");
}

/// Opens `dir` whichever way it opens: without encryption, or (if it has keys) with the key;
/// says whether it took the key.
/// Runs `f` again while it fails with `Error::Locked`, for up to about two seconds. Other tests
/// of this binary spawn child processes: a child forked while a handle's lock file is open
/// shares that open file (and its lock) until it execs, so a lock released by a dropped handle
/// can stay held for a moment after the drop.
fn retry_locked<T>(mut f: impl FnMut() -> sealdb::Result<T>) -> sealdb::Result<T> {
    for _ in 0..100 {
        match f() {
            Err(Error::Locked(_)) => std::thread::sleep(Duration::from_millis(20)),
            r => return r,
        }
    }
    f()
}

fn open_either(dir: &Path, what: &str) -> (DB, bool) {
    match retry_locked(|| DB::open(tuned(dir).background_work(false))) {
        Ok(db) => (db, false),
        Err(Error::EncryptionRequired(_)) => (
            retry_locked(|| {
                DB::open(tuned(dir).background_work(false).with_encryption(enc(1 << 20)))
            })
            .unwrap_or_else(|e| panic!("{what}: opens neither way: {e}")),
            true,
        ),
        Err(e) => panic!("{what}: opens neither way: {e}"),
    }
}

/// An I/O failure at any step of `decrypt_database` (the process giving up there, as in a
/// crash) leaves a directory that opens one way or the other with every entry; running it
/// again finishes the job.
#[test]
fn decryption_interrupted_at_every_step() {
    use sealdb::io::{Fault, FaultFs, FaultOp};
    let root = common::fast_tempdir();
    let base = root.path().join("base");
    let mut model = build_plain(&base, 3000);
    {
        let db = DB::open(tuned(&base).with_encryption(enc(1 << 20).encrypt_existing())).unwrap();
        db.put(key(9000), value(9000, 6)).unwrap();
        model.insert(key(9000), value(9000, 6));
        db.reencrypt().unwrap();
    }
    let mut trials = 0;
    // Interrupted runs that left a plaintext database, and an encrypted one.
    let mut ways = [0; 2];
    for op in [FaultOp::Create, FaultOp::Write, FaultOp::Sync, FaultOp::Rename] {
        for skip in 0.. {
            let dir = root.path().join(format!("trial-{trials}"));
            trials += 1;
            common::copy_dir(&base, &dir);
            let fs = std::sync::Arc::new(FaultFs::new());
            fs.fail_after(op, skip, Fault::Error, true);
            let r = decrypt_database(tuned(&dir).with_fs(fs.clone()).with_encryption(enc(1)));
            let what = format!("{op:?} fails after {skip}");
            if fs.injected() == 0 {
                r.unwrap_or_else(|e| panic!("{what}: no fault injected, yet {e}"));
                break;
            }
            assert!(r.is_err(), "{what}: a failed step must be reported");
            let (db, keyed) = open_either(&dir, &what);
            ways[usize::from(keyed)] += 1;
            check(&db, &model, &what);
            drop(db);
            retry_locked(|| decrypt_database(tuned(&dir).with_encryption(enc(1)))).unwrap_or_else(
                |e| {
                    // Opened with the key above and found plain: nothing left to decrypt.
                    assert!(matches!(e, Error::NotEncrypted(_)), "{what}: again: {e}");
                },
            );
            let db = retry_locked(|| DB::open(tuned(&dir).background_work(false)))
                .unwrap_or_else(|e| panic!("{what}: plain open after the second run: {e}"));
            check(&db, &model, &what);
            drop(db);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    println!("{trials} trials; left plaintext {}, left encrypted {}", ways[0], ways[1]);
    assert!(trials > 20 && ways[0] > 0 && ways[1] > 0, "{trials} trials, {ways:?}");
}

/// An I/O failure at any step of the open that starts a conversion leaves a directory that
/// opens (plain before `KEYS` exists; with the key and `encrypt_existing` after) with every
/// entry, and the conversion then finishes with no plaintext left.
#[test]
fn conversion_start_interrupted_at_every_step() {
    use sealdb::io::{Fault, FaultFs, FaultOp};
    let root = common::fast_tempdir();
    let base = root.path().join("base");
    let model = build_plain(&base, 3000);
    let mut trials = 0;
    let mut ways = [0; 2];
    for op in [FaultOp::Create, FaultOp::Write, FaultOp::Sync, FaultOp::Rename] {
        for skip in 0.. {
            let dir = root.path().join(format!("trial-{trials}"));
            trials += 1;
            common::copy_dir(&base, &dir);
            let fs = std::sync::Arc::new(FaultFs::new());
            fs.fail_after(op, skip, Fault::Error, true);
            let opts = tuned(&dir).background_work(false).with_fs(fs.clone());
            let r = DB::open(opts.with_encryption(enc(1 << 20).encrypt_existing()));
            let what = format!("{op:?} fails after {skip}");
            if fs.injected() == 0 {
                drop(r.unwrap_or_else(|e| panic!("{what}: no fault injected, yet {e}")));
                break;
            }
            drop(r);
            let keyed = dir.join("KEYS").exists();
            ways[usize::from(keyed)] += 1;
            let db = retry_locked(|| {
                if keyed {
                    DB::open(
                        tuned(&dir)
                            .background_work(false)
                            .with_encryption(enc(1 << 20).encrypt_existing()),
                    )
                } else {
                    DB::open(tuned(&dir).background_work(false))
                }
            })
            .unwrap_or_else(|e| panic!("{what}: reopen (keys: {keyed}): {e}"));
            check(&db, &model, &what);
            drop(db);
            let db = retry_locked(|| {
                DB::open(tuned(&dir).with_encryption(enc(1 << 20).encrypt_existing()))
            })
            .unwrap_or_else(|e| panic!("{what}: conversion: {e}"));
            db.reencrypt().unwrap();
            check(&db, &model, &what);
            drop(db);
            assert_eq!(markers(&dir), Vec::<String>::new(), "{what}: plaintext left");
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    println!("{trials} trials; interrupted before KEYS {}, after {}", ways[0], ways[1]);
    assert!(trials > 20 && ways[0] > 0 && ways[1] > 0, "{trials} trials, {ways:?}");
}

/// Keyspaces survive both directions: encrypting a plaintext database with named keyspaces,
/// then decrypting it, keeps every keyspace's entries apart and leaves dropped ones dropped.
#[test]
fn keyspaces_survive_encryption_and_decryption() {
    let dir = tempfile::tempdir().unwrap();
    let plain = || Options::new(dir.path()).background_work(false).value_threshold(64);
    let sealed = |existing: bool| {
        let mut enc = Encryption::new(MasterKey::from_bytes(MASTER));
        if existing {
            enc = enc.encrypt_existing();
        }
        Options::new(dir.path()).background_work(false).value_threshold(64).with_encryption(enc)
    };
    let check = |db: &DB| {
        let users = db.keyspace("users").unwrap();
        assert_eq!(db.keyspace_names().unwrap(), vec!["users".to_owned()]);
        for i in 0..200u32 {
            assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 0)), "default keyspace, key {i}");
            assert_eq!(users.get(key(i)).unwrap(), Some(value(i, 1)), "users, key {i}");
        }
        assert_eq!(db.iter().count(), 200);
        assert_eq!(users.iter().count(), 200);
    };
    {
        let db = DB::open(plain()).unwrap();
        let users = db.keyspace("users").unwrap();
        let gone = db.keyspace("gone").unwrap();
        for i in 0..200u32 {
            db.put(key(i), value(i, 0)).unwrap();
            users.put(key(i), value(i, 1)).unwrap();
            gone.put(key(i), value(i, 2)).unwrap();
        }
        db.flush().unwrap();
        db.drop_keyspace("gone").unwrap();
        check(&db);
    }
    {
        let db = DB::open(sealed(true)).unwrap();
        db.reencrypt().unwrap();
        check(&db);
    }
    decrypt_database(sealed(false)).unwrap();
    let db = DB::open(plain()).unwrap();
    check(&db);
    assert!(db.keyspace("gone").unwrap().iter().next().is_none(), "a dropped keyspace stays empty");
}
