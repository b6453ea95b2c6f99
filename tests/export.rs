//! Logical export and import: a round trip equals the model (sealed under a raw key or a
//! passphrase, or plain); a sealed export holds no plaintext marker; a wrong key, a truncated
//! stream, reordered or edited chunks and trailing bytes are refused.

mod common;

use common::{check_model, find, Mode, Model};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sealdb::{Error, ExportOptions, MasterKey, Options, DB};

const MARKER: &[u8] = b"PLAINTEXT-MARKER";

fn open(path: &std::path::Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key).memtable_size(64 << 10).value_threshold(256);
    common::open(o, "export test")
}

/// A model of about 3 MiB (so the stream has several chunks), with values in the value log,
/// empty values, binary keys, and every value holding the marker.
fn fill(db: &DB) -> Model {
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
    m
}

fn roundtrip(mode: Mode, opts: &ExportOptions) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(&tmp.path().join("a"), mode, &key);
    let m = fill(&db);
    let mut stream = Vec::new();
    let info = db.export(&mut stream, opts).unwrap();
    assert_eq!(info.records, m.len() as u64);
    assert_eq!(info.bytes, stream.len() as u64);
    // Into a database of another mode and key: the export is logical.
    let other = MasterKey::generate();
    let db2 = open(&tmp.path().join("b"), Mode::ChaCha, &other);
    let back = db2.import(&stream[..], opts).unwrap();
    assert_eq!(back, info);
    check_model(&format!("{mode:?} import"), &db2, &m);
    stream
}

#[test]
fn sealed_roundtrip_holds_no_plaintext() {
    let stream = roundtrip(Mode::Aes, &ExportOptions::sealed(MasterKey::generate()));
    assert!(stream.len() > 2 << 20, "several chunks: {} bytes", stream.len());
    assert_eq!(find(&stream, MARKER), None, "a sealed export holds a plaintext marker");
    assert_eq!(find(&stream, b"key000"), None, "a sealed export holds a plaintext key");
}

#[test]
fn plain_roundtrip_is_in_the_clear() {
    let stream = roundtrip(Mode::Plain, &ExportOptions::plaintext());
    // The marker test above can fail: a plain export does hold it.
    assert!(find(&stream, MARKER).is_some());
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
    check_model("whole", &whole, &model);
}
