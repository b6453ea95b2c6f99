//! Logical export and import: the database's key/value pairs as one stream, sealed under a
//! key of the user's choice (or, explicitly, plain), for moving data between versions or
//! machines.
//!
//! ```text
//! stream  = header ‖ chunk* ‖ last chunk
//! header  = magic "SEALEXP\0" ‖ version u16 (1) ‖ algorithm u8 (0 plain/crc32, 1 AES-256-GCM)
//!           ‖ kdf u8 ‖ params len u32 ‖ params ‖ salt [32] ‖ check [16] ‖ crc32 u32
//! chunk   = a sealed block (kind Export) at its byte offset in the stream, nonce = its index
//!           (1, 2, ...), the header bound as extra associated data, holding:
//!           flags u8 (bit 0: last) ‖ record count u32 ‖ record*
//!           (the last chunk also ends with the total record count u64)
//! record  = varint key len ‖ key ‖ varint value len ‖ value
//! ```
//!
//! The stream key is HKDF-SHA256(K, salt, "sealdb/v1/export"), where K is the user's master
//! key resolved as a key registry resolves it (raw key, Argon2id passphrase with the costs and
//! salt in `params`, or a key provider's wrapped key in `params`); `check` is the first 16
//! bytes of HKDF(K, salt, "sealdb/v1/export-check"), so a wrong key is
//! [`Error::WrongMasterKey`], not corruption. A fresh random salt makes every export's key new,
//! so chunk counters never repeat under one key. Every chunk is authenticated at its offset
//! and index: a reordered, dropped, duplicated or edited chunk fails, a stream cut before its
//! last chunk is [`Error::Corruption`] ("export truncated"), and bytes after it are refused.
//! A plain export carries crc32s instead (accidents only), and its key and value bytes are
//! in the clear.

use std::io::{Read, Write};

use crate::coding::{put_len_prefixed, put_u32, put_u64, Reader};
use crate::crypto::{argon2_params, hkdf32, random_bytes, Kek, MasterKey, KDF_ARGON2ID};
use crate::error::{Error, Result};
use crate::options::Cipher;
use crate::seal::{parse_header, BlockKind, FileCipher, HEADER_LEN, MAX_BLOCK_LEN};
use crate::{WriteBatch, DB};

const MAGIC: &[u8; 8] = b"SEALEXP\0";
const VERSION: u16 = 1;
const ALG_PLAIN: u8 = 0;
const ALG_AES: u8 = 1;
const FLAG_LAST: u8 = 1;
/// Records are gathered into chunks of about this many bytes.
const CHUNK_TARGET: usize = 1 << 20;
/// Largest key-registry style parameters accepted.
const MAX_PARAMS: usize = 64 << 10;
/// Records applied per write batch on import (bytes).
const IMPORT_BATCH: usize = 4 << 20;

/// How an export is sealed, and how an import opens it.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    key: Option<MasterKey>,
}

impl ExportOptions {
    /// Sealed (AES-256-GCM) under a key derived from `key`: any [`MasterKey`] source (raw
    /// bytes, a passphrase, a key provider), chosen by the user, not necessarily the
    /// database's.
    pub fn sealed(key: MasterKey) -> ExportOptions {
        ExportOptions { key: Some(key) }
    }

    /// No encryption: keys and values in the clear, crc32s against accidents only.
    pub fn plaintext() -> ExportOptions {
        ExportOptions { key: None }
    }
}

/// What an export wrote or an import read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportInfo {
    /// Key/value records.
    pub records: u64,
    /// Bytes of the stream.
    pub bytes: u64,
}

/// The name errors give the stream.
const STREAM: &str = "export stream";

fn bad(offset: u64, reason: &str) -> Error {
    Error::corruption(STREAM, offset, reason)
}

/// Writes an export stream to `w`: the header, then chunks of records.
struct Writer<W: Write> {
    w: W,
    cipher: FileCipher,
    header: Vec<u8>,
    offset: u64,
    nonce: u64,
    chunk: Vec<u8>,
    in_chunk: u32,
    records: u64,
    sealed: Vec<u8>,
}

fn stream_keys(kek: &Kek, salt: &[u8; 32]) -> (crate::crypto::SecretKey, [u8; 16]) {
    let key = hkdf32(&kek.key.0, salt, &[b"sealdb/v1/export"]);
    let check = hkdf32(&kek.key.0, salt, &[b"sealdb/v1/export-check"]);
    let mut c = [0u8; 16];
    c.copy_from_slice(&check.0[..16]);
    (key, c)
}

