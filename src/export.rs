//! Logical export and import: the database's key/value pairs as one stream, sealed under a
//! key of the user's choice (or, explicitly, plain), for moving data between versions or
//! machines.
//!
//! ```text
//! stream  = header ‖ chunk* ‖ last chunk
//! header  = magic "SEALEXP\0" ‖ version u16 (2) ‖ algorithm u8 (0 plain/crc32, 1 AES-256-GCM)
//!           ‖ kdf u8 ‖ params len u32 ‖ params ‖ salt [32] ‖ check [16] ‖ crc32 u32
//! chunk   = a sealed block (kind Export) at its byte offset in the stream, nonce = its index
//!           (1, 2, ...), the header bound as extra associated data, holding:
//!           flags u8 (bit 0: last, bit 1: starts a keyspace)
//!           ‖ (bit 1 only) varint name len ‖ name ‖ record count u32 ‖ record*
//!           (the last chunk also ends with the total record count u64)
//! record  = varint key len ‖ key ‖ varint value len ‖ value
//! ```
//!
//! The records of a chunk belong to the keyspace the latest chunk with bit 1 named, or to
//! the default keyspace before any did: the default keyspace's records come first, then each
//! named keyspace's (one chunk at least, so an empty keyspace is carried too). Keyspace names
//! are inside the sealed chunks, never in the clear of a sealed stream. Version 1 streams
//! (the default keyspace only; bit 1 unknown) are still read.
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
use crate::manifest::MAX_KEYSPACE_NAME;
use crate::options::Cipher;
use crate::seal::{parse_header, BlockKind, FileCipher, HEADER_LEN, MAX_BLOCK_LEN};
use crate::{WriteBatch, DB};

const MAGIC: &[u8; 8] = b"SEALEXP\0";
/// The version written: 2, with keyspaces.
pub(crate) const VERSION: u16 = 2;
/// The first version: the default keyspace only (no keyspace flag).
pub(crate) const VERSION_1: u16 = 1;
const ALG_PLAIN: u8 = 0;
const ALG_AES: u8 = 1;
/// Chunk flag: the last chunk of the stream.
const FLAG_LAST: u8 = 1;
/// Chunk flag (version 2): the chunk starts a named keyspace, whose name follows the flags.
const FLAG_KEYSPACE: u8 = 2;
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
    /// Key/value records, of every keyspace.
    pub records: u64,
    /// Named keyspaces (the default keyspace is not counted).
    pub keyspaces: u64,
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
    version: u16,
    cipher: FileCipher,
    header: Vec<u8>,
    offset: u64,
    nonce: u64,
    /// The records of the chunk being gathered.
    chunk: Vec<u8>,
    /// The name of the keyspace the chunk being gathered starts, if it starts one.
    starts: Option<Vec<u8>>,
    in_chunk: u32,
    records: u64,
    keyspaces: u64,
    /// The chunk's payload, then its sealed block.
    payload: Vec<u8>,
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
    /// Writes the header of a stream of `version` (only tests and the fuzz seed maker write
    /// version 1).
    fn new(mut w: W, opts: &ExportOptions, version: u16) -> Result<Writer<W>> {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&version.to_le_bytes());
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
            version,
            cipher,
            offset: header.len() as u64,
            header,
            nonce: 0,
            chunk: Vec::new(),
            starts: None,
            in_chunk: 0,
            records: 0,
            keyspaces: 0,
            payload: Vec::new(),
            sealed: Vec::new(),
        })
    }

    /// Starts the records of the named keyspace `name`: the records added from now on belong
    /// to it. The chunk gathered so far, if it holds records or starts a keyspace, is written
    /// first.
    fn keyspace(&mut self, name: &str) -> Result<()> {
        if self.version < 2 {
            return Err(Error::InvalidArgument("export version 1 has no keyspaces".into()));
        }
        if name.is_empty() || name.len() > MAX_KEYSPACE_NAME {
            return Err(Error::InvalidArgument(format!(
                "a keyspace name is 1 to {MAX_KEYSPACE_NAME} bytes long"
            )));
        }
        if self.in_chunk > 0 || self.starts.is_some() {
            self.emit(false)?;
        }
        self.starts = Some(name.as_bytes().to_vec());
        self.keyspaces += 1;
        Ok(())
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
        let p = &mut self.payload;
        p.clear();
        let starts = self.starts.take();
        p.push(if last { FLAG_LAST } else { 0 } | if starts.is_some() { FLAG_KEYSPACE } else { 0 });
        if let Some(name) = &starts {
            put_len_prefixed(p, name);
        }
        put_u32(p, self.in_chunk);
        p.extend_from_slice(&self.chunk);
        if last {
            put_u64(p, self.records);
        }
        self.write_payload()?;
        self.chunk.clear();
        self.in_chunk = 0;
        Ok(())
    }

    /// Seals `payload` as the next chunk and writes it.
    fn write_payload(&mut self) -> Result<()> {
        self.nonce += 1;
        self.sealed.clear();
        self.cipher.seal_with_ad(
            BlockKind::Export,
            self.offset,
            self.nonce,
            true,
            &self.payload,
            &self.header,
            &mut self.sealed,
        );
        self.w.write_all(&self.sealed)?;
        self.offset += self.sealed.len() as u64;
        Ok(())
    }

    fn finish(mut self) -> Result<ExportInfo> {
        self.emit(true)?;
        self.w.flush()?;
        Ok(ExportInfo { records: self.records, keyspaces: self.keyspaces, bytes: self.offset })
    }
}

