//! SSTable writer and reader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{Block, BlockBuilder, BlockIter};
use super::cache::BlockCache;
use super::filter::{Filter, FilterBuilder};
use crate::coding::{put_u32, put_u64, put_varint, Reader};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{Fs, RandomAccessFile, WritableFile};
use crate::iter::InternalIterator;
use crate::key::{self, ValueKind, MAX_SEQ};
use crate::seal::{BlockKind, FileCipher, FileHeader, FileKind};

const END_MAGIC: &[u8; 8] = b"SEALEND\0";
const TRAILER_LEN: usize = 12;
/// Bytes of the properties block: entries, deletions, min and max sequence (u64 each).
const PROPS_LEN: usize = 32;
/// Bytes of a footer's payload: three handles of (offset u64, length u32).
const FOOTER_PAYLOAD_LEN: usize = 36;
const WRITE_BUFFER: usize = 256 << 10;

/// Tuning for a table build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuildOptions {
    pub(crate) block_size: usize,
    pub(crate) restart_interval: usize,
    pub(crate) compression: bool,
    pub(crate) bloom_bits_per_key: u32,
}

/// What a finished table holds.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    pub(crate) size: u64,
    pub(crate) smallest: Vec<u8>,
    pub(crate) largest: Vec<u8>,
    pub(crate) key_id: u32,
    pub(crate) max_seq: u64,
    /// Tombstones added (0 for a re-sealed table, whose blocks are copied, not read).
    pub(crate) deletions: u64,
}

/// Writes one SSTable.
pub(crate) struct TableBuilder {
    file: Box<dyn WritableFile>,
    cipher: FileCipher,
    opts: BuildOptions,
    nonce: u64,
    offset: u64,
    out: Vec<u8>,
    data: BlockBuilder,
    index: BlockBuilder,
    filter: Option<FilterBuilder>,
    smallest: Option<Vec<u8>>,
    entries: u64,
    deletions: u64,
    min_seq: u64,
    max_seq: u64,
}

impl TableBuilder {
    pub(crate) fn create(
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
        keyspace: u32,
        opts: BuildOptions,
    ) -> Result<TableBuilder> {
        let (header, cipher) = FileHeader::create_in(FileKind::Table, number, keys, keyspace)?;
        let file = fs.create(path)?;
        Ok(TableBuilder {
            file,
            cipher,
            opts,
            nonce: 1,
            offset: header.len() as u64,
            out: header,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            filter: (opts.bloom_bits_per_key > 0)
                .then(|| FilterBuilder::new(opts.bloom_bits_per_key)),
            smallest: None,
            entries: 0,
            deletions: 0,
            min_seq: u64::MAX,
            max_seq: 0,
        })
    }

