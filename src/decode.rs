//! Entry points into every decoder of bytes read from disk, for fuzzing and corpus replay.
//!
//! Each function takes arbitrary bytes and must return (an error or a value) without
//! panicking, looping or allocating without bound. They are public so the `fuzz/` crate and
//! `tests/fuzz_corpus.rs` call exactly the code the engine runs; they are not part of the
//! stable API.

use std::path::Path;
use std::sync::Arc;

use crate::crypto::registry::KeyRing;
use crate::crypto::{MasterKey, SecretKey};
use crate::options::Cipher;
use crate::seal::{BlockKind, FileCipher, FileHeader, FileKind};
use crate::sstable::{Block, BlockIter, Filter};

/// A fixed key so fuzzers can reach past authentication with seeds sealed under it.
const FUZZ_KEY: [u8; 32] = [0x5a; 32];

fn ciphers() -> [FileCipher; 3] {
    let k = SecretKey(FUZZ_KEY);
    [
        FileCipher::plain(1),
        FileCipher::new(Cipher::Aes256Gcm, 1, &k, 1),
        FileCipher::new(Cipher::ChaCha20Poly1305, 1, &k, 1),
    ]
}

/// Seals `plain` as a data block of file 1 at offset 0 under cipher `which` (0 plain,
/// 1 AES-256-GCM, 2 ChaCha20-Poly1305) with the fuzzing key: a seed maker for [`sealed_block`].
pub fn seal_for_fuzzing(which: usize, plain: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ciphers()[which % 3].seal(BlockKind::Data, 0, 1, true, plain, &mut out);
    out
}

/// Opens a sealed block (header checks, tag or crc, decompression) under each cipher.
pub fn sealed_block(data: &[u8]) -> usize {
    let _ = crate::seal::parse_header(data);
    ciphers().iter().filter_map(|c| c.open(BlockKind::Data, 0, data).ok()).map(|p| p.len()).sum()
}

/// Parses a data or index block and walks it: first to last, last to first, seeks to a few
/// keys and to the entries before them, and a mix of steps both ways (each walk ends: every
/// step back lands on an earlier entry or stops).
pub fn data_block(data: &[u8]) -> usize {
    let Ok(block) = Block::new(data.to_vec()) else { return 0 };
    let block = Arc::new(block);
    let mut it = BlockIter::new(block.clone());
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += it.key().len() + it.value().len();
        it.next();
    }
    it.seek_to_last();
    while it.valid() {
        n += it.key().len() + it.value().len();
        it.prev();
    }
    for target in [&b""[..], b"a\xff\xff\xff\xff\xff\xff\xff\xff", b"zzzzzzzzzzzzzzzz"] {
        let mut it = BlockIter::new(block.clone());
        it.seek(target);
        n += usize::from(it.valid());
        it.seek_before(target);
        n += usize::from(it.valid());
    }
    // Steps both ways, chosen by the block's own bytes, from the last entry.
    it.seek_to_last();
    for &b in data.iter().take(64) {
        if b & 1 == 0 {
            it.next();
        } else {
            it.prev();
        }
        n += usize::from(it.valid());
    }
    n
}

/// Parses a bloom filter and probes it.
pub fn bloom_filter(data: &[u8]) -> usize {
    let Ok(f) = Filter::new(data.to_vec()) else { return 0 };
    [&b""[..], b"key", b"another key"].iter().filter(|k| f.may_contain(k)).count()
}

/// Decodes a WAL record payload.
pub fn wal_record(data: &[u8]) -> usize {
    let mut n = 0;
    let _ = crate::wal::decode_record(data, |_, _, k, v| n += k.len() + v.len());
    n
}

/// Decodes a manifest payload.
pub fn manifest(data: &[u8]) -> usize {
    crate::manifest::ManifestData::decode(data).map_or(0, |m| m.files.len())
}

/// Decodes a key registry under the fuzzing master key.
pub fn key_registry(data: &[u8]) -> usize {
    let master = MasterKey::from_bytes(FUZZ_KEY);
    KeyRing::decode(data, Path::new("KEYS"), &master).map_or(0, |(r, _)| r.keys().count())
}

/// Encodes a key registry under the fuzzing master key (seed maker for [`key_registry`]).
pub fn registry_for_fuzzing() -> Vec<u8> {
    let master = MasterKey::from_bytes(FUZZ_KEY);
    let Ok(kek) = master.resolve_new() else { return Vec::new() };
    KeyRing::generate(Cipher::Aes256Gcm).and_then(|r| r.encode(&kek)).unwrap_or_default()
}

/// Checks a file header of table 1 (plain database, then one keyed by the fixed fuzzing ring).
pub fn file_header(data: &[u8]) -> usize {
    let p = Path::new("000001.sst");
    let ring = KeyRing::fixed(Cipher::Aes256Gcm, FUZZ_KEY);
    usize::from(FileHeader::open(FileKind::Table, p, 1, data, None).is_ok())
        + usize::from(FileHeader::open(FileKind::Table, p, 1, data, Some(&ring)).is_ok())
}

