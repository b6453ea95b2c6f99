//! The sealed-block envelope: the one place where bytes are compressed, encrypted and
//! authenticated on their way to disk, and checked, decrypted and decompressed on the way back.
//!
//! ```text
//! sealed block
//! +0  version      u8   (1)
//! +1  algorithm    u8   (0 none/crc32, 1 AES-256-GCM, 2 ChaCha20-Poly1305)
//! +2  compression  u8   (0 none, 1 LZ4 block)
//! +3  kind         u8   (BlockKind)
//! +4  key id       u32
//! +8  nonce        [12] (per-file counter, little-endian, zero-padded)
//! +20 stored len   u32  (payload bytes as stored)
//! +24 keyspace     u32  (0: sealed under the data key alone; n: also under keyspace n's key)
//! +28 header crc   u32  (crc32 of bytes 0..28)
//! +32 payload      [stored len]  encrypted form of: the plaintext (compression 0), or
//!                                raw len u32 ‖ LZ4 block (compression 1)
//! ..  tag          [16] AEAD tag, or [4] crc32 when the algorithm is none
//! ```
//!
//! Associated data: the 32 header bytes, then the block's place (file number u64, offset u64),
//! then any extra bytes the caller binds (a file header). A block moved to another file or
//! offset, or with an edited header, fails to open. The header crc lets a log reader tell a
//! torn tail (a header that checks out but whose block runs past the end of the file) from a
//! damaged header.
//!
//! Verify before trust: the tag (or crc) is checked before the payload is decompressed. The
//! uncompressed length travels inside the ciphertext, so the clear header shows only the
//! stored (compressed) length, as the ciphertext's own length would.

pub(crate) mod aead;
mod file_header;

pub use file_header::{FileHeader, FileKind, FILE_HEADER_LEN};

use aead::{AeadKey, TAG_LEN};

use crate::coding::{get_u32_at, put_u32};
use crate::crypto::SecretKey;
use crate::options::Cipher;

/// Bytes of a sealed block's header.
pub const HEADER_LEN: usize = 32;
const VERSION: u8 = 1;
/// Byte 0 of every block header (never zero: a log commits a block by writing it last).
pub(crate) const HEADER_VERSION: u8 = VERSION;
const ALGORITHM_OFFSET: usize = 1;
const COMPRESSION_OFFSET: usize = ALGORITHM_OFFSET + 1;
const KIND_OFFSET: usize = COMPRESSION_OFFSET + 1;
const KEY_ID_OFFSET: usize = KIND_OFFSET + 1;
const NONCE_OFFSET: usize = KEY_ID_OFFSET + 4;
const STORED_LEN_OFFSET: usize = NONCE_OFFSET + 12;
const KEYSPACE_OFFSET: usize = STORED_LEN_OFFSET + 4;
const HEADER_CRC_OFFSET: usize = KEYSPACE_OFFSET + 4;
const _: () = assert!(HEADER_CRC_OFFSET + 4 == HEADER_LEN);
/// Largest payload a block may hold (before or after compression).
pub const MAX_BLOCK_LEN: usize = 1 << 30;

/// On-disk algorithm ids (never renumbered).
const ALG_NONE: u8 = 0;
const ALG_AES256GCM: u8 = 1;
const ALG_CHACHA20POLY1305: u8 = 2;
/// On-disk compression ids (never renumbered).
const COMP_NONE: u8 = 0;
const COMP_LZ4: u8 = 1;

/// What a block holds; bound into its associated data. Never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BlockKind {
    /// The check block after a file header.
    FileHeader = 1,
    /// SSTable data block.
    Data = 2,
    /// SSTable index block.
    Index = 3,
    /// SSTable bloom filter.
    Filter = 4,
    /// SSTable properties.
    Properties = 5,
    /// SSTable footer.
    Footer = 6,
    /// WAL record.
    Wal = 7,
    /// Manifest snapshot.
    Manifest = 8,
    /// Value-log entry.
    ValueLog = 9,
    /// Backup manifest body.
    BackupManifest = 10,
    /// Chunk of a logical export stream.
    Export = 11,
}

/// Why a block failed to open. Deliberately says nothing about why a tag failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Fewer bytes than the header says.
    Truncated,
    /// The header's own checksum failed.
    BadHeader,
    /// Unknown version, algorithm, compression, or a kind or key id that is not the expected one.
    Unexpected(&'static str),
    /// The tag (or crc) did not verify: the block was modified or moved.
    Authentication,
    /// The payload did not decompress to its stated length.
    Decompression,
}

