//! The value log: large values, sealed, in append-only segments, with only a pointer in the
//! tree (WiscKey-style key-value separation).
//!
//! ```text
//! segment = file header (kind "SEALVLG\0") ‖ entry*
//! entry   = sealed block (kind ValueLog, nonce = entry counter from 1, place = its offset)
//!           whose payload is: sequence u64 ‖ varint key len ‖ key ‖ value
//! pointer = segment number u64 ‖ offset u64 ‖ sealed length u32     (20 bytes, in the tree)
//! ```
//!
//! Nothing of an entry is in the clear but its sealed-block header (lengths of the sealed
//! form). A pointer is checked when followed: the entry must open at exactly that segment and
//! offset (both bound into its associated data) and must hold the key and sequence of the tree
//! entry that points to it, so a pointer to the wrong place fails.
//!
//! Lengths: the manifest records each closed segment's exact length, and for the segment being
//! appended to, the bytes known durable (fsynced). Reads and walks never go past a segment's
//! length, and a walk that deletes or rewrites anything (GC, re-sealing) must meet an
//! authenticated entry boundary exactly at it: a length it did not authenticate stops it with
//! `Corruption` (see [`Segment::scan`]). Only the part of the active segment past its durable
//! mark may be torn by a crash; recovery walks that part, authenticating every entry, and the
//! segment ends where a crash can end it: an entry cut by the end of the file, or an all-zero
//! tail ([`Recorded::Active`]); any other damage there is `Corruption`.
//!
//! Large values are written once: the group-commit leader appends them here and logs only
//! the pointer in the WAL record (after the value-log write, fsynced before it on `sync()`), so
//! a batch is atomic across a crash: a WAL record that never made it leaves unreferenced
//! value-log bytes, which are garbage.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::coding::{put_len_prefixed, put_u32, put_u64, Reader};
use crate::crypto::registry::{KeyRing, LiveKeyspaceKeys};
use crate::error::{Error, Result};
use crate::io::{Fs, RandomAccessFile, WritableFile};
use crate::seal::{parse_header, BlockKind, FileCipher, FileHeader, FileKind, HEADER_LEN};
use crate::sstable::cache::{BlockCache, CachedValue};

/// Bytes of an encoded pointer.
pub(crate) const POINTER_LEN: usize = 20;

/// Where a value lives in the value log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

impl Pointer {
    pub(crate) fn encode(&self) -> [u8; POINTER_LEN] {
        let mut v = Vec::with_capacity(POINTER_LEN);
        put_u64(&mut v, self.segment);
        put_u64(&mut v, self.offset);
        put_u32(&mut v, self.len);
        let mut out = [0u8; POINTER_LEN];
        out.copy_from_slice(&v);
        out
    }
    pub(crate) fn decode(b: &[u8]) -> Option<Pointer> {
        let mut r = Reader::new(b);
        let p = Pointer { segment: r.u64()?, offset: r.u64()?, len: r.u32()? };
        r.is_empty().then_some(p)
    }
}

/// Decodes an entry payload into (sequence, key, value).
pub fn decode_entry(payload: &[u8]) -> std::result::Result<(u64, &[u8], &[u8]), &'static str> {
    let mut r = Reader::new(payload);
    let seq = r.u64().ok_or("value-log entry truncated")?;
    let key = r.len_prefixed().ok_or("value-log entry truncated")?;
    let value = r.bytes(r.remaining()).ok_or("value-log entry truncated")?;
    Ok((seq, key, value))
}

/// What the manifest records of a segment's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A closed segment of exactly this many bytes: no byte before it may be missing. Bytes
    /// after it are never read.
    Closed(u64),
    /// The segment being appended to: this many bytes were durable when the manifest was
    /// written. What follows may be torn by a crash: it is walked, each entry opened, and ends
    /// at an entry cut by the end of the file or at an all-zero tail.
    Active {
        /// Bytes known durable.
        durable: u64,
    },
}

impl Recorded {
    /// What the manifest entry `meta` says of its segment's length, in a database that is
    /// `encrypted` or not. A version-1 manifest recorded no length: the whole segment is then
    /// walked as if only its header were durable.
    pub(crate) fn of(meta: &crate::manifest::SegmentMeta, encrypted: bool) -> Recorded {
        match meta.len {
            Some(len) if !meta.active => Recorded::Closed(len),
            Some(durable) => Recorded::Active { durable },
            None => Recorded::Active { durable: FileHeader::len(encrypted) as u64 },
        }
    }
}

