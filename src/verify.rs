//! Offline verification of a data directory: every file of every kind, every tag or crc, the
//! manifest against the files present, and the audit chain, without opening the database.
//!
//! [`verify`] takes the directory's lock (so no process writes while it reads, and a directory
//! a process holds is refused with [`Error::Locked`]) and writes nothing else: no manifest, no
//! WAL, no audit line. Each failed check becomes a [`Problem`] naming the file, the byte offset
//! and the check; the walk goes on with the next file, so one report lists every damaged file.
//!
//! What is checked, in order:
//! - `KEYS` (encrypted databases): its crc, then that the master key opens it;
//! - `MANIFEST`: its header and its one sealed block;
//! - every SSTable the manifest names: header, footer, index, filter and properties blocks,
//!   then every data block (authenticated and decoded) and every entry's internal key;
//! - every value-log segment the manifest names: header, recorded length, every entry;
//! - every WAL the manifest still needs: header, every record (authenticated and its operations
//!   decoded), and that the WALs form one unbroken chain;
//! - `AUDIT.log` (encrypted databases): its MAC chain.
//!
//! Files the manifest does not name (orphans a crash left, obsolete WALs, temp files) are not
//! damage: the next open removes them. They are reported as [`VerifyReport::warnings`], as is a
//! missing audit log.
//!
//! Cold files (tables and segments the manifest keeps in an object store) are checked only
//! when [`verify_with`] is given the store ([`VerifyOptions::cold_storage`]): each object is
//! fetched whole (one GET), its size and SHA-256 compared with what the manifest pins, then
//! every block or entry authenticated as for a local file. Problems name the object. Objects
//! of this database that the manifest does not name are warnings (the next archive pass
//! removes them). Without the store, each cold file is a warning saying it was not checked,
//! and [`VerifyReport::cold_unchecked`] counts them: not damage, and not a clean bill either.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cold::ColdStorage;
use crate::crypto::registry::KeyRing;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::io::{names, Fs, StdFs};
use crate::iter::InternalIterator;
use crate::key::ValueKind;
use crate::manifest::{self, AuditAnchor, ColdKind, ColdMeta, ManifestData};
use crate::objstore::Bucket;
use crate::options::Cipher;
use crate::sstable::{BlockCache, Table};
use crate::vlog::{Pointer, Recorded, Segment};
use crate::wal;

/// One failed check (or, among warnings, one thing worth an operator's look).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file concerned.
    pub file: PathBuf,
    /// Byte offset in that file of the structure that failed.
    pub offset: u64,
    /// Which check failed (never contains user data).
    pub check: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}: {}", self.file.display(), self.offset, self.check)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Whether the directory holds an encrypted database.
    pub encrypted: bool,
    /// Files checked whole (registry, manifest, tables, segments, WALs, audit log).
    pub files_checked: u64,
    /// Sealed units authenticated: the registry, the manifest block, table data blocks, WAL
    /// records and value-log entries.
    pub blocks_checked: u64,
    /// Every failed check: the database is damaged if this is not empty.
    pub problems: Vec<Problem>,
    /// Files the manifest does not name, and other things that are not damage.
    pub warnings: Vec<Problem>,
    /// Cold files the manifest names (kept in the object store).
    pub cold_files: u64,
    /// Of those, how many were fetched and checked (size, digest, every block).
    pub cold_checked: u64,
    /// Of those, how many were not checked: no store was given, or it did not answer (each has
    /// a warning saying why). Not damage, but not verified either.
    pub cold_unchecked: u64,
}

/// What [`verify_with`] checks beyond the data directory.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    cold: Option<ColdStorage>,
}

impl VerifyOptions {
    /// The defaults: the data directory only (cold files are reported as not checked).
    pub fn new() -> VerifyOptions {
        VerifyOptions::default()
    }

    /// The object store (and prefix) the database keeps its cold files in, as given to
    /// [`Options::cold_storage`](crate::Options::cold_storage): every cold file is fetched and
    /// checked. Only its store, prefix and request timeout are used.
    #[must_use]
    pub fn cold_storage(mut self, cold: ColdStorage) -> VerifyOptions {
        self.cold = Some(cold);
        self
    }
}

