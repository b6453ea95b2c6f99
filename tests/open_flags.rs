//! Open flags (`create_if_missing`, `error_if_exists`) and `DB::destroy`.

use std::collections::BTreeMap;
use std::path::Path;

use sealdb::{Encryption, Error, MasterKey, Options, DB};

/// Every file in `dir` with its bytes.
fn snapshot_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn enc(path: &Path, key: &MasterKey) -> Options {
    Options::new(path).with_encryption(Encryption::new(key.clone()))
}

#[test]
fn create_if_missing_off_refuses_and_creates_nothing() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("db");
    let err = DB::open(Options::new(&path).create_if_missing(false)).unwrap_err();
    assert!(matches!(&err, Error::NotFound(p) if p == &path), "{err:?}");
    assert!(!path.exists(), "the directory was created");
    // An existing but empty directory holds no database either, and stays empty.
    std::fs::create_dir(&path).unwrap();
    let err = DB::open(Options::new(&path).create_if_missing(false)).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    assert!(snapshot_dir(&path).is_empty(), "files were written");
    // By default it is created; then the flag opens it.
    DB::open(Options::new(&path)).unwrap().put("k", "v").unwrap();
    let db = DB::open(Options::new(&path).create_if_missing(false)).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn error_if_exists_refuses_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    // A new database opens with the flag on.
    let db = DB::open(enc(dir.path(), &key).error_if_exists(true)).unwrap();
    db.put("k", "v").unwrap();
    drop(db);
    let before = snapshot_dir(dir.path());
    let err = DB::open(enc(dir.path(), &key).error_if_exists(true)).unwrap_err();
    assert!(matches!(&err, Error::AlreadyExists(p) if p == dir.path()), "{err:?}");
    assert_eq!(snapshot_dir(dir.path()), before, "the refused open changed the directory");
    let db = DB::open(enc(dir.path(), &key)).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn destroy_refuses_an_open_database_then_removes_only_its_files() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("db");
    let key = MasterKey::generate();
    // No background work: nothing but `destroy` may change the directory during the test.
    let db = DB::open(
        enc(&path, &key).memtable_size(64 << 10).value_threshold(100).background_work(false),
    )
    .unwrap();
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), vec![b'x'; (i % 300) as usize]).unwrap();
    }
    db.flush().unwrap();
    std::fs::write(path.join("notes.txt"), b"not sealdb's").unwrap();
    let before = snapshot_dir(&path);
    assert!(
        before.keys().any(|n| {
            matches!(sealdb::io::names::parse(n), Some(sealdb::io::names::FileName::Table(_)))
        }) && before.contains_key("KEYS")
    );
    let err = DB::destroy(&path).unwrap_err();
    assert!(matches!(&err, Error::Locked(p) if p == &path), "{err:?}");
    assert_eq!(snapshot_dir(&path), before, "a refused destroy changed the directory");
    assert_eq!(db.get("k00007").unwrap().map(|v| v.len()), Some(7));
    drop(db);
    DB::destroy(&path).unwrap();
    let left: Vec<String> = snapshot_dir(&path).into_keys().collect();
    assert_eq!(left, vec!["notes.txt".to_string()], "only the foreign file stays");
    // Nothing usable is left: the path opens as a new, empty database.
    let db = DB::open(enc(&path, &key)).unwrap();
    assert_eq!(db.get("k00007").unwrap(), None);
    drop(db);
    std::fs::remove_file(path.join("notes.txt")).unwrap();
    DB::destroy(&path).unwrap();
    assert!(!path.exists(), "an emptied directory is removed");
    // Destroying what does not exist is no error.
    DB::destroy(&path).unwrap();
}
