//! Regenerates the seed corpora of the fuzz targets, `fuzz/corpus/<target>/`.
//!
//! `cargo run --example make_fuzz_seeds [OUT_DIR]` (default: `fuzz/corpus` of this crate).
//! Each target's directory is emptied and refilled with a handful of small, meaningful inputs
//! for the matching function of `sealdb::decode`: hand-encoded inputs that follow the formats
//! documented in `src/`, and blocks, WAL records, manifests, headers, registries and audit logs
//! taken from real databases written through the public API. Seeds that hold random salts or
//! times (key registries, encrypted file headers, real audit logs) differ from one run to the
//! next; the rest are deterministic. The `model_ops` seeds are not decoder inputs but operation
//! scripts (see `fuzz/fuzz_targets/model_ops.rs`).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

/// A live segment of a version-2 manifest.
#[derive(Clone, Copy)]
struct SegmentEntry {
    number: u64,
    discard: u64,
    len: u64,
    flags: u8,
}

/// A version-2 manifest payload (`src/manifest/mod.rs`): version 1's layout with segment
/// lengths and flags, then the rotation counter and the audit anchor.
fn manifest_v2(
    head: (u64, u64, u64),
    files: &[FileEntry],
    segments: &[SegmentEntry],
    rotation: (u32, u64),
    audit: (u64, [u8; 32]),
) -> Vec<u8> {
    let mut out = manifest(head.0, head.1, head.2, files, &[]);
    out[0] = 2;
    out.truncate(out.len() - 4);
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    for s in segments {
        out.extend_from_slice(&s.number.to_le_bytes());
        out.extend_from_slice(&s.discard.to_le_bytes());
        out.extend_from_slice(&s.len.to_le_bytes());
        out.push(s.flags);
    }
    out.extend_from_slice(&rotation.0.to_le_bytes());
    out.extend_from_slice(&rotation.1.to_le_bytes());
    out.extend_from_slice(&audit.0.to_le_bytes());
    out.extend_from_slice(&audit.1);
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
    /// (name, bytes) of `AUDIT.log` files (their MACs under their database's audit key).
    audit_logs: Vec<(String, Vec<u8>)>,
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

/// An encrypted database under the fuzzing key taken through key events (opens, data-key
/// rotations, re-encryption that destroys the retired keys, a master-key rotation): its
/// `AUDIT.log`, which `DB::verify_audit_log` accepts. Its MACs are under the database's own audit
/// key, so `decode::audit_log` (fuzzing key) rejects them at the first line: they seed the
/// format, not the chain.
fn audited_database(real: &mut Real, cipher: Cipher, name: &str, full: bool) -> BoxResult<()> {
    const NEW_MASTER: [u8; 32] = [0xa5; 32];
    let dir = tempfile::tempdir()?;
    let open = |key: [u8; 32]| {
        let enc = Encryption::new(MasterKey::from_bytes(key)).cipher(cipher);
        DB::open(Options::new(dir.path()).with_encryption(enc).background_work(false))
    };
    let db = open(FUZZ_KEY)?;
    fill(&db)?;
    db.rotate_data_key()?;
    if full {
        db.flush()?;
        db.rotate_data_key()?;
        db.reencrypt()?;
    }
    db.rotate_master_key(MasterKey::from_bytes(NEW_MASTER))?;
    db.close()?;
    let db = open(NEW_MASTER)?;
    let events = db.verify_audit_log()?;
    db.close()?;
    let log = fs::read(dir.path().join("AUDIT.log"))?;
    let lines = String::from_utf8(log.clone())?.lines().count();
    assert_eq!(lines, events, "{name}: one line per event");
    real.audit_logs.push((name.into(), log));
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
    // Version 2.
    let segs = [
        SegmentEntry { number: 6, discard: 0, len: 4096, flags: 0 },
        SegmentEntry { number: 7, discard: 100, len: 112, flags: 1 },
    ];
    let anchor = (3, [0xab; 32]);
    c.add("manifest", "v2-no-files", &manifest_v2((2, 0, 1), &[], &[], (0, 0), (0, [0; 32])))?;
    c.add(
        "manifest",
        "v2-one-file-two-segments",
        &manifest_v2((9, 9, 8), &one, &segs, (1, 5000), anchor),
    )?;
    let edge_seg =
        [SegmentEntry { number: u64::MAX - 1, discard: u64::MAX, len: u64::MAX, flags: 1 }];
    let edge_v2 = manifest_v2(
        (u64::MAX, MAX_SEQ, u64::MAX),
        &edge,
        &edge_seg,
        (u32::MAX, u64::MAX),
        (u64::MAX, [0xff; 32]),
    );
    c.add("manifest", "v2-edge-values", &edge_v2)?;
    let mut bad_flags = segs;
    bad_flags[0].flags = 2;
    c.add(
        "manifest",
        "v2-unknown-segment-flag",
        &manifest_v2((9, 9, 8), &one, &bad_flags, (1, 0), anchor),
    )?;
    let mut two_active = bad_flags;
    two_active[0].flags = 1;
    c.add(
        "manifest",
        "v2-two-active-segments",
        &manifest_v2((9, 9, 8), &one, &two_active, (1, 0), anchor),
    )?;
    c.add(
        "manifest",
        "v2-anchor-without-lines",
        &manifest_v2((2, 0, 1), &[], &[], (0, 0), (0, [1; 32])),
    )?;
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
    // Valid headers of table 1 made by the engine, plain and under the decoder's fixed ring:
    // the encrypted ones reach the key lookup and the tag check of the encrypted branch.
    for (which, name) in [(0, "plain"), (1, "aes"), (2, "chacha")] {
        let h = decode::file_header_for_fuzzing(which);
        assert!(decode::file_header(&h) > 0, "file_header seed fuzz-ring-{name} does not open");
        c.add("file_header", &format!("fuzz-ring-{name}-sst-1"), &h)?;
    }
    let aes = decode::file_header_for_fuzzing(1);
    c.add("file_header", "fuzz-ring-aes-sst-1-clear-part-only", &aes[..64.min(aes.len())])?;
    Ok(())
}

fn vlog_entry_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
    // Entries: sequence ‖ length-prefixed key ‖ value (the rest of the payload).
    let sizes: [(&str, usize, usize); 6] = [
        ("empty-key-and-value", 0, 0),
        ("small", 5, 11),
        ("at-threshold", 8, 256),
        ("long-key", 300, 40),
        ("large-value", 16, 5000),
        ("empty-value", 9, 0),
    ];
    for (name, k, v) in sizes {
        let key: Vec<u8> = (0..k).map(|i| b'a' + (i % 26) as u8).collect();
        let entry = decode::vlog_entry_for_fuzzing(&key, &noise(v, 0x51 + v as u64));
        c.add("vlog_entry", &format!("entry-{name}"), &entry)?;
    }
    // A key length prefix that runs past the end of the payload.
    let mut cut = decode::vlog_entry_for_fuzzing(&[b'k'; 200], b"");
    cut.truncate(cut.len() - 50);
    c.add("vlog_entry", "entry-key-past-end", &cut)?;
    // Pointers (20 bytes): segment u64 ‖ offset u64 ‖ sealed length u32.
    c.add("vlog_entry", "pointer", &pointer(4, 100, 1078))?;
    c.add("vlog_entry", "pointer-edge-values", &pointer(u64::MAX, u64::MAX, u32::MAX))?;
    c.add("vlog_entry", "pointer-with-trailing-byte", &[pointer(1, 2, 3), vec![0]].concat())?;
    Ok(())
}

