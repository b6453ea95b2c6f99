//! The cold tier against a real S3-compatible server, through `ColdStorage::s3_from_env`.
//! Compiled with the `s3-tests` feature only; run them with
//! `.ci/with-moto cargo test --features s3-tests --test cold_s3`, which starts moto and sets
//! `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, the credentials, `AWS_REGION` and `SEALDB_S3_BUCKET`.
//! Without a reachable server they fail loudly: they never skip.
#![cfg(feature = "s3-tests")]

mod common;

use std::time::Duration;

use common::{check_model, Mode, Model};
use sealdb::{ColdStorage, MasterKey, DB};

/// The bucket of the server `.ci/with-moto` started, or a loud failure saying how to get one.
fn bucket() -> String {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT") else {
        panic!(
            "the s3-tests feature is on but AWS_ENDPOINT is not set: run these tests through \
             `.ci/with-moto cargo test --features s3-tests` (it starts a local S3 server, moto)"
        );
    };
    let bucket = std::env::var("SEALDB_S3_BUCKET").unwrap_or_else(|_| "sealdb-test".into());
    eprintln!("S3 tests against {endpoint}, bucket {bucket}");
    bucket
}

fn cold(prefix: &str) -> ColdStorage {
    ColdStorage::s3_from_env(&bucket(), prefix)
        .unwrap_or_else(|e| panic!("S3 store from the environment: {e}"))
        .cold_after(Duration::ZERO)
        .cache_size(1 << 20)
        .request_timeout(Duration::from_secs(30))
}

fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{test}-{nanos}")
}

fn put_range(db: &DB, model: &mut Model, range: std::ops::Range<u32>, round: u32) {
    for i in range {
        let k = format!("k{i:06}").into_bytes();
        let mut v = format!("v{i}-{round}-").into_bytes();
        v.resize(if i % 4 == 0 { 900 } else { 30 }, b'x');
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
}

#[test]
fn archive_read_reopen_recall_on_s3() {
    let prefix = unique_prefix("roundtrip");
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let opts = || {
        common::options(dir.path(), Mode::Aes, &key)
            .cold_storage(cold(&prefix))
            .background_work(false)
            .memtable_size(64 << 10)
            .value_threshold(256)
            .vlog_segment_size(64 << 10)
    };
    let mut model = Model::new();
    {
        let db = DB::open(opts()).unwrap();
        put_range(&db, &mut model, 0..1500, 0);
        db.flush().unwrap();
        db.archive().unwrap();
        let s = db.tiering_status().unwrap();
        assert!(s.cold_files >= 2 && s.uploads >= 2, "{s:?}");
        check_model("archived on S3", &db, &model);
    }
    let db = DB::open(opts()).unwrap();
    check_model("reopened on S3", &db, &model);
    put_range(&db, &mut model, 400..900, 1);
    db.compact().unwrap();
    db.archive().unwrap();
    check_model("compacted and archived on S3", &db, &model);
    let s = db.tiering_status().unwrap();
    assert!(s.downloads > 0, "{s:?}");
    db.recall().unwrap();
    assert_eq!(db.tiering_status().unwrap().cold_files, 0);
    check_model("recalled from S3", &db, &model);
}

#[test]
fn rotation_and_reencryption_on_s3() {
    let prefix = unique_prefix("rotate");
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = DB::open(
        common::options(dir.path(), Mode::ChaCha, &key)
            .cold_storage(cold(&prefix))
            .background_work(false)
            .value_threshold(256),
    )
    .unwrap();
    let mut model = Model::new();
    put_range(&db, &mut model, 0..300, 0);
    db.flush().unwrap();
    db.archive().unwrap();
    let before = db.tiering_status().unwrap().cold_files;
    db.rotate_data_key().unwrap();
    db.reencrypt().unwrap();
    let s = db.tiering_status().unwrap();
    assert_eq!(s.cold_files, before, "re-sealed cold files went cold again: {s:?}");
    assert_eq!(s.pending_deletes, 0, "old objects deleted: {s:?}");
    assert_eq!(db.encryption_status().unwrap().keys.len(), 1);
    check_model("re-encrypted on S3", &db, &model);
}

/// On S3 (no server-side conditional copy: the checkpoint copies by GET and PUT) a checkpoint of
/// a tiered database keeps its files cold under objects of its own and outlives the original's
/// recall; a backup to S3 restores without the cold storage and verifies.
#[test]
fn checkpoint_and_backup_of_a_tiered_database_on_s3() {
    let prefix = unique_prefix("copies");
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let opts = |path: &std::path::Path| {
        common::options(path, Mode::Aes, &key)
            .cold_storage(cold(&prefix))
            .background_work(false)
            .memtable_size(64 << 10)
            .value_threshold(256)
            .vlog_segment_size(64 << 10)
    };
    let mut model = Model::new();
    let db = DB::open(opts(&dir.path().join("db"))).unwrap();
    put_range(&db, &mut model, 0..1500, 0);
    db.flush().unwrap();
    db.archive().unwrap();
    put_range(&db, &mut model, 700..900, 1);
    let cold_files = db.tiering_status().unwrap().cold_files;
    assert!(cold_files >= 2);
    let cp = dir.path().join("checkpoint");
    db.checkpoint(&cp).unwrap();
    let backups = sealdb::Backups::s3_from_env(&bucket(), format!("{prefix}-backups")).unwrap();
    let info = backups.create(&db).unwrap();
    // The original detaches: every object of its own is deleted.
    db.recall().unwrap();
    drop(db);
    let copy = DB::open(opts(&cp)).unwrap();
    assert_eq!(copy.tiering_status().unwrap().cold_files, cold_files);
    check_model("checkpoint on S3 after the original's recall", &copy, &model);
    copy.recall().unwrap();
    drop(copy);
    let restored = dir.path().join("restored");
    backups.restore(info.id, &restored).unwrap();
    backups.verify(info.id, Some(key.clone())).unwrap();
    let db = DB::open(common::options(&restored, Mode::Aes, &key).background_work(false)).unwrap();
    check_model("backup of a tiered database restored from S3", &db, &model);
}
