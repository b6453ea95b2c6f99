//! Key management: data-key and master-key rotation, re-encryption, crypto-shredding, key
//! sources, cipher migration and the audit log.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::check_model;
use sealdb::{Cipher, Encryption, Error, KeyProvider, MasterKey, Options, DB};

fn opts(dir: &Path, key: &MasterKey) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .memtable_size(64 << 10)
        .value_threshold(512)
        .vlog_segment_size(128 << 10)
        .target_file_size(128 << 10)
}

fn fill(db: &DB, n: u32, tag: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    for i in 0..n {
        let k = format!("key{i:06}").into_bytes();
        let len = if i % 3 == 0 { 2000 } else { 60 };
        let v = format!("{tag}-{i}-").repeat(len / 8 + 1).into_bytes();
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
    model
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn rotate_then_reencrypt_leaves_only_the_current_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = Arc::new(DB::open(opts(dir.path(), &key)).unwrap());
    let model = fill(&db, 3000, "v1");
    db.flush().unwrap();
    let old_id = db.encryption_status().unwrap().current_key_id;
    let segment_copy = files_with_ext(dir.path(), "vlog")
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .find(|(_, b)| b.len() > 10_000)
        .expect("a value-log segment with entries");

    let new_id = db.rotate_data_key().unwrap();
    assert_ne!(new_id, old_id);
    let status = db.encryption_status().unwrap();
    assert_eq!(status.current_key_id, new_id);
    assert!(status.reencrypt_bytes_left > 0);

    // Readers run while re-encryption rewrites every file.
    let stop = Arc::new(AtomicBool::new(false));
    let model = Arc::new(model);
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (db, stop, model) = (db.clone(), stop.clone(), model.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads == 0 {
                    for (k, v) in model.iter().skip(t).step_by(7) {
                        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()));
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    db.reencrypt().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }

    let status = db.encryption_status().unwrap();
    assert_eq!(status.keys.len(), 1, "{status:?}");
    assert_eq!(status.keys[0].id, new_id);
    assert_eq!(status.reencrypt_bytes_left, 0);
    check_model("after re-encryption", &*db, &model);

    // Crypto-shredding: the old copy of a segment can no longer be read.
    let (path, old_bytes) = segment_copy;
    let db = Arc::try_unwrap(db).unwrap();
    db.close().unwrap();
    std::fs::write(&path, &old_bytes).unwrap();
    match DB::open(opts(dir.path(), &key)) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(db) => {
            let errors = model.keys().filter(|k| db.get(k).is_err()).count();
            assert!(errors > 0, "values under a destroyed key were still readable");
        }
    }
}

#[test]
fn master_key_rotation_refuses_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let model;
    {
        let db = DB::open(opts(dir.path(), &old)).unwrap();
        model = fill(&db, 500, "m");
        db.rotate_master_key(new.clone()).unwrap();
        check_model("after master-key rotation", &db, &model);
    }
    assert!(matches!(DB::open(opts(dir.path(), &old)), Err(Error::WrongMasterKey)));
    let db = DB::open(opts(dir.path(), &new)).unwrap();
    check_model("reopened under the new master key", &db, &model);
    assert!(db.verify_audit_log().unwrap() >= 3);
    let log = std::fs::read_to_string(dir.path().join("AUDIT.log")).unwrap();
    assert!(log.contains("\"event\":\"rotate_master_key\""));
}

#[test]
fn passphrase_env_hex_and_file_sources() {
    // Passphrase (cheap Argon2id costs for the test; the costs are kept in the registry).
    let dir = tempfile::tempdir().unwrap();
    let pass = MasterKey::from_passphrase_with_cost("correct horse battery", 256, 1, 1);
    {
        let db = DB::open(opts(dir.path(), &pass)).unwrap();
        db.put("a", "b").unwrap();
    }
    let wrong = MasterKey::from_passphrase("wrong horse battery");
    assert!(matches!(DB::open(opts(dir.path(), &wrong)), Err(Error::WrongMasterKey)));
    let same = MasterKey::from_passphrase("correct horse battery");
    let db = DB::open(opts(dir.path(), &same)).unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"b"[..]));
    drop(db);
    assert!(!format!("{pass:?}").contains("horse"));

    // Hex, env and file give the same key.
    let key = MasterKey::generate();
    let hex = key.to_hex().unwrap();
    assert!(!format!("{key:?}").contains(&hex[..16]));
    let var = "SEALDB_TEST_MASTER_KEY_SOURCES";
    std::env::set_var(var, hex.as_str());
    let from_env = MasterKey::from_env(var).unwrap();
    let kdir = tempfile::tempdir().unwrap();
    let kfile = kdir.path().join("master.key");
    std::fs::write(&kfile, hex.as_bytes()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kfile, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = MasterKey::from_file(&kfile).unwrap_err();
        assert!(matches!(err, Error::KeyFilePermissions { .. }));
        assert!(err.to_string().contains("chmod 600"));
        std::fs::set_permissions(&kfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let from_file = MasterKey::from_file(&kfile).unwrap();
    let from_hex = MasterKey::from_hex(&hex).unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        db.put("k", "v").unwrap();
    }
    for k in [from_env, from_file, from_hex] {
        let db = DB::open(opts(dir.path(), &k)).unwrap();
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    }
    std::env::remove_var(var);
}