impl OpenError {
    /// A short description for `Error::Corruption`.
    pub fn reason(self) -> &'static str {
        match self {
            OpenError::Truncated => "sealed block truncated",
            OpenError::BadHeader => "sealed block header checksum mismatch",
            OpenError::Unexpected(what) => what,
            OpenError::Authentication => "sealed block failed authentication",
            OpenError::Decompression => "sealed block payload failed to decompress",
        }
    }
}

/// Seals and opens the blocks of one file, under that file's key.
///
/// The caller guarantees that every `seal` of one `FileCipher` uses a distinct nonce counter;
/// since each file has its own key (a random per-file salt in the key derivation), the
/// (key, nonce) pair is then unique. See `docs/security.md`.
pub struct FileCipher {
    /// `None` when unencrypted (crc32 in place of the tag).
    aead: Option<AeadKey>,
    alg: u8,
    key_id: u32,
    file_number: u64,
    /// The keyspace whose key this cipher's key was derived with (0: none), written into
    /// every block's header and checked on open.
    keyspace: u32,
}

impl std::fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCipher")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .field("file_number", &self.file_number)
            .finish_non_exhaustive()
    }
}

/// The on-disk algorithm id of a cipher (`None`: no encryption).
pub(crate) fn alg_id(cipher: Option<Cipher>) -> u8 {
    match cipher {
        None => ALG_NONE,
        Some(Cipher::Aes256Gcm) => ALG_AES256GCM,
        Some(Cipher::ChaCha20Poly1305) => ALG_CHACHA20POLY1305,
    }
}

/// The cipher of an on-disk algorithm id: `None` for an unknown id, `Some(None)` for no
/// encryption.
#[allow(clippy::option_option)] // the two "none"s mean different things, as documented
pub(crate) fn cipher_of(alg: u8) -> Option<Option<Cipher>> {
    match alg {
        ALG_NONE => Some(None),
        ALG_AES256GCM => Some(Some(Cipher::Aes256Gcm)),
        ALG_CHACHA20POLY1305 => Some(Some(Cipher::ChaCha20Poly1305)),
        _ => None,
    }
}

impl FileCipher {
    /// A cipher for a file in an unencrypted database (crc32 in place of the tag).
    pub fn plain(file_number: u64) -> FileCipher {
        FileCipher { aead: None, alg: ALG_NONE, key_id: 0, file_number, keyspace: 0 }
    }

    /// A cipher under `file_key` (already derived for this file).
    pub(crate) fn new(
        cipher: Cipher,
        key_id: u32,
        file_key: &SecretKey,
        file_number: u64,
    ) -> FileCipher {
        let aead = Some(AeadKey::new(cipher, &file_key.0));
        FileCipher { aead, alg: alg_id(Some(cipher)), key_id, file_number, keyspace: 0 }
    }

    /// The cipher of a file holding keyspace `keyspace`'s blocks (`keyspace` not 0): its key
    /// is HKDF-SHA256(file key ‖ keyspace key, "sealdb/v1/keyspace", "sealdb/v1/keyspace" ‖
    /// keyspace id), so it needs both the data key (through the file key) and the keyspace
    /// key: destroying the keyspace key makes the blocks unreadable whatever data keys remain.
    /// Blocks sealed by it carry the keyspace id in their header, which is bound into their
    /// associated data.
    pub(crate) fn in_keyspace(
        cipher: Cipher,
        key_id: u32,
        file_key: &SecretKey,
        keyspace: u32,
        keyspace_key: &SecretKey,
        file_number: u64,
    ) -> FileCipher {
        let mut ikm = zeroize::Zeroizing::new([0u8; 64]);
        ikm[..32].copy_from_slice(&file_key.0);
        ikm[32..].copy_from_slice(&keyspace_key.0);
        let key = crate::crypto::hkdf32(
            ikm.as_slice(),
            b"sealdb/v1/keyspace",
            &[b"sealdb/v1/keyspace", &keyspace.to_le_bytes()],
        );
        FileCipher { keyspace, ..FileCipher::new(cipher, key_id, &key, file_number) }
    }

    /// The keyspace whose key this cipher was derived with (0: none).
    pub fn keyspace(&self) -> u32 {
        self.keyspace
    }