/// What a reader of an export stream hands on, in stream order.
pub(crate) enum Item<'a> {
    /// The records that follow belong to the named keyspace `name` (before the first of
    /// these, to the default keyspace).
    Keyspace(&'a str),
    /// A key and its value.
    Record(&'a [u8], &'a [u8]),
}

/// Reads an export stream (version 1 or 2): checks the header, then opens chunk after chunk,
/// handing each keyspace start and each record to `each`. Returns the counts and the bytes
/// read.
pub(crate) fn read_stream(
    mut r: impl Read,
    opts: &ExportOptions,
    mut each: impl FnMut(Item<'_>) -> Result<()>,
) -> Result<ExportInfo> {
    let mut fixed = [0u8; 16];
    read_exact_or(&mut r, &mut fixed, 0)?;
    if &fixed[..8] != MAGIC {
        return Err(bad(0, "not a sealdb export (bad magic number)"));
    }
    let version = u16::from_le_bytes([fixed[8], fixed[9]]);
    if version != VERSION && version != VERSION_1 {
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
    let mut count = Counts { version, records: 0, keyspaces: 0 };
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
        let last = decode_chunk(&chunk, offset, &mut count, &mut each)?;
        offset += total as u64;
        if last {
            let mut extra = [0u8; 1];
            if read_full(&mut r, &mut extra)? != 0 {
                return Err(bad(offset, "bytes after the last export chunk"));
            }
            return Ok(ExportInfo {
                records: count.records,
                keyspaces: count.keyspaces,
                bytes: offset,
            });
        }
    }
}

/// The nonce counter of a sealed block (bytes 8..16 of its header).
fn h_nonce(block: &[u8]) -> u64 {
    crate::coding::get_u64_at(block, 8).unwrap_or(0)
}

/// The stream's version and what its chunks held so far.
struct Counts {
    version: u16,
    records: u64,
    keyspaces: u64,
}

/// Decodes one chunk (its keyspace start, then its records); returns whether it is the last.
fn decode_chunk(
    chunk: &[u8],
    offset: u64,
    count: &mut Counts,
    each: &mut impl FnMut(Item<'_>) -> Result<()>,
) -> Result<bool> {
    let malformed = || bad(offset, "malformed export chunk");
    let mut r = Reader::new(chunk);
    let flags = r.u8().ok_or_else(malformed)?;
    let known = if count.version == VERSION_1 { FLAG_LAST } else { FLAG_LAST | FLAG_KEYSPACE };
    if flags & !known != 0 {
        return Err(bad(offset, "unknown export chunk flags"));
    }
    if flags & FLAG_KEYSPACE != 0 {
        let name = r.len_prefixed().ok_or_else(malformed)?;
        if name.is_empty() || name.len() > MAX_KEYSPACE_NAME {
            return Err(bad(offset, "export keyspace name length out of range"));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| bad(offset, "export keyspace name is not UTF-8"))?;
        each(Item::Keyspace(name))?;
        count.keyspaces += 1;
    }
    let n = r.u32().ok_or_else(malformed)?;
    for _ in 0..n {
        let k = r.len_prefixed().ok_or_else(malformed)?;
        let v = r.len_prefixed().ok_or_else(malformed)?;
        if k.len() > crate::MAX_KEY_SIZE || v.len() > crate::MAX_VALUE_SIZE {
            return Err(bad(offset, "export record exceeds the size limits"));
        }
        each(Item::Record(k, v))?;
        count.records += 1;
    }
    let last = flags & FLAG_LAST != 0;
    if last && r.u64() != Some(count.records) {
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

/// The records of one keyspace for [`encode_stream`]: its name (empty for the default
/// keyspace, which may come first only) and its pairs.
pub(crate) use crate::decode::ExportGroup as Group;

/// Encodes `groups` as a whole export stream of `version` (for tests and the fuzz seed
/// maker).
pub(crate) fn encode_stream(
    opts: &ExportOptions,
    version: u16,
    groups: &[Group<'_>],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out, opts, version)?;
    for (i, (name, records)) in groups.iter().enumerate() {
        if !(name.is_empty() && i == 0) {
            w.keyspace(name)?;
        }
        for (k, v) in *records {
            w.add(k, v)?;
        }
    }
    w.finish()?;
    Ok(out)
}

impl DB {
    /// Writes every key/value pair of a snapshot taken now to `w` as an export stream sealed
    /// as `opts` says (see `docs/format.md`, "Export stream"): the default keyspace's pairs,
    /// then each named keyspace's (empty ones too), by name, each in key order; the keyspace
    /// names are sealed with the records. Returns what was written. `w` is written in chunks
    /// of about 1 MiB; wrap a file in a `BufWriter` only if you like. A keyspace dropped while
    /// the export runs makes it fail with [`Error::KeyspaceDropped`].
    pub fn export(&self, w: impl Write, opts: &ExportOptions) -> Result<ExportInfo> {
        // The snapshot first: every keyspace holding anything it sees is listed after it.
        let snap = self.snapshot();
        let named = self.named_keyspaces();
        let mut out = Writer::new(w, opts, VERSION)?;
        for kv in &snap {
            let (k, v) = kv?;
            out.add(&k, &v)?;
        }
        for ks in &named {
            out.keyspace(ks.name())?;
            for kv in snap.iter_in(ks) {
                let (k, v) = kv?;
                out.add(&k, &v)?;
            }
        }
        out.finish()
    }

    /// Reads an export stream from `r` and writes its records into this database (in batches
    /// of about 4 MiB; existing keys are overwritten), each into the keyspace of the same name
    /// (created if missing). Streams of every export version are read (version 1 holds the
    /// default keyspace only). The whole stream is authenticated as it is read: a damaged,
    /// truncated or reordered stream is [`Error::Corruption`] and a wrong key
    /// [`Error::WrongMasterKey`]; records (and keyspaces) before the damage may already be
    /// written (import into a new database to get all or nothing).
    pub fn import(&self, r: impl Read, opts: &ExportOptions) -> Result<ExportInfo> {
        let mut batch = WriteBatch::new();
        let mut pending = 0usize;
        let mut ks = self.default_keyspace();
        let info = read_stream(r, opts, |item| {
            match item {
                Item::Keyspace(name) => ks = self.keyspace(name)?,
                Item::Record(k, v) => {
                    batch.put_in(&ks, k, v);
                    pending += k.len() + v.len();
                    if pending >= IMPORT_BATCH {
                        self.write(std::mem::take(&mut batch))?;
                        pending = 0;
                    }
                }
            }
            Ok(())
        })?;
        self.write(batch)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of `version` whose chunks carry `payloads` as they are, plain or sealed.
    fn raw_stream(opts: &ExportOptions, version: u16, payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out, opts, version).unwrap();
        for p in payloads {
            w.payload.clone_from(p);
            w.write_payload().unwrap();
        }
        drop(w);
        out
    }

    /// A chunk payload: flags, the keyspace name if given, the records, and the total record
    /// count when last.
    fn payload(flags: u8, name: Option<&[u8]>, records: &[(&[u8], &[u8])], total: u64) -> Vec<u8> {
        let mut p = vec![flags];
        if let Some(n) = name {
            put_len_prefixed(&mut p, n);
        }
        put_u32(&mut p, records.len() as u32);
        for (k, v) in records {
            put_len_prefixed(&mut p, k);
            put_len_prefixed(&mut p, v);
        }
        if flags & FLAG_LAST != 0 {
            put_u64(&mut p, total);
        }
        p
    }

    /// What `read_stream` hands on, as text (`[name]` for a keyspace start, `k=v` for a
    /// record).
    fn read(stream: &[u8], opts: &ExportOptions) -> Result<(Vec<String>, ExportInfo)> {
        let mut got = Vec::new();
        let info = read_stream(stream, opts, |item| {
            got.push(match item {
                Item::Keyspace(name) => format!("[{name}]"),
                Item::Record(k, v) => {
                    format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v))
                }
            });
            Ok(())
        })?;
        Ok((got, info))
    }

    fn corruption(r: Result<(Vec<String>, ExportInfo)>, what: &str) -> String {
        match r {
            Err(e) if e.is_corruption() => e.to_string(),
            other => panic!("{what}: expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn keyspaces_round_trip_in_order_with_empty_ones() {
        let records: [(&[u8], &[u8]); 3] = [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")];
        let groups: [Group<'_>; 4] =
            [("", &records[..1]), ("one", &records[1..]), ("empty", &[]), ("last", &records[..1])];
        for opts in [ExportOptions::plaintext(), ExportOptions::sealed(MasterKey::generate())] {
            let s = encode_stream(&opts, VERSION, &groups).unwrap();
            let (got, info) = read(&s, &opts).unwrap();
            assert_eq!(got, ["a=1", "[one]", "b=2", "c=3", "[empty]", "[last]", "a=1"]);
            assert_eq!((info.records, info.keyspaces, info.bytes), (4, 3, s.len() as u64));
            // Keyspaces with no default records first: the first chunk starts one.
            let s = encode_stream(&opts, VERSION, &groups[1..]).unwrap();
            assert_eq!(read(&s, &opts).unwrap().0[..2], ["[one]", "b=2"]);
        }
        // Version 1 has no keyspaces to write.
        assert!(encode_stream(&ExportOptions::plaintext(), VERSION_1, &groups).is_err());
    }

    #[test]
    fn version_1_streams_are_read_and_know_no_keyspace_flag() {
        let opts = ExportOptions::plaintext();
        let recs: [(&[u8], &[u8]); 1] = [(b"k", b"v")];
        let s = encode_stream(&opts, VERSION_1, &[("", &recs)]).unwrap();
        assert_eq!(s[8..10], 1u16.to_le_bytes());
        let (got, info) = read(&s, &opts).unwrap();
        assert_eq!((got, info.records, info.keyspaces), (vec!["k=v".to_owned()], 1, 0));
        // The same chunks with a keyspace start: read in version 2, refused in version 1.
        let chunks =
            [payload(FLAG_KEYSPACE, Some(b"ks"), &recs, 0), payload(FLAG_LAST, None, &recs, 2)];
        let (got, _) = read(&raw_stream(&opts, VERSION, &chunks), &opts).unwrap();
        assert_eq!(got, ["[ks]", "k=v", "k=v"]);
        let e = corruption(read(&raw_stream(&opts, VERSION_1, &chunks), &opts), "v1 keyspace");
        assert!(e.contains("unknown export chunk flags"), "{e}");
        // Another version is refused before any chunk is read.
        let e = corruption(read(&raw_stream(&opts, 3, &chunks), &opts), "version 3");
        assert!(e.contains("unknown export version"), "{e}");
    }

    #[test]
    fn bad_flags_and_keyspace_names_are_corruption() {
        let key = MasterKey::generate();
        let recs: [(&[u8], &[u8]); 1] = [(b"k", b"v")];
        let long = vec![b'n'; MAX_KEYSPACE_NAME + 1];
        for opts in [ExportOptions::plaintext(), ExportOptions::sealed(key.clone())] {
            for (what, first) in [
                ("flag bit 2", payload(4, None, &recs, 0)),
                ("flag bit 7", payload(0x80, None, &recs, 0)),
                ("empty name", payload(FLAG_KEYSPACE, Some(b""), &recs, 0)),
                ("long name", payload(FLAG_KEYSPACE, Some(&long), &recs, 0)),
                ("name not UTF-8", payload(FLAG_KEYSPACE, Some(b"\xff\xfe"), &recs, 0)),
                ("name cut short", vec![FLAG_KEYSPACE, 9, b'a']),
            ] {
                let s = raw_stream(&opts, VERSION, &[first, payload(FLAG_LAST, None, &[], 1)]);
                let e = corruption(read(&s, &opts), what);
                assert!(!e.contains("\u{fffd}") && !e.contains("nnnn"), "{what}: {e}");
            }
            // The longest name is fine.
            let ok = payload(FLAG_KEYSPACE, Some(&long[1..]), &recs, 0);
            let s = raw_stream(&opts, VERSION, &[ok, payload(FLAG_LAST, None, &[], 1)]);
            assert_eq!(read(&s, &opts).unwrap().1.keyspaces, 1);
        }
    }
}
