//! Targeted regressions for "no silent loss" (issue 12): each test builds a small database,
//! makes one change an attacker with write access to the directory could make, and checks
//! that sealdb reports `Corruption` (or answers exactly right) rather than dropping
//! acknowledged writes, serving older values, or deleting data on the strength of
//! unauthenticated bytes. `tests/tamper_sweep.rs` sweeps the same classes broadly.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{files_with_suffix, show, show_opt, Mode};
use sealdb::{MasterKey, Options, DB};

/// Values of at least this many bytes go to the value log.
const THRESHOLD: usize = 64;
/// Bytes of each value-log value.
const VALUE_LEN: usize = 400;

fn options(dir: &Path, mode: Mode, key: &MasterKey) -> Options {
    common::options(dir, mode, key)
        .background_work(false)
        .value_threshold(THRESHOLD)
        .vlog_segment_size(64 << 10)
        .memtable_size(64 << 10)
        .max_immutable_memtables(16)
}

fn key(i: usize) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// A value of `VALUE_LEN` bytes unique to (`i`, `round`), incompressible enough.
fn value(i: usize, round: u8) -> Vec<u8> {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(round);
    (0..VALUE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// The crc32 (IEEE) of `data`, as the format uses it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

/// The sealed blocks after the file header of a WAL or segment: (offset, total length).
fn blocks(data: &[u8], mode: Mode) -> Vec<(usize, usize)> {
    let tag = if mode.encrypted() { 16 } else { 4 };
    let mut pos = 64 + 32 + tag;
    let mut out = Vec::new();
    while pos + 32 <= data.len() && data[pos] == 1 {
        let stored = u32::from_le_bytes(data[pos + 20..pos + 24].try_into().expect("u32"));
        let total = 32 + stored as usize + tag;
        if pos + total > data.len() {
            break;
        }
        out.push((pos, total));
        pos += total;
    }
    out
}

/// Sets the stored length of the sealed block at `off` to `stored` and recomputes its header
/// crc, as anyone can: only authentication can tell.
fn forge_stored_len(data: &mut [u8], off: usize, stored: u32) {
    data[off + 20..off + 24].copy_from_slice(&stored.to_le_bytes());
    let crc = crc32(&data[off..off + 28]);
    data[off + 28..off + 32].copy_from_slice(&crc.to_le_bytes());
}

/// Every key of `model` read with `get`: `Ok` with the right value, or an error that reports
/// corruption. Returns the keys that read right. Panics on a wrong answer.
fn check_reads(db: &DB, model: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) -> usize {
    let mut right = 0;
    for (k, v) in model {
        match db.get(k) {
            Ok(got) => {
                assert_eq!(
                    got.as_deref(),
                    Some(v.as_slice()),
                    "{what}: get {} returned {}, expected the acknowledged value",
                    show(k),
                    show_opt(got.as_deref())
                );
                right += 1;
            }
            Err(e) => assert!(e.is_corruption(), "{what}: get {}: {e:?}", show(k)),
        }
    }
    right
}

/// Opens `dir`: `None` if the open reports corruption (acceptable), else the database.
fn open_or_corruption(o: Options, what: &str) -> Option<DB> {
    match DB::open(o) {
        Ok(db) => Some(db),
        Err(e) if e.is_corruption() => None,
        Err(e) => panic!("{what}: open: {e:?}"),
    }
}

/// Writes values that fill more than two segments through WAL records that are synced but
/// never flushed: the WAL points into closed segments and the active one.
fn unflushed_over_segments(dir: &Path, mode: Mode, mk: &MasterKey) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = DB::open(options(dir, mode, mk)).expect("open");
    let mut model = BTreeMap::new();
    for i in 0..400 {
        db.put(key(i), value(i, 0)).expect("put");
        model.insert(key(i), value(i, 0));
    }
    db.sync().expect("sync");
    drop(db);
    model
}

/// Issue 12, class 1: a closed value-log segment cut short (its last entry gone) is no crash
/// state: replay must not stop there and drop every later, synced WAL record.
#[test]
fn cut_closed_segment_does_not_cut_recovery() {
    for mode in [Mode::Plain, Mode::Aes, Mode::ChaCha] {
        let root = common::fast_tempdir();
        let dir = root.path().join("db");
        let mk = MasterKey::generate();
        let model = unflushed_over_segments(&dir, mode, &mk);
        let segments = files_with_suffix(&dir, ".vlog");
        assert!(segments.len() >= 3, "{mode:?}: segments {segments:?}");
        let first = dir.join(&segments[0]);
        let mut data = std::fs::read(&first).expect("read segment");
        let last = *blocks(&data, mode).last().expect("entries");
        data.truncate(last.0);
        std::fs::write(&first, data).expect("write segment");

        let what = format!("{mode:?}, first closed segment cut before its last entry");
        if let Some(db) = open_or_corruption(options(&dir, mode, &mk), &what) {
            let right = check_reads(&db, &model, &what);
            // Only the value in the cut entry may be unreadable.
            assert!(right + 1 >= model.len(), "{what}: {right} of {} keys read", model.len());
        }
    }
}

/// Builds a database whose first segment is closed, holds live values and garbage (half its
/// keys overwritten), and whose tree is flushed: `compact()` collects it.
fn gc_candidate(dir: &Path, mode: Mode, mk: &MasterKey) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db = DB::open(options(dir, mode, mk)).expect("open");
    let mut model = BTreeMap::new();
    for i in 0..300 {
        db.put(key(i), value(i, 0)).expect("put");
        model.insert(key(i), value(i, 0));
    }
    db.flush().expect("flush");
    for i in (0..300).step_by(2) {
        db.put(key(i), value(i, 1)).expect("put");
        model.insert(key(i), value(i, 1));
    }
    db.flush().expect("flush");
    db.close().expect("close");
    model
}

