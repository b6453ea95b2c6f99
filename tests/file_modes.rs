//! File permissions: every file sealdb creates is 0600 and every directory 0700 whatever the
//! umask, and `MasterKey::from_file` checks the descriptor it reads (no symlink, no FIFO, no
//! group- or world-accessible file).
//!
//! The umask is process-wide, so each umask case re-runs this test binary as a child process
//! (selected by `SEALDB_FILE_MODES_CHILD`) that sets the umask and builds the database; the
//! parent only reads the child's verdict. Other tests of this binary never see the changed
//! umask.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sealdb::{Encryption, Error, MasterKey, Options, DB};

/// Environment variable that turns a run of this binary into the child: `<umask octal>:<dir>`.
const CHILD: &str = "SEALDB_FILE_MODES_CHILD";

/// Runs test `name` again in a child process with umask `mask`, and checks its verdict.
fn under_umask(mask: u32, name: &str) {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{mask:o}:{}", dir.path().display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    // The child ran the check (not an empty filter match): it reports what it checked.
    assert!(stdout.contains("CHILD-OK"), "child did not run the check:\n{stdout}\n{stderr}");
}

/// Every file and directory under `root` (itself included), with its permission bits.
fn walk(root: &Path, out: &mut Vec<(std::path::PathBuf, bool, u32)>) {
    let meta = std::fs::symlink_metadata(root).unwrap();
    out.push((root.to_path_buf(), meta.is_dir(), meta.permissions().mode() & 0o7777));
    if meta.is_dir() {
        for e in std::fs::read_dir(root).unwrap() {
            walk(&e.unwrap().path(), out);
        }
    }
}

/// Checks modes under `root`; returns the kinds of file seen (extension or name).
fn check_modes(root: &Path) -> BTreeSet<String> {
    let mut entries = Vec::new();
    walk(root, &mut entries);
    let mut kinds = BTreeSet::new();
    for (path, is_dir, mode) in &entries {
        if *is_dir {
            assert_eq!(*mode, 0o700, "directory {} has mode {mode:o}", path.display());
        } else {
            assert_eq!(*mode, 0o600, "file {} has mode {mode:o}", path.display());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            kinds.insert(match name.rsplit_once('.') {
                Some((_, ext)) if ext != "log" => ext.to_owned(),
                _ => name,
            });
        }
    }
    kinds
}

/// The child: set the umask, build an encrypted database that has every kind of file, check.
fn child(spec: &str) {
    let (mask, dir) = spec.split_once(':').unwrap();
    let mask = u32::from_str_radix(mask, 8).unwrap();
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
    // Directories sealdb must create itself, two levels deep.
    let root = Path::new(dir).join("created");
    let db_dir = root.join("by").join("sealdb");
    let key = MasterKey::generate();
    let opts = || {
        Options::new(&db_dir)
            .with_encryption(Encryption::new(key.clone()))
            .memtable_size(64 << 10)
            .value_threshold(256)
            .vlog_segment_size(64 << 10)
            .target_file_size(64 << 10)
            .background_work(false)
    };
    let db = DB::open(opts()).unwrap();
    for round in 0..3u32 {
        for i in 0..300u32 {
            let v = format!("value {round} {i} ").repeat(if i % 2 == 0 { 40 } else { 3 });
            db.put(format!("key{i:05}"), v).unwrap();
        }
        db.flush().unwrap();
    }
    db.compact().unwrap();
    db.rotate_data_key().unwrap();
    db.reencrypt().unwrap();
    db.rotate_master_key(MasterKey::generate()).unwrap();
    db.put("after", "rotation").unwrap();
    let open_kinds = check_modes(&root);
    db.close().unwrap();
    let kinds = check_modes(&root);
    for kind in ["sst", "vlog", "wal", "KEYS", "MANIFEST", "AUDIT.log", "LOCK"] {
        assert!(
            kinds.contains(kind) || open_kinds.contains(kind),
            "no {kind} file was created: {kinds:?}"
        );
    }
    println!("CHILD-OK umask {mask:03o}: {kinds:?}");
}

#[test]
fn files_0600_dirs_0700_under_umask_022() {
    under_umask(0o022, "files_0600_dirs_0700_under_umask_022");
}

#[test]
fn files_0600_dirs_0700_under_umask_000() {
    under_umask(0o000, "files_0600_dirs_0700_under_umask_000");
}

#[test]
fn files_0600_dirs_0700_under_umask_077() {
    under_umask(0o077, "files_0600_dirs_0700_under_umask_077");
}

fn write_key_file(path: &Path, key: &MasterKey, mode: u32) {
    std::fs::write(path, key.to_hex().unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn same_key(a: &MasterKey, b: &MasterKey) -> bool {
    a.to_hex().unwrap().as_str() == b.to_hex().unwrap().as_str()
}

#[test]
fn key_file_checked_through_its_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let good = dir.path().join("key");
    write_key_file(&good, &key, 0o600);
    assert!(same_key(&MasterKey::from_file(&good).unwrap(), &key));
    let read_only = dir.path().join("key-ro");
    write_key_file(&read_only, &key, 0o400);
    assert!(same_key(&MasterKey::from_file(&read_only).unwrap(), &key));

    // Group or world access: refused, with the mode named.
    for mode in [0o644, 0o640, 0o604, 0o660] {
        let p = dir.path().join(format!("key-{mode:o}"));
        write_key_file(&p, &key, mode);
        match MasterKey::from_file(&p) {
            Err(Error::KeyFilePermissions { mode: m, .. }) => assert_eq!(m, mode),
            other => panic!("mode {mode:o} accepted: {other:?}"),
        }
    }

    // A symbolic link to a good key file: refused (the link is not followed).
    let link = dir.path().join("key-link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let err = MasterKey::from_file(&link).unwrap_err();
    assert!(
        matches!(&err, Error::BadKeySource(m) if m.contains("symbolic link")),
        "symlink accepted or wrong error: {err:?}"
    );

    // A directory is not a regular file.
    let sub = dir.path().join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(MasterKey::from_file(&sub).is_err());

    // An oversized file is refused before it is read whole.
    let big = dir.path().join("key-big");
    std::fs::write(&big, vec![b'a'; 8192]).unwrap();
    std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(MasterKey::from_file(&big), Err(Error::BadKeySource(_))));
}

#[test]
fn key_file_fifo_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key-fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    // No writer ever opens the FIFO: a blocking open or read would hang, so run it on a thread
    // and bound the wait.
    let (tx, rx) = std::sync::mpsc::channel();
    let p = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(MasterKey::from_file(&p).map(|_| ()).map_err(|e| e.to_string()));
    });
    let r = rx.recv_timeout(Duration::from_secs(10)).expect("from_file hung on a FIFO");
    let msg = r.expect_err("a FIFO was accepted as a key file");
    assert!(msg.contains("not a regular file"), "{msg}");
}
