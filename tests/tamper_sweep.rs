//! Tamper sweep. For each sealing mode (plain crc32, AES-256-GCM, ChaCha20-Poly1305) and every
//! file kind (SSTable, value-log segment, WAL, `MANIFEST`, and for encrypted databases `KEYS`
//! and `AUDIT.log`): flip bytes, truncate files, swap two sealed blocks inside a file, swap two
//! whole files of the same kind and drop files. Each trial alters a fresh copy of a closed
//! database, reopens it, reads every key with `get` and a full `iter` (inside `catch_unwind`)
//! and is tallied as
//!
//! - *detected*: an error that reports tampering (`Corruption`; for `KEYS` also
//!   `WrongMasterKey`), every `Ok` read agreeing with the written data; for `AUDIT.log` the
//!   data reads exactly right and `DB::verify_audit_log` reports `Corruption`;
//! - *harmless*: every read returns exactly the written data;
//! - *out-of-scope prefix*: the data is exactly the state after a prefix of the WAL's batches,
//!   for the alterations `docs/security.md` puts out of scope ("indistinguishable from a crash
//!   before those writes"): a truncated or dropped WAL, a truncated value-log segment the WAL
//!   points into; likewise an audit log cut at a line boundary (a prefix of its chain);
//! - *wrong*: an `Ok` read with a wrong value, a missing key or an extra key;
//! - *bad error*: an error that does not report tampering (an `Io` `NotFound` for a file the
//!   manifest names; any data error caused by editing `AUDIT.log`, which must not affect data);
//! - *panic*.
//!
//! Wrong answers, bad errors and panics must be zero, and every (mode, kind) whose bytes were
//! flipped must have detections. The table goes to stderr (`--nocapture` shows it).
//!
//! `tamper_sweep` works on databases with one WAL; `tamper_sweep_wal_pair` on databases whose
//! memtable switched once, leaving two WALs with records (what a second WAL adds: swapping,
//! dropping or truncating one of the pair).
//!
//! The short version runs in `cargo test`: every byte of files up to 4 KiB, the first and last
//! 512 bytes and 300 spread positions of larger ones, both masks; a sample of truncation
//! lengths and block swaps. The long version flips every byte of every file and truncates at
//! every 16th length and around every block boundary. It runs in the dev profile, so integer
//! overflow checks and debug assertions stay on (a few minutes on 2 cores):
//!
//! ```text
//! SEALDB_TAMPER_FULL=1 cargo test --test tamper_sweep -- --nocapture
//! ```

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{panic_message, show, show_opt, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Error, MasterKey, Options, WriteBatch, DB};

/// Values of at least this many bytes go to the value log.
const VALUE_THRESHOLD: usize = 256;
/// Lengths of the values written to the value log: few distinct lengths, so that segments
/// hold entries of equal sealed length to swap.
const LARGE_LENS: [usize; 2] = [300, 520];
/// XOR masks applied at each flipped position.
const MASKS: [u8; 2] = [0x01, 0x80];
/// Short mode: files up to this size have every byte flipped.
const SMALL_FILE: usize = 4 << 10;
/// Short mode: bytes flipped at each end of a larger file.
const ENDS: usize = 512;
/// Short mode: positions spread evenly between the ends of a larger file.
const SPREAD: usize = 300;
/// A trial running longer than this is reported as a hang, and the run aborts.
const HANG: Duration = Duration::from_secs(120);
/// The sealing modes, in table order.
const MODES: [Mode; 3] = [Mode::Plain, Mode::Aes, Mode::ChaCha];

/// How much of the sweep to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// In `cargo test`: a sample.
    Short,
    /// `SEALDB_TAMPER_FULL=1`: every byte of every file.
    Full,
}

impl Depth {
    fn from_env() -> Depth {
        match std::env::var("SEALDB_TAMPER_FULL") {
            Ok(v) if !v.is_empty() && v != "0" => Depth::Full,
            _ => Depth::Short,
        }
    }
}

/// What a file in the directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Table,
    ValueLog,
    Wal,
    /// One of two WALs with records.
    WalPair,
    Manifest,
    Keys,
    Audit,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Table => "SSTable",
            Kind::ValueLog => "vlog segment",
            Kind::Wal => "WAL",
            Kind::WalPair => "WAL (1 of 2)",
            Kind::Manifest => "MANIFEST",
            Kind::Keys => "KEYS",
            Kind::Audit => "AUDIT.log",
        }
    }

    /// The kind of the file `name` (the `LOCK` file has none).
    fn of(name: &str) -> Option<Kind> {
        match name {
            "MANIFEST" => return Some(Kind::Manifest),
            "KEYS" => return Some(Kind::Keys),
            "AUDIT.log" => return Some(Kind::Audit),
            _ => {}
        }
        match Path::new(name).extension().and_then(|e| e.to_str()) {
            Some("sst") => Some(Kind::Table),
            Some("vlog") => Some(Kind::ValueLog),
            Some("wal") => Some(Kind::Wal),
            _ => None,
        }
    }

    /// Whether `e` is an acceptable report of tampering with a file of this kind.
    fn accepts(self, e: &Error) -> bool {
        match self {
            // Tampering with the audit log must not affect data at all.
            Kind::Audit => false,
            // A flip in the registry's key-check bytes reads as a wrong master key.
            Kind::Keys => e.is_corruption() || matches!(e, Error::WrongMasterKey),
            _ => e.is_corruption(),
        }
    }
}

