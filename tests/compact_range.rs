//! `DB::compact_range` compacts only the tables meeting the range; `compact()` and
//! `compact_range()` return with every replaced table gone from disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sealdb::{Encryption, MasterKey, Options, DB};

fn opts(dir: &Path, key: &MasterKey, background: bool) -> Options {
    Options::new(dir)
        .with_encryption(Encryption::new(key.clone()))
        .memtable_size(64 << 10)
        .target_file_size(4 << 10)
        .block_size(1024)
        .value_threshold(200)
        .background_work(background)
}

fn tables(names: &[String]) -> BTreeSet<String> {
    names
        .iter()
        .filter(|n| {
            matches!(sealdb::io::names::parse(n), Some(sealdb::io::names::FileName::Table(_)))
        })
        .cloned()
        .collect()
}

/// Numbered and temp files in the directory.
fn on_disk(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| sealdb::io::names::parse(n).is_some())
        .collect();
    v.sort();
    v
}

fn put_all(db: &DB, model: &mut BTreeMap<Vec<u8>, Vec<u8>>, prefix: &str, n: u32, round: u32) {
    for i in 0..n {
        let k = format!("{prefix}{i:05}").into_bytes();
        // Incompressible, so that tables reach their target size; every seventh goes to the
        // value log.
        let len = if i.is_multiple_of(7) { 300 } else { 100 };
        let mut x = u64::from(i) << 8 | u64::from(round) | 1;
        let v: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    }
}

fn check(db: &DB, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let all: Vec<(Vec<u8>, Vec<u8>)> = db.iter().collect::<sealdb::Result<_>>().unwrap();
    assert_eq!(all.len(), model.len());
    assert!(all.iter().zip(model).all(|((k, v), (mk, mv))| k == mk && v == mv), "scan differs");
}

#[test]
fn compact_range_touches_only_tables_meeting_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &key, false)).unwrap();
    let mut model = BTreeMap::new();
    put_all(&db, &mut model, "a", 1500, 0);
    db.flush().unwrap();
    put_all(&db, &mut model, "a", 1500, 1);
    db.compact_range(b"a".to_vec()..b"b".to_vec()).unwrap();
    let a_tables = tables(&db.live_files());
    assert!(a_tables.len() >= 2, "expected several tables, got {a_tables:?}");
    put_all(&db, &mut model, "z", 1500, 0);
    db.flush().unwrap();
    put_all(&db, &mut model, "z", 1500, 1);
    db.compact_range(b"z".to_vec()..).unwrap();
    let after_z = tables(&db.live_files());
    assert!(a_tables.is_subset(&after_z), "compacting z rewrote a table of a");
    let z_tables: BTreeSet<String> = after_z.difference(&a_tables).cloned().collect();
    assert!(!z_tables.is_empty());
    // An L0 table of m, and one of new z values: only the second meets the range.
    put_all(&db, &mut model, "m", 100, 1);
    db.flush().unwrap();
    let m_table: BTreeSet<String> =
        tables(&db.live_files()).difference(&after_z).cloned().collect();
    assert_eq!(m_table.len(), 1);
    for i in (0..1500).step_by(3) {
        let k = format!("z{i:05}").into_bytes();
        db.put(&k, b"new").unwrap();
        model.insert(k, b"new".to_vec());
    }
    db.compact_range(b"z".to_vec()..=b"z99999".to_vec()).unwrap();
    let end = tables(&db.live_files());
    assert!(a_tables.is_subset(&end), "tables of a were rewritten");
    assert!(m_table.is_subset(&end), "the L0 table of m was rewritten");
    assert!(z_tables.is_disjoint(&end), "the z tables were not compacted");
    assert_eq!(on_disk(dir.path()), db.live_files(), "replaced tables left on disk");
    check(&db, &model);
    // An empty range compacts nothing.
    db.compact_range(b"q".to_vec()..b"r".to_vec()).unwrap();
    assert_eq!(tables(&db.live_files()).len(), end.len());
    drop(db);
    let db = DB::open(opts(dir.path(), &key, false)).unwrap();
    check(&db, &model);
}

#[test]
fn compact_returns_with_obsolete_files_gone() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &key, true).l0_triggers(2, 8, 12)).unwrap();
    let mut model = BTreeMap::new();
    for round in 0..4 {
        put_all(&db, &mut model, "k", 1500, round);
        db.compact().unwrap();
        assert_eq!(on_disk(dir.path()), db.live_files(), "round {round}: after compact");
        put_all(&db, &mut model, "k", 700, round + 10);
        db.compact_range(b"k00100".to_vec()..b"k00300".to_vec()).unwrap();
        assert_eq!(on_disk(dir.path()), db.live_files(), "round {round}: after compact_range");
    }
    check(&db, &model);
}
