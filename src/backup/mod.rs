//! Incremental, sealed backups on a local directory or an object store.
//!
//! ```text
//! <location>/files/<file name>-<SHA-256 hex>   a data-directory file, as sealed as in the DB
//! <location>/backups/<id, 20 digits>.backup    one backup manifest per backup (manifest.rs)
//! ```
//!
//! A backup is a checkpoint's set of files (see `DB::checkpoint`): tables, value-log
//! segments, a manifest written for the copy, the audit log, and `KEYS`, which travels inside
//! the backup manifest, wrapped by the master key as in the data directory. A file object is
//! named by its name and digest, so a file an earlier backup sent (same name, size and
//! digest) is not sent again. The backup manifest is written last, create-if-absent: a
//! backup exists once it is there, and a crash before leaves only unreferenced file objects
//! (the next backup reuses those whose size is right and sends again one cut short).
//!
//! A database with cold storage is backed up whole: each cold file is fetched from the
//! object store and checked against the size and SHA-256 its manifest pins (a damaged object
//! is `Corruption` naming it, and no backup is made), then stored like a local file, so a
//! backup restores without the live bucket. A cold file an earlier backup holds (same name and
//! pinned digest) is not even fetched. The backup's manifest names no cold file and no
//! database id: a restored database is all local and gets an id of its own at its first open.
//!
//! One process at a time creates or deletes backups in a location (a `Backups` serialises
//! its own calls).

mod manifest;
mod target;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use manifest::sha256;
pub(crate) use manifest::{BackupManifest, Entry};
use target::{DirTarget, StoreTarget, Target};

use crate::crypto::MasterKey;
use crate::db::checkpoint::{create_new_dir, remove_partial, write_file};
use crate::error::{Error, Result};
use crate::io::{names, Fs, StdFs};
use crate::objstore::Bucket;
use crate::DB;

/// What one backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Its id: 1 for the first backup of a location, one more than the newest for the next.
    pub id: u64,
    /// When it was taken (seconds since the Unix epoch).
    pub created_at: u64,
    /// Files it holds (`KEYS` included).
    pub files: u64,
    /// Bytes of those files.
    pub bytes: u64,
    /// Bytes it sent that no earlier backup held (its manifest and `KEYS` included).
    pub new_bytes: u64,
}

/// A place that keeps backups: a local directory or an object store. Incremental: a file
/// that an earlier backup already holds is not copied again.
///
/// Listing, restoring and deleting need no key (the backup manifests' clear parts hold no
/// user data); [`Backups::verify`] needs the master key of an encrypted backup and checks
/// every byte of it.
#[derive(Debug)]
pub struct Backups {
    target: Box<dyn Target>,
    /// Serialises create and delete.
    busy: Mutex<()>,
}

fn manifest_name(id: u64) -> String {
    format!("backups/{id:020}.backup")
}