    /// Adds an entry; internal keys must arrive in increasing order.
    pub(crate) fn add(
        &mut self,
        user_key: &[u8],
        seq: u64,
        kind: ValueKind,
        value: &[u8],
    ) -> Result<()> {
        let mut ik = Vec::with_capacity(user_key.len() + key::TRAILER_LEN);
        key::encode(&mut ik, user_key, seq, kind);
        if self.smallest.is_none() {
            self.smallest = Some(ik.clone());
        }
        if let Some(f) = &mut self.filter {
            f.add(user_key);
        }
        self.data.add(&ik, value);
        self.entries += 1;
        if kind == ValueKind::Delete {
            self.deletions += 1;
        }
        self.min_seq = self.min_seq.min(seq);
        self.max_seq = self.max_seq.max(seq);
        if self.data.estimated_size() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// Bytes written so far (approximate file size).
    pub(crate) fn file_size(&self) -> u64 {
        self.offset + self.data.estimated_size() as u64
    }

    /// Seals `plain` as the next block; returns (offset, sealed length).
    fn write_block(&mut self, kind: BlockKind, plain: &[u8], compress: bool) -> Result<(u64, u32)> {
        let start = self.out.len();
        self.cipher.seal(kind, self.offset, self.nonce, compress, plain, &mut self.out);
        self.block_written(start)
    }

    /// Accounts for the block appended to the buffer from `start`: next nonce, new offset,
    /// buffer handed to the file when full. Returns (offset, sealed length).
    fn block_written(&mut self, start: usize) -> Result<(u64, u32)> {
        let offset = self.offset;
        self.nonce += 1;
        let len = self.out.len() - start;
        self.offset += len as u64;
        if self.out.len() >= WRITE_BUFFER {
            self.file.append(&self.out)?;
            self.out.clear();
        }
        Ok((offset, len as u32))
    }

    /// Adds the index entry of a data block.
    fn index_block(&mut self, last_key: &[u8], offset: u64, len: u32) {
        let mut handle = Vec::with_capacity(12);
        put_varint(&mut handle, offset);
        put_varint(&mut handle, u64::from(len));
        self.index.add(last_key, &handle);
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last = self.data.last_key().to_vec();
        let block = self.data.finish();
        let (off, len) = self.write_block(BlockKind::Data, &block, self.opts.compression)?;
        self.index_block(&last, off, len);
        Ok(())
    }

    /// Writes the remaining blocks and the footer, and syncs the file.
    pub(crate) fn finish(mut self) -> Result<TableInfo> {
        self.flush_data_block()?;
        let filter = self.filter.take().map(|f| f.finish());
        let mut props = Vec::new();
        put_u64(&mut props, self.entries);
        put_u64(&mut props, self.deletions);
        put_u64(&mut props, if self.entries == 0 { 0 } else { self.min_seq });
        put_u64(&mut props, self.max_seq);
        self.finish_tail(filter.as_deref(), &props)
    }

    /// Re-seals the data block `sealed`, found at `off` of the file `src` sealed by `from`,
    /// as this table's next data block whose last key is `last_key`; returns its new offset.
    pub(crate) fn add_resealed_block(
        &mut self,
        last_key: &[u8],
        from: &FileCipher,
        src: &Path,
        off: u64,
        sealed: &[u8],
    ) -> Result<u64> {
        let start = self.out.len();
        from.reseal(
            BlockKind::Data,
            off,
            sealed,
            &self.cipher,
            self.offset,
            self.nonce,
            &mut self.out,
        )
        .map_err(|e| Error::corruption(src, off, e.reason()))?;
        let (offset, len) = self.block_written(start)?;
        self.index_block(last_key, offset, len);
        if self.smallest.is_none() {
            // Only the key range's presence matters here; the caller keeps the manifest's range.
            self.smallest = Some(last_key.to_vec());
        }
        Ok(offset)
    }

    /// Writes filter, index, properties, footer and trailer, and syncs the file.
    fn finish_tail(mut self, filter: Option<&[u8]>, props: &[u8]) -> Result<TableInfo> {
        // The index's last key is the table's largest internal key.
        let largest = self.index.last_key().to_vec();
        let filter = match filter {
            Some(bytes) => self.write_block(BlockKind::Filter, bytes, false)?,
            None => (0, 0),
        };
        let index_bytes = self.index.finish();
        let index = self.write_block(BlockKind::Index, &index_bytes, self.opts.compression)?;
        let props_h = self.write_block(BlockKind::Properties, props, false)?;
        let mut footer = Vec::with_capacity(FOOTER_PAYLOAD_LEN);
        for (off, len) in [index, filter, props_h] {
            put_u64(&mut footer, off);
            put_u32(&mut footer, len);
        }
        let (_, flen) = self.write_block(BlockKind::Footer, &footer, false)?;
        put_u32(&mut self.out, flen);
        self.out.extend_from_slice(END_MAGIC);
        self.offset += TRAILER_LEN as u64;
        self.file.append(&self.out)?;
        self.file.sync()?;
        Ok(TableInfo {
            size: self.offset,
            smallest: self.smallest.unwrap_or_default(),
            largest,
            key_id: self.cipher.key_id(),
            max_seq: self.max_seq,
            deletions: self.deletions,
        })
    }
}

/// Decodes a footer payload into the (offset, sealed length) handles of the index, filter and
/// properties blocks, each checked to lie in [`data_start`, `footer_off`) (a filter length of 0
/// means no filter).
pub fn decode_footer(
    footer: &[u8],
    data_start: u64,
    footer_off: u64,
) -> std::result::Result<[(u64, u32); 3], &'static str> {
    let mut r = Reader::new(footer);
    let mut handles = [(0u64, 0u32); 3];
    for h in &mut handles {
        *h = (r.u64().ok_or("table footer malformed")?, r.u32().ok_or("table footer malformed")?);
    }
    if !r.is_empty() {
        return Err("table footer malformed");
    }
    let check = |(off, len): (u64, u32)| {
        off >= data_start && off.checked_add(u64::from(len)).is_some_and(|e| e <= footer_off)
    };
    let [index_h, filter_h, props_h] = handles;
    if !check(index_h) || !check(props_h) || (filter_h.1 != 0 && !check(filter_h)) {
        return Err("table footer handle out of range");
    }
    Ok(handles)
}

