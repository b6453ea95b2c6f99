//! The key registry (`KEYS`): the data keys, wrapped by the master key.
//!
//! ```text
//! +0  magic      [8]  "SEALKEYS"
//! +8  version    u16  (1)
//! +10 kdf        u8   (0 raw key, 1 Argon2id passphrase, 2 key provider)
//! +11 reserved   u8   zero
//! +12 params len u32
//! +16 params     [params len]  raw: empty; Argon2id: m KiB u32, t u32, p u32, salt [16];
//!                              provider: the provider's wrapped registry key
//! ..  salt       [16] random, fresh at every rewrite
//! ..  check      [16] HKDF(K, salt, "sealdb/v1/check"), first 16 bytes
//! ..  nonce      [12] random, fresh at every rewrite
//! ..  body len   u32
//! ..  body       AES-256-GCM under HKDF(K, salt, "sealdb/v1/kek"), associated data: every
//!                byte from the magic to the body length
//! ..  tag        [16]
//! ..  crc32      u32  of every byte before it
//!
//! K is the raw master key, the Argon2id output, or the key the provider unwraps.
//! body: cipher u8, current key id u32, next key id u32, audit key [32], count u32,
//!       count × (key id u32, created at u64 (Unix seconds), key [32]),
//!       retired audit key count u32, retired audit key [32] × count (oldest first; absent in
//!       registries written before audit keys could rotate),
//!       keyspace key count u32, count × (keyspace id u32, key [32]),
//!       erased keyspace count u32, erased keyspace id u32 × count (both absent in registries
//!       written before keyspaces had keys of their own)
//! ```
//!
//! A keyspace key belongs to one named keyspace: every file and value-log entry of that
//! keyspace is sealed under a key derived from a data key *and* it (see
//! [`crate::seal::FileCipher::in_keyspace`]), so removing it from the registry
//! (`drop_keyspace`) makes that keyspace's data unreadable at once, whatever data keys live on.
//! The ids of keyspaces whose key was destroyed are kept ("erased"), so a reader meeting bytes
//! sealed under one can tell erased data from a missing key.
//!
//! Open checks, in order: crc (a damaged file is corruption), magic and version, the Argon2id
//! costs against their limits (`PassphraseCost::check`: a forged cost is corruption naming the
//! field's offset, before any memory is allocated), K from the master key source (a source of another kind is `WrongMasterKey`), the check value (a
//! different key is `WrongMasterKey`), then the tag. Nothing is written on failure.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::RwLock;
use std::path::Path;

use zeroize::Zeroizing;

use super::master::{argon2_params, KDF_ARGON2ID};
use super::{hkdf32, random_bytes, DataKey, Kek, MasterKey, SecretKey};
use crate::coding::{put_u32, put_u64, Reader};
use crate::error::{Error, Result};
use crate::options::Cipher;
use crate::seal::aead::AeadKey;
use crate::seal::{cipher_of, FileCipher};

const MAGIC: &[u8; 8] = b"SEALKEYS";
const VERSION: u16 = 1;
const MAX_PARAMS: usize = 64 << 10;
const MAX_KEYS: u32 = 1 << 20;

/// The data keys of an open database.
#[derive(Debug, Clone)]
pub(crate) struct KeyRing {
    cipher: Cipher,
    current: u32,
    next_id: u32,
    keys: BTreeMap<u32, DataKey>,
    /// Key of the audit log's MAC chain.
    pub(crate) audit_key: SecretKey,
    /// Audit keys the log was written under before `audit_key`, oldest first: kept so the
    /// whole log still verifies.
    retired_audit_keys: Vec<SecretKey>,
    /// While an unencrypted database is being encrypted (`Encryption::encrypt_existing`):
    /// files numbered below it may still be plaintext (0: none may). Never stored in `KEYS`;
    /// set at open from the authenticated conversion state (`src/db/convert.rs`).
    plain_below: u64,
    /// Keys of the named keyspaces, by keyspace id.
    keyspace_keys: BTreeMap<u32, SecretKey>,
    /// Keyspaces whose key was destroyed (dropped keyspaces).
    erased: BTreeSet<u32>,
    /// The keyspace keys as last published (made durable), shared by every copy of this ring
    /// and by the value-log segments opened with one.
    live: Arc<LiveKeyspaceKeys>,
}