/// The operations, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Flip,
    Truncate,
    SwapBlocks,
    SwapFiles,
    Drop,
}

impl Op {
    fn name(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Op::Flip, _) => "flip byte",
            (Op::Truncate, _) => "truncate",
            (Op::SwapBlocks, Kind::Audit) => "swap lines",
            (Op::SwapBlocks, _) => "swap blocks",
            (Op::SwapFiles, _) => "swap files",
            (Op::Drop, _) => "drop file",
        }
    }
}

/// One alteration of the closed directory.
#[derive(Debug, Clone)]
enum Alter {
    /// The untouched copy (the baseline).
    Nothing,
    Flip {
        file: String,
        pos: usize,
        mask: u8,
    },
    Truncate {
        file: String,
        len: usize,
    },
    /// Swaps the byte ranges `a` and `b` (offset, length; `a` before `b`) of `file`; the
    /// bytes between them move if the lengths differ.
    SwapRanges {
        file: String,
        a: (usize, usize),
        b: (usize, usize),
    },
    SwapFiles {
        a: String,
        b: String,
    },
    Drop {
        file: String,
    },
}

impl Alter {
    fn apply(&self, files: &mut BTreeMap<String, Vec<u8>>) {
        fn data<'a>(files: &'a mut BTreeMap<String, Vec<u8>>, f: &str) -> &'a mut Vec<u8> {
            files.get_mut(f).unwrap_or_else(|| panic!("no file {f}"))
        }
        match self {
            Alter::Nothing => {}
            Alter::Flip { file, pos, mask } => data(files, file)[*pos] ^= mask,
            Alter::Truncate { file, len } => data(files, file).truncate(*len),
            Alter::SwapRanges { file, a, b } => {
                let d = data(files, file);
                let (a0, a1, b0, b1) = (a.0, a.0 + a.1, b.0, b.0 + b.1);
                assert!(a1 <= b0 && b1 <= d.len(), "bad swap {a:?} {b:?} in {} bytes", d.len());
                let mut out = Vec::with_capacity(d.len());
                for r in [0..a0, b0..b1, a1..b0, a0..a1] {
                    out.extend_from_slice(&d[r]);
                }
                out.extend_from_slice(&d[b1..]);
                *d = out;
            }
            Alter::SwapFiles { a, b } => {
                let da = files.remove(a).expect("file a");
                let db = files.insert(b.clone(), da).expect("file b");
                files.insert(a.clone(), db);
            }
            Alter::Drop { file } => {
                files.remove(file).expect("file to drop");
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Alter::Nothing => "nothing".to_string(),
            Alter::Flip { file, pos, mask } => format!("{file} byte {pos} ^ {mask:#04x}"),
            Alter::Truncate { file, len } => format!("{file} truncated to {len}"),
            Alter::SwapRanges { file, a, b } => {
                format!("{file} bytes {}+{} swapped with {}+{}", a.0, a.1, b.0, b.1)
            }
            Alter::SwapFiles { a, b } => format!("{a} swapped with {b}"),
            Alter::Drop { file } => format!("{file} deleted"),
        }
    }
}

/// A live key-value map.
type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A closed database, held in memory, with every state a reader may legitimately see.
struct Fixture {
    mode: Mode,
    key: MasterKey,
    /// Every file of the closed directory, by name.
    files: BTreeMap<String, Vec<u8>>,
    /// `states[p]`: the data after the flushed writes and the first `p` WAL batches; the last
    /// one is the full state.
    states: Vec<State>,
    /// The keys each WAL batch touched (no key is touched by two batches).
    batch_keys: Vec<Vec<Vec<u8>>>,
    /// Every key ever written or deleted, and a few never written.
    universe: Vec<Vec<u8>>,
    /// The value-log segment the WAL's large values went to.
    active_segment: String,
}

impl Fixture {
    fn options(&self, path: &Path) -> Options {
        common::options(path, self.mode, &self.key)
            .background_work(false)
            .value_threshold(VALUE_THRESHOLD)
            .memtable_size(64 << 10)
            .block_size(256)
    }

    fn full(&self) -> &State {
        self.states.last().expect("states")
    }

    fn names(&self, kind: Kind) -> Vec<String> {
        self.files.keys().filter(|n| Kind::of(n) == Some(kind)).cloned().collect()
    }

