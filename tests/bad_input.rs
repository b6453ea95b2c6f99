//! Edge-case inputs and misuse: empty and multi-MiB keys and values, bad paths, read-only
//! directories, double opens, encryption mismatches and wrong keys (which must not touch a
//! byte), deletes of absent keys, batch ordering, degenerate ranges, cipher changes.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::{collect, dir_contents, show, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Cipher, Encryption, Error, MasterKey, Options, WriteBatch, DB};

type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);
/// A way to open a database that must fail, and the check of its error.
type Attempt<'a> = (&'a str, Options, fn(&Error) -> bool);

fn small(path: &Path, mode: Mode, key: &MasterKey) -> Options {
    common::options(path, mode, key).memtable_size(256 << 10).background_work(false)
}

fn open(o: Options) -> DB {
    DB::open(o).unwrap_or_else(|e| panic!("open: {e}"))
}

/// Checks that the database holds exactly `expected` (the shared model check); `absent` keys,
/// which the test names because they were written, deleted or are near written keys, must
/// read as missing.
fn check(ctx: &str, db: &DB, expected: &BTreeMap<Vec<u8>, Vec<u8>>, absent: &[&[u8]]) {
    assert!(absent.iter().all(|k| !expected.contains_key(*k)), "{ctx}: `absent` lists a live key");
    common::check_model(ctx, db, expected);
    common::check_gets(ctx, db, expected, absent.iter().copied());
}

#[test]
fn empty_key_and_empty_value_round_trip() {
    for mode in [Mode::Plain, Mode::Aes] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let key = MasterKey::generate();
        let db = open(small(&path, mode, &key));
        db.put(b"", b"").expect("put empty key, empty value");
        db.put(b"a", b"").expect("put empty value");
        db.put(b"b", b"x").expect("put");
        let mut expected = BTreeMap::new();
        expected.insert(b"".to_vec(), b"".to_vec());
        expected.insert(b"a".to_vec(), b"".to_vec());
        expected.insert(b"b".to_vec(), b"x".to_vec());
        let absent: &[&[u8]] = &[b"\x00", b"c", b"aa"];
        check(&format!("{mode:?} memtable"), &db, &expected, absent);
        // An empty value is a value, not a deletion: prefix and range see it too.
        let got = collect(db.prefix(b"a")).expect("prefix");
        assert_eq!(got, vec![(b"a".to_vec(), Vec::new())], "{mode:?}: prefix(a)");
        let got = collect(db.range::<&[u8], _>(..=&b""[..])).expect("range");
        assert_eq!(got, vec![(Vec::new(), Vec::new())], "{mode:?}: range(..=\"\")");
        db.flush().expect("flush");
        check(&format!("{mode:?} after flush"), &db, &expected, absent);
        db.close().expect("close");
        let db = open(small(&path, mode, &key));
        check(&format!("{mode:?} after reopen"), &db, &expected, absent);
        db.compact().expect("compact");
        check(&format!("{mode:?} after compaction"), &db, &expected, absent);

        // Overwrite and delete the empty key; the empty value of "a" stays.
        db.put(b"", b"now set").expect("put");
        assert_eq!(db.get(b"").expect("get"), Some(b"now set".to_vec()), "{mode:?}");
        db.delete(b"").expect("delete empty key");
        expected.remove(&b""[..]);
        let absent: &[&[u8]] = &[b"", b"\x00", b"c"];
        check(&format!("{mode:?} after deleting the empty key"), &db, &expected, absent);
        db.flush().expect("flush");
        drop(db);
        let db = open(small(&path, mode, &key));
        check(
            &format!("{mode:?} after deleting the empty key and reopening"),
            &db,
            &expected,
            absent,
        );
        db.compact().expect("compact");
        check(
            &format!("{mode:?} after deleting the empty key and compacting"),
            &db,
            &expected,
            absent,
        );
    }
}

