//! Regenerates the seed corpora of the fuzz targets, `fuzz/corpus/<target>/`.
//!
//! `cargo run --example make_fuzz_seeds [OUT_DIR]` (default: `fuzz/corpus` of this crate).
//! Each target's directory is emptied and refilled with a handful of small, meaningful inputs
//! for the matching function of `sealdb::decode`: hand-encoded inputs that follow the formats
//! documented in `src/`, and blocks, WAL records, manifests, headers and registries taken from
//! real databases written through the public API. Seeds that hold random salts (key registries,
//! encrypted file headers) differ from one run to the next; the rest are deterministic.

use std::fs;
use std::path::{Path, PathBuf};

use sealdb::seal::{parse_header, BlockKind, FileCipher};
use sealdb::{decode, Cipher, Encryption, MasterKey, Options, WriteBatch, DB};

/// The key `sealdb::decode` opens registries with (`FUZZ_KEY` in src/decode.rs).
const FUZZ_KEY: [u8; 32] = [0x5a; 32];
/// Largest sequence number (56 bits), as in src/key.rs.
const MAX_SEQ: u64 = (1 << 56) - 1;
/// Op kinds of a WAL record and value kinds of an internal key (`src/key.rs`).
const DELETE: u8 = 0;
const PUT: u8 = 1;
const POINTER: u8 = 2;
/// Bytes of a plain file header with its check block (`FileHeader::len(false)`).
const PLAIN_HEADER_LEN: usize = 100;
/// Bytes of an encrypted file header with its check block (`FileHeader::len(true)`).
const ENCRYPTED_HEADER_LEN: usize = 112;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;
/// Writes the seeds of one target.
type Make = fn(&mut Corpus, &Real) -> BoxResult<()>;

// ---- little encoders, following src/coding.rs -------------------------------------------------

fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

fn put_len_prefixed(dst: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(dst, bytes.len() as u64);
    dst.extend_from_slice(bytes);
}

/// An encoded internal key: user key ‖ (seq << 8 | kind) as u64 LE (`src/key.rs`).
fn ikey(user: &[u8], seq: u64, kind: u8) -> Vec<u8> {
    let mut v = user.to_vec();
    v.extend_from_slice(&((seq << 8) | u64::from(kind)).to_le_bytes());
    v
}

