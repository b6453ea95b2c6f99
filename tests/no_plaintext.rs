//! With encryption on, no key, value or master-key bytes reach any file of the data directory,
//! while the database is open (WAL, tables, after flush and compaction) and after close. The
//! same scan finds the markers without encryption, which proves it works. Also: `Debug` output
//! and error messages never show the master key.

mod common;

use std::path::Path;

use common::{dir_contents, find, Mode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Encryption, Error, MasterKey, Options, WriteBatch, DB};

// Markers share no four-byte substring with one another, so that LZ4 cannot encode the first
// occurrence of one as a back-reference into another: the plain control must find them all.
const KEY_MARK: &[u8] = b"PLAINTEXT-KEY-";
const COMPRESSIBLE_MARK: &[u8] = b"zebra_quokka_walrus";
const RANDOM_MARK: &[u8] = b"JUPITER|SATURN|URANUS";
const BIG_MARK: &[u8] = b"Gdansk/Krakow/Poznan";
const BATCH_MARK: &[u8] = b"oak+elm+ash+fir+yew";

fn pk(i: u32) -> Vec<u8> {
    format!("PLAINTEXT-KEY-{i:06}").into_bytes()
}

fn value(i: u32, rng: &mut StdRng) -> Vec<u8> {
    match i % 50 {
        // A large incompressible value with a marker in the middle.
        0 => {
            let mut v = vec![0u8; 40_000];
            rng.fill(&mut v[..]);
            v[20_000..20_000 + BIG_MARK.len()].copy_from_slice(BIG_MARK);
            v
        }
        n if n % 2 == 0 => {
            let unit = format!("zebra_quokka_walrus={i:06};");
            unit.repeat(8).into_bytes()
        }
        _ => {
            let mut v = format!("JUPITER|SATURN|URANUS:{i:06}:").into_bytes();
            let mut tail = vec![0u8; 150];
            rng.fill(&mut tail[..]);
            v.extend_from_slice(&tail);
            v
        }
    }
}

/// Every (file, marker) pair such that the marker occurs in the file.
fn scan(dir: &Path, markers: &[(&str, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (file, data) in dir_contents(dir) {
        for (name, m) in markers {
            if let Some(off) = find(&data, m) {
                hits.push(format!("{name} in {} at offset {off}", file.display()));
            }
        }
    }
    hits
}

fn open(path: &Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key)
        .memtable_size(1 << 20)
        .block_size(2 << 10)
        .target_file_size(64 << 10)
        .background_work(false);
    DB::open(o).unwrap_or_else(|e| panic!("open ({mode:?}): {e}"))
}

/// Writes marked data through every path (WAL only, flush, batches, deletes, compaction,
/// close, reopen) and scans the directory at each stage. Returns, per stage, the hits.
fn run(mode: Mode, key: &MasterKey) -> Vec<(&'static str, Vec<String>)> {
    let seed = common::seed(&format!("no_plaintext {mode:?}"), 0x0B5C_0001);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let hex = key.to_hex().expect("a raw master key has a hex form");
    let mut markers: Vec<(&str, Vec<u8>)> = vec![
        ("key marker", KEY_MARK.to_vec()),
        ("compressible value marker", COMPRESSIBLE_MARK.to_vec()),
        ("random value marker", RANDOM_MARK.to_vec()),
        ("big value marker", BIG_MARK.to_vec()),
        ("batch value marker", BATCH_MARK.to_vec()),
        ("master key hex", hex.as_bytes().to_vec()),
        ("master key hex (upper case)", hex.to_uppercase().into_bytes()),
    ];
    let mut key_bytes = vec![0u8; 32];
    for (i, b) in key_bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digit");
    }
    markers.push(("master key bytes", key_bytes));

    let mut stages = Vec::new();
    let db = open(&path, mode, key);
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..2_000 {
        let v = value(i, &mut rng);
        db.put(pk(i), &v).expect("put");
        expected.insert(pk(i), v);
    }
    let mut batch = WriteBatch::new();
    for i in 2_000..2_100 {
        let v = format!("oak+elm+ash+fir+yew.{i:06}").into_bytes();
        batch.put(pk(i), &v);
        expected.insert(pk(i), v);
    }
    db.write(batch).expect("batch");
    db.sync().expect("sync");
    stages.push(("open, after writes (WAL only)", scan(&path, &markers)));

    db.flush().expect("flush");
    stages.push(("open, after flush", scan(&path, &markers)));

    for i in (0..2_100).step_by(7) {
        db.delete(pk(i)).expect("delete");
        expected.remove(&pk(i));
    }
    for i in 2_100..3_000 {
        let v = value(i, &mut rng);
        db.put(pk(i), &v).expect("put");
        expected.insert(pk(i), v);
    }
    db.flush().expect("flush");
    db.compact().expect("compact");
    stages.push(("open, after compaction", scan(&path, &markers)));

    db.close().expect("close");
    stages.push(("closed", scan(&path, &markers)));

    // Reopen (replays and rewrites whatever it needs), check the data, write more, drop.
    let db = open(&path, mode, key);
    common::check_model(&format!("{mode:?}: reopened"), &db, &expected);
    for i in 3_000..3_200 {
        db.put(pk(i), value(i, &mut rng)).expect("put");
    }
    stages.push(("reopened, after more writes", scan(&path, &markers)));
    drop(db);
    stages.push(("dropped", scan(&path, &markers)));
    stages
}

