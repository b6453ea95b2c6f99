//! The one I/O interface: every file the engine touches goes through [`Fs`], so tests can
//! inject faults ([`FaultFs`]).
//!
//! Writable files are append-only and unbuffered: `append` hands the bytes to the OS before it
//! returns, so an acknowledged write survives the process being killed; `sync` makes it survive
//! power loss. Buffering, where wanted, is the caller's.
//!
//! Permissions: on unix every file [`StdFs`] creates is mode 0600 ([`FILE_MODE`]) and every
//! directory 0700 ([`DIR_MODE`]), set at creation so no umask can widen them and no other user
//! can open a file in the window before a `chmod`. A file that already exists with a wider mode
//! when it is created over (truncated) is narrowed to 0600. On other platforms files get the
//! platform's default access control (on Windows, the directory's inherited ACL): restrict
//! the data directory itself there.

mod fault;
#[cfg(unix)]
mod log;

pub use fault::{Fault, FaultFs, FaultOp};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file opened for appending.
pub trait WritableFile: Send + Sync {
    /// Appends all of `data`.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Bytes appended so far (the file's size, unless the file is a log allocated ahead).
    fn len(&self) -> u64;
    /// Whether nothing was appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores what an append of `data` cut short by a crash may leave, keeping at most `keep`
    /// of its bytes (fault injection: a short write). A file appended with `write` keeps that
    /// prefix; a log written through a map ([`Fs::create_log`]) keeps them uncommitted.
    fn append_cut(&mut self, data: &[u8], keep: usize) -> io::Result<()> {
        self.append(&data[..keep.min(data.len())])
    }
}

/// A file opened for positioned reads.
pub trait RandomAccessFile: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's size.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Forgets any locally cached copy of bytes [`offset`, `offset + len`) so the next read
    /// fetches them again; says whether there was one. A local file has no such copy: a
    /// cold file's fetched parts do (see `src/cold`).
    fn drop_cached(&self, offset: u64, len: usize) -> bool {
        let _ = (offset, len);
        false
    }
    /// The same file read without filling any local cache (for compaction's one pass over
    /// it), or `None` when reads of this file fill none.
    fn uncached(&self) -> Option<Arc<dyn RandomAccessFile>> {
        None
    }
    /// Reads exactly `len` bytes at `offset` into a new buffer.
    fn read_vec(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

/// A held directory lock; released on drop.
pub trait DirLock: Send + Sync {}

/// The file-system operations the engine uses.
pub trait Fs: Send + Sync + std::fmt::Debug {
    /// Creates (or truncates) `path` for appending. On unix a new file is mode 0600.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens `path` (created if missing, mode 0600 on unix) for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let _ = path;
        Err(io::Error::new(io::ErrorKind::Unsupported, "this file system cannot append"))
    }
    /// Creates (or truncates) `path` for appending as a log: one writer appends blocks whose
    /// byte 0 is never zero and whose first `head` bytes are a header, and readers read it
    /// after the writer is gone or with [`Fs::read_all`]. [`StdFs`] allocates its space ahead
    /// and writes through a map (see `src/io/log.rs`): the file then holds zeros past the
    /// appended bytes, and a block an append did not finish has byte 0 zero. By default (and
    /// where space cannot be allocated ahead) this is [`Fs::create`].
    fn create_log(&self, path: &Path, head: usize) -> io::Result<Box<dyn WritableFile>> {
        let _ = head;
        self.create(path)
    }
    /// Opens `path` for positioned reads.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>>;
    /// Opens `path`, a file whose present bytes no one changes again (a table, a closed
    /// value-log segment: replaced only by renaming a new file over it; or the part already
    /// written of a file that is only appended to), for positioned reads of those bytes
    /// (`len()` is the size at opening). [`StdFs`] maps it into memory when it can, so a read
    /// is a copy out of the page cache with no system call; by default this is [`Fs::open`].
    fn open_immutable(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.open(path)
    }
    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Atomically renames `from` to `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// The names of the entries of directory `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `dir` and its missing parents (mode 0700 on unix).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// fsyncs a directory, making renames and creations in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing) or fails with `WouldBlock`.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>>;
    /// Takes a shared lock on `path` if it exists, never creating it: `None` when it is
    /// missing, `WouldBlock` while another handle holds the exclusive lock.
    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn DirLock>>> {
        let _ = path;
        Err(io::Error::new(io::ErrorKind::Unsupported, "this file system has no shared locks"))
    }

    /// When `path` was last modified (the cold tier's age policy); `Unsupported` where the
    /// file system does not say.
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        let _ = path;
        Err(io::Error::new(io::ErrorKind::Unsupported, "this file system keeps no times"))
    }

    /// Makes `to` a new name of the file `from` (a hard link). A file system that cannot
    /// (another device, no link support) fails, and the caller copies instead.
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let _ = (from, to);
        Err(io::Error::new(io::ErrorKind::Unsupported, "this file system cannot hard-link"))
    }
    /// Removes the empty directory `dir`.
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let _ = dir;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this file system cannot remove directories",
        ))
    }
}

