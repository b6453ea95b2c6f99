//! Model test: tens of thousands of random operations against `DB` and a `BTreeMap`, with
//! flushes, compactions, snapshots and reopens at random points, checked through `get`,
//! `iter`, `range` and `prefix` (plain, AES-256-GCM and ChaCha20-Poly1305).

mod common;

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;

use common::{check_gets, check_scan, describe_range, hex_key, in_range, Mode, Model, View};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{MasterKey, Options, Snapshot, WriteBatch, DB};

/// Operations per mode.
const OPS: u64 = 25_000;
/// A full check (iter, every pool key, ranges, prefixes) every this many operations.
const CHECK_EVERY: u64 = 2_500;

fn open(path: &Path, mode: Mode, key: &MasterKey, background: bool) -> DB {
    let o: Options = common::options(path, mode, key)
        .memtable_size(64 << 10)
        .block_size(1 << 10)
        .target_file_size(64 << 10)
        .level_base_size(256 << 10)
        .cache_size(256 << 10)
        .background_work(background);
    // Without background work nothing compacts on its own, so the L0 triggers must not stall
    // writers; with it, small triggers make compactions frequent.
    let o = if background { o.l0_triggers(2, 6, 10) } else { o.l0_triggers(4, 1000, 1001) };
    DB::open(o).unwrap_or_else(|e| panic!("open {} ({mode:?}): {e}", path.display()))
}