/// One segment, open for reading. Deleted from disk when dropped after being marked obsolete.
pub(crate) struct Segment {
    pub(crate) number: u64,
    path: PathBuf,
    file: Arc<dyn RandomAccessFile>,
    cipher: Arc<FileCipher>,
    /// Bytes of whole entries, header included (grows while the segment is active). Reads and
    /// walks stop here; a file may hold more after a torn tail, never read.
    pub(crate) size: AtomicU64,
    /// Bytes known durable (fsynced): what a manifest records while the segment is active.
    durable: AtomicU64,
    /// Whether the segment is closed: `size` is then final and recorded exactly.
    closed: AtomicBool,
    /// Bytes of entries known to be garbage (overwritten or deleted values).
    pub(crate) discard: AtomicU64,
    pub(crate) header_len: u64,
    obsolete: AtomicBool,
    fs: Arc<dyn Fs>,
    /// Keyspace keys, for entries of named keyspaces (`None` when unencrypted).
    live: Option<Arc<LiveKeyspaceKeys>>,
    /// While the segment is active: its file opened again as an immutable file (a map, where
    /// the file system allows) covering the bytes written when it was opened. Those bytes
    /// never change (the segment is only appended to), so reads within them use it; it is
    /// opened again each time the segment has grown [`REMAP_AFTER`] past it.
    prefix: parking_lot::RwLock<Option<Arc<dyn RandomAccessFile>>>,
}

/// Growth of an active segment past its mapped prefix that makes reads map it again.
const REMAP_AFTER: u64 = 4 << 20;

/// An entry's payload once its outer block is opened.
enum Opened {
    /// The entry's payload: sequence, key, value.
    Payload(Vec<u8>),
    /// An entry of a keyspace whose key was destroyed: its place and length are authentic
    /// (the outer block opened under the data key), its contents unreadable for good.
    Erased,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("number", &self.number).finish_non_exhaustive()
    }
}

impl Segment {
    /// Opens segment `number`, checks its header and its length against what the manifest
    /// recorded. An active segment is walked from its durable mark: every entry after it must
    /// be whole and authentic, and the first that is not ends the segment (a torn tail).
    pub(crate) fn open(
        fs: &Arc<dyn Fs>,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
        recorded: Recorded,
    ) -> Result<Segment> {
        // A closed segment never changes again: it may be read through a map.
        let file = match recorded {
            Recorded::Closed(_) => fs.open_immutable(path)?,
            Recorded::Active { .. } => fs.open(path)?,
        };
        let file_len = file.len();
        let mut head = [0u8; 12];
        if file_len >= head.len() as u64 {
            file.read_exact_at(&mut head, 0)?;
        }
        let hlen = FileHeader::len_for(&head, number, keys);
        let mut header = vec![0u8; hlen];
        if file_len < hlen as u64 {
            return Err(Error::corruption(path, 0, "value-log segment shorter than its header"));
        }
        file.read_exact_at(&mut header, 0)?;
        let cipher = FileHeader::open(FileKind::ValueLog, path, number, &header, keys)?;
        let hlen = hlen as u64;
        let (known, closed) = match recorded {
            Recorded::Closed(len) | Recorded::Active { durable: len } if len < hlen => {
                return Err(Error::corruption(
                    path,
                    0,
                    "manifest records a value-log segment shorter than its header",
                ));
            }
            Recorded::Closed(len) => (len, true),
            Recorded::Active { durable } => (durable, false),
        };
        if file_len < known {
            return Err(Error::corruption(
                path,
                file_len,
                if closed {
                    "value-log segment shorter than the manifest records"
                } else {
                    "value-log segment shorter than its durable length"
                },
            ));
        }
        let seg = Segment {
            number,
            path: path.to_path_buf(),
            size: AtomicU64::new(known),
            durable: AtomicU64::new(known),
            closed: AtomicBool::new(closed),
            file,
            cipher: Arc::new(cipher),
            discard: AtomicU64::new(0),
            header_len: hlen,
            obsolete: AtomicBool::new(false),
            fs: fs.clone(),
            live: keys.map(|r| r.live().clone()),
            prefix: parking_lot::RwLock::new(None),
        };
        if !closed {
            let end = seg.authentic_end(known, file_len)?;
            seg.size.store(end, Ordering::Release);
        }
        Ok(seg)
    }

