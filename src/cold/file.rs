//! Reading a cold file: ranged GETs, a read-ahead window for sequential reads, and the local
//! disk cache of fetched parts.
//!
//! A read that the cache cannot answer costs exactly one ranged GET: with the cache on, the
//! range is widened to whole parts ([`PART`] bytes, aligned) and each part is kept; reads that
//! continue the previous one (a scan, a compaction) fetch a window that doubles up to
//! [`MAX_READ_AHEAD`], so runs of contiguous blocks come in one GET. Parts hold sealed bytes
//! only, as fetched: every block or entry is authenticated when opened, and one that fails
//! from a cached part is dropped and fetched once more ([`RandomAccessFile::drop_cached`]).

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{io_error, ColdObject, Tier};
use crate::io::{Fs, RandomAccessFile};

/// Bytes of one cached part (the cache's unit; a range fetched for the cache is widened to
/// whole parts).
pub(crate) const PART: u64 = 32 << 10;
/// First read-ahead window once reads are seen to be sequential.
const MIN_READ_AHEAD: u64 = 64 << 10;
/// Largest read-ahead window.
const MAX_READ_AHEAD: u64 = 4 << 20;

#[derive(Default)]
struct ReadAhead {
    /// Where the previous read ended: a read starting there is sequential.
    next: u64,
    window: u64,
    start: u64,
    buf: Bytes,
}

/// A cold file, open for positioned reads.
pub(crate) struct ColdFile {
    obj: Arc<ColdObject>,
    tier: Arc<Tier>,
    /// Reads neither use nor fill the part cache (compaction's one pass).
    bypass: bool,
    ra: Mutex<ReadAhead>,
}

impl ColdFile {
    pub(crate) fn new(obj: Arc<ColdObject>, tier: Arc<Tier>) -> ColdFile {
        ColdFile { obj, tier, bypass: false, ra: Mutex::new(ReadAhead::default()) }
    }

    fn read(&self, buf: &mut [u8], offset: u64) -> crate::error::Result<()> {
        let len = buf.len() as u64;
        let size = self.obj.meta.size;
        let end = offset.checked_add(len).filter(|&e| e <= size).ok_or_else(|| {
            crate::error::Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: read past the end at offset {offset}", self.obj.full.display()),
            ))
        })?;
        let counters = &self.tier.counters;
        let mut ra = self.ra.lock();
        let sequential = offset == ra.next && offset != 0;
        if offset >= ra.start && end <= ra.start + ra.buf.len() as u64 {
            let at = (offset - ra.start) as usize;
            buf.copy_from_slice(&ra.buf[at..at + buf.len()]);
            ra.next = end;
            counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let cache = self.tier.cache.as_ref().filter(|_| !self.bypass);
        if let Some(c) = cache {
            if c.read(&self.obj.meta.name, offset, buf) {
                ra.next = end;
                counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        let mut fetch = offset..end;
        if sequential {
            ra.window = (ra.window * 2).clamp(MIN_READ_AHEAD, MAX_READ_AHEAD);
            fetch.end = end.max(offset.saturating_add(ra.window)).min(size);
        } else {
            ra.window = 0;
        }
        if cache.is_some() {
            fetch.start = fetch.start / PART * PART;
            fetch.end = fetch.end.div_ceil(PART).saturating_mul(PART).min(size);
        }
        let got = self.tier.fetch(&self.obj, fetch.clone())?;
        let at = (offset - fetch.start) as usize;
        buf.copy_from_slice(&got[at..at + buf.len()]);
        if let Some(c) = cache {
            c.store(&self.obj.meta.name, fetch.start, &got, size);
        }
        if sequential || fetch.end > end {
            ra.start = fetch.start;
            ra.buf = got;
        }
        ra.next = end;
        Ok(())
    }
}

impl RandomAccessFile for ColdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read(buf, offset).map_err(io_error)
    }
    fn len(&self) -> u64 {
        self.obj.meta.size
    }
    fn drop_cached(&self, offset: u64, len: usize) -> bool {
        let end = offset + len as u64;
        let mut dropped = false;
        {
            let mut ra = self.ra.lock();
            if offset < ra.start + ra.buf.len() as u64 && end > ra.start {
                ra.buf = Bytes::new();
                dropped = true;
            }
        }
        if let Some(c) = &self.tier.cache {
            dropped |= c.drop_range(&self.obj.meta.name, offset, end);
        }
        dropped
    }
    fn uncached(&self) -> Option<Arc<dyn RandomAccessFile>> {
        Some(Arc::new(ColdFile {
            obj: self.obj.clone(),
            tier: self.tier.clone(),
            bypass: true,
            ra: Mutex::new(ReadAhead::default()),
        }))
    }
}

/// Key of one part: (hash of the object name, part index).
type PartKey = (u64, u64);

#[derive(Default)]
struct CacheState {
    /// Part → (its length, its last use).
    parts: HashMap<PartKey, (u64, u64)>,
    /// Last use → part: the least recently used first.
    lru: BTreeMap<u64, PartKey>,
    bytes: u64,
    tick: u64,
}

