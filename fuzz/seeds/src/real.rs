//! Real databases written through the public API, and the files and blocks taken from them.

use std::fs;
use std::path::{Path, PathBuf};

use sealdb::seal::{parse_header, BlockKind, FileCipher};
use sealdb::{Cipher, Encryption, MasterKey, Options, WriteBatch, DB};

use crate::{BoxResult, ENCRYPTED_HEADER_LEN, FUZZ_KEY, PLAIN_HEADER_LEN};

/// Bytes taken from real databases written through the public API.
#[derive(Default)]
pub(crate) struct Real {
    pub(crate) data_blocks: Vec<Vec<u8>>,
    pub(crate) index_blocks: Vec<Vec<u8>>,
    pub(crate) filters: Vec<Vec<u8>>,
    pub(crate) wal_payloads: Vec<Vec<u8>>,
    pub(crate) manifest_payloads: Vec<Vec<u8>>,
    /// (name, bytes) of file headers.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// (name, bytes) of key registries.
    pub(crate) registries: Vec<(String, Vec<u8>)>,
    /// (name, bytes) of `AUDIT.log` files (their MACs under their database's audit key).
    pub(crate) audit_logs: Vec<(String, Vec<u8>)>,
}

/// The number in a file name such as `000007.sst`.
pub(crate) fn file_number(p: &Path) -> u64 {
    p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

pub(crate) fn files_ending(dir: &Path, suffix: &str) -> BoxResult<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    v.sort();
    Ok(v)
}

/// Walks the sealed blocks of a plain file after its header, opening each as the first of
/// `kinds` it opens as.
pub(crate) fn open_blocks(
    bytes: &[u8],
    number: u64,
    kinds: &[BlockKind],
) -> Vec<(BlockKind, Vec<u8>)> {
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

pub(crate) fn fill(db: &DB) -> sealdb::Result<()> {
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
pub(crate) fn plain_database(real: &mut Real) -> BoxResult<()> {
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
pub(crate) fn encrypted_database(
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
pub(crate) fn audited_database(
    real: &mut Real,
    cipher: Cipher,
    name: &str,
    full: bool,
) -> BoxResult<()> {
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
