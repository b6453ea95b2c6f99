//! The one AEAD backend: AES-256-GCM and ChaCha20-Poly1305 from `ring`, whose assembly
//! implementations (AES-NI/VAES with carry-less multiply, AVX2 for ChaCha20) run about three times as
//! fast on 4 KiB blocks as the portable ones measured before (`benches/micro.rs`).
//!
//! `ring` keeps its expanded key schedule in a plain struct and does not clear it when it is
//! dropped. [`AeadKey`] therefore holds that struct on the heap, inside a `MaybeUninit`, and
//! zeroizes those bytes in its own `Drop`, so a key schedule does not outlive its key. What
//! stays out of reach: copies `ring` makes on its own stack frames while expanding the key
//! (overwritten by later calls, not cleared on purpose). `docs/security.md` says so.

use std::mem::MaybeUninit;

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use zeroize::Zeroize;

use crate::options::Cipher;

/// Bytes of an AEAD tag.
pub(crate) const TAG_LEN: usize = 16;

/// An AEAD key schedule, zeroized when dropped.
pub(crate) struct AeadKey {
    /// Always initialized, except after `drop` zeroized it (and nothing reads it after that).
    key: Box<MaybeUninit<LessSafeKey>>,
}

/// The AEAD refused a tag: the bytes, the associated data or the key are not the sealed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagMismatch;

impl AeadKey {
    /// The key schedule of `key` for `cipher`.
    pub(crate) fn new(cipher: Cipher, key: &[u8; 32]) -> AeadKey {
        let alg = match cipher {
            Cipher::Aes256Gcm => &AES_256_GCM,
            Cipher::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        };
        let unbound = UnboundKey::new(alg, key)
            .unwrap_or_else(|_| unreachable!("both algorithms take 32-byte keys"));
        let mut boxed = Box::new(MaybeUninit::uninit());
        boxed.write(LessSafeKey::new(unbound));
        AeadKey { key: boxed }
    }

    // One of the crate's `unsafe` places (the others map files, in `io/`, and lay out the
    // memtable's skip list in an arena): the price
    // of zeroizing a schedule `ring` will not clear.
    #[allow(unsafe_code)]
    fn key(&self) -> &LessSafeKey {
        // Safety: `new` initialized the value and only `drop` (after which `self` is gone)
        // overwrites it.
        unsafe { self.key.assume_init_ref() }
    }

    /// Encrypts `buf` in place under `nonce`, authenticating `ad` too; returns the tag.
    pub(crate) fn seal_in_place(&self, nonce: [u8; 12], ad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let tag = self
            .key()
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(ad), buf)
            .unwrap_or_else(|_| unreachable!("blocks are far below the AEAD length limit"));
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts `buf` in place and checks `tag` over it and `ad`. On a mismatch `buf` holds no
    /// plaintext: `ring` decrypts and authenticates in one pass, then zeroes the buffer before
    /// it returns the error (and the caller discards it).
    pub(crate) fn open_in_place(
        &self,
        nonce: [u8; 12],
        ad: &[u8],
        buf: &mut [u8],
        tag: [u8; 16],
    ) -> Result<(), TagMismatch> {
        self.key()
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad),
                Tag::from(tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| TagMismatch)
    }
}

impl Drop for AeadKey {
    fn drop(&mut self) {
        // `MaybeUninit` allows any bytes, so zeroing the schedule in place is sound; the value
        // is never read or dropped as a `LessSafeKey` afterwards (it owns no heap memory).
        self.key.zeroize();
    }
}

impl std::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST SP 800-38D test case 16 (AES-256, 96-bit IV, with AAD).
    #[test]
    fn aes_gcm_matches_nist_vector() {
        let key: [u8; 32] =
            hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .unwrap()
                .try_into()
                .unwrap();
        let iv: [u8; 12] = hex::decode("cafebabefacedbaddecaf888").unwrap().try_into().unwrap();
        let pt = hex::decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39").unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let k = AeadKey::new(Cipher::Aes256Gcm, &key);
        let mut buf = pt.clone();
        let tag = k.seal_in_place(iv, &aad, &mut buf);
        assert_eq!(hex::encode(&buf), "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
        assert_eq!(hex::encode(tag), "76fc6ece0f4e1768cddf8853bb2d551b");
        k.open_in_place(iv, &aad, &mut buf, tag).unwrap();
        assert_eq!(buf, pt);
    }

    /// RFC 8439 section 2.8.2 (ChaCha20-Poly1305 AEAD).
    #[test]
    fn chacha20poly1305_matches_rfc8439_vector() {
        let key: [u8; 32] =
            hex::decode("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce: [u8; 12] = hex::decode("070000004041424344454647").unwrap().try_into().unwrap();
        let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
        let pt = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let k = AeadKey::new(Cipher::ChaCha20Poly1305, &key);
        let mut buf = pt.to_vec();
        let tag = k.seal_in_place(nonce, &aad, &mut buf);
        assert_eq!(&hex::encode(&buf)[..32], "d31a8d34648e60db7b86afbc53ef7ec2");
        assert_eq!(hex::encode(tag), "1ae10b594f09e26a7e902ecbd0600691");
        let mut bad = tag;
        bad[0] ^= 1;
        let mut copy = buf.clone();
        assert_eq!(k.open_in_place(nonce, &aad, &mut copy, bad), Err(TagMismatch));
        k.open_in_place(nonce, &aad, &mut buf, tag).unwrap();
        assert_eq!(buf, pt);
    }
}
