//! The write-ahead log.
//!
//! ```text
//! file   = file header ‖ record*
//! record = sealed block (kind Wal, nonce = record counter from 1) whose payload is a batch:
//!          first sequence u64 ‖ count u32 ‖ count × op
//! op     = kind u8 (0 delete, 1 put, 2 value-log pointer) ‖ varint key len ‖ key
//!          ‖ (put and pointer only) varint value len ‖ value (a pointer is 20 bytes)
//! ```
//!
//! A group commit writes one record holding every batch of the group, in one `write` call, so a
//! killed process leaves whole records. A WAL is written by one writer, once: after a restart
//! a new WAL is started (never appended to), so record counters never repeat under a file key.
//!
//! Recovery reads records in order. A torn tail (a last record that runs past the end of the
//! file, or a zero-filled tail) ends the log; a complete record that fails authentication or
//! does not parse is corruption.

use std::path::Path;

use crate::coding::{put_len_prefixed, put_u32, put_u64, Reader};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{Fs, WritableFile};
use crate::key::{ValueKind, MAX_SEQ};
use crate::seal::{
    parse_header, BlockKind, FileCipher, FileHeader, FileKind, OpenError, HEADER_LEN,
};

/// Records shorter than this are not offered to LZ4.
const COMPRESS_MIN: usize = 512;

/// Appends sealed records to one WAL file.
pub(crate) struct WalWriter {
    file: Box<dyn WritableFile>,
    cipher: FileCipher,
    next_nonce: u64,
    buf: Vec<u8>,
}

impl WalWriter {
    /// Creates WAL `number` at `path` and durably writes its header.
    pub(crate) fn create(
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
    ) -> Result<WalWriter> {
        let (header, cipher) = FileHeader::create(FileKind::Wal, number, keys)?;
        let mut file = fs.create(path)?;
        file.append(&header)?;
        file.sync()?;
        Ok(WalWriter { file, cipher, next_nonce: 1, buf: Vec::new() })
    }

    /// Seals `payload` as one record and hands it to the OS.
    pub(crate) fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        self.buf.clear();
        let offset = self.file.len();
        // Small records (a single put) rarely compress; trying costs more than it saves.
        let compress = payload.len() >= COMPRESS_MIN;
        self.cipher.seal(BlockKind::Wal, offset, self.next_nonce, compress, payload, &mut self.buf);
        self.next_nonce += 1;
        self.file.append(&self.buf)?;
        Ok(())
    }

    /// fsyncs the WAL.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file.sync()?;
        Ok(())
    }

    /// Bytes written.
    pub(crate) fn len(&self) -> u64 {
        self.file.len()
    }

    /// The algorithm id sealing this WAL.
    pub(crate) fn alg(&self) -> u8 {
        self.cipher.alg()
    }

    /// The data key id sealing this WAL.
    pub(crate) fn key_id(&self) -> u32 {
        self.cipher.key_id()
    }
}

/// Appends one op to a record payload (after the header).
pub(crate) fn encode_op(dst: &mut Vec<u8>, kind: ValueKind, key: &[u8], value: &[u8]) {
    dst.push(kind as u8);
    put_len_prefixed(dst, key);
    if kind != ValueKind::Delete {
        put_len_prefixed(dst, value);
    }
}

/// Starts a record payload: first sequence and op count.
pub(crate) fn encode_record_header(dst: &mut Vec<u8>, first_seq: u64, count: u32) {
    put_u64(dst, first_seq);
    put_u32(dst, count);
}

/// One decoded op.
pub(crate) struct WalOp<'a> {
    pub(crate) seq: u64,
    pub(crate) kind: ValueKind,
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
}

/// Decodes a record payload, calling `f` for each op. Errors are described for corruption.
pub fn decode_record(
    payload: &[u8],
    mut f: impl FnMut(u64, bool, &[u8], &[u8]),
) -> std::result::Result<(), &'static str> {
    decode_ops(payload, |op| f(op.seq, op.kind == ValueKind::Put, op.key, op.value))
}

pub(crate) fn decode_ops<'a>(
    payload: &'a [u8],
    mut f: impl FnMut(WalOp<'a>),
) -> std::result::Result<(), &'static str> {
    let mut r = Reader::new(payload);
    let first = r.u64().ok_or("WAL record truncated")?;
    let count = r.u32().ok_or("WAL record truncated")?;
    let last = first.checked_add(u64::from(count)).ok_or("WAL sequence overflow")?;
    if first == 0 || last > MAX_SEQ {
        return Err("WAL sequence out of range");
    }
    for i in 0..u64::from(count) {
        let kind = r.u8().and_then(ValueKind::from_u8).ok_or("bad WAL op kind")?;
        let key = r.len_prefixed().ok_or("WAL op truncated")?;
        let value = if kind == ValueKind::Delete {
            &[]
        } else {
            r.len_prefixed().ok_or("WAL op truncated")?
        };
        f(WalOp { seq: first + i, kind, key, value });
    }
    if !r.is_empty() {
        return Err("trailing bytes in WAL record");
    }
    Ok(())
}

/// Reads every complete record of the WAL at `path`, calling `f` with each payload until it
/// returns `false`.
pub(crate) fn replay(
    fs: &dyn Fs,
    path: &Path,
    number: u64,
    keys: Option<&KeyRing>,
    mut f: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<()> {
    let data = fs.read_all(path)?;
    let hlen = FileHeader::len(keys.is_some());
    if data.len() < hlen {
        // A WAL whose header never reached the disk holds no acknowledged write: the header is
        // written and synced before any record.
        tracing::warn!(file = %path.display(), "WAL shorter than its header: ignored as torn");
        return Ok(());
    }
    let cipher = FileHeader::open(FileKind::Wal, path, number, &data[..hlen], keys)?;
    let mut pos = hlen;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < HEADER_LEN {
            break; // torn tail
        }
        let h = match parse_header(rest) {
            Ok(h) => h,
            Err(_) if rest.iter().all(|&b| b == 0) => break, // zero-filled torn tail
            Err(e) => return Err(Error::corruption(path, pos as u64, e.reason())),
        };
        let len = h.sealed_len();
        if len > rest.len() {
            break; // torn tail
        }
        let payload = cipher
            .open(BlockKind::Wal, pos as u64, &rest[..len])
            .map_err(|e: OpenError| Error::corruption(path, pos as u64, e.reason()))?;
        let go_on = f(&payload).map_err(|e| match e {
            Error::Corruption { reason, .. } => Error::corruption(path, pos as u64, reason),
            other => other,
        })?;
        if !go_on {
            break;
        }
        pos += len;
    }
    Ok(())
}