impl VerifyReport {
    /// Whether no check failed.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, file: impl Into<PathBuf>, offset: u64, check: impl Into<String>) {
        self.problems.push(Problem { file: file.into(), offset, check: check.into() });
    }

    fn warning(&mut self, file: impl Into<PathBuf>, offset: u64, check: impl Into<String>) {
        self.warnings.push(Problem { file: file.into(), offset, check: check.into() });
    }

    /// Records `e` as a problem of `file` if it is a corruption (or a missing or unreadable
    /// file); any other error (a wrong key, say) is returned.
    fn record(&mut self, file: &Path, e: Error) -> Result<()> {
        match e {
            Error::Corruption { file, offset, reason } => {
                self.problem(file, offset, reason);
                Ok(())
            }
            Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                self.problem(file, 0, "file is missing");
                Ok(())
            }
            Error::Io(io) => {
                self.problem(file, 0, format!("unreadable: {io}"));
                Ok(())
            }
            other => Err(other),
        }
    }
}

/// The data files found in a directory, by kind.
#[derive(Default)]
struct Listing {
    tables: BTreeSet<u64>,
    segments: BTreeSet<u64>,
    wals: BTreeSet<u64>,
    temps: Vec<String>,
}

fn list(fs: &dyn Fs, dir: &Path) -> Result<Listing> {
    let mut l = Listing::default();
    for name in fs.list(dir)? {
        match names::parse(&name) {
            Some(names::FileName::Table(n)) => {
                l.tables.insert(n);
            }
            Some(names::FileName::ValueLog(n)) => {
                l.segments.insert(n);
            }
            Some(names::FileName::Wal(n)) => {
                l.wals.insert(n);
            }
            Some(names::FileName::Temp) => l.temps.push(name),
            None => {}
        }
    }
    Ok(l)
}

/// Checks that `dir` exists and looks like a database (a manifest or a key registry).
fn check_is_database(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(Error::InvalidArgument(format!("{} is not a directory", dir.display())));
    }
    if !dir.join(names::MANIFEST).exists() && !dir.join(names::KEYS).exists() {
        return Err(Error::InvalidArgument(format!(
            "{} holds no sealdb database (no MANIFEST, no KEYS)",
            dir.display()
        )));
    }
    Ok(())
}

/// Opens the key registry of `dir` with `master`: `Ok(None)` if the directory has none.
/// A damaged registry is [`Error::Corruption`]; a master key that does not open it
/// [`Error::WrongMasterKey`]. Reads only.
pub(crate) fn open_registry(
    fs: &dyn Fs,
    dir: &Path,
    master: &MasterKey,
) -> Result<Option<KeyRing>> {
    let path = dir.join(names::KEYS);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let bytes = fs.read_all(&path)?;
    let (mut ring, _kek) = KeyRing::decode(&bytes, &path, master)?;
    // Mid-conversion (`Encryption::encrypt_existing`) the plaintext files below the recorded
    // boundary are part of the database.
    crate::db::convert::apply_state(fs, dir, &mut ring)?;
    Ok(Some(ring))
}

/// The cipher an encrypted database seals new blocks with, read from its key registry with
/// `master`; `None` if the directory has no registry (an unencrypted or new database). Reads
/// only, takes no lock. Open the database with this cipher
/// ([`Encryption::cipher`](crate::Encryption::cipher)) so that opening it does not switch
/// its cipher.
pub fn registry_cipher(path: impl AsRef<Path>, master: &MasterKey) -> Result<Option<Cipher>> {
    Ok(open_registry(&StdFs, path.as_ref(), master)?.map(|r| r.cipher()))
}

