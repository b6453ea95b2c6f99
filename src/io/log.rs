//! A log file written through a shared writable map of space allocated ahead
//! ([`super::Fs::create_log`] on unix).
//!
//! Space is allocated with `fallocate` in steps that double from 64 KiB up to 4 MiB, and each
//! step is mapped, so a write into it cannot fail for lack of space: no page fault raises
//! `SIGBUS` on a full disk (a device error reading back a page the kernel evicted still
//! could, as for any mapped file). An append is a copy into the map, with no system call; the
//! bytes are in the page cache, so they survive the process being killed, and `sync`
//! (`msync`) makes them survive power loss. The file's size does not change at every append,
//! so an fsync has no size to record.
//!
//! **Commit order.** Past the written bytes the file holds zeros. An append copies its bytes
//! `1..head` first, then `head..`, then byte 0, with release fences between (no reordering by
//! the compiler, nor, for a reader in another process, by the CPU; the stores of a killed
//! process up to the instruction it stopped at all land), so a process killed during an
//! append leaves the appended block with byte 0 still zero: either a header (bytes `1..head`)
//! that is whole with its body partly written, or a header partly written with its body
//! still zero. Readers rely on it (`wal::replay_bytes`): a block whose first byte is zero,
//! followed only by zeros past its extent, was never committed.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{fence, Ordering};

use memmap2::{MmapMut, MmapOptions};

use super::WritableFile;

/// First allocation step.
const MIN_STEP: u64 = 64 << 10;
/// Largest allocation step.
const MAX_STEP: u64 = 4 << 20;

pub(super) struct MappedLog {
    file: File,
    path: PathBuf,
    /// Mapped steps, in file order: (offset, map).
    maps: Vec<(u64, MmapMut)>,
    /// Bytes appended (the log's logical length).
    len: u64,
    /// Bytes allocated and mapped.
    cap: u64,
    /// Bytes known durable (the last successful `sync`).
    synced: u64,
    /// Whether space was allocated since the last successful `sync` (the file's size changed).
    grown: bool,
    /// Bytes `1..head` of each append are written before the rest (see the module docs).
    head: usize,
}

impl MappedLog {
    /// A log in `file` (just created, empty). Fails when the file system cannot allocate
    /// space ahead (the caller then appends with `write` instead).
    pub(super) fn new(file: File, path: PathBuf, head: usize) -> io::Result<MappedLog> {
        let mut log = MappedLog {
            file,
            path,
            maps: Vec::new(),
            len: 0,
            cap: 0,
            synced: 0,
            grown: false,
            head,
        };
        log.grow(1)?;
        Ok(log)
    }

    fn at(&self, e: &io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }

    /// Allocates and maps steps until `cap` reaches `end`.
    fn grow(&mut self, end: u64) -> io::Result<()> {
        while self.cap < end {
            let step = self.cap.clamp(MIN_STEP, MAX_STEP);
            rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::empty(), self.cap, step)
                .map_err(|e| self.at(&e.into()))?;
            let len = usize::try_from(step).map_err(|_| io::Error::other("step too large"))?;
            // One of the crate's `unsafe` places (the others: `io/mod.rs`, `seal/aead.rs`, the
            // memtable's skip list).
            // Safety: the map is of space this process just allocated in a file it created
            // and alone writes (the directory is locked; readers open it only after a restart
            // or read it with `read`), and `cap` is a multiple of the page size (steps are
            // multiples of 64 KiB). No reference to the mapped bytes escapes this type.
            #[allow(unsafe_code)]
            let map = unsafe { MmapOptions::new().offset(self.cap).len(len).map_mut(&self.file) }
                .map_err(|e| self.at(&e))?;
            self.maps.push((self.cap, map));
            self.cap += step;
            self.grown = true;
        }
        Ok(())
    }

    /// Copies `bytes` to offset `pos` (allocated), across steps as needed.
    fn copy_at(&mut self, mut pos: u64, mut bytes: &[u8]) {
        // Appends land at the end: search from the last step.
        let mut i = self.maps.iter().rposition(|(start, _)| *start <= pos).unwrap_or(0);
        while !bytes.is_empty() {
            let (start, map) = &mut self.maps[i];
            let at = (pos - *start) as usize;
            let n = bytes.len().min(map.len() - at);
            map[at..at + n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            pos += n as u64;
            i += 1;
        }
    }

    /// Writes `data` at the end in commit order; with `commit` false byte 0 stays zero (what a
    /// kill during the copy leaves) and the length does not advance.
    fn put(&mut self, data: &[u8], commit: bool) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = self.len + data.len() as u64;
        self.grow(end)?;
        let head = self.head.clamp(1, data.len());
        self.copy_at(self.len + 1, &data[1..head]);
        fence(Ordering::Release);
        self.copy_at(self.len + head as u64, &data[head..]);
        fence(Ordering::Release);
        if commit {
            self.copy_at(self.len, &data[..1]);
            self.len = end;
        }
        Ok(())
    }
}

impl WritableFile for MappedLog {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.put(data, true)
    }
    fn append_cut(&mut self, data: &[u8], keep: usize) -> io::Result<()> {
        self.put(&data[..keep.min(data.len())], false)
    }
    fn sync(&mut self) -> io::Result<()> {
        let (from, to) = (self.synced, self.len);
        if self.grown {
            // The file's new size too: one `fdatasync`, which on Linux also writes the pages
            // dirtied through the map (the kernel tracks them as it does pages written with
            // `write`), so no `msync` before it.
            self.file.sync_data().map_err(|e| self.at(&e))?;
            self.grown = false;
            self.synced = to;
            return Ok(());
        }
        for (start, map) in &self.maps {
            let end = *start + map.len() as u64;
            if end <= from || *start >= to {
                continue;
            }
            let a = from.max(*start) - start;
            let b = to.min(end) - start;
            map.flush_range(a as usize, (b - a) as usize).map_err(|e| self.at(&e))?;
        }
        self.synced = to;
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}
