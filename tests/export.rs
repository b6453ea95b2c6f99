//! Logical export and import: a round trip of the default keyspace and three named ones
//! equals the model (sealed under a raw key or a passphrase, or plain; keyspaces recreated,
//! a dropped one left out); a sealed export holds no plaintext marker, key or keyspace name; a
//! version-1 stream (default keyspace only) still imports; a wrong key, a truncated stream,
//! reordered or edited chunks and trailing bytes are refused.

mod common;

use std::path::Path;

use common::{check_model, find, KeyRange, Mode, Model, View};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Error, ExportOptions, Iter, Keyspace, MasterKey, Options, DB};

const MARKER: &[u8] = b"PLAINTEXT-MARKER";
/// The named keyspaces of [`fill`] (the last is emptied); the names are in no key or value.
const NAMES: [&str; 3] =
    ["ks-PLAINTEXT-MARKER-accounts", "ks-PLAINTEXT-MARKER-orders", "ks-PLAINTEXT-MARKER-empty"];
/// A keyspace dropped before the export: not in it.
const DROPPED: &str = "ks-dropped";

impl View for Keyspace {
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

/// The default keyspace's model, then one per name of [`NAMES`].
struct Models {
    default: Model,
    named: Vec<Model>,
}

impl Models {
    fn records(&self) -> u64 {
        (self.default.len() + self.named.iter().map(Model::len).sum::<usize>()) as u64
    }

    /// Checks that `db` holds exactly the models, and no other named keyspace.
    fn check(&self, ctx: &str, db: &DB) {
        check_model(&format!("{ctx}: default keyspace"), db, &self.default);
        let mut names: Vec<&str> = NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(db.keyspace_names().unwrap(), names, "{ctx}: keyspace names");
        for (name, m) in NAMES.iter().zip(&self.named) {
            check_model(&format!("{ctx}: keyspace {name}"), &db.keyspace(name).unwrap(), m);
        }
    }
}

fn open(path: &std::path::Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key).memtable_size(64 << 10).value_threshold(256);
    common::open(o, "export test")
}

/// A default keyspace of about 3 MiB (so the stream has several chunks), with values in the
/// value log, empty values, binary keys, and every value holding the marker; then three named
/// keyspaces: two holding some of the default keyspace's keys with other values and keys of
/// their own, one emptied by deletes; and one dropped.
fn fill(db: &DB) -> Models {
    let mut rng = StdRng::seed_from_u64(common::seed("export", 7));
    let mut m = Model::new();
    for i in 0..6000u32 {
        let mut k = format!("key{i:06}").into_bytes();
        if i % 11 == 0 {
            k.extend_from_slice(&[0, 0xff, i as u8]);
        }
        let mut v = MARKER.to_vec();
        v.extend_from_slice(format!("-{i}-").as_bytes());
        // Incompressible bytes, so the stream has several chunks.
        let len = if i % 4 == 0 { 1500 } else { 300 };
        v.extend((0..len).map(|_| rng.gen::<u8>()));
        if i % 97 == 0 {
            v.clear();
        }
        db.put(&k, &v).unwrap();
        m.insert(k, v);
    }
    for i in (0..6000u32).step_by(13) {
        let k = format!("key{i:06}").into_bytes();
        db.delete(&k).unwrap();
        m.remove(&k);
    }
    let dropped = db.keyspace(DROPPED).unwrap();
    dropped.put(b"key000001", MARKER).unwrap();
    let mut named = Vec::new();
    for (n, name) in NAMES.iter().enumerate() {
        let ks = db.keyspace(name).unwrap();
        let mut km = Model::new();
        for i in 0..1500u32 {
            // Every third key is also a default-keyspace key, with another value.
            let k = if i % 3 == 0 {
                format!("key{i:06}").into_bytes()
            } else {
                format!("ks{n}-key{i:05}").into_bytes()
            };
            let mut v = MARKER.to_vec();
            v.extend_from_slice(format!("-ks{n}-{i}-").as_bytes());
            let len = if i % 5 == 0 { 700 } else { 60 };
            v.extend((0..len).map(|_| rng.gen::<u8>()));
            ks.put(&k, &v).unwrap();
            km.insert(k, v);
        }
        if n == 2 {
            for k in std::mem::take(&mut km).keys() {
                ks.delete(k).unwrap();
            }
        }
        named.push(km);
    }
    db.flush().unwrap();
    db.drop_keyspace(DROPPED).unwrap();
    Models { default: m, named }
}