/// A valid header of table 1 under the fixed fuzzing ring with `cipher` (0 plain, 1 AES,
/// 2 ChaCha): a seed maker for [`file_header`].
pub fn file_header_for_fuzzing(which: usize) -> Vec<u8> {
    let cipher = if which % 3 == 2 { Cipher::ChaCha20Poly1305 } else { Cipher::Aes256Gcm };
    let ring = KeyRing::fixed(cipher, FUZZ_KEY);
    let keys = (!which.is_multiple_of(3)).then_some(&ring);
    FileHeader::create(FileKind::Table, 1, keys).map(|(h, _)| h).unwrap_or_default()
}

/// A valid value-log entry payload and pointer, concatenated as [`vlog_entry`] reads them:
/// a seed maker.
pub fn vlog_entry_for_fuzzing(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::coding::put_u64(&mut out, 7);
    crate::coding::put_len_prefixed(&mut out, key);
    out.extend_from_slice(value);
    out
}

/// Decodes an SSTable footer payload (handles checked against a 1 MiB file).
pub fn table_footer(data: &[u8]) -> usize {
    crate::sstable::decode_footer(data, 100, 1 << 20).map_or(0, |h| h.len())
}

/// Decodes a value-log entry payload and a value-log pointer.
pub fn vlog_entry(data: &[u8]) -> usize {
    let n = crate::vlog::decode_entry(data).map_or(0, |(_, k, v)| k.len() + v.len());
    n + usize::from(crate::vlog::Pointer::decode(data).is_some())
}

/// Checks an audit log's MAC chain under a fixed key.
pub fn audit_log(data: &[u8]) -> usize {
    let keys = [SecretKey(FUZZ_KEY)];
    crate::crypto::audit::verify(data, &keys, None)
        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// One file held in memory, read through the [`Fs`](crate::io::Fs) interface: the value-log
/// segment decoder below reads a fuzzer's bytes exactly as the engine reads a segment file.
#[derive(Debug)]
struct OneFile(Arc<Vec<u8>>);

impl crate::io::RandomAccessFile for OneFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

fn read_only() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, "read-only in-memory file")
}

impl crate::io::Fs for OneFile {
    fn create(&self, _: &Path) -> std::io::Result<Box<dyn crate::io::WritableFile>> {
        Err(read_only())
    }
    fn open(&self, _: &Path) -> std::io::Result<Arc<dyn crate::io::RandomAccessFile>> {
        Ok(Arc::new(OneFile(self.0.clone())))
    }
    fn read_all(&self, _: &Path) -> std::io::Result<Vec<u8>> {
        Ok(self.0.to_vec())
    }
    fn rename(&self, _: &Path, _: &Path) -> std::io::Result<()> {
        Err(read_only())
    }
    fn remove(&self, _: &Path) -> std::io::Result<()> {
        Err(read_only())
    }
    fn exists(&self, _: &Path) -> bool {
        true
    }
    fn list(&self, _: &Path) -> std::io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn create_dir_all(&self, _: &Path) -> std::io::Result<()> {
        Err(read_only())
    }
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        Err(read_only())
    }
    fn lock(&self, _: &Path) -> std::io::Result<Box<dyn crate::io::DirLock>> {
        Err(read_only())
    }
}

/// Walks a value-log segment as recovery and GC do. The first byte chooses the database
/// (bits 0-1 modulo 3: 0 plain, 1 AES, 2 ChaCha20-Poly1305, under the fixed fuzzing ring)
/// and how the manifest recorded the segment (bit 2: closed at its whole length, else active
/// with only its header durable); the rest is segment 1's file. Recovery's walk (torn-tail
/// rules) runs, then GC's authenticated walk of the closed segment, which must end exactly at
/// its length.
pub fn vlog_segment(data: &[u8]) -> usize {
    use crate::vlog::{Recorded, Segment};
    let Some((&mode, file)) = data.split_first() else { return 0 };
    let which = (mode & 3) % 3;
    let ring = KeyRing::fixed(
        if which == 2 { Cipher::ChaCha20Poly1305 } else { Cipher::Aes256Gcm },
        FUZZ_KEY,
    );
    let keys = (which != 0).then_some(&ring);
    let recorded = if mode & 4 == 0 {
        Recorded::Active { durable: FileHeader::len(keys.is_some()) as u64 }
    } else {
        Recorded::Closed(file.len() as u64)
    };
    let fs: Arc<dyn crate::io::Fs> = Arc::new(OneFile(Arc::new(file.to_vec())));
    let Ok(seg) = Segment::open(&fs, Path::new("000001.vlog"), 1, keys, recorded) else {
        return 0;
    };
    seg.close();
    let mut n = 0;
    let _ = seg.scan(|e| {
        n += e.key.len() + e.value.len() + 1;
        Ok(())
    });
    n
}

