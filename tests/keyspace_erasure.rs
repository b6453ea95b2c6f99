//! Crypto-erasure of a dropped keyspace: in an encrypted database every named keyspace's
//! tables and value-log entries are sealed under its own key too, and `drop_keyspace` destroys
//! that key before it returns. A copy of the database taken before the drop then no longer
//! opens with the live registry (its files of the dropped keyspace fail), while the other
//! keyspaces read right, before and after reopen, after compaction and GC, and after kill -9
//! at any point of a drop.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use sealdb::{Encryption, Error, MasterKey, Options, DB};

const MASTER: [u8; 32] = [0x5a; 32];

fn options(dir: &Path) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(MasterKey::from_bytes(MASTER)))
        .value_threshold(256)
        .memtable_size(64 << 10)
        .vlog_segment_size(256 << 10)
}

/// Value `i` of keyspace `ks`: large ones (every third) go to the value log.
fn value(ks: &str, i: u32) -> Vec<u8> {
    let v = format!("{ks}-value-{i:05}-");
    if i.is_multiple_of(3) {
        v.repeat(40).into_bytes()
    } else {
        v.into_bytes()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// Writes keys `from..to` to the keyspaces "kept" and "doomed" and to the default one.
fn fill(db: &DB, from: u32, to: u32) {
    let kept = db.keyspace("kept").unwrap();
    let doomed = db.keyspace("doomed").unwrap();
    for i in from..to {
        kept.put(key(i), value("kept", i)).unwrap();
        doomed.put(key(i), value("doomed", i)).unwrap();
        db.put(key(i), value("default", i)).unwrap();
    }
}

fn check_survivors(db: &DB, n: u32, what: &str) {
    let kept = db.keyspace("kept").unwrap();
    for i in 0..n {
        assert_eq!(kept.get(key(i)).unwrap(), Some(value("kept", i)), "{what}: kept key {i}");
        assert_eq!(db.get(key(i)).unwrap(), Some(value("default", i)), "{what}: default key {i}");
    }
    assert_eq!(kept.iter().count(), n as usize, "{what}: kept count");
}

#[test]
fn a_dropped_keyspace_is_unreadable_with_the_live_keys_and_the_others_read_right() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let before = root.path().join("before");
    let n = 600;
    {
        let db = DB::open(options(&dir)).unwrap();
        fill(&db, 0, n / 2);
        db.flush().unwrap();
        fill(&db, n / 2, n); // in the memtable and the log at the checkpoint and the drop
        db.checkpoint(&before).unwrap();
        let doomed = db.keyspace("doomed").unwrap();
        db.drop_keyspace("doomed").unwrap();
        assert!(matches!(doomed.get(key(1)), Err(Error::KeyspaceDropped)));
        assert_eq!(db.keyspace_names().unwrap(), vec!["kept".to_string()]);
        check_survivors(&db, n, "after the drop");
        let audit = std::fs::read_to_string(dir.join("AUDIT.log")).unwrap();
        assert!(audit.contains("\"event\":\"keyspace_erased\""), "{audit}");
    }

    // The copy taken before the drop opens with its own registry, and holds the keyspace ...
    {
        let db = DB::open(options(&before)).unwrap();
        let doomed = db.keyspace("doomed").unwrap();
        for i in (0..n).step_by(7) {
            assert_eq!(doomed.get(key(i)).unwrap(), Some(value("doomed", i)), "copy key {i}");
        }
    }
    // ... but not with the live one: the dropped keyspace's key is gone from it.
    let mixed = root.path().join("mixed");
    common::copy_dir(&before, &mixed);
    std::fs::copy(dir.join("KEYS"), mixed.join("KEYS")).unwrap();
    match DB::open(options(&mixed)) {
        Err(e) => {
            assert!(e.is_corruption(), "{e}");
            assert!(e.to_string().contains("dropped keyspace"), "{e}");
        }
        Ok(_) => panic!("a copy from before the drop opened with the live registry"),
    }

    // Reopen, compact (GC drops the erased value-log entries), reopen, verify offline.
    {
        let db = DB::open(options(&dir)).unwrap();
        check_survivors(&db, n, "after reopen");
        assert!(db.keyspace_names().unwrap() == vec!["kept".to_string()]);
        db.compact().unwrap();
        check_survivors(&db, n, "after compaction");
        // A keyspace made later under the same name is new and empty, with a key of its own.
        let again = db.keyspace("doomed").unwrap();
        assert_eq!(again.get(key(1)).unwrap(), None);
        again.put(key(1), value("again", 3)).unwrap();
        db.flush().unwrap();
    }
    {
        let db = DB::open(options(&dir)).unwrap();
        check_survivors(&db, n, "after the second reopen");
        assert_eq!(db.keyspace("doomed").unwrap().get(key(1)).unwrap(), Some(value("again", 3)));
    }
    let report = sealdb::verify(&dir, Some(&MasterKey::from_bytes(MASTER))).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// In an unencrypted database a drop still works (there is no key to destroy).
#[test]
fn drop_in_an_unencrypted_database() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let plain = |d: &Path| Options::new(d).value_threshold(256).memtable_size(64 << 10);
    let db = DB::open(plain(&dir)).unwrap();
    fill(&db, 0, 200);
    db.drop_keyspace("doomed").unwrap();
    check_survivors(&db, 200, "unencrypted");
    drop(db);
    let db = DB::open(plain(&dir)).unwrap();
    check_survivors(&db, 200, "unencrypted, reopened");
}

/// The child of [`kill_9_during_drops`]: fills, syncs, says so, then drops and recreates
/// keyspaces in a loop until killed.
#[test]
#[ignore = "run by kill_9_during_drops as a child process"]
fn drop_child() {
    let Ok(dir) = std::env::var("SEALDB_DROP_CHILD_DIR") else { return };
    let dir = Path::new(&dir);
    let db = DB::open(options(dir)).unwrap();
    if db.keyspace_names().unwrap().is_empty() {
        fill(&db, 0, 300);
        db.sync().unwrap();
    }
    println!("ready");
    for round in 0u32.. {
        let ks = db.keyspace("doomed").unwrap();
        for i in 0..50 {
            ks.put(key(i), value("doomed", i + round)).unwrap();
        }
        db.drop_keyspace("doomed").unwrap();
    }
}

#[test]
fn kill_9_during_drops() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(common::seed("kill_9_during_drops", 19));
    for cycle in 0..6 {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "drop_child", "--nocapture", "--test-threads=1"])
            .env("SEALDB_DROP_CHILD_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("ready") {
            let got = std::io::Read::read(&mut out, &mut buf).unwrap();
            assert!(got > 0, "cycle {cycle}: child ended before it was ready");
            seen.extend_from_slice(&buf[..got]);
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        let db = DB::open(options(&dir)).unwrap();
        check_survivors(&db, 300, &format!("cycle {cycle}"));
        // "doomed" is whole or gone: never a keyspace whose files cannot be read.
        let names = db.keyspace_names().unwrap();
        if names.contains(&"doomed".to_string()) {
            let ks = db.keyspace("doomed").unwrap();
            let got: BTreeMap<Vec<u8>, Vec<u8>> = ks.iter().map(|r| r.unwrap()).collect();
            assert!(got.len() <= 50, "cycle {cycle}: {} keys", got.len());
        }
        drop(db);
    }
    let report = sealdb::verify(&dir, Some(&MasterKey::from_bytes(MASTER))).unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// A keyspace of a database written without encryption gets its key when the database is