/// Checks the MAC chain of the audit log of the database at `path` with its master key,
/// without opening the database (so without adding an event); returns the number of events.
/// A broken chain is [`Error::Corruption`] naming the byte offset and number of the first
/// line that fails. Reads only, takes no lock (a running database only appends to the log).
pub fn verify_audit_log(path: impl AsRef<Path>, master: &MasterKey) -> Result<usize> {
    let dir = path.as_ref();
    let ring = open_registry(&StdFs, dir, master)?
        .ok_or_else(|| Error::NotEncrypted(dir.to_path_buf()))?;
    let log = dir.join(crate::crypto::audit::AUDIT_LOG);
    let anchor = manifest::read(&StdFs, dir, Some(&ring))?.audit;
    let bytes = match StdFs.read_all(&log) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::corruption(&log, 0, "audit log missing"));
        }
        Err(e) => return Err(e.into()),
    };
    let n = crate::crypto::audit::verify(&bytes, &ring.audit_keys(), anchor.as_ref())
        .map_err(|b| broken(&log, &bytes, b))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// The corruption a broken audit log is: its file, the byte offset and number of the line.
fn broken(log: &Path, bytes: &[u8], b: crate::crypto::audit::Broken) -> Error {
    let line = usize::try_from(b.line).unwrap_or(usize::MAX);
    Error::corruption(log, line_offset(bytes, line), format!("{} (line {line})", b.reason))
}

/// Verifies the database at `path` offline (see the [module documentation](self)); `master`
/// is its master key, `None` for an unencrypted database.
///
/// Returns the report, clean or not. Errors are what prevents checking at all: the directory
/// is missing or holds no database, another process holds it ([`Error::Locked`]), it is
/// encrypted and no key was given ([`Error::EncryptionRequired`]), a key was given for an
/// unencrypted database ([`Error::NotEncrypted`]), or the key does not open it
/// ([`Error::WrongMasterKey`]).
pub fn verify(path: impl AsRef<Path>, master: Option<&MasterKey>) -> Result<VerifyReport> {
    verify_with(path, master, &VerifyOptions::default())
}

/// [`verify`] with options: with [`VerifyOptions::cold_storage`], the cold files too (see the
/// [module documentation](self)). An unreachable store is no error: the files it holds are
/// reported as not checked.
pub fn verify_with(
    path: impl AsRef<Path>,
    master: Option<&MasterKey>,
    options: &VerifyOptions,
) -> Result<VerifyReport> {
    let dir = path.as_ref();
    check_is_database(dir)?;
    let fs: Arc<dyn Fs> = Arc::new(StdFs);
    let _lock = fs.lock(&dir.join(names::LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::Io(e)
        }
    })?;
    let mut report = VerifyReport::default();

    // The key registry.
    let keys_path = dir.join(names::KEYS);
    let manifest_enc = manifest::peek_encrypted(fs.as_ref(), dir);
    let ring = match master {
        None if fs.exists(&keys_path) => {
            return Err(Error::EncryptionRequired(dir.to_path_buf()));
        }
        None => {
            if manifest_enc == Some(true) {
                report.encrypted = true;
                report.problem(
                    &keys_path,
                    0,
                    "the manifest says the database is encrypted, but the key registry is missing",
                );
                return Ok(report);
            }
            None
        }
        Some(m) => match open_registry(fs.as_ref(), dir, m) {
            Ok(Some(ring)) => {
                report.encrypted = true;
                report.files_checked += 1;
                report.blocks_checked += 1;
                Some(ring)
            }
            Ok(None) if manifest_enc == Some(true) => {
                report.encrypted = true;
                report.problem(&keys_path, 0, "key registry missing");
                return Ok(report);
            }
            Ok(None) => return Err(Error::NotEncrypted(dir.to_path_buf())),
            Err(e) => {
                report.encrypted = true;
                report.record(&keys_path, e)?;
                report.warning(
                    &keys_path,
                    0,
                    "no other file was checked: without the key registry nothing can be \
                     authenticated",
                );
                return Ok(report);
            }
        },
    };
    let keys = ring.as_ref();

    // The manifest; without it, every file present is walked with no recorded lengths.
    let manifest_path = dir.join(names::MANIFEST);
    let found = list(fs.as_ref(), dir)?;
    let data = match manifest::read(fs.as_ref(), dir, keys) {
        Ok(d) => {
            report.files_checked += 1;
            report.blocks_checked += 1;
            Some(d)
        }
        Err(e) => {
            report.record(&manifest_path, e)?;
            None
        }
    };
    let data = data.unwrap_or_else(|| ManifestData {
        files: found
            .tables
            .iter()
            .map(|&number| {
                (
                    0,
                    manifest::FileMeta {
                        number,
                        size: 0,
                        key_id: 0,
                        max_seq: 0,
                        smallest: Vec::new(),
                        largest: Vec::new(),
                        oldest_write: 0,
                        tombstones: 1,
                    },
                )
            })
            .collect(),
        segments: found
            .segments
            .iter()
            .map(|&number| manifest::SegmentMeta { number, discard: 0, len: None, active: false })
            .collect(),
        log_number: found.wals.first().copied().unwrap_or(0),
        ..ManifestData::default()
    });
    let have_manifest = report.problems.is_empty();

    check_tables(&mut report, &fs, dir, &data, &found, keys, have_manifest)?;
    check_segments(&mut report, &fs, dir, &data, &found, keys)?;
    check_cold(&mut report, dir, &data, keys, options.cold.as_ref())?;
    check_wals(&mut report, fs.as_ref(), dir, &data, &found, keys)?;
    for name in &found.temps {
        report.warning(dir.join(name), 0, "unfinished temporary file (the next open removes it)");
    }
    if let Some(ring) = keys {
        check_audit(&mut report, fs.as_ref(), dir, ring, data.audit.as_ref())?;
    }
    Ok(report)
}

