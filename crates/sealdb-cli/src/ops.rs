//! Copies and moves: `checkpoint`, `backup`, `backups`, `restore`, `export`, `import`, `cold`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use sealdb::{Backups, ColdStorage, Error, ExportOptions, MasterKey, DB};
use serde_json::json;

use crate::args::{ColdArgs, ColdCommand, DbArgs};
use crate::db::{done, open, open_with, Mode};
use crate::output::utc;

/// An `s3://BUCKET/PREFIX` target split in two; `None` for anything else (a local path).
fn s3_target(target: &str) -> sealdb::Result<Option<(&str, &str)>> {
    let Some(rest) = target.strip_prefix("s3://") else { return Ok(None) };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::InvalidArgument(format!("{target}: no bucket (s3://BUCKET/PREFIX)")));
    }
    Ok(Some((bucket, prefix.trim_matches('/'))))
}

/// The backups at `target`: a directory, or an S3 prefix.
fn backups_at(target: &str) -> sealdb::Result<Backups> {
    match s3_target(target)? {
        Some((bucket, prefix)) => Backups::s3_from_env(bucket, prefix),
        None => Backups::dir(target),
    }
}

/// The cold storage named by `--store`: an S3 prefix, or a local directory as an object store.
pub(crate) fn cold_at(store: &str) -> sealdb::Result<ColdStorage> {
    if let Some((bucket, prefix)) = s3_target(store)? {
        return ColdStorage::s3_from_env(bucket, prefix);
    }
    let local = sealdb::object_store::local::LocalFileSystem::new_with_prefix(store)
        .map_err(|e| Error::InvalidArgument(format!("--store {store}: {e}")))?;
    Ok(ColdStorage::new(Arc::new(local), ""))
}

/// Opens the database for writing, with the cold storage at `store` if given.
fn open_maybe_cold(args: &DbArgs, store: Option<&str>) -> sealdb::Result<DB> {
    match store {
        Some(store) => crate::db::open_cold(args, cold_at(store)?),
        None => open(args, Mode::Write),
    }
}

pub(crate) fn checkpoint(
    args: &DbArgs,
    dest: &Path,
    store: Option<&str>,
    json: bool,
) -> sealdb::Result<u8> {
    let db = open_maybe_cold(args, store)?;
    db.checkpoint(dest)?;
    db.close()?;
    if json {
        println!("{}", json!({"checkpoint": dest.display().to_string()}));
    } else {
        println!("checkpoint written to {} (opens with the same key)", dest.display());
    }
    Ok(0)
}

pub(crate) fn backup(
    args: &DbArgs,
    target: &str,
    store: Option<&str>,
    json: bool,
) -> sealdb::Result<u8> {
    let backups = backups_at(target)?;
    let db = open_maybe_cold(args, store)?;
    let info = backups.create(&db)?;
    db.close()?;
    if json {
        println!("{}", info_json(&info));
    } else {
        println!(
            "backup {} at {target}: {} files, {} bytes ({} bytes sent)",
            info.id, info.files, info.bytes, info.new_bytes
        );
    }
    Ok(0)
}

fn info_json(b: &sealdb::BackupInfo) -> serde_json::Value {
    json!({"id": b.id, "created_at": b.created_at, "files": b.files, "bytes": b.bytes,
           "new_bytes": b.new_bytes})
}

pub(crate) fn list(target: &str, json: bool) -> sealdb::Result<u8> {
    let all = backups_at(target)?.list()?;
    if json {
        println!("{}", json!({"backups": all.iter().map(info_json).collect::<Vec<_>>()}));
    } else {
        println!("{:>6}  {:<20} {:>6} {:>14} {:>14}", "id", "created", "files", "bytes", "sent");
        for b in &all {
            println!(
                "{:>6}  {:<20} {:>6} {:>14} {:>14}",
                b.id,
                utc(b.created_at),
                b.files,
                b.bytes,
                b.new_bytes
            );
        }
    }
    Ok(0)
}

pub(crate) fn restore(
    target: &str,
    dest: &Path,
    id: Option<u64>,
    json: bool,
) -> sealdb::Result<u8> {
    let backups = backups_at(target)?;
    let id = match id {
        Some(id) => id,
        None => backups
            .list()?
            .last()
            .map(|b| b.id)
            .ok_or_else(|| Error::InvalidArgument(format!("no backup at {target}")))?,
    };
    backups.restore(id, dest)?;
    if json {
        println!("{}", json!({"restored": id, "dir": dest.display().to_string()}));
    } else {
        println!("backup {id} restored to {}", dest.display());
    }
    Ok(0)
}