/// encrypted (`encrypt_existing`): once `reencrypt()` returns, its tables are under that key,
/// so a later drop erases them too.
#[test]
fn keyspaces_of_a_database_encrypted_later_are_erased_by_a_drop() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let before = root.path().join("before");
    {
        let db = DB::open(Options::new(&dir).value_threshold(256)).unwrap();
        fill(&db, 0, 300);
        db.flush().unwrap();
    }
    let enc =
        || Encryption::new(MasterKey::from_bytes(MASTER)).encrypt_existing().reencrypt_rate(0);
    {
        let db = DB::open(options(&dir).with_encryption(enc())).unwrap();
        db.reencrypt().unwrap();
        assert_eq!(db.encryption_status().unwrap().plaintext_files_left, 0);
        db.checkpoint(&before).unwrap();
        db.drop_keyspace("doomed").unwrap();
        check_survivors(&db, 300, "encrypted, after the drop");
    }
    let mixed = root.path().join("mixed");
    common::copy_dir(&before, &mixed);
    std::fs::copy(dir.join("KEYS"), mixed.join("KEYS")).unwrap();
    match DB::open(options(&mixed)) {
        Err(e) => assert!(e.to_string().contains("dropped keyspace"), "{e}"),
        Ok(_) => panic!("a copy from before the drop opened with the live registry"),
    }
    let db = DB::open(options(&dir)).unwrap();
    check_survivors(&db, 300, "encrypted, reopened");
}
