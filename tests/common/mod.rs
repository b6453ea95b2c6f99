//! Helpers shared by the integration tests.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sealdb::{Cipher, Encryption, Iter, MasterKey, Options};

/// How a test database is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No encryption (crc32 integrity only).
    Plain,
    /// AES-256-GCM.
    Aes,
    /// ChaCha20-Poly1305.
    ChaCha,
}

impl Mode {
    /// Whether the mode encrypts.
    pub fn encrypted(self) -> bool {
        self != Mode::Plain
    }

    /// The encryption settings of this mode under `key`, if it encrypts.
    pub fn encryption(self, key: &MasterKey) -> Option<Encryption> {
        match self {
            Mode::Plain => None,
            Mode::Aes => Some(Encryption::new(key.clone()).cipher(Cipher::Aes256Gcm)),
            Mode::ChaCha => Some(Encryption::new(key.clone()).cipher(Cipher::ChaCha20Poly1305)),
        }
    }
}

/// Options for a database at `path` in `mode` (default tuning; callers add theirs).
pub fn options(path: &Path, mode: Mode, key: &MasterKey) -> Options {
    let o = Options::new(path);
    match mode.encryption(key) {
        Some(e) => o.with_encryption(e),
        None => o,
    }
}

/// The seed of a randomized test: `SEALDB_TEST_SEED` if set, else `default`. Printed so that a
/// failure can be reproduced.
pub fn seed(test: &str, default: u64) -> u64 {
    let seed = match std::env::var("SEALDB_TEST_SEED") {
        Ok(s) => s.trim().parse().expect("SEALDB_TEST_SEED must be a u64"),
        Err(_) => default,
    };
    eprintln!("{test}: seed {seed} (reproduce with SEALDB_TEST_SEED={seed})");
    seed
}

/// Collects an iterator into a vector, stopping at the first error.
pub fn collect(it: Iter) -> sealdb::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    it.collect()
}

/// A printable, bounded rendering of a byte string.
pub fn show(b: &[u8]) -> String {
    const MAX: usize = 48;
    let mut s = String::from("b\"");
    for &c in b.iter().take(MAX) {
        if c.is_ascii_graphic() && c != b'"' && c != b'\\' {
            s.push(c as char);
        } else {
            let _ = write!(s, "\\x{c:02x}");
        }
    }
    s.push('"');
    if b.len() > MAX {
        let _ = write!(s, "...({} bytes)", b.len());
    }
    s
}

/// A printable rendering of an optional value.
pub fn show_opt(v: Option<&[u8]>) -> String {
    v.map_or_else(|| "None".to_string(), |v| format!("Some({})", show(v)))
}

/// Every regular file under `dir` (recursively), by path relative to `dir`, with its contents.
pub fn dir_contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("read_dir entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            if meta.is_dir() {
                walk(root, &p, out);
            } else if meta.is_file() {
                // A transient file may vanish between listing and reading.
                if let Ok(data) = std::fs::read(&p) {
                    out.insert(p.strip_prefix(root).expect("under root").to_path_buf(), data);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Copies the regular files of `src` (recursively) into `dst`, creating it.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create dst");
    for e in std::fs::read_dir(src).expect("read_dir") {
        let p = e.expect("entry").path();
        let to = dst.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).expect("copy");
        }
    }
}

/// The names of the files in `dir` whose name ends with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Offset of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The message of a caught panic.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// A temporary directory in memory (`/dev/shm`) when available, else the default one. For
/// tests that open databases thousands of times, where fsync latency would dominate; the
/// engine's behaviour does not depend on the file system.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

/// The error of an open that must fail (`DB` need not be `Debug`, so no `expect_err`).
pub fn open_err(r: sealdb::Result<sealdb::DB>, what: &str) -> sealdb::Error {
    match r {
        Ok(_) => panic!("{what} must fail, but the database opened"),
        Err(e) => e,
    }
}
