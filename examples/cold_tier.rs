//! The cold tier: an encrypted database whose tables and closed value-log segments move to an
//! object store and are read from there transparently.
//!
//! `cargo run --example cold_tier [DIR]`. By default the object store is a local directory
//! (`DIR/bucket`, through `object_store`'s `LocalFileSystem`); when `AWS_ENDPOINT` or
//! `AWS_ACCESS_KEY_ID` is set it is S3 (or a compatible server) configured from the `AWS_*`
//! variables, bucket `SEALDB_S3_BUCKET` (default `sealdb-example`). For example, with moto:
//! `.ci/with-moto cargo run --example cold_tier`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sealdb::object_store::local::LocalFileSystem;
use sealdb::{ColdStorage, Encryption, MasterKey, Options, DB};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base: PathBuf = match std::env::args().nth(1) {
        Some(d) => d.into(),
        None => std::env::temp_dir().join(format!("sealdb-cold-tier-{}", std::process::id())),
    };
    let data_dir = base.join("db");
    let s3 = std::env::var_os("AWS_ENDPOINT").is_some()
        || std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    let cold = if s3 {
        let bucket =
            std::env::var("SEALDB_S3_BUCKET").unwrap_or_else(|_| "sealdb-example".to_owned());
        println!("object store: S3 bucket {bucket}");
        ColdStorage::s3_from_env(&bucket, "cold-tier-example")?
    } else {
        let bucket_dir = base.join("bucket");
        std::fs::create_dir_all(&bucket_dir)?;
        println!("object store: local directory {}", bucket_dir.display());
        ColdStorage::new(Arc::new(LocalFileSystem::new_with_prefix(&bucket_dir)?), "db")
    };
    // Every immutable file goes cold at once here; the default waits 7 days.
    let cold = cold.cold_after(Duration::ZERO).cache_size(16 << 20);
    let master = MasterKey::generate();
    let options = || {
        Options::new(&data_dir)
            .with_encryption(Encryption::new(master.clone()))
            .cold_storage(cold.clone())
            .value_threshold(512)
            .vlog_segment_size(256 << 10)
    };

    let db = DB::open(options())?;
    for i in 0..20_000u32 {
        db.put(format!("user:{i:08}"), format!("profile-{i}-{}", "z".repeat(i as usize % 1000)))?;
    }
    db.flush()?;
    db.archive()?;
    let s = db.tiering_status().expect("cold storage is configured");
    println!(
        "after archive: {} local files ({} bytes), {} cold files ({} bytes), {} uploads",
        s.local_files, s.local_bytes, s.cold_files, s.cold_bytes, s.uploads
    );
    drop(db);

    // Reopened, reads reach the object store for cold data.
    let db = DB::open(options())?;
    let v = db.get("user:00012345")?.expect("the key is there");
    assert!(v.starts_with(b"profile-12345-"));
    let n = db.iter().count();
    let s = db.tiering_status().expect("cold storage is configured");
    println!(
        "read {n} keys back: {} GETs ({} bytes), part cache {} hits / {} misses",
        s.downloads, s.downloaded_bytes, s.cache_hits, s.cache_misses
    );

    // Detach: bring everything back, then the database opens without cold storage.
    db.recall()?;
    drop(db);
    let db = DB::open(Options::new(&data_dir).with_encryption(Encryption::new(master)))?;
    assert!(db.get("user:00000001")?.is_some());
    println!("recalled: the database opens without cold storage");
    drop(db);
    if std::env::args().nth(1).is_none() {
        std::fs::remove_dir_all(&base)?;
    }
    Ok(())
}