    fn tag_len(&self) -> usize {
        if self.mode.encrypted() {
            16
        } else {
            4
        }
    }

    /// The clear file header and its sealed check block (32-byte header, no payload, tag).
    fn file_header_len(&self) -> usize {
        64 + 32 + self.tag_len()
    }

    /// The sealed blocks after the file header of `name`: (offset, total length, kind byte).
    /// A sealed block is a 32-byte header (stored length u32 at +20), the payload and the tag;
    /// the walk stops at anything else (an SSTable's 12-byte trailer).
    fn blocks(&self, name: &str) -> Vec<(usize, usize, u8)> {
        let data = &self.files[name];
        let mut pos = self.file_header_len();
        let mut out = Vec::new();
        while pos + 32 <= data.len() && data[pos] == 1 {
            let stored = u32::from_le_bytes(data[pos + 20..pos + 24].try_into().expect("u32"));
            let total = 32 + stored as usize + self.tag_len();
            if pos + total > data.len() {
                break;
            }
            out.push((pos, total, data[pos + 3]));
            pos += total;
        }
        out
    }

    /// The lines of the audit log: (offset, length with the newline, 0).
    fn lines(&self, name: &str) -> Vec<(usize, usize, u8)> {
        let mut start = 0;
        let mut out = Vec::new();
        for (i, &b) in self.files[name].iter().enumerate() {
            if b == b'\n' {
                out.push((start, i + 1 - start, 0));
                start = i + 1;
            }
        }
        out
    }

    /// The blocks of a data file, or the lines of the audit log.
    fn units(&self, name: &str) -> Vec<(usize, usize, u8)> {
        match Kind::of(name) {
            Some(Kind::Audit) => self.lines(name),
            Some(Kind::Table | Kind::ValueLog | Kind::Wal) => self.blocks(name),
            _ => Vec::new(),
        }
    }
}

fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}-{i:04}").into_bytes()
}

/// A model of the live data, and every key touched.
struct Model {
    live: State,
    touched: BTreeSet<Vec<u8>>,
    rng: StdRng,
}

impl Model {
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.rng.gen()).collect()
    }

    fn small(&mut self) -> Vec<u8> {
        let len = self.rng.gen_range(8..40);
        self.bytes(len)
    }

    fn large(&mut self) -> Vec<u8> {
        let len = LARGE_LENS[self.rng.gen_range(0..LARGE_LENS.len())];
        self.bytes(len)
    }

    /// A value: large (to the value log) for one `i` in `every`, else small.
    fn value(&mut self, i: usize, every: usize) -> Vec<u8> {
        if i % every == every - 1 {
            self.large()
        } else {
            self.small()
        }
    }

    fn put(&mut self, b: &mut WriteBatch, k: Vec<u8>, v: Vec<u8>) {
        b.put(&k, &v);
        self.touched.insert(k.clone());
        self.live.insert(k, v);
    }

    fn delete(&mut self, b: &mut WriteBatch, k: &[u8]) {
        b.delete(k);
        self.touched.insert(k.to_vec());
        self.live.remove(k);
    }

    fn write(&mut self, db: &DB, f: impl FnOnce(&mut Model, &mut WriteBatch)) {
        let mut b = WriteBatch::new();
        f(self, &mut b);
        db.write(b).expect("write");
    }
}