/// The local disk cache of fetched parts: one file per part in `cold-cache/` of the data
/// directory, never more than its capacity in total. Emptied at open (what a crashed session
/// left is not trusted to be whole; it would be checked anyway).
pub(crate) struct PartCache {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    capacity: u64,
    state: Mutex<CacheState>,
}

impl PartCache {
    /// The cache in `dir` (created if missing, emptied if not).
    pub(crate) fn open(
        fs: Arc<dyn Fs>,
        dir: PathBuf,
        capacity: u64,
    ) -> crate::error::Result<PartCache> {
        fs.create_dir_all(&dir)?;
        for name in fs.list(&dir)? {
            if std::path::Path::new(&name).extension().is_some_and(|e| e == "part") {
                let _ = fs.remove(&dir.join(name));
            }
        }
        Ok(PartCache { fs, dir, capacity, state: Mutex::new(CacheState::default()) })
    }

    fn key(name: &str, part: u64) -> PartKey {
        (xxhash_rust::xxh3::xxh3_64(name.as_bytes()), part)
    }

    fn path(&self, k: PartKey) -> PathBuf {
        self.dir.join(format!("{:016x}-{}.part", k.0, k.1))
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> u64 {
        self.state.lock().bytes
    }

    /// Fills `buf` with bytes at `offset` of object `name` if every part they span is held.
    fn read(&self, name: &str, offset: u64, buf: &mut [u8]) -> bool {
        let end = offset + buf.len() as u64;
        let first = offset / PART;
        let last = (end - 1) / PART;
        {
            let mut st = self.state.lock();
            for p in first..=last {
                let k = Self::key(name, p);
                let Some(&(len, old)) = st.parts.get(&k) else { return false };
                if (end.min((p + 1) * PART) - p * PART) > len {
                    return false;
                }
                st.tick += 1;
                let t = st.tick;
                st.lru.remove(&old);
                st.lru.insert(t, k);
                st.parts.insert(k, (len, t));
            }
        }
        for p in first..=last {
            let k = Self::key(name, p);
            let from = offset.max(p * PART);
            let to = end.min((p + 1) * PART);
            let dst = &mut buf[(from - offset) as usize..(to - offset) as usize];
            let ok =
                self.fs.open(&self.path(k)).and_then(|f| f.read_exact_at(dst, from - p * PART));
            if ok.is_err() {
                self.remove(k);
                return false;
            }
        }
        true
    }

    /// Keeps the whole parts of `bytes` (fetched from `start`, a part boundary, of an object of
    /// `size` bytes), evicting the least recently used beyond the capacity.
    fn store(&self, name: &str, start: u64, bytes: &[u8], size: u64) {
        let end = start + bytes.len() as u64;
        let mut p = start / PART;
        while p * PART < end {
            let from = p * PART;
            let to = ((p + 1) * PART).min(size);
            if to > end || to - from > self.capacity {
                break;
            }
            let k = Self::key(name, p);
            let held = self.state.lock().parts.contains_key(&k);
            if !held && self.write_part(k, &bytes[(from - start) as usize..(to - start) as usize]) {
                let mut st = self.state.lock();
                st.tick += 1;
                let t = st.tick;
                st.parts.insert(k, (to - from, t));
                st.lru.insert(t, k);
                st.bytes += to - from;
                while st.bytes > self.capacity {
                    let Some((_, victim)) = st.lru.pop_first() else { break };
                    if let Some((len, _)) = st.parts.remove(&victim) {
                        st.bytes -= len;
                    }
                    let _ = self.fs.remove(&self.path(victim));
                }
            }
            p += 1;
        }
    }

    fn write_part(&self, k: PartKey, bytes: &[u8]) -> bool {
        let path = self.path(k);
        let r = self.fs.create(&path).and_then(|mut f| f.append(bytes));
        if r.is_err() {
            let _ = self.fs.remove(&path);
        }
        r.is_ok()
    }

    fn remove(&self, k: PartKey) -> bool {
        let mut st = self.state.lock();
        let Some((len, t)) = st.parts.remove(&k) else { return false };
        st.lru.remove(&t);
        st.bytes -= len;
        drop(st);
        let _ = self.fs.remove(&self.path(k));
        true
    }

    /// Drops every part of object `name` held (its file removed from the cache directory).
    pub(crate) fn drop_object(&self, name: &str) {
        let h = xxhash_rust::xxh3::xxh3_64(name.as_bytes());
        let held: Vec<PartKey> =
            self.state.lock().parts.keys().filter(|k| k.0 == h).copied().collect();
        for k in held {
            self.remove(k);
        }
    }

    /// Drops the parts spanning [`offset`, `end`) of object `name`; says whether any was held.
    fn drop_range(&self, name: &str, offset: u64, end: u64) -> bool {
        let mut dropped = false;
        for p in offset / PART..=end.saturating_sub(1) / PART {
            dropped |= self.remove(Self::key(name, p));
        }
        dropped
    }
}