/// An open SSTable.
pub(crate) struct Table {
    pub(crate) number: u64,
    path: PathBuf,
    file: Arc<dyn RandomAccessFile>,
    cipher: Arc<FileCipher>,
    index: Arc<Block>,
    filter: Option<Arc<Filter>>,
    cache: Arc<BlockCache>,
    data_start: u64,
    data_end: u64,
    props_handle: (u64, u32),
    /// Entries in the table (every version and tombstone), from its properties.
    entries: u64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("number", &self.number).finish_non_exhaustive()
    }
}

fn read_at(file: &dyn RandomAccessFile, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|e| e > file.len()) {
        return Err(Error::corruption(path, offset, "block extends past the end of the file"));
    }
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

impl Table {
    /// Opens table `number` at `path`: checks header and footer, loads index and filter.
    pub(crate) fn open(
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
        cache: Arc<BlockCache>,
    ) -> Result<Table> {
        Table::open_sized(fs, path, number, keys, cache, None)
    }

    /// [`Table::open`], first checking the file is `expected` bytes long (the size the
    /// manifest records): a table of another length is not the one the manifest names.
    pub(crate) fn open_sized(
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
        cache: Arc<BlockCache>,
        expected: Option<u64>,
    ) -> Result<Table> {
        let file = fs.open_immutable(path)?;
        let size = file.len();
        let bad = |off: u64, why: &str| Error::corruption(path, off, why);
        if let Some(expected) = expected.filter(|&e| e != size) {
            return Err(bad(size.min(expected), "table size differs from the manifest"));
        }
        let head = if size >= 12 { read_at(file.as_ref(), path, 0, 12)? } else { Vec::new() };
        let hlen = FileHeader::len_for(&head, number, keys);
        if size < (hlen + TRAILER_LEN) as u64 {
            return Err(bad(0, "table too short"));
        }
        let header = read_at(file.as_ref(), path, 0, hlen)?;
        let cipher = FileHeader::open(FileKind::Table, path, number, &header, keys)?;
        let trailer_off = size - TRAILER_LEN as u64;
        let trailer = read_at(file.as_ref(), path, trailer_off, TRAILER_LEN)?;
        if &trailer[4..] != END_MAGIC {
            return Err(bad(trailer_off + 4, "bad table end magic"));
        }
        let flen = u64::from(crate::coding::get_u32_at(&trailer, 0).unwrap_or(0));
        let footer_off = trailer_off
            .checked_sub(flen)
            .filter(|&o| o >= hlen as u64)
            .ok_or_else(|| bad(trailer_off, "table footer length out of range"))?;
        let sealed = read_at(file.as_ref(), path, footer_off, flen as usize)?;
        let footer = cipher
            .open(BlockKind::Footer, footer_off, &sealed)
            .map_err(|e| bad(footer_off, e.reason()))?;
        let data_start = hlen as u64;
        let [index_h, filter_h, props_h] =
            decode_footer(&footer, data_start, footer_off).map_err(|e| bad(footer_off, e))?;
        let read_block = |(off, len): (u64, u32), kind: BlockKind| -> Result<Vec<u8>> {
            let sealed = read_at(file.as_ref(), path, off, len as usize)?;
            cipher.open(kind, off, &sealed).map_err(|e| bad(off, e.reason()))
        };
        let index =
            Block::new(read_block(index_h, BlockKind::Index)?).map_err(|e| bad(index_h.0, e))?;
        // Authenticated now so that no byte of a table goes unchecked.
        let props = read_block(props_h, BlockKind::Properties)?;
        if props.len() != PROPS_LEN {
            return Err(bad(props_h.0, "table properties malformed"));
        }
        let entries = crate::coding::get_u64_at(&props, 0).unwrap_or(0);
        let filter = if filter_h.1 == 0 {
            None
        } else {
            Some(Arc::new(
                Filter::new(read_block(filter_h, BlockKind::Filter)?)
                    .map_err(|e| bad(filter_h.0, e))?,
            ))
        };
        let data_end = if filter_h.1 == 0 { index_h.0 } else { filter_h.0 };
        Ok(Table {
            number,
            path: path.to_path_buf(),
            file,
            cipher: Arc::new(cipher),
            index: Arc::new(index),
            filter,
            cache,
            data_start,
            data_end,
            props_handle: props_h,
            entries,
        })
    }