/// Forges the stored length of an entry in the middle of the first (closed) segment to run one
/// byte past the end of the file, with the header crc recomputed: a scan that trusts it sees a
/// torn tail and skips every later entry.
fn forge_mid_entry(dir: &Path, mode: Mode) -> String {
    let segments = files_with_suffix(dir, ".vlog");
    assert!(segments.len() >= 2, "{mode:?}: segments {segments:?}");
    let path = dir.join(&segments[0]);
    let mut data = std::fs::read(&path).expect("read segment");
    let entries = blocks(&data, mode);
    let (off, _) = entries[entries.len() / 3];
    let tag = if mode.encrypted() { 16 } else { 4 };
    let past_end = u32::try_from(data.len() - off - 32 - tag + 1).expect("u32");
    forge_stored_len(&mut data, off, past_end);
    std::fs::write(&path, data).expect("write segment");
    format!("{mode:?}, {} entry at {off} forged to run past the end", segments[0])
}

/// Runs `call` on the database and checks that it lost nothing: if it returns `Ok`, every key
/// that read right before reads right now and after a reopen; an error must be corruption.
fn no_loss(
    dir: &Path,
    mode: Mode,
    mk: &MasterKey,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    what: &str,
    call: impl FnOnce(&DB) -> sealdb::Result<()>,
) {
    let Some(db) = open_or_corruption(options(dir, mode, mk), what) else { return };
    let before = check_reads(&db, model, what);
    match call(&db) {
        Ok(()) => {
            let after = check_reads(&db, model, what);
            assert_eq!(after, before, "{what}: returned Ok but lost {} values", before - after);
            drop(db);
            let db = DB::open(options(dir, mode, mk))
                .unwrap_or_else(|e| panic!("{what}: returned Ok, then the reopen fails: {e}"));
            let again = check_reads(&db, model, what);
            assert_eq!(again, before, "{what}: after a reopen {} values are lost", before - again);
        }
        Err(e) => assert!(e.is_corruption(), "{what}: {e:?}"),
    }
}

/// Issue 12, class 2: value-log GC must not collect a segment on the strength of an
/// unauthenticated entry length, returning `Ok` after dropping the live values behind it.
#[test]
fn gc_does_not_trust_a_forged_entry_length() {
    for mode in [Mode::Plain, Mode::Aes, Mode::ChaCha] {
        let root = common::fast_tempdir();
        let dir = root.path().join("db");
        let mk = MasterKey::generate();
        let model = gc_candidate(&dir, mode, &mk);
        let what = format!("compact, {}", forge_mid_entry(&dir, mode));
        no_loss(&dir, mode, &mk, &model, &what, DB::compact);
    }
}