/// A file system without maps: [`Fs::open_immutable`] is [`Fs::open`], [`Fs::create_log`] is
/// [`Fs::create`]; everything else is the wrapped one's (`Options::mmap(false)`).
#[derive(Debug)]
pub(crate) struct Unmapped(pub(crate) Arc<dyn Fs>);

impl Fs for Unmapped {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.0.create(path)
    }
    fn create_log(&self, path: &Path, _head: usize) -> io::Result<Box<dyn WritableFile>> {
        self.0.create(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        self.0.open_append(path)
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.0.open(path)
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.0.read_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.0.remove(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        self.0.lock(path)
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn DirLock>>> {
        self.0.lock_shared(path)
    }
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        self.0.modified(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.hard_link(from, to)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.remove_dir(dir)
    }
}

/// Mode of every file sealdb creates (unix): owner read and write only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory sealdb creates (unix): owner only.
pub const DIR_MODE: u32 = 0o700;

/// Options that create files with [`FILE_MODE`] on unix.
fn file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Opens `path` with `options` (from [`file_options`]) and narrows its mode (see
/// [`narrow_mode`]); errors name the file.
fn open_narrowed(path: &Path, options: &OpenOptions) -> io::Result<File> {
    let file = options.open(path).map_err(at(path))?;
    narrow_mode(&file).map_err(at(path))?;
    Ok(file)
}

/// Narrows an existing file opened for (re)creation to [`FILE_MODE`] if it is wider: the mode
/// given at creation applies only to a file that did not exist.
fn narrow_mode(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o777 & !FILE_MODE != 0 {
            file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdWritable {
    file: File,
    len: u64,
    path: PathBuf,
}

impl WritableFile for StdWritable {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data).map_err(at(&self.path))?;
        self.len += data.len() as u64;
        Ok(())
    }
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().map_err(at(&self.path))
    }
    fn len(&self) -> u64 {
        self.len
    }
}

struct StdRandom {
    file: File,
    len: u64,
    path: PathBuf,
}

impl RandomAccessFile for StdRandom {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.read_exact_at(buf, offset).map_err(|e| {
                io::Error::new(e.kind(), format!("{} at offset {offset}: {e}", self.path.display()))
            })
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < buf.len() {
                let n = self.file.seek_read(&mut buf[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                done += n;
            }
            Ok(())
        }
    }
    fn len(&self) -> u64 {
        self.len
    }
}

/// A file mapped read-only into memory ([`Fs::open_immutable`]). Reads copy out of the map,
/// so what a caller checks and uses is its own copy, never bytes that could change under it.
struct MappedFile {
    map: memmap2::Mmap,
    path: PathBuf,
}

impl MappedFile {
    fn slice(&self, offset: u64, len: usize) -> io::Result<&[u8]> {
        usize::try_from(offset)
            .ok()
            .and_then(|start| self.map.get(start..start.checked_add(len)?))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} at offset {offset}: read past the end of the file",
                        self.path.display()
                    ),
                )
            })
    }
}

impl RandomAccessFile for MappedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        buf.copy_from_slice(self.slice(offset, buf.len())?);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.map.len() as u64
    }
    fn read_vec(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.slice(offset, len).map(<[u8]>::to_vec)
    }
}

struct StdLock {
    _file: File,
}
impl DirLock for StdLock {}

