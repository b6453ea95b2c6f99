//! Key safety: a forged `KEYS` cannot make an open allocate or spin on Argon2id costs it reads
//! before anything authenticates them, and a key provider's own `Debug` (which may show its
//! secret) never reaches `MasterKey`'s `Debug`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealdb::{Encryption, Error, KeyProvider, MasterKey, Options, DB};
use zeroize::Zeroizing;

/// Offsets in `KEYS` of the Argon2id costs (docs/format.md): params start at 16.
const M_AT: usize = 16;
const T_AT: usize = 20;
const P_AT: usize = 24;

fn passphrase() -> MasterKey {
    MasterKey::from_passphrase_with_cost("correct horse battery staple", 64, 1, 1)
}

fn open(dir: &Path) -> sealdb::Result<DB> {
    DB::open(Options::new(dir).with_encryption(Encryption::new(passphrase())))
}

/// `keys` with the u32 at `at` set to `v` and the (unkeyed) crc32 recomputed, as an attacker
/// with write access would.
fn forge(keys: &[u8], at: usize, v: u32) -> Vec<u8> {
    let mut out = keys.to_vec();
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let end = out.len() - 4;
    let crc = crc32fast::hash(&out[..end]);
    out[end..].copy_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn forged_argon2_costs_fail_fast_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path()).unwrap();
        db.put("k", "v").unwrap();
        db.close().unwrap();
    }
    let keys_path = dir.path().join("KEYS");
    let original = std::fs::read(&keys_path).unwrap();
    assert_eq!(u32::from_le_bytes(original[M_AT..M_AT + 4].try_into().unwrap()), 64);

    let cases = [
        (M_AT, u32::MAX, M_AT),           // memory: 4 TiB
        (M_AT, (2 << 20) + 1, M_AT),      // memory: just over 2 GiB
        (M_AT, 0, M_AT),                  // memory below 8 KiB per lane
        (T_AT, u32::MAX, T_AT),           // passes: 4 billion
        (T_AT, (4 << 20) / 64 + 1, T_AT), // memory × passes just over 4 GiB
        (T_AT, 0, T_AT),                  // no pass
        (P_AT, u32::MAX, P_AT),           // lanes
        (P_AT, 17, P_AT),                 // one lane over the limit
        (P_AT, 0, P_AT),                  // no lane
    ];
    for (at, value, expect_at) in cases {
        std::fs::write(&keys_path, forge(&original, at, value)).unwrap();
        let start = Instant::now();
        let r = open(dir.path()).map(|_| ());
        let took = start.elapsed();
        match r {
            Err(Error::Corruption { file, offset, reason }) => {
                assert!(file.ends_with("KEYS"), "{} for field at {at}", file.display());
                assert_eq!(offset, expect_at as u64, "field at {at} = {value}: {reason}");
                assert!(reason.contains("Argon2id"), "{reason}");
            }
            other => panic!("field at {at} forged to {value}: {other:?}"),
        }
        assert!(took < Duration::from_secs(1), "field at {at} = {value} took {took:?}");
    }

    // Within each bound but not together: 2 GiB × 3 passes is refused on the time field.
    let m = forge(&original, M_AT, 2 << 20);
    std::fs::write(&keys_path, forge(&m, T_AT, 3)).unwrap();
    let start = Instant::now();
    match open(dir.path()).map(|_| ()) {
        Err(Error::Corruption { offset, .. }) => assert_eq!(offset, T_AT as u64),
        other => panic!("2 GiB × 3 passes accepted: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(1));

    // The untouched registry still opens: the failures above came from the forged fields.
    std::fs::write(&keys_path, &original).unwrap();
    let db = open(dir.path()).unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn out_of_bound_costs_refused_when_creating() {
    for (m, t, p) in [(4 << 20, 1, 1), (1 << 20, 5, 1), (64, 0, 1), (64, 1, 0), (1024, 1, 17)] {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::from_passphrase_with_cost("pw", m, t, p);
        let r =
            DB::open(Options::new(dir.path()).with_encryption(Encryption::new(key))).map(|_| ());
        assert!(matches!(r, Err(Error::BadKeySource(_))), "m {m} t {t} p {p}: {r:?}");
        assert!(!dir.path().join("KEYS").exists());
    }
}

/// A provider holding a secret, with a derived `Debug` that prints it.
#[derive(Debug)]
struct LeakyProvider {
    secret: String,
    label: Option<&'static str>,
}

impl KeyProvider for LeakyProvider {
    fn wrap(&self, key: &[u8; 32]) -> sealdb::Result<Vec<u8>> {
        Ok(key.iter().zip(self.secret.bytes().cycle()).map(|(k, s)| k ^ s).collect())
    }
    fn unwrap(&self, wrapped: &[u8]) -> sealdb::Result<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        if wrapped.len() != 32 {
            return Err(Error::WrongMasterKey);
        }
        for ((o, w), s) in out.iter_mut().zip(wrapped).zip(self.secret.bytes().cycle()) {
            *o = w ^ s;
        }
        Ok(out)
    }
    fn name(&self) -> &str {
        self.label.unwrap_or("key provider")
    }
}

#[test]
fn master_key_debug_shows_only_the_provider_name() {
    let secret = "kms-secret-0123456789abcdef";
    let leaky = LeakyProvider { secret: secret.into(), label: None };
    // The provider's own Debug does leak: the test would catch a MasterKey that printed it.
    assert!(format!("{leaky:?}").contains(secret));
    let master = MasterKey::from_provider(Arc::new(leaky));
    let shown = format!("{master:?} {master:#?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(!shown.contains("LeakyProvider"), "{shown}");
    assert!(shown.contains("key provider"), "{shown}");

    let named = LeakyProvider { secret: secret.into(), label: Some("vault transit") };
    let master = MasterKey::from_provider(Arc::new(named));
    let shown = format!("{master:?}");
    assert!(!shown.contains(secret) && shown.contains("vault transit"), "{shown}");

    // It still works as a key source, and neither the database nor its errors show it.
    let dir = tempfile::tempdir().unwrap();
    let db = DB::open(Options::new(dir.path()).with_encryption(Encryption::new(master))).unwrap();
    db.put("a", "b").unwrap();
    drop(db);
    let wrong = MasterKey::from_provider(Arc::new(LeakyProvider {
        secret: "another-secret".into(),
        label: None,
    }));
    let err = DB::open(Options::new(dir.path()).with_encryption(Encryption::new(wrong)))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::WrongMasterKey), "{err:?}");
    let msg = format!("{err:?} {err}");
    assert!(!msg.contains("another-secret") && !msg.contains(secret), "{msg}");
}