    /// The file number bound into every block's associated data.
    pub fn file_number(&self) -> u64 {
        self.file_number
    }
    /// The data key id (0 when unencrypted).
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
    /// The on-disk algorithm id.
    pub fn alg(&self) -> u8 {
        self.alg
    }
    /// Whether blocks are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.alg != ALG_NONE
    }
    /// Bytes of the tag (16) or crc (4) after the payload.
    pub fn tag_len(&self) -> usize {
        tag_len(self.alg)
    }

    /// Appends the sealed form of `plain` to `out`, for a block that will sit at `offset` of
    /// this file. `nonce` must never repeat within the file.
    pub fn seal(
        &self,
        kind: BlockKind,
        offset: u64,
        nonce: u64,
        compress: bool,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.seal_with_ad(kind, offset, nonce, compress, plain, &[], out);
    }

    /// As [`FileCipher::seal`], also binding `extra_ad`.
    #[allow(clippy::too_many_arguments)] // the parts of a block's identity, each needed once
    pub fn seal_with_ad(
        &self,
        kind: BlockKind,
        offset: u64,
        nonce: u64,
        compress: bool,
        plain: &[u8],
        extra_ad: &[u8],
        out: &mut Vec<u8>,
    ) {
        assert!(plain.len() <= MAX_BLOCK_LEN, "block of {} bytes is too large", plain.len());
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let payload_start = out.len();
        let mut comp = COMP_NONE;
        if compress && plain.len() >= MIN_COMPRESSED_LEN {
            let max = lz4_flex::block::get_maximum_output_size(plain.len());
            out.resize(payload_start + 4 + max, 0);
            out[payload_start..payload_start + 4]
                .copy_from_slice(&(plain.len() as u32).to_le_bytes());
            match lz4_flex::block::compress_into(plain, &mut out[payload_start + 4..]) {
                Ok(n) if lz4_pays(4 + n, plain.len()) => {
                    out.truncate(payload_start + 4 + n);
                    comp = COMP_LZ4;
                }
                _ => out.truncate(payload_start),
            }
        }
        if comp == COMP_NONE {
            out.extend_from_slice(plain);
        }
        self.finish_seal(start, kind, offset, nonce, comp, self.keyspace, extra_ad, out);
    }

    /// As [`FileCipher::seal`] with `compress` on, for the payload `prefix ‖ tail` whose tail
    /// was compressed ahead by [`precompress`] (`lz4_tail`): a block of the same form, opening
    /// to the same payload, whose tail was compressed wherever its bytes were, before the prefix
    /// was known. Returns false, and
    /// appends nothing, when compression does not save what [`FileCipher::seal`] asks of it;
    /// the caller then seals the payload uncompressed.
    #[allow(clippy::too_many_arguments)] // the parts of a block's identity, each needed once
    pub(crate) fn seal_precompressed(
        &self,
        kind: BlockKind,
        offset: u64,
        nonce: u64,
        prefix: &[u8],
        tail_len: usize,
        lz4_tail: &[u8],
        out: &mut Vec<u8>,
    ) -> bool {
        let plain_len = prefix.len() + tail_len;
        assert!(plain_len <= MAX_BLOCK_LEN, "block of {plain_len} bytes is too large");
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        out.extend_from_slice(&(plain_len as u32).to_le_bytes());
        let stream = out.len();
        let made = plain_len >= MIN_COMPRESSED_LEN && lz4_prepend(prefix, lz4_tail, out);
        if !made || !lz4_pays(4 + (out.len() - stream), plain_len) {
            out.truncate(start);
            return false;
        }
        self.finish_seal(start, kind, offset, nonce, COMP_LZ4, self.keyspace, &[], out);
        true
    }

    /// Seals `inner` (a block already sealed under keyspace `keyspace`'s cipher, see
    /// [`FileCipher::keyspace_entry`]) as the payload of an outer block under this cipher,
    /// with `keyspace` in the outer header: the outer tag, under the data key, authenticates the
    /// entry's place and length even once the keyspace key is destroyed. Not compressed (the
    /// inner block was, if it helped).
    pub(crate) fn seal_outer(
        &self,
        kind: BlockKind,
        offset: u64,
        nonce: u64,
        keyspace: u32,
        inner: &[u8],
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        out.extend_from_slice(inner);
        self.finish_seal(start, kind, offset, nonce, COMP_NONE, keyspace, &[], out);
    }

    /// Opens a block sealed by this cipher, by [`FileCipher::seal`] or
    /// [`FileCipher::seal_outer`]: returns the keyspace its header names (0 for a plain block)
    /// with its payload (for an outer block, the inner sealed block).
    pub(crate) fn open_outer(
        &self,
        kind: BlockKind,
        offset: u64,
        sealed: &[u8],
    ) -> Result<(u32, Vec<u8>), OpenError> {
        let (keyspace, comp, buf) = self.open_raw_in(kind, offset, sealed, &[], true)?;
        Ok((keyspace, decompress(comp, buf)?))
    }

    /// The cipher of keyspace `keyspace`'s value-log entries in segment `segment`: its key is
    /// HKDF-SHA256(keyspace key, "sealdb/v1/keyspace-vlog", keyspace id ‖ segment number), so
    /// it does not depend on the segment's data key, and re-sealing the segment under a new
    /// data key keeps inner blocks as they are. Nonces are the segment's entry counter, so
    /// (key, nonce) pairs are unique as segment numbers are never reused.
    pub(crate) fn keyspace_entry(
        cipher: Cipher,
        keyspace: u32,
        keyspace_key: &SecretKey,
        segment: u64,
    ) -> FileCipher {
        let key = crate::crypto::hkdf32(
            &keyspace_key.0,
            b"sealdb/v1/keyspace-vlog",
            &[&keyspace.to_le_bytes(), &segment.to_le_bytes()],
        );
        FileCipher {
            aead: Some(AeadKey::new(cipher, &key.0)),
            alg: alg_id(Some(cipher)),
            key_id: 0,
            file_number: segment,
            keyspace,
        }
    }

    /// Completes a block whose header space starts at `out[start]` and whose stored payload
    /// (compressed or not, per `comp`) follows it to the end of `out`: fills the header,
    /// encrypts the payload in place and appends the tag (or crc).
    #[allow(clippy::too_many_arguments)] // the parts of a block's identity, each needed once
    fn finish_seal(
        &self,
        start: usize,
        kind: BlockKind,
        offset: u64,
        nonce: u64,
        comp: u8,
        keyspace: u32,
        extra_ad: &[u8],
        out: &mut Vec<u8>,
    ) {
        let payload_start = start + HEADER_LEN;
        let stored_len = out.len() - payload_start;
        let mut nonce_bytes = [0u8; 12];
        nonce_bytes[..8].copy_from_slice(&nonce.to_le_bytes());
        {
            let h = &mut out[start..payload_start];
            h[0] = VERSION;
            h[ALGORITHM_OFFSET] = self.alg;
            h[COMPRESSION_OFFSET] = comp;
            h[KIND_OFFSET] = kind as u8;
            h[KEY_ID_OFFSET..NONCE_OFFSET].copy_from_slice(&self.key_id.to_le_bytes());
            h[NONCE_OFFSET..STORED_LEN_OFFSET].copy_from_slice(&nonce_bytes);
            h[STORED_LEN_OFFSET..KEYSPACE_OFFSET]
                .copy_from_slice(&(stored_len as u32).to_le_bytes());
            h[KEYSPACE_OFFSET..HEADER_CRC_OFFSET].copy_from_slice(&keyspace.to_le_bytes());
            let crc = crc32fast::hash(&h[..HEADER_CRC_OFFSET]);
            h[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        }
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&out[start..payload_start]);
        let ad = Ad { header: &header, file_number: self.file_number, offset, extra: extra_ad };
        let (_, payload) = out.split_at_mut(payload_start);
        match &self.aead {
            None => {
                let crc = ad.crc(payload);
                put_u32(out, crc);
            }
            Some(key) => {
                let tag = ad.with(|ad| key.seal_in_place(nonce_bytes, ad, payload));
                out.extend_from_slice(&tag);
            }
        }
    }

    /// Re-seals the block `sealed` found at `offset` of this file under `to` (another file's
    /// cipher), at `new_offset` with `new_nonce`, appending it to `out`. The stored payload is
    /// only decrypted and encrypted again: no decompression, no recompression, same length.
    #[allow(clippy::too_many_arguments)] // the parts of two blocks' identities
    pub fn reseal(
        &self,
        kind: BlockKind,
        offset: u64,
        sealed: &[u8],
        to: &FileCipher,
        new_offset: u64,
        new_nonce: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        // An outer block keeps the keyspace its header names (its payload, an inner block, is
        // copied as it is); any other block takes `to`'s.
        let (keyspace, comp, payload) = self.open_raw_in(kind, offset, sealed, &[], true)?;
        let keyspace = if keyspace == self.keyspace { to.keyspace } else { keyspace };
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        out.extend_from_slice(&payload);
        to.finish_seal(start, kind, new_offset, new_nonce, comp, keyspace, &[], out);
        Ok(())
    }

    /// Opens a sealed block that sat at `offset` of this file and must be of `kind`.
    pub fn open(&self, kind: BlockKind, offset: u64, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_with_ad(kind, offset, sealed, &[])
    }

    /// As [`FileCipher::open`], also checking `extra_ad`.
    pub fn open_with_ad(
        &self,
        kind: BlockKind,
        offset: u64,
        sealed: &[u8],
        extra_ad: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let (_, comp, buf) = self.open_raw_in(kind, offset, sealed, extra_ad, false)?;
        decompress(comp, buf)
    }

    /// Checks and decrypts a sealed block, returning the keyspace its header names, its
    /// compression id and stored payload. The header must name this cipher's keyspace, unless
    /// `outer` allows any (an outer block: see [`FileCipher::seal_outer`]).
    fn open_raw_in(
        &self,
        kind: BlockKind,
        offset: u64,
        sealed: &[u8],
        extra_ad: &[u8],
        outer: bool,
    ) -> Result<(u32, u8, Vec<u8>), OpenError> {
        let h = self.check_header(kind, sealed, outer)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&sealed[..HEADER_LEN]);
        let ad = Ad { header: &header, file_number: self.file_number, offset, extra: extra_ad };
        let payload_end = HEADER_LEN + h.stored_len;
        let stored = &sealed[HEADER_LEN..payload_end];
        let tag = &sealed[payload_end..];
        let buf = match &self.aead {
            None => {
                if get_u32_at(tag, 0) != Some(ad.crc(stored)) {
                    return Err(OpenError::Authentication);
                }
                stored.to_vec()
            }
            Some(key) => {
                let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError::Truncated)?;
                let mut buf = stored.to_vec();
                ad.with(|ad| key.open_in_place(h.nonce, ad, &mut buf, tag))
                    .map_err(|_| OpenError::Authentication)?;
                buf
            }
        };
        Ok((h.keyspace, h.comp, buf))
    }

    /// Parses the header of `sealed` and checks it against this file and `kind`, and that
    /// `sealed` is exactly the block it describes. The header must name this cipher's keyspace,
    /// unless `outer` allows any (an outer block: see [`FileCipher::seal_outer`]).
    fn check_header(
        &self,
        kind: BlockKind,
        sealed: &[u8],
        outer: bool,
    ) -> Result<BlockHeader, OpenError> {
        let h = parse_header(sealed)?;
        if h.kind != kind as u8 {
            return Err(OpenError::Unexpected("sealed block of the wrong kind"));
        }
        if h.alg != self.alg {
            return Err(OpenError::Unexpected("sealed block under an unexpected algorithm"));
        }
        if h.key_id != self.key_id {
            return Err(OpenError::Unexpected("sealed block under an unexpected key id"));
        }
        if h.keyspace != self.keyspace && !(outer && self.keyspace == 0) {
            return Err(OpenError::Unexpected("sealed block under an unexpected keyspace key"));
        }
        let total = h.sealed_len();
        if sealed.len() != total {
            return Err(if sealed.len() < total {
                OpenError::Truncated
            } else {
                OpenError::Unexpected("sealed block has trailing bytes")
            });
        }
        Ok(h)
    }

    /// As [`FileCipher::open`], for a sealed block the caller owns: the payload is
    /// authenticated and decrypted in place, without a copy. Returns the plaintext as a buffer
    /// and the range of it that holds the plaintext: `sealed` itself (its payload part) when
    /// the block was stored uncompressed, else a new buffer it was decompressed into. On an
    /// error no plaintext is returned (and `sealed` is dropped).
    pub fn open_owned(
        &self,
        kind: BlockKind,
        offset: u64,
        mut sealed: Vec<u8>,
    ) -> Result<(Vec<u8>, std::ops::Range<usize>), OpenError> {
        let h = self.check_header(kind, &sealed, false)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&sealed[..HEADER_LEN]);
        let ad = Ad { header: &header, file_number: self.file_number, offset, extra: &[] };
        let payload_end = HEADER_LEN + h.stored_len;
        let (body, tag) = sealed.split_at_mut(payload_end);
        let stored = &mut body[HEADER_LEN..];
        match &self.aead {
            None => {
                if get_u32_at(tag, 0) != Some(ad.crc(stored)) {
                    return Err(OpenError::Authentication);
                }
            }
            Some(key) => {
                let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| OpenError::Truncated)?;
                ad.with(|ad| key.open_in_place(h.nonce, ad, stored, tag))
                    .map_err(|_| OpenError::Authentication)?;
            }
        }
        if h.comp == COMP_LZ4 {
            let out = decompress_slice(&sealed[HEADER_LEN..payload_end])?;
            let len = out.len();
            Ok((out, 0..len))
        } else {
            Ok((sealed, HEADER_LEN..payload_end))
        }
    }
}