/// How long a lock found held is tried again before it counts as held by another process.
/// A process this one forks to run another program holds a copy of every open descriptor,
/// and so of a lock file's lock, until it execs: a database closed while another thread
/// spawns a process may be seen locked for that moment.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `try_lock` until it does not find the lock held, or [`LOCK_GRACE`] has passed.
fn with_grace(
    mut try_lock: impl FnMut() -> Result<(), fs::TryLockError>,
) -> Result<(), fs::TryLockError> {
    let start = std::time::Instant::now();
    loop {
        match try_lock() {
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_GRACE => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

/// The error with the path it concerns (file names are not secret), its kind kept.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Fs for StdFs {
    fn modified(&self, path: &Path) -> io::Result<std::time::SystemTime> {
        fs::metadata(path).and_then(|m| m.modified()).map_err(at(path))
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = open_narrowed(path, file_options().write(true).create(true).truncate(true))?;
        Ok(Box::new(StdWritable { file, len: 0, path: path.to_path_buf() }))
    }
    fn create_log(&self, path: &Path, head: usize) -> io::Result<Box<dyn WritableFile>> {
        #[cfg(unix)]
        {
            let file = open_narrowed(
                path,
                file_options().read(true).write(true).create(true).truncate(true),
            )?;
            let copy = file.try_clone().map_err(at(path))?;
            match log::MappedLog::new(copy, path.to_path_buf(), head) {
                Ok(log) => return Ok(Box::new(log)),
                Err(e) => tracing::debug!(
                    file = %path.display(),
                    error = %e,
                    "log not allocated ahead: appended with write"
                ),
            }
            // What the attempt allocated goes; the file is appended to from its start.
            file.set_len(0).map_err(at(path))?;
            Ok(Box::new(StdWritable { file, len: 0, path: path.to_path_buf() }))
        }
        #[cfg(not(unix))]
        {
            let _ = head;
            self.create(path)
        }
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = open_narrowed(path, file_options().append(true).create(true))?;
        let len = file.metadata().map_err(at(path))?.len();
        Ok(Box::new(StdWritable { file, len, path: path.to_path_buf() }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path).map_err(at(path))?;
        let len = file.metadata().map_err(at(path))?.len();
        Ok(Arc::new(StdRandom { file, len, path: path.to_path_buf() }))
    }
    // One of the crate's `unsafe` places (the others: `seal/aead.rs`, `io/log.rs`, the
    // memtable's skip list).
    #[allow(unsafe_code)]
    fn open_immutable(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path).map_err(at(path))?;
        let len = file.metadata().map_err(at(path))?.len();
        if len > 0 {
            // Safety: the map is read-only, no reference into it leaves `MappedFile`, and the
            // engine never changes the bytes it covers: tables and closed value-log segments
            // are replaced only by renaming a new file over them (which leaves this inode and
            // the map as they were), and an active segment only grows past them. Bytes are
            // copied out of the map before they are checked, so a change made by another
            // program could make a read fail its authentication, never change bytes after they
            // were checked. A file truncated by another program would fault the reader
            // (SIGBUS), as it would any program that maps files; `docs/design.md` says so.
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                return Ok(Arc::new(MappedFile { map, path: path.to_path_buf() }));
            }
            // Mapping refused (address space, map count, a file system that cannot map):
            // positioned reads serve as well.
        }
        Ok(Arc::new(StdRandom { file, len, path: path.to_path_buf() }))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path).map_err(at(path))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to).map_err(at(to))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path).map_err(at(path))
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in fs::read_dir(dir).map_err(at(dir))? {
            out.push(e.map_err(at(dir))?.file_name().to_string_lossy().into_owned());
        }
        Ok(out)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(DIR_MODE);
        }
        b.create(dir).map_err(at(dir))
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let file = open_narrowed(
            path,
            file_options().read(true).write(true).create(true).truncate(false),
        )?;
        match with_grace(|| file.try_lock()) {
            Ok(()) => Ok(Box::new(StdLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(at(path)(e)),
        }
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn DirLock>>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(at(path)(e)),
        };
        match with_grace(|| file.try_lock_shared()) {
            Ok(()) => Ok(Some(Box::new(StdLock { _file: file }))),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(at(path)(e)),
        }
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to).map_err(at(to))
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir).map_err(at(dir))
    }
}