/// A table footer payload (`src/sstable/table.rs`): the (offset u64, sealed length u32) handles
/// of the index, filter and properties blocks.
fn table_footer(handles: [(u64, u32); 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(36);
    for (offset, len) in handles {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out
}

fn table_footer_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
    // `decode::table_footer` checks the handles against data in [100, 1 MiB).
    const END: u64 = 1 << 20;
    let valid: [(&str, [(u64, u32); 3]); 4] = [
        ("small-table", [(4000, 300), (4300, 120), (4420, 80)]),
        ("no-filter", [(4000, 300), (0, 0), (4300, 80)]),
        ("first-byte", [(100, 1), (101, 1), (102, 1)]),
        ("up-to-the-end", [(END - 300, 100), (END - 200, 100), (END - 100, 100)]),
    ];
    for (name, h) in valid {
        let footer = table_footer(h);
        assert!(decode::table_footer(&footer) > 0, "table_footer seed {name} does not decode");
        c.add("table_footer", &format!("valid-{name}"), &footer)?;
    }
    let invalid: [(&str, [(u64, u32); 3]); 6] = [
        ("index-in-header", [(99, 300), (4300, 120), (4420, 80)]),
        ("filter-past-end", [(4000, 300), (END - 10, 120), (4420, 80)]),
        ("props-past-end", [(4000, 300), (4300, 120), (END, 1)]),
        ("offset-overflow", [(u64::MAX, u32::MAX), (4300, 120), (4420, 80)]),
        ("no-filter-bad-offset", [(4000, 300), (u64::MAX, 0), (4300, 80)]),
        ("all-zero", [(0, 0); 3]),
    ];
    for (name, h) in invalid {
        c.add("table_footer", &format!("out-of-range-{name}"), &table_footer(h))?;
    }
    let valid = table_footer(valid[0].1);
    c.add("table_footer", "short-35-bytes", &valid[..35])?;
    c.add("table_footer", "long-37-bytes", &[valid, vec![0]].concat())?;
    Ok(())
}

/// An audit log (`src/crypto/audit.rs`) of `bodies` (`{"ts":..,"event":"..",..` without the
/// closing brace), each line's MAC chained under the fuzzing key.
fn audit_log(bodies: &[&str]) -> Vec<u8> {
    let mut prev = [0u8; 32];
    let mut out = String::new();
    for body in bodies {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&FUZZ_KEY).expect("HMAC takes any key");
        m.update(&prev);
        m.update(body.as_bytes());
        prev = m.finalize().into_bytes().into();
        let _ = writeln!(out, "{body},\"mac\":\"{}\"}}", hex::encode(prev));
    }
    out.into_bytes()
}

