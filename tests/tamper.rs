//! Tampering: flipped bytes in SSTables, value-log segments, the MANIFEST and the KEYS file,
//! truncated files and a missing SSTable or segment must give an error (or, for a byte nothing depends on, exactly the right
//! data), never a wrong value, a missing key with `Ok`, or a panic.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::{copy_dir, files_with_suffix, panic_message, show, show_opt, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Error, MasterKey, Options, WriteBatch, DB};

/// Bytes checked at the start of a large file (file header, first block).
const HEAD: usize = 128;
/// Bytes checked at the end of a large file (index, filter, properties, footer, trailer).
const TAIL: usize = 256;
/// Evenly spaced positions checked between the ends of a large file.
const MIDDLE: usize = 32;
/// XOR masks applied at each position.
const MASKS: [u8; 2] = [0x01, 0x80];

/// What a file in the directory is, for the tally and for which errors are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Table,
    ValueLog,
    Manifest,
    Keys,
}

impl Kind {
    fn accepts(self, e: &Error) -> bool {
        match self {
            Kind::Table | Kind::ValueLog | Kind::Manifest => e.is_corruption(),
            // A flip in the registry's key-check bytes reads as a wrong master key.
            Kind::Keys => e.is_corruption() || matches!(e, Error::WrongMasterKey),
        }
    }
}