fn assert_sealed(mode: Mode) {
    let key = MasterKey::generate();
    let stages = run(mode, &key);
    let leaks: Vec<String> = stages
        .iter()
        .flat_map(|(stage, hits)| hits.iter().map(move |h| format!("{stage}: {h}")))
        .collect();
    assert!(leaks.is_empty(), "{mode:?}: plaintext found on disk:\n{}", leaks.join("\n"));
}

#[test]
fn aes256gcm_writes_no_plaintext() {
    assert_sealed(Mode::Aes);
}

#[test]
fn chacha20poly1305_writes_no_plaintext() {
    assert_sealed(Mode::ChaCha);
}

/// The control: without encryption the very same scan finds the markers at every stage.
#[test]
fn scan_finds_markers_without_encryption() {
    let key = MasterKey::generate();
    let stages = run(Mode::Plain, &key);
    for (stage, hits) in &stages {
        for marker in ["key marker", "compressible value marker", "random value marker"] {
            assert!(
                hits.iter().any(|h| h.starts_with(&format!("{marker} in "))),
                "plain, {stage}: the scan did not find the {marker}; hits: {hits:?}"
            );
        }
        // The master key is not used without encryption, so it is nowhere.
        assert!(
            !hits.iter().any(|h| h.starts_with("master key")),
            "plain, {stage}: master key found: {hits:?}"
        );
    }
    let all: Vec<&String> = stages.iter().flat_map(|(_, h)| h).collect();
    for marker in ["big value marker", "batch value marker"] {
        assert!(
            all.iter().any(|h| h.starts_with(&format!("{marker} in "))),
            "plain: the scan never found the {marker}"
        );
    }
}

fn assert_no_key(what: &str, text: &str, keys: &[&MasterKey]) {
    for k in keys {
        let hex = k.to_hex().expect("a raw master key has a hex form");
        assert!(!text.contains(hex.as_str()), "{what} contains a master key (hex): {text}");
        assert!(
            !text.contains(hex.to_uppercase().as_str()),
            "{what} contains a master key (upper-case hex): {text}"
        );
        // Also no long run of it (e.g. a truncated rendering).
        assert!(!text.contains(&hex[..16]), "{what} contains part of a master key: {text}");
    }
}

#[test]
fn debug_output_and_errors_show_no_key_material() {
    let mut bytes = [0u8; 32];
    StdRng::seed_from_u64(common::seed("debug_output", 0x0B5C_0002)).fill(&mut bytes);
    let from_bytes = MasterKey::from_bytes(bytes);
    let generated = MasterKey::generate();
    let wrong = MasterKey::generate();
    let keys = [&from_bytes, &generated, &wrong];
    // The key as Rust would print the array, e.g. "[12, 200, ...]".
    let array_debug = format!("{bytes:?}");
    let array_inner = &array_debug[1..array_debug.len() - 1];

    for k in keys {
        for text in [
            format!("{k:?}"),
            format!("{k:#?}"),
            format!("{:?}", Encryption::new(k.clone())),
            format!("{:#?}", Encryption::new(k.clone()).cipher(sealdb::Cipher::ChaCha20Poly1305)),
            format!("{:?}", Options::new("x").with_encryption(Encryption::new(k.clone()))),
        ] {
            assert_no_key("Debug output", &text, &keys);
            assert!(!text.contains(array_inner), "Debug output shows key bytes: {text}");
        }
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let db = DB::open(Options::new(&path).with_encryption(Encryption::new(from_bytes.clone())))
        .expect("open");
    db.put(b"k", b"v").expect("put");
    let status = db.encryption_status().expect("encrypted database has a status");
    for text in [format!("{status:?}"), format!("{status:#?}")] {
        assert_no_key("EncryptionStatus Debug", &text, &keys);
        assert!(!text.contains(array_inner), "EncryptionStatus shows key bytes: {text}");
    }
    db.close().expect("close");

    // A wrong master key: a clear error that shows neither key.
    let err = common::open_err(
        DB::open(Options::new(&path).with_encryption(Encryption::new(wrong.clone()))),
        "opening with the wrong master key",
    );
    assert!(matches!(err, Error::WrongMasterKey), "wrong key gave {err:?}");
    for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
        assert_no_key("wrong-key error", &text, &keys);
    }
    // Opening the encrypted database without encryption.
    let err = common::open_err(DB::open(Options::new(&path)), "opening without encryption");
    for text in [err.to_string(), format!("{err:?}")] {
        assert_no_key("encryption-required error", &text, &keys);
    }
    // A malformed hex key: the message must not echo the (nearly valid) key text.
    let mut bad = generated.to_hex().expect("a raw master key has a hex form").to_string();
    bad.replace_range(63..64, "g");
    let err = MasterKey::from_hex(&bad).expect_err("bad hex must fail");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(&bad[..16]), "from_hex error echoes the key text: {text}");
    }
}