/// A provider standing in for a KMS: wraps with a key it alone holds (XOR plus a check tag,
/// enough to exercise the interface; a real provider calls its service).
#[derive(Debug)]
struct TestKms {
    secret: [u8; 32],
}

impl KeyProvider for TestKms {
    fn wrap(&self, key: &[u8; 32]) -> sealdb::Result<Vec<u8>> {
        let mut out: Vec<u8> = key.iter().zip(&self.secret).map(|(a, b)| a ^ b).collect();
        out.extend_from_slice(&self.secret[..4]);
        Ok(out)
    }
    fn unwrap(&self, wrapped: &[u8]) -> sealdb::Result<zeroize::Zeroizing<[u8; 32]>> {
        if wrapped.len() != 36 || wrapped[32..] != self.secret[..4] {
            return Err(Error::WrongMasterKey);
        }
        let mut k = zeroize::Zeroizing::new([0u8; 32]);
        for (i, b) in k.iter_mut().enumerate() {
            *b = wrapped[i] ^ self.secret[i];
        }
        Ok(k)
    }
}

#[test]
fn key_provider_wraps_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let kms = MasterKey::from_provider(Arc::new(TestKms { secret: [7; 32] }));
    {
        let db = DB::open(opts(dir.path(), &kms)).unwrap();
        db.put("x", "y").unwrap();
    }
    let db = DB::open(opts(dir.path(), &kms)).unwrap();
    assert_eq!(db.get("x").unwrap().as_deref(), Some(&b"y"[..]));
    drop(db);
    let other = MasterKey::from_provider(Arc::new(TestKms { secret: [8; 32] }));
    assert!(matches!(DB::open(opts(dir.path(), &other)), Err(Error::WrongMasterKey)));
    assert!(matches!(
        DB::open(opts(dir.path(), &MasterKey::generate())),
        Err(Error::WrongMasterKey)
    ));
}

#[test]
fn cipher_migration_by_reencrypt() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let model;
    {
        let db = DB::open(opts(dir.path(), &key)).unwrap();
        model = fill(&db, 1500, "aes");
        db.flush().unwrap();
    }
    let chacha = || {
        opts(dir.path(), &key)
            .with_encryption(Encryption::new(key.clone()).cipher(Cipher::ChaCha20Poly1305))
    };
    let db = DB::open(chacha()).unwrap();
    let status = db.encryption_status().unwrap();
    assert_eq!(status.cipher, Cipher::ChaCha20Poly1305);
    assert!(status.reencrypt_bytes_left > 0, "AES files should await migration");
    // Both kinds of block readable meanwhile.
    check_model("ChaCha20-Poly1305 over AES-256-GCM files", &db, &model);
    db.reencrypt().unwrap();
    assert_eq!(db.encryption_status().unwrap().reencrypt_bytes_left, 0);
    check_model("after migrating to ChaCha20-Poly1305", &db, &model);
    drop(db);
    let db = DB::open(chacha()).unwrap();
    check_model("reopened after the migration", &db, &model);
}

#[test]
fn background_rotation_by_volume_reencrypts_and_destroys() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let o = opts(dir.path(), &key).with_encryption(
        Encryption::new(key.clone()).rotate_after_bytes(200 << 10).reencrypt_rate(64 << 20),
    );
    let db = DB::open(o).unwrap();
    let model = fill(&db, 2000, "auto");
    db.flush().unwrap();
    // The maintenance thread checks once a second: wait for a rotation and its clean-up.
    let mut rotated = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let s = db.encryption_status().unwrap();
        if s.current_key_id > 1 && s.keys.len() == 1 && s.reencrypt_bytes_left == 0 {
            rotated = true;
            break;
        }
    }
    assert!(rotated, "no automatic rotation: {:?}", db.encryption_status());
    check_model("after the automatic rotation", &db, &model);
}

/// Regression: a re-sealed L0 table gets a new file number but must keep its place behind
/// newer L0 tables, or a read returns an overwritten value.
#[test]
fn resealed_l0_table_keeps_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &key).background_work(false)).unwrap();
    db.put("k", "old").unwrap();
    db.flush().unwrap();
    db.rotate_data_key().unwrap();
    db.put("k", "new").unwrap();
    db.flush().unwrap();
    db.reencrypt().unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"new"[..]));
    drop(db);
    let db = DB::open(opts(dir.path(), &key).background_work(false)).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"new"[..]));
}