#[test]
fn multi_mib_keys_and_values_round_trip() {
    for (mode, default_seed) in [(Mode::Plain, 0xB16_0001), (Mode::ChaCha, 0xB16_0002)] {
        let seed = common::seed(&format!("big {mode:?}"), default_seed);
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let key = MasterKey::generate();
        let mut random = |n: usize| -> Vec<u8> {
            let mut v = vec![0u8; n];
            rng.fill(&mut v[..]);
            v
        };
        let big_key = random(3 << 20);
        let big_value = random(5 << 20);
        let compressible_key: Vec<u8> = (0..(3u32 << 20)).map(|i| (i / 1000) as u8).collect();
        let compressible_value: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
        let mut expected = BTreeMap::new();
        expected.insert(big_key.clone(), big_value.clone());
        expected.insert(b"small key".to_vec(), compressible_value.clone());
        expected.insert(compressible_key.clone(), b"v".to_vec());
        expected.insert(b"neighbour".to_vec(), b"n".to_vec());

        let db = open(small(&path, mode, &key));
        for (k, v) in &expected {
            db.put(k, v)
                .unwrap_or_else(|e| panic!("{mode:?}: put of {} bytes: {e}", k.len() + v.len()));
        }
        let absent: &[&[u8]] = &[&big_key[..big_key.len() - 1], b"small ke", b""];
        check(&format!("{mode:?} memtable"), &db, &expected, absent);
        db.flush().expect("flush");
        check(&format!("{mode:?} after flush"), &db, &expected, absent);
        db.put(b"after", b"flush").expect("put");
        expected.insert(b"after".to_vec(), b"flush".to_vec());
        db.flush().expect("flush");
        db.compact().expect("compact");
        check(&format!("{mode:?} after compaction"), &db, &expected, absent);
        let got = collect(db.prefix(&big_key[..64])).expect("prefix");
        assert!(
            got.len() == 1 && got[0].0 == big_key && got[0].1 == big_value,
            "{mode:?}: prefix of the big key returned {} entries",
            got.len()
        );
        db.close().expect("close");
        let db = open(small(&path, mode, &key));
        check(&format!("{mode:?} after reopen"), &db, &expected, absent);
        // Replace the big value by a small one, and the small by a big one.
        db.put(&big_key, b"tiny").expect("put");
        expected.insert(big_key.clone(), b"tiny".to_vec());
        db.put(b"neighbour", &big_value).expect("put");
        expected.insert(b"neighbour".to_vec(), big_value.clone());
        check(&format!("{mode:?} after overwrites"), &db, &expected, absent);
        drop(db);
        let db = open(small(&path, mode, &key));
        check(
            &format!("{mode:?} after overwrites and reopen (WAL replay)"),
            &db,
            &expected,
            absent,
        );
        db.compact().expect("compact");
        check(&format!("{mode:?} after overwrites and compaction"), &db, &expected, absent);
    }
}

/// Runs `f`, turning a panic into a test failure that names `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|p| panic!("{what} panicked: {}", common::panic_message(&*p)))
}

#[test]
fn opening_a_regular_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"some user data").expect("write");
    let r = no_panic("opening a regular file", || DB::open(Options::new(&file)));
    let e = common::open_err(r, "opening a regular file as a database");
    assert!(!e.is_corruption(), "a regular file is not a corrupt database: {e:?}");
    assert!(!e.to_string().is_empty());
    assert_eq!(std::fs::read(&file).expect("read"), b"some user data", "the file was modified");

    let key = MasterKey::generate();
    let r = no_panic("opening a regular file with encryption", || {
        DB::open(Options::new(&file).with_encryption(Encryption::new(key)))
    });
    assert!(r.is_err(), "opening a regular file with encryption must fail");
    assert_eq!(std::fs::read(&file).expect("read"), b"some user data", "the file was modified");

    let below = file.join("db");
    let r = no_panic("opening below a regular file", || DB::open(Options::new(&below)));
    assert!(r.is_err(), "a path below a regular file must fail");
}

#[test]
fn missing_parent_directories_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a").join("b").join("c");
    let db = open(Options::new(&path));
    db.put(b"k", b"v").expect("put");
    db.close().expect("close");
    let db = open(Options::new(&path));
    assert_eq!(db.get(b"k").expect("get"), Some(b"v".to_vec()));
}

