//! The seeds of each target: one `<target>_seeds` function per fuzz target.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use sealdb::decode;

use crate::encode::{
    block, ikey, manifest, manifest_v2, noise, plain_file_header, pointer, wal_record, FileEntry,
    Op, SegmentEntry,
};
use crate::real::Real;
use crate::{BoxResult, Corpus, DELETE, FUZZ_KEY, MAX_SEQ, POINTER, PUT};

pub(crate) fn sealed_block_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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

pub(crate) fn data_block_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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

pub(crate) fn bloom_filter_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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

pub(crate) fn wal_record_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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

pub(crate) fn manifest_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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
    let no_files = manifest_v2((2, 0, 1), &[], &[], (0, 0), (0, [0; 32]));
    c.add("manifest", "v2-no-files", &no_files)?;
    let two = manifest_v2((9, 9, 8), &one, &segs, (1, 5000), anchor);
    c.add("manifest", "v2-one-file-two-segments", &two)?;
    let edge_seg =
        [SegmentEntry { number: u64::MAX - 1, discard: u64::MAX, len: u64::MAX, flags: 1 }];
    let edge_head = (u64::MAX, MAX_SEQ, u64::MAX);
    let edge_tail = ((u32::MAX, u64::MAX), (u64::MAX, [0xff; 32]));
    let edge_v2 = manifest_v2(edge_head, &edge, &edge_seg, edge_tail.0, edge_tail.1);
    c.add("manifest", "v2-edge-values", &edge_v2)?;
    let mut bad_flags = segs;
    bad_flags[0].flags = 2;
    let unknown_flag = manifest_v2((9, 9, 8), &one, &bad_flags, (1, 0), anchor);
    c.add("manifest", "v2-unknown-segment-flag", &unknown_flag)?;
    let mut two_active = segs;
    two_active[0].flags = 1;
    let both_active = manifest_v2((9, 9, 8), &one, &two_active, (1, 0), anchor);
    c.add("manifest", "v2-two-active-segments", &both_active)?;
    let no_lines = manifest_v2((2, 0, 1), &[], &[], (0, 0), (0, [1; 32]));
    c.add("manifest", "v2-anchor-without-lines", &no_lines)?;
    for (i, p) in real.manifest_payloads.iter().take(2).enumerate() {
        c.add("manifest", &format!("real-{i}"), p)?;
    }
    Ok(())
}

/// Replaces the registry's trailing crc32 (of every byte before it) after an edit, so the
/// decoder gets past the crc to the check value or the tag.
pub(crate) fn fix_registry_crc(reg: &mut [u8]) {
    if let Some(at) = reg.len().checked_sub(4) {
        let crc = crc32fast::hash(&reg[..at]);
        reg[at..].copy_from_slice(&crc.to_le_bytes());
    }
}

pub(crate) fn key_registry_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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

pub(crate) fn file_header_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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

