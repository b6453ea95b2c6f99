//! What the manifest anchors: the audit log's chain, rotation by volume across reopens, each
//! table's size, and file numbers that are never reused; and `DB::rekey`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealdb::io::{Fault, FaultFs, FaultOp};
use sealdb::{Encryption, Error, MasterKey, Options, DB};

fn opts(dir: &Path, key: &MasterKey) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .memtable_size(64 << 10)
        .value_threshold(512)
        .vlog_segment_size(128 << 10)
        .target_file_size(128 << 10)
}

/// Incompressible bytes (xorshift), so sealed volume follows written volume.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fill(db: &DB, n: u32, tag: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for i in 0..n {
        let k = format!("key{i:06}").into_bytes();
        let len = if i % 3 == 0 { 2000 } else { 60 };
        let v = noise(tag * 1_000_000 + u64::from(i), len);
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    model
}

fn check(db: &DB, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()));
    }
}

fn audit_text(dir: &Path) -> String {
    String::from_utf8(std::fs::read(dir.join("AUDIT.log")).unwrap()).unwrap()
}

fn assert_audit_corrupt(db: &DB, what: &str) -> u64 {
    match db.verify_audit_log() {
        Err(Error::Corruption { file, offset, .. }) => {
            assert!(file.ends_with("AUDIT.log"), "{what}: {}", file.display());
            offset
        }
        other => panic!("{what}: expected corruption, got {other:?}"),
    }
}

#[test]
fn audit_log_tail_deletion_and_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    {
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        db.rotate_data_key().unwrap();
        db.rotate_master_key(key.clone()).unwrap();
        assert!(db.verify_audit_log().unwrap() >= 3);
    }
    let log = dir.path().join("AUDIT.log");

    // A torn last line (crash mid-append) is cut at open and recorded; the chain verifies.
    let mut torn = std::fs::read(&log).unwrap();
    let whole = torn.len();
    torn.extend_from_slice(br#"{"ts":1,"event":"rotate_data_k"#);
    std::fs::write(&log, &torn).unwrap();
    {
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        let n = db.verify_audit_log().unwrap();
        let text = audit_text(dir.path());
        assert_eq!(text.lines().count(), n);
        assert!(text.contains("\"event\":\"audit_repaired\""));
        assert!(!text.contains("rotate_data_k\n"));
        assert_eq!(text.as_bytes()[..whole], torn[..whole]);
    }

    // Dropped trailing lines: open goes on, verification reports it, for good.
    let text = audit_text(dir.path());
    let lines: Vec<&str> = text.lines().collect();
    let kept: String = lines[..lines.len() - 2].iter().flat_map(|l| [*l, "\n"]).collect();
    std::fs::write(&log, kept.as_bytes()).unwrap();
    for round in 0..2 {
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        let line = assert_audit_corrupt(&db, &format!("dropped tail, open {round}"));
        assert_eq!(line, lines.len() as u64 - 1, "names the first missing line");
        db.rotate_data_key().unwrap();
        assert_audit_corrupt(&db, "after more events");
    }
    let text = audit_text(dir.path());
    assert!(text.starts_with(&kept), "a damaged log is never rewritten");
    assert_eq!(text.matches("\"event\":\"audit_damaged\"").count(), 1);
}

#[test]
fn audit_log_deleted_or_replaced_is_detected() {
    let key = MasterKey::generate();
    let other = tempfile::tempdir().unwrap();
    {
        let db = DB::open(opts(other.path(), &key)).unwrap();
        db.rotate_data_key().unwrap();
    }
    for replace in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = DB::open(opts(dir.path(), &key)).unwrap();
            db.rotate_data_key().unwrap();
            db.verify_audit_log().unwrap();
            // Deleted while open: reported at once.
            std::fs::remove_file(dir.path().join("AUDIT.log")).unwrap();
            assert_eq!(assert_audit_corrupt(&db, "deleted while open"), 1);
        }
        if replace {
            let theirs = std::fs::read(other.path().join("AUDIT.log")).unwrap();
            std::fs::write(dir.path().join("AUDIT.log"), theirs).unwrap();
        }
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        assert_audit_corrupt(&db, if replace { "replaced" } else { "deleted" });
        drop(db);
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        assert_audit_corrupt(&db, "reopened");
        assert!(audit_text(dir.path()).contains("\"event\":\"audit_damaged\""));
    }
}