/// A value-log segment file 1 holding `entries` (key, value) under the fixed fuzzing ring with
/// cipher `which` (0 plain, 1 AES, 2 ChaCha): a seed maker for [`vlog_segment`] (prefix the
/// mode byte).
pub fn vlog_segment_for_fuzzing(which: usize, entries: &[(&[u8], &[u8])]) -> Vec<u8> {
    let cipher = if which % 3 == 2 { Cipher::ChaCha20Poly1305 } else { Cipher::Aes256Gcm };
    let ring = KeyRing::fixed(cipher, FUZZ_KEY);
    let keys = (!which.is_multiple_of(3)).then_some(&ring);
    let Ok((mut out, c)) = FileHeader::create(FileKind::ValueLog, 1, keys) else {
        return Vec::new();
    };
    for (i, (k, v)) in entries.iter().enumerate() {
        let mut payload = Vec::new();
        crate::coding::put_u64(&mut payload, i as u64 + 1);
        crate::coding::put_len_prefixed(&mut payload, k);
        payload.extend_from_slice(v);
        let offset = out.len() as u64;
        c.seal(BlockKind::ValueLog, offset, i as u64 + 1, true, &payload, &mut out);
    }
    out
}

/// Decodes a backup manifest object: its clear part alone (as `list`, `restore` and `delete`
/// do), its crc-protected sealed part when plain, and everything under the fuzzing master key
/// (its `KEYS` opened, the sealed block authenticated, as `verify` does).
pub fn backup_manifest(data: &[u8]) -> usize {
    use crate::backup::BackupManifest;
    let p = Path::new("backups/00000000000000000001.backup");
    let mut n = 0;
    if let Ok(m) = BackupManifest::decode(data, p, None) {
        n += m.files.len() + 1;
        if !m.encrypted() {
            n += usize::from(m.check_plain(data, p).is_ok());
        }
    }
    let master = MasterKey::from_bytes(FUZZ_KEY);
    n + usize::from(BackupManifest::decode(data, p, Some(&master)).is_ok())
}

/// A valid backup manifest naming `files` (name, size), plain (`encrypted` false) or with a
/// registry under the fuzzing master key: a seed maker for [`backup_manifest`].
pub fn backup_manifest_for_fuzzing(encrypted: bool, files: &[(&str, u64)]) -> Vec<u8> {
    use crate::backup::{BackupManifest, Entry};
    let master = MasterKey::from_bytes(FUZZ_KEY);
    let (ring, keys) = if encrypted {
        let Ok(kek) = master.resolve_new() else { return Vec::new() };
        let ring = KeyRing::fixed(Cipher::Aes256Gcm, FUZZ_KEY);
        let Ok(keys) = ring.encode(&kek) else { return Vec::new() };
        (Some(ring), keys)
    } else {
        (None, Vec::new())
    };
    let files = files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| Entry {
            name: (*name).to_owned(),
            size: *size,
            sha256: [i as u8; 32],
        })
        .collect();
    let m = BackupManifest { id: 1, created_at: 1_700_000_000, new_bytes: 4096, files, keys };
    m.encode(ring.as_ref()).unwrap_or_default()
}

/// Reads an export stream plain, then sealed under the fuzzing master key (raw), counting the
/// bytes of the keyspace names and records it yields.
pub fn export_stream(data: &[u8]) -> usize {
    use crate::export::{read_stream, ExportOptions, Item};
    let mut n = 0;
    for opts in [ExportOptions::plaintext(), ExportOptions::sealed(MasterKey::from_bytes(FUZZ_KEY))]
    {
        let _ = read_stream(data, &opts, |item| {
            n += match item {
                Item::Keyspace(name) => name.len() + 1,
                Item::Record(k, v) => k.len() + v.len() + 1,
            };
            Ok(())
        });
    }
    n
}

/// The records of one keyspace in an export stream made by [`export_for_fuzzing`]: its name
/// (empty for the default keyspace, which may only come first) and its key/value pairs.
pub type ExportGroup<'a> = (&'a str, &'a [(&'a [u8], &'a [u8])]);

/// An export stream of export format `version` (1 or 2), plain or sealed under the fuzzing
/// master key, holding `groups` in order (version 1 has only the default keyspace). A seed
/// maker for [`export_stream`]; empty when the groups do not fit the version.
pub fn export_for_fuzzing(sealed: bool, version: u16, groups: &[ExportGroup<'_>]) -> Vec<u8> {
    use crate::export::{encode_stream, ExportOptions};
    let opts = if sealed {
        ExportOptions::sealed(MasterKey::from_bytes(FUZZ_KEY))
    } else {
        ExportOptions::plaintext()
    };
    encode_stream(&opts, version, groups).unwrap_or_default()
}
