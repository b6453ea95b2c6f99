//! Backups on a directory and on an object store (`object_store`'s `InMemory`): create, write
//! more, create again (only new files sent, and counted), restore each (each equals its model),
//! verify (a flipped byte in any backup object is `Corruption` naming it), delete (the other
//! backups stay restorable). Every scenario is one function generic over the place, so another
//! store (S3) is one more line.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{check_model, Mode, Model};
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sealdb::{Backups, Error, MasterKey, Options, DB};

/// A place backups are kept, with raw access to its objects for the tests.
trait Place {
    /// A `Backups` handle on it.
    fn backups(&self) -> Backups;
    /// Every object (relative name), sorted.
    fn objects(&self) -> Vec<String>;
    fn read(&self, name: &str) -> Vec<u8>;
    fn write(&self, name: &str, bytes: Vec<u8>);
}

struct DirPlace(PathBuf);

impl Place for DirPlace {
    fn backups(&self) -> Backups {
        Backups::dir(&self.0).unwrap()
    }
    fn objects(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["files", "backups"] {
            let Ok(entries) = std::fs::read_dir(self.0.join(sub)) else { continue };
            for e in entries {
                out.push(format!("{sub}/{}", e.unwrap().file_name().to_string_lossy()));
            }
        }
        out.sort();
        out
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).unwrap()
    }
    fn write(&self, name: &str, bytes: Vec<u8>) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }
}

struct StorePlace {
    store: Arc<dyn ObjectStore>,
    prefix: &'static str,
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

impl Place for StorePlace {
    fn backups(&self) -> Backups {
        Backups::object_store(self.store.clone(), self.prefix)
    }
    fn objects(&self) -> Vec<String> {
        use futures_util::TryStreamExt;
        let prefix = ObjectPath::from(self.prefix);
        let metas: Vec<_> =
            block_on(self.store.list(Some(&prefix)).try_collect::<Vec<_>>()).unwrap();
        let mut out: Vec<String> = metas
            .iter()
            .map(|m| m.location.to_string()[self.prefix.len() + 1..].to_owned())
            .collect();
        out.sort();
        out
    }
    fn read(&self, name: &str) -> Vec<u8> {
        let p = ObjectPath::from(format!("{}/{name}", self.prefix));
        block_on(async { self.store.get(&p).await.unwrap().bytes().await.unwrap() }).to_vec()
    }
    fn write(&self, name: &str, bytes: Vec<u8>) {
        let p = ObjectPath::from(format!("{}/{name}", self.prefix));
        block_on(self.store.put(&p, PutPayload::from(bytes))).unwrap();
    }
}

fn open(path: &Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key)
        .memtable_size(32 << 10)
        .value_threshold(64)
        .vlog_segment_size(64 << 10);
    common::open(o, "backup test")
}