struct Fixture {
    _root: tempfile::TempDir,
    pristine: PathBuf,
    work: PathBuf,
    mode: Mode,
    key: MasterKey,
    /// Every key ever written (and some never written) with its expected value.
    expected: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Fixture {
    fn options(&self, path: &Path) -> Options {
        common::options(path, self.mode, &self.key).background_work(false)
    }

    fn live(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.expected.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    }
}

fn tk(chunk: u32, i: u32) -> Vec<u8> {
    format!("t{chunk}-{i:04}").into_bytes()
}

/// A closed database of a few thousand small keys in four SSTables, with overwrites and
/// deletes across tables, and a few values large enough for the value log (default threshold
/// 1 KiB).
fn build(mode: Mode, seed: u64) -> Fixture {
    let mut rng = StdRng::seed_from_u64(seed);
    let root = common::fast_tempdir();
    let pristine = root.path().join("pristine");
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let mut f = Fixture {
        pristine,
        work,
        mode,
        key: MasterKey::generate(),
        expected: BTreeMap::new(),
        _root: root,
    };
    let o =
        f.options(&f.pristine).memtable_size(256 << 10).block_size(512).l0_triggers(8, 1000, 1001);
    let db = DB::open(o).expect("open");
    let val = |rng: &mut StdRng| -> Vec<u8> {
        let len =
            if rng.gen_bool(0.02) { rng.gen_range(1_500..3_000) } else { rng.gen_range(4..40) };
        (0..len).map(|_| rng.gen()).collect()
    };
    for chunk in 0..4u32 {
        for i in 0..500 {
            let v = val(&mut rng);
            db.put(tk(chunk, i), &v).expect("put");
            f.expected.insert(tk(chunk, i), Some(v));
        }
        let mut batch = WriteBatch::new();
        match chunk {
            1 => {
                for i in 0..100 {
                    let v = val(&mut rng);
                    batch.put(tk(0, i), &v);
                    f.expected.insert(tk(0, i), Some(v));
                }
            }
            2 => {
                for i in 0..100 {
                    batch.delete(tk(1, i));
                    f.expected.insert(tk(1, i), None);
                }
            }
            3 => {
                for i in 100..150 {
                    batch.delete(tk(0, i));
                    f.expected.insert(tk(0, i), None);
                }
                for i in 0..50 {
                    let v = val(&mut rng);
                    batch.put(tk(2, i), &v);
                    f.expected.insert(tk(2, i), Some(v));
                }
            }
            _ => {}
        }
        db.write(batch).expect("batch");
        db.flush().expect("flush");
    }
    db.close().expect("close");
    for probe in [&b""[..], b"t", b"t0-", b"t4-0000", b"t0-0000\x00", b"\xff"] {
        f.expected.insert(probe.to_vec(), None);
    }
    f
}

enum Outcome {
    /// Every read returned exactly the right data.
    Exact,
    /// Some operation returned an error (and none returned wrong data).
    Detected(Error),
    /// A read returned wrong data with `Ok`.
    Wrong(String),
    /// The engine panicked.
    Panic(String),
}

/// Opens the database at `path` and reads every key through `get` and a full `iter`.
fn read_all(f: &Fixture, path: &Path, slot: &mut Option<DB>) -> Outcome {
    let db = match DB::open(f.options(path)) {
        Ok(db) => slot.insert(db),
        Err(e) => return Outcome::Detected(e),
    };
    let mut first_err = None;
    for (k, want) in &f.expected {
        match db.get(k) {
            Ok(got) if got == *want => {}
            Ok(got) => {
                return Outcome::Wrong(format!(
                    "get {} returned {}, expected {}",
                    show(k),
                    show_opt(got.as_deref()),
                    show_opt(want.as_deref())
                ))
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let mut live = f.live();
    let mut it = db.iter();
    loop {
        match it.next() {
            Some(Ok((k, v))) => match live.next() {
                Some((ek, ev)) if *ek == k && *ev == v => {}
                Some((ek, ev)) => {
                    return Outcome::Wrong(format!(
                        "iter returned {} = {}, expected {} = {}",
                        show(&k),
                        show(&v),
                        show(ek),
                        show(ev)
                    ))
                }
                None => return Outcome::Wrong(format!("iter returned extra key {}", show(&k))),
            },
            Some(Err(e)) => {
                first_err.get_or_insert(e);
                break;
            }
            None => {
                if let Some((ek, _)) = live.next() {
                    return Outcome::Wrong(format!("iter ended with Ok before key {}", show(ek)));
                }
                break;
            }
        }
    }
    match first_err {
        Some(e) => Outcome::Detected(e),
        None => Outcome::Exact,
    }
}

/// Runs one trial on a fresh copy of the pristine directory altered by `alter`.
fn trial(f: &Fixture, n: usize, alter: impl FnOnce(&Path)) -> Outcome {
    let path = f.work.join(format!("trial-{n}"));
    copy_dir(&f.pristine, &path);
    alter(&path);
    // The DB lives outside the closure so that a panic does not drop it while unwinding (a
    // second panic in its Drop would abort the test binary).
    let mut slot = None;
    let outcome = match catch_unwind(AssertUnwindSafe(|| read_all(f, &path, &mut slot))) {
        Ok(o) => o,
        Err(p) => Outcome::Panic(panic_message(&*p)),
    };
    let outcome = match (outcome, slot.take()) {
        (o, None) => o,
        (o, Some(db)) => match catch_unwind(AssertUnwindSafe(move || drop(db))) {
            Ok(()) => o,
            Err(p) => Outcome::Panic(format!("while dropping the DB: {}", panic_message(&*p))),
        },
    };
    let _ = std::fs::remove_dir_all(&path);
    outcome
}

#[derive(Default)]
struct Tally {
    detected: usize,
    harmless: usize,
    wrong: usize,
    panics: usize,
    misclassified: usize,
    /// Which alterations changed nothing visible (the first few).
    harmless_examples: Vec<String>,
    errors: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, kind: Kind, what: String, outcome: Outcome) {
        match outcome {
            Outcome::Exact => {
                self.harmless += 1;
                if self.harmless_examples.len() < 8 {
                    self.harmless_examples.push(what);
                }
            }
            Outcome::Detected(e) => {
                self.detected += 1;
                let name = format!("{e:?}");
                let name = name.split([' ', '(', '{']).next().unwrap_or("?").to_string();
                *self.errors.entry(name).or_default() += 1;
                if !kind.accepts(&e) {
                    self.misclassified += 1;
                    self.failures.push(format!("{what}: unexpected error kind: {e}"));
                }
            }
            Outcome::Wrong(s) => {
                self.wrong += 1;
                self.failures.push(format!("{what}: WRONG DATA: {s}"));
            }
            Outcome::Panic(s) => {
                self.panics += 1;
                self.failures.push(format!("{what}: PANIC: {s}"));
            }
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "detected {}, harmless {}, wrong {}, panic {}, misclassified {}; errors {:?}",
            self.detected, self.harmless, self.wrong, self.panics, self.misclassified, self.errors
        )?;
        if !self.harmless_examples.is_empty() {
            write!(f, "; harmless e.g. {:?}", self.harmless_examples)?;
        }
        Ok(())
    }
}

/// Positions to flip: every byte of a small file; the ends and an even sample of a large one.
fn positions(len: usize) -> Vec<usize> {
    if len <= HEAD + TAIL + MIDDLE {
        return (0..len).collect();
    }
    let mut v: Vec<usize> = (0..HEAD).chain(len - TAIL..len).collect();
    let span = len - HEAD - TAIL;
    v.extend((0..MIDDLE).map(|i| HEAD + i * span / MIDDLE + (span / MIDDLE) / 2));
    v.sort_unstable();
    v.dedup();
    v
}

fn flip(path: &Path, pos: usize, mask: u8) {
    let mut data = std::fs::read(path).expect("read");
    data[pos] ^= mask;
    std::fs::write(path, data).expect("write");
}

fn files_of_kind(f: &Fixture) -> Vec<(Kind, String)> {
    let mut files: Vec<(Kind, String)> =
        files_with_suffix(&f.pristine, ".sst").into_iter().map(|n| (Kind::Table, n)).collect();
    assert!(files.len() >= 4, "expected at least 4 SSTables, found {files:?}");
    let segments = files_with_suffix(&f.pristine, ".vlog");
    if segments.is_empty() {
        eprintln!("note: no value-log segment was written (values above the threshold exist)");
    }
    files.extend(segments.into_iter().map(|n| (Kind::ValueLog, n)));
    files.push((Kind::Manifest, "MANIFEST".to_string()));
    assert!(f.pristine.join("MANIFEST").is_file(), "no MANIFEST");
    if f.mode.encrypted() {
        assert!(f.pristine.join("KEYS").is_file(), "encrypted database without KEYS");
        files.push((Kind::Keys, "KEYS".to_string()));
    }
    files
}

/// The pristine copy reads back exactly, so every later difference is the tampering's.
fn check_baseline(f: &Fixture) {
    match trial(f, usize::MAX, |_| {}) {
        Outcome::Exact => {}
        Outcome::Detected(e) => panic!("{:?}: untouched database fails: {e}", f.mode),
        Outcome::Wrong(s) => panic!("{:?}: untouched database reads wrong: {s}", f.mode),
        Outcome::Panic(s) => panic!("{:?}: untouched database panics: {s}", f.mode),
    }
}

fn flipped_bytes(mode: Mode, default_seed: u64) {
    let seed = common::seed(&format!("tamper {mode:?}"), default_seed);
    let f = build(mode, seed);
    check_baseline(&f);
    let mut tallies: BTreeMap<Kind, Tally> = BTreeMap::new();
    let mut n = 0;
    for (kind, name) in files_of_kind(&f) {
        let len = std::fs::metadata(f.pristine.join(&name)).expect("metadata").len() as usize;
        for pos in positions(len) {
            for mask in MASKS {
                n += 1;
                let outcome = trial(&f, n, |p| flip(&p.join(&name), pos, mask));
                let what = format!("{mode:?} {name} (len {len}) byte {pos} ^ {mask:#04x}");
                tallies.entry(kind).or_default().record(kind, what, outcome);
            }
        }
    }
    let mut failures = Vec::new();
    for (kind, t) in &tallies {
        eprintln!("tamper {mode:?} {kind:?}: {t}");
        failures.extend(t.failures.iter().cloned());
    }
    assert!(
        failures.is_empty(),
        "{mode:?} (seed {seed}): {} bad outcomes of {n} flips; first ones:\n{}",
        failures.len(),
        failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    for (kind, t) in &tallies {
        assert!(t.detected > 0, "{mode:?} {kind:?}: no flip was detected at all ({t})");
    }
}

#[test]
fn flipped_bytes_plain() {
    flipped_bytes(Mode::Plain, 0x7A3F_0001);
}

#[test]
fn flipped_bytes_aes256gcm() {
    flipped_bytes(Mode::Aes, 0x7A3F_0002);
}

/// Truncating an SSTable, a value-log segment or the KEYS file is an error; truncating the MANIFEST is an error or
/// (a torn last record, like after a crash) exactly the right data; never wrong data.
#[test]
fn truncated_files() {
    for (mode, seed) in [(Mode::Plain, 0x7A3F_0003), (Mode::Aes, 0x7A3F_0004)] {
        let seed = common::seed(&format!("truncate {mode:?}"), seed);
        let f = build(mode, seed);
        check_baseline(&f);
        let mut failures = Vec::new();
        let mut n = 0;
        for (kind, name) in files_of_kind(&f) {
            let len = std::fs::metadata(f.pristine.join(&name)).expect("metadata").len();
            let mut cuts = vec![0, 1, len / 2, len.saturating_sub(1), len.saturating_sub(17)];
            cuts.retain(|&c| c < len);
            cuts.dedup();
            for cut in cuts {
                n += 1;
                let outcome = trial(&f, n, |p| {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(p.join(&name))
                        .expect("open for truncation");
                    file.set_len(cut).expect("truncate");
                });
                let what = format!("{mode:?} {name} (len {len}) truncated to {cut}");
                let mut t = Tally::default();
                let harmless_ok = kind == Kind::Manifest && cut > 0;
                t.record(kind, what.clone(), outcome);
                eprintln!("{what}: {t}");
                failures.append(&mut t.failures);
                if t.harmless > 0 && !harmless_ok {
                    failures.push(format!("{what}: no error, although data is gone"));
                }
            }
        }
        assert!(failures.is_empty(), "{mode:?} (seed {seed}):\n{}", failures.join("\n"));
    }
}

/// Deleting an SSTable or value-log segment the manifest names is an error (at open or at
/// read), a corruption.
#[test]
fn missing_file_is_detected() {
    for (mode, seed) in [(Mode::Plain, 0x7A3F_0005), (Mode::Aes, 0x7A3F_0006)] {
        let seed = common::seed(&format!("missing table {mode:?}"), seed);
        let f = build(mode, seed);
        check_baseline(&f);
        let mut tables = files_with_suffix(&f.pristine, ".sst");
        assert!(tables.len() >= 4, "expected at least 4 SSTables, found {tables:?}");
        tables.extend(files_with_suffix(&f.pristine, ".vlog"));
        for (n, name) in tables.iter().enumerate() {
            let outcome = trial(&f, n, |p| std::fs::remove_file(p.join(name)).expect("remove"));
            match outcome {
                Outcome::Detected(e) => assert!(
                    e.is_corruption(),
                    "{mode:?}: deleting {name} gave a non-corruption error: {e:?}"
                ),
                Outcome::Exact => panic!("{mode:?}: deleting {name} went unnoticed"),
                Outcome::Wrong(s) => panic!("{mode:?}: deleting {name} gave wrong data: {s}"),
                Outcome::Panic(s) => panic!("{mode:?}: deleting {name} panicked: {s}"),
            }
        }
    }
}
