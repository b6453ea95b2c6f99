//! `DB::compact_range` compacts only the tables meeting the range; `compact()` and
//! `compact_range()` return with every replaced table gone from disk. A keyspace's
//! `compact_range` drops its overwritten versions and leaves other keyspaces' tables alone;
//! its `approximate_size` and `approximate_keys` grow with its data and count no other
//! keyspace's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sealdb::{Encryption, Error, Keyspace, MasterKey, Options, DB};

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

/// Where [`put_all`] writes: the default keyspace or a named one.
trait Put {
    fn put_one(&self, k: &[u8], v: &[u8]);
}

impl Put for DB {
    fn put_one(&self, k: &[u8], v: &[u8]) {
        self.put(k, v).unwrap();
    }
}

impl Put for Keyspace {
    fn put_one(&self, k: &[u8], v: &[u8]) {
        self.put(k, v).unwrap();
    }
}

fn put_all(
    db: &impl Put,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    prefix: &str,
    n: u32,
    round: u32,
) {
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
        db.put_one(&k, &v);
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

fn scan(ks: &Keyspace) -> Vec<(Vec<u8>, Vec<u8>)> {
    ks.iter().collect::<sealdb::Result<_>>().unwrap()
}

#[test]
fn keyspace_compact_range_drops_its_overwritten_versions_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &key, false)).unwrap();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    let (mut ma, mut mb, mut md) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    // Two versions of every key of b, then of a, and of the default keyspace, each in tables
    // of its own.
    for round in 0..2 {
        put_all(&b, &mut mb, "k", 1000, round);
        db.flush().unwrap();
    }
    let b_tables = tables(&db.live_files());
    for round in 0..2 {
        put_all(&a, &mut ma, "k", 1000, round);
        db.flush().unwrap();
        put_all(&db, &mut md, "k", 1000, round);
        db.flush().unwrap();
    }
    // Every table lies wholly in one keyspace, so the entry counts are exact.
    assert_eq!(a.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    assert_eq!(b.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    let before = tables(&db.live_files());

    a.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(a.approximate_keys::<&[u8], _>(..).unwrap(), 1000, "a's old versions stay");
    assert_eq!(b.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    let after = tables(&db.live_files());
    assert!(b_tables.is_subset(&after), "compacting a rewrote a table of b");
    assert!(after.len() < before.len(), "{} tables before, {} after", before.len(), after.len());
    assert_eq!(on_disk(dir.path()), db.live_files(), "replaced tables left on disk");

    // A range inside b: its tables meeting the range are compacted, a's are left alone.
    let a_tables: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert!(!a_tables.is_empty());
    b.compact_range(b"k00000".to_vec()..=b"k00999".to_vec()).unwrap();
    assert_eq!(b.approximate_keys::<&[u8], _>(..).unwrap(), 1000);
    let end = tables(&db.live_files());
    assert!(a_tables.is_subset(&end), "compacting b rewrote a table of a");
    // The default keyspace's compaction leaves the named ones alone.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 1000);
    assert!(a_tables.is_subset(&tables(&db.live_files())), "a default compaction rewrote a");

    assert_eq!(scan(&a), ma.into_iter().collect::<Vec<_>>());
    assert_eq!(scan(&b), mb.into_iter().collect::<Vec<_>>());
    check(&db, &md);
    db.drop_keyspace("a").unwrap();
    assert!(matches!(a.compact_range::<&[u8], _>(..), Err(Error::KeyspaceDropped)));
    assert!(matches!(a.approximate_size::<&[u8], _>(..), Err(Error::KeyspaceDropped)));
    assert!(matches!(a.approximate_keys::<&[u8], _>(..), Err(Error::KeyspaceDropped)));
}

#[test]
fn keyspace_approximate_size_grows_with_its_data_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = DB::open(opts(dir.path(), &key, false)).unwrap();
    let (a, b) = (db.keyspace("a").unwrap(), db.keyspace("b").unwrap());
    let size = |ks: &Keyspace| ks.approximate_size::<&[u8], _>(..).unwrap();
    let (mut ma, mut mb, mut md) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    assert_eq!((size(&a), size(&b)), (0, 0));

    // In the memtable: counted by approximate_keys, exactly, and only for a.
    put_all(&a, &mut ma, "k", 1000, 0);
    assert_eq!(a.approximate_keys::<&[u8], _>(..).unwrap(), 1000);
    assert_eq!(a.approximate_keys(b"k00100".to_vec()..=b"k00199".to_vec()).unwrap(), 100);
    assert_eq!(b.approximate_keys::<&[u8], _>(..).unwrap(), 0);
    assert_eq!(db.approximate_keys::<&[u8], _>(..).unwrap(), 0);
    db.flush().unwrap();
    let a1 = size(&a);
    // About 1000 values of 100 to 300 bytes, none compressible.
    assert!(a1 > 100_000, "a: {a1} bytes");
    assert_eq!(size(&b), 0, "b holds nothing yet");
    assert_eq!(db.approximate_size::<&[u8], _>(..).unwrap(), 0, "the default holds nothing");
    // Half of a's keys: about half of its bytes.
    let half = a.approximate_size(b"k00000".to_vec()..b"k00500".to_vec()).unwrap();
    assert!(half > a1 / 4 && half < a1 * 3 / 4, "half of a: {half} of {a1}");

    put_all(&a, &mut ma, "m", 1000, 0);
    db.flush().unwrap();
    let a2 = size(&a);
    assert!(a2 > a1 * 3 / 2, "a grew from {a1} to only {a2}");

    // Three times as much in b, and some in the default keyspace: a's estimate stays.
    for p in ["k", "m", "n"] {
        put_all(&b, &mut mb, p, 2000, 0);
        db.flush().unwrap();
    }
    put_all(&db, &mut md, "k", 1000, 0);
    db.flush().unwrap();
    let (a3, b3) = (size(&a), size(&b));
    assert!(b3 > a2 * 2, "b: {b3} bytes, a: {a2}");
    assert!(a3 > a2 * 3 / 4 && a3 < a2 * 5 / 4, "a went from {a2} to {a3} with b's data");
    assert_eq!(a.approximate_keys::<&[u8], _>(..).unwrap(), 2000);
    assert_eq!(b.approximate_keys::<&[u8], _>(..).unwrap(), 6000);
    assert_eq!(scan(&a).len(), ma.len());
}