/// A value-log pointer (`src/vlog/mod.rs`): segment u64 ‖ offset u64 ‖ sealed length u32.
fn pointer(segment: u64, offset: u64, len: u32) -> Vec<u8> {
    let mut v = segment.to_le_bytes().to_vec();
    v.extend_from_slice(&offset.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// Deterministic bytes that LZ4 cannot shrink (xorshift).
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A data or index block (src/sstable/block.rs): entries with prefix-compressed keys, then
/// the restart offsets and their count.
fn block(entries: &[(Vec<u8>, Vec<u8>)], restart_interval: usize) -> Vec<u8> {
    let (mut out, mut restarts, mut last) = (Vec::new(), Vec::new(), Vec::<u8>::new());
    for (i, (k, v)) in entries.iter().enumerate() {
        let shared = if i % restart_interval == 0 {
            restarts.push(out.len() as u32);
            0
        } else {
            last.iter().zip(k).take_while(|(a, b)| a == b).count()
        };
        put_varint(&mut out, shared as u64);
        put_varint(&mut out, (k.len() - shared) as u64);
        put_varint(&mut out, v.len() as u64);
        out.extend_from_slice(&k[shared..]);
        out.extend_from_slice(v);
        last.clone_from(k);
    }
    if restarts.is_empty() {
        restarts.push(0);
    }
    for r in &restarts {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    out
}

/// One WAL op (`src/wal/mod.rs`): kind (0 delete, 1 put, 2 value-log pointer), key, value
/// (none for a delete).
type Op<'a> = (u8, &'a [u8], &'a [u8]);

/// A WAL record payload: first sequence u64 ‖ count u32 ‖ ops.
fn wal_record(first_seq: u64, ops: &[Op<'_>]) -> Vec<u8> {
    let mut out = first_seq.to_le_bytes().to_vec();
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for &(kind, k, v) in ops {
        out.push(kind);
        put_len_prefixed(&mut out, k);
        if kind != DELETE {
            put_len_prefixed(&mut out, v);
        }
    }
    out
}

/// One file entry of a manifest.
struct FileEntry {
    level: u8,
    number: u64,
    size: u64,
    key_id: u32,
    max_seq: u64,
    smallest: Vec<u8>,
    largest: Vec<u8>,
}

impl FileEntry {
    /// A table of `level` numbered `number` whose keys run from `lo` to `hi` (user keys).
    fn new(level: u8, number: u64, lo: &[u8], hi: &[u8], max_seq: u64) -> FileEntry {
        FileEntry {
            level,
            number,
            size: 4096,
            key_id: 0,
            max_seq,
            smallest: ikey(lo, max_seq, PUT),
            largest: ikey(hi, 1, DELETE),
        }
    }
}

/// A manifest payload (`src/manifest/mod.rs`), with live value-log segments as
/// (number, discard bytes).
fn manifest(
    next_file: u64,
    last_seq: u64,
    log: u64,
    files: &[FileEntry],
    segments: &[(u64, u64)],
) -> Vec<u8> {
    let mut out = vec![1u8];
    for v in [next_file, last_seq, log] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for f in files {
        out.push(f.level);
        out.extend_from_slice(&f.number.to_le_bytes());
        out.extend_from_slice(&f.size.to_le_bytes());
        out.extend_from_slice(&f.key_id.to_le_bytes());
        out.extend_from_slice(&f.max_seq.to_le_bytes());
        put_len_prefixed(&mut out, &f.smallest);
        put_len_prefixed(&mut out, &f.largest);
    }
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    for (number, discard) in segments {
        out.extend_from_slice(&number.to_le_bytes());
        out.extend_from_slice(&discard.to_le_bytes());
    }
    out
}

/// A plain (unencrypted) file header of `magic` for file `number` with its crc check block
/// (`src/seal/file_header.rs`), built with the public sealing API.
fn plain_file_header(magic: [u8; 8], number: u64, salt: [u8; 32]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&1u16.to_le_bytes()); // version
    out.extend_from_slice(&0u16.to_le_bytes()); // flags: not encrypted
    out.extend_from_slice(&[0; 4]); // algorithm none, reserved
    out.extend_from_slice(&0u32.to_le_bytes()); // key id
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved
    out.extend_from_slice(&number.to_le_bytes());
    out.extend_from_slice(&salt);
    let clear = out.clone();
    let offset = clear.len() as u64;
    FileCipher::plain(number).seal_with_ad(
        BlockKind::FileHeader,
        offset,
        0,
        false,
        &[],
        &clear,
        &mut out,
    );
    out
}

// ---- real databases ------------------------------------------------------------------------------

/// Bytes taken from real databases written through the public API.
#[derive(Default)]
struct Real {
    data_blocks: Vec<Vec<u8>>,
    index_blocks: Vec<Vec<u8>>,
    filters: Vec<Vec<u8>>,
    wal_payloads: Vec<Vec<u8>>,
    manifest_payloads: Vec<Vec<u8>>,
    /// (name, bytes) of file headers.
    headers: Vec<(String, Vec<u8>)>,
    /// (name, bytes) of key registries.
    registries: Vec<(String, Vec<u8>)>,
}

/// The number in a file name such as `000007.sst`.
fn file_number(p: &Path) -> u64 {
    p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn files_ending(dir: &Path, suffix: &str) -> BoxResult<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    v.sort();
    Ok(v)
}

/// Walks the sealed blocks of a plain file after its header, opening each as the first of
/// `kinds` it opens as.
fn open_blocks(bytes: &[u8], number: u64, kinds: &[BlockKind]) -> Vec<(BlockKind, Vec<u8>)> {
    let cipher = FileCipher::plain(number);
    let (mut pos, mut out) = (PLAIN_HEADER_LEN, Vec::new());
    while let Some(rest) = bytes.get(pos..) {
        let Ok(h) = parse_header(rest) else { break };
        let Some(sealed) = rest.get(..h.sealed_len()) else { break };
        if let Some((k, p)) =
            kinds.iter().find_map(|&k| cipher.open(k, pos as u64, sealed).ok().map(|p| (k, p)))
        {
            out.push((k, p));
        }
        pos += sealed.len();
    }
    out
}

fn fill(db: &DB) -> sealdb::Result<()> {
    for i in 0..40u32 {
        db.put(format!("user:{i:04}"), format!("value-{i}-{}", "v".repeat((i % 5) as usize * 7)))?;
    }
    db.put("key", "probed by the bloom_filter target")?;
    db.put("another key", "")?;
    let mut b = WriteBatch::new();
    b.put("batch:a", "1");
    b.delete("user:0003");
    b.put("batch:b", vec![0u8; 150]);
    db.write(b)?;
    db.delete("user:0007")
}

/// A plain database with compression off, small blocks and a low value-log threshold: data,
/// index and filter blocks, WAL records (with a value-log pointer), the manifest payload
/// (with a segment) and plain file headers.
fn plain_database(real: &mut Real) -> BoxResult<()> {
    let dir = tempfile::tempdir()?;
    let opts = Options::new(dir.path())
        .compression(false)
        .block_size(256)
        .background_work(false)
        .bloom_bits_per_key(10)
        .value_threshold(100);
    let db = DB::open(opts)?;
    fill(&db)?;
    db.sync()?;
    for wal in files_ending(dir.path(), ".wal")? {
        let bytes = fs::read(&wal)?;
        real.headers.push(("plain-wal".into(), bytes[..PLAIN_HEADER_LEN].to_vec()));
        for (_, p) in open_blocks(&bytes, file_number(&wal), &[BlockKind::Wal]) {
            real.wal_payloads.push(p);
        }
    }
    db.flush()?;
    db.close()?;
    for sst in files_ending(dir.path(), ".sst")? {
        let bytes = fs::read(&sst)?;
        real.headers.push(("plain-sst".into(), bytes[..PLAIN_HEADER_LEN].to_vec()));
        let kinds = [BlockKind::Data, BlockKind::Index, BlockKind::Filter];
        for (k, p) in open_blocks(&bytes, file_number(&sst), &kinds) {
            match k {
                BlockKind::Data => real.data_blocks.push(p),
                BlockKind::Index => real.index_blocks.push(p),
                _ => real.filters.push(p),
            }
        }
    }
    for vlog in files_ending(dir.path(), ".vlog")?.iter().take(1) {
        real.headers.push(("plain-vlog".into(), fs::read(vlog)?[..PLAIN_HEADER_LEN].to_vec()));
    }
    let bytes = fs::read(dir.path().join("MANIFEST"))?;
    real.headers.push(("plain-manifest".into(), bytes[..PLAIN_HEADER_LEN].to_vec()));
    let number = u64::from_le_bytes(bytes[24..32].try_into()?);
    for (_, p) in open_blocks(&bytes, number, &[BlockKind::Manifest]) {
        real.manifest_payloads.push(p);
    }
    Ok(())
}

/// An encrypted database under `master`: its key registry (which `decode::key_registry` opens
/// when `master` is the fuzzing key) and, if `headers`, an encrypted table header.
fn encrypted_database(
    real: &mut Real,
    master: MasterKey,
    cipher: Cipher,
    name: &str,
    headers: bool,
) -> BoxResult<()> {
    let dir = tempfile::tempdir()?;
    let enc = Encryption::new(master).cipher(cipher);
    let db = DB::open(Options::new(dir.path()).with_encryption(enc).background_work(false))?;
    fill(&db)?;
    db.flush()?;
    db.close()?;
    real.registries.push((name.into(), fs::read(dir.path().join("KEYS"))?));
    if let Some(sst) = files_ending(dir.path(), ".sst")?.first().filter(|_| headers) {
        let header = fs::read(sst)?[..ENCRYPTED_HEADER_LEN].to_vec();
        // As is (wrong file number for `decode::file_header`), and renumbered to file 1 so the
        // decoder reaches the key lookup and the tag check.
        let mut renumbered = header.clone();
        renumbered[24..32].copy_from_slice(&1u64.to_le_bytes());
        real.headers.push((format!("{name}-sst"), header));
        real.headers.push((format!("{name}-sst-renumbered-1"), renumbered));
    }
    Ok(())
}

// ---- the corpora ---------------------------------------------------------------------------------

struct Corpus {
    root: PathBuf,
    written: usize,
    bytes: usize,
}

impl Corpus {
    /// Empties (or creates) the directory of `target`.
    fn reset(&self, target: &str) -> BoxResult<()> {
        let dir = self.root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(())
    }

    fn add(&mut self, target: &str, name: &str, bytes: &[u8]) -> BoxResult<()> {
        fs::write(self.root.join(target).join(name), bytes)?;
        self.written += 1;
        self.bytes += bytes.len();
        Ok(())
    }
}

fn sealed_block_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    let compressible = b"user:0001 value-0001 user:0002 value-0002 ".repeat(6);
    let incompressible = noise(160, 0x9e37_79b9_7f4a_7c15);
    let real_data = real.data_blocks.first().cloned().unwrap_or_default();
    for (which, name) in [(0, "plain"), (1, "aes"), (2, "chacha")] {
        c.add("sealed_block", &format!("{name}-empty"), &decode::seal_for_fuzzing(which, b""))?;
        c.add(
            "sealed_block",
            &format!("{name}-small"),
            &decode::seal_for_fuzzing(which, b"hello"),
        )?;
        let lz4 = decode::seal_for_fuzzing(which, &compressible);
        c.add("sealed_block", &format!("{name}-compressible"), &lz4)?;
        let raw = decode::seal_for_fuzzing(which, &incompressible);
        c.add("sealed_block", &format!("{name}-incompressible"), &raw)?;
        c.add(
            "sealed_block",
            &format!("{name}-real-data-block"),
            &decode::seal_for_fuzzing(which, &real_data),
        )?;
    }
    // Edge cases: a header alone (a torn block), and a block with trailing bytes.
    let mut sealed = decode::seal_for_fuzzing(0, b"hello");
    c.add("sealed_block", "plain-header-only", &sealed[..32])?;
    sealed.extend_from_slice(b"tail");
    c.add("sealed_block", "plain-trailing-bytes", &sealed)?;
    Ok(())
}

fn data_block_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    let kv = |i: u32| {
        (ikey(format!("key{i:04}").as_bytes(), u64::from(i) + 1, PUT), format!("v{i}").into_bytes())
    };
    let entries: Vec<_> = (0..24).map(kv).collect();
    c.add("data_block", "one-entry", &block(&entries[..1], 16))?;
    c.add("data_block", "restart-every-4", &block(&entries, 4))?;
    c.add("data_block", "restart-every-1", &block(&entries[..8], 1))?;
    c.add("data_block", "one-restart", &block(&entries, 64))?;
    // Versions of one user key (sequence descending), a delete, a value-log pointer and empty
    // values.
    let versions = vec![
        (ikey(b"a", 9, PUT), b"new".to_vec()),
        (ikey(b"a", 5, DELETE), Vec::new()),
        (ikey(b"a", 4, POINTER), pointer(3, 100, 2000)),
        (ikey(b"a", 1, PUT), b"old".to_vec()),
        (ikey(b"b", 3, PUT), Vec::new()),
    ];
    c.add("data_block", "versions-delete-pointer", &block(&versions, 2))?;
    // Multi-byte varints: a 200-byte key and a 300-byte value.
    let long = vec![(ikey(&[b'k'; 200], 1, PUT), vec![b'v'; 300])];
    c.add("data_block", "long-key-and-value", &block(&long, 16))?;
    // Keys shorter than a trailer (malformed internal keys) order first in seeks.
    let short = vec![(b"x".to_vec(), b"1".to_vec()), (b"xy".to_vec(), b"2".to_vec())];
    c.add("data_block", "short-keys", &block(&short, 16))?;
    c.add("data_block", "no-entries", &block(&[], 16))?;
    for (i, b) in real.data_blocks.iter().take(3).enumerate() {
        c.add("data_block", &format!("real-data-{i}"), b)?;
    }
    for (i, b) in real.index_blocks.iter().take(2).enumerate() {
        c.add("data_block", &format!("real-index-{i}"), b)?;
    }
    Ok(())
}

fn bloom_filter_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    for (i, f) in real.filters.iter().take(2).enumerate() {
        c.add("bloom_filter", &format!("real-{i}"), f)?;
    }
    c.add("bloom_filter", "minimal", &[0x00, 0x01])?;
    c.add(
        "bloom_filter",
        "all-set-7-probes",
        &[0xff; 8].iter().copied().chain([7]).collect::<Vec<_>>(),
    )?;
    c.add(
        "bloom_filter",
        "empty-30-probes",
        &[0x00; 16].iter().copied().chain([30]).collect::<Vec<_>>(),
    )?;
    c.add(
        "bloom_filter",
        "31-probes-invalid",
        &[0xff; 8].iter().copied().chain([31]).collect::<Vec<_>>(),
    )?;
    c.add(
        "bloom_filter",
        "0-probes-invalid",
        &[0xff; 8].iter().copied().chain([0]).collect::<Vec<_>>(),
    )?;
    c.add("bloom_filter", "odd-length", &noise(37, 7).into_iter().chain([6]).collect::<Vec<_>>())?;
    Ok(())
}