    /// Entries in the table (every version and tombstone).
    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    /// The share (0 to 1) of the table's data blocks whose keys may lie in [`lo`, `hi`]
    /// (`None`: unbounded), from the index alone: block `i` holds the user keys from the last
    /// one of block `i - 1` to its own last one. A damaged index counts whole.
    pub(crate) fn share_in(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> f64 {
        let mut idx = BlockIter::new(self.index.clone());
        idx.seek_to_first();
        let (mut blocks, mut inside) = (0u64, 0u64);
        let mut prev: Option<Vec<u8>> = None;
        while idx.valid() {
            let last = key::user_key(idx.key());
            let after_lo = lo.is_none_or(|lo| last >= lo);
            let before_hi = hi.is_none_or(|hi| prev.as_deref().is_none_or(|p| p <= hi));
            blocks += 1;
            inside += u64::from(after_lo && before_hi);
            prev = Some(last.to_vec());
            idx.next();
        }
        if idx.error().is_some() || blocks == 0 {
            return 1.0;
        }
        inside as f64 / blocks as f64
    }

    /// The same table read through `file` (holding the same bytes: the table moved between
    /// the data directory and the object store). Index, filter and cached blocks carry over.
    pub(crate) fn with_file(&self, file: Arc<dyn RandomAccessFile>) -> Table {
        Table {
            number: self.number,
            path: self.path.clone(),
            file,
            cipher: self.cipher.clone(),
            index: self.index.clone(),
            filter: self.filter.clone(),
            cache: self.cache.clone(),
            data_start: self.data_start,
            data_end: self.data_end,
            entries: self.entries,
            props_handle: self.props_handle,
        }
    }

    /// The on-disk algorithm id of the table's blocks.
    pub(crate) fn alg(&self) -> u8 {
        self.cipher.alg()
    }

    /// The keyspace whose key the table's blocks are sealed under too (0: none).
    pub(crate) fn keyspace(&self) -> u32 {
        self.cipher.keyspace()
    }

    /// Writes this table's blocks sealed again block by block under the current key (no
    /// re-sorting, no re-encoding, no recompression: each stored payload is decrypted and
    /// encrypted again) as table `number` at `path`. Cached blocks stay cached under their new
    /// place, so readers do not go cold. `progress` is called with the bytes of each block.
    #[allow(clippy::too_many_arguments)] // where, under which keys, and how: each needed once
    pub(crate) fn reseal(
        &self,
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
        keyspace: u32,
        opts: BuildOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<TableInfo> {
        let mut b = TableBuilder::create(fs, path, number, keys, keyspace, opts)?;
        let mut idx = BlockIter::new(self.index.clone());
        idx.seek_to_first();
        while idx.valid() {
            let (off, len) = self.handle(self.data_end, idx.value())?;
            let sealed = read_at(self.file.as_ref(), &self.path, off, len)?;
            let new_off =
                b.add_resealed_block(idx.key(), &self.cipher, &self.path, off, &sealed)?;
            if let Some(block) = self.cache.get(self.number, off) {
                self.cache.insert(number, new_off, block);
            }
            progress(len as u64);
            idx.next();
        }
        if let Some(e) = idx.error() {
            return Err(self.corruption(self.data_end, e));
        }
        let (poff, plen) = self.props_handle;
        let sealed = read_at(self.file.as_ref(), &self.path, poff, plen as usize)?;
        let props = self
            .cipher
            .open(BlockKind::Properties, poff, &sealed)
            .map_err(|e| self.corruption(poff, e.reason()))?;
        b.finish_tail(self.filter.as_deref().map(Filter::raw), &props)
    }

    /// Opens every data block the index names (tag or crc, then the block's own structure),
    /// bypassing the cache; returns how many. For offline verification.
    pub(crate) fn check_blocks(&self) -> Result<u64> {
        let mut idx = BlockIter::new(self.index.clone());
        idx.seek_to_first();
        let mut n = 0;
        while idx.valid() {
            let (off, len) = self.handle(self.data_end, idx.value())?;
            let sealed = read_at(self.file.as_ref(), &self.path, off, len)?;
            let plain = self
                .cipher
                .open(BlockKind::Data, off, &sealed)
                .map_err(|e| self.corruption(off, e.reason()))?;
            Block::new(plain).map_err(|e| self.corruption(off, e))?;
            n += 1;
            idx.next();
        }
        match idx.error() {
            Some(e) => Err(self.corruption(self.data_end, e)),
            None => Ok(n),
        }
    }

    /// The data key id sealing this table.
    pub(crate) fn key_id(&self) -> u32 {
        self.cipher.key_id()
    }

    fn corruption(&self, offset: u64, reason: &str) -> Error {
        Error::corruption(&self.path, offset, reason)
    }

    /// Decodes a data-block handle from an index entry.
    fn handle(&self, index_offset_hint: u64, value: &[u8]) -> Result<(u64, usize)> {
        let mut r = Reader::new(value);
        let (off, len) = match (r.varint(), r.varint()) {
            (Some(o), Some(l)) if r.is_empty() => (o, l),
            _ => return Err(self.corruption(index_offset_hint, "index entry malformed")),
        };
        if off < self.data_start || off.checked_add(len).is_none_or(|e| e > self.data_end) {
            return Err(self.corruption(index_offset_hint, "index entry points outside the data"));
        }
        Ok((off, len as usize))
    }

    /// Reads a data block through the cache. A block that fails its tag when read from a
    /// local copy of fetched bytes (a cold table's cache) is fetched once more.
    fn data_block(&self, off: u64, len: usize) -> Result<Arc<Block>> {
        if let Some(b) = self.cache.get(self.number, off) {
            return Ok(b);
        }
        let sealed = read_at(self.file.as_ref(), &self.path, off, len)?;
        let plain = match self.cipher.open(BlockKind::Data, off, &sealed) {
            Ok(plain) => plain,
            Err(_) if self.file.drop_cached(off, len) => {
                let sealed = read_at(self.file.as_ref(), &self.path, off, len)?;
                self.cipher
                    .open(BlockKind::Data, off, &sealed)
                    .map_err(|e| self.corruption(off, e.reason()))?
            }
            Err(e) => return Err(self.corruption(off, e.reason())),
        };
        let block = Arc::new(Block::new(plain).map_err(|e| self.corruption(off, e))?);
        self.cache.insert(self.number, off, block.clone());
        Ok(block)
    }

    /// The newest entry for `user_key` with sequence at most `seq`.
    pub(crate) fn get(
        &self,
        user_key: &[u8],
        seq: u64,
    ) -> Result<Option<(u64, ValueKind, Vec<u8>)>> {
        if let Some(f) = &self.filter {
            if !f.may_contain(user_key) {
                return Ok(None);
            }
        }
        let target = key::seek_key(user_key, seq);
        let mut idx = BlockIter::new(self.index.clone());
        idx.seek(&target);
        if let Some(e) = idx.error() {
            return Err(self.corruption(self.data_end, e));
        }
        if !idx.valid() {
            return Ok(None);
        }
        let (off, len) = self.handle(self.data_end, idx.value())?;
        let block = self.data_block(off, len)?;
        let mut it = BlockIter::new(block);
        it.seek(&target);
        if let Some(e) = it.error() {
            return Err(self.corruption(off, e));
        }
        if !it.valid() {
            // The index says the key is at most this block's last key, so the seek must land.
            return Err(self.corruption(off, "data block disagrees with the index"));
        }
        let (uk, trailer) =
            key::split(it.key()).ok_or_else(|| self.corruption(off, "internal key too short"))?;
        if uk != user_key {
            return Ok(None);
        }
        let kind = ValueKind::from_u8(trailer as u8)
            .ok_or_else(|| self.corruption(off, "unknown value kind"))?;
        Ok(Some((trailer >> 8, kind, it.value().to_vec())))
    }

    /// A cursor over the whole table for compaction: a cold table's bytes are read past its
    /// local cache of fetched parts (one pass would only evict what readers use).
    pub(crate) fn compaction_iter(self: &Arc<Self>) -> TableIter {
        match self.file.uncached() {
            Some(file) => Arc::new(self.with_file(file)).iter(),
            None => self.iter(),
        }
    }

    /// A cursor over the whole table.
    pub(crate) fn iter(self: &Arc<Self>) -> TableIter {
        TableIter {
            table: self.clone(),
            index: BlockIter::new(self.index.clone()),
            data: None,
            data_off: 0,
            uk_len: 0,
            seq: 0,
            kind: ValueKind::Delete,
        }
    }
}

/// A two-level cursor: the index, then the data block it points to.
pub(crate) struct TableIter {
    table: Arc<Table>,
    index: BlockIter,
    data: Option<BlockIter>,
    data_off: u64,
    uk_len: usize,
    seq: u64,
    kind: ValueKind,
}

impl TableIter {
    fn load_block(&mut self) -> Result<()> {
        self.data = None;
        if let Some(e) = self.index.error() {
            return Err(self.table.corruption(self.table.data_end, e));
        }
        if !self.index.valid() {
            return Ok(());
        }
        let (off, len) = self.table.handle(self.table.data_end, self.index.value())?;
        self.data = Some(BlockIter::new(self.table.data_block(off, len)?));
        self.data_off = off;
        Ok(())
    }

    /// Skips empty blocks forward and decodes the current entry.
    fn settle(&mut self) -> Result<()> {
        loop {
            if self.decode_current()? {
                return Ok(());
            }
            self.index.next();
            self.load_block()?;
            if let Some(d) = &mut self.data {
                d.seek_to_first();
            }
        }
    }

    /// Skips empty blocks backward and decodes the current entry.
    fn settle_back(&mut self) -> Result<()> {
        loop {
            if self.decode_current()? {
                return Ok(());
            }
            self.index.prev();
            self.load_block()?;
            if let Some(d) = &mut self.data {
                d.seek_to_last();
            }
        }
    }

    /// Decodes the trailer of the data block's current entry: `Ok(true)` if positioned at
    /// one, `Ok(false)` if the block is exhausted, `Ok(true)` with no block once the index is.
    fn decode_current(&mut self) -> Result<bool> {
        let Some(d) = &self.data else { return Ok(true) };
        if let Some(e) = d.error() {
            return Err(self.table.corruption(self.data_off, e));
        }
        if !d.valid() {
            return Ok(false);
        }
        let (uk, trailer) = key::split(d.key())
            .ok_or_else(|| self.table.corruption(self.data_off, "internal key too short"))?;
        self.uk_len = uk.len();
        self.seq = trailer >> 8;
        self.kind = ValueKind::from_u8(trailer as u8)
            .ok_or_else(|| self.table.corruption(self.data_off, "unknown value kind"))?;
        Ok(true)
    }
}

impl InternalIterator for TableIter {
    fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(BlockIter::valid)
    }
    fn seek_to_first(&mut self) -> Result<()> {
        self.index.seek_to_first();
        self.load_block()?;
        if let Some(d) = &mut self.data {
            d.seek_to_first();
        }
        self.settle()
    }
    fn seek(&mut self, user_key: &[u8], seq: u64) -> Result<()> {
        let target = key::seek_key(user_key, seq);
        self.index.seek(&target);
        self.load_block()?;
        if let Some(d) = &mut self.data {
            d.seek(&target);
        }
        self.settle()
    }
    fn next(&mut self) -> Result<()> {
        if let Some(d) = &mut self.data {
            d.next();
        }
        self.settle()
    }
    fn seek_to_last(&mut self) -> Result<()> {
        self.index.seek_to_last();
        self.load_block()?;
        if let Some(d) = &mut self.data {
            d.seek_to_last();
        }
        self.settle_back()
    }
    fn seek_before(&mut self, user_key: &[u8]) -> Result<()> {
        // Before every version of `user_key`: the newest possible one sorts first.
        let target = key::seek_key(user_key, MAX_SEQ);
        // The first block whose last key is at or after the target holds the first entry at or
        // after it; the entry before that is in the same block or ends the one before.
        self.index.seek(&target);
        if self.index.error().is_none() && !self.index.valid() {
            return self.seek_to_last();
        }
        self.load_block()?;
        if let Some(d) = &mut self.data {
            d.seek_before(&target);
        }
        self.settle_back()
    }
    fn prev(&mut self) -> Result<()> {
        if let Some(d) = &mut self.data {
            d.prev();
        }
        self.settle_back()
    }
    fn user_key(&self) -> &[u8] {
        self.data.as_ref().map_or(&[][..], |d| &d.key()[..self.uk_len.min(d.key().len())])
    }
    fn seq(&self) -> u64 {
        self.seq
    }
    fn kind(&self) -> ValueKind {
        self.kind
    }
    fn value(&self) -> &[u8] {
        self.data.as_ref().map_or(&[][..], BlockIter::value)
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
pub(crate) mod tests;
