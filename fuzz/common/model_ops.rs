//! The `model_ops` fuzz target's interpreter: runs the operations an input encodes against a
//! database (through a fault-injecting file system) and against a `BTreeMap` model, and panics
//! where they disagree.
//!
//! Shared, as a `#[path]` module, by `fuzz/fuzz_targets/model_ops.rs` and
//! `tests/fuzz_corpus.rs` (which replays the seeds of `fuzz/corpus/model_ops/` once each).
//!
//! # Input
//!
//! Byte 0 picks the mode (`% 3`: plain, AES-256-GCM, ChaCha20-Poly1305). Then each operation is
//! an opcode byte (`% 16`) and its argument bytes (missing bytes read as 0); at most [`MAX_OPS`]
//! operations run. A key byte picks one of [`KEYS`] keys; a length byte picks a value length
//! (0..=127, 255, 256, then 256 + 37 steps up to 4918: values of 256 bytes and more go to the
//! value log); a fill byte picks the content (even: runs of one byte, odd: noise).
//!
//! | opcode | operation | argument bytes |
//! | --- | --- | --- |
//! | 0, 1, 2 | put | key, length, fill |
//! | 3 | delete | key |
//! | 4 | batch of `1 + n % 8` puts and deletes | n, then per op: kind (`% 4 == 0` deletes), key, length, fill |
//! | 5 | flush | |
//! | 6 | compact (and value-log GC) | |
//! | 7 | close and reopen | |
//! | 8 | get, checked | key |
//! | 9 | full scan, checked | |
//! | 10 | range scan `[lo, hi)`, checked | lo key, hi key |
//! | 11 | arm a fault: `FaultFs::fail_after` | call (`% 5`: write, sync, read, create, rename), calls to skip, fault (`% 3`: error, short write, ENOSPC; bit 7: sticky) |
//! | 12 | clear the faults | |
//! | 13 | sync | |
//! | 14 | snapshot: take (even) or check (odd) | which |
//! | 15 | rotate the data key (even) or re-encrypt (odd); no-op when plain | which |
//!
//! # What is checked
//!
//! - Reads (get, scans, snapshots) that succeed return exactly the model's data, always. They
//!   may fail only while a fault is armed and after one was injected.
//! - Any other operation may fail only after a fault was injected since the database was opened
//!   (a fault may poison the database for the calls after it). On a failure the database is
//!   dropped, the faults cleared and the database reopened, which must succeed: every
//!   acknowledged write must be there, and the failed batch (if any) must have landed whole or
//!   not at all (the model takes it in if it landed).
//! - At the end the faults are cleared and the database closed and reopened; it must hold the
//!   model exactly.
//! - Nothing panics.
//!
//! With `MODEL_OPS_TRACE` set in the environment, each run prints the operations it ran.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sealdb::io::{Fault, FaultFs, FaultOp};
use sealdb::{Cipher, Encryption, MasterKey, Options, Snapshot, WriteBatch, DB};

/// Most operations run for one input.
pub const MAX_OPS: usize = 200;
/// Distinct keys (16 short ones, the rest long, for prefix compression).
pub const KEYS: u8 = 24;
/// Values of at least this many bytes go to the value log.
const VALUE_THRESHOLD: usize = 256;
const MASTER: [u8; 32] = [0x33; 32];

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
/// One op of a write: the key and its value (`None` deletes).
type Op = (Vec<u8>, Option<Vec<u8>>);

/// Runs the operations `data` encodes; panics on any disagreement with the model.
pub fn run(data: &[u8]) {
    let Some((&mode, ops)) = data.split_first() else { return };
    let mut h = Harness::new(mode);
    let mut input = Input { data: ops, pos: 0 };
    let mut n = 0;
    while !input.done() && n < MAX_OPS {
        h.step(&mut input);
        n += 1;
    }
    h.finish();
}

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

fn key(b: u8) -> Vec<u8> {
    let n = b % KEYS;
    if n < 16 {
        format!("key-{n:02}").into_bytes()
    } else {
        format!("key-{n:02}-{}", "long".repeat(20)).into_bytes()
    }
}

fn value_len(b: u8) -> usize {
    match b {
        0..=127 => usize::from(b),
        128 => VALUE_THRESHOLD - 1,
        129 => VALUE_THRESHOLD,
        _ => VALUE_THRESHOLD + usize::from(b - 129) * 37,
    }
}

/// A value of `len` bytes, distinct per `stamp` (written into its first bytes).
fn value(len: usize, fill: u8, stamp: u64) -> Vec<u8> {
    let mut s = (u64::from(fill) << 32) | stamp | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|i| {
            if fill & 1 == 0 {
                fill.wrapping_add((i / 64) as u8)
            } else {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            }
        })
        .collect();
    for (d, b) in v.iter_mut().zip(stamp.to_le_bytes()) {
        *d = b;
    }
    v
}