fn check_tables(
    report: &mut VerifyReport,
    fs: &Arc<dyn Fs>,
    dir: &Path,
    data: &ManifestData,
    found: &Listing,
    keys: Option<&KeyRing>,
    have_manifest: bool,
) -> Result<()> {
    let cache = Arc::new(BlockCache::new(1 << 20));
    let mut named = BTreeSet::new();
    for (_, meta) in &data.files {
        named.insert(meta.number);
        let path = names::table(dir, meta.number);
        if is_cold(data, ColdKind::Table, meta.number) {
            if found.tables.contains(&meta.number) {
                report.warning(
                    &path,
                    0,
                    "local copy of a cold table (an orphan: the next open removes it)",
                );
            }
            continue;
        }
        if !found.tables.contains(&meta.number) {
            report.problem(&path, 0, "table named by the manifest is missing");
            continue;
        }
        let size = have_manifest.then_some(meta.size);
        let r = check_table(fs, &path, meta, size, keys, &cache);
        match r {
            Ok(blocks) => {
                report.files_checked += 1;
                report.blocks_checked += blocks;
            }
            Err(e) => report.record(&path, e)?,
        }
    }
    for n in found.tables.difference(&named) {
        report.warning(
            names::table(dir, *n),
            0,
            "table not named by the manifest (an orphan: the next open removes it)",
        );
    }
    Ok(())
}

/// Whether the manifest keeps file (`kind`, `number`) in the object store.
fn is_cold(data: &ManifestData, kind: ColdKind, number: u64) -> bool {
    data.cold.iter().any(|c| c.kind == kind && c.number == number)
}

/// Checks the table at `path` (of `size` bytes, if known): header, footer, index, filter,
/// properties, the key id the manifest records, every data block and every entry's key.
/// Returns the data blocks authenticated.
fn check_table(
    fs: &Arc<dyn Fs>,
    path: &Path,
    meta: &manifest::FileMeta,
    size: Option<u64>,
    keys: Option<&KeyRing>,
    cache: &Arc<BlockCache>,
) -> Result<u64> {
    let table =
        Arc::new(Table::open_sized(fs.as_ref(), path, meta.number, keys, cache.clone(), size)?);
    if size.is_some() && table.key_id() != meta.key_id {
        return Err(Error::corruption(path, 16, "table key id differs from the manifest"));
    }
    let blocks = table.check_blocks()?;
    // Every entry's internal key (and kind) decodes.
    let mut it = table.iter();
    it.seek_to_first()?;
    while it.valid() {
        it.next()?;
    }
    Ok(blocks)
}

/// Checks the segment at `path`: header, recorded length, every entry. Returns the entries.
fn check_segment(
    fs: &Arc<dyn Fs>,
    path: &Path,
    meta: &manifest::SegmentMeta,
    keys: Option<&KeyRing>,
) -> Result<u64> {
    let recorded = Recorded::of(meta, keys.is_some());
    let seg = Segment::open(fs, path, meta.number, keys, recorded)?;
    seg.close();
    let mut entries = 0;
    seg.scan(|_| {
        entries += 1;
        Ok(())
    })?;
    Ok(entries)
}