    /// The end of the entries at or after `from` (an entry boundary), up to `file_len`, by the
    /// rules a crash allows (those of the WAL): the segment ends at an entry cut by the end of
    /// the file, or where every remaining byte is zero. A header that fails its check with a
    /// non-zero byte after it, or a whole entry that fails to open, is `Corruption`: a crash
    /// does not make those, and treating them as a torn tail would drop what follows.
    fn authentic_end(&self, from: u64, file_len: u64) -> Result<u64> {
        let mut pos = from;
        let mut hb = [0u8; HEADER_LEN];
        while pos < file_len {
            let rest = file_len - pos;
            if rest < HEADER_LEN as u64 {
                break; // an entry cut inside its header
            }
            self.file.read_exact_at(&mut hb, pos)?;
            let h = match parse_header(&hb) {
                Ok(h) => h,
                Err(_) if self.zero_from(pos, file_len)? => break,
                Err(e) => return Err(self.corruption(pos, e.reason())),
            };
            let len = h.sealed_len() as u64;
            if len > rest {
                break; // an entry cut by the end of the file
            }
            let sealed = self.read_raw(pos, len as usize)?;
            self.open_sealed(pos, &sealed)?;
            pos += len;
        }
        if pos < file_len {
            tracing::warn!(
                file = %self.path.display(),
                end = pos,
                file_len,
                "value-log segment ends in a torn tail past its durable length: ignored"
            );
        }
        Ok(pos)
    }

    /// Whether every byte of the file from `pos` to `file_len` is zero.
    fn zero_from(&self, mut pos: u64, file_len: u64) -> Result<bool> {
        while pos < file_len {
            let n = (file_len - pos).min(CHUNK);
            if self.read_raw(pos, n as usize)?.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += n;
        }
        Ok(true)
    }

    /// What a manifest records of this segment: (length, active). Closed: the exact length;
    /// active: the bytes known durable.
    pub(crate) fn recorded(&self) -> (u64, bool) {
        if self.closed.load(Ordering::Acquire) {
            (self.size.load(Ordering::Acquire), false)
        } else {
            (self.durable.load(Ordering::Acquire), true)
        }
    }

    /// Closes the segment: nothing is appended to it any more, and its length is final.
    pub(crate) fn close(&self) {
        self.durable.store(self.size.load(Ordering::Acquire), Ordering::Release);
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the segment is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn key_id(&self) -> u32 {
        self.cipher.key_id()
    }

    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    fn corruption(&self, offset: u64, why: &str) -> Error {
        Error::corruption(&self.path, offset, why)
    }

    fn read_raw(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        match self.prefix_for(offset.saturating_add(len as u64)) {
            Some(prefix) => self.read_raw_from(prefix.as_ref(), offset, len),
            None => self.read_raw_from(self.file.as_ref(), offset, len),
        }
    }

    /// For a read of an active segment ending at `end`: its mapped prefix if that holds the
    /// read, mapped again first if the segment has grown [`REMAP_AFTER`] past it. `None`: read
    /// the file itself (a closed segment's file is already immutable).
    fn prefix_for(&self, end: u64) -> Option<Arc<dyn RandomAccessFile>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let covers =
            |p: &Option<Arc<dyn RandomAccessFile>>| p.as_ref().filter(|f| f.len() >= end).cloned();
        {
            let p = self.prefix.read();
            if let Some(f) = covers(&p) {
                return Some(f);
            }
            let mapped = p.as_ref().map_or(0, |f| f.len());
            if self.size.load(Ordering::Acquire) < mapped.saturating_add(REMAP_AFTER) {
                return None;
            }
        }
        let mut p = self.prefix.write();
        if let Some(f) = covers(&p) {
            return Some(f);
        }
        // Everything before `size` is written and never changes; the file may hold more (a
        // write in progress, a torn tail), which no read reaches. If it cannot be opened again,
        // the segment's own file stands in (its length is what it was at open), so the next
        // attempt waits for another `REMAP_AFTER` of growth.
        *p = Some(self.fs.open_immutable(&self.path).unwrap_or_else(|_| self.file.clone()));
        covers(&p)
    }

