//! Memory maps (`Options::mmap`, default on): tables and value-log segments read through
//! read-only maps and the WAL written through one, and `pread`/`write` only when it is off.
//! The same values either way, before and after segments close, are collected and the
//! database reopens. Whether files are mapped is read from `/proc/self/maps` (Linux).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{options, Mode};
use sealdb::{MasterKey, DB};

/// Names of the files under `dir` this process has mapped.
fn mapped_files(dir: &Path) -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    let mut names: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with(&dir))
        .filter_map(|p| Path::new(p).file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether file name `n` ends in `.{ext}`.
fn has_ext(n: &str, ext: &str) -> bool {
    Path::new(n).extension().is_some_and(|e| e == ext)
}

fn value(i: u32, round: u32) -> Vec<u8> {
    let mut v = format!("value-{i:06}-round-{round}-").into_bytes();
    // Varied bytes so the values do not compress to nothing.
    v.extend(
        (0..4000u32)
            .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i * 7 + round) >> 13) as u8),
    );
    v
}

fn check(db: &DB, model: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()), "{what}: get {k:?}");
    }
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = db.iter().map(Result::unwrap).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(scanned == expected, "{what}: scan differs from the model");
}

/// Writes 4 KiB values over several 256 KiB segments (two rounds, the second overwriting
/// half), checking every value after each step, and returns the files mapped after reads of
/// the last step.
fn run(mode: Mode, mmap: bool) -> (Vec<String>, Vec<String>) {
    let dir = common::fast_tempdir();
    let key = MasterKey::generate();
    let opts = || {
        options(dir.path(), mode, &key)
            .vlog_segment_size(256 << 10)
            .background_work(false)
            .mmap(mmap)
    };
    let what = format!("{mode:?}, mmap({mmap})");
    let mut model = BTreeMap::new();
    let db = common::open(opts(), &what);
    for round in 0..2u32 {
        for i in (0..400u32).filter(|i| round == 0 || i % 2 == 0) {
            let k = format!("key-{i:05}").into_bytes();
            let v = value(i, round);
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        check(&db, &model, &format!("{what}: round {round} before flush"));
        db.flush().unwrap();
        check(&db, &model, &format!("{what}: round {round} after flush"));
    }
    let while_open = mapped_files(dir.path());
    db.compact().unwrap();
    check(&db, &model, &format!("{what}: after compact (segments collected)"));
    drop(db);
    let db = common::open(opts(), &what);
    check(&db, &model, &format!("{what}: after reopen"));
    let after_reopen = mapped_files(dir.path());
    drop(db);
    assert!(mapped_files(dir.path()).is_empty(), "{what}: maps left after close");
    (while_open, after_reopen)
}

#[test]
fn mapped_and_unmapped_reads_agree_and_the_option_is_obeyed() {
    for mode in [Mode::Aes, Mode::Plain] {
        let (while_open, after_reopen) = run(mode, true);
        for (when, names) in [("while open", &while_open), ("after reopen", &after_reopen)] {
            assert!(
                names.iter().any(|n| has_ext(n, "vlog")),
                "{mode:?} {when}: no value-log segment mapped: {names:?}"
            );
            assert!(
                names.iter().any(|n| has_ext(n, "sst")),
                "{mode:?} {when}: no table mapped: {names:?}"
            );
            assert!(
                names.iter().any(|n| has_ext(n, "wal")),
                "{mode:?} {when}: no WAL mapped: {names:?}"
            );
            assert!(
                names.iter().all(|n| has_ext(n, "vlog") || has_ext(n, "sst") || has_ext(n, "wal")),
                "{mode:?} {when}: only tables, segments and the WAL are mapped: {names:?}"
            );
        }
        let (while_open, after_reopen) = run(mode, false);
        assert!(while_open.is_empty(), "{mode:?}: mapped although off: {while_open:?}");
        assert!(after_reopen.is_empty(), "{mode:?}: mapped although off: {after_reopen:?}");
    }
}

/// The active segment's written part is mapped once it has grown past the remap step (4 MiB),
/// and values written after the map are read from the file until the next one.
#[test]
fn the_active_segments_written_part_is_mapped_as_it_grows() {
    let dir = common::fast_tempdir();
    let key = MasterKey::generate();
    let db =
        common::open(options(dir.path(), Mode::Aes, &key).background_work(false), "active segment");
    let mut model = BTreeMap::new();
    let mut mapped_at = None;
    for i in 0..3000u32 {
        let k = format!("key-{i:05}").into_bytes();
        let v = value(i, 0);
        db.put(&k, &v).unwrap();
        model.insert(k.clone(), v.clone());
        // Read each value right after it is written, and an early one, so reads span both the
        // mapped prefix and the part written after it.
        assert_eq!(db.get(&k).unwrap().as_deref(), Some(v.as_slice()), "get {i}");
        let first = format!("key-{:05}", i / 2).into_bytes();
        assert_eq!(db.get(&first).unwrap(), model.get(&first).cloned(), "get {}", i / 2);
        if mapped_at.is_none() && mapped_files(dir.path()).iter().any(|n| has_ext(n, "vlog")) {
            mapped_at = Some(i);
        }
    }
    let at = mapped_at.expect("the active segment was never mapped");
    // 4 MiB of ~4 KiB sealed entries (values compress a little): at least 500 of them.
    assert!(at >= 500, "mapped after only {at} values");
    check(&db, &model, "active segment, end");
}