/// Builds a database of about 300 keys in two sessions: three SSTables (with overwrites and
/// deletes across them), two value-log segments, then WAL batches that are never flushed
/// (dropping the DB closes it without flushing; they are replayed at the next open). Each WAL
/// batch touches keys no other batch touches, so the state after each prefix of them is well
/// defined.
///
/// With `two_wals`, the WAL batches carry enough inline data to switch the 64 KiB memtable
/// once, which leaves two WALs with records.
fn build(mode: Mode, seed: u64, two_wals: bool) -> Fixture {
    let root = common::fast_tempdir();
    let dir = root.path().join("db");
    let mut fx = Fixture {
        mode,
        key: MasterKey::generate(),
        files: BTreeMap::new(),
        states: Vec::new(),
        batch_keys: Vec::new(),
        universe: Vec::new(),
        active_segment: String::new(),
    };
    let mut m =
        Model { live: State::new(), touched: BTreeSet::new(), rng: StdRng::seed_from_u64(seed) };

    // Session 1: two SSTables and the first value-log segment.
    let db = DB::open(fx.options(&dir)).expect("open");
    m.write(&db, |m, b| {
        for i in 0..100 {
            let v = m.value(i, 8);
            m.put(b, key("a", i), v);
        }
    });
    db.flush().expect("flush");
    m.write(&db, |m, b| {
        for i in 0..20 {
            let v = m.value(i, 5);
            m.put(b, key("a", i), v);
        }
        for i in 20..30 {
            m.delete(b, &key("a", i));
        }
        for i in 0..70 {
            let v = m.value(i, 8);
            m.put(b, key("b", i), v);
        }
    });
    db.flush().expect("flush");
    db.close().expect("close");

    // Session 2: a third SSTable, a second segment, then the WAL batches.
    let db = DB::open(fx.options(&dir)).expect("reopen");
    m.write(&db, |m, b| {
        for i in 0..90 {
            let v = m.value(i, 8);
            m.put(b, key("c", i), v);
        }
        for i in 40..50 {
            let v = m.small();
            m.put(b, key("a", i), v);
        }
        for i in 0..5 {
            m.delete(b, &key("b", i));
        }
    });
    db.flush().expect("flush");
    fx.states.push(m.live.clone());
    let batches = if two_wals { 8 } else { 5 };
    for j in 0..batches {
        let before = m.touched.clone();
        m.write(&db, |m, b| {
            let w = format!("w{j}");
            if two_wals {
                // About 10 KiB of inline values per batch.
                for i in 0..40 {
                    let v = m.bytes(240);
                    m.put(b, key(&w, i), v);
                }
            } else {
                // Values of fixed lengths: the WAL records come out equally long, to swap.
                for i in 0..3 {
                    let v = m.bytes(24);
                    m.put(b, key(&w, i), v);
                }
                let v = m.bytes(LARGE_LENS[0]);
                m.put(b, key(&w, 3), v);
            }
            for i in [50 + 2 * j, 51 + 2 * j] {
                let v = m.bytes(24);
                m.put(b, key("a", i), v);
            }
            m.delete(b, &key("a", 70 + j));
        });
        fx.states.push(m.live.clone());
        let mut touched: Vec<Vec<u8>> = vec![key("a", 50 + 2 * j), key("a", 51 + 2 * j)];
        touched.push(key("a", 70 + j));
        touched.extend(m.touched.difference(&before).cloned());
        fx.batch_keys.push(touched);
    }
    drop(db);

    for e in std::fs::read_dir(&dir).expect("read_dir") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        fx.files.insert(name, std::fs::read(e.path()).expect("read"));
    }
    let tables = fx.names(Kind::Table);
    assert_eq!(tables.len(), 3, "{mode:?}: SSTables {tables:?}");
    let segments = fx.names(Kind::ValueLog);
    assert_eq!(segments.len(), 2, "{mode:?}: value-log segments {segments:?}");
    fx.active_segment.clone_from(segments.last().expect("segment"));
    let wals = fx.names(Kind::Wal);
    assert_eq!(wals.len(), if two_wals { 2 } else { 1 }, "{mode:?}: WALs {wals:?}");
    assert_eq!(mode.encrypted(), fx.files.contains_key("KEYS"), "{mode:?}: KEYS");
    assert_eq!(mode.encrypted(), fx.files.contains_key("AUDIT.log"), "{mode:?}: AUDIT.log");
    for probe in [&b""[..], b"a", b"a-0000\x00", b"w9-0000", b"zz", b"\xff"] {
        m.touched.insert(probe.to_vec());
    }
    fx.universe = m.touched.into_iter().collect();
    fx
}

/// The outcome of one trial.
#[derive(Debug)]
enum Outcome {
    Detected,
    Harmless,
    /// The state after this many WAL batches, fewer than all (or, for the audit log, a cut
    /// chain), where that is out of scope.
    Prefix(usize),
    Wrong(String),
    BadError(String),
    Panic(String),
}

/// What a reader saw.
struct Observed {
    /// One per key of the fixture's universe.
    gets: Vec<sealdb::Result<Option<Vec<u8>>>>,
    /// What the iterator returned before it ended or failed.
    iter: Vec<(Vec<u8>, Vec<u8>)>,
    /// `None` if the iterator ended cleanly.
    iter_err: Option<Error>,
}

fn observe(fx: &Fixture, db: &DB) -> Observed {
    let gets = fx.universe.iter().map(|k| db.get(k)).collect();
    let mut iter = Vec::new();
    let mut iter_err = None;
    // A bound, in case a damaged iterator never ends.
    let cap = fx.universe.len() + 10;
    for item in db {
        match item {
            Ok(kv) => {
                iter.push(kv);
                if iter.len() > cap {
                    break;
                }
            }
            Err(e) => {
                iter_err = Some(e);
                break;
            }
        }
    }
    Observed { gets, iter, iter_err }
}

/// Whether every `Ok` read agrees with `state` (an iterator that failed, up to its error).
fn consistent(fx: &Fixture, o: &Observed, state: &State) -> bool {
    let gets_agree = fx
        .universe
        .iter()
        .zip(&o.gets)
        .all(|(k, r)| r.as_ref().map_or(true, |got| got.as_ref() == state.get(k)));
    let iter_len_ok = if o.iter_err.is_none() {
        o.iter.len() == state.len()
    } else {
        o.iter.len() <= state.len()
    };
    gets_agree
        && iter_len_ok
        && o.iter.iter().zip(state).all(|((k, v), (sk, sv))| k == sk && v == sv)
}