/// The keyspace keys as last made durable, shared by every copy of a ring, with the
/// value-log entry ciphers derived from them ([`FileCipher::keyspace_entry`]) cached per
/// (keyspace, segment). Updated only by [`KeyRing::publish`], after the registry holding them
/// is on disk: a value is never sealed under a keyspace key a crash could lose.
#[derive(Default)]
pub(crate) struct LiveKeyspaceKeys {
    state: RwLock<LiveState>,
}

#[derive(Default)]
struct LiveState {
    cipher: Option<Cipher>,
    keys: BTreeMap<u32, SecretKey>,
    erased: BTreeSet<u32>,
    entry: HashMap<(u32, u64), Arc<FileCipher>>,
}

/// Cached entry ciphers beyond this are dropped all at once (they are cheap to derive again).
const MAX_ENTRY_CIPHERS: usize = 4096;

impl std::fmt::Debug for LiveKeyspaceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKeyspaceKeys").finish_non_exhaustive()
    }
}

impl LiveKeyspaceKeys {
    /// The cipher of keyspace `keyspace`'s entries in value-log segment `segment`; `Err` with
    /// the reason when the keyspace has no key (destroyed by a drop, or never made).
    pub(crate) fn entry_cipher(
        &self,
        keyspace: u32,
        segment: u64,
    ) -> std::result::Result<Arc<FileCipher>, &'static str> {
        if let Some(c) = self.state.read().entry.get(&(keyspace, segment)) {
            return Ok(c.clone());
        }
        let mut st = self.state.write();
        let (Some(cipher), Some(key)) = (st.cipher, st.keys.get(&keyspace)) else {
            return Err(if st.erased.contains(&keyspace) {
                "value sealed under the key of a dropped keyspace (destroyed)"
            } else {
                "value sealed under a keyspace key that is not in the registry"
            });
        };
        let c = Arc::new(FileCipher::keyspace_entry(cipher, keyspace, key, segment));
        if st.entry.len() >= MAX_ENTRY_CIPHERS {
            st.entry.clear();
        }
        st.entry.insert((keyspace, segment), c.clone());
        Ok(c)
    }

    /// Whether keyspace `keyspace`'s key was destroyed.
    pub(crate) fn is_erased(&self, keyspace: u32) -> bool {
        self.state.read().erased.contains(&keyspace)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl KeyRing {
    /// A new ring holding one random data key (id 1).
    pub(crate) fn generate(cipher: Cipher) -> Result<KeyRing> {
        let mut audit_key = SecretKey([0; 32]);
        random_bytes(&mut audit_key.0)?;
        let mut ring = KeyRing {
            cipher,
            current: 0,
            next_id: 1,
            keys: BTreeMap::new(),
            audit_key,
            retired_audit_keys: Vec::new(),
            plain_below: 0,
            keyspace_keys: BTreeMap::new(),
            erased: BTreeSet::new(),
            live: Arc::default(),
        };
        ring.add_key()?;
        ring.publish();
        Ok(ring)
    }

    /// A ring holding one fixed data key (id 1): for fuzzing only, so inputs sealed under it
    /// can reach past authentication.
    pub(crate) fn fixed(cipher: Cipher, key: [u8; 32]) -> KeyRing {
        let mut keys = BTreeMap::new();
        keys.insert(1, DataKey { id: 1, key: SecretKey(key), created_at: 0 });
        KeyRing {
            cipher,
            current: 1,
            next_id: 2,
            keys,
            audit_key: SecretKey(key),
            retired_audit_keys: Vec::new(),
            plain_below: 0,
            keyspace_keys: BTreeMap::new(),
            erased: BTreeSet::new(),
            live: Arc::new(LiveKeyspaceKeys {
                state: RwLock::new(LiveState { cipher: Some(cipher), ..LiveState::default() }),
            }),
        }
    }

    /// Every audit key the log was written under, oldest first; the current one last.
    pub(crate) fn audit_keys(&self) -> Vec<SecretKey> {
        let mut all = self.retired_audit_keys.clone();
        all.push(self.audit_key.clone());
        all
    }

    /// Makes a new random audit key current; the old one is kept, retired, so lines written
    /// under it still verify.
    pub(crate) fn rotate_audit_key(&mut self) -> Result<()> {
        if self.retired_audit_keys.len() as u32 >= MAX_KEYS {
            return Err(Error::InvalidArgument("audit keys exhausted".into()));
        }
        let mut k = SecretKey([0; 32]);
        random_bytes(&mut k.0)?;
        let old = std::mem::replace(&mut self.audit_key, k);
        self.retired_audit_keys.push(old);
        Ok(())
    }

    /// Adds a new random data key and makes it current; returns its id.
    pub(crate) fn add_key(&mut self) -> Result<u32> {
        let mut k = SecretKey([0; 32]);
        random_bytes(&mut k.0)?;
        let id = self.next_id;
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or_else(|| Error::InvalidArgument("data key ids exhausted".into()))?;
        self.keys.insert(id, DataKey { id, key: k, created_at: now_secs() });
        self.current = id;
        Ok(id)
    }

    /// The current data key.
    pub(crate) fn current(&self) -> &DataKey {
        // The constructors and decoder guarantee the current key is in the map.
        &self.keys[&self.current]
    }
    /// The data key `id`, if the registry holds it.
    pub(crate) fn get(&self, id: u32) -> Option<&DataKey> {
        self.keys.get(&id)
    }
    /// The cipher for new blocks.
    pub(crate) fn cipher(&self) -> Cipher {
        self.cipher
    }
    /// Files numbered below this may be plaintext (an encryption in progress); 0 when none may.
    pub(crate) fn plain_below(&self) -> u64 {
        self.plain_below
    }
    /// Sets [`KeyRing::plain_below`] (0 ends the acceptance of plaintext files).
    pub(crate) fn set_plain_below(&mut self, n: u64) {
        self.plain_below = n;
    }
    /// Changes the cipher for new blocks.
    pub(crate) fn set_cipher(&mut self, cipher: Cipher) {
        self.cipher = cipher;
    }
    /// Removes (and so zeroizes) data key `id`; the current key cannot be removed.
    pub(crate) fn remove(&mut self, id: u32) -> bool {
        id != self.current && self.keys.remove(&id).is_some()
    }
    /// Every data key, by id.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &DataKey> {
        self.keys.values()
    }

    /// The key of keyspace `id` (`None` for the default keyspace 0, which has none, and for a
    /// keyspace whose key was destroyed or never made).
    pub(crate) fn keyspace_key(&self, id: u32) -> Option<&SecretKey> {
        self.keyspace_keys.get(&id)
    }
    /// Whether keyspace `id`'s key was destroyed (the keyspace was dropped).
    pub(crate) fn is_erased(&self, id: u32) -> bool {
        self.erased.contains(&id)
    }
    /// The keyspaces holding a key.
    #[cfg(test)]
    pub(crate) fn keyspaces_with_keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.keyspace_keys.keys().copied()
    }
    /// Gives keyspace `id` (not 0) a new random key unless it has one; returns whether it
    /// made one.
    pub(crate) fn add_keyspace_key(&mut self, id: u32) -> Result<bool> {
        if id == 0 || self.keyspace_keys.contains_key(&id) {
            return Ok(false);
        }
        if self.keyspace_keys.len() as u32 >= MAX_KEYS {
            return Err(Error::InvalidArgument("keyspace keys exhausted".into()));
        }
        let mut k = SecretKey([0; 32]);
        random_bytes(&mut k.0)?;
        self.keyspace_keys.insert(id, k);
        self.erased.remove(&id);
        Ok(true)
    }
    /// The keyspace keys as last published, shared with every copy of this ring.
    pub(crate) fn live(&self) -> &Arc<LiveKeyspaceKeys> {
        &self.live
    }

    /// Makes this ring's keyspace keys (and cipher) the ones value-log reads and writes use:
    /// called once the registry holding them is durable. Cached ciphers of keyspaces that
    /// lost their key are dropped (and so zeroized).
    pub(crate) fn publish(&self) {
        let mut st = self.live.state.write();
        if st.cipher != Some(self.cipher) {
            st.entry.clear();
        }
        st.cipher = Some(self.cipher);
        st.keys = self.keyspace_keys.clone();
        st.erased.clone_from(&self.erased);
        let keys = &self.keyspace_keys;
        st.entry.retain(|(ks, _), _| keys.contains_key(ks));
    }

    /// Removes (and so zeroizes) keyspace `id`'s key, remembering the keyspace as erased;
    /// returns whether there was a key.
    pub(crate) fn erase_keyspace_key(&mut self, id: u32) -> bool {
        let had = self.keyspace_keys.remove(&id).is_some();
        if id != 0 {
            self.erased.insert(id);
        }
        had
    }

    /// Encodes the registry, wrapped under `kek`.
    pub(crate) fn encode(&self, kek: &Kek) -> Result<Vec<u8>> {
        let mut salt = [0u8; 16];
        random_bytes(&mut salt)?;
        let mut nonce = [0u8; 12];
        random_bytes(&mut nonce)?;
        let check = hkdf32(&kek.key.0, &salt, &[b"sealdb/v1/check"]);
        let wrap = hkdf32(&kek.key.0, &salt, &[b"sealdb/v1/kek"]);

        // Sized exactly, so no reallocation leaves key bytes behind in freed memory.
        let cap = 49
            + self.keys.len() * 44
            + self.retired_audit_keys.len() * 32
            + 4
            + self.keyspace_keys.len() * 36
            + 4
            + self.erased.len() * 4
            + 16;
        let mut body = Zeroizing::new(Vec::with_capacity(cap));
        body.push(match self.cipher {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        });
        put_u32(&mut body, self.current);
        put_u32(&mut body, self.next_id);
        body.extend_from_slice(&self.audit_key.0);
        put_u32(&mut body, self.keys.len() as u32);
        for k in self.keys.values() {
            put_u32(&mut body, k.id);
            put_u64(&mut body, k.created_at);
            body.extend_from_slice(&k.key.0);
        }
        put_u32(&mut body, self.retired_audit_keys.len() as u32);
        for k in &self.retired_audit_keys {
            body.extend_from_slice(&k.0);
        }
        put_u32(&mut body, self.keyspace_keys.len() as u32);
        for (id, k) in &self.keyspace_keys {
            put_u32(&mut body, *id);
            body.extend_from_slice(&k.0);
        }
        put_u32(&mut body, self.erased.len() as u32);
        for id in &self.erased {
            put_u32(&mut body, *id);
        }

        let mut out = Vec::with_capacity(80 + kek.params.len() + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.push(kek.kdf);
        out.push(0);
        put_u32(&mut out, kek.params.len() as u32);
        out.extend_from_slice(&kek.params);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&check.0[..16]);
        out.extend_from_slice(&nonce);
        put_u32(&mut out, body.len() as u32);
        let tag = AeadKey::new(Cipher::Aes256Gcm, &wrap.0).seal_in_place(
            nonce,
            &out,
            body.as_mut_slice(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(&tag);
        let crc = crc32fast::hash(&out);
        put_u32(&mut out, crc);
        Ok(out)
    }

    /// Decodes a registry read from `path` with `master`; returns it with the resolved key,
    /// which later rewrites reuse.
    pub(crate) fn decode(bytes: &[u8], path: &Path, master: &MasterKey) -> Result<(KeyRing, Kek)> {
        let bad = |offset: usize, reason: &str| Error::corruption(path, offset as u64, reason);
        let Some(body_end) = bytes.len().checked_sub(4) else {
            return Err(bad(0, "key registry truncated"));
        };
        let (content, crc) = bytes.split_at(body_end);
        if crc != crc32fast::hash(content).to_le_bytes() {
            return Err(bad(body_end, "key registry checksum mismatch"));
        }
        let mut r = Reader::new(content);
        if r.array::<8>().as_ref() != Some(MAGIC) {
            return Err(bad(0, "not a key registry (bad magic number)"));
        }
        if r.u16() != Some(VERSION) {
            return Err(bad(8, "unknown key registry version"));
        }
        let kdf = r.u8().ok_or_else(|| bad(10, "key registry truncated"))?;
        if r.u8() != Some(0) {
            return Err(bad(11, "key registry reserved byte not zero"));
        }
        let plen = r.u32().ok_or_else(|| bad(12, "key registry truncated"))? as usize;
        if plen > MAX_PARAMS {
            return Err(bad(12, "key registry parameters too long"));
        }
        let params = r.bytes(plen).ok_or_else(|| bad(16, "key registry truncated"))?;
        if kdf == KDF_ARGON2ID {
            // The costs are not authenticated yet (the tag is checked under the key they
            // derive): bound them before any memory or time is spent on them.
            argon2_params(params).map_err(|(at, why)| bad(16 + at, why))?;
        }
        let salt: [u8; 16] = r.array().ok_or_else(|| bad(r.pos(), "key registry truncated"))?;
        let check: [u8; 16] = r.array().ok_or_else(|| bad(r.pos(), "key registry truncated"))?;
        let nonce: [u8; 12] = r.array().ok_or_else(|| bad(r.pos(), "key registry truncated"))?;
        let body_len = r.u32().ok_or_else(|| bad(r.pos(), "key registry truncated"))? as usize;
        let ad_end = r.pos();
        if r.remaining() != body_len.saturating_add(16) {
            return Err(bad(ad_end, "key registry body length mismatch"));
        }
        let kek = master.resolve_existing(kdf, params)?;
        let expect = hkdf32(&kek.key.0, &salt, &[b"sealdb/v1/check"]);
        if expect.0[..16] != check {
            return Err(Error::WrongMasterKey);
        }
        let wrap = hkdf32(&kek.key.0, &salt, &[b"sealdb/v1/kek"]);
        let ct = r.bytes(body_len).ok_or_else(|| bad(ad_end, "key registry truncated"))?;
        let tag = r.bytes(16).ok_or_else(|| bad(ad_end + body_len, "key registry truncated"))?;
        let mut body = Zeroizing::new(ct.to_vec());
        let tag: [u8; 16] =
            tag.try_into().map_err(|_| bad(ad_end + body_len, "key registry truncated"))?;
        AeadKey::new(Cipher::Aes256Gcm, &wrap.0)
            .open_in_place(nonce, &content[..ad_end], body.as_mut_slice(), tag)
            .map_err(|_| bad(ad_end, "key registry failed authentication"))?;

        let bad_body = || bad(ad_end, "malformed key registry body");
        let mut r = Reader::new(&body);
        let Some(Some(cipher)) = r.u8().and_then(cipher_of) else {
            return Err(bad_body());
        };
        let current = r.u32().ok_or_else(bad_body)?;
        let next_id = r.u32().ok_or_else(bad_body)?;
        let audit_key = SecretKey(r.array().ok_or_else(bad_body)?);
        let count = r.u32().ok_or_else(bad_body)?;
        if count > MAX_KEYS {
            return Err(bad_body());
        }
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let id = r.u32().ok_or_else(bad_body)?;
            let created_at = r.u64().ok_or_else(bad_body)?;
            let key = SecretKey(r.array().ok_or_else(bad_body)?);
            if id >= next_id || keys.insert(id, DataKey { id, key, created_at }).is_some() {
                return Err(bad_body());
            }
        }
        let mut retired_audit_keys = Vec::new();
        if !r.is_empty() {
            let count = r.u32().ok_or_else(bad_body)?;
            if count > MAX_KEYS {
                return Err(bad_body());
            }
            for _ in 0..count {
                retired_audit_keys.push(SecretKey(r.array().ok_or_else(bad_body)?));
            }
        }
        let mut keyspace_keys = BTreeMap::new();
        let mut erased = BTreeSet::new();
        if !r.is_empty() {
            let count = r.u32().ok_or_else(bad_body)?;
            if count > MAX_KEYS {
                return Err(bad_body());
            }
            for _ in 0..count {
                let id = r.u32().ok_or_else(bad_body)?;
                let key = SecretKey(r.array().ok_or_else(bad_body)?);
                if id == 0 || keyspace_keys.insert(id, key).is_some() {
                    return Err(bad_body());
                }
            }
            let count = r.u32().ok_or_else(bad_body)?;
            if count > MAX_KEYS {
                return Err(bad_body());
            }
            for _ in 0..count {
                let id = r.u32().ok_or_else(bad_body)?;
                if id == 0 || keyspace_keys.contains_key(&id) || !erased.insert(id) {
                    return Err(bad_body());
                }
            }
        }
        if !r.is_empty() || !keys.contains_key(&current) {
            return Err(bad_body());
        }
        let ring = KeyRing {
            cipher,
            current,
            next_id,
            keys,
            audit_key,
            retired_audit_keys,
            plain_below: 0,
            keyspace_keys,
            erased,
            live: Arc::default(),
        };
        ring.publish();
        Ok((ring, kek))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_wrong_key_and_flips() {
        let m = MasterKey::generate();
        let mut ring = KeyRing::generate(Cipher::ChaCha20Poly1305).unwrap();
        ring.add_key().unwrap();
        let bytes = ring.encode(&m.resolve_new().unwrap()).unwrap();
        let p = Path::new("KEYS");
        let (back, _) = KeyRing::decode(&bytes, p, &m).unwrap();
        assert_eq!(back.current, 2);
        assert_eq!(back.cipher, Cipher::ChaCha20Poly1305);
        assert_eq!(back.get(1).unwrap().key.0, ring.get(1).unwrap().key.0);
        assert!(matches!(
            KeyRing::decode(&bytes, p, &MasterKey::generate()),
            Err(Error::WrongMasterKey)
        ));
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x10;
            assert!(KeyRing::decode(&t, p, &m).unwrap_err().is_corruption(), "flip at {i}");
        }
        for n in 0..bytes.len() {
            assert!(KeyRing::decode(&bytes[..n], p, &m).is_err());
        }
        // Retired audit keys survive a rewrite, oldest first, and stay out of the clear.
        let mut rotated = back.clone();
        rotated.rotate_audit_key().unwrap();
        rotated.rotate_audit_key().unwrap();
        let bytes2 = rotated.encode(&m.resolve_new().unwrap()).unwrap();
        let (back2, _) = KeyRing::decode(&bytes2, p, &m).unwrap();
        let ids = |r: &KeyRing| r.audit_keys().iter().map(|k| k.0).collect::<Vec<_>>();
        assert_eq!(ids(&back2), ids(&rotated));
        assert_eq!(back2.audit_keys().len(), 3);
        assert_eq!(back2.audit_keys()[0].0, ring.audit_key.0);
        for k in rotated.audit_keys() {
            assert!(!bytes2.windows(32).any(|w| w == k.0));
        }
        // No data key appears in the clear.
        for k in ring.keys() {
            assert!(!bytes.windows(32).any(|w| w == k.key.0));
        }
    }

    #[test]
    fn keyspace_keys_and_erasures_round_trip() {
        let m = MasterKey::generate();
        let kek = m.resolve_new().unwrap();
        let p = Path::new("KEYS");
        let mut ring = KeyRing::generate(Cipher::Aes256Gcm).unwrap();
        assert!(!ring.add_keyspace_key(0).unwrap(), "the default keyspace has no key");
        assert!(ring.add_keyspace_key(3).unwrap());
        assert!(!ring.add_keyspace_key(3).unwrap(), "an existing key is kept");
        assert!(ring.add_keyspace_key(5).unwrap());
        let k5 = ring.keyspace_key(5).unwrap().0;
        assert!(ring.erase_keyspace_key(3));
        let bytes = ring.encode(&kek).unwrap();
        let (back, _) = KeyRing::decode(&bytes, p, &m).unwrap();
        assert!(back.keyspace_key(3).is_none());
        assert!(back.is_erased(3));
        assert!(!back.is_erased(5));
        assert_eq!(back.keyspace_key(5).unwrap().0, k5);
        assert_eq!(back.keyspaces_with_keys().collect::<Vec<_>>(), vec![5]);
        assert!(!bytes.windows(32).any(|w| w == k5), "keyspace key in the clear");
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            assert!(KeyRing::decode(&t, p, &m).unwrap_err().is_corruption(), "flip at {i}");
        }
    }
}
