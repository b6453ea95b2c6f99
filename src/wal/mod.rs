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
//! A WAL that is closed because a newer one takes over ends with an *end record*: a sealed
//! block whose payload is just the next WAL's number (u64, 8 bytes; a batch record is at least
//! 12). Recovery requires every WAL but the last to end with the end record naming the next
//! one, and the first to be the manifest's log number, so a dropped or truncated older WAL is
//! corruption, not a silent hole in the history (see `check_chain`).
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

/// Bytes of an end record's payload (a batch record is at least 12).
const END_RECORD_LEN: usize = 8;
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
        // The directory entry too: a write acknowledged by `sync()` into this WAL must not
        // vanish with an entry a power loss forgot.
        fs.sync_dir(path.parent().unwrap_or(Path::new(".")))?;
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

    /// Ends this WAL with the end record naming WAL `next`, and fsyncs it.
    pub(crate) fn finish(&mut self, next: u64) -> Result<()> {
        const _: () = assert!(END_RECORD_LEN < COMPRESS_MIN, "end records are stored as is");
        self.add_record(&next.to_le_bytes())?;
        self.sync()
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

/// What replaying one WAL found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Replayed {
    /// Batch records read.
    pub(crate) records: u64,
    /// The next WAL's number, if the WAL ends with an end record.
    pub(crate) next: Option<u64>,
}

/// Checks that replayed WALs (numbers in order, with what each held) form one unbroken log
/// starting at `log_number`: each but the last ends naming the next. A WAL without its end
/// record is accepted only when no later WAL holds a record (a crash during a switch or an open
/// leaves such empty WALs behind).
pub(crate) fn check_chain(dir: &Path, log_number: u64, wals: &[(u64, Replayed)]) -> Result<()> {
    let Some(&(first, _)) = wals.first() else {
        if log_number > 0 {
            return Err(Error::corruption(
                crate::io::names::wal(dir, log_number),
                0,
                "the WAL the manifest names as the oldest needed is missing",
            ));
        }
        return Ok(());
    };
    if log_number > 0 && first != log_number {
        return Err(Error::corruption(
            crate::io::names::wal(dir, log_number),
            0,
            "the WAL the manifest names as the oldest needed is missing",
        ));
    }
    // A WAL's end record is written only after the WAL it names exists durably (its header
    // and directory entry synced), so the newest WAL naming a next one means that one is gone.
    if let Some(&(n, r)) = wals.last() {
        if let Some(next) = r.next {
            return Err(Error::corruption(
                crate::io::names::wal(dir, next),
                0,
                format!("WAL {n} ends naming this WAL, which is missing"),
            ));
        }
    }
    for (i, pair) in wals.windows(2).enumerate() {
        let ((n, r), (next, _)) = (pair[0], pair[1]);
        if r.next == Some(next) {
            continue;
        }
        if wals[i + 1..].iter().all(|(_, later)| later.records == 0) {
            return Ok(());
        }
        return Err(Error::corruption(
            crate::io::names::wal(dir, n),
            0,
            "WAL does not end where the next one begins: truncated, or a WAL is missing",
        ));
    }
    Ok(())
}

/// Reads every complete record of the WAL at `path`, calling `f` with each batch payload until
/// it returns `false`.
pub(crate) fn replay(
    fs: &dyn Fs,
    path: &Path,
    number: u64,
    keys: Option<&KeyRing>,
    mut f: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<Replayed> {
    let mut out = Replayed::default();
    let data = fs.read_all(path)?;
    let hlen = FileHeader::len(keys.is_some());
    if data.len() < hlen {
        // A WAL whose header never reached the disk holds no acknowledged write: the header is
        // written and synced before any record.
        tracing::warn!(file = %path.display(), "WAL shorter than its header: ignored as torn");
        return Ok(out);
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
        if out.next.is_some() {
            return Err(Error::corruption(path, pos as u64, "WAL record after the end record"));
        }
        if payload.len() == END_RECORD_LEN {
            out.next = crate::coding::get_u64_at(&payload, 0);
            pos += len;
            continue;
        }
        out.records += 1;
        let go_on = f(&payload).map_err(|e| match e {
            Error::Corruption { reason, .. } => Error::corruption(path, pos as u64, reason),
            other => other,
        })?;
        if !go_on {
            break;
        }
        pos += len;
    }
    Ok(out)
}