fn write_range(db: &DB, model: &mut Model, from: u32, to: u32, tag: &str) {
    for i in from..to {
        let k = format!("key{i:05}").into_bytes();
        let v = if i % 3 == 0 {
            format!("{tag}-{i}-{}", "v".repeat(120)).into_bytes()
        } else {
            format!("{tag}-{i}").into_bytes()
        };
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
}

fn restored_equals(b: &Backups, id: u64, mode: Mode, key: &MasterKey, model: &Model, tmp: &Path) {
    let dir = tmp.join(format!("restore-{id}-{}", rand::random::<u32>()));
    b.restore(id, &dir).unwrap();
    let db = open(&dir, mode, key);
    check_model(&format!("{mode:?} backup {id}"), &db, model);
}

/// Create, write more, create again, restore each, list, verify, delete.
fn backups_roundtrip(place: &dyn Place, mode: Mode) {
    let tmp = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(&tmp.path().join("db"), mode, &key);
    let b = place.backups();
    let mut m1 = Model::new();
    write_range(&db, &mut m1, 0, 3000, "a");
    let i1 = b.create(&db).unwrap();
    let after1 = place.objects();
    assert_eq!(i1.id, 1);
    // The first backup sent everything: its files and its manifest object.
    let sent1: u64 = after1.iter().map(|o| place.read(o).len() as u64).sum();
    assert_eq!(i1.new_bytes, sent1, "{mode:?}");
    assert_eq!(i1.files as usize, after1.len() - 1 + usize::from(mode.encrypted()), "{mode:?}");

    let mut m2 = m1.clone();
    write_range(&db, &mut m2, 2500, 3500, "b");
    for i in (0..500).step_by(5) {
        let k = format!("key{i:05}").into_bytes();
        db.delete(&k).unwrap();
        m2.remove(&k);
    }
    let i2 = b.create(&db).unwrap();
    let after2 = place.objects();
    let added: Vec<&String> = after2.iter().filter(|o| !after1.contains(o)).collect();
    let sent2: u64 = added.iter().map(|o| place.read(o).len() as u64).sum();
    assert_eq!(i2.new_bytes, sent2, "{mode:?}: new bytes are what was sent");
    assert!(i2.new_bytes < i2.bytes, "{mode:?}: {i2:?}: the old tables were not sent again");
    // Objects sent: the files of backup 2 that backup 1 does not hold, and its manifest
    // object (which carries KEYS).
    let held = i2.files as usize - usize::from(mode.encrypted());
    assert!(added.len() - 1 < held, "{mode:?}: {} objects sent for {i2:?}", added.len());

    // Nothing written: only the copy's manifest (and audit log) and the backup manifest go.
    let i3 = b.create(&db).unwrap();
    let after3 = place.objects();
    let added3 = after3.len() - after2.len();
    assert!(added3 <= 3, "{mode:?}: {added3} objects for an unchanged database");

    let listed = b.list().unwrap();
    assert_eq!(listed, vec![i1.clone(), i2.clone(), i3.clone()]);
    drop(db);
    restored_equals(&b, 1, mode, &key, &m1, tmp.path());
    restored_equals(&b, 2, mode, &key, &m2, tmp.path());
    restored_equals(&b, 3, mode, &key, &m2, tmp.path());
    let k = mode.encrypted().then(|| key.clone());
    for id in 1..=3 {
        b.verify(id, k.clone()).unwrap();
    }
    if mode.encrypted() {
        assert!(matches!(b.verify(2, None), Err(Error::EncryptionRequired(_))));
        assert!(matches!(b.verify(2, Some(MasterKey::generate())), Err(Error::WrongMasterKey)));
    } else {
        assert!(matches!(b.verify(2, Some(key.clone())), Err(Error::NotEncrypted(_))));
    }
    // A restore target must be new.
    let existing = tmp.path().join("exists");
    std::fs::create_dir(&existing).unwrap();
    assert!(b.restore(1, &existing).is_err());

    b.delete(1).unwrap();
    assert_eq!(b.list().unwrap(), vec![i2.clone(), i3]);
    let left = place.objects();
    assert!(left.len() < after3.len(), "{mode:?}: backup 1's own files went");
    restored_equals(&b, 2, mode, &key, &m2, tmp.path());
    b.verify(2, k.clone()).unwrap();
    b.delete(3).unwrap();
    b.verify(2, k.clone()).unwrap();
    restored_equals(&b, 2, mode, &key, &m2, tmp.path());
    b.delete(2).unwrap();
    assert_eq!(place.objects(), Vec::<String>::new(), "{mode:?}: the last delete leaves nothing");
    assert!(b.restore(2, tmp.path().join("gone")).is_err());
}

/// One backup; each of its objects in turn gets one byte flipped: verify fails with
/// `Corruption` naming that object, and passes again once it is mended.
fn flipped_bytes_are_found(place: &dyn Place, mode: Mode) {
    let tmp = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(&tmp.path().join("db"), mode, &key);
    let mut m = Model::new();
    write_range(&db, &mut m, 0, 1500, "f");
    let b = place.backups();
    b.create(&db).unwrap();
    drop(db);
    let k = mode.encrypted().then(|| key.clone());
    let objects = place.objects();
    assert!(objects.iter().any(|o| o.contains(".vlog-")), "{objects:?}");
    for (n, o) in objects.iter().enumerate() {
        let good = place.read(o);
        let mut bad = good.clone();
        let at = (n * 7919 + good.len() / 2) % good.len();
        bad[at] ^= 0x10;
        place.write(o, bad);
        match b.verify(1, k.clone()) {
            Err(Error::Corruption { file, .. }) => {
                let shown = file.to_string_lossy().replace('\\', "/");
                assert!(shown.ends_with(o.as_str()), "{mode:?}: flip in {o} reported in {shown}");
            }
            other => panic!("{mode:?}: flip at {at} of {o}: {other:?}"),
        }
        place.write(o, good);
    }
    b.verify(1, k).unwrap();
}

fn dir_place(tmp: &tempfile::TempDir) -> DirPlace {
    DirPlace(tmp.path().join("backups"))
}

fn memory_place() -> StorePlace {
    StorePlace { store: Arc::new(InMemory::new()), prefix: "backups/db1" }
}

#[test]
fn directory_roundtrip_aes() {
    let tmp = tempfile::tempdir().unwrap();
    backups_roundtrip(&dir_place(&tmp), Mode::Aes);
}

#[test]
fn directory_roundtrip_plain() {
    let tmp = tempfile::tempdir().unwrap();
    backups_roundtrip(&dir_place(&tmp), Mode::Plain);
}

#[test]
fn object_store_roundtrip_chacha() {
    backups_roundtrip(&memory_place(), Mode::ChaCha);
}

#[test]
fn object_store_roundtrip_plain() {
    backups_roundtrip(&memory_place(), Mode::Plain);
}

#[test]
fn directory_flipped_bytes_aes() {
    let tmp = tempfile::tempdir().unwrap();
    flipped_bytes_are_found(&dir_place(&tmp), Mode::Aes);
}

#[test]
fn object_store_flipped_bytes_plain() {
    flipped_bytes_are_found(&memory_place(), Mode::Plain);
}

#[test]
fn object_store_flipped_bytes_aes() {
    flipped_bytes_are_found(&memory_place(), Mode::Aes);
}

/// A backup taken before `rotate_master_key` restores with the old master key only.
#[test]
fn a_backup_restores_with_the_master_key_current_when_taken() {
    let tmp = tempfile::tempdir().unwrap();
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let db = open(&tmp.path().join("db"), Mode::Aes, &old);
    let mut m = Model::new();
    write_range(&db, &mut m, 0, 500, "r");
    let b = Backups::dir(tmp.path().join("b")).unwrap();
    b.create(&db).unwrap();
    db.rotate_master_key(new.clone()).unwrap();
    b.create(&db).unwrap();
    drop(db);
    b.verify(1, Some(old.clone())).unwrap();
    assert!(matches!(b.verify(1, Some(new.clone())), Err(Error::WrongMasterKey)));
    b.verify(2, Some(new.clone())).unwrap();
    let r1 = tmp.path().join("r1");
    b.restore(1, &r1).unwrap();
    let wrong = DB::open(common::options(&r1, Mode::Aes, &new));
    assert!(matches!(common::open_err(wrong, "new key on old backup"), Error::WrongMasterKey));
    check_model("old key", &open(&r1, Mode::Aes, &old), &m);
}

/// An upload cut short (half an object stored, then an error) fails the backup and leaves no
/// backup manifest; the next backup sends that object again, and restores whole.
#[test]
fn a_failed_upload_is_sent_again_by_the_next_backup() {
    use sealdb::objstore::{FaultStore, StoreFault, StoreOp};
    let tmp = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(&tmp.path().join("db"), Mode::Aes, &key);
    let mut m = Model::new();
    write_range(&db, &mut m, 0, 1500, "u");
    let faults = Arc::new(FaultStore::new(Arc::new(InMemory::new())));
    let place = StorePlace { store: faults.clone(), prefix: "b" };
    let b = place.backups();
    faults.fail_after(StoreOp::Put, 1, StoreFault::PartialPut, false);
    assert!(b.create(&db).is_err(), "a cut upload fails the backup");
    assert_eq!(faults.injected(), 1);
    assert_eq!(b.list().unwrap(), vec![], "no backup manifest was written");
    let cut = place.objects();
    assert!(!cut.is_empty(), "the cut object is there");
    let info = b.create(&db).unwrap();
    assert_eq!(info.id, 1);
    drop(db);
    b.verify(1, Some(key.clone())).unwrap();
    restored_equals(&b, 1, Mode::Aes, &key, &m, tmp.path());
}

/// The same round trip and tamper checks against a real S3-compatible server (moto, started by
/// `.ci/with-moto`), through `Backups::s3_from_env`. Without a server these fail loudly.
#[cfg(feature = "s3-tests")]
mod s3 {
    use super::*;

    fn s3_place(test: &str) -> StorePlace {
        let Ok(endpoint) = std::env::var("AWS_ENDPOINT") else {
            panic!(
                "the s3-tests feature is on but AWS_ENDPOINT is not set: run these tests through \
                 `.ci/with-moto cargo test --features s3-tests` (it starts a local S3 server)"
            );
        };
        let bucket = std::env::var("SEALDB_S3_BUCKET").unwrap_or_else(|_| "sealdb-test".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let prefix: &'static str = Box::leak(format!("backups-{test}-{nanos}").into_boxed_str());
        // Through sealdb first: it installs the TLS provider the S3 client needs.
        Backups::s3_from_env(&bucket, prefix)
            .unwrap_or_else(|e| panic!("S3 backups at {endpoint}: {e}"));
        let store = sealdb::object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .unwrap_or_else(|e| panic!("S3 store at {endpoint}: {e}"));
        StorePlace { store: Arc::new(store), prefix }
    }

    #[test]
    fn s3_roundtrip_aes() {
        backups_roundtrip(&s3_place("roundtrip"), Mode::Aes);
    }

    #[test]
    fn s3_flipped_bytes_aes() {
        flipped_bytes_are_found(&s3_place("flipped"), Mode::Aes);
    }
}