/// Issue 12, class 2: re-sealing must not write a truncated copy of a segment (and destroy the
/// old key) on the strength of an unauthenticated entry length.
#[test]
fn reencrypt_does_not_trust_a_forged_entry_length() {
    for mode in [Mode::Aes, Mode::ChaCha] {
        let root = common::fast_tempdir();
        let dir = root.path().join("db");
        let mk = MasterKey::generate();
        let model = gc_candidate(&dir, mode, &mk);
        let what = format!("rotate_data_key + reencrypt, {}", forge_mid_entry(&dir, mode));
        no_loss(&dir, mode, &mk, &model, &what, |db| {
            db.rotate_data_key()?;
            db.reencrypt()
        });
    }
}

/// Issue 12, class 3: the WAL the manifest names must exist; deleting every WAL must not
/// open silently without the acknowledged writes they held.
#[test]
fn deleting_every_wal_is_corruption() {
    for mode in [Mode::Plain, Mode::Aes, Mode::ChaCha] {
        let root = common::fast_tempdir();
        let dir = root.path().join("db");
        let mk = MasterKey::generate();
        let db = DB::open(options(&dir, mode, &mk)).expect("open");
        db.put(b"flushed", b"1").expect("put");
        db.flush().expect("flush");
        db.put(b"in the WAL", b"2").expect("put");
        db.sync().expect("sync");
        drop(db);
        let wals = files_with_suffix(&dir, ".wal");
        assert!(!wals.is_empty(), "{mode:?}: no WAL");
        for w in &wals {
            std::fs::remove_file(dir.join(w)).expect("remove WAL");
        }
        let e = common::open_err(DB::open(options(&dir, mode, &mk)), "open without its WALs");
        assert!(e.is_corruption(), "{mode:?}: every WAL deleted: {e:?}");
    }
}

/// An encrypted database with a few audit events (opens, a rotation), closed.
fn audited(dir: &Path, mode: Mode, mk: &MasterKey) {
    for _ in 0..2 {
        let db = DB::open(options(dir, mode, mk)).expect("open");
        db.put(b"k", b"v").expect("put");
        db.rotate_data_key().expect("rotate");
        db.close().expect("close");
    }
}

/// Issue 12, class 4: a deleted audit log and dropped trailing lines must be reported by
/// `verify_audit_log` (the chain is anchored outside the log), without affecting the data.
#[test]
fn dropped_audit_lines_are_detected() {
    for mode in [Mode::Aes, Mode::ChaCha] {
        for cut in ["the whole log", "the last line"] {
            let root = common::fast_tempdir();
            let dir = root.path().join("db");
            let mk = MasterKey::generate();
            audited(&dir, mode, &mk);
            let log = dir.join("AUDIT.log");
            let data = std::fs::read(&log).expect("read audit log");
            if cut == "the whole log" {
                std::fs::remove_file(&log).expect("remove audit log");
            } else {
                let body = &data[..data.len() - 1];
                let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                std::fs::write(&log, &data[..start]).expect("write audit log");
            }
            let db = DB::open(options(&dir, mode, &mk)).expect("the data must not notice");
            assert_eq!(db.get(b"k").expect("get").as_deref(), Some(&b"v"[..]), "{mode:?}");
            match db.verify_audit_log() {
                Ok(n) => panic!("{mode:?}: {cut} of AUDIT.log dropped, verify returned Ok({n})"),
                Err(e) => assert!(e.is_corruption(), "{mode:?}: {cut} dropped: {e:?}"),
            }
        }
    }
}

/// Issue 12, class 4: a torn last audit line (a crash mid-append) is repaired at open and the
/// chain verifies from then on, also after more events.
#[test]
fn torn_audit_line_is_repaired() {
    for mode in [Mode::Aes, Mode::ChaCha] {
        let root = common::fast_tempdir();
        let dir = root.path().join("db");
        let mk = MasterKey::generate();
        audited(&dir, mode, &mk);
        let log = dir.join("AUDIT.log");
        let mut data = std::fs::read(&log).expect("read audit log");
        // The first 30 bytes of a line, without its newline.
        let first_line = data.iter().position(|&b| b == b'\n').expect("a complete line");
        assert!(first_line > 30, "{mode:?}: audit line of {first_line} bytes");
        let torn = data[..30].to_vec();
        data.extend_from_slice(&torn);
        std::fs::write(&log, &data).expect("write audit log");
        for round in 0..2 {
            let db = DB::open(options(&dir, mode, &mk)).expect("open with a torn audit line");
            db.rotate_data_key().expect("rotate");
            if let Err(e) = db.verify_audit_log() {
                panic!("{mode:?}: open {round} after a torn last line: {e}");
            }
            db.close().expect("close");
        }
    }
}