fn parse_manifest_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("backups/")?.strip_suffix(".backup")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Backups {
    /// Backups in the local directory `path` (created if missing).
    pub fn dir(path: impl AsRef<Path>) -> Result<Backups> {
        let target = DirTarget::new(Arc::new(StdFs), path.as_ref())?;
        Ok(Backups { target: Box::new(target), busy: Mutex::new(()) })
    }

    /// Backups in `store`, under `prefix`.
    pub fn object_store(
        store: Arc<dyn object_store::ObjectStore>,
        prefix: impl Into<String>,
    ) -> Backups {
        let bucket = Bucket::new(store, &prefix.into());
        Backups { target: Box::new(StoreTarget { bucket }), busy: Mutex::new(()) }
    }

    /// Backups in an S3 (or S3-compatible) `bucket` under `prefix`, configured from the
    /// standard `AWS_*` environment variables (as [`ColdStorage::s3_from_env`](crate::ColdStorage::s3_from_env)).
    pub fn s3_from_env(bucket: &str, prefix: impl Into<String>) -> Result<Backups> {
        Ok(Backups::object_store(crate::objstore::s3_from_env(bucket)?, prefix))
    }

    /// Takes a backup of `db` (as consistent as [`DB::checkpoint`], holding every write
    /// acknowledged before the call), sending only files no earlier backup holds. Every live
    /// file is read and digested; one file at a time is held in memory. Writers wait at most
    /// for a memtable switch; value-log GC and key destruction wait until the backup is sent.
    ///
    /// With cold storage, cold files are fetched from the store (one at a time) and checked
    /// against their pinned size and SHA-256 before they are sent: a damaged object is
    /// [`Error::Corruption`] naming it. Archiving and recall wait until the backup is sent.
    /// The backup holds every file, so it restores without the store.
    pub fn create(&self, db: &DB) -> Result<BackupInfo> {
        let _busy = self.busy.lock();
        let id = self.ids()?.last().map_or(1, |last| last + 1);
        let have: HashMap<String, u64> = self.target.list("files")?.into_iter().collect();
        let capture = db.capture()?;
        let mut files = Vec::new();
        let mut keys = Vec::new();
        let mut new_bytes = 0;
        for f in &capture.files {
            if let Some((size, sha256)) = f.pinned() {
                // A cold file: its size and digest are pinned by the manifest, so one an
                // earlier backup holds is neither fetched nor sent again.
                let entry = Entry { name: f.name.clone(), size, sha256 };
                if have.get(&entry.object()) == Some(&size) {
                    files.push(entry);
                    continue;
                }
            }
            let bytes = capture.read(f)?;
            if f.name == names::KEYS {
                keys = bytes;
                continue;
            }
            let entry =
                Entry { name: f.name.clone(), size: bytes.len() as u64, sha256: sha256(&bytes) };
            let object = entry.object();
            let held = have.get(&object).copied();
            if held != Some(entry.size) {
                if held.is_some() {
                    // Left cut short by a failed upload: sent again.
                    self.target.delete(&object)?;
                }
                new_bytes += entry.size;
                match self.target.put_new(&object, bytes) {
                    Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    r => r?,
                }
            }
            files.push(entry);
        }
        let ring = capture.ring.clone();
        drop(capture);
        let mut m = BackupManifest { id, created_at: now_secs(), new_bytes, files, keys };
        // The manifest object is sent every time and counts in `new_bytes`: its length is
        // measured on a first encoding (the count is a fixed-width field, so adding it does
        // not change the length).
        let bytes = m.encode(ring.as_deref())?;
        m.new_bytes += bytes.len() as u64;
        let bytes = m.encode(ring.as_deref())?;
        self.target.put_new(&manifest_name(id), bytes)?;
        Ok(info(&m))
    }

    /// The ids of every backup, oldest first.
    fn ids(&self) -> Result<Vec<u64>> {
        let mut ids: Vec<u64> = self
            .target
            .list("backups")?
            .iter()
            .filter_map(|(n, _)| parse_manifest_name(n))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads the manifest of backup `id` (its clear part checked), with its bytes.
    fn read_manifest(&self, id: u64) -> Result<(BackupManifest, Vec<u8>, PathBuf)> {
        let name = manifest_name(id);
        let path = self.target.describe(&name);
        let bytes = self.target.get(&name).map_err(|e| match e {
            Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                Error::InvalidArgument(format!("no backup {id} (no {})", path.display()))
            }
            other => other,
        })?;
        let m = BackupManifest::decode(&bytes, &path, None)?;
        if m.id != id {
            return Err(Error::corruption(&path, 12, "backup manifest id differs from its name"));
        }
        Ok((m, bytes, path))
    }

    /// Every backup, oldest first. Needs no key.
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        self.ids()?.into_iter().map(|id| Ok(info(&self.read_manifest(id)?.0))).collect()
    }

    /// Fetches every file of `m`, checking its size and digest (a mismatch is
    /// [`Error::Corruption`] naming the object), and hands it to `each`.
    fn fetch_each(
        &self,
        m: &BackupManifest,
        mut each: impl FnMut(&Entry, &[u8]) -> Result<()>,
    ) -> Result<()> {
        for e in &m.files {
            let object = e.object();
            let bytes = self.target.get(&object)?;
            let path = self.target.describe(&object);
            if bytes.len() as u64 != e.size {
                return Err(Error::corruption(
                    &path,
                    bytes.len().min(usize::try_from(e.size).unwrap_or(usize::MAX)) as u64,
                    "backup file size differs from its backup manifest",
                ));
            }
            if sha256(&bytes) != e.sha256 {
                return Err(Error::corruption(
                    &path,
                    0,
                    "backup file digest differs from its backup manifest",
                ));
            }
            each(e, &bytes)?;
        }
        Ok(())
    }

    /// Writes backup `m` into the new directory `dir`.
    fn restore_into(&self, m: &BackupManifest, fs: &dyn Fs, dir: &Path) -> Result<()> {
        create_new_dir(fs, dir)?;
        let r = (|| {
            self.fetch_each(m, |e, bytes| write_file(fs, &dir.join(&e.name), bytes))?;
            if m.encrypted() {
                write_file(fs, &dir.join(names::KEYS), &m.keys)?;
            }
            fs.sync_dir(dir)?;
            Ok(())
        })();
        if r.is_err() {
            remove_partial(fs, dir);
        }
        r
    }

    /// Restores backup `id` into `dir`, which must not exist. The restored database opens
    /// with the master key that was current when the backup was taken. Every file's size and
    /// digest are checked on the way ([`Error::Corruption`] naming the object that differs).
    pub fn restore(&self, id: u64, dir: impl AsRef<Path>) -> Result<()> {
        let (m, _, _) = self.read_manifest(id)?;
        self.restore_into(&m, &StdFs, dir.as_ref())
    }

    /// Checks every tag (or crc) of every file of backup `id`; the master key is needed for an
    /// encrypted backup (`None` for one is an error, as is the wrong key).
    ///
    /// Checked: the backup manifest (crc, then with the key its sealed block, which
    /// authenticates its whole file list), every file's size and SHA-256 against it, then the
    /// files as a database, offline, with [`crate::verify()`] (every block of every table,
    /// segment and WAL, the manifest, `KEYS` and the audit chain). A failed check is
    /// [`Error::Corruption`] naming the backup's object. The files are restored into a
    /// scratch directory under the system temp directory for the check (removed afterwards),
    /// so it needs room for one copy of the backup.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the public contract takes the key by value, as a move"
    )]
    pub fn verify(&self, id: u64, master: Option<MasterKey>) -> Result<()> {
        let (plain, bytes, path) = self.read_manifest(id)?;
        let m = match (&master, plain.encrypted()) {
            (None, true) => return Err(Error::EncryptionRequired(path)),
            (None, false) => {
                plain.check_plain(&bytes, &path)?;
                plain
            }
            (Some(key), _) => BackupManifest::decode(&bytes, &path, Some(key))?,
        };
        // A scratch directory for the offline check of every block.
        let mut tag = [0u8; 8];
        crate::crypto::random_bytes(&mut tag)?;
        let scratch = std::env::temp_dir().join(format!("sealdb-verify-{id}-{}", hex::encode(tag)));
        let fs = StdFs;
        self.restore_into(&m, &fs, &scratch)?;
        let report = crate::verify::verify(&scratch, master.as_ref());
        remove_partial(&fs, &scratch);
        let report = report?;
        let objects: BTreeMap<&str, String> =
            m.files.iter().map(|e| (e.name.as_str(), e.object())).collect();
        if let Some(p) = report.problems.first() {
            let name = p.file.file_name().map(|n| n.to_string_lossy().into_owned());
            let object = match name.as_deref() {
                Some(names::KEYS) | None => path,
                Some(n) => objects.get(n).map_or(path, |o| self.target.describe(o)),
            };
            return Err(Error::corruption(object, p.offset, p.check.clone()));
        }
        Ok(())
    }

    /// Deletes backup `id`: its manifest, then every file object no other backup uses.
    pub fn delete(&self, id: u64) -> Result<()> {
        let _busy = self.busy.lock();
        let (m, _, _) = self.read_manifest(id)?;
        let mut used = HashSet::new();
        for other in self.ids()?.into_iter().filter(|&o| o != id) {
            used.extend(self.read_manifest(other)?.0.files.iter().map(Entry::object));
        }
        self.target.delete(&manifest_name(id))?;
        for e in &m.files {
            let object = e.object();
            if !used.contains(&object) {
                self.target.delete(&object)?;
            }
        }
        Ok(())
    }
}

fn info(m: &BackupManifest) -> BackupInfo {
    BackupInfo {
        id: m.id,
        created_at: m.created_at,
        files: m.files.len() as u64 + u64::from(m.encrypted()),
        bytes: m.bytes(),
        new_bytes: m.new_bytes,
    }
}