fn show_key(k: &[u8]) -> String {
    let s = String::from_utf8_lossy(k);
    if s.len() > 12 {
        format!("{}…", &s[..10])
    } else {
        s.into_owned()
    }
}

fn show_op((k, v): &Op) -> String {
    match v {
        Some(v) => format!("put {} ({} bytes)", show_key(k), v.len()),
        None => format!("delete {}", show_key(k)),
    }
}

/// `model` with `ops` applied.
fn applied(model: &Model, ops: &[Op]) -> Model {
    let mut m = model.clone();
    for (k, v) in ops {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
    m
}

/// Where two states differ, briefly.
fn diff(got: &Model, want: &Model) -> String {
    let mut out = String::new();
    for k in got.keys().chain(want.keys()).collect::<std::collections::BTreeSet<_>>() {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            let len = |v: Option<&Vec<u8>>| {
                v.map_or("absent".to_owned(), |v| format!("{} bytes", v.len()))
            };
            let _ = write!(out, "\n    {}: db {}, model {}", show_key(k), len(g), len(w));
        }
    }
    out
}

/// Fields drop in order: the snapshot, then the database, and the directory last.
struct Harness {
    snapshot: Option<(Snapshot, Model)>,
    db: Option<DB>,
    fs: FaultFs,
    cipher: Option<Cipher>,
    model: Model,
    /// A fault was armed and not cleared since.
    armed: bool,
    /// `fs.injected()` when the database was last opened.
    injected_at_open: u64,
    /// Distinguishes values.
    stamp: u64,
    /// The operations run so far, for panic messages.
    trace: Vec<String>,
    dir: tempfile::TempDir,
}

impl Harness {
    fn new(mode: u8) -> Harness {
        let shm = std::path::Path::new("/dev/shm");
        let mut b = tempfile::Builder::new();
        b.prefix("sealdb-model-");
        let dir = if shm.is_dir() { b.tempdir_in(shm) } else { b.tempdir() }
            .expect("a temporary directory");
        let cipher = match mode % 3 {
            0 => None,
            1 => Some(Cipher::Aes256Gcm),
            _ => Some(Cipher::ChaCha20Poly1305),
        };
        let mut h = Harness {
            dir,
            fs: FaultFs::new(),
            cipher,
            db: None,
            model: Model::new(),
            armed: false,
            injected_at_open: 0,
            snapshot: None,
            stamp: 0,
            trace: vec![format!("mode {cipher:?}")],
        };
        match DB::open(h.options()) {
            Ok(db) => h.db = Some(db),
            Err(e) => h.bug(&format!("creating the database failed: {e}")),
        }
        h
    }

    fn options(&self) -> Options {
        let o = Options::new(self.dir.path())
            .memtable_size(64 << 10)
            .vlog_segment_size(64 << 10)
            .value_threshold(VALUE_THRESHOLD)
            .block_size(1024)
            .cache_size(64 << 10)
            .target_file_size(64 << 10)
            .background_work(false)
            .with_fs(Arc::new(self.fs.clone()));
        match self.cipher {
            Some(c) => o.with_encryption(Encryption::new(MasterKey::from_bytes(MASTER)).cipher(c)),
            None => o,
        }
    }

    fn bug(&self, msg: &str) -> ! {
        let start = self.trace.len().saturating_sub(40);
        let mut t = String::new();
        for (i, s) in self.trace.iter().enumerate().skip(start) {
            let _ = write!(t, "\n  {i:>3}: {s}");
        }
        panic!("model_ops: {msg}\noperations (last 40):{t}");
    }

    fn db(&self) -> &DB {
        self.db.as_ref().unwrap_or_else(|| self.bug("no open database"))
    }

    /// Whether a fault was injected since the database was opened.
    fn fired(&self) -> bool {
        self.fs.injected() > self.injected_at_open
    }