/// The cold files: each fetched whole from the store (if given), its size and digest compared
/// with the manifest's, then its blocks checked from the fetched bytes; then the objects of
/// this database that the manifest does not name.
fn check_cold(
    report: &mut VerifyReport,
    dir: &Path,
    data: &ManifestData,
    keys: Option<&KeyRing>,
    cold: Option<&ColdStorage>,
) -> Result<()> {
    report.cold_files = data.cold.len() as u64;
    let Some(cold) = cold else {
        for c in &data.cold {
            report.cold_unchecked += 1;
            report.warning(
                cold_local_path(dir, c),
                0,
                format!("cold file (object {}): not checked, no object store was given", c.name),
            );
        }
        return Ok(());
    };
    let bucket = Bucket::new(cold.store.clone(), &cold.prefix).with_timeout(cold.request_timeout);
    let cache = Arc::new(BlockCache::new(1 << 20));
    for c in &data.cold {
        let full = PathBuf::from(bucket.path(&c.name).to_string());
        let bytes = match bucket.get(&c.name) {
            Ok(b) => b,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                report.problem(&full, 0, "cold object missing from the store");
                continue;
            }
            Err(Error::Io(e)) => {
                report.cold_unchecked += 1;
                report.warning(&full, 0, format!("cold object not checked: {e}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        report.cold_checked += 1;
        if bytes.len() as u64 != c.size {
            let at = c.size.min(bytes.len() as u64);
            report.problem(&full, at, "cold object size differs from the manifest");
            continue;
        }
        if crate::cold::digest(&bytes) != c.digest {
            report.problem(&full, 0, "cold object digest differs from the manifest");
            continue;
        }
        // The blocks, read from the fetched bytes under the object's path (so that problems
        // name it); nothing in a block's associated data depends on where the file lives.
        let fs: Arc<dyn Fs> = Arc::new(Fetched { path: full.clone(), bytes });
        let r = match c.kind {
            ColdKind::Table => match data.files.iter().find(|(_, f)| f.number == c.number) {
                Some((_, meta)) => check_table(&fs, &full, meta, Some(c.size), keys, &cache),
                None => Err(Error::corruption(&full, 0, "cold table not in the manifest")),
            },
            ColdKind::Segment => match data.segments.iter().find(|s| s.number == c.number) {
                Some(meta) => check_segment(&fs, &full, meta, keys),
                None => Err(Error::corruption(&full, 0, "cold segment not in the manifest")),
            },
        };
        match r {
            Ok(blocks) => {
                report.files_checked += 1;
                report.blocks_checked += blocks;
            }
            Err(e) => report.record(&full, e)?,
        }
    }
    if let Some(id) = data.db_id {
        let id = hex::encode(id);
        let named: BTreeSet<&str> = data.cold.iter().map(|c| c.name.as_str()).collect();
        match bucket.list("") {
            Ok(objects) => {
                for (name, _) in objects {
                    if name.split('/').nth(1) == Some(id.as_str()) && !named.contains(name.as_str())
                    {
                        report.warning(
                            PathBuf::from(bucket.path(&name).to_string()),
                            0,
                            "object of this database not named by the manifest (an orphan: the \
                             next archive pass removes it)",
                        );
                    }
                }
            }
            Err(e) => report.warning(
                PathBuf::from(bucket.describe()),
                0,
                format!("objects not listed: {e}"),
            ),
        }
    }
    Ok(())
}

/// Where a cold file would be in the data directory.
fn cold_local_path(dir: &Path, c: &ColdMeta) -> PathBuf {
    match c.kind {
        ColdKind::Table => names::table(dir, c.number),
        ColdKind::Segment => names::vlog(dir, c.number),
    }
}

/// A file system holding one fetched object, read-only, at the object's path.
struct Fetched {
    path: PathBuf,
    bytes: bytes::Bytes,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The bytes of a fetched object, for positioned reads.
struct FetchedFile(bytes::Bytes);

impl crate::io::RandomAccessFile for FetchedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let at = usize::try_from(offset).ok().filter(|&a| a <= self.0.len());
        match at.and_then(|a| self.0.get(a..a + buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("read past the end at offset {offset}"),
            )),
        }
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

impl Fetched {
    fn only(&self, path: &Path) -> std::io::Result<()> {
        if path == self.path {
            Ok(())
        } else {
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, path.display().to_string()))
        }
    }
}

fn read_only_fs() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, "verify writes nothing")
}