fn audit_log_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
    const OPEN: &str = r#"{"ts":1763870000,"event":"open","key_id":1,"keys":1"#;
    const ROTATE: &str = r#"{"ts":1763870001,"event":"rotate_data_key","key_id":2"#;
    const MASTER: &str = r#"{"ts":1763870002,"event":"rotate_master_key""#;
    const START: &str = r#"{"ts":1763870003,"event":"reencrypt_start","bytes_left":4096"#;
    const FINISH: &str = r#"{"ts":1763870004,"event":"reencrypt_finish","bytes":4096"#;
    const DESTROYED: &str = r#"{"ts":1763870005,"event":"key_destroyed","key_id":1"#;
    let every = audit_log(&[OPEN, ROTATE, MASTER, START, FINISH, DESTROYED]);
    let three = audit_log(&[OPEN, ROTATE, DESTROYED]);
    for (name, log) in [("one-line", audit_log(&[OPEN])), ("three-lines", three.clone())] {
        assert!(decode::audit_log(&log) > 0, "audit_log seed {name} does not verify");
        c.add("audit_log", &format!("fuzz-key-{name}"), &log)?;
    }
    c.add("audit_log", "fuzz-key-every-event", &every)?;
    let text = String::from_utf8(three)?;
    c.add("audit_log", "fuzz-key-no-final-newline", text.trim_end().as_bytes())?;
    c.add("audit_log", "fuzz-key-crlf", text.replace('\n', "\r\n").as_bytes())?;
    let edited = text.replacen(r#""key_id":2"#, r#""key_id":3"#, 1);
    c.add("audit_log", "fuzz-key-edited-line-2", edited.as_bytes())?;
    let lines: Vec<&str> = text.lines().collect();
    let reordered = [lines[1], lines[0], lines[2], ""].join("\n");
    c.add("audit_log", "fuzz-key-reordered", reordered.as_bytes())?;
    let blank = [lines[0], "", lines[1], ""].join("\n");
    c.add("audit_log", "fuzz-key-blank-line", blank.as_bytes())?;
    // Lines the parser rejects before any MAC: no mac field, a short mac, a mac that is not
    // hex, a second mac field in the body, bytes that are not UTF-8.
    c.add("audit_log", "empty", b"")?;
    c.add("audit_log", "no-mac", format!("{OPEN}}}\n").as_bytes())?;
    c.add("audit_log", "short-mac", format!("{OPEN},\"mac\":\"00ff\"}}\n").as_bytes())?;
    let not_hex = "zz".repeat(32);
    c.add("audit_log", "mac-not-hex", format!("{OPEN},\"mac\":\"{not_hex}\"}}\n").as_bytes())?;
    let twice = audit_log(&[&format!("{OPEN},\"mac\":\"{}\"", "0".repeat(64))]);
    c.add("audit_log", "fuzz-key-mac-field-in-body", &twice)?;
    c.add("audit_log", "not-utf8", &[text.as_bytes(), &[0xff, 0xfe, b'\n']].concat())?;
    for (name, log) in &real.audit_logs {
        c.add("audit_log", &format!("real-{name}"), log)?;
    }
    Ok(())
}

