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