/// Makes directories read-only for the test and undoes it when dropped: by permission bits
/// where they are enforced, else (as root) with the immutable attribute, which binds root too.
#[cfg(unix)]
struct ReadOnly {
    dirs: Vec<std::path::PathBuf>,
    immutable: bool,
}

#[cfg(unix)]
impl ReadOnly {
    /// `None` when neither works here (root on a file system without `chattr`).
    fn new(dirs: &[&std::path::Path]) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        let dirs: Vec<_> = dirs.iter().map(|d| d.to_path_buf()).collect();
        for d in &dirs {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        }
        let mut guard = ReadOnly { dirs, immutable: false };
        if guard.writes_refused() {
            return Some(guard);
        }
        guard.immutable = true;
        for d in &guard.dirs {
            // Recursive: files inside must not be written either.
            let ok = std::process::Command::new("chattr")
                .arg("-R")
                .arg("+i")
                .arg(d)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return None;
            }
        }
        guard.writes_refused().then_some(guard)
    }

    fn writes_refused(&self) -> bool {
        self.dirs.iter().all(|d| {
            let probe = d.join("probe");
            let refused = std::fs::write(&probe, b"x").is_err();
            let _ = std::fs::remove_file(&probe);
            refused
        })
    }
}

#[cfg(unix)]
impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for d in &self.dirs {
            if self.immutable {
                let _ = std::process::Command::new("chattr").arg("-R").arg("-i").arg(d).status();
            }
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[cfg(unix)]
#[test]
fn read_only_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let existing = dir.path().join("existing");
    let db = open(Options::new(&existing));
    db.put(b"k", b"v").expect("put");
    db.close().expect("close");
    let parent = dir.path().join("parent");
    std::fs::create_dir(&parent).expect("mkdir");

    let before = dir_contents(&existing);
    let Some(guard) = ReadOnly::new(&[&existing, &parent]) else {
        eprintln!("skipped: neither permissions nor the immutable attribute bind here");
        return;
    };
    eprintln!(
        "read-only by {}",
        if guard.immutable { "the immutable attribute (chattr +i)" } else { "permissions" }
    );
    let r1 =
        no_panic("opening a read-only database directory", || DB::open(Options::new(&existing)));
    let r2 = no_panic("creating a database in a read-only directory", || {
        DB::open(Options::new(parent.join("db")))
    });
    let after = dir_contents(&existing);
    drop(guard);
    let e = common::open_err(r1, "opening a read-only database directory");
    assert!(!e.is_corruption(), "a read-only directory is not corruption: {e:?}");
    eprintln!("opening: {e}");
    match &r2 {
        Err(e) => eprintln!("creating: {e}"),
        Ok(_) => panic!("creating a database in a read-only directory must fail"),
    }
    assert!(before == after, "the failed open changed the directory");
    let db = open(Options::new(&existing));
    assert_eq!(db.get(b"k").expect("get"), Some(b"v".to_vec()));
}

#[test]
fn second_open_is_locked() {
    for mode in [Mode::Plain, Mode::Aes] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let key = MasterKey::generate();
        let first = open(small(&path, mode, &key));
        first.put(b"k", b"v1").expect("put");
        for _ in 0..2 {
            match no_panic("a second open", || DB::open(small(&path, mode, &key))) {
                Err(Error::Locked(p)) => assert!(
                    p.starts_with(&path) || path.canonicalize().is_ok_and(|c| p.starts_with(c)),
                    "{mode:?}: Locked names {}, not the database {}",
                    p.display(),
                    path.display()
                ),
                Err(e) => panic!("{mode:?}: a second open gave {e:?}, expected Error::Locked"),
                Ok(_) => panic!("{mode:?}: the same directory was opened twice"),
            }
        }
        // The refused open disturbed nothing.
        first.put(b"k2", b"v2").expect("put after the refused open");
        assert_eq!(first.get(b"k").expect("get"), Some(b"v1".to_vec()));
        first.flush().expect("flush");
        drop(first);
        let second = DB::open(small(&path, mode, &key))
            .unwrap_or_else(|e| panic!("{mode:?}: open after the first was dropped: {e}"));
        assert_eq!(second.get(b"k").expect("get"), Some(b"v1".to_vec()));
        assert_eq!(second.get(b"k2").expect("get"), Some(b"v2".to_vec()));
        second.close().expect("close");
        let third = DB::open(small(&path, mode, &key))
            .unwrap_or_else(|e| panic!("{mode:?}: open after close(): {e}"));
        assert_eq!(third.get(b"k2").expect("get"), Some(b"v2".to_vec()));
    }
}