/// One operation of a `model_ops` input (`fuzz/common/model_ops.rs` has the format). Keys
/// are indexes into its key space, lengths and fills its length and fill bytes.
#[derive(Clone)]
enum M {
    Put(u8, u8, u8),
    Delete(u8),
    /// (delete, key, length, fill) per op.
    Batch(Vec<(bool, u8, u8, u8)>),
    Flush,
    Compact,
    Reopen,
    Get(u8),
    Scan,
    Range(u8, u8),
    /// Call (0 write, 1 sync, 2 read, 3 create, 4 rename), calls to skip, fault (0 error,
    /// 1 short write, 2 ENOSPC), sticky.
    Arm(u8, u8, u8, bool),
    Clear,
    Sync,
    TakeSnapshot,
    CheckSnapshot,
    Rotate,
    Reencrypt,
}

/// Length bytes of `model_ops`: 0..=127 are themselves, 128 is 255, 129 is 256, then 37-byte
/// steps (200 is 2883, 255 is 4918).
const SMALL: u8 = 40;
const BIG: u8 = 200;
const HUGE: u8 = 255;

/// Encodes a `model_ops` input: mode (0 plain, 1 AES-256-GCM, 2 ChaCha20-Poly1305), then
/// the ops.
fn model_script(mode: u8, ops: &[M]) -> Vec<u8> {
    let mut out = vec![mode];
    for op in ops {
        match op.clone() {
            M::Put(k, len, fill) => out.extend([0, k, len, fill]),
            M::Delete(k) => out.extend([3, k]),
            M::Batch(ops) => {
                out.extend([4, (ops.len() as u8).saturating_sub(1)]);
                for (delete, k, len, fill) in ops {
                    out.extend([u8::from(!delete), k, len, fill]);
                }
            }
            M::Flush => out.push(5),
            M::Compact => out.push(6),
            M::Reopen => out.push(7),
            M::Get(k) => out.extend([8, k]),
            M::Scan => out.push(9),
            M::Range(lo, hi) => out.extend([10, lo, hi]),
            M::Arm(call, skip, fault, sticky) => {
                out.extend([11, call, skip, fault | if sticky { 0x80 } else { 0 }]);
            }
            M::Clear => out.push(12),
            M::Sync => out.push(13),
            M::TakeSnapshot => out.extend([14, 0]),
            M::CheckSnapshot => out.extend([14, 1]),
            M::Rotate => out.extend([15, 0]),
            M::Reencrypt => out.extend([15, 1]),
        }
    }
    out
}

