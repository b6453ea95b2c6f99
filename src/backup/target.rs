//! Where backups are kept: a local directory (through [`Fs`]) or an object store (through
//! [`Bucket`]). Both hold the same objects under the same names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::io::Fs;
use crate::objstore::Bucket;

/// The operations backups need of a place.
pub(crate) trait Target: Send + Sync + std::fmt::Debug {
    /// Writes object `name` unless one of that name exists (then an `Io` error of kind
    /// `AlreadyExists`, the object left as it was).
    fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<()>;
    /// The whole of object `name`.
    fn get(&self, name: &str) -> Result<Vec<u8>>;
    /// The names of the objects under `sub` (`sub/...`) with their sizes, sorted by name.
    fn list(&self, sub: &str) -> Result<Vec<(String, u64)>>;
    /// Deletes object `name` (a missing one is no error).
    fn delete(&self, name: &str) -> Result<()>;
    /// How errors name object `name`.
    fn describe(&self, name: &str) -> PathBuf;
}

/// Backups in a local directory: `files/` and `backups/` under `root`.
#[derive(Debug)]
pub(crate) struct DirTarget {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) root: PathBuf,
}

impl DirTarget {
    /// Opens (creating if missing) the directory and its two subdirectories.
    pub(crate) fn new(fs: Arc<dyn Fs>, root: &Path) -> Result<DirTarget> {
        for sub in ["files", "backups"] {
            fs.create_dir_all(&root.join(sub))?;
        }
        Ok(DirTarget { fs, root: root.to_path_buf() })
    }
}

fn already_exists(what: &Path) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{} already exists", what.display()),
    ))
}

impl Target for DirTarget {
    fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.root.join(name);
        if self.fs.exists(&path) {
            return Err(already_exists(&path));
        }
        let tmp = self.root.join(format!("{name}.tmp"));
        let r = (|| -> Result<()> {
            let mut f = self.fs.create(&tmp)?;
            f.append(&bytes)?;
            f.sync()?;
            drop(f);
            if self.fs.exists(&path) {
                return Err(already_exists(&path));
            }
            self.fs.rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                self.fs.sync_dir(dir)?;
            }
            Ok(())
        })();
        if r.is_err() && self.fs.exists(&tmp) {
            let _ = self.fs.remove(&tmp);
        }
        r
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        Ok(self.fs.read_all(&self.root.join(name))?)
    }

    fn list(&self, sub: &str) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for n in self.fs.list(&self.root.join(sub))? {
            if Path::new(&n).extension().is_some_and(|e| e == "tmp") {
                continue;
            }
            let name = format!("{sub}/{n}");
            let size = self.fs.open(&self.root.join(&name))?.len();
            out.push((name, size));
        }
        out.sort_unstable();
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        match self.fs.remove(&self.root.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io(e)),
            _ => Ok(()),
        }
    }

    fn describe(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Backups in an object store, under the bucket's prefix.
#[derive(Debug)]
pub(crate) struct StoreTarget {
    pub(crate) bucket: Bucket,
}

impl Target for StoreTarget {
    fn put_new(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.bucket.put_new(name, bytes::Bytes::from(bytes))
    }

    fn get(&self, name: &str) -> Result<Vec<u8>> {
        Ok(self.bucket.get(name)?.to_vec())
    }

    fn list(&self, sub: &str) -> Result<Vec<(String, u64)>> {
        let prefix = format!("{sub}/");
        Ok(self.bucket.list(sub)?.into_iter().filter(|(n, _)| n.starts_with(&prefix)).collect())
    }

    fn delete(&self, name: &str) -> Result<()> {
        self.bucket.delete(name)
    }

    fn describe(&self, name: &str) -> PathBuf {
        PathBuf::from(self.bucket.path(name).to_string())
    }
}
