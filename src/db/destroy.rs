//! `DB::destroy`: removes a database's own files, refusing one that is open.

use std::path::Path;

use crate::crypto::audit::AUDIT_LOG;
use crate::error::{Error, Result};
use crate::io::{names, Fs, StdFs};

/// Removes the database at `dir`: takes its lock (refused with [`Error::Locked`] while any
/// handle holds it), removes the key registry first and syncs the directory (so a directory
/// left half-destroyed by a crash has no usable keys), then the manifest, every table, WAL,
/// value-log segment and temp file, the audit log, and the lock file; then the directory if
/// nothing else is in it. Files that are not sealdb's stay. A missing directory is no error.
pub(super) fn destroy(dir: &Path) -> Result<()> {
    let fs = StdFs;
    if !dir.is_dir() {
        if dir.exists() {
            return Err(Error::InvalidArgument(format!(
                "{} exists and is not a directory",
                dir.display()
            )));
        }
        return Ok(());
    }
    let lock_path = dir.join(names::LOCK);
    let lock = fs.lock(&lock_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::Io(e)
        }
    })?;
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
    // The cold tier's cache of fetched parts (its objects stay in the store: the store is
    // not known here; an orphan sweep of another database never touches them).
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