pub(crate) fn vlog_entry_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
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
pub(crate) fn table_footer(handles: [(u64, u32); 3]) -> Vec<u8> {
    let mut out = Vec::with_capacity(36);
    for (offset, len) in handles {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    out
}

pub(crate) fn table_footer_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
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
pub(crate) fn audit_log(bodies: &[&str]) -> Vec<u8> {
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

pub(crate) fn audit_log_seeds(c: &mut Corpus, real: &Real) -> BoxResult<()> {
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
pub(crate) enum M {
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
pub(crate) const SMALL: u8 = 40;
pub(crate) const BIG: u8 = 200;
pub(crate) const HUGE: u8 = 255;

/// Encodes a `model_ops` input: mode (0 plain, 1 AES-256-GCM, 2 ChaCha20-Poly1305), then
/// the ops.
pub(crate) fn model_script(mode: u8, ops: &[M]) -> Vec<u8> {
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

pub(crate) fn model_ops_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
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

pub(crate) fn vlog_segment_seeds(c: &mut Corpus, _: &Real) -> BoxResult<()> {
    // A mode byte (cipher in `% 3`, bit 2: recorded closed) then segment 1's file.
    let big = noise(3000, 0x77);
    let entries: [(&[u8], &[u8]); 3] = [(b"a", b"first value"), (b"key-2", &big), (b"z", b"")];
    for (which, name) in [(0u8, "plain"), (1, "aes"), (2, "chacha")] {
        let file = decode::vlog_segment_for_fuzzing(usize::from(which), &entries);
        for (bit, how) in [(0u8, "active"), (4, "closed")] {
            let seed = [&[which | bit][..], &file].concat();
            assert!(
                decode::vlog_segment(&seed) > 0,
                "vlog_segment seed {name}-{how} does not walk"
            );
            c.add("vlog_segment", &format!("{name}-{how}-3-entries"), &seed)?;
        }
        // Torn tails a crash leaves: the last entry cut, and zeros after the last entry.
        let cut = [&[which][..], &file[..file.len() - 5]].concat();
        c.add("vlog_segment", &format!("{name}-active-cut-last"), &cut)?;
        let zeros = [&[which][..], &file, &[0u8; 64]].concat();
        c.add("vlog_segment", &format!("{name}-active-zero-tail"), &zeros)?;
    }
    Ok(())
}

pub(crate) fn backup_manifest_seeds(c: &mut Corpus, _real: &Real) -> BoxResult<()> {
    let files: [(&str, u64); 5] = [
        ("000004.sst", 4096),
        ("000005.vlog", 70_000),
        ("000007.sst", 0),
        ("AUDIT.log", 300),
        ("MANIFEST", 180),
    ];
    c.add("backup_manifest", "plain-empty", &decode::backup_manifest_for_fuzzing(false, &[]))?;
    c.add("backup_manifest", "plain-five", &decode::backup_manifest_for_fuzzing(false, &files))?;
    c.add("backup_manifest", "aes-one", &decode::backup_manifest_for_fuzzing(true, &files[..1]))?;
    c.add("backup_manifest", "aes-five", &decode::backup_manifest_for_fuzzing(true, &files))?;
    // The clear part alone (a torn object), and one with a trailing byte.
    let mut whole = decode::backup_manifest_for_fuzzing(false, &files);
    c.add("backup_manifest", "plain-clear-part-only", &whole[..whole.len() - 140])?;
    whole.push(0);
    c.add("backup_manifest", "plain-trailing-byte", &whole)?;
    Ok(())
}

pub(crate) fn export_stream_seeds(c: &mut Corpus, _real: &Real) -> BoxResult<()> {
    let big = vec![b'v'; 3000];
    let records: [(&[u8], &[u8]); 4] =
        [(b"a", b"1"), (b"key\x00\xff", b""), (b"user:0001", &big), (b"zz", b"last")];
    let default_only = [("", &records[..])];
    // The default keyspace's records, a named keyspace's, an empty keyspace, and one more.
    let keyspaces = [
        ("", &records[..1]),
        ("orders", &records[1..3]),
        ("empty", &[][..]),
        ("zz", &records[3..]),
    ];
    for (sealed, name) in [(false, "plain"), (true, "sealed")] {
        let stream = |version, groups: &[_]| decode::export_for_fuzzing(sealed, version, groups);
        c.add("export_stream", &format!("{name}-empty"), &stream(2, &[]))?;
        c.add("export_stream", &format!("{name}-four"), &stream(2, &default_only))?;
        c.add("export_stream", &format!("{name}-keyspaces"), &stream(2, &keyspaces))?;
        // Version 1: the default keyspace only.
        c.add("export_stream", &format!("{name}-v1-four"), &stream(1, &default_only))?;
    }
    // A stream cut inside its last chunk.
    let s = decode::export_for_fuzzing(false, 2, &keyspaces);
    c.add("export_stream", "plain-cut", &s[..s.len() - 10])?;
    Ok(())
}