fn path_matches(p: &Path, path: &Path) -> bool {
    p.starts_with(path) || path.canonicalize().is_ok_and(|c| p.starts_with(c))
}

#[test]
fn encryption_mismatch_and_wrong_key_are_clear_errors_that_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let enc_path = dir.path().join("encrypted");
    let plain_path = dir.path().join("plain");
    let key = MasterKey::generate();
    let wrong = MasterKey::generate();
    let mut expected = BTreeMap::new();
    for i in 0..500u32 {
        expected.insert(format!("key{i:04}").into_bytes(), format!("value{i}").into_bytes());
    }
    for (path, mode) in [(&enc_path, Mode::Aes), (&plain_path, Mode::Plain)] {
        let db = open(small(path, mode, &key));
        for (i, (k, v)) in expected.iter().enumerate() {
            db.put(k, v).expect("put");
            if i == 250 {
                db.flush().expect("flush");
            }
        }
        // Leave data in both the tables and the WAL.
        drop(db);
    }

    let before = dir_contents(&enc_path);
    assert!(before.keys().any(|p| p.ends_with("KEYS")), "an encrypted database has a KEYS file");
    let attempts: Vec<Attempt> = vec![
        ("no encryption", Options::new(&enc_path), |e| matches!(e, Error::EncryptionRequired(_))),
        ("wrong key", small(&enc_path, Mode::Aes, &wrong), |e| matches!(e, Error::WrongMasterKey)),
        ("wrong key, other cipher", small(&enc_path, Mode::ChaCha, &wrong), |e| {
            matches!(e, Error::WrongMasterKey)
        }),
    ];
    for (what, o, is_expected) in attempts {
        let r = no_panic(what, || DB::open(o));
        let e = r.err().unwrap_or_else(|| panic!("encrypted database opened with {what}"));
        assert!(is_expected(&e), "encrypted database opened with {what}: got {e:?}");
        if let Error::EncryptionRequired(p) = &e {
            assert!(path_matches(p, &enc_path), "error names {}, not the database", p.display());
        }
        let after = dir_contents(&enc_path);
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|p| before.get(*p) != after.get(*p))
            .map(|p| p.display().to_string())
            .collect();
        assert!(changed.is_empty(), "opening with {what} changed files: {changed:?}");
    }
    let db = open(small(&enc_path, Mode::Aes, &key));
    check("encrypted database after the refused opens", &db, &expected, &[b"missing"]);
    drop(db);

    let before = dir_contents(&plain_path);
    assert!(!before.keys().any(|p| p.ends_with("KEYS")), "a plain database has no KEYS file");
    let r = no_panic("opening a plain database with encryption", || {
        DB::open(small(&plain_path, Mode::Aes, &key))
    });
    match r {
        Err(Error::NotEncrypted(p)) => {
            assert!(path_matches(&p, &plain_path), "error names {}, not the database", p.display());
        }
        Err(e) => panic!("plain database opened with encryption: got {e:?}, expected NotEncrypted"),
        Ok(_) => panic!("plain database opened with encryption"),
    }
    let after = dir_contents(&plain_path);
    assert!(before == after, "opening a plain database with encryption changed its files");
    let db = open(small(&plain_path, Mode::Plain, &key));
    check("plain database after the refused open", &db, &expected, &[b"missing"]);
}