/// Turns a stored payload back into the plaintext.
fn decompress(comp: u8, buf: Vec<u8>) -> Result<Vec<u8>, OpenError> {
    if comp != COMP_LZ4 {
        return Ok(buf);
    }
    decompress_slice(&buf)
}

/// Payloads shorter than this are stored as they are.
const MIN_COMPRESSED_LEN: usize = 64;

/// Whether a payload of `plain` bytes is stored compressed as `stored` bytes (its length
/// prefix included): only if that saves more than a sixteenth.
fn lz4_pays(stored: usize, plain: usize) -> bool {
    stored < plain - plain / 16
}

/// An LZ4 block of `tail`, to be sealed by [`FileCipher::seal_precompressed`] behind a prefix
/// known later (`None` when the payload, `prefix_len` bytes more, is too short to compress).
pub(crate) fn precompress(prefix_len: usize, tail: &[u8]) -> Option<Vec<u8>> {
    if prefix_len + tail.len() < MIN_COMPRESSED_LEN {
        return None;
    }
    let mut out = vec![0; lz4_flex::block::get_maximum_output_size(tail.len())];
    let n = lz4_flex::block::compress_into(tail, &mut out).ok()?;
    out.truncate(n);
    Some(out)
}

/// Appends an LZ4 block of `prefix ‖ tail` to `out`, given `block`, an LZ4 block of `tail`:
/// the prefix joins the literals of the block's first sequence. Matches are distances back
/// from where they stand, so every one stays right; the block's end keeps the format's rules
/// (its last bytes are literals). Returns false, appending nothing, if `block` does not start
/// with a sequence (it is always this crate's own output: a guard, not a decoder).
fn lz4_prepend(prefix: &[u8], block: &[u8], out: &mut Vec<u8>) -> bool {
    let Some((&token, rest)) = block.split_first() else {
        return false;
    };
    let mut literals = usize::from(token >> 4);
    let mut at = 0;
    if literals == 15 {
        loop {
            let Some(&b) = rest.get(at) else { return false };
            at += 1;
            literals += usize::from(b);
            if b != 255 {
                break;
            }
        }
    }
    let total = literals + prefix.len();
    out.push(((total.min(15) as u8) << 4) | (token & 0x0F));
    if total >= 15 {
        let mut left = total - 15;
        while left >= 255 {
            out.push(255);
            left -= 255;
        }
        out.push(left as u8);
    }
    out.extend_from_slice(prefix);
    out.extend_from_slice(&rest[at..]);
    true
}