fn roundtrip(mode: Mode, opts: &ExportOptions) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(&tmp.path().join("a"), mode, &key);
    let m = fill(&db);
    let mut stream = Vec::new();
    let info = db.export(&mut stream, opts).unwrap();
    assert_eq!(info.records, m.records());
    assert_eq!(info.keyspaces, NAMES.len() as u64, "the dropped keyspace is not exported");
    assert_eq!(info.bytes, stream.len() as u64);
    // Into a database of another mode and key: the export is logical.
    let other = MasterKey::generate();
    let db2 = open(&tmp.path().join("b"), Mode::ChaCha, &other);
    let back = db2.import(&stream[..], opts).unwrap();
    assert_eq!(back, info);
    m.check(&format!("{mode:?} import"), &db2);
    // The keyspaces are in the database for good.
    drop(db2);
    let db2 = open(&tmp.path().join("b"), Mode::ChaCha, &other);
    m.check(&format!("{mode:?} import, reopened"), &db2);
    stream
}

#[test]
fn sealed_roundtrip_holds_no_plaintext() {
    let stream = roundtrip(Mode::Aes, &ExportOptions::sealed(MasterKey::generate()));
    assert!(stream.len() > 2 << 20, "several chunks: {} bytes", stream.len());
    assert_eq!(find(&stream, MARKER), None, "a sealed export holds a plaintext marker");
    assert_eq!(find(&stream, b"key000"), None, "a sealed export holds a plaintext key");
    assert_eq!(find(&stream, b"-key0"), None, "a sealed export holds a keyspace's key");
    for name in NAMES {
        assert_eq!(find(&stream, name.as_bytes()), None, "a keyspace name in the clear");
    }
}

#[test]
fn plain_roundtrip_is_in_the_clear() {
    let stream = roundtrip(Mode::Plain, &ExportOptions::plaintext());
    // The tests above can fail: a plain export holds the marker, keys and keyspace names.
    assert!(find(&stream, MARKER).is_some());
    assert!(find(&stream, b"ks1-key").is_some());
    for name in NAMES {
        assert!(find(&stream, name.as_bytes()).is_some(), "{name}");
    }
}

/// Version-1 streams (the default keyspace only), as the first release wrote them, plain and
/// sealed under a raw key of 32 bytes 0x42: 40 keys `v1-key-NNN` and one binary key.
#[test]
fn version_1_streams_still_import() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut m = Model::new();
    for i in 0..40u32 {
        let v = format!("v1-value-{i}-").repeat((i as usize % 5) + 1);
        m.insert(format!("v1-key-{i:03}").into_bytes(), v.into_bytes());
    }
    m.insert(b"v1-bin\x00\xff".to_vec(), Vec::new());
    let tmp = tempfile::tempdir().unwrap();
    for (file, opts) in [
        ("export-v1-plain.bin", ExportOptions::plaintext()),
        ("export-v1-sealed.bin", ExportOptions::sealed(MasterKey::from_bytes([0x42; 32]))),
    ] {
        let stream = std::fs::read(data.join(file)).unwrap();
        assert_eq!(stream[8..10], 1u16.to_le_bytes(), "{file} is a version-1 stream");
        let db = open(&tmp.path().join(file), Mode::Aes, &MasterKey::generate());
        let info = db.import(&stream[..], &opts).unwrap();
        assert_eq!((info.records, info.keyspaces, info.bytes), (41, 0, stream.len() as u64));
        check_model(file, &db, &m);
        assert!(db.keyspace_names().unwrap().is_empty(), "{file}");
        // Exported again, it is a version-2 stream with the same records.
        let mut again = Vec::new();
        db.export(&mut again, &opts).unwrap();
        assert_eq!(again[8..10], 2u16.to_le_bytes());
        let db2 =
            open(&tmp.path().join(format!("{file}-again")), Mode::Plain, &MasterKey::generate());
        assert_eq!(db2.import(&again[..], &opts).unwrap().records, 41);
        check_model(&format!("{file} again"), &db2, &m);
    }
}

