//! `DB::destroy` and `DB::destroy_with`: remove a database's own files (and, with its cold
//! storage, its objects), refusing one that is open.

use std::path::Path;

use crate::crypto::audit::AUDIT_LOG;
use crate::error::{Error, Result};
use crate::io::{names, DirLock, Fs, StdFs};
use crate::manifest;
use crate::objstore::Bucket;
use crate::options::Options;

/// Removes the database at `dir`: takes its lock (refused with [`Error::Locked`] while any
/// handle holds it), removes the key registry first and syncs the directory (so a directory
/// left half-destroyed by a crash has no usable keys), then the manifest, every table, WAL,
/// value-log segment and temp file, the audit log, and the lock file; then the directory if
/// nothing else is in it. Files that are not sealdb's stay. A missing directory is no error.
pub(super) fn destroy(dir: &Path) -> Result<()> {
    let Some(lock) = lock(dir)? else { return Ok(()) };
    remove_local(dir, lock)
}

/// [`destroy`] for the database at `options`' path, after deleting, when `options` has cold
/// storage, every object of the database in the store: those its manifest names and every
/// other carrying its id (orphans), never one of another id (a copy's manifest may name its
/// origin's objects). Reading the manifest needs the master key of an encrypted database.
/// Nothing is removed while anything fails: a wrong key, an unreachable store, or cold files
/// without cold storage in `options` ([`Error::ColdStorageRequired`]).
pub(super) fn destroy_with(options: &Options) -> Result<()> {
    let dir = options.path.as_path();
    let Some(lock) = lock(dir)? else { return Ok(()) };
    delete_objects(options, dir)?;
    remove_local(dir, lock)
}

/// Takes the lock of the database at `dir`; `None` when there is no directory.
fn lock(dir: &Path) -> Result<Option<Box<dyn DirLock>>> {
    if !dir.is_dir() {
        if dir.exists() {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        return Ok(None);
    }
    let lock = StdFs.lock(&dir.join(names::LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::Io(e)
        }
    })?;
    Ok(Some(lock))
}

/// Deletes the objects of the database at `dir` (see [`destroy_with`]).
fn delete_objects(options: &Options, dir: &Path) -> Result<()> {
    let fs = StdFs;
    if !fs.exists(&dir.join(names::MANIFEST)) {
        return Ok(());
    }
    let ring = match &options.encryption {
        Some(e) => crate::verify::open_registry(&fs, dir, &e.master)?,
        None if fs.exists(&dir.join(names::KEYS)) => {
            return Err(Error::EncryptionRequired(dir.to_path_buf()));
        }
        None => None,
    };
    let data = manifest::read(&fs, dir, ring.as_ref())?;
    let Some(cold) = &options.cold_storage else {
        if data.cold.is_empty() {
            return Ok(());
        }
        return Err(Error::ColdStorageRequired {
            path: dir.to_path_buf(),
            files: data.cold.len() as u64,
        });
    };
    let Some(id) = data.db_id else { return Ok(()) };
    let id = hex::encode(id);
    let owns = |name: &str| name.split('/').nth(1) == Some(id.as_str());
    let bucket = Bucket::new(cold.store.clone(), &cold.prefix).with_timeout(cold.request_timeout);
    for c in data.cold.iter().filter(|c| owns(&c.name)) {
        bucket.delete(&c.name)?;
    }
    for (name, _) in bucket.list("")? {
        if owns(&name) {
            bucket.delete(&name)?;
        }
    }
    Ok(())
}

/// Removes the local files of the database at `dir`, whose lock `lock` is.
fn remove_local(dir: &Path, lock: Box<dyn DirLock>) -> Result<()> {
    let fs = StdFs;
    let lock_path = dir.join(names::LOCK);
    remove_if_present(&fs, &dir.join(names::KEYS))?;
    fs.sync_dir(dir)?;
    for name in fs.list(dir)? {
        let ours = name == names::MANIFEST
            || name == AUDIT_LOG
            || name == super::convert::CONVERT
            || names::parse(&name).is_some();
        if ours {
            remove_if_present(&fs, &dir.join(&name))?;
        }
    }
    // The cold tier's cache of fetched parts (the objects are `delete_objects`' business: with
    // `destroy` alone they stay in the store, which is not known here; an orphan sweep of
    // another database never touches them).
    let cache = dir.join(crate::cold::CACHE_DIR);
    if cache.is_dir() {
        for name in fs.list(&cache)? {
            if Path::new(&name).extension().is_some_and(|e| e == "part") {
                remove_if_present(&fs, &cache.join(&name))?;
            }
        }
        if std::fs::read_dir(&cache)?.next().is_none() {
            std::fs::remove_dir(&cache)?;
        }
    }
    drop(lock);
    remove_if_present(&fs, &lock_path)?;
    fs.sync_dir(dir)?;
    // Only an empty directory goes: anything else in it is not ours to remove.
    if std::fs::read_dir(dir)?.next().is_none() {
        std::fs::remove_dir(dir)?;
    }
    Ok(())
}

fn remove_if_present(fs: &dyn Fs, path: &Path) -> Result<()> {
    match fs.remove(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io(e)),
        _ => Ok(()),
    }
}