fn model_ops_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
    use M::{
        Arm, Batch, CheckSnapshot, Clear, Compact, Delete, Flush, Get, Put, Range, Reencrypt,
        Reopen, Rotate, Scan, Sync, TakeSnapshot,
    };
    // Fault calls and kinds.
    const WRITE: u8 = 0;
    const SYNC: u8 = 1;
    const READ: u8 = 2;
    const CREATE: u8 = 3;
    const RENAME: u8 = 4;
    const ERROR: u8 = 0;
    const SHORT: u8 = 1;
    const NOSPACE: u8 = 2;
    // Puts of every size class on the first keys, odd fills (noise) for the big ones.
    let fill: Vec<M> = (0..12u8)
        .map(|i| Put(i, [0, SMALL, 128, 129, BIG, HUGE][usize::from(i % 6)], i * 2 + 1))
        .collect();
    let many_big: Vec<M> = (0..40u8).map(|i| Put(i, 180 + i, i | 1)).collect();
    // Batches of inline values: 64 KiB of them fill the memtable, which switches to a new WAL.
    let inline_batches: Vec<M> = (0..70u8)
        .map(|i| Batch((0..8).map(|j| (false, i.wrapping_add(j), 100 + (i + j) % 28, i)).collect()))
        .collect();
    let batch = |k: u8| {
        Batch(vec![
            (false, k, SMALL, 2),
            (false, k + 1, BIG, 3),
            (true, k + 2, 0, 0),
            (false, 20, HUGE, 5),
        ])
    };
    let scripts: Vec<(&str, u8, Vec<M>)> = vec![
        (
            "plain-puts-flush-compact",
            0,
            [&fill[..], &[Delete(2), Get(2), Get(4), Scan, Flush, Put(3, 10, 4), Delete(4)]]
                .concat()
                .into_iter()
                .chain([Scan, Compact, Get(5), Range(1, 9), Reopen, Scan])
                .collect(),
        ),
        (
            "aes-batches-snapshot-reopen",
            1,
            [&fill[..6], &[batch(2), TakeSnapshot, batch(6), Delete(0), Flush, CheckSnapshot]]
                .concat()
                .into_iter()
                .chain([Compact, CheckSnapshot, Range(0, 23), Reopen, Scan])
                .collect(),
        ),
        (
            "chacha-rotate-reencrypt",
            2,
            [&fill[..], &[Flush, Rotate, Put(1, BIG, 9), Delete(3), Reencrypt, Scan, Reopen, Scan]]
                .concat(),
        ),
        (
            "plain-memtable-and-segment-switches",
            0,
            [&many_big[..], &many_big[..20], &[Scan, Compact, Scan, Reopen, Get(7)]].concat(),
        ),
        (
            "plain-memtable-switches",
            0,
            [&inline_batches[..], &[Scan, Flush, Get(3), Compact, Reopen, Scan]].concat(),
        ),
        (
            "aes-memtable-switch-wal-create-fails",
            1,
            [&inline_batches[..30], &[Arm(CREATE, 0, ERROR, false)], &inline_batches[30..]]
                .concat()
                .into_iter()
                .chain([Scan])
                .collect(),
        ),
        (
            "plain-wal-short-write",
            0,
            [&fill[..6], &[Arm(WRITE, 0, SHORT, false), Put(9, SMALL, 2), Scan, Put(10, SMALL, 4)]]
                .concat(),
        ),
        (
            "aes-vlog-short-write-then-gc",
            1,
            [
                &fill[..],
                &[Arm(WRITE, 0, SHORT, false), Put(9, HUGE, 3), Put(1, HUGE, 7), Delete(5)],
            ]
            .concat()
            .into_iter()
            .chain([Compact, Scan, Reopen, Compact, Scan])
            .collect(),
        ),
        (
            "plain-batch-fails-on-wal",
            0,
            [&fill[..6], &[Arm(WRITE, 1, ERROR, false), batch(3), Scan]].concat(),
        ),
        (
            "chacha-sync-fails-after-batch",
            2,
            [&fill[..6], &[Arm(SYNC, 0, ERROR, true), batch(3), Sync, Scan]].concat(),
        ),
        (
            "plain-flush-nospace",
            0,
            [&fill[..], &[Arm(WRITE, 2, NOSPACE, true), Flush, Scan, Compact]].concat(),
        ),
        (
            "aes-compact-rename-fails",
            1,
            [&fill[..], &[Flush, Put(1, 3, 2), Flush, Arm(RENAME, 0, ERROR, false), Compact, Scan]]
                .concat(),
        ),
        (
            "plain-reads-fail",
            0,
            [&fill[..], &[Flush, Arm(READ, 1, ERROR, true), Get(3), Get(4), Scan, Range(2, 8)]]
                .concat()
                .into_iter()
                .chain([Clear, Get(3), Scan])
                .collect(),
        ),
        (
            "chacha-reopen-create-fails",
            2,
            [&fill[..6], &[Arm(CREATE, 1, ERROR, false), Reopen, Scan, Put(2, BIG, 1), Reopen]]
                .concat(),
        ),
        (
            "aes-rotate-with-faults",
            1,
            [&fill[..], &[Arm(RENAME, 0, ERROR, false), Rotate, Arm(CREATE, 0, ERROR, false)]]
                .concat()
                .into_iter()
                .chain([Rotate, Put(0, BIG, 3), Arm(WRITE, 3, SHORT, true), Reencrypt, Scan])
                .collect(),
        ),
    ];
    for (name, mode, ops) in scripts {
        c.add("model_ops", name, &model_script(mode, &ops))?;
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
    audited_database(&mut real, Cipher::Aes256Gcm, "aes-rotations-reencrypt", true)?;
    audited_database(&mut real, Cipher::ChaCha20Poly1305, "chacha-one-rotation", false)?;
    let mut c = Corpus { root, written: 0, bytes: 0 };
    let targets: [(&str, Make); 11] = [
        ("sealed_block", sealed_block_seeds),
        ("data_block", data_block_seeds),
        ("bloom_filter", bloom_filter_seeds),
        ("wal_record", wal_record_seeds),
        ("manifest", manifest_seeds),
        ("key_registry", key_registry_seeds),
        ("file_header", file_header_seeds),
        ("vlog_entry", vlog_entry_seeds),
        ("table_footer", table_footer_seeds),
        ("audit_log", audit_log_seeds),
        ("model_ops", model_ops_seeds),
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