impl<W: Write> Writer<W> {
    fn new(mut w: W, opts: &ExportOptions) -> Result<Writer<W>> {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&VERSION.to_le_bytes());
        let cipher = match &opts.key {
            None => {
                header.extend_from_slice(&[ALG_PLAIN, 0]);
                put_u32(&mut header, 0);
                header.extend_from_slice(&[0; 48]);
                FileCipher::plain(0)
            }
            Some(master) => {
                let kek = master.resolve_new()?;
                let mut salt = [0u8; 32];
                random_bytes(&mut salt)?;
                let (key, check) = stream_keys(&kek, &salt);
                header.extend_from_slice(&[ALG_AES, kek.kdf]);
                put_u32(&mut header, kek.params.len() as u32);
                header.extend_from_slice(&kek.params);
                header.extend_from_slice(&salt);
                header.extend_from_slice(&check);
                FileCipher::new(Cipher::Aes256Gcm, 0, &key, 0)
            }
        };
        let crc = crc32fast::hash(&header);
        put_u32(&mut header, crc);
        w.write_all(&header)?;
        Ok(Writer {
            w,
            cipher,
            offset: header.len() as u64,
            header,
            nonce: 0,
            chunk: vec![0; 5],
            in_chunk: 0,
            records: 0,
            sealed: Vec::new(),
        })
    }

    fn add(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        put_len_prefixed(&mut self.chunk, key);
        put_len_prefixed(&mut self.chunk, value);
        self.in_chunk += 1;
        self.records += 1;
        if self.chunk.len() >= CHUNK_TARGET {
            self.emit(false)?;
        }
        Ok(())
    }

    fn emit(&mut self, last: bool) -> Result<()> {
        self.chunk[0] = if last { FLAG_LAST } else { 0 };
        self.chunk[1..5].copy_from_slice(&self.in_chunk.to_le_bytes());
        if last {
            put_u64(&mut self.chunk, self.records);
        }
        self.nonce += 1;
        self.sealed.clear();
        self.cipher.seal_with_ad(
            BlockKind::Export,
            self.offset,
            self.nonce,
            true,
            &self.chunk,
            &self.header,
            &mut self.sealed,
        );
        self.w.write_all(&self.sealed)?;
        self.offset += self.sealed.len() as u64;
        self.chunk.truncate(5);
        self.in_chunk = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<ExportInfo> {
        self.emit(true)?;
        self.w.flush()?;
        Ok(ExportInfo { records: self.records, bytes: self.offset })
    }
}

/// Reads an export stream: checks the header, then opens chunk after chunk, handing each
/// record to `each`. Returns the count and the bytes read.
pub(crate) fn read_stream(
    mut r: impl Read,
    opts: &ExportOptions,
    mut each: impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<ExportInfo> {
    let mut fixed = [0u8; 16];
    read_exact_or(&mut r, &mut fixed, 0)?;
    if &fixed[..8] != MAGIC {
        return Err(bad(0, "not a sealdb export (bad magic number)"));
    }
    if fixed[8..10] != VERSION.to_le_bytes() {
        return Err(bad(8, "unknown export version"));
    }
    let (alg, kdf) = (fixed[10], fixed[11]);
    let plen = u32::from_le_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
    if plen > MAX_PARAMS {
        return Err(bad(12, "export key parameters too long"));
    }
    let mut header = fixed.to_vec();
    header.resize(16 + plen + 48 + 4, 0);
    read_exact_or(&mut r, &mut header[16..], 16)?;
    let crc_at = header.len() - 4;
    if header[crc_at..] != crc32fast::hash(&header[..crc_at]).to_le_bytes() {
        return Err(bad(crc_at as u64, "export header checksum mismatch"));
    }
    let params = &header[16..16 + plen];
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&header[16 + plen..48 + plen]);
    let check = &header[48 + plen..64 + plen];
    let cipher = match (alg, &opts.key) {
        (ALG_PLAIN, None) => {
            if kdf != 0 || plen != 0 || header[16..crc_at].iter().any(|&b| b != 0) {
                return Err(bad(11, "plain export header fields not zero"));
            }
            FileCipher::plain(0)
        }
        (ALG_PLAIN, Some(_)) => {
            return Err(Error::InvalidArgument(
                "the export is plain: import it with ExportOptions::plaintext()".into(),
            ))
        }
        (ALG_AES, None) => {
            return Err(Error::InvalidArgument(
                "the export is sealed: import it with ExportOptions::sealed(key)".into(),
            ))
        }
        (ALG_AES, Some(master)) => {
            if kdf == KDF_ARGON2ID {
                argon2_params(params).map_err(|(at, why)| bad((16 + at) as u64, why))?;
            }
            let kek = master.resolve_existing(kdf, params)?;
            let (key, expect) = stream_keys(&kek, &salt);
            if expect[..] != *check {
                return Err(Error::WrongMasterKey);
            }
            FileCipher::new(Cipher::Aes256Gcm, 0, &key, 0)
        }
        _ => return Err(bad(10, "unknown export algorithm")),
    };
    let mut offset = header.len() as u64;
    let mut nonce = 0u64;
    let mut records = 0u64;
    loop {
        let mut block = vec![0u8; HEADER_LEN];
        let got = read_full(&mut r, &mut block)?;
        if got < HEADER_LEN {
            return Err(bad(offset, "export truncated (no last chunk)"));
        }
        let h = parse_header(&block).map_err(|e| bad(offset, e.reason()))?;
        let total = h.sealed_len();
        if total > MAX_BLOCK_LEN {
            return Err(bad(offset, "export chunk too large"));
        }
        // Read what is there, up to the stated length: a forged length allocates no more
        // than the stream holds.
        let want = (total - HEADER_LEN) as u64;
        let n = r.by_ref().take(want).read_to_end(&mut block)?;
        if (n as u64) < want {
            return Err(bad(offset, "export truncated (chunk cut short)"));
        }
        nonce += 1;
        let chunk = cipher
            .open_with_ad(BlockKind::Export, offset, &block, &header)
            .map_err(|e| bad(offset, e.reason()))?;
        if h_nonce(&block) != nonce {
            return Err(bad(offset, "export chunk out of order"));
        }
        let last = decode_chunk(&chunk, offset, &mut records, &mut each)?;
        offset += total as u64;
        if last {
            let mut extra = [0u8; 1];
            if read_full(&mut r, &mut extra)? != 0 {
                return Err(bad(offset, "bytes after the last export chunk"));
            }
            return Ok(ExportInfo { records, bytes: offset });
        }
    }
}

