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
    /// Offer records to LZ4 (`Options::compression`).
    compress: bool,
    /// Bytes made durable by the last successful fsync.
    synced: u64,
}

impl WalWriter {
    /// Creates WAL `number` at `path` and durably writes its header. Records are offered to
    /// LZ4 only when `compress` (`Options::compression`) is on.
    pub(crate) fn create(
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        keys: Option<&KeyRing>,
        compress: bool,
    ) -> Result<WalWriter> {
        let (header, cipher) = FileHeader::create(FileKind::Wal, number, keys)?;
        // Allocated ahead and written through a map where the file system allows: an
        // unsynced record is a copy into the page cache, and a synced one's fsync has no file
        // size to record. Records are committed by their first byte (see `replay_bytes`).
        let mut file = fs.create_log(path, HEADER_LEN)?;
        file.append(&header)?;
        file.sync()?;
        // The directory entry too: a write acknowledged by `sync()` into this WAL must not
        // vanish with an entry a power loss forgot.
        fs.sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        let synced = file.len();
        Ok(WalWriter { file, cipher, next_nonce: 1, buf: Vec::new(), compress, synced })
    }

    /// Seals `payload` as one record and hands it to the OS.
    pub(crate) fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        self.buf.clear();
        let offset = self.file.len();
        // Small records (a single put) rarely compress; trying costs more than it saves.
        let compress = self.compress && payload.len() >= COMPRESS_MIN;
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