/// Four sessions each write a quarter of `rotate_after_bytes`: no session alone reaches it,
/// together they do.
#[test]
fn rotation_by_volume_survives_reopen() {
    const THRESHOLD: u64 = 2 << 20;
    for (what, value_len) in [("inline", 200usize), ("value log", 4000)] {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let o = || {
            Options::new(dir.path())
                .with_encryption(Encryption::new(key.clone()).rotate_after_bytes(THRESHOLD))
                .value_threshold(1024)
                .memtable_size(256 << 10)
        };
        let first = DB::open(o()).unwrap().encryption_status().unwrap().current_key_id;
        let per_session = THRESHOLD / 4;
        let mut rotated_in = None;
        for session in 0..4u64 {
            let db = DB::open(o()).unwrap();
            let mut written = 0u64;
            let mut i = 0u64;
            while written < per_session {
                let k = format!("s{session}-{i:08}");
                db.put(k.as_bytes(), noise(session << 32 | i, value_len)).unwrap();
                written += (k.len() + value_len) as u64;
                i += 1;
            }
            db.sync().unwrap();
            // Key upkeep runs about once a second.
            let deadline = Instant::now() + Duration::from_secs(if session == 3 { 10 } else { 2 });
            while Instant::now() < deadline {
                if db.encryption_status().unwrap().current_key_id != first {
                    rotated_in = Some(session);
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if rotated_in.is_some() {
                break;
            }
        }
        let session = rotated_in.unwrap_or_else(|| panic!("{what}: never rotated"));
        // Each session seals at most about twice what it writes (WAL, then a table or segment
        // at the next open), under half the threshold: only the persisted count rotates.
        assert!(session >= 1, "{what}: rotated within one session ({session})");
    }
}

#[test]
fn table_size_is_checked_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    {
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        fill(&db, 500, 1);
        db.flush().unwrap();
    }
    let table = common::files_with_suffix(dir.path(), ".sst").into_iter().next().unwrap();
    let path = dir.path().join(&table);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0; 16]);
    std::fs::write(&path, &bytes).unwrap();
    match DB::open(opts(dir.path(), &key)) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert_eq!(file, path);
            assert!(reason.contains("size"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

fn numbers(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let (stem, ext) = name.split_once('.')?;
            matches!(ext, "wal" | "sst" | "vlog").then(|| stem.parse().ok())?
        })
        .collect()
}

/// Bytes of a WAL end record in an encrypted database: block header, the next WAL's number,
/// tag (`docs/format.md`).
const END_RECORD_LEN: u64 = 32 + 8 + 16;

#[test]
fn lost_wal_number_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    // Without maps: the WALs end at their last record, so an end record is cut by length.
    let o = |d: &Path| opts(d, &key).background_work(false).max_immutable_memtables(8).mmap(false);
    let db = DB::open(o(dir.path())).unwrap();
    fill(&db, 300, 1);
    db.flush().unwrap();
    // New WALs from here on, and no manifest write (nothing is flushed).
    let before = numbers(dir.path());
    let mut i = 0u64;
    while numbers(dir.path()).iter().filter(|n| !before.contains(n)).count() < 3 {
        db.put(format!("w{i:08}"), noise(i, 300)).unwrap();
        i += 1;
    }
    db.sync().unwrap();
    // The crash: the directory as it is now, without the close's manifest write.
    common::copy_dir(dir.path(), crashed.path());
    drop(db);
    let used = numbers(crashed.path());
    let newest = *used.last().unwrap();
    let wal = crashed.path().join(format!("{newest:06}.wal"));
    assert!(wal.exists(), "the newest file is a WAL: {used:?}");
    // Lost as in a crash while switching WALs: the new WAL gone, the old one without the end
    // record naming it.
    std::fs::remove_file(&wal).unwrap();
    let previous = used
        .iter()
        .rev()
        .copied()
        .find(|&n| n < newest && crashed.path().join(format!("{n:06}.wal")).exists());
    let previous = crashed.path().join(format!("{:06}.wal", previous.unwrap()));
    let f = std::fs::OpenOptions::new().write(true).open(&previous).unwrap();
    f.set_len(f.metadata().unwrap().len() - END_RECORD_LEN).unwrap();
    drop(f);

    let left = numbers(crashed.path());
    let db = DB::open(o(crashed.path())).unwrap();
    fill(&db, 300, 2);
    db.flush().unwrap();
    let fresh: BTreeSet<u64> = numbers(crashed.path()).difference(&left).copied().collect();
    assert!(!fresh.is_empty());
    assert!(fresh.iter().all(|&n| n > newest), "new {fresh:?} vs used up to {newest}");
}

