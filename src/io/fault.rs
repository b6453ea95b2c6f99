//! A file system that injects faults, for tests: write errors, short writes, fsync failures,
//! ENOSPC and read errors, on chosen calls or at random. It also counts the bytes written, for
//! exact write-amplification figures.

use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{DirLock, Fs, RandomAccessFile, StdFs, WritableFile};

/// A kind of file-system call that can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// `WritableFile::append`.
    Write,
    /// `WritableFile::sync` and `Fs::sync_dir`.
    Sync,
    /// Reads: `RandomAccessFile::read_exact_at` and `Fs::read_all`.
    Read,
    /// `Fs::create` and `Fs::open_append`.
    Create,
    /// `Fs::rename`.
    Rename,
}

/// How a call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call returns an I/O error and does nothing.
    Error,
    /// A write stores the first half of its bytes, then returns an error.
    ShortWrite,
    /// The call returns ENOSPC ("no space left on device").
    NoSpace,
}

#[derive(Debug, Default)]
struct State {
    /// (op, calls of that op still to pass before failing, fault, sticky).
    rules: Vec<(FaultOp, u64, Fault, bool)>,
    random: Option<(f64, u64)>,
    injected: u64,
    written: u64,
    file_syncs: u64,
}

impl State {
    fn check(&mut self, op: FaultOp) -> Option<Fault> {
        let mut hit = None;
        self.rules.retain_mut(|(o, n, f, sticky)| {
            if *o != op || hit.is_some() {
                return true;
            }
            if *n == 0 {
                hit = Some(*f);
                return *sticky;
            }
            *n -= 1;
            true
        });
        if hit.is_none() {
            if let Some((p, s)) = &mut self.random {
                // xorshift64*: deterministic for a seed.
                *s ^= *s >> 12;
                *s ^= *s << 25;
                *s ^= *s >> 27;
                let r = (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
                if r < *p {
                    hit = Some(if op == FaultOp::Write && r < *p / 3.0 {
                        Fault::ShortWrite
                    } else {
                        Fault::Error
                    });
                }
            }
        }
        if hit.is_some() {
            self.injected += 1;
        }
        hit
    }
}

fn error(f: Fault) -> io::Error {
    match f {
        Fault::NoSpace => io::Error::from_raw_os_error(28),
        _ => io::Error::other("injected fault"),
    }
}

/// A [`Fs`] over the real file system that fails the calls it is told to.
#[derive(Debug, Clone, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

impl FaultFs {
    /// A fault-free file system until told otherwise.
    pub fn new() -> FaultFs {
        FaultFs::default()
    }
    /// Fails the call of kind `op` after `skip` more such calls succeed; with `sticky`, every
    /// later such call fails too.
    pub fn fail_after(&self, op: FaultOp, skip: u64, fault: Fault, sticky: bool) {
        self.state.lock().rules.push((op, skip, fault, sticky));
    }
    /// Fails every call with probability `p` (a third of failed writes are short), from a
    /// deterministic sequence seeded by `seed`.
    pub fn fail_randomly(&self, p: f64, seed: u64) {
        self.state.lock().random = Some((p, seed | 1));
    }
    /// Removes every fault.
    pub fn clear(&self) {
        let mut s = self.state.lock();
        s.rules.clear();
        s.random = None;
    }
    /// Bytes appended to files so far (through this file system, whatever the file).
    pub fn bytes_written(&self) -> u64 {
        self.state.lock().written
    }
    /// File fsyncs (not directory ones) that reached the device so far.
    pub fn file_syncs(&self) -> u64 {
        self.state.lock().file_syncs
    }
    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.state.lock().injected
    }
    fn check(&self, op: FaultOp) -> Option<Fault> {
        self.state.lock().check(op)
    }
}

struct FaultWritable {
    inner: Box<dyn WritableFile>,
    fs: FaultFs,
}

impl WritableFile for FaultWritable {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let (result, stored) = match self.fs.check(FaultOp::Write) {
            None => {
                let r = self.inner.append(data);
                let n = if r.is_ok() { data.len() } else { 0 };
                (r, n)
            }
            Some(Fault::ShortWrite) => {
                let half = data.len() / 2;
                match self.inner.append_cut(data, half) {
                    Ok(()) => (Err(io::Error::other("injected short write")), half),
                    Err(e) => (Err(e), 0),
                }
            }
            Some(f) => (Err(error(f)), 0),
        };
        self.fs.state.lock().written += stored as u64;
        result
    }
    fn sync(&mut self) -> io::Result<()> {
        match self.fs.check(FaultOp::Sync) {
            None => {
                self.fs.state.lock().file_syncs += 1;
                self.inner.sync()
            }
            Some(f) => Err(error(f)),
        }
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

struct FaultRandom {
    inner: Arc<dyn RandomAccessFile>,
    fs: FaultFs,
}

impl RandomAccessFile for FaultRandom {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self.fs.check(FaultOp::Read) {
            None => self.inner.read_exact_at(buf, offset),
            Some(f) => Err(error(f)),
        }
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_vec(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        match self.fs.check(FaultOp::Read) {
            None => self.inner.read_vec(offset, len),
            Some(f) => Err(error(f)),
        }
    }
}

impl Fs for FaultFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        if let Some(f) = self.check(FaultOp::Create) {
            return Err(error(f));
        }
        Ok(Box::new(FaultWritable { inner: StdFs.create(path)?, fs: self.clone() }))
    }
    fn create_log(&self, path: &Path, head: usize) -> io::Result<Box<dyn WritableFile>> {
        if let Some(f) = self.check(FaultOp::Create) {
            return Err(error(f));
        }
        Ok(Box::new(FaultWritable { inner: StdFs.create_log(path, head)?, fs: self.clone() }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        if let Some(f) = self.check(FaultOp::Create) {
            return Err(error(f));
        }
        Ok(Box::new(FaultWritable { inner: StdFs.open_append(path)?, fs: self.clone() }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(FaultRandom { inner: StdFs.open(path)?, fs: self.clone() }))
    }
    fn open_immutable(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(FaultRandom { inner: StdFs.open_immutable(path)?, fs: self.clone() }))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.check(FaultOp::Read) {
            None => StdFs.read_all(path),
            Some(f) => Err(error(f)),
        }
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self.check(FaultOp::Rename) {
            None => StdFs.rename(from, to),
            Some(f) => Err(error(f)),
        }
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFs.remove(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFs.list(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        match self.check(FaultOp::Sync) {
            None => StdFs.sync_dir(dir),
            Some(f) => Err(error(f)),
        }
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        StdFs.lock(path)
    }
    fn lock_shared(&self, path: &Path) -> io::Result<Option<Box<dyn DirLock>>> {
        StdFs.lock_shared(path)
    }
}
