//! Helpers shared by the integration tests, among them the one model checker
//! ([`check_model`]) every test that compares the database with an expected map uses.
#![allow(
    dead_code,
    reason = "every test binary compiles this module and uses a different subset of it"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use sealdb::{Cipher, Encryption, Iter, MasterKey, Options, Snapshot, DB};

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

/// Opens the database of `options`, panicking with `what` and the error if it fails.
pub fn open(options: Options, what: &str) -> DB {
    DB::open(options).unwrap_or_else(|e| panic!("{what}: open failed: {e}"))
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
            // A transient file (a WAL or table that background work retires) may vanish
            // between listing and looking at it, or reading it.
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("metadata of {}: {e}", p.display()),
            };
            if meta.is_dir() {
                walk(root, &p, out);
            } else if meta.is_file() {
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

/// The expected contents of a database: every live key with its value.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A range of keys as both `DB::range` and `Snapshot::range` take it.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The reads [`check_model`] makes, for `DB` and `Snapshot` alike. The method names differ
/// from the engine's own so that a call can never resolve to this trait by accident.
pub trait View {
    /// `get(key)`.
    fn read(&self, key: &[u8]) -> sealdb::Result<Option<Vec<u8>>>;
    /// `iter()`.
    fn scan(&self) -> Iter;
    /// `range(range)`.
    fn scan_range(&self, range: KeyRange) -> Iter;
    /// `prefix(prefix)`.
    fn scan_prefix(&self, prefix: &[u8]) -> Iter;
}

impl View for DB {
    fn read(&self, key: &[u8]) -> sealdb::Result<Option<Vec<u8>>> {
        self.get(key)
    }
    fn scan(&self) -> Iter {
        self.iter()
    }
    fn scan_range(&self, range: KeyRange) -> Iter {
        self.range(range)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Iter {
        self.prefix(prefix)
    }
}

impl View for Snapshot {
    fn read(&self, key: &[u8]) -> sealdb::Result<Option<Vec<u8>>> {
        self.get(key)
    }
    fn scan(&self) -> Iter {
        self.iter()
    }
    fn scan_range(&self, range: KeyRange) -> Iter {
        self.range(range)
    }
    fn scan_prefix(&self, prefix: &[u8]) -> Iter {
        self.prefix(prefix)
    }
}

/// Keys up to this many bytes are shown whole in hex; longer ones by their head, length and
/// hash.
const SHOW_KEY_MAX: usize = 64;
/// Values up to this many bytes are shown in hex; longer ones only by length and hash.
const SHOW_VALUE_MAX: usize = 32;

fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3))
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::with_capacity(2 * b.len()), |mut s, c| {
        let _ = write!(s, "{c:02x}");
        s
    })
}

/// A key for a failure message, in hex (`0x…`; long keys by head, length and hash).
pub fn hex_key(k: &[u8]) -> String {
    if k.len() <= SHOW_KEY_MAX {
        format!("0x{}", hex(k))
    } else {
        format!("0x{}…({} bytes, fnv64 {:016x})", hex(&k[..32]), k.len(), fnv64(k))
    }
}

/// A value for a failure message: hex up to 32 bytes, else only its length and hash, so that
/// a failure never prints a long value.
pub fn describe_value(v: &[u8]) -> String {
    if v.len() <= SHOW_VALUE_MAX {
        format!("0x{} ({} bytes)", hex(v), v.len())
    } else {
        format!("<{} bytes, fnv64 {:016x}>", v.len(), fnv64(v))
    }
}

/// An optional value for a failure message.
pub fn describe_opt(v: Option<&[u8]>) -> String {
    v.map_or_else(|| "None".to_string(), |v| format!("Some({})", describe_value(v)))
}

fn describe_bound(b: &Bound<Vec<u8>>) -> String {
    match b {
        Bound::Included(k) => format!("Included({})", hex_key(k)),
        Bound::Excluded(k) => format!("Excluded({})", hex_key(k)),
        Bound::Unbounded => "Unbounded".to_string(),
    }
}

/// A range for a failure message.
pub fn describe_range(r: &KeyRange) -> String {
    format!("({}, {})", describe_bound(&r.0), describe_bound(&r.1))
}