/// Replaces `dir/name` atomically with `bytes`: write `name.tmp`, fsync it, rename it over
/// `name`, fsync the directory. After a crash the file is the old one or the new one, whole.
pub fn write_atomic(fs: &dyn Fs, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = fs.create(&tmp)?;
    f.append(bytes)?;
    f.sync()?;
    drop(f);
    fs.rename(&tmp, &dir.join(name))?;
    fs.sync_dir(dir)
}

/// Names of the files in a data directory.
pub mod names {
    use super::{Path, PathBuf};

    /// The lock file.
    pub const LOCK: &str = "LOCK";
    /// The key registry (encrypted databases only).
    pub const KEYS: &str = "KEYS";
    /// The manifest.
    pub const MANIFEST: &str = "MANIFEST";

    /// What a file in the data directory is, from its name.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FileName {
        /// `NNNNNN.wal`
        Wal(u64),
        /// `NNNNNN.sst`
        Table(u64),
        /// `NNNNNN.vlog`
        ValueLog(u64),
        /// `*.tmp`: an unfinished file, removed at open.
        Temp,
    }

    /// Parses a directory entry's name.
    pub fn parse(name: &str) -> Option<FileName> {
        if Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("tmp")) {
            return Some(FileName::Temp);
        }
        let (num, ext) = name.split_once('.')?;
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = num.parse().ok()?;
        match ext {
            "wal" => Some(FileName::Wal(n)),
            "sst" => Some(FileName::Table(n)),
            "vlog" => Some(FileName::ValueLog(n)),
            _ => None,
        }
    }

    /// Path of WAL `n`.
    pub fn wal(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!("{n:06}.wal"))
    }
    /// Path of SSTable `n`.
    pub fn table(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!("{n:06}.sst"))
    }
    /// Path of value-log segment `n`.
    pub fn vlog(dir: &Path, n: u64) -> PathBuf {
        dir.join(format!("{n:06}.vlog"))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// A file that already exists with a wider mode is narrowed when sealdb creates over it,
    /// opens it for appending or locks it (the mode given at creation applies only to a new
    /// file).
    #[test]
    fn existing_wide_files_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        for (i, op) in ["create", "append", "lock"].iter().enumerate() {
            let p = dir.path().join(format!("f{i}"));
            fs::write(&p, b"x").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
            match *op {
                "create" => drop(StdFs.create(&p).unwrap()),
                "append" => drop(StdFs.open_append(&p).unwrap()),
                _ => drop(StdFs.lock(&p).unwrap()),
            }
            assert_eq!(mode(&p), FILE_MODE, "{op}");
        }
        let nested = dir.path().join("a").join("b");
        StdFs.create_dir_all(&nested).unwrap();
        assert_eq!(mode(&nested), DIR_MODE);
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE);
    }
}

#[cfg(test)]
mod map_tests {
    use super::*;

    #[test]
    fn immutable_files_read_like_positioned_reads_and_refuse_reads_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mapped = StdFs.open_immutable(&path).unwrap();
        let plain = StdFs.open(&path).unwrap();
        assert_eq!(mapped.len(), plain.len());
        for (off, len) in [(0u64, 1usize), (17, 4096), (9_000, 1_000), (10_000, 0)] {
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            mapped.read_exact_at(&mut a, off).unwrap();
            plain.read_exact_at(&mut b, off).unwrap();
            assert_eq!(a, b);
            assert_eq!(mapped.read_vec(off, len).unwrap(), b);
            assert_eq!(&b[..], &bytes[off as usize..off as usize + len]);
        }
        for (off, len) in [(9_999u64, 2usize), (10_001, 0), (u64::MAX, 1), (0, usize::MAX)] {
            let e = mapped.read_vec(off, len).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{off}+{len}");
            assert!(e.to_string().contains("read past the end"), "{e}");
        }
        // A renamed-over file leaves the map reading the bytes it was opened on.
        let other = dir.path().join("g");
        std::fs::write(&other, vec![7u8; 10_000]).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(mapped.read_vec(100, 3).unwrap(), bytes[100..103].to_vec());
        // An empty file cannot be mapped: it is opened for positioned reads.
        let empty = dir.path().join("e");
        std::fs::write(&empty, b"").unwrap();
        let f = StdFs.open_immutable(&empty).unwrap();
        assert_eq!(f.len(), 0);
        assert!(f.read_vec(0, 1).is_err());
    }
}