fn wal_record_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    c.add("wal_record", "one-put", &wal_record(1, &[(PUT, b"key", b"value")]))?;
    let mixed: [Op<'_>; 3] = [(PUT, b"a", b"1"), (DELETE, b"b", b""), (PUT, b"", b"")];
    c.add("wal_record", "put-delete-empty", &wal_record(42, &mixed))?;
    let ptr = pointer(4, 100, 1078);
    c.add("wal_record", "pointer", &wal_record(9, &[(POINTER, b"big", &ptr), (PUT, b"s", b"v")]))?;
    c.add("wal_record", "unknown-op-kind", &wal_record(9, &[(3, b"k", b"v")]))?;
    c.add("wal_record", "no-ops", &wal_record(7, &[]))?;
    let (k, v) = (vec![b'k'; 200], vec![b'v'; 300]);
    c.add("wal_record", "long-key-and-value", &wal_record(5, &[(PUT, &k, &v)]))?;
    let last = [(DELETE, &b"x"[..], &b""[..]), (DELETE, b"y", b"")];
    c.add("wal_record", "last-sequence", &wal_record(MAX_SEQ - 2, &last))?;
    c.add("wal_record", "sequence-overflow", &wal_record(MAX_SEQ, &[(DELETE, b"x", b"")]))?;
    // The first record and the last three (the batch with a delete and a long value).
    let n = real.wal_payloads.len();
    let mut picks = vec![0, n.saturating_sub(3), n.saturating_sub(2), n.saturating_sub(1)];
    picks.dedup();
    for i in picks.into_iter().filter(|&i| i < n) {
        c.add("wal_record", &format!("real-{i}"), &real.wal_payloads[i])?;
    }
    Ok(())
}