/// The key space: small, with the empty key, keys that are prefixes of others, and bytes at
/// both ends of the byte range.
fn key_pool(rng: &mut StdRng) -> Vec<Vec<u8>> {
    const ALPHABET: [u8; 9] = [0x00, 0x01, b'a', b'b', b'k', 0x7f, 0x80, 0xfe, 0xff];
    let mut set = BTreeSet::new();
    set.insert(Vec::new());
    // Short keys over a small alphabet: many are prefixes of one another.
    while set.len() < 300 {
        let len = rng.gen_range(1..=3);
        set.insert((0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect());
    }
    // Longer structured keys, and their extensions.
    for n in 0..400u32 {
        set.insert(format!("user:{n}").into_bytes());
        if n % 4 == 0 {
            set.insert(format!("user:{n}:profile").into_bytes());
        }
    }
    // Random longer keys, some long enough to span restart-point prefix compression.
    while set.len() < 1_100 {
        let len = if rng.gen_bool(0.1) { rng.gen_range(40..200) } else { rng.gen_range(4..24) };
        set.insert((0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect());
    }
    // Prefixes and one-byte extensions of random members.
    let members: Vec<Vec<u8>> = set.iter().cloned().collect();
    for _ in 0..300 {
        let k = &members[rng.gen_range(0..members.len())];
        if rng.gen_bool(0.5) {
            set.insert(k[..rng.gen_range(0..=k.len())].to_vec());
        } else {
            let mut k = k.clone();
            k.push(ALPHABET[rng.gen_range(0..ALPHABET.len())]);
            set.insert(k);
        }
    }
    set.into_iter().collect()
}

fn random_value(rng: &mut StdRng, op: u64) -> Vec<u8> {
    let len = match rng.gen_range(0..100) {
        0..=4 => 0,
        5..=59 => rng.gen_range(1..40),
        60..=89 => rng.gen_range(40..400),
        90..=97 => rng.gen_range(400..4_000),
        _ => rng.gen_range(4_000..20_000),
    };
    let mut v = vec![0u8; len];
    if rng.gen_bool(0.5) {
        rng.fill(&mut v[..]);
    } else {
        // Compressible.
        let b: u8 = rng.gen();
        for (i, x) in v.iter_mut().enumerate() {
            *x = b.wrapping_add((i / 7) as u8);
        }
    }
    // Stamp the operation number so that a stale value cannot pass for a new one.
    let stamp = op.to_be_bytes();
    let n = v.len().min(8);
    v[..n].copy_from_slice(&stamp[8 - n..]);
    v
}

/// A key from the pool (biased toward keys present in the model when `present` is likely),
/// or occasionally one outside it.
fn pick_key(rng: &mut StdRng, pool: &[Vec<u8>], model: &Model, p_present: f64) -> Vec<u8> {
    if !model.is_empty() && rng.gen_bool(p_present) {
        let i = rng.gen_range(0..model.len());
        return model.keys().nth(i).expect("in range").clone();
    }
    pool[rng.gen_range(0..pool.len())].clone()
}

/// A key that is probably absent: a pool key with a random tail, or random bytes.
fn random_probe(rng: &mut StdRng, pool: &[Vec<u8>]) -> Vec<u8> {
    if rng.gen_bool(0.5) {
        let mut k = pool[rng.gen_range(0..pool.len())].clone();
        k.push(rng.gen());
        k.push(rng.gen());
        k
    } else {
        let len = rng.gen_range(0..30);
        (0..len).map(|_| rng.gen()).collect()
    }
}

fn random_bound(rng: &mut StdRng, pool: &[Vec<u8>]) -> Bound<Vec<u8>> {
    let k = if rng.gen_bool(0.7) {
        pool[rng.gen_range(0..pool.len())].clone()
    } else {
        random_probe(rng, pool)
    };
    match rng.gen_range(0..5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(k),
        _ => Bound::Excluded(k),
    }
}

fn bound_key(b: &Bound<Vec<u8>>) -> Option<&Vec<u8>> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// Random bounds with start <= end (a range with equal keys is kept when at least one side is
/// inclusive; inverted ranges are tested in `bad_input.rs`).
fn random_range(rng: &mut StdRng, pool: &[Vec<u8>]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let (mut lo, mut hi) = (random_bound(rng, pool), random_bound(rng, pool));
    if let (Some(a), Some(b)) = (bound_key(&lo), bound_key(&hi)) {
        if a > b {
            std::mem::swap(&mut lo, &mut hi);
        } else if a == b {
            if let (Bound::Excluded(_), Bound::Excluded(k)) = (&lo, &hi) {
                hi = Bound::Included(k.clone());
            }
        }
    }
    (lo, hi)
}

/// Checks everything: the shared model check (full scan, every model key, absent keys next
/// to them, ranges, prefixes), then pool keys, random probes, random ranges and prefixes.
fn full_check(
    ctx: &str,
    view: &dyn View,
    model: &Model,
    pool: &[Vec<u8>],
    rng: &mut StdRng,
    gets_of_whole_pool: bool,
) {
    common::check_model(ctx, view, model);
    if gets_of_whole_pool {
        check_gets(ctx, view, model, pool.iter().map(Vec::as_slice));
    } else {
        for _ in 0..100 {
            let k = &pool[rng.gen_range(0..pool.len())];
            check_gets(ctx, view, model, [k.as_slice()]);
        }
    }
    for _ in 0..20 {
        let k = random_probe(rng, pool);
        check_gets(ctx, view, model, [k.as_slice()]);
    }
    for _ in 0..20 {
        let r = random_range(rng, pool);
        let what = format!("range{}", describe_range(&r));
        let expected = model.iter().filter(|(k, _)| in_range(k, &r));
        check_scan(ctx, &what, view.scan_range(r.clone()), expected);
    }
    for i in 0..20 {
        let p: Vec<u8> = match i {
            0 => Vec::new(),
            1 => vec![0xff],
            2 => vec![0xff, 0xff],
            3 => vec![0x00],
            4 => b"user:1".to_vec(),
            _ => {
                let k = &pool[rng.gen_range(0..pool.len())];
                k[..rng.gen_range(0..=k.len().min(6))].to_vec()
            }
        };
        let expected = model.iter().filter(|(k, _)| k.starts_with(&p));
        check_scan(ctx, &format!("prefix({})", hex_key(&p)), view.scan_prefix(&p), expected);
    }
}

fn apply_batch(model: &mut Model, ops: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for (k, v) in ops {
        match v {
            Some(v) => model.insert(k.clone(), v.clone()),
            None => model.remove(k),
        };
    }
}

fn run_model(mode: Mode, background: bool, default_seed: u64) {
    let seed = common::seed(&format!("model {mode:?}"), default_seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = common::fast_tempdir();
    let path = dir.path().join("db");
    let key = MasterKey::generate();
    let pool = key_pool(&mut rng);
    let mut model = Model::new();
    let mut db = open(&path, mode, &key, background);
    let mut snap: Option<(Snapshot, Model, u64)> = None;
    let (mut flushes, mut compactions, mut reopens, mut batches, mut snapshots) = (0, 0, 0, 0, 0);

    for op in 0..OPS {
        let ctx = format!("mode {mode:?} seed {seed} op {op}");
        match rng.gen_range(0..1000) {
            // put
            0..=449 => {
                let k = pick_key(&mut rng, &pool, &model, 0.3);
                let v = random_value(&mut rng, op);
                db.put(&k, &v).unwrap_or_else(|e| panic!("{ctx}: put {}: {e}", hex_key(&k)));
                model.insert(k, v);
            }
            // delete (half of them of present keys)
            450..=599 => {
                let k = pick_key(&mut rng, &pool, &model, 0.5);
                db.delete(&k).unwrap_or_else(|e| panic!("{ctx}: delete {}: {e}", hex_key(&k)));
                model.remove(&k);
            }
            // batch with mixed puts and deletes, some keys repeated (last op wins)
            600..=699 => {
                let n = rng.gen_range(0..=20);
                let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = if !ops.is_empty() && rng.gen_bool(0.3) {
                        ops[rng.gen_range(0..ops.len())].0.clone()
                    } else {
                        pick_key(&mut rng, &pool, &model, 0.4)
                    };
                    let v = if rng.gen_bool(0.7) { Some(random_value(&mut rng, op)) } else { None };
                    ops.push((k, v));
                }
                let mut batch = WriteBatch::new();
                for (k, v) in &ops {
                    match v {
                        Some(v) => batch.put(k, v),
                        None => batch.delete(k),
                    }
                }
                db.write(batch).unwrap_or_else(|e| panic!("{ctx}: write batch: {e}"));
                apply_batch(&mut model, &ops);
                batches += 1;
            }
            // point reads
            700..=979 => {
                let k = if rng.gen_bool(0.9) {
                    pick_key(&mut rng, &pool, &model, 0.5)
                } else {
                    random_probe(&mut rng, &pool)
                };
                check_gets(&ctx, &db, &model, [k.as_slice()]);
            }
            980..=981 => {
                db.flush().unwrap_or_else(|e| panic!("{ctx}: flush: {e}"));
                flushes += 1;
            }
            982..=983 => {
                db.compact().unwrap_or_else(|e| panic!("{ctx}: compact: {e}"));
                compactions += 1;
            }
            984..=985 => {
                if let Some((s, m, at)) = snap.take() {
                    full_check(
                        &format!("{ctx}: snapshot of op {at}"),
                        &s,
                        &m,
                        &pool,
                        &mut rng,
                        false,
                    );
                }
                if rng.gen_bool(0.5) {
                    db.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
                } else {
                    drop(db);
                }
                db = open(&path, mode, &key, background);
                reopens += 1;
            }
            986..=989 => {
                if let Some((s, m, at)) = snap.take() {
                    full_check(
                        &format!("{ctx}: snapshot of op {at}"),
                        &s,
                        &m,
                        &pool,
                        &mut rng,
                        false,
                    );
                }
                snap = Some((db.snapshot(), model.clone(), op));
                snapshots += 1;
            }
            _ => {
                let p = pick_key(&mut rng, &pool, &model, 0.5);
                let p = p[..p.len().min(2)].to_vec();
                let expected = model.iter().filter(|(k, _)| k.starts_with(&p));
                check_scan(&ctx, &format!("prefix({})", hex_key(&p)), db.prefix(&p), expected);
            }
        }
        if (op + 1) % CHECK_EVERY == 0 {
            full_check(&ctx, &db, &model, &pool, &mut rng, true);
            if let Some((s, m, at)) = &snap {
                full_check(&format!("{ctx}: snapshot of op {at}"), s, m, &pool, &mut rng, false);
            }
        }
    }
    eprintln!(
        "model {mode:?}: {OPS} ops, {batches} batches, {flushes} flushes, {compactions} \
         compactions, {reopens} reopens, {snapshots} snapshots, {} live keys",
        model.len()
    );
    assert!(flushes > 0 && compactions > 0 && reopens > 0, "the run must exercise every path");

    if let Some((s, m, at)) = snap.take() {
        full_check(
            &format!("mode {mode:?} seed {seed} end: snapshot of op {at}"),
            &s,
            &m,
            &pool,
            &mut rng,
            false,
        );
    }
    let ctx = format!("mode {mode:?} seed {seed} end");
    db.flush().unwrap_or_else(|e| panic!("{ctx}: flush: {e}"));
    full_check(&format!("{ctx} after flush"), &db, &model, &pool, &mut rng, true);
    db.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    let db = open(&path, mode, &key, background);
    full_check(&format!("{ctx} after reopen"), &db, &model, &pool, &mut rng, true);
    db.compact().unwrap_or_else(|e| panic!("{ctx}: compact: {e}"));
    full_check(&format!("{ctx} after final compaction"), &db, &model, &pool, &mut rng, true);
    // Clear everything through deletes and check the database reads empty, also after reopen.
    let mut batch = WriteBatch::new();
    for k in model.keys() {
        batch.delete(k);
    }
    db.write(batch).unwrap_or_else(|e| panic!("{ctx}: delete-all batch: {e}"));
    let empty = Model::new();
    full_check(&format!("{ctx} after deleting all"), &db, &empty, &pool, &mut rng, true);
    db.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    let db = open(&path, mode, &key, background);
    full_check(
        &format!("{ctx} after deleting all and reopening"),
        &db,
        &empty,
        &pool,
        &mut rng,
        true,
    );
}

#[test]
fn model_plain() {
    run_model(Mode::Plain, false, 0x5EED_0001);
}

#[test]
fn model_aes256gcm() {
    run_model(Mode::Aes, true, 0x5EED_0002);
}

#[test]
fn model_chacha20poly1305() {
    run_model(Mode::ChaCha, false, 0x5EED_0003);
}

/// The shared checker fails on every kind of difference, for `DB` and `Snapshot`, naming the
/// key in hex and never printing a long value.
#[test]
fn check_model_detects_every_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::generate();
    let db = open(&dir.path().join("db"), Mode::Aes, &key, false);
    let long_value = b"SECRET-VALUE-THAT-MUST-NOT-BE-PRINTED-0123456789".to_vec();
    let mut model = Model::new();
    for (k, v) in [(&b"a"[..], &b"1"[..]), (b"b\x00", &long_value), (b"c", b""), (b"d", b"4")] {
        db.put(k, v).expect("put");
        model.insert(k.to_vec(), v.to_vec());
    }
    let snap = db.snapshot();
    common::check_model("exact", &db, &model);
    common::check_model("exact snapshot", &snap, &model);

    let mut wrong: Vec<(&str, Model, &str)> = Vec::new();
    let mut m = model.clone();
    m.remove(&b"c"[..]);
    wrong.push(("a key missing from the model", m, "0x63"));
    let mut m = model.clone();
    m.insert(b"bb".to_vec(), b"x".to_vec());
    wrong.push(("a key the database lacks", m, "0x6262"));
    let mut m = model.clone();
    m.insert(b"\xff".to_vec(), b"x".to_vec());
    wrong.push(("a key the database lacks, after the last", m, "0xff"));
    let mut m = model.clone();
    m.insert(b"d".to_vec(), b"5".to_vec());
    wrong.push(("a short value differs", m, "0x64"));
    let mut m = model.clone();
    let mut other = long_value.clone();
    other[40] ^= 1;
    m.insert(b"b\x00".to_vec(), other);
    wrong.push(("a long value differs", m, "0x6200"));
    wrong.push(("an empty model", Model::new(), "0x61"));
    for (what, m, key_hex) in &wrong {
        for (name, view) in [("DB", &db as &dyn View), ("snapshot", &snap as &dyn View)] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                common::check_model(what, view, m);
            }));
            let msg = match r {
                Ok(()) => panic!("{name}: check_model passed with {what}"),
                Err(p) => common::panic_message(&*p),
            };
            assert!(
                msg.contains(key_hex),
                "{name}, {what}: message does not name {key_hex}: {msg}"
            );
            // Neither the bytes nor the hex of the long value.
            for leak in ["SECRET", "534543524554"] {
                assert!(!msg.contains(leak), "{name}, {what}: message shows a long value: {msg}");
            }
        }
    }
}