/// Decompresses an LZ4 stored payload: raw length u32 ‖ LZ4 block.
fn decompress_slice(buf: &[u8]) -> Result<Vec<u8>, OpenError> {
    let (len, block) = buf.split_at_checked(4).ok_or(OpenError::Decompression)?;
    let raw_len = get_u32_at(len, 0).ok_or(OpenError::Decompression)? as usize;
    // LZ4 expands at most ~255x; anything beyond is a forged length.
    if raw_len > MAX_BLOCK_LEN || raw_len > block.len().saturating_mul(255).saturating_add(16) {
        return Err(OpenError::Decompression);
    }
    // Into a buffer of exactly `raw_len` bytes of capacity, not zeroed first: lz4_flex writes
    // only within the capacity and returns the bytes it wrote, which must be all of them.
    match lz4_flex::block::decompress(block, raw_len) {
        Ok(out) if out.len() == raw_len => Ok(out),
        _ => Err(OpenError::Decompression),
    }
}

fn tag_len(alg: u8) -> usize {
    if alg == ALG_NONE {
        4
    } else {
        TAG_LEN
    }
}

/// The parsed, header-checksum-verified header of a sealed block.
#[derive(Debug, Clone, Copy)]
pub struct BlockHeader {
    alg: u8,
    comp: u8,
    kind: u8,
    key_id: u32,
    keyspace: u32,
    nonce: [u8; 12],
    stored_len: usize,
}