/// Whether `k` lies in `r`.
pub fn in_range(k: &[u8], r: &KeyRange) -> bool {
    let lo = match &r.0 {
        Bound::Included(b) => k >= b.as_slice(),
        Bound::Excluded(b) => k > b.as_slice(),
        Bound::Unbounded => true,
    };
    let hi = match &r.1 {
        Bound::Included(b) => k <= b.as_slice(),
        Bound::Excluded(b) => k < b.as_slice(),
        Bound::Unbounded => true,
    };
    lo && hi
}

/// Checks that `got` yields exactly the entries of `expected`, in order; panics naming `what`
/// and the first difference (an iteration error included).
pub fn check_scan<'a>(
    ctx: &str,
    what: &str,
    got: Iter,
    expected: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>,
) {
    let mut expected = expected.into_iter();
    let mut n = 0usize;
    let mut last: Option<Vec<u8>> = None;
    for item in got {
        let after = || last.as_deref().map_or_else(|| "the start".to_string(), hex_key);
        let (k, v) = item
            .unwrap_or_else(|e| panic!("{ctx}: {what}: entry {n} (after {}) failed: {e}", after()));
        match expected.next() {
            None => panic!(
                "{ctx}: {what}: entry {n} is extra: key {} value {} (after {})",
                hex_key(&k),
                describe_value(&v),
                after()
            ),
            Some((ek, ev)) => {
                assert!(
                    k == *ek,
                    "{ctx}: {what}: entry {n} has key {} value {}, expected key {} value {}",
                    hex_key(&k),
                    describe_value(&v),
                    hex_key(ek),
                    describe_value(ev)
                );
                if v != *ev {
                    let at = v.iter().zip(ev.iter()).position(|(a, b)| a != b);
                    let at = at.unwrap_or(v.len().min(ev.len()));
                    panic!(
                        "{ctx}: {what}: entry {n}, key {}: value {}, expected {} (first \
                         difference at byte {at})",
                        hex_key(&k),
                        describe_value(&v),
                        describe_value(ev)
                    );
                }
            }
        }
        n += 1;
        last = Some(k);
    }
    if let Some((ek, _)) = expected.next() {
        let more = 1 + expected.count();
        panic!(
            "{ctx}: {what}: ended after {n} entries, {more} missing, the first key {}",
            hex_key(ek)
        );
    }
}

/// Checks `get` of each of `keys` against `model` (present or absent).
pub fn check_gets<'a, V: View + ?Sized>(
    ctx: &str,
    view: &V,
    model: &Model,
    keys: impl IntoIterator<Item = &'a [u8]>,
) {
    for k in keys {
        let got = view.read(k).unwrap_or_else(|e| panic!("{ctx}: get {} failed: {e}", hex_key(k)));
        let want = model.get(k);
        if got.as_ref() == want {
            continue;
        }
        let detail = match (&got, want) {
            (Some(g), Some(w)) => {
                let at = g.iter().zip(w.iter()).position(|(a, b)| a != b);
                format!(" (first difference at byte {})", at.unwrap_or(g.len().min(w.len())))
            }
            _ => String::new(),
        };
        panic!(
            "{ctx}: get {} returned {}, expected {}{detail}",
            hex_key(k),
            describe_opt(got.as_deref()),
            describe_opt(want.map(Vec::as_slice))
        );
    }
}

/// Keys absent from `model` next to its keys: before the first, between neighbours (each key's
/// proper prefix, its predecessor at the last byte, its successor `key ‖ 00`) and after the
/// last (`last ‖ ff`, and a run of `ff` longer than any key).
pub fn absent_probes(model: &Model) -> BTreeSet<Vec<u8>> {
    let mut probes = BTreeSet::new();
    probes.insert(Vec::new());
    probes.insert(vec![0x00]);
    let longest = model.keys().map(Vec::len).max().unwrap_or(0);
    probes.insert(vec![0xff; (longest + 1).min(SHOW_KEY_MAX + 1)]);
    for k in model.keys() {
        let mut next = k.clone();
        next.push(0x00);
        probes.insert(next);
        if let Some((&last, head)) = k.split_last() {
            probes.insert(head.to_vec());
            if last > 0 {
                let mut prev = head.to_vec();
                prev.push(last - 1);
                probes.insert(prev);
            }
        }
    }
    if let Some(last) = model.keys().next_back() {
        let mut after = last.clone();
        after.push(0xff);
        probes.insert(after);
    }
    probes.retain(|p| !model.contains_key(p));
    probes
}