    /// fsyncs the WAL; with nothing appended since the last successful fsync (`DB::sync` after
    /// synced writes), there is nothing to make durable and no fsync is issued.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.synced == self.file.len() {
            return Ok(());
        }
        self.file.sync()?;
        self.synced = self.file.len();
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
///
/// Where the log ends (`docs/format.md`, "Reading"): a crash can cut the file anywhere after
/// its synced header, so every way a cut can look ends the log without error, and everything
/// else is [`Error::Corruption`] naming the file and the record's offset:
/// - a file shorter than its header: no records (the header is synced before any record);
/// - fewer than 32 bytes (a record header) left: end of log, whatever those bytes are;
/// - a record header that fails its checks while every byte from it to the end of the file is
///   zero (a zero-filled tail): end of log;
/// - a record header whose stated length runs past the end of the file: end of log;
/// - a record header that fails its checks with any non-zero byte at or after it: corruption;
/// - a complete record that fails authentication or does not decode (in `f`), and a record
///   after the end record: corruption, wherever it is in the file, the last record included.
pub(crate) fn replay(
    fs: &dyn Fs,
    path: &Path,
    number: u64,
    keys: Option<&KeyRing>,
    f: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<Replayed> {
    replay_bytes(&fs.read_all(path)?, path, number, keys, f)
}

/// [`replay`] over the bytes `data` read from the WAL at `path` (a read-only open reads every
/// WAL before it opens the value-log segments their records point into).
pub(crate) fn replay_bytes(
    data: &[u8],
    path: &Path,
    number: u64,
    keys: Option<&KeyRing>,
    mut f: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<Replayed> {
    let mut out = Replayed::default();
    let hlen = FileHeader::len_for(data, number, keys);
    if data.len() < hlen || uncommitted(data, hlen) {
        // A WAL whose header never reached the disk holds no acknowledged write: the header is
        // written and synced before any record. (A log allocated ahead holds zeros where the
        // header was not yet committed.)
        tracing::warn!(file = %path.display(), "WAL header never written: ignored as torn");
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
            // A zero-filled tail, or a record whose append was cut before its commit.
            Err(_) if uncommitted_record(rest) => break,
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

/// Whether `rest[..extent]` is a block whose append never committed and nothing follows:
/// byte 0 still zero (a log written through a map writes it last, see `src/io/log.rs`) and
/// every byte past `extent` zero. A crash leaves that; damage anywhere else does not pass.
fn uncommitted(rest: &[u8], extent: usize) -> bool {
    rest.first() == Some(&0) && rest.get(extent..).is_none_or(|tail| tail.iter().all(|&b| b == 0))
}

/// [`uncommitted`] for a record at the start of `rest`: its extent is what its header states
/// once byte 0 is restored (the header is whole and the body partly written), or the header
/// alone when even that fails (the header partly written, the body not yet).
fn uncommitted_record(rest: &[u8]) -> bool {
    if rest.first() != Some(&0) || rest.len() < HEADER_LEN {
        return false;
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&rest[..HEADER_LEN]);
    header[0] = crate::seal::HEADER_VERSION;
    let extent = parse_header(&header).map_or(HEADER_LEN, |h| h.sealed_len());
    uncommitted(rest, extent)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::io::StdFs;
    use crate::options::Cipher;

    const NUMBER: u64 = 5;

    /// The three ways a WAL is sealed.
    fn modes() -> Vec<(&'static str, Option<KeyRing>)> {
        vec![
            ("plain", None),
            ("AES-256-GCM", Some(KeyRing::fixed(Cipher::Aes256Gcm, [7; 32]))),
            ("ChaCha20-Poly1305", Some(KeyRing::fixed(Cipher::ChaCha20Poly1305, [7; 32]))),
        ]
    }

    /// The payload of batch record `i`: a put and a delete; record 1 is large enough to be
    /// compressed.
    fn payload(i: u64) -> Vec<u8> {
        let value: Vec<u8> = if i == 1 {
            (0..2_000u32).map(|j| (j / 50) as u8).collect()
        } else {
            format!("value {i}").into_bytes()
        };
        let mut p = Vec::new();
        encode_record_header(&mut p, 1 + 10 * i, 2);
        encode_op(&mut p, ValueKind::Put, format!("key{i}").as_bytes(), &value);
        encode_op(&mut p, ValueKind::Delete, b"gone", b"");
        p
    }

    /// A WAL as written, and where its records are.
    struct Wal {
        dir: tempfile::TempDir,
        path: PathBuf,
        keys: Option<KeyRing>,
        mode: &'static str,
        bytes: Vec<u8>,
        header_len: usize,
        /// (offset, sealed length, payload) of each record, the end record included.
        records: Vec<(usize, usize, Vec<u8>)>,
    }

    /// Writes a WAL of `n` batch records, then the end record naming `end` if given.
    fn write_wal(mode: &'static str, keys: Option<KeyRing>, n: u64, end: Option<u64>) -> Wal {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("000005.wal");
        let mut w = WalWriter::create(&StdFs, &path, NUMBER, keys.as_ref(), true).expect("create");
        let mut records = Vec::new();
        let mut add = |w: &mut WalWriter, p: Vec<u8>, last: bool| {
            let at = w.len() as usize;
            if last {
                w.finish(u64::from_le_bytes(p[..8].try_into().expect("8 bytes"))).expect("finish");
            } else {
                w.add_record(&p).expect("add");
            }
            records.push((at, w.len() as usize - at, p));
        };
        for i in 0..n {
            add(&mut w, payload(i), false);
        }
        if let Some(next) = end {
            add(&mut w, next.to_le_bytes().to_vec(), true);
        }
        w.sync().expect("sync");
        let written = w.len() as usize;
        drop(w);
        let mut bytes = std::fs::read(&path).expect("read");
        // A log allocated ahead holds zeros past what was appended.
        assert!(bytes[written..].iter().all(|&b| b == 0), "{mode}: non-zero past the records");
        bytes.truncate(written);
        let header_len = FileHeader::len(keys.is_some());
        assert_eq!(records.first().map_or(bytes.len(), |r| r.0), header_len, "{mode}");
        assert_eq!(records.last().map_or(header_len, |r| r.0 + r.1), bytes.len(), "{mode}");
        Wal { dir, path, keys, mode, bytes, header_len, records }
    }

    impl Wal {
        /// Replays `bytes` as this WAL's file; returns the payloads `f` was given.
        fn replay(&self, bytes: &[u8]) -> (Result<Replayed>, Vec<Vec<u8>>) {
            std::fs::write(&self.path, bytes).expect("write");
            let mut seen = Vec::new();
            let r = replay(&StdFs, &self.path, NUMBER, self.keys.as_ref(), |p| {
                seen.push(p.to_vec());
                Ok(true)
            });
            (r, seen)
        }

        /// Replays `bytes` and checks that the log ends cleanly after the first `n` records.
        fn expect_records(&self, bytes: &[u8], n: usize, what: &str) {
            let (r, seen) = self.replay(bytes);
            let ctx =
                format!("{}: {what} ({} of {} bytes)", self.mode, bytes.len(), self.bytes.len());
            let r = r.unwrap_or_else(|e| panic!("{ctx}: replay failed: {e}"));
            let batches: Vec<&Vec<u8>> = self.records[..n]
                .iter()
                .map(|r| &r.2)
                .filter(|p| p.len() != END_RECORD_LEN)
                .collect();
            assert_eq!(seen.iter().collect::<Vec<_>>(), batches, "{ctx}: records replayed");
            assert_eq!(r.records, batches.len() as u64, "{ctx}: records counted");
            let end = self.records[..n].iter().find(|r| r.2.len() == END_RECORD_LEN);
            let next = end.map(|r| u64::from_le_bytes(r.2[..8].try_into().expect("8 bytes")));
            assert_eq!(r.next, next, "{ctx}: end record");
        }

        /// Replays `bytes` and checks that it is corruption of this WAL at `offset`.
        fn expect_corruption(&self, bytes: &[u8], offset: usize, what: &str) {
            let ctx = format!("{}: {what}", self.mode);
            match self.replay(bytes).0 {
                Err(Error::Corruption { file, offset: at, reason }) => {
                    assert_eq!(file, self.path, "{ctx}: file named ({reason})");
                    assert_eq!(at, offset as u64, "{ctx}: offset named ({reason})");
                }
                Err(e) => panic!("{ctx}: expected corruption at {offset}, got {e}"),
                Ok(r) => panic!("{ctx}: expected corruption at {offset}, replayed {r:?}"),
            }
        }
    }

    #[test]
    fn empty_file_and_file_cut_inside_its_header_hold_no_records() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, None);
            assert_eq!(wal.dir.path(), wal.path.parent().expect("parent"));
            wal.expect_records(&[], 0, "empty file");
            for cut in 1..wal.header_len {
                wal.expect_records(&wal.bytes[..cut], 0, "cut inside the file header");
            }
        }
    }

    #[test]
    fn header_only_file_holds_no_records() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 0, None);
            assert_eq!(wal.bytes.len(), wal.header_len, "{mode}");
            wal.expect_records(&wal.bytes, 0, "header only");
            // Also the header of a WAL that had records, cut at its end.
            let wal = write_wal(mode, wal.keys, 3, None);
            wal.expect_records(&wal.bytes[..wal.header_len], 0, "cut after the header");
        }
    }

    #[test]
    fn cut_at_a_record_boundary_ends_the_log_there() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, Some(9));
            for (i, &(at, _, _)) in wal.records.iter().enumerate() {
                wal.expect_records(&wal.bytes[..at], i, &format!("cut before record {i}"));
            }
            wal.expect_records(&wal.bytes, wal.records.len(), "whole file");
        }
    }

    #[test]
    fn cut_inside_a_record_header_ends_the_log_before_it() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, Some(9));
            for (i, &(at, _, _)) in wal.records.iter().enumerate() {
                for k in 1..HEADER_LEN {
                    let what = format!("cut {k} bytes into the header of record {i}");
                    wal.expect_records(&wal.bytes[..at + k], i, &what);
                }
            }
        }
    }

    #[test]
    fn cut_inside_a_record_body_ends_the_log_before_it() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, Some(9));
            for (i, &(at, len, _)) in wal.records.iter().enumerate() {
                for k in HEADER_LEN..len {
                    let what = format!("cut {k} bytes into record {i}");
                    wal.expect_records(&wal.bytes[..at + k], i, &what);
                }
            }
        }
    }

    /// What a kill during the append of record `i` can leave, written through a map that
    /// commits a record by its first byte (`src/io/log.rs`): byte 0 still zero and, of the
    /// rest, either part of the header (the body not yet written) or the whole header and any
    /// part of the body. Every such state ends the log before record `i`; byte 0 zeroed in a
    /// record that has another after it is corruption.
    #[test]
    fn a_record_cut_before_its_commit_ends_the_log() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys.clone(), 3, Some(9));
            for (i, &(at, len, _)) in wal.records.iter().enumerate() {
                let record = &wal.bytes[at..at + len];
                let mut states: Vec<(String, Vec<u8>)> = Vec::new();
                for k in [1, 2, 8, HEADER_LEN - 1, HEADER_LEN] {
                    let mut r = vec![0u8; len];
                    r[1..k].copy_from_slice(&record[1..k]);
                    states.push((format!("header bytes 1..{k}"), r));
                }
                for k in [HEADER_LEN + 1, HEADER_LEN + 7, len / 2, len - 1, len] {
                    let k = k.clamp(HEADER_LEN, len);
                    let mut r = record.to_vec();
                    r[0] = 0;
                    r[k..].fill(0);
                    states.push((format!("header and body up to {k}"), r.clone()));
                    // The body's copy need not run in order: its end before its start.
                    let mut r2 = record.to_vec();
                    r2[0] = 0;
                    r2[HEADER_LEN..k.max(HEADER_LEN)].fill(0);
                    states.push((format!("header and body from {k}"), r2));
                }
                for (what, r) in states {
                    let mut t = wal.bytes[..at].to_vec();
                    t.extend_from_slice(&r);
                    t.resize(t.len() + 4096, 0);
                    wal.expect_records(&t, i, &format!("record {i} cut: {what}"));
                }
                if i + 1 < wal.records.len() {
                    let mut t = wal.bytes.clone();
                    t[at] = 0;
                    wal.expect_corruption(
                        &t,
                        at,
                        &format!("byte 0 of record {i} of {}", wal.records.len()),
                    );
                }
                // A non-zero byte after an uncommitted record is damage, not a crash.
                let mut t = wal.bytes[..at].to_vec();
                t.extend_from_slice(record);
                t[at] = 0;
                t.resize(t.len() + 100, 0);
                let last = t.len() - 1;
                t[last] = 1;
                wal.expect_corruption(&t, at, &format!("junk after uncommitted record {i}"));
            }
            // A file whose header was never committed holds no record; with junk after it, it
            // is not a torn file.
            let mut t = vec![0u8; 4096];
            t[1..wal.header_len].copy_from_slice(&wal.bytes[1..wal.header_len]);
            let (r, seen) = wal.replay(&t);
            assert!(r.is_ok() && seen.is_empty(), "{mode}: uncommitted file header: {r:?}");
            t[4000] = 1;
            assert!(wal.replay(&t).0.is_err(), "{mode}: junk after an uncommitted file header");
        }
    }

    /// The log the engine writes (allocated ahead, written through a map where the file system
    /// allows): a short write leaves the record uncommitted, and the log replays up to it.
    #[test]
    fn a_short_write_to_a_mapped_log_leaves_the_record_uncommitted() {
        for (mode, keys) in modes() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("000005.wal");
            let fs = crate::io::FaultFs::new();
            let mut w = WalWriter::create(&fs, &path, NUMBER, keys.as_ref(), true).expect("create");
            for i in 0..3 {
                w.add_record(&payload(i)).expect("add");
            }
            fs.fail_after(crate::io::FaultOp::Write, 0, crate::io::Fault::ShortWrite, false);
            assert!(w.add_record(&payload(3)).is_err(), "{mode}: short write reported");
            w.sync().expect("sync");
            drop(w);
            let bytes = std::fs::read(&path).expect("read");
            let mut seen = 0;
            let r = replay_bytes(&bytes, &path, NUMBER, keys.as_ref(), |_| {
                seen += 1;
                Ok(true)
            })
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
            assert_eq!((seen, r.records), (3, 3), "{mode}: records before the cut one");
        }
    }

    #[test]
    fn zero_filled_tail_ends_the_log() {
        for (mode, keys) in modes() {
            for end in [None, Some(9)] {
                let wal = write_wal(mode, keys.clone(), 3, end);
                for (i, &(at, _, _)) in wal.records.iter().enumerate() {
                    for zeros in [1, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 1, 100, 4096] {
                        let mut t = wal.bytes[..at].to_vec();
                        t.resize(at + zeros, 0);
                        let what = format!("{zeros} zero bytes after record {i} (end {end:?})");
                        wal.expect_records(&t, i, &what);
                    }
                }
                let mut t = wal.bytes.clone();
                t.resize(t.len() + 4096, 0);
                wal.expect_records(
                    &t,
                    wal.records.len(),
                    &format!("zeros after all (end {end:?})"),
                );
            }
        }
    }

    #[test]
    fn non_zero_tail_is_corruption_unless_shorter_than_a_record_header() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, None);
            let end = wal.bytes.len();
            for (len, byte) in [(1, 0xaa), (HEADER_LEN - 1, 0xaa), (HEADER_LEN - 1, 0)] {
                let mut t = wal.bytes.clone();
                t.resize(end + len, byte);
                wal.expect_records(&t, 3, &format!("{len} bytes of {byte:#x} at the end"));
            }
            // A header with byte 0 zero and nothing past it: a header a kill cut while it was
            // being committed (`a_record_cut_before_its_commit_ends_the_log`).
            let mut t = wal.bytes.clone();
            t.resize(end + HEADER_LEN, 0);
            t[end + HEADER_LEN - 1] = 1;
            wal.expect_records(&t, 3, "uncommitted header at the end");
            for len in [HEADER_LEN + 1, 1000] {
                let mut t = wal.bytes.clone();
                t.resize(end + len, 0);
                t[end + len - 1] = 1; // zeros but for the last byte
                wal.expect_corruption(&t, end, &format!("{len}-byte tail, last byte non-zero"));
            }
        }
    }

    #[test]
    fn flipped_byte_in_a_middle_record_is_corruption() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, None);
            let (at, len, _) = wal.records[1];
            for pos in at..at + len {
                let mut t = wal.bytes.clone();
                t[pos] ^= 0x01;
                wal.expect_corruption(&t, at, &format!("flip at {pos} in record 1 of 3"));
            }
        }
    }

    #[test]
    fn flipped_byte_in_the_last_record_is_corruption_not_a_torn_tail() {
        for (mode, keys) in modes() {
            for end in [None, Some(9)] {
                let wal = write_wal(mode, keys.clone(), 3, end);
                let i = wal.records.len() - 1;
                let (at, len, _) = wal.records[i];
                for pos in at..at + len {
                    let mut t = wal.bytes.clone();
                    t[pos] ^= 0x80;
                    let what = format!("flip at {pos} in the last record (end {end:?})");
                    wal.expect_corruption(&t, at, &what);
                }
            }
        }
    }

    #[test]
    fn record_after_the_end_record_is_corruption() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 2, Some(9));
            let mut w = WalWriter::create(&StdFs, &wal.path, NUMBER, wal.keys.as_ref(), true)
                .expect("create");
            let mut records = Vec::new();
            for i in 0..2 {
                w.add_record(&payload(i)).expect("add");
            }
            w.finish(9).expect("finish");
            records.push(w.len() as usize);
            w.add_record(&payload(2)).expect("add after the end record");
            w.sync().expect("sync");
            drop(w);
            let bytes = std::fs::read(&wal.path).expect("read");
            wal.expect_corruption(&bytes, records[0], "a record after the end record");
            // Cut inside that record: the log ends at the end record, as written.
            wal.expect_records(&bytes[..records[0] + HEADER_LEN], 3, "torn record after the end");
        }
    }

    #[test]
    fn undecodable_record_is_corruption_at_its_offset() {
        for (mode, keys) in modes() {
            let wal = write_wal(mode, keys, 3, None);
            std::fs::write(&wal.path, &wal.bytes).expect("write");
            let mut n = 0;
            let r = replay(&StdFs, &wal.path, NUMBER, wal.keys.as_ref(), |p| {
                n += 1;
                decode_ops(p, |_| {}).map_err(|e| Error::corruption("elsewhere", 0, e))?;
                if n == 2 {
                    return Err(Error::corruption("elsewhere", 0, "rejected by the caller"));
                }
                Ok(true)
            });
            match r {
                Err(Error::Corruption { file, offset, reason }) => {
                    assert_eq!(
                        (file, offset),
                        (wal.path.clone(), wal.records[1].0 as u64),
                        "{mode}"
                    );
                    assert_eq!(reason, "rejected by the caller", "{mode}");
                }
                other => panic!("{mode}: expected corruption of record 1, got {other:?}"),
            }
        }
    }
}