impl BlockHeader {
    /// Total bytes of the sealed block: header, payload and tag.
    pub fn sealed_len(&self) -> usize {
        HEADER_LEN + self.stored_len + tag_len(self.alg)
    }
    /// Whether the payload is stored compressed.
    pub fn compressed(&self) -> bool {
        self.comp != COMP_NONE
    }
    /// The data key id the block is sealed under.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }
    /// The keyspace whose key the block is also sealed under (0: none).
    pub fn keyspace(&self) -> u32 {
        self.keyspace
    }
}

/// The keyspace field of the sealed block starting `sealed` (0 when shorter than a header),
/// not checked: only to choose how to open the block, which checks everything.
pub(crate) fn header_keyspace(sealed: &[u8]) -> u32 {
    get_u32_at(sealed, KEYSPACE_OFFSET).filter(|_| sealed.len() >= HEADER_LEN).unwrap_or(0)
}

/// Parses and checks the header at the start of `bytes` (which may be only the header).
pub fn parse_header(bytes: &[u8]) -> Result<BlockHeader, OpenError> {
    let h = bytes.get(..HEADER_LEN).ok_or(OpenError::Truncated)?;
    if get_u32_at(h, HEADER_CRC_OFFSET) != Some(crc32fast::hash(&h[..HEADER_CRC_OFFSET])) {
        return Err(OpenError::BadHeader);
    }
    if h[0] != VERSION {
        return Err(OpenError::Unexpected("unknown sealed block version"));
    }
    let alg = h[ALGORITHM_OFFSET];
    if cipher_of(alg).is_none() {
        return Err(OpenError::Unexpected("unknown sealed block algorithm"));
    }
    let comp = h[COMPRESSION_OFFSET];
    if comp != COMP_NONE && comp != COMP_LZ4 {
        return Err(OpenError::Unexpected("unknown sealed block compression"));
    }
    let key_id = get_u32_at(h, KEY_ID_OFFSET).ok_or(OpenError::Truncated)?;
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&h[NONCE_OFFSET..STORED_LEN_OFFSET]);
    let stored_len = get_u32_at(h, STORED_LEN_OFFSET).ok_or(OpenError::Truncated)? as usize;
    let keyspace = get_u32_at(h, KEYSPACE_OFFSET).ok_or(OpenError::Truncated)?;
    if alg == ALG_NONE && keyspace != 0 {
        return Err(OpenError::Unexpected("unencrypted sealed block names a keyspace key"));
    }
    if stored_len > MAX_BLOCK_LEN + 4 {
        return Err(OpenError::Unexpected("sealed block length out of range"));
    }
    Ok(BlockHeader { alg, comp, kind: h[KIND_OFFSET], key_id, keyspace, nonce, stored_len })
}