/// Importing into a database that already has one of the keyspaces: its records go into it,
/// beside what it holds.
#[test]
fn import_merges_into_existing_keyspaces() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(&tmp.path().join("a"), Mode::Plain, &MasterKey::generate());
    let mut m = fill(&db);
    let mut stream = Vec::new();
    let opts = ExportOptions::plaintext();
    db.export(&mut stream, &opts).unwrap();
    let db2 = open(&tmp.path().join("b"), Mode::Aes, &MasterKey::generate());
    let orders = db2.keyspace(NAMES[1]).unwrap();
    orders.put(b"already-there", b"kept").unwrap();
    orders.put(b"key000003", b"overwritten").unwrap();
    db2.import(&stream[..], &opts).unwrap();
    m.named[1].insert(b"already-there".to_vec(), b"kept".to_vec());
    assert!(m.named[1].contains_key(&b"key000003"[..]));
    m.check("merged import", &db2);
    // The handle taken before the import sees the records too.
    check_model("handle from before", &orders, &m.named[1]);
}

#[test]
fn passphrase_roundtrip() {
    let key = MasterKey::from_passphrase_with_cost("correct horse", 64, 1, 1);
    roundtrip(Mode::Plain, &ExportOptions::sealed(key));
}

/// Sealed-block boundaries of a stream, from its header length on (block header: stored
/// length at +20, 32 header bytes, 16-byte tag when sealed or 4-byte crc when plain).
fn chunks(stream: &[u8], header_len: usize, tag: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = header_len;
    while at < stream.len() {
        let stored = u32::from_le_bytes(stream[at + 20..at + 24].try_into().unwrap()) as usize;
        let end = at + 32 + stored + tag;
        out.push((at, end));
        at = end;
    }
    out
}

#[test]
fn damaged_streams_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open(&tmp.path().join("a"), Mode::Plain, &MasterKey::generate());
    let model = fill(&db);
    let key = MasterKey::generate();
    let sealed = ExportOptions::sealed(key.clone());
    let mut stream = Vec::new();
    db.export(&mut stream, &sealed).unwrap();
    let header_len = 16 + 48 + 4;
    let parts = chunks(&stream, header_len, 16);
    assert!(parts.len() >= 3, "{} chunks", parts.len());
    let fresh = |name: &str| open(&tmp.path().join(name), Mode::Plain, &MasterKey::generate());

    // Wrong key, or no key for a sealed stream.
    let wrong = fresh("wrong");
    let res = wrong.import(&stream[..], &ExportOptions::sealed(MasterKey::generate()));
    assert!(matches!(res, Err(Error::WrongMasterKey)), "{res:?}");
    assert!(matches!(
        wrong.import(&stream[..], &ExportOptions::plaintext()),
        Err(Error::InvalidArgument(_))
    ));

    // Truncated at every chunk boundary and inside chunks.
    for cut in
        [0, 10, header_len, parts[0].1, parts[1].0 + 40, parts[parts.len() - 1].0, stream.len() - 1]
    {
        let r = fresh(&format!("cut{cut}")).import(&stream[..cut], &sealed);
        assert!(matches!(&r, Err(e) if e.is_corruption()), "cut at {cut}: {r:?}");
    }
    // Two chunks swapped; a chunk dropped; a chunk repeated.
    let (first, second) = (parts[0], parts[1]);
    let mut swapped = stream[..first.0].to_vec();
    swapped.extend_from_slice(&stream[second.0..second.1]);
    swapped.extend_from_slice(&stream[first.0..first.1]);
    swapped.extend_from_slice(&stream[second.1..]);
    let mut dropped = stream[..first.0].to_vec();
    dropped.extend_from_slice(&stream[second.0..]);
    let mut repeated = stream[..second.0].to_vec();
    repeated.extend_from_slice(&stream[first.0..]);
    let mut trailing = stream.clone();
    trailing.push(0);
    let mut edited = stream.clone();
    edited[parts[1].0 + 100] ^= 1;
    for (what, s) in [
        ("swapped", &swapped),
        ("dropped", &dropped),
        ("repeated", &repeated),
        ("trailing", &trailing),
        ("edited", &edited),
    ] {
        let r = fresh(what).import(&s[..], &sealed);
        assert!(matches!(&r, Err(e) if e.is_corruption()), "{what}: {r:?}");
    }
    // The intact stream still imports whole.
    let whole = fresh("whole");
    whole.import(&stream[..], &sealed).unwrap();
    model.check("whole", &whole);
}