impl Fs for Fetched {
    fn create(&self, _: &Path) -> std::io::Result<Box<dyn crate::io::WritableFile>> {
        Err(read_only_fs())
    }
    fn open(&self, path: &Path) -> std::io::Result<Arc<dyn crate::io::RandomAccessFile>> {
        self.only(path)?;
        Ok(Arc::new(FetchedFile(self.bytes.clone())))
    }
    fn read_all(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.only(path)?;
        Ok(self.bytes.to_vec())
    }
    fn rename(&self, _: &Path, _: &Path) -> std::io::Result<()> {
        Err(read_only_fs())
    }
    fn remove(&self, _: &Path) -> std::io::Result<()> {
        Err(read_only_fs())
    }
    fn exists(&self, path: &Path) -> bool {
        path == self.path
    }
    fn list(&self, _: &Path) -> std::io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn create_dir_all(&self, _: &Path) -> std::io::Result<()> {
        Err(read_only_fs())
    }
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        Err(read_only_fs())
    }
    fn lock(&self, _: &Path) -> std::io::Result<Box<dyn crate::io::DirLock>> {
        Err(read_only_fs())
    }
}

fn check_segments(
    report: &mut VerifyReport,
    fs: &Arc<dyn Fs>,
    dir: &Path,
    data: &ManifestData,
    found: &Listing,
    keys: Option<&KeyRing>,
) -> Result<()> {
    let mut named = BTreeSet::new();
    for meta in &data.segments {
        named.insert(meta.number);
        let path = names::vlog(dir, meta.number);
        if is_cold(data, ColdKind::Segment, meta.number) {
            if found.segments.contains(&meta.number) {
                report.warning(
                    &path,
                    0,
                    "local copy of a cold value-log segment (an orphan: the next open removes it)",
                );
            }
            continue;
        }
        if !found.segments.contains(&meta.number) {
            report.problem(&path, 0, "value-log segment named by the manifest is missing");
            continue;
        }
        let r = check_segment(fs, &path, meta, keys);
        match r {
            Ok(entries) => {
                report.files_checked += 1;
                report.blocks_checked += entries;
            }
            Err(e) => report.record(&path, e)?,
        }
    }
    for n in found.segments.difference(&named) {
        report.warning(
            names::vlog(dir, *n),
            0,
            "value-log segment not named by the manifest (an orphan: the next open removes it)",
        );
    }
    Ok(())
}

fn check_wals(
    report: &mut VerifyReport,
    fs: &dyn Fs,
    dir: &Path,
    data: &ManifestData,
    found: &Listing,
    keys: Option<&KeyRing>,
) -> Result<()> {
    let mut replayed = Vec::new();
    let mut damaged = false;
    for &n in &found.wals {
        let path = names::wal(dir, n);
        if n < data.log_number {
            report.warning(&path, 0, "obsolete WAL (already flushed: the next open removes it)");
            continue;
        }
        let r = wal::replay(fs, &path, n, keys, |payload| {
            let mut malformed = false;
            wal::decode_ops(payload, |op| {
                if op.kind == ValueKind::Pointer && Pointer::decode(op.value).is_none() {
                    malformed = true;
                }
            })
            .map_err(|why| Error::corruption(&path, 0, why))?;
            if malformed {
                return Err(Error::corruption(&path, 0, "malformed value-log pointer in record"));
            }
            Ok(true)
        });
        match r {
            Ok(r) => {
                report.files_checked += 1;
                report.blocks_checked += r.records;
                replayed.push((n, r));
            }
            Err(e) => {
                damaged = true;
                report.record(&path, e)?;
            }
        }
    }
    // The chain is only meaningful when every WAL in it could be read.
    if !damaged {
        if let Err(e) = wal::check_chain(dir, data.log_number, &replayed) {
            report.record(&names::wal(dir, data.log_number), e)?;
        }
    }
    Ok(())
}