/// The first difference between what was read and the full state, and which WAL batches the
/// reads show applied, for the report.
fn difference(fx: &Fixture, o: &Observed) -> String {
    let state = fx.full();
    let mut s = String::new();
    for (k, r) in fx.universe.iter().zip(&o.gets) {
        if let Ok(got) = r {
            if got.as_ref() != state.get(k) {
                let want = show_opt(state.get(k).map(Vec::as_slice));
                s = format!(
                    "get {} returned Ok({}), expected {want}",
                    show(k),
                    show_opt(got.as_deref())
                );
                break;
            }
        }
    }
    if s.is_empty() {
        let extra = o.iter.len().saturating_sub(state.len());
        s = match o.iter.iter().zip(state).position(|((k, v), (sk, sv))| k != sk || v != sv) {
            Some(i) => format!("iter item {i} is {} = {}", show(&o.iter[i].0), show(&o.iter[i].1)),
            None if extra > 0 => format!("iter returned {extra} extra keys"),
            None => format!("iter ended with Ok after {} of {} keys", o.iter.len(), state.len()),
        };
    }
    // Which WAL batches the gets show: applied (every key at its new state), not applied
    // (every key at its state before the WAL), or mixed.
    let (before, after) = (&fx.states[0], fx.full());
    let shown: Vec<char> = fx
        .batch_keys
        .iter()
        .map(|keys| {
            let seen = |st: &State| {
                keys.iter().all(|k| {
                    let i = fx.universe.binary_search(k).expect("batch key in universe");
                    o.gets[i].as_ref().map_or(true, |got| got.as_ref() == st.get(k))
                })
            };
            match (seen(after), seen(before)) {
                (true, _) => 'A',
                (false, true) => '-',
                (false, false) => '?',
            }
        })
        .collect();
    let _ =
        write!(s, "; WAL batches seen (A applied, - not, ? mixed): {}", String::from_iter(shown));
    s
}

fn classify(fx: &Fixture, kind: Kind, prefix_ok: bool, o: &Observed) -> Outcome {
    let errors: Vec<&Error> =
        o.gets.iter().filter_map(|r| r.as_ref().err()).chain(o.iter_err.as_ref()).collect();
    if let Some(e) = errors.iter().find(|e| !kind.accepts(e)) {
        return Outcome::BadError(format!("read error {e:?}"));
    }
    let full = fx.states.len() - 1;
    let prefix = || (0..full).rev().find(|&p| consistent(fx, o, &fx.states[p]));
    if errors.is_empty() {
        if consistent(fx, o, fx.full()) {
            return Outcome::Harmless;
        }
        if prefix_ok {
            if let Some(p) = prefix() {
                return Outcome::Prefix(p);
            }
        }
    } else if consistent(fx, o, fx.full()) || (prefix_ok && prefix().is_some()) {
        return Outcome::Detected;
    }
    Outcome::Wrong(difference(fx, o))
}

/// One alteration to try, and how to judge it.
struct Trial {
    fixture: usize,
    kind: Kind,
    op: Op,
    alter: Alter,
    /// Whether a prefix of the WAL batches is an acceptable (out-of-scope) result.
    prefix_ok: bool,
}

/// Writes the altered copy to `dir`, opens it, reads everything, closes it.
fn run_trial(fx: &Fixture, t: &Trial, dir: &Path) -> Outcome {
    let mut files = fx.files.clone();
    t.alter.apply(&mut files);
    std::fs::create_dir_all(dir).expect("trial dir");
    for (name, data) in &files {
        std::fs::write(dir.join(name), data).expect("write trial file");
    }
    // The DB lives outside the closure so that a panic does not drop it while unwinding (a
    // second panic in its Drop would abort the test binary).
    let mut slot: Option<DB> = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let db = match DB::open(fx.options(dir)) {
            Ok(db) => slot.insert(db),
            Err(e) if t.kind.accepts(&e) => return Outcome::Detected,
            Err(e) => return Outcome::BadError(format!("open error {e:?}")),
        };
        let o = observe(fx, db);
        if t.kind != Kind::Audit {
            return classify(fx, t.kind, t.prefix_ok, &o);
        }
        // The data must read back exactly; the audit log itself must report an edit.
        match classify(fx, t.kind, false, &o) {
            Outcome::Harmless => {}
            other => return other,
        }
        match db.verify_audit_log() {
            Ok(_) if t.prefix_ok => Outcome::Prefix(fx.states.len() - 1),
            Ok(_) => Outcome::Harmless,
            Err(e) if e.is_corruption() => Outcome::Detected,
            Err(e) => Outcome::BadError(format!("verify_audit_log error {e:?}")),
        }
    }))
    .unwrap_or_else(|p| Outcome::Panic(panic_message(&*p)));
    let outcome = match slot.take() {
        None => outcome,
        Some(db) => match catch_unwind(AssertUnwindSafe(move || drop(db))) {
            Ok(()) => outcome,
            Err(p) => Outcome::Panic(format!("while dropping the DB: {}", panic_message(&*p))),
        },
    };
    let _ = std::fs::remove_dir_all(dir);
    outcome
}

