//! The file-system layer of the cold tier: beneath the engine, paths of cold files lead to
//! their objects.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{ColdFile, Tier};
use crate::io::{DirLock, Fs, RandomAccessFile, WritableFile};

/// The engine's [`Fs`] when a database has cold storage: every call goes to the local file
/// system, except for the paths of cold files:
/// - `open` gives a [`ColdFile`] reading the object;
/// - `remove` (the engine removes a file once no durable manifest names it and no reader
///   holds it) queues the object for deletion;
/// - `rename` over a cold path (a value-log segment re-sealed in place) makes the path local
///   again; its object is deleted once the next manifest is durable;
/// - `exists` is true; `hard_link` is refused.
#[derive(Debug)]
pub(crate) struct TieredFs {
    pub(crate) base: Arc<dyn Fs>,
    pub(crate) tier: Arc<Tier>,
}

impl Fs for TieredFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.base.create(path)
    }
    fn create_log(&self, path: &Path, head: usize) -> io::Result<Box<dyn WritableFile>> {
        self.base.create_log(path, head)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.base.open_append(path)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        match self.tier.object(path) {
            Some(obj) => Ok(Arc::new(ColdFile::new(obj, self.tier.clone()))),
            None => self.base.open(path),
        }
    }
    fn open_immutable(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        match self.tier.object(path) {
            Some(obj) => Ok(Arc::new(ColdFile::new(obj, self.tier.clone()))),
            None => self.base.open_immutable(path),
        }
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.tier.object(path) {
            Some(obj) => self.tier.fetch_whole(&obj).map(|b| b.to_vec()).map_err(super::io_error),
            None => self.base.read_all(path),
        }
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.base.rename(from, to)?;
        if let Some(obj) = self.tier.unset_cold(to) {
            self.tier.mark_recold(obj.meta.kind, obj.meta.number);
            self.tier.delete_after_manifest(obj.meta.name.clone());
        }
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        match self.tier.unset_cold(path) {
            Some(obj) => {
                // Its parts in the local cache go now (erasure relies on it).
                if let Some(c) = &self.tier.cache {
                    c.drop_object(&obj.meta.name);
                }
                self.tier.delete_later(obj.meta.name.clone());
                Ok(())
            }
            None => self.base.remove(path),
        }
    }
    fn exists(&self, path: &Path) -> bool {
        self.tier.object(path).is_some() || self.base.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.base.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.base.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.base.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.base.lock(path)
    }
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        self.base.modified(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.tier.object(from).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: a cold file cannot be hard-linked", from.display()),
            ));
        }
        self.base.hard_link(from, to)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        self.base.remove_dir(dir)
    }
}