#[test]
fn lost_compaction_output_numbers_are_not_reused() {
    let key = MasterKey::generate();
    let o = |dir: &Path, fs: Option<&FaultFs>| {
        let o = opts(dir, &key).background_work(false).value_threshold(1 << 20);
        match fs {
            Some(fs) => o.with_fs(Arc::new(fs.clone())),
            None => o,
        }
    };
    let prepare = |dir: &Path, fs: Option<&FaultFs>| {
        let db = DB::open(o(dir, fs)).unwrap();
        fill(&db, 1500, 1);
        db.flush().unwrap();
        fill(&db, 1500, 2);
        db.flush().unwrap();
        let before = numbers(dir);
        (db, before)
    };
    // How many numbers this compaction takes: the same writes and compaction, without a fault.
    let twin = tempfile::tempdir().unwrap();
    let (db, before) = prepare(twin.path(), None);
    db.compact().unwrap();
    drop(db);
    let max_before = *before.last().unwrap();
    let taken = numbers(twin.path()).iter().filter(|&&n| n > max_before).count() as u64;
    assert!(taken >= 8, "the compaction wrote {taken} files");

    // Now its manifest write fails: the tables it wrote are removed (the manifest on disk does
    // not name them), as a crash could lose them; their numbers must stay used.
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new();
    let (db, before) = prepare(dir.path(), Some(&fs));
    fs.fail_after(FaultOp::Rename, 0, Fault::Error, true);
    assert!(db.compact().is_err());
    drop(db);
    fs.clear();
    let max_before = *before.last().unwrap();
    let left = numbers(dir.path());

    let db = DB::open(o(dir.path(), None)).unwrap();
    fill(&db, 300, 3);
    db.flush().unwrap();
    let fresh: BTreeSet<u64> = numbers(dir.path()).difference(&left).copied().collect();
    assert!(!fresh.is_empty());
    assert!(
        fresh.iter().all(|&n| n > max_before + taken),
        "new {fresh:?} vs {taken} numbers used after {max_before}"
    );
}

#[test]
fn rekey_replaces_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &old)).unwrap();
    let mut model = fill(&db, 2000, 1);
    db.flush().unwrap();
    model.extend(fill(&db, 300, 2));
    let old_keys = std::fs::read(dir.path().join("KEYS")).unwrap();
    let old_ids: BTreeSet<u32> =
        db.encryption_status().unwrap().keys.iter().map(|k| k.id).collect();

    db.rekey(new.clone()).unwrap();
    check(&db, &model);
    let status = db.encryption_status().unwrap();
    assert!(!old_ids.contains(&status.current_key_id));
    assert_eq!(status.keys.len(), 1, "old data keys destroyed");
    assert_eq!(status.reencrypt_bytes_left, 0);
    db.verify_audit_log().unwrap();
    let text = audit_text(dir.path());
    assert!(text.contains("\"event\":\"audit_key_rotated\""));
    drop(db);

    // Every file in use is sealed under the new data key, which no old KEYS copy holds.
    for name in std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()) {
        let name = name.into_string().unwrap();
        let sealed =
            name == "MANIFEST" || [".sst", ".wal", ".vlog"].iter().any(|s| name.ends_with(s));
        if sealed {
            let b = std::fs::read(dir.path().join(&name)).unwrap();
            let id = u32::from_le_bytes(b[16..20].try_into().unwrap());
            assert_eq!(id, status.current_key_id, "{name}");
        }
    }
    assert!(matches!(DB::open(opts(dir.path(), &old)), Err(Error::WrongMasterKey)));
    let copy = tempfile::tempdir().unwrap();
    common::copy_dir(dir.path(), copy.path());
    std::fs::write(copy.path().join("KEYS"), &old_keys).unwrap();
    match DB::open(opts(copy.path(), &old)) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(_) => panic!("an old KEYS copy with the old master key opened the database"),
    }

    let db = DB::open(opts(dir.path(), &new)).unwrap();
    check(&db, &model);
    assert!(db.verify_audit_log().unwrap() > text.lines().count());
}