fn manifest_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    c.add("manifest", "no-files", &manifest(2, 0, 1, &[], &[]))?;
    let one = [FileEntry::new(0, 5, b"a", b"z", 9)];
    c.add("manifest", "one-file", &manifest(6, 9, 4, &one, &[]))?;
    c.add("manifest", "one-file-two-segments", &manifest(9, 9, 8, &one, &[(6, 0), (7, 4096)]))?;
    let levels: Vec<FileEntry> = (0..7u8)
        .map(|l| {
            let (lo, hi) = (format!("k{l}0"), format!("k{l}9"));
            FileEntry::new(l, 10 + u64::from(l), lo.as_bytes(), hi.as_bytes(), 100 - u64::from(l))
        })
        .collect();
    c.add("manifest", "every-level", &manifest(100, 1000, 50, &levels, &[(99, 1 << 30)]))?;
    let edge = [FileEntry {
        level: 6,
        number: 0,
        size: 0,
        key_id: u32::MAX,
        max_seq: u64::MAX,
        smallest: ikey(b"", MAX_SEQ, POINTER),
        largest: ikey(&[0xff; 40], 0, DELETE),
    }];
    let segments = [(u64::MAX - 1, u64::MAX)];
    c.add("manifest", "edge-values", &manifest(u64::MAX, MAX_SEQ, u64::MAX, &edge, &segments))?;
    // A payload cut before its segment count.
    let mut old = manifest(6, 9, 4, &one, &[]);
    old.truncate(old.len() - 4);
    c.add("manifest", "no-segment-count", &old)?;
    for (i, p) in real.manifest_payloads.iter().take(2).enumerate() {
        c.add("manifest", &format!("real-{i}"), p)?;
    }
    Ok(())
}