/// The nonce counter of a sealed block (bytes 8..16 of its header).
fn h_nonce(block: &[u8]) -> u64 {
    crate::coding::get_u64_at(block, 8).unwrap_or(0)
}

/// Decodes one chunk's records; returns whether it is the last.
fn decode_chunk(
    chunk: &[u8],
    offset: u64,
    records: &mut u64,
    each: &mut impl FnMut(&[u8], &[u8]) -> Result<()>,
) -> Result<bool> {
    let malformed = || bad(offset, "malformed export chunk");
    let mut r = Reader::new(chunk);
    let flags = r.u8().ok_or_else(malformed)?;
    if flags & !FLAG_LAST != 0 {
        return Err(malformed());
    }
    let count = r.u32().ok_or_else(malformed)?;
    for _ in 0..count {
        let k = r.len_prefixed().ok_or_else(malformed)?;
        let v = r.len_prefixed().ok_or_else(malformed)?;
        if k.len() > crate::MAX_KEY_SIZE || v.len() > crate::MAX_VALUE_SIZE {
            return Err(bad(offset, "export record exceeds the size limits"));
        }
        each(k, v)?;
        *records += 1;
    }
    let last = flags & FLAG_LAST != 0;
    if last && r.u64() != Some(*records) {
        return Err(bad(offset, "export record count differs from the records read"));
    }
    if !r.is_empty() {
        return Err(malformed());
    }
    Ok(last)
}

/// Reads as many bytes as `buf` holds or until the end; returns how many.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<()> {
    if read_full(r, buf)? < buf.len() {
        return Err(bad(offset, "export header truncated"));
    }
    Ok(())
}

/// Encodes `records` as a whole export stream (for the fuzz seed maker).
pub(crate) fn encode_records(opts: &ExportOptions, records: &[(&[u8], &[u8])]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, opts)?;
    for (k, v) in records {
        w.add(k, v)?;
    }
    w.finish()?;
    Ok(out)
}

impl DB {
    /// Writes every key/value pair of a snapshot taken now to `w`, in key order, as an export
    /// stream sealed as `opts` says (see `docs/format.md`, "Export stream"). Returns what was
    /// written. `w` is written in chunks of about 1 MiB; wrap a file in a `BufWriter` only
    /// if you like.
    pub fn export(&self, w: impl Write, opts: &ExportOptions) -> Result<ExportInfo> {
        let snap = self.snapshot();
        let mut out = Writer::new(w, opts)?;
        for kv in &snap {
            let (k, v) = kv?;
            out.add(&k, &v)?;
        }
        out.finish()
    }

    /// Reads an export stream from `r` and writes its records into this database (in batches
    /// of about 4 MiB; existing keys are overwritten). The whole stream is authenticated as it
    /// is read: a damaged, truncated or reordered stream is [`Error::Corruption`] and a wrong
    /// key [`Error::WrongMasterKey`]; records before the damage may already be written (import
    /// into a new database to get all or nothing).
    pub fn import(&self, r: impl Read, opts: &ExportOptions) -> Result<ExportInfo> {
        let mut batch = WriteBatch::new();
        let mut pending = 0usize;
        let info = read_stream(r, opts, |k, v| {
            batch.put(k, v);
            pending += k.len() + v.len();
            if pending >= IMPORT_BATCH {
                self.write(std::mem::take(&mut batch))?;
                pending = 0;
            }
            Ok(())
        })?;
        self.write(batch)?;
        Ok(info)
    }
}