struct Ad<'a> {
    header: &'a [u8; HEADER_LEN],
    file_number: u64,
    offset: u64,
    extra: &'a [u8],
}

impl Ad<'_> {
    /// Calls `f` with the associated data (on the stack unless extra bytes are bound).
    fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let mut fixed = [0u8; HEADER_LEN + 16];
        fixed[..HEADER_LEN].copy_from_slice(self.header);
        fixed[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&self.file_number.to_le_bytes());
        fixed[HEADER_LEN + 8..].copy_from_slice(&self.offset.to_le_bytes());
        if self.extra.is_empty() {
            f(&fixed)
        } else {
            let mut v = Vec::with_capacity(fixed.len() + self.extra.len());
            v.extend_from_slice(&fixed);
            v.extend_from_slice(self.extra);
            f(&v)
        }
    }
    fn crc(&self, payload: &[u8]) -> u32 {
        let mut h = crc32fast::Hasher::new();
        h.update(self.header);
        h.update(&self.file_number.to_le_bytes());
        h.update(&self.offset.to_le_bytes());
        h.update(self.extra);
        h.update(payload);
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ciphers() -> Vec<FileCipher> {
        let k = SecretKey([9; 32]);
        vec![
            FileCipher::plain(7),
            FileCipher::new(Cipher::Aes256Gcm, 3, &k, 7),
            FileCipher::new(Cipher::ChaCha20Poly1305, 3, &k, 7),
        ]
    }

    #[test]
    fn roundtrip_all_ciphers_and_sizes() {
        for c in ciphers() {
            for len in [0usize, 1, 63, 64, 100, 4096, 70_000] {
                let plain: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
                for compress in [false, true] {
                    let mut out = vec![0xaa; 3];
                    c.seal(BlockKind::Data, 100, 5, compress, &plain, &mut out);
                    let sealed = &out[3..];
                    assert_eq!(c.open(BlockKind::Data, 100, sealed).unwrap(), plain);
                    let (buf, range) = c.open_owned(BlockKind::Data, 100, sealed.to_vec()).unwrap();
                    assert_eq!(buf[range], plain[..]);
                    assert_eq!(parse_header(sealed).unwrap().sealed_len(), sealed.len());
                    // The uncompressed length is not in the clear header.
                    assert_eq!(sealed[KEYSPACE_OFFSET..HEADER_CRC_OFFSET], [0; 4]);
                }
            }
        }
    }

    /// Tails whose first literal run (after the prefix) crosses every length encoding LZ4 has:
    /// under 15, 15 to 269 (one extra byte), 270 and over (several), then repeats.
    fn tails() -> Vec<Vec<u8>> {
        let mut out = vec![Vec::new(), vec![5; 3], b"abcd".repeat(40)];
        let mut x = 7u32;
        for run in [0usize, 1, 6, 7, 8, 14, 15, 246, 247, 254, 255, 261, 262, 263, 600] {
            let mut t: Vec<u8> = (0..run)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            t.extend(b"repeat-me-".repeat(50));
            out.push(t);
        }
        out
    }

    #[test]
    fn a_precompressed_tail_seals_as_the_whole_payload_would() {
        for c in ciphers() {
            for tail in tails() {
                let prefix = 0x0102_0304_0506_0708u64.to_le_bytes();
                let plain = [&prefix[..], &tail].concat();
                let mut out = vec![0xaa; 3];
                let done = match precompress(prefix.len(), &tail) {
                    Some(lz4) => c.seal_precompressed(
                        BlockKind::ValueLog,
                        100,
                        5,
                        &prefix,
                        tail.len(),
                        &lz4,
                        &mut out,
                    ),
                    None => false,
                };
                // Whether it compresses is what `seal` decides for the same payload.
                let mut whole = Vec::new();
                c.seal(BlockKind::ValueLog, 100, 5, true, &plain, &mut whole);
                let compressed = parse_header(&whole).unwrap().comp == COMP_LZ4;
                assert_eq!(done, compressed, "tail of {} bytes", tail.len());
                if !done {
                    assert_eq!(out, [0xaa; 3], "nothing appended");
                    continue;
                }
                let sealed = &out[3..];
                assert_eq!(c.open(BlockKind::ValueLog, 100, sealed).unwrap(), plain);
                assert_eq!(parse_header(sealed).unwrap().sealed_len(), sealed.len());
            }
        }
    }

    #[test]
    fn a_prefix_joins_the_first_literals_of_any_block() {
        for tail in tails() {
            let block = lz4_flex::block::compress(&tail);
            for prefix_len in [0usize, 1, 8, 14, 15, 300] {
                let prefix = vec![0xEE; prefix_len];
                let mut out = Vec::new();
                assert!(lz4_prepend(&prefix, &block, &mut out));
                let want = [&prefix[..], &tail].concat();
                assert_eq!(lz4_flex::block::decompress(&out, want.len()).unwrap(), want);
            }
        }
        assert!(!lz4_prepend(b"p", &[], &mut Vec::new()));
        assert!(!lz4_prepend(b"p", &[0xF0, 255], &mut Vec::new()), "cut length");
    }

    #[test]
    fn every_byte_flip_is_detected() {
        for c in ciphers() {
            let plain: Vec<u8> = b"key-and-value-bytes ".repeat(20);
            let mut sealed = Vec::new();
            c.seal(BlockKind::Data, 0, 1, true, &plain, &mut sealed);
            for i in 0..sealed.len() {
                for bit in [0x01u8, 0x80] {
                    let mut t = sealed.clone();
                    t[i] ^= bit;
                    assert!(c.open(BlockKind::Data, 0, &t).is_err(), "flip at {i} undetected");
                    assert!(
                        c.open_owned(BlockKind::Data, 0, t).is_err(),
                        "flip at {i} undetected in place"
                    );
                }
            }
        }
    }

    #[test]
    fn reseal_moves_a_block_to_another_key_and_place() {
        let from = FileCipher::new(Cipher::Aes256Gcm, 1, &SecretKey([1; 32]), 5);
        let to = FileCipher::new(Cipher::ChaCha20Poly1305, 2, &SecretKey([2; 32]), 9);
        for (compress, plain) in [(true, b"abc".repeat(100)), (false, b"xyz".to_vec())] {
            let mut sealed = Vec::new();
            from.seal(BlockKind::Data, 100, 3, compress, &plain, &mut sealed);
            let mut out = vec![7u8; 5];
            from.reseal(BlockKind::Data, 100, &sealed, &to, 200, 4, &mut out).unwrap();
            let moved = &out[5..];
            assert_eq!(moved.len(), sealed.len());
            assert_eq!(to.open(BlockKind::Data, 200, moved).unwrap(), plain);
            assert!(to.open(BlockKind::Data, 100, moved).is_err());
            assert!(from.reseal(BlockKind::Data, 101, &sealed, &to, 200, 4, &mut out).is_err());
        }
    }

    #[test]
    fn place_is_bound() {
        for c in ciphers() {
            let mut sealed = Vec::new();
            c.seal(BlockKind::Data, 4096, 1, false, b"hello", &mut sealed);
            assert_eq!(c.open(BlockKind::Data, 4097, &sealed), Err(OpenError::Authentication));
            assert_eq!(
                c.open_owned(BlockKind::Data, 4097, sealed.clone()),
                Err(OpenError::Authentication)
            );
            assert!(c.open_owned(BlockKind::Index, 4096, sealed.clone()).is_err());
            assert!(c.open(BlockKind::Index, 4096, &sealed).is_err());
            let other = if c.is_encrypted() {
                FileCipher::new(Cipher::Aes256Gcm, c.key_id(), &SecretKey([9; 32]), 8)
            } else {
                FileCipher::plain(8)
            };
            if c.alg == other.alg {
                assert_eq!(
                    other.open(BlockKind::Data, 4096, &sealed),
                    Err(OpenError::Authentication)
                );
            }
        }
    }

    #[test]
    fn encrypted_payload_hides_plaintext() {
        let c = &ciphers()[1];
        let mut sealed = Vec::new();
        let plain = b"secret-value-secret-value".repeat(4);
        c.seal(BlockKind::Data, 0, 1, false, &plain, &mut sealed);
        assert!(!sealed.windows(12).any(|w| w == b"secret-value"));
    }
}