/// Replaces the registry's trailing crc32 (of every byte before it) after an edit, so the
/// decoder gets past the crc to the check value or the tag.
fn fix_registry_crc(reg: &mut [u8]) {
    if let Some(at) = reg.len().checked_sub(4) {
        let crc = crc32fast::hash(&reg[..at]);
        reg[at..].copy_from_slice(&crc.to_le_bytes());
    }
}

fn key_registry_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    let reg = decode::registry_for_fuzzing();
    c.add("key_registry", "aes-one-key", &reg)?;
    for (name, r) in &real.registries {
        c.add("key_registry", &format!("real-{name}"), r)?;
    }
    // Offsets after the variable-length KDF parameters (`src/crypto/registry.rs`): params len
    // u32 at 12, params, salt [16], check [16], nonce [12], body len u32, body.
    let params_len =
        reg.get(12..16).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
    let salt = 16 + params_len as usize;
    let (check, body_len) = (salt + 16, salt + 44);
    c.add("key_registry", "truncated-to-header", &reg[..reg.len().min(body_len + 4)])?;
    // Edited, with the crc made to match: past the crc to the later checks.
    let edits = [
        ("bad-magic", 0),
        ("bad-version", 8),
        ("kdf-argon2id-without-params", 10),
        ("bad-check-value", check),
        ("bad-body", body_len + 8),
    ];
    for (name, at) in edits {
        let mut r = reg.clone();
        if let Some(b) = r.get_mut(at) {
            *b ^= 0x01;
        }
        fix_registry_crc(&mut r);
        c.add("key_registry", &format!("{name}-crc-fixed"), &r)?;
    }
    // Length fields past the end of the file.
    for (name, at) in [("huge-params-len", 12), ("huge-body-len", body_len)] {
        let mut r = reg.clone();
        if let Some(len) = r.get_mut(at..at + 4) {
            len.copy_from_slice(&u32::MAX.to_le_bytes());
        }
        fix_registry_crc(&mut r);
        c.add("key_registry", &format!("{name}-crc-fixed"), &r)?;
    }
    Ok(())
}