/// The stream options of `export` / `import`: sealed under the key given, or plaintext.
fn stream_options(key: Option<MasterKey>, plaintext: bool) -> sealdb::Result<ExportOptions> {
    match (key, plaintext) {
        (_, true) => Ok(ExportOptions::plaintext()),
        (Some(k), false) => Ok(ExportOptions::sealed(k)),
        (None, false) => Err(Error::InvalidArgument(
            "an unencrypted database has no key to seal the dump with: give a key option, or \
             --plaintext for a dump in the clear"
                .into(),
        )),
    }
}

pub(crate) fn export(
    args: &DbArgs,
    out: Option<&Path>,
    plaintext: bool,
    json: bool,
) -> sealdb::Result<u8> {
    let key = args.key.master_key_for(&args.dir)?;
    let opts = stream_options(key.clone(), plaintext)?;
    let db = open_with(args, Mode::Read, key)?;
    let info = if let Some(path) = out {
        let file = crate::commands::create_private(path)?;
        let mut w = std::io::BufWriter::new(file);
        let info = db.export(&mut w, &opts)?;
        let file = w.into_inner().map_err(|e| Error::Io(e.into_error()))?;
        file.sync_all()?;
        info
    } else {
        let mut w = std::io::BufWriter::new(std::io::stdout().lock());
        let info = db.export(&mut w, &opts)?;
        w.flush()?;
        info
    };
    if json {
        eprintln!(
            "{}",
            json!({"records": info.records, "keyspaces": info.keyspaces, "bytes": info.bytes})
        );
    } else {
        eprintln!(
            "exported {} records ({} named keyspaces), {} bytes",
            info.records, info.keyspaces, info.bytes
        );
    }
    Ok(0)
}

pub(crate) fn import(
    args: &DbArgs,
    input: &Path,
    plaintext: bool,
    json: bool,
) -> sealdb::Result<u8> {
    let key = args.key.master_key_for(&args.dir)?;
    let opts = stream_options(key.clone(), plaintext)?;
    let file = std::fs::File::open(input).map_err(|e| {
        Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", input.display())))
    })?;
    let db = open_with(args, Mode::Create, key)?;
    let info = db.import(std::io::BufReader::new(file), &opts)?;
    db.sync()?;
    db.close()?;
    if json {
        println!(
            "{}",
            json!({"records": info.records, "keyspaces": info.keyspaces, "bytes": info.bytes})
        );
    } else {
        println!("imported {} records ({} named keyspaces)", info.records, info.keyspaces);
    }
    Ok(0)
}

pub(crate) fn cold(cmd: &ColdCommand, json: bool) -> sealdb::Result<u8> {
    let (args, what) = match cmd {
        ColdCommand::Status(a) => (a, "status"),
        ColdCommand::Archive(a) => (a, "archive"),
        ColdCommand::Recall(a) => (a, "recall"),
    };
    let ColdArgs { db: dbargs, store, older_than } = args;
    let cold = cold_at(store)?.cold_after(std::time::Duration::from_secs(*older_than));
    let db: DB = crate::db::open_cold(dbargs, cold)?;
    match what {
        "archive" => db.archive()?,
        "recall" => db.recall()?,
        _ => {}
    }
    let s = db.tiering_status().ok_or_else(|| Error::InvalidArgument("no cold storage".into()))?;
    db.close()?;
    if json {
        println!(
            "{}",
            json!({"local_files": s.local_files, "local_bytes": s.local_bytes,
                   "cold_files": s.cold_files, "cold_bytes": s.cold_bytes,
                   "uploads": s.uploads, "downloads": s.downloads,
                   "cache_hits": s.cache_hits, "cache_misses": s.cache_misses,
                   "last_error": s.last_error})
        );
    } else {
        if what != "status" {
            done(false, &format!("{what} done"));
        }
        println!("local  {} files, {} bytes", s.local_files, s.local_bytes);
        println!("cold   {} files, {} bytes", s.cold_files, s.cold_bytes);
        println!("moves  {} uploads, {} downloads", s.uploads, s.downloads);
        if let Some(e) = &s.last_error {
            println!("last error: {e}");
        }
    }
    Ok(0)
}