/// Positions to flip in a file of `len` bytes.
fn flip_positions(depth: Depth, len: usize) -> Vec<usize> {
    if depth == Depth::Full || len <= SMALL_FILE {
        return (0..len).collect();
    }
    let mut v: Vec<usize> = (0..ENDS).chain(len - ENDS..len).collect();
    let span = len - 2 * ENDS;
    v.extend((0..SPREAD).map(|i| ENDS + i * span / SPREAD + span / SPREAD / 2));
    v.sort_unstable();
    v.dedup();
    v
}

/// Lengths to truncate `name` to, all shorter than the file.
fn truncation_lengths(fx: &Fixture, depth: Depth, name: &str) -> Vec<usize> {
    let len = fx.files[name].len();
    let h = fx.file_header_len();
    let mut v = vec![0, 1, 8, 63, 64, h - 1, h, len / 3, len / 2, 2 * len / 3];
    v.extend([len.saturating_sub(fx.tag_len()), len.saturating_sub(12), len.saturating_sub(1)]);
    let units = fx.units(name);
    match depth {
        Depth::Short => {
            // At the first two and last two block (or line) boundaries, and inside them.
            let n = units.len();
            for &(off, total, _) in
                units.iter().take(2).chain(units.iter().skip(n.saturating_sub(2)))
            {
                v.extend([off, off + total / 2, off + total - 1]);
            }
        }
        Depth::Full => {
            for &(off, total, _) in &units {
                v.extend([
                    off.saturating_sub(1),
                    off,
                    off + 1,
                    off + 20,
                    off + 31,
                    off + 32,
                    off + total - 1,
                ]);
            }
            v.extend((0..len).step_by(16));
        }
    }
    v.retain(|&c| c < len);
    v.sort_unstable();
    v.dedup();
    v
}