fn check_audit(
    report: &mut VerifyReport,
    fs: &dyn Fs,
    dir: &Path,
    ring: &KeyRing,
    anchor: Option<&AuditAnchor>,
) -> Result<()> {
    let path = dir.join(crate::crypto::audit::AUDIT_LOG);
    if !fs.exists(&path) {
        if anchor.is_some_and(|a| a.lines > 0) {
            report.problem(&path, 0, "audit log missing: the manifest anchors lines of it");
        } else {
            report.warning(&path, 0, "audit log missing (it is started at the next open)");
        }
        return Ok(());
    }
    let bytes = match fs.read_all(&path) {
        Ok(b) => b,
        Err(e) => return report.record(&path, e.into()),
    };
    match crate::crypto::audit::verify(&bytes, &ring.audit_keys(), anchor) {
        Ok(_) => {
            report.files_checked += 1;
            Ok(())
        }
        Err(b) => report.record(&path, broken(&path, &bytes, b)),
    }
}

/// Byte offset of 1-based line `line` of `bytes`.
fn line_offset(bytes: &[u8], line: usize) -> u64 {
    if line <= 1 {
        return 0;
    }
    bytes
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(line - 2)
        .map_or(bytes.len() as u64, |(i, _)| i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encryption, Options, DB};

    fn key() -> MasterKey {
        MasterKey::from_bytes([9; 32])
    }

    /// A database with tables, a value-log segment and a WAL holding records.
    fn build(dir: &Path, encrypted: bool) {
        let mut opts = Options::new(dir).value_threshold(64).background_work(false);
        if encrypted {
            opts = opts.with_encryption(Encryption::new(key()));
        }
        let db = DB::open(opts).unwrap();
        for i in 0..200u32 {
            db.put(format!("key{i:04}"), vec![i as u8; if i % 10 == 0 { 200 } else { 20 }])
                .unwrap();
        }
        db.flush().unwrap();
        for i in 0..20u32 {
            db.put(format!("late{i:04}"), b"in the WAL only").unwrap();
        }
        db.close().unwrap();
    }

    fn first(dir: &Path, ext: &str) -> PathBuf {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .filter(|p| std::fs::metadata(p).unwrap().len() > 200)
            .collect();
        v.sort();
        v.pop().unwrap_or_else(|| panic!("no .{ext} file with data in {}", dir.display()))
    }

    fn flip(path: &Path, at: u64) {
        let mut b = std::fs::read(path).unwrap();
        b[at as usize] ^= 0x40;
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn clean_databases_verify_clean() {
        for encrypted in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            build(dir.path(), encrypted);
            let r = verify(dir.path(), encrypted.then(key).as_ref()).unwrap();
            assert!(r.is_clean(), "{encrypted}: {:?}", r.problems);
            assert_eq!(r.encrypted, encrypted);
            // Registry (if any), manifest, a table, a segment, a WAL; audit log if encrypted.
            assert!(r.files_checked >= if encrypted { 6 } else { 4 }, "{r:?}");
            assert!(r.blocks_checked > 20, "{r:?}");
        }
    }

    #[test]
    fn a_flipped_byte_in_each_kind_is_reported_with_file_and_offset() {
        for encrypted in [false, true] {
            let kinds: &[&str] = if encrypted {
                &["sst", "wal", "vlog", "MANIFEST", "KEYS", "AUDIT.log"]
            } else {
                &["sst", "wal", "vlog", "MANIFEST"]
            };
            for kind in kinds {
                let dir = tempfile::tempdir().unwrap();
                build(dir.path(), encrypted);
                let path = if kind.chars().next().unwrap().is_uppercase() {
                    dir.path().join(kind)
                } else {
                    first(dir.path(), kind)
                };
                let len = std::fs::metadata(&path).unwrap().len();
                let at = len - 20;
                flip(&path, at);
                let r = verify(dir.path(), encrypted.then(key).as_ref()).unwrap();
                assert!(!r.is_clean(), "{kind} ({encrypted}): not detected");
                let p = r
                    .problems
                    .iter()
                    .find(|p| p.file == path)
                    .unwrap_or_else(|| panic!("{kind}: {:?}", r.problems));
                assert!(p.offset < len, "{kind}: {p}");
                // Nothing was written: the byte is still flipped, no file was added.
                assert_ne!(std::fs::read(&path).unwrap(), Vec::<u8>::new());
            }
        }
    }

    #[test]
    fn missing_and_extra_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), false);
        let sst = first(dir.path(), "sst");
        let extra = dir.path().join("999999.sst");
        std::fs::copy(&sst, &extra).unwrap();
        let r = verify(dir.path(), None).unwrap();
        assert!(r.is_clean(), "{:?}", r.problems);
        assert!(r.warnings.iter().any(|w| w.file == extra), "{:?}", r.warnings);
        std::fs::remove_file(&sst).unwrap();
        let r = verify(dir.path(), None).unwrap();
        assert!(r.problems.iter().any(|p| p.file == sst && p.check.contains("missing")));
    }

    #[test]
    fn refusals_are_errors_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), true);
        let before: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.clone(), std::fs::read(&p).unwrap())
            })
            .collect();
        assert!(matches!(verify(dir.path(), None), Err(Error::EncryptionRequired(_))));
        let wrong = MasterKey::from_bytes([1; 32]);
        assert!(matches!(verify(dir.path(), Some(&wrong)), Err(Error::WrongMasterKey)));
        assert!(verify(dir.path(), Some(&key())).unwrap().is_clean());
        for (p, bytes) in &before {
            assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before.len());
        // A directory held open is refused.
        let db =
            DB::open(Options::new(dir.path()).with_encryption(Encryption::new(key()))).unwrap();
        assert!(matches!(verify(dir.path(), Some(&key())), Err(Error::Locked(_))));
        drop(db);
        let plain = tempfile::tempdir().unwrap();
        build(plain.path(), false);
        assert!(matches!(verify(plain.path(), Some(&key())), Err(Error::NotEncrypted(_))));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(verify(empty.path(), None), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn registry_cipher_reads_the_cipher() {
        let dir = tempfile::tempdir().unwrap();
        let enc = Encryption::new(key()).cipher(Cipher::ChaCha20Poly1305);
        drop(DB::open(Options::new(dir.path()).with_encryption(enc)).unwrap());
        assert_eq!(registry_cipher(dir.path(), &key()).unwrap(), Some(Cipher::ChaCha20Poly1305));
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(registry_cipher(plain.path(), &key()).unwrap(), None);
    }

    #[test]
    fn audit_log_chain_is_checked_without_opening() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), true);
        let db =
            DB::open(Options::new(dir.path()).with_encryption(Encryption::new(key()))).unwrap();
        db.rotate_data_key().unwrap();
        db.close().unwrap();
        let log = dir.path().join(crate::crypto::audit::AUDIT_LOG);
        let before = std::fs::read(&log).unwrap();
        let n = verify_audit_log(dir.path(), &key()).unwrap();
        assert!(n >= 3, "{n}");
        assert_eq!(n, String::from_utf8_lossy(&before).lines().count());
        assert_eq!(std::fs::read(&log).unwrap(), before, "an event was added");
        let wrong = MasterKey::from_bytes([1; 32]);
        assert!(matches!(verify_audit_log(dir.path(), &wrong), Err(Error::WrongMasterKey)));
        // Drop the first line: the chain breaks at the (new) first line.
        let text = String::from_utf8(before).unwrap();
        let rest = &text[text.find('\n').unwrap() + 1..];
        std::fs::write(&log, rest).unwrap();
        let err = verify_audit_log(dir.path(), &key()).unwrap_err();
        assert!(matches!(&err, Error::Corruption { file, offset: 0, .. } if *file == log), "{err}");
    }

    #[test]
    fn line_offsets() {
        let b = b"one\ntwo\nthree\n";
        assert_eq!(line_offset(b, 1), 0);
        assert_eq!(line_offset(b, 2), 4);
        assert_eq!(line_offset(b, 3), 8);
    }
}
