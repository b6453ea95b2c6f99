//! Reverse iteration: `Iter` as a `DoubleEndedIterator`.
//!
//! Plain, AES-256-GCM and ChaCha20-Poly1305 databases with values inline and in the value log,
//! spread over the memtable, L0 and the last level, with overwrites, deletes and snapshots.
//! For every kind of bound (unbounded, included, excluded, prefix) the reverse iteration must
//! equal the forward one reversed and a `BTreeMap` model; random mixes of `next` and
//! `next_back` must match the same calls on a slice iterator over the model.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use common::{show, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Iter, MasterKey, Options, DB};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Pair = (Vec<u8>, Vec<u8>);

/// Values of at least this many bytes go to the value log.
const VALUE_THRESHOLD: usize = 64;

fn open(path: &Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key)
        .memtable_size(32 << 10)
        .block_size(256)
        .target_file_size(16 << 10)
        .level_base_size(64 << 10)
        .cache_size(128 << 10)
        .value_threshold(VALUE_THRESHOLD)
        .background_work(false)
        .l0_triggers(8, 1000, 1001);
    DB::open(o).unwrap_or_else(|e| panic!("open {} ({mode:?}): {e}", path.display()))
}

/// Keys that are prefixes of one another, the empty key, and bytes at both ends of the range.
fn key_pool(rng: &mut StdRng) -> Vec<Vec<u8>> {
    const ALPHABET: [u8; 7] = [0x00, 0x01, b'a', b'b', 0x7f, 0xfe, 0xff];
    let mut pool = std::collections::BTreeSet::new();
    pool.insert(Vec::new());
    while pool.len() < 200 {
        let len = rng.gen_range(1..=3);
        pool.insert((0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect());
    }
    for n in 0..300u32 {
        pool.insert(format!("user:{n:04}").into_bytes());
        if n % 5 == 0 {
            pool.insert(format!("user:{n:04}:profile").into_bytes());
        }
    }
    pool.into_iter().collect()
}

fn value(rng: &mut StdRng, tag: u64) -> Vec<u8> {
    // About a third in the value log.
    let len = if rng.gen_bool(0.35) {
        rng.gen_range(VALUE_THRESHOLD..400)
    } else {
        rng.gen_range(0..VALUE_THRESHOLD)
    };
    let mut v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    let stamp = tag.to_be_bytes();
    let n = v.len().min(8);
    v[..n].copy_from_slice(&stamp[8 - n..]);
    v
}

/// Random puts and deletes over the pool, mirrored in the model.
fn write_some(db: &DB, model: &mut Model, pool: &[Vec<u8>], rng: &mut StdRng, n: u64, tag: u64) {
    for i in 0..n {
        let k = &pool[rng.gen_range(0..pool.len())];
        if rng.gen_bool(0.25) {
            db.delete(k).unwrap();
            model.remove(k);
        } else {
            let v = value(rng, tag * 1_000_000 + i);
            db.put(k, &v).unwrap();
            model.insert(k.clone(), v);
        }
    }
}

/// A view to check: the database now, or a snapshot, with the model as of then.
enum View<'a> {
    Db(&'a DB),
    Snapshot(&'a sealdb::Snapshot),
}

impl View<'_> {
    fn range(&self, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Iter {
        match self {
            View::Db(db) => db.range::<Vec<u8>, _>((lo.clone(), hi.clone())),
            View::Snapshot(s) => s.range::<Vec<u8>, _>((lo.clone(), hi.clone())),
        }
    }
    fn prefix(&self, p: &[u8]) -> Iter {
        match self {
            View::Db(db) => db.prefix(p),
            View::Snapshot(s) => s.prefix(p),
        }
    }
    fn iter(&self) -> Iter {
        match self {
            View::Db(db) => db.iter(),
            View::Snapshot(s) => s.iter(),
        }
    }
}

fn in_bounds(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Unbounded => true,
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
    };
    let below = match hi {
        Bound::Unbounded => true,
        Bound::Included(h) => k <= h.as_slice(),
        Bound::Excluded(h) => k < h.as_slice(),
    };
    above && below
}

fn collect(it: impl Iterator<Item = sealdb::Result<Pair>>, what: &str) -> Vec<Pair> {
    it.collect::<sealdb::Result<Vec<_>>>().unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn render(pairs: &[Pair]) -> String {
    let keys: Vec<String> = pairs.iter().take(20).map(|(k, _)| show(k)).collect();
    format!("{} pairs, first keys {keys:?}", pairs.len())
}

/// Forward equals the model, reverse equals forward reversed, and a random mix of both ends
/// behaves as on a slice iterator over the model.
fn check_iter(make: &dyn Fn() -> Iter, want: &[Pair], rng: &mut StdRng, what: &str) {
    let fwd = collect(make(), what);
    assert!(fwd == want, "{what}: forward {} != model {}", render(&fwd), render(want));
    let mut rev = collect(make().rev(), what);
    rev.reverse();
    assert!(rev == want, "{what}: reverse {} != model {}", render(&rev), render(want));
    for _ in 0..3 {
        let mut it = make();
        let mut slice = want.iter();
        let mut ops = String::new();
        // Until both are exhausted, and a few calls past that (fused).
        let mut after_end = 0;
        while after_end < 4 {
            let back = rng.gen_bool(0.5);
            ops.push(if back { 'B' } else { 'F' });
            let (got, exp) =
                if back { (it.next_back(), slice.next_back()) } else { (it.next(), slice.next()) };
            let got = got.map(|r| r.unwrap_or_else(|e| panic!("{what} after {ops}: {e}")));
            assert_eq!(
                got.as_ref().map(|(k, _)| show(k)),
                exp.map(|(k, _)| show(k)),
                "{what}: mixed ends {ops}"
            );
            assert!(got.as_ref() == exp, "{what}: value differs after {ops}");
            if exp.is_none() {
                after_end += 1;
            }
        }
    }
}

fn random_bound(rng: &mut StdRng, pool: &[Vec<u8>]) -> Bound<Vec<u8>> {
    let mut k = pool[rng.gen_range(0..pool.len())].clone();
    if rng.gen_bool(0.2) {
        // Probably absent.
        k.push(rng.gen());
    }
    match rng.gen_range(0..5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(k),
        _ => Bound::Excluded(k),
    }
}

fn check_view(view: &View, model: &Model, pool: &[Vec<u8>], rng: &mut StdRng, what: &str) {
    let all: Vec<Pair> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    check_iter(&|| view.iter(), &all, rng, &format!("{what} iter"));
    // Every kind of bound on each side, at keys present, absent, and in inverted order.
    for _ in 0..30 {
        let lo = random_bound(rng, pool);
        let hi = random_bound(rng, pool);
        let want: Vec<Pair> = all.iter().filter(|(k, _)| in_bounds(k, &lo, &hi)).cloned().collect();
        let name = format!("{what} range {lo:?}..{hi:?}");
        check_iter(&|| view.range(&lo, &hi), &want, rng, &name);
    }
    let mut prefixes: Vec<Vec<u8>> =
        vec![Vec::new(), b"user:".to_vec(), b"user:00".to_vec(), vec![0xff], vec![0xff, 0xff]];
    for _ in 0..10 {
        let k = &pool[rng.gen_range(0..pool.len())];
        prefixes.push(k[..rng.gen_range(0..=k.len())].to_vec());
    }
    for p in prefixes {
        let want: Vec<Pair> = all.iter().filter(|(k, _)| k.starts_with(&p)).cloned().collect();
        check_iter(&|| view.prefix(&p), &want, rng, &format!("{what} prefix {}", show(&p)));
    }
}

fn run(mode: Mode, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(dir.path(), mode, &key);
    let mut rng = StdRng::seed_from_u64(seed);
    let pool = key_pool(&mut rng);
    let mut model = Model::new();
    let mut snapshots = Vec::new();

    // Generation 1, compacted to the last level.
    write_some(&db, &mut model, &pool, &mut rng, 1_500, 1);
    db.compact().unwrap();
    snapshots.push((db.snapshot(), model.clone()));
    check_view(&View::Db(&db), &model, &pool, &mut rng, &format!("{mode:?} last level"));
    // Generation 2: overwrites and deletes flushed to L0 tables over it.
    for round in 0..3 {
        write_some(&db, &mut model, &pool, &mut rng, 300, 2 + round);
        db.flush().unwrap();
    }
    snapshots.push((db.snapshot(), model.clone()));
    // Generation 3: in the memtable.
    write_some(&db, &mut model, &pool, &mut rng, 300, 9);
    snapshots.push((db.snapshot(), model.clone()));
    // After the last snapshot: invisible to it.
    write_some(&db, &mut model, &pool, &mut rng, 200, 10);

    check_view(&View::Db(&db), &model, &pool, &mut rng, &format!("{mode:?} all levels"));
    for (i, (snap, m)) in snapshots.iter().enumerate() {
        check_view(&View::Snapshot(snap), m, &pool, &mut rng, &format!("{mode:?} snapshot {i}"));
    }
    // Snapshots still read right after everything is compacted away under them.
    db.compact().unwrap();
    check_view(&View::Db(&db), &model, &pool, &mut rng, &format!("{mode:?} compacted"));
    let (snap, m) = &snapshots[1];
    check_view(&View::Snapshot(snap), m, &pool, &mut rng, &format!("{mode:?} old snapshot"));
}

#[test]
fn reverse_plain() {
    run(Mode::Plain, common::seed("reverse_plain", 1));
}

#[test]
fn reverse_aes() {
    run(Mode::Aes, common::seed("reverse_aes", 2));
}

#[test]
fn reverse_chacha() {
    run(Mode::ChaCha, common::seed("reverse_chacha", 3));
}

/// Std's double-ended iterator contract on a small, fixed example: the ends meet and stop.
#[test]
fn ends_meet_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(dir.path(), Mode::Aes, &key);
    for i in 0..10u8 {
        db.put([b'k', i], [i; 100]).unwrap();
    }
    db.flush().unwrap();
    db.delete([b'k', 4]).unwrap();
    db.put([b'k', 5], b"new").unwrap();

    let mut it = db.iter();
    assert_eq!(it.next().unwrap().unwrap().0, [b'k', 0]);
    assert_eq!(it.next_back().unwrap().unwrap().0, [b'k', 9]);
    assert_eq!(it.next_back().unwrap().unwrap().0, [b'k', 8]);
    assert_eq!(it.next().unwrap().unwrap().0, [b'k', 1]);
    let rest: Vec<Vec<u8>> = it.by_ref().map(|r| r.unwrap().0).collect();
    assert_eq!(rest, [[b'k', 2], [b'k', 3], [b'k', 5], [b'k', 6], [b'k', 7]]);
    assert!(it.next_back().is_none());
    assert!(it.next().is_none());

    let rev: Vec<Pair> = db.range([b'k', 3]..=[b'k', 6]).rev().map(Result::unwrap).collect();
    let keys: Vec<&[u8]> = rev.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [&[b'k', 6][..], &[b'k', 5], &[b'k', 3]]);
    assert_eq!(rev[1].1, b"new");
    assert_eq!(rev[0].1, [6u8; 100]);
    let last = db.prefix(b"k").next_back().unwrap().unwrap();
    assert_eq!(last, (vec![b'k', 9], vec![9u8; 100]));
}