    /// [`Segment::read_raw`] through `file` (this segment's, or a view of it past a cache).
    fn read_raw_from(
        &self,
        file: &dyn RandomAccessFile,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>> {
        match file.read_vec(offset, len) {
            Ok(buf) => Ok(buf),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.corruption(offset, "value-log pointer past the end of the segment"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the sealed entry `sealed` found at `offset`: its outer block under the segment's
    /// cipher, then, for an entry of a named keyspace in an encrypted database, the inner block
    /// under that keyspace's entry cipher.
    fn open_sealed(&self, offset: u64, sealed: &[u8]) -> Result<Opened> {
        let (keyspace, payload) = self
            .cipher
            .open_outer(BlockKind::ValueLog, offset, sealed)
            .map_err(|e| self.corruption(offset, e.reason()))?;
        if keyspace == 0 {
            return Ok(Opened::Payload(payload));
        }
        let Some(live) = &self.live else {
            return Err(self.corruption(offset, "keyspace-sealed entry in an unencrypted segment"));
        };
        let inner = match live.entry_cipher(keyspace, self.number) {
            Ok(c) => c,
            Err(_) if live.is_erased(keyspace) => return Ok(Opened::Erased),
            Err(why) => return Err(self.corruption(offset, why)),
        };
        let payload = inner
            .open(BlockKind::ValueLog, offset, &payload)
            .map_err(|e| self.corruption(offset, e.reason()))?;
        Ok(Opened::Payload(payload))
    }

    /// Opens the sealed entry `sealed` found at `offset` and checks it belongs to (`key`, `seq`).
    fn open_entry(&self, offset: u64, sealed: &[u8], key: &[u8], seq: u64) -> Result<CachedValue> {
        let Opened::Payload(payload) = self.open_sealed(offset, sealed)? else {
            return Err(self.corruption(
                offset,
                "value sealed under the key of a dropped keyspace (destroyed)",
            ));
        };
        let len = payload.len();
        self.entry_of(offset, payload, 0..len, key, seq)
    }

    /// As [`Segment::open_entry`] for a sealed entry read into a buffer of its own: opened in
    /// place (no copy of the entry before it is decrypted). An entry sealed in two layers (a
    /// named keyspace's, in an encrypted database) takes [`Segment::open_entry`]'s way.
    fn open_owned_entry(
        &self,
        offset: u64,
        sealed: Vec<u8>,
        key: &[u8],
        seq: u64,
    ) -> Result<CachedValue> {
        if crate::seal::header_keyspace(&sealed) != 0 {
            return self.open_entry(offset, &sealed, key, seq);
        }
        let (buf, payload) = self
            .cipher
            .open_owned(BlockKind::ValueLog, offset, sealed)
            .map_err(|e| self.corruption(offset, e.reason()))?;
        self.entry_of(offset, buf, payload, key, seq)
    }

    /// The entry whose opened payload is `buf[payload]`, checked to belong to (`key`, `seq`).
    fn entry_of(
        &self,
        offset: u64,
        buf: Vec<u8>,
        payload: std::ops::Range<usize>,
        key: &[u8],
        seq: u64,
    ) -> Result<CachedValue> {
        let (eseq, ekey, value) =
            decode_entry(&buf[payload.clone()]).map_err(|e| self.corruption(offset, e))?;
        if ekey != key || eseq != seq {
            return Err(self.corruption(offset, "value-log entry does not match its pointer"));
        }
        // decode_entry: the value is the rest of the payload, right after the key.
        let value_start = payload.end - value.len();
        let key_start = value_start - ekey.len();
        Ok(CachedValue::new(seq, buf, key_start..value_start, value_start..payload.end))
    }

    /// Checks that `ptr` lies within this segment's entries.
    fn check_pointer(&self, ptr: Pointer) -> Result<()> {
        if ptr.offset < self.header_len {
            return Err(self.corruption(ptr.offset, "value-log pointer into the segment header"));
        }
        if ptr.offset.checked_add(u64::from(ptr.len)).is_none_or(|end| end > self.file_len()) {
            return Err(
                self.corruption(ptr.offset, "value-log pointer past the end of the segment")
            );
        }
        Ok(())
    }

    /// Reads the value `ptr` points to, for the tree entry (`key`, `seq`).
    /// An entry that fails its check when read from a local copy of fetched bytes (a cold
    /// segment's cache) is fetched once more.
    pub(crate) fn read(&self, ptr: Pointer, key: &[u8], seq: u64) -> Result<CachedValue> {
        self.check_pointer(ptr)?;
        let sealed = self.read_raw(ptr.offset, ptr.len as usize)?;
        match self.open_owned_entry(ptr.offset, sealed, key, seq) {
            Err(e) if e.is_corruption() && self.file.drop_cached(ptr.offset, ptr.len as usize) => {
                let sealed = self.read_raw(ptr.offset, ptr.len as usize)?;
                self.open_owned_entry(ptr.offset, sealed, key, seq)
            }
            r => r,
        }
    }

    /// The same closed segment read through `file` (holding the same bytes: the segment
    /// moved between the data directory and the object store). Its garbage count carries over.
    pub(crate) fn with_file(&self, file: Arc<dyn RandomAccessFile>) -> Segment {
        let size = self.size.load(Ordering::Acquire);
        Segment {
            number: self.number,
            path: self.path.clone(),
            file,
            cipher: self.cipher.clone(),
            size: AtomicU64::new(size),
            durable: AtomicU64::new(size),
            closed: AtomicBool::new(true),
            discard: AtomicU64::new(self.discard.load(Ordering::Relaxed)),
            header_len: self.header_len,
            obsolete: AtomicBool::new(false),
            fs: self.fs.clone(),
            live: self.live.clone(),
            prefix: parking_lot::RwLock::new(None),
        }
    }

    /// The segment's file (for the cold tier's uploads: its exact bytes).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f` for every entry of a closed segment, in order, each opened (authenticated).
    /// The entries must end exactly at the segment's recorded length: an entry running past it
    /// or a damaged entry is `Corruption`, so a caller that deletes or rewrites the segment
    /// afterwards never acts on a length that was not authenticated. Entries of a keyspace
    /// whose key was destroyed are authenticated (outer block) and skipped: nothing can read
    /// them, so they are garbage.
    pub(crate) fn scan(&self, mut f: impl FnMut(&Entry<'_>) -> Result<()>) -> Result<()> {
        self.scan_sealed(|pos, sealed| {
            let Opened::Payload(payload) = self.open_sealed(pos, sealed)? else {
                return Ok(());
            };
            let (_, key, value) = decode_entry(&payload).map_err(|e| self.corruption(pos, e))?;
            f(&Entry { offset: pos, len: sealed.len() as u32, key, value })
        })
    }

    /// Calls `f(offset, sealed entry)` for every entry of a closed segment, in order, without
    /// opening them: `f` must open (authenticate) each one before anything depends on its
    /// length. Entries must end exactly at the recorded length.
    fn scan_sealed(&self, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        if !self.is_closed() {
            return Err(Error::InvalidArgument(format!(
                "value-log segment {} is still being written: only closed segments are walked",
                self.number
            )));
        }
        let size = self.file_len();
        // One pass over the whole segment (GC, re-sealing, verification): a cold segment is
        // read past its local cache of fetched parts.
        let file = self.file.uncached().unwrap_or_else(|| self.file.clone());
        let mut pos = self.header_len;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_start = pos;
        while pos < size {
            if size - pos < HEADER_LEN as u64 {
                return Err(self.corruption(pos, "value-log entry runs past the segment's length"));
            }
            let need =
                |start: u64, len: u64, buf: &Vec<u8>| pos_in(start, buf.len() as u64, pos, len);
            if !need(buf_start, HEADER_LEN as u64, &buf) {
                let n = (size - pos).min(CHUNK.max(HEADER_LEN as u64));
                buf = self.read_raw_from(file.as_ref(), pos, n as usize)?;
                buf_start = pos;
            }
            let at = (pos - buf_start) as usize;
            let h = parse_header(&buf[at..at + HEADER_LEN])
                .map_err(|e| self.corruption(pos, e.reason()))?;
            let len = h.sealed_len() as u64;
            if len > size - pos {
                return Err(self.corruption(pos, "value-log entry runs past the segment's length"));
            }
            if !need(buf_start, len, &buf) {
                buf = self.read_raw_from(
                    file.as_ref(),
                    pos,
                    (size - pos).min(CHUNK.max(len)) as usize,
                )?;
                buf_start = pos;
            }
            let at = (pos - buf_start) as usize;
            f(pos, &buf[at..at + len as usize])?;
            pos += len;
        }
        Ok(())
    }

    fn file_len(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
}

/// One entry met by [`Segment::scan`].
pub(crate) struct Entry<'a> {
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

impl Segment {
    /// Writes this segment's entries sealed again under the current key into a new file of the
    /// same number, at the same offsets and lengths (so every pointer stays valid), and
    /// atomically replaces the segment with it. Returns the new segment.
    pub(crate) fn reseal(
        &self,
        fs: &Arc<dyn Fs>,
        keys: Option<&KeyRing>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Segment> {
        let (mut out, cipher) = FileHeader::create(FileKind::ValueLog, self.number, keys)?;
        if out.len() as u64 != self.header_len {
            return Err(Error::InvalidArgument(
                "cannot re-seal between encrypted and plain".into(),
            ));
        }
        let mut nonce = 1;
        self.scan_sealed(|pos, sealed| {
            if out.len() as u64 != pos {
                return Err(self.corruption(pos, "value-log entries are not contiguous"));
            }
            // Same payload, same length: every pointer into the segment stays valid.
            self.cipher
                .reseal(BlockKind::ValueLog, pos, sealed, &cipher, pos, nonce, &mut out)
                .map_err(|e| self.corruption(pos, e.reason()))?;
            nonce += 1;
            progress(sealed.len() as u64);
            Ok(())
        })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let name = crate::io::names::vlog(Path::new(""), self.number);
        crate::io::write_atomic(fs.as_ref(), dir, &name.to_string_lossy(), &out)?;
        // The caller carries the discard counter over, under the state lock.
        Segment::open(fs, &self.path, self.number, keys, Recorded::Closed(self.file_len()))
    }

    /// The on-disk algorithm id of the segment's entries.
    pub(crate) fn alg(&self) -> u8 {
        self.cipher.alg()
    }
}

/// Bytes a scan reads at a time.
const CHUNK: u64 = 1 << 20;

/// Whether [`pos`, `pos + len`) lies within a buffer covering [`start`, `start + buf_len`).
fn pos_in(start: u64, buf_len: u64, pos: u64, len: u64) -> bool {
    pos >= start && pos.checked_add(len).is_some_and(|end| end <= start.saturating_add(buf_len))
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Err(e) = self.fs.remove(&self.path) {
                tracing::warn!(file = %self.path.display(), error = %e, "could not delete obsolete value-log segment");
            }
        }
    }
}

/// The live segments, by number. Immutable; replaced whole when the set changes.
#[derive(Clone, Default)]
pub(crate) struct VlogSet {
    pub(crate) segments: std::collections::BTreeMap<u64, Arc<Segment>>,
    /// Values read one by one (point reads, and scans where the pointers jump) are kept here;
    /// what a scan reads through a read-ahead window is not, so a long scan does not evict
    /// the values point reads use.
    pub(crate) cache: Option<Arc<BlockCache>>,
}

impl std::fmt::Debug for VlogSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VlogSet").field("segments", &self.segments.keys()).finish_non_exhaustive()
    }
}

impl VlogSet {
    /// Reads the value of tree entry (`key`, `seq`) holding pointer bytes `ptr`; a scan passes
    /// its [`ReadAhead`], which decides how much to read past the entry.
    pub(crate) fn read(
        &self,
        ptr_bytes: &[u8],
        key: &[u8],
        seq: u64,
        ra: Option<&mut ReadAhead>,
    ) -> Result<Vec<u8>> {
        let ptr = Pointer::decode(ptr_bytes)
            .filter(|p| p.len as usize <= crate::seal::MAX_BLOCK_LEN + 64)
            .ok_or_else(|| {
                Error::corruption("value-log pointer", 0, "malformed value-log pointer in the tree")
            })?;
        let seg = self.segments.get(&ptr.segment).ok_or_else(|| {
            Error::corruption(
                crate::io::names::vlog(Path::new(""), ptr.segment),
                ptr.offset,
                "value-log pointer to a segment that is not live",
            )
        })?;
        let cache = self.cache.as_deref();
        match ra {
            Some(ra) => ra.read(seg, ptr, key, seq, cache),
            None => read_cached(seg, ptr, key, seq, cache),
        }
    }
}

/// The value of `ptr` from `cache` if it is there for (`key`, `seq`).
fn cached(cache: Option<&BlockCache>, ptr: Pointer, key: &[u8], seq: u64) -> Option<Vec<u8>> {
    let v = cache?.get_value(ptr.segment, ptr.offset)?;
    (v.seq == seq && v.key() == key).then(|| v.value().to_vec())
}

/// Reads just the entry `ptr` points to, through `cache`: a hit is returned, a miss is read,
/// opened and checked, then kept.
fn read_cached(
    seg: &Segment,
    ptr: Pointer,
    key: &[u8],
    seq: u64,
    cache: Option<&BlockCache>,
) -> Result<Vec<u8>> {
    if let Some(v) = cached(cache, ptr, key, seq) {
        return Ok(v);
    }
    let entry = seg.read(ptr, key, seq)?;
    if let Some(cache) = cache {
        // The opened entry itself is kept (no copy of it); the caller gets a copy of its value.
        let out = entry.value().to_vec();
        cache.insert_value(ptr.segment, ptr.offset, Arc::new(entry));
        return Ok(out);
    }
    Ok(entry.into_value())
}

/// Read-ahead for scans, adapting to the order of the pointers met (as RocksDB's automatic
/// read-ahead does). A pointer that does not start where the previous one ended (values
/// written in another order than the keys) is read alone, through the value cache, so a
/// random scan costs one entry-sized read per value and a repeated scan hits the cache. While
/// pointers continue one another within a segment, entries are read in windows that start at
/// [`MIN_READ_AHEAD`] and double on each refill up to [`MAX_READ_AHEAD`], so values written
/// together are read with few I/Os. A window never reaches past the segment's length, and
/// every entry is opened (authenticated and matched to its key and sequence) as it is read.
#[derive(Default)]
pub(crate) struct ReadAhead {
    /// Segment of the buffered window.
    segment: u64,
    /// Offset of the buffered window.
    start: u64,
    /// The buffered window: whole entries and possibly part of the one after them.
    buf: Vec<u8>,
    /// Where the previous pointer ended: (segment, offset). A pointer starting there is
    /// sequential.
    next: Option<(u64, u64)>,
    /// Bytes of the last window read; 0 after a pointer that was not sequential.
    window: u64,
}

/// First read-ahead window once pointers are seen to be sequential.
const MIN_READ_AHEAD: u64 = 16 << 10;
/// Largest read-ahead window.
const MAX_READ_AHEAD: u64 = 256 << 10;

impl ReadAhead {
    fn read(
        &mut self,
        seg: &Segment,
        ptr: Pointer,
        key: &[u8],
        seq: u64,
        cache: Option<&BlockCache>,
    ) -> Result<Vec<u8>> {
        seg.check_pointer(ptr)?;
        let len = u64::from(ptr.len);
        // check_pointer: offset + len fits and is within the segment's length.
        let end = ptr.offset + len;
        let sequential = self.next == Some((seg.number, ptr.offset));
        self.next = Some((seg.number, end));
        if !sequential {
            self.window = 0;
        }
        if !(self.segment == seg.number
            && pos_in(self.start, self.buf.len() as u64, ptr.offset, len))
        {
            if !sequential {
                return read_cached(seg, ptr, key, seq, cache);
            }
            self.window = (self.window * 2).clamp(MIN_READ_AHEAD, MAX_READ_AHEAD);
            // Never past the segment's length, which check_pointer found to hold the entry
            // (and which never shrinks).
            let room = seg.file_len().saturating_sub(ptr.offset).max(len);
            let want = self.window.max(len).min(room);
            self.buf = seg.read_raw(ptr.offset, want as usize)?;
            self.segment = seg.number;
            self.start = ptr.offset;
        }
        let at = (ptr.offset - self.start) as usize;
        let sealed = &self.buf[at..at + ptr.len as usize];
        match seg.open_entry(ptr.offset, sealed, key, seq) {
            // From a cold segment's cached part: dropped, and the entry fetched once more.
            Err(e) if e.is_corruption() && seg.file.drop_cached(ptr.offset, ptr.len as usize) => {
                self.buf.clear();
                seg.read(ptr, key, seq).map(CachedValue::into_value)
            }
            r => r.map(CachedValue::into_value),
        }
    }
}

/// An entry's payload after its sequence number: the length-prefixed tree key, then the value.
fn encode_tail(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_len_prefixed(out, key);
    out.extend_from_slice(value);
}

fn tail_len(key: &[u8], value: &[u8]) -> usize {
    crate::coding::varint_size(key.len() as u64) + key.len() + value.len()
}

/// The tail of the entry for (`key`, `value`) compressed, for [`VlogWriter::add_prepared`]:
/// the writer of a large value compresses it before it queues, so writers of a group compress
/// at once, each on its own thread, and the group's leader only seals (`None`: too short to
/// compress).
pub(crate) fn precompress_tail(key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let mut tail = Vec::with_capacity(tail_len(key, value));
    encode_tail(&mut tail, key, value);
    crate::seal::precompress(8, &tail)
}

/// Appends sealed entries to the active segment. Entries are staged in a buffer and written
/// with one call by [`VlogWriter::write_staged`].
pub(crate) struct VlogWriter {
    file: Box<dyn WritableFile>,
    cipher: FileCipher,
    nonce: u64,
    staged: Vec<u8>,
    payload: Vec<u8>,
    /// An entry's inner block while it is sealed (entries of named keyspaces).
    inner: Vec<u8>,
    pub(crate) segment: Arc<Segment>,
}

impl VlogWriter {
    /// Creates segment `number`, durably writes its header, and opens it for reading.
    pub(crate) fn create(
        fs: &Arc<dyn Fs>,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
    ) -> Result<VlogWriter> {
        let (header, cipher) = FileHeader::create(FileKind::ValueLog, number, keys)?;
        let mut file = fs.create(path)?;
        file.append(&header)?;
        file.sync()?;
        let hlen = header.len() as u64;
        let segment =
            Arc::new(Segment::open(fs, path, number, keys, Recorded::Active { durable: hlen })?);
        Ok(VlogWriter {
            file,
            cipher,
            nonce: 1,
            staged: Vec::new(),
            payload: Vec::new(),
            inner: Vec::new(),
            segment,
        })
    }

    /// Stages an entry for tree key `key` (keyspace prefix included) and returns its pointer.
    /// In an encrypted database, an entry of a named keyspace is sealed twice: under its
    /// keyspace's entry cipher (inner), then under the segment's cipher (outer).
    #[cfg(test)]
    pub(crate) fn add(
        &mut self,
        seq: u64,
        key: &[u8],
        value: &[u8],
        compress: bool,
    ) -> Result<Pointer> {
        self.add_prepared(seq, key, value, compress, None)
    }

    /// As [`VlogWriter::add`], with the entry's tail (everything after its sequence number)
    /// compressed ahead by [`precompress_tail`] (`lz4_tail`), where `compress` asks for
    /// compression. The entry opens to the payload `add` would write, in the same format
    /// (its compressed bytes may differ: the sequence number is stored as literals).
    pub(crate) fn add_prepared(
        &mut self,
        seq: u64,
        key: &[u8],
        value: &[u8],
        compress: bool,
        lz4_tail: Option<&[u8]>,
    ) -> Result<Pointer> {
        let offset = self.file.len() + self.staged.len() as u64;
        let start = self.staged.len();
        let keyspace = crate::db::keyspace::split(key).map_or(0, |(id, _)| id);
        let inner = match self.segment.live.as_ref().filter(|_| keyspace != 0) {
            None => None,
            Some(live) => Some(
                live.entry_cipher(keyspace, self.segment.number)
                    .map_err(|why| Error::InvalidArgument(format!("keyspace {keyspace}: {why}")))?,
            ),
        };
        let cipher: &FileCipher = inner.as_deref().unwrap_or(&self.cipher);
        let out = if inner.is_some() { &mut self.inner } else { &mut self.staged };
        if inner.is_some() {
            out.clear();
        }
        let prefix = seq.to_le_bytes();
        let lz4_tail = lz4_tail.filter(|_| compress);
        let prepared = lz4_tail.is_some_and(|t| {
            let tail_len = tail_len(key, value);
            cipher.seal_precompressed(
                BlockKind::ValueLog,
                offset,
                self.nonce,
                &prefix,
                tail_len,
                t,
                out,
            )
        });
        if !prepared {
            self.payload.clear();
            self.payload.extend_from_slice(&prefix);
            encode_tail(&mut self.payload, key, value);
            // A tail compressed ahead that did not pay is not compressed again.
            let compress = compress && lz4_tail.is_none();
            cipher.seal(BlockKind::ValueLog, offset, self.nonce, compress, &self.payload, out);
        }
        if inner.is_some() {
            self.cipher.seal_outer(
                BlockKind::ValueLog,
                offset,
                self.nonce,
                keyspace,
                &self.inner,
                &mut self.staged,
            );
        }
        self.nonce += 1;
        Ok(Pointer {
            segment: self.segment.number,
            offset,
            len: (self.staged.len() - start) as u32,
        })
    }

    /// Writes staged entries to the file (one call).
    pub(crate) fn write_staged(&mut self) -> Result<()> {
        if !self.staged.is_empty() {
            let r = self.file.append(&self.staged);
            self.staged.clear();
            r?;
            self.segment.size.store(self.file.len(), Ordering::Release);
        }
        Ok(())
    }

    /// Drops staged entries (their batch failed).
    pub(crate) fn discard_staged(&mut self) {
        self.staged.clear();
    }

    /// fsyncs the segment and advances its durable mark. Nothing appended since the last
    /// successful fsync (a commit group of small values only): no fsync, as there is nothing to
    /// make durable, so a synced write of inline values costs one device flush (the WAL's).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.segment.durable.load(Ordering::Acquire) == self.file.len() {
            return Ok(());
        }
        self.file.sync()?;
        self.segment.durable.store(self.file.len(), Ordering::Release);
        Ok(())
    }

    pub(crate) fn len(&self) -> u64 {
        self.file.len()
    }
}

#[cfg(test)]
mod tests;