    fn step(&mut self, input: &mut Input<'_>) {
        match input.byte() % 16 {
            0..=2 => {
                let (k, len, fill) = (key(input.byte()), value_len(input.byte()), input.byte());
                self.stamp += 1;
                self.write(&[(k, Some(value(len, fill, self.stamp)))], false);
            }
            3 => self.write(&[(key(input.byte()), None)], false),
            4 => {
                let n = 1 + input.byte() % 8;
                let ops: Vec<Op> = (0..n)
                    .map(|_| {
                        let (kind, k) = (input.byte(), key(input.byte()));
                        let (len, fill) = (value_len(input.byte()), input.byte());
                        self.stamp += 1;
                        (k, (kind % 4 != 0).then(|| value(len, fill, self.stamp)))
                    })
                    .collect();
                self.write(&ops, true);
            }
            5 => self.other("flush", DB::flush),
            6 => self.other("compact", DB::compact),
            7 => self.reopen(),
            8 => self.get(&key(input.byte())),
            9 => {
                self.trace.push("scan".into());
                let model = self.model.clone();
                self.scan("scan", self.db().iter(), &model);
            }
            10 => {
                let (a, b) = (key(input.byte()), key(input.byte()));
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                self.trace.push(format!("range {}..{}", show_key(&lo), show_key(&hi)));
                let want: Model = self
                    .model
                    .range(lo.clone()..hi.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                self.scan("range", self.db().range(lo..hi), &want);
            }
            11 => {
                const OPS: [FaultOp; 5] = [
                    FaultOp::Write,
                    FaultOp::Sync,
                    FaultOp::Read,
                    FaultOp::Create,
                    FaultOp::Rename,
                ];
                const FAULTS: [Fault; 3] = [Fault::Error, Fault::ShortWrite, Fault::NoSpace];
                let (op, skip, f) = (input.byte(), input.byte(), input.byte());
                let (op, fault, sticky) =
                    (OPS[usize::from(op % 5)], FAULTS[usize::from(f % 3)], f & 0x80 != 0);
                self.trace.push(format!("arm {op:?} after {skip}: {fault:?}, sticky {sticky}"));
                self.fs.fail_after(op, u64::from(skip), fault, sticky);
                self.armed = true;
            }
            12 => {
                self.trace.push("clear faults".into());
                self.fs.clear();
                self.armed = false;
            }
            13 => self.other("sync", DB::sync),
            14 => {
                if input.byte().is_multiple_of(2) {
                    self.trace.push("take snapshot".into());
                    self.snapshot = Some((self.db().snapshot(), self.model.clone()));
                } else if let Some((s, m)) = self.snapshot.take() {
                    self.trace.push("check snapshot".into());
                    self.scan("snapshot scan", s.iter(), &m);
                    self.snapshot = Some((s, m));
                }
            }
            _ => {
                let which = input.byte();
                if self.cipher.is_some() {
                    if which.is_multiple_of(2) {
                        self.other("rotate data key", |db| db.rotate_data_key().map(|_| ()));
                    } else {
                        self.other("reencrypt", DB::reencrypt);
                    }
                }
            }
        }
    }

    /// Writes `ops` (as one batch if `batch`, else with `put` or `delete`).
    fn write(&mut self, ops: &[Op], batch: bool) {
        let what = if batch {
            format!("batch [{}]", ops.iter().map(show_op).collect::<Vec<_>>().join(", "))
        } else {
            show_op(&ops[0])
        };
        self.trace.push(what.clone());
        let db = self.db();
        let r = if batch {
            let mut b = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                }
            }
            db.write(b)
        } else {
            match &ops[0] {
                (k, Some(v)) => db.put(k, v),
                (k, None) => db.delete(k),
            }
        };
        match r {
            Ok(()) => self.model = applied(&self.model, ops),
            Err(e) => self.failed(&what, &e, ops),
        }
    }

    /// Runs an operation that changes no data; on failure, recovers.
    fn other(&mut self, what: &str, f: impl FnOnce(&DB) -> sealdb::Result<()>) {
        self.trace.push(what.to_owned());
        if let Err(e) = f(self.db()) {
            self.failed(what, &e, &[]);
        }
    }

    /// `what` failed with `e` (with `pending` the ops of a failed write): a fault must have been
    /// injected; drops, clears the faults and reopens.
    fn failed(&mut self, what: &str, e: &sealdb::Error, pending: &[Op]) {
        if !self.fired() {
            self.bug(&format!("{what} failed with no fault injected: {e}"));
        }
        self.trace.push(format!("  failed: {e}"));
        self.recover(pending);
    }

    /// Drops the database (faults still armed), clears the faults and reopens; checks that it
    /// holds the model, or the model with `pending` applied (then taken in).
    fn recover(&mut self, pending: &[Op]) {
        self.snapshot = None;
        self.db = None;
        self.fs.clear();
        self.armed = false;
        self.trace.push("  drop, clear faults, reopen".into());
        self.injected_at_open = self.fs.injected();
        match DB::open(self.options()) {
            Ok(db) => self.db = Some(db),
            Err(e) => self.bug(&format!("reopening without faults failed: {e}")),
        }
        let got = self.dump("after recovery");
        if got == self.model {
            if !pending.is_empty() && applied(&self.model, pending) != self.model {
                self.trace.push("  (the failed write did not land)".into());
            }
            return;
        }
        let with = applied(&self.model, pending);
        if !pending.is_empty() && got == with {
            self.trace.push("  (the failed write landed)".into());
            self.model = with;
            return;
        }
        let mut msg = format!(
            "after recovery the database differs from the model:{}",
            diff(&got, &self.model)
        );
        if !pending.is_empty() {
            let _ =
                write!(msg, "\n  and from the model with the failed write:{}", diff(&got, &with));
        }
        self.bug(&msg);
    }

    /// The whole database, with every get checked against the scan; any error is a bug (no fault
    /// is armed).
    fn dump(&self, when: &str) -> Model {
        let db = self.db();
        let mut got = Model::new();
        for r in db {
            match r {
                Ok((k, v)) => {
                    got.insert(k, v);
                }
                Err(e) => self.bug(&format!("scan {when} failed with no fault armed: {e}")),
            }
        }
        for k in (0..KEYS).map(key) {
            match db.get(&k) {
                Ok(v) if v.as_ref() == got.get(&k) => {}
                Ok(v) => self.bug(&format!(
                    "get {} {when} returned {:?} bytes, the scan {:?}",
                    show_key(&k),
                    v.map(|v| v.len()),
                    got.get(&k).map(Vec::len)
                )),
                Err(e) => self
                    .bug(&format!("get {} {when} failed with no fault armed: {e}", show_key(&k))),
            }
        }
        got
    }

    fn read_error(&self, what: &str, e: &sealdb::Error) {
        if !(self.armed && self.fired()) {
            self.bug(&format!("{what} failed with no fault armed and injected: {e}"));
        }
    }

    fn get(&mut self, k: &[u8]) {
        self.trace.push(format!("get {}", show_key(k)));
        match self.db().get(k) {
            Ok(v) if v.as_ref() == self.model.get(k) => {}
            Ok(v) => self.bug(&format!(
                "get {} returned {:?} bytes, the model has {:?}",
                show_key(k),
                v.map(|v| v.len()),
                self.model.get(k).map(Vec::len)
            )),
            Err(e) => self.read_error("get", &e),
        }
    }

    /// Checks a scan against `want`: what it yields before any error is `want`'s beginning.
    fn scan(&self, what: &str, it: sealdb::Iter, want: &Model) {
        let mut expected = want.iter();
        for r in it {
            match r {
                Ok((k, v)) => match expected.next() {
                    Some((wk, wv)) if *wk == k && *wv == v => {}
                    Some((wk, wv)) => self.bug(&format!(
                        "{what} yielded {} ({} bytes) where the model has {} ({} bytes)",
                        show_key(&k),
                        v.len(),
                        show_key(wk),
                        wv.len()
                    )),
                    None => {
                        self.bug(&format!("{what} yielded {} past the model's end", show_key(&k)))
                    }
                },
                Err(e) => return self.read_error(what, &e),
            }
        }
        if let Some((k, _)) = expected.next() {
            self.bug(&format!("{what} ended before {}", show_key(k)));
        }
    }

    fn reopen(&mut self) {
        self.trace.push("close and reopen".into());
        self.snapshot = None;
        let db = self.db.take().unwrap_or_else(|| self.bug("no open database"));
        if let Err(e) = db.close() {
            return self.failed("close", &e, &[]);
        }
        let before = self.fs.injected();
        match DB::open(self.options()) {
            Ok(db) => {
                self.db = Some(db);
                self.injected_at_open = before;
                if !self.armed {
                    let got = self.dump("after reopen");
                    if got != self.model {
                        self.bug(&format!(
                            "after reopen the database differs from the model:{}",
                            diff(&got, &self.model)
                        ));
                    }
                }
            }
            Err(e) => {
                if self.fs.injected() == before {
                    self.bug(&format!("reopen failed with no fault injected: {e}"));
                }
                self.trace.push(format!("  failed: {e}"));
                self.recover(&[]);
            }
        }
    }

    /// Clears the faults, closes and reopens: the database must hold the model.
    fn finish(mut self) {
        self.trace.push("finish: clear faults, close, reopen".into());
        self.fs.clear();
        self.armed = false;
        self.snapshot = None;
        if let Some(db) = self.db.take() {
            if let Err(e) = db.close() {
                if !self.fired() {
                    self.bug(&format!("close failed with no fault injected: {e}"));
                }
            }
        }
        self.recover(&[]);
        if std::env::var_os("MODEL_OPS_TRACE").is_some() {
            eprintln!("model_ops: {} keys at the end; operations:", self.model.len());
            for (i, s) in self.trace.iter().enumerate() {
                eprintln!("  {i:>3}: {s}");
            }
        }
    }
}