fn file_header_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    let valid = plain_file_header(*b"SEALSST\0", 1, [0; 32]);
    c.add("file_header", "plain-sst-1-valid", &valid)?;
    let salted: [u8; 32] = noise(32, 3).try_into().map_err(|_| "salt length")?;
    c.add("file_header", "plain-sst-1-salted", &plain_file_header(*b"SEALSST\0", 1, salted))?;
    c.add("file_header", "plain-wal-1", &plain_file_header(*b"SEALWAL\0", 1, [0; 32]))?;
    c.add("file_header", "plain-sst-1-clear-part-only", &valid[..64])?;
    let mut tail = valid.clone();
    tail.extend_from_slice(&decode::seal_for_fuzzing(0, b"first block"));
    c.add("file_header", "plain-sst-1-with-first-block", &tail)?;
    for (name, h) in &real.headers {
        c.add("file_header", &format!("real-{name}"), h)?;
    }
    Ok(())
}

fn main() -> BoxResult<()> {
    let root = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus"),
    };
    let mut real = Real::default();
    plain_database(&mut real)?;
    let raw = || MasterKey::from_bytes(FUZZ_KEY);
    encrypted_database(&mut real, raw(), Cipher::Aes256Gcm, "aes", true)?;
    encrypted_database(&mut real, raw(), Cipher::ChaCha20Poly1305, "chacha", true)?;
    // A passphrase registry (Argon2id parameters in the header; the decoder's raw key does not
    // open it), at the lowest cost.
    let pass = MasterKey::from_passphrase_with_cost("fuzz", 8, 1, 1);
    encrypted_database(&mut real, pass, Cipher::Aes256Gcm, "passphrase", false)?;
    let mut c = Corpus { root, written: 0, bytes: 0 };
    let targets: [(&str, Make); 7] = [
        ("sealed_block", sealed_block_seeds),
        ("data_block", data_block_seeds),
        ("bloom_filter", bloom_filter_seeds),
        ("wal_record", wal_record_seeds),
        ("manifest", manifest_seeds),
        ("key_registry", key_registry_seeds),
        ("file_header", file_header_seeds),
    ];
    for (target, make) in targets {
        c.reset(target)?;
        let before = c.written;
        make(&mut c, &real)?;
        println!("{target:>14}: {} seeds", c.written - before);
    }
    println!("wrote {} seeds, {} bytes, under {}", c.written, c.bytes, c.root.display());
    Ok(())
}