#[test]
fn changing_the_cipher_keeps_old_data_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let key = MasterKey::generate();
    let mut expected = BTreeMap::new();
    let ciphers = [Mode::Aes, Mode::ChaCha, Mode::Aes];
    for (round, mode) in ciphers.into_iter().enumerate() {
        let db = open(small(&path, mode, &key));
        check(&format!("round {round} ({mode:?}) at open"), &db, &expected, &[b"missing"]);
        let status = db.encryption_status().expect("encrypted database has a status");
        let want = if mode == Mode::Aes { Cipher::Aes256Gcm } else { Cipher::ChaCha20Poly1305 };
        assert_eq!(status.cipher, want, "round {round}: cipher for new blocks");
        for i in 0..300u32 {
            let k = format!("r{round}-{i:04}").into_bytes();
            let v = format!("value {i} of round {round}").into_bytes();
            db.put(&k, &v).expect("put");
            expected.insert(k, v);
        }
        db.flush().expect("flush");
        check(&format!("round {round} ({mode:?}) after writes"), &db, &expected, &[b"missing"]);
        db.close().expect("close");
    }
    let db = open(small(&path, Mode::ChaCha, &key));
    db.compact().expect("compact");
    check("after compaction under ChaCha20-Poly1305", &db, &expected, &[b"missing"]);
    drop(db);
    let db = open(small(&path, Mode::Aes, &key));
    check("reopened under AES-256-GCM", &db, &expected, &[b"missing"]);
}

#[test]
fn deleting_absent_keys_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let key = MasterKey::generate();
    let db = open(small(&path, Mode::Plain, &key));
    db.delete(b"never written").expect("delete of an absent key");
    db.delete(b"never written").expect("second delete of an absent key");
    db.delete(b"").expect("delete of the absent empty key");
    let empty = BTreeMap::new();
    check("after deletes of absent keys", &db, &empty, &[b"never written", b""]);
    db.put(b"k", b"v").expect("put");
    db.delete(b"k").expect("delete");
    db.delete(b"k").expect("delete again");
    db.flush().expect("flush");
    db.delete(b"k").expect("delete after flush");
    db.delete(b"other").expect("delete");
    check("after deletes and flush", &db, &empty, &[b"k", b"other"]);
    db.compact().expect("compact");
    check("after compaction", &db, &empty, &[b"k", b"other"]);
    drop(db);
    let db = open(small(&path, Mode::Plain, &key));
    check("after reopen", &db, &empty, &[b"k", b"other", b"never written"]);
}

#[test]
fn batch_operations_apply_in_order() {
    for mode in [Mode::Plain, Mode::ChaCha] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let key = MasterKey::generate();
        let db = open(small(&path, mode, &key));
        db.put(b"old", b"in a table").expect("put");
        db.put(b"kept", b"in a table").expect("put");
        db.flush().expect("flush");

        let mut b = WriteBatch::new();
        b.put(b"put-then-delete", b"x");
        b.delete(b"put-then-delete");
        b.delete(b"delete-then-put");
        b.put(b"delete-then-put", b"present");
        b.put(b"put-twice", b"first");
        b.put(b"put-twice", b"second");
        b.put(b"old", b"overwritten");
        b.delete(b"old");
        b.put(b"", b"empty key in a batch");
        b.put(b"empty value", b"");
        db.write(b).expect("write");
        db.write(WriteBatch::new()).expect("an empty batch is fine");

        let mut expected = BTreeMap::new();
        expected.insert(b"delete-then-put".to_vec(), b"present".to_vec());
        expected.insert(b"put-twice".to_vec(), b"second".to_vec());
        expected.insert(b"kept".to_vec(), b"in a table".to_vec());
        expected.insert(b"".to_vec(), b"empty key in a batch".to_vec());
        expected.insert(b"empty value".to_vec(), Vec::new());
        let absent: &[&[u8]] = &[b"put-then-delete", b"old"];
        check(&format!("{mode:?} memtable"), &db, &expected, absent);
        db.flush().expect("flush");
        check(&format!("{mode:?} after flush"), &db, &expected, absent);
        drop(db);
        let db = open(small(&path, mode, &key));
        check(&format!("{mode:?} after reopen"), &db, &expected, absent);
        db.compact().expect("compact");
        check(&format!("{mode:?} after compaction"), &db, &expected, absent);
    }
}