/// Pairs of sealed blocks (or audit lines) of `name` to swap: blocks of the same kind and
/// length (which keeps every offset after them in place), and blocks of different lengths
/// (the file is rebuilt around them).
fn block_swaps(fx: &Fixture, depth: Depth, name: &str) -> Vec<((usize, usize), (usize, usize))> {
    let units = fx.units(name);
    let mut same = Vec::new();
    for (i, a) in units.iter().enumerate() {
        for b in &units[i + 1..] {
            if a.1 == b.1 && a.2 == b.2 {
                same.push(((a.0, a.1), (b.0, b.1)));
            }
        }
    }
    let mut pairs = Vec::new();
    match depth {
        Depth::Short => {
            // The first and the last pair of equal blocks.
            pairs.extend(same.first().copied());
            pairs.extend(same.last().copied());
        }
        Depth::Full => {
            let step = same.len().div_ceil(64).max(1);
            pairs.extend(same.iter().step_by(step).copied());
            pairs.extend(units.windows(2).map(|w| ((w[0].0, w[0].1), (w[1].0, w[1].1))));
        }
    }
    if let (Some(a), Some(b)) = (units.first(), units.last()) {
        if units.len() >= 2 {
            pairs.push(((a.0, a.1), (b.0, b.1)));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Every trial on fixture `i`.
fn plan(fixtures: &[Fixture], i: usize, depth: Depth, trials: &mut Vec<Trial>) {
    let fx = &fixtures[i];
    let mut push = |kind: Kind, op: Op, alter: Alter, prefix_ok: bool| {
        trials.push(Trial { fixture: i, kind, op, alter, prefix_ok });
    };
    let wals = fx.names(Kind::Wal);
    if wals.len() == 2 {
        // What a second WAL adds (flips inside WALs are swept on the one-WAL fixtures).
        // Losing the tail of the *newer* WAL is a crash before those writes: a prefix is out of
        // scope. The older WAL was synced before the newer one was created, so a cut or missing
        // older WAL is no crash state: it must be detected, or at worst recover a prefix.
        // Regression: dropping or truncating the older WAL once recovered the newer WAL's
        // batches over a hole (a wrong answer); recovery now checks the chain of end records.
        let (older, newer) = (&wals[0], &wals[1]);
        push(
            Kind::WalPair,
            Op::SwapFiles,
            Alter::SwapFiles { a: older.clone(), b: newer.clone() },
            false,
        );
        for w in [older, newer] {
            for len in truncation_lengths(fx, depth, w) {
                push(Kind::WalPair, Op::Truncate, Alter::Truncate { file: w.clone(), len }, true);
            }
            for (a, b) in block_swaps(fx, depth, w) {
                let alter = Alter::SwapRanges { file: w.clone(), a, b };
                push(Kind::WalPair, Op::SwapBlocks, alter, false);
            }
            push(Kind::WalPair, Op::Drop, Alter::Drop { file: w.clone() }, true);
        }
        return;
    }
    for (name, data) in &fx.files {
        let Some(kind) = Kind::of(name) else { continue };
        for pos in flip_positions(depth, data.len()) {
            for mask in MASKS {
                push(kind, Op::Flip, Alter::Flip { file: name.clone(), pos, mask }, false);
            }
        }
        // Cutting the WAL, or the segment its large values went to, is a crash before those
        // writes; cutting the audit log at a line boundary leaves a prefix of its chain.
        let cut_ok = matches!(kind, Kind::Wal | Kind::Audit) || *name == fx.active_segment;
        for len in truncation_lengths(fx, depth, name) {
            push(kind, Op::Truncate, Alter::Truncate { file: name.clone(), len }, cut_ok);
        }
        for (a, b) in block_swaps(fx, depth, name) {
            push(kind, Op::SwapBlocks, Alter::SwapRanges { file: name.clone(), a, b }, false);
        }
        // Dropping the WAL is a rollback of its writes (out of scope). Every other file is
        // named by the manifest (or is the registry): its loss must be a corruption. The audit
        // log is recreated; the data must not notice.
        push(kind, Op::Drop, Alter::Drop { file: name.clone() }, kind == Kind::Wal);
    }
    for kind in [Kind::Table, Kind::ValueLog] {
        let names = fx.names(kind);
        for (x, a) in names.iter().enumerate() {
            for b in &names[x + 1..] {
                push(kind, Op::SwapFiles, Alter::SwapFiles { a: a.clone(), b: b.clone() }, false);
            }
        }
    }
}

/// Runs every trial on `workers` threads; returns the outcomes in trial order.
fn run_all(fixtures: &[Fixture], trials: &[Trial], depth: Depth) -> Vec<Outcome> {
    let root = common::fast_tempdir();
    let next = AtomicUsize::new(0);
    let outcomes: Vec<Mutex<Option<Outcome>>> = trials.iter().map(|_| Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let running: Vec<Mutex<Option<(usize, Instant)>>> =
        (0..workers).map(|_| Mutex::new(None)).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (next, outcomes, running) = (&next, &outcomes, &running);
                let dir = root.path().join(format!("worker-{w}"));
                s.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = trials.get(i) else { break };
                    *running[w].lock().expect("lock") = Some((i, Instant::now()));
                    let o = run_trial(&fixtures[t.fixture], t, &dir.join(i.to_string()));
                    *outcomes[i].lock().expect("lock") = Some(o);
                    *running[w].lock().expect("lock") = None;
                })
            })
            .collect();
        // Watchdog: a hang is a failure too; name it and stop rather than wait forever.
        let (next, running, done) = (&next, &running, &done);
        s.spawn(move || {
            let mut report = Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                for r in running {
                    if let Some((i, since)) = *r.lock().expect("lock") {
                        if since.elapsed() > HANG {
                            let t = &trials[i];
                            eprintln!(
                                "HANG: {} {}: {} ran for more than {HANG:?}",
                                mode_name(fixtures[t.fixture].mode),
                                t.kind.name(),
                                t.alter.describe()
                            );
                            std::process::abort();
                        }
                    }
                }
                if depth == Depth::Full && report.elapsed() > Duration::from_secs(30) {
                    report = Instant::now();
                    let n = next.load(Ordering::Relaxed).min(trials.len());
                    eprintln!("tamper sweep: {n} of {} trials started", trials.len());
                }
            }
        });
        for h in handles {
            h.join().expect("worker");
        }
        done.store(true, Ordering::Relaxed);
    });
    outcomes.into_iter().map(|o| o.into_inner().expect("lock").expect("every trial ran")).collect()
}

/// Counts of one table row.
#[derive(Default)]
struct Tally {
    trials: usize,
    detected: usize,
    harmless: usize,
    prefix: usize,
    wrong: usize,
    bad_error: usize,
    panic: usize,
    /// A few harmless or out-of-scope alterations, to show what they were.
    examples: Vec<String>,
}

impl Tally {
    fn cells(&self) -> [usize; 7] {
        [
            self.trials,
            self.detected,
            self.harmless,
            self.prefix,
            self.wrong,
            self.bad_error,
            self.panic,
        ]
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Plain => "plain",
        Mode::Aes => "AES-256-GCM",
        Mode::ChaCha => "ChaCha20-Poly1305",
    }
}

/// (mode, kind, operation).
type Row = (usize, Kind, Op);