/// A few ranges over `model`: each kind of bound, bounds on keys and between them, a range
/// inside one gap, and the whole key space.
fn model_ranges(model: &Model) -> Vec<KeyRange> {
    use Bound::{Excluded, Included, Unbounded};
    let mut ranges = vec![(Unbounded, Unbounded)];
    let keys: Vec<&Vec<u8>> = model.keys().collect();
    let Some(&first) = keys.first() else {
        ranges.push((Included(Vec::new()), Excluded(vec![0xff])));
        return ranges;
    };
    let n = keys.len();
    let (a, b, c) = (keys[n / 4], keys[n / 2], keys[(3 * n) / 4]);
    let last = keys[n - 1];
    let after = |k: &[u8]| -> Vec<u8> { [k, &[0x00]].concat() };
    ranges.extend([
        (Included(a.clone()), Excluded(c.clone())),
        (Excluded(a.clone()), Included(c.clone())),
        (Included(b.clone()), Included(b.clone())),
        (Unbounded, Included(b.clone())),
        (Excluded(b.clone()), Unbounded),
        (Unbounded, Excluded(first.clone())),
        (Excluded(last.clone()), Unbounded),
        // Bounds that fall between keys.
        (Included(after(a)), Excluded(after(c))),
        (Excluded(after(first)), Included(after(last))),
        // Inside one gap: empty.
        (Included(after(b)), Included(after(b))),
    ]);
    ranges
}

/// Checks that `view` (a `DB` or a `Snapshot`) holds exactly `model`: one full iteration
/// equals it (order, keys, values, nothing extra); `get` of every model key returns its
/// value; keys absent from the model (before the first, between keys, after the last) read
/// as `None`; a few ranges and prefixes return the model's entries in them. Any engine error
/// fails the check. Panics naming `ctx`, the check and the key in hex; values longer than 32
/// bytes are shown only by length and hash.
pub fn check_model<V: View + ?Sized>(ctx: &str, view: &V, model: &Model) {
    check_scan(ctx, "iter()", view.scan(), model);
    check_gets(ctx, view, model, model.keys().map(Vec::as_slice));
    let probes = absent_probes(model);
    check_gets(ctx, view, model, probes.iter().map(Vec::as_slice));
    for r in model_ranges(model) {
        let what = format!("range{}", describe_range(&r));
        let expected = model.iter().filter(|(k, _)| in_range(k, &r));
        check_scan(ctx, &what, view.scan_range(r.clone()), expected);
    }
    let mut prefixes = vec![Vec::new()];
    if let Some(mid) = model.keys().nth(model.len() / 2) {
        prefixes.push(mid[..mid.len().min(1)].to_vec());
        prefixes.push(mid[..mid.len().min(3)].to_vec());
        prefixes.push(mid.clone());
    }
    for p in prefixes {
        let what = format!("prefix({})", hex_key(&p));
        let expected = model.iter().filter(|(k, _)| k.starts_with(&p));
        check_scan(ctx, &what, view.scan_prefix(&p), expected);
    }
}

/// Runs a future of the in-memory store (it needs no reactor) on this thread.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Every object in `store`: (name, bytes).
pub fn objects(
    store: &std::sync::Arc<dyn sealdb::object_store::ObjectStore>,
) -> BTreeMap<String, Vec<u8>> {
    use futures_util::TryStreamExt;
    use sealdb::object_store::ObjectStoreExt as _;
    let metas: Vec<_> = block_on(store.list(None).try_collect::<Vec<_>>()).expect("list");
    let mut out = BTreeMap::new();
    for meta in metas {
        let bytes =
            block_on(async { store.get(&meta.location).await?.bytes().await }).expect("get");
        out.insert(meta.location.to_string(), bytes.to_vec());
    }
    out
}
