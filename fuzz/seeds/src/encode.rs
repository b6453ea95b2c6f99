//! Little encoders of the on-disk formats, written independently of the engine's own (they
//! follow `src/coding.rs`, `src/key.rs` and the docs), for hand-made inputs.

use sealdb::seal::{BlockKind, FileCipher};

use crate::{DELETE, PUT};

pub(crate) fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

pub(crate) fn put_len_prefixed(dst: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(dst, bytes.len() as u64);
    dst.extend_from_slice(bytes);
}

/// An encoded internal key: user key ‖ (seq << 8 | kind) as u64 LE (`src/key.rs`).
pub(crate) fn ikey(user: &[u8], seq: u64, kind: u8) -> Vec<u8> {
    let mut v = user.to_vec();
    v.extend_from_slice(&((seq << 8) | u64::from(kind)).to_le_bytes());
    v
}

/// A value-log pointer (`src/vlog/mod.rs`): segment u64 ‖ offset u64 ‖ sealed length u32.
pub(crate) fn pointer(segment: u64, offset: u64, len: u32) -> Vec<u8> {
    let mut v = segment.to_le_bytes().to_vec();
    v.extend_from_slice(&offset.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// Deterministic bytes that LZ4 cannot shrink (xorshift).
pub(crate) fn noise(len: usize, mut state: u64) -> Vec<u8> {
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
pub(crate) fn block(entries: &[(Vec<u8>, Vec<u8>)], restart_interval: usize) -> Vec<u8> {
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
pub(crate) type Op<'a> = (u8, &'a [u8], &'a [u8]);

/// A WAL record payload: first sequence u64 ‖ count u32 ‖ ops.
pub(crate) fn wal_record(first_seq: u64, ops: &[Op<'_>]) -> Vec<u8> {
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
pub(crate) struct FileEntry {
    pub(crate) level: u8,
    pub(crate) number: u64,
    pub(crate) size: u64,
    pub(crate) key_id: u32,
    pub(crate) max_seq: u64,
    pub(crate) smallest: Vec<u8>,
    pub(crate) largest: Vec<u8>,
}

impl FileEntry {
    /// A table of `level` numbered `number` whose keys run from `lo` to `hi` (user keys).
    pub(crate) fn new(level: u8, number: u64, lo: &[u8], hi: &[u8], max_seq: u64) -> FileEntry {
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

/// A version-1 manifest payload (`src/manifest/mod.rs`), with live value-log segments as
/// (number, discard bytes).
pub(crate) fn manifest(
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
pub(crate) struct SegmentEntry {
    pub(crate) number: u64,
    pub(crate) discard: u64,
    pub(crate) len: u64,
    pub(crate) flags: u8,
}

/// A version-2 manifest payload (`src/manifest/mod.rs`): version 1's layout with segment
/// lengths and flags, then the rotation counter and the audit anchor.
pub(crate) fn manifest_v2(
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
pub(crate) fn plain_file_header(magic: [u8; 8], number: u64, salt: [u8; 32]) -> Vec<u8> {
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