fn table(rows: &BTreeMap<Row, Tally>) -> String {
    fn line(s: &mut String, label: [&str; 3], cells: [usize; 7]) {
        let _ = write!(s, "{:<18} {:<13} {:<12}", label[0], label[1], label[2]);
        for c in cells {
            let _ = write!(s, " {c:>8}");
        }
        s.push('\n');
    }
    let mut s = format!(
        "{:<18} {:<13} {:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "mode",
        "file",
        "operation",
        "trials",
        "detected",
        "harmless",
        "prefix*",
        "wrong",
        "bad err",
        "panic"
    );
    let mut total = [0; 7];
    for (&(m, kind, op), t) in rows {
        line(&mut s, [mode_name(MODES[m]), kind.name(), op.name(kind)], t.cells());
        for (sum, c) in total.iter_mut().zip(t.cells()) {
            *sum += c;
        }
    }
    line(&mut s, ["total", "", ""], total);
    s.push_str(
        "prefix* = out-of-scope prefix: exactly the state after a prefix of the WAL batches (a \
         WAL or the active value-log segment cut, or a WAL dropped), or an audit log cut at a \
         line boundary\n",
    );
    s
}

/// Builds the fixtures (with one WAL, or with two), runs the sweep, prints the table and checks
/// it.
fn sweep(test: &str, two_wals: bool, default_seed: u64) {
    let depth = Depth::from_env();
    let started = Instant::now();
    let seed = common::seed(test, default_seed);
    let mut fixtures = Vec::new();
    let mut trials = Vec::new();
    for (m, &mode) in MODES.iter().enumerate() {
        fixtures.push(build(mode, seed.wrapping_add(m as u64), two_wals));
        plan(&fixtures, m, depth, &mut trials);
    }
    for fx in &fixtures {
        let sizes: Vec<String> = fx.files.iter().map(|(n, d)| format!("{n} {}", d.len())).collect();
        eprintln!("{test}: {} files: {}", mode_name(fx.mode), sizes.join(", "));
    }
    // Baselines: each untouched copy reads back exactly (and its audit log verifies).
    let baselines: Vec<Trial> = fixtures
        .iter()
        .enumerate()
        .map(|(i, fx)| Trial {
            fixture: i,
            kind: if fx.mode.encrypted() { Kind::Audit } else { Kind::Table },
            op: Op::Flip,
            alter: Alter::Nothing,
            prefix_ok: false,
        })
        .collect();
    for (t, o) in baselines.iter().zip(run_all(&fixtures, &baselines, depth)) {
        let mode = mode_name(fixtures[t.fixture].mode);
        assert!(matches!(o, Outcome::Harmless), "{mode}: the untouched copy reads back {o:?}");
    }
    eprintln!("{test} ({depth:?}): {} trials", trials.len());
    let outcomes = run_all(&fixtures, &trials, depth);

    let mut rows: BTreeMap<Row, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for (t, o) in trials.iter().zip(outcomes) {
        let mode = fixtures[t.fixture].mode;
        let row = rows.entry((t.fixture, t.kind, t.op)).or_default();
        row.trials += 1;
        let what = format!("{} {}: {}", mode_name(mode), t.kind.name(), t.alter.describe());
        let example = |row: &mut Tally, s: String| {
            if row.examples.len() < 3 {
                row.examples.push(s);
            }
        };
        match o {
            Outcome::Detected => row.detected += 1,
            Outcome::Harmless => {
                row.harmless += 1;
                example(row, format!("harmless: {}", t.alter.describe()));
            }
            Outcome::Prefix(p) => {
                row.prefix += 1;
                example(row, format!("prefix {p}: {}", t.alter.describe()));
            }
            Outcome::Wrong(s) => {
                row.wrong += 1;
                failures.push(format!("WRONG {what}: {s}"));
            }
            Outcome::BadError(s) => {
                row.bad_error += 1;
                failures.push(format!("BAD ERROR {what}: {s}"));
            }
            Outcome::Panic(s) => {
                row.panic += 1;
                failures.push(format!("PANIC {what}: {s}"));
            }
        }
    }
    eprintln!("\n{}", table(&rows));
    for (&(m, kind, op), t) in &rows {
        if !t.examples.is_empty() {
            let row = format!("{} {} {}", mode_name(MODES[m]), kind.name(), op.name(kind));
            eprintln!("  {row}: {}", t.examples.join("; "));
        }
    }
    eprintln!(
        "{test} ({depth:?}, seed {seed}): {} trials in {:.1?}",
        trials.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} wrong answers, bad errors or panics (seed {seed}); the first ones:\n{}",
        failures.len(),
        failures.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    for (&(m, kind, op), t) in &rows {
        assert!(
            op != Op::Flip || t.detected > 0,
            "{} {}: no flipped byte was detected",
            mode_name(MODES[m]),
            kind.name()
        );
    }
}

/// Every file kind, every operation, on databases with one WAL.
#[test]
fn tamper_sweep() {
    sweep("tamper sweep", false, 0x5EA1_7A3F);
}

/// Swapping, dropping and truncating one WAL of two.
///
/// Two WALs: dropping or truncating the older one must be detected (the chain of end records),
/// while cutting the newer one recovers a prefix.
#[test]
fn tamper_sweep_wal_pair() {
    sweep("tamper sweep, two WALs", true, 0x5EA1_7A40);
}