/// A range whose start is after its end (or which excludes its only key) holds nothing: the
/// scan yields no entry and does not panic.
#[test]
fn inverted_and_empty_ranges_yield_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::generate();
    let db = open(small(&dir.path().join("db"), Mode::Plain, &key));
    for k in [&b""[..], b"a", b"b", b"c", b"d", b"e", b"\xff", b"\xff\x00", b"\xff\xff"] {
        db.put(k, k).expect("put");
    }
    let c = b"c".to_vec();
    let ranges: Vec<(String, Range)> = vec![
        ("d..b".into(), (Bound::Included(b"d".to_vec()), Bound::Excluded(b"b".to_vec()))),
        ("d..=b".into(), (Bound::Included(b"d".to_vec()), Bound::Included(b"b".to_vec()))),
        ("c..c".into(), (Bound::Included(c.clone()), Bound::Excluded(c.clone()))),
        ("(c, c)".into(), (Bound::Excluded(c.clone()), Bound::Excluded(c.clone()))),
        ("(c, c]".into(), (Bound::Excluded(c.clone()), Bound::Included(c.clone()))),
        ("..\"\"".into(), (Bound::Unbounded, Bound::Excluded(Vec::new()))),
        ("(\\xff\\xff, ..)".into(), (Bound::Excluded(b"\xff\xff".to_vec()), Bound::Unbounded)),
    ];
    for round in 0..2 {
        for (name, r) in &ranges {
            let items: Vec<_> =
                no_panic(&format!("range {name}"), || db.range(r.clone()).collect());
            let ok: Vec<String> =
                items.iter().filter_map(|i| i.as_ref().ok()).map(|(k, _)| show(k)).collect();
            assert!(ok.is_empty(), "round {round}: range {name} returned entries {ok:?}");
        }
        // Neighbouring ranges and prefixes at the top of the key space.
        let got = collect(db.range((Bound::Excluded(c.clone()), Bound::Included(b"d".to_vec()))))
            .expect("range");
        assert_eq!(got, vec![(b"d".to_vec(), b"d".to_vec())], "round {round}: range (c, d]");
        let keys = |p: &[u8]| -> Vec<Vec<u8>> {
            collect(db.prefix(p)).expect("prefix").into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(
            keys(b"\xff"),
            vec![b"\xff".to_vec(), b"\xff\x00".to_vec(), b"\xff\xff".to_vec()]
        );
        assert_eq!(keys(b"\xff\xff"), vec![b"\xff\xff".to_vec()]);
        assert_eq!(keys(b"\xff\xff\xff"), Vec::<Vec<u8>>::new());
        assert_eq!(keys(b"c"), vec![b"c".to_vec()]);
        db.flush().expect("flush");
    }
}

/// A key over `MAX_KEY_SIZE` is an `InvalidArgument`, also inside a batch, which then applies
/// none of its operations; the database stays usable.
#[test]
fn oversized_key_is_rejected_and_its_batch_applies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let key = MasterKey::generate();
    let db = open(small(&path, Mode::Aes, &key));
    db.put(b"before", b"1").expect("put");
    let huge = vec![b'k'; sealdb::MAX_KEY_SIZE + 1];
    let r = no_panic("put of an oversized key", || db.put(&huge, b"v"));
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "oversized key put gave {r:?}");
    let mut batch = WriteBatch::new();
    batch.put(b"a", b"1");
    batch.delete(b"before");
    batch.put(&huge, b"v");
    batch.put(b"z", b"26");
    let r = no_panic("write of a batch with an oversized key", || db.write(batch));
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "oversized key batch gave {r:?}");
    drop(huge);
    let mut expected = BTreeMap::new();
    expected.insert(b"before".to_vec(), b"1".to_vec());
    check("after the rejected writes", &db, &expected, &[b"a", b"z"]);
    db.put(b"after", b"2").expect("the database stays usable");
    expected.insert(b"after".to_vec(), b"2".to_vec());
    drop(db);
    let db = open(small(&path, Mode::Aes, &key));
    check("after reopening", &db, &expected, &[b"a", b"z"]);
}
