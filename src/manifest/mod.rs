//! The manifest: the set of live files, rewritten whole at every change.
//!
//! ```text
//! MANIFEST = file header ‖ one sealed block (kind Manifest, nonce 1) holding:
//!   version u8 (2) ‖ next file number u64 ‖ last sequence u64 ‖ log number u64
//!   ‖ file count u32 ‖ file* ‖ segment count u32 ‖ segment*
//! file     = level u8 ‖ number u64 ‖ size u64 ‖ key id u32 ‖ max sequence u64
//!            ‖ varint len ‖ smallest internal key ‖ varint len ‖ largest internal key
//! segment  = number u64 ‖ discard bytes u64 ‖ length u64 ‖ flags u8   (live value-log segments;
//!            flag 1: active, the length is the bytes known durable; else closed, exact length)
//! Version 1 (still read) had no segment length or flags.
//! ```
//! A change writes `MANIFEST.tmp`, fsyncs it, renames it over `MANIFEST` and fsyncs the
//! directory, so the manifest on disk is always one whole, authenticated snapshot: a truncated
//! or edited manifest fails to open rather than silently dropping files. WALs numbered below
//! `log number` are obsolete.

use std::path::Path;

use crate::coding::{get_u64_at, put_len_prefixed, put_u32, put_u64, Reader};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{names, Fs};
use crate::key;
use crate::seal::{BlockKind, FileHeader, FileKind};

/// Number of levels.
pub(crate) const NUM_LEVELS: usize = 7;
const VERSION: u8 = 2;
const VERSION_1: u8 = 1;
/// Segment flag: the segment being appended to.
const SEGMENT_ACTIVE: u8 = 1;
const MAX_FILES: u32 = 1 << 24;

/// A live SSTable as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileMeta {
    pub(crate) number: u64,
    pub(crate) size: u64,
    pub(crate) key_id: u32,
    /// Largest sequence number in the table: orders L0, newest first.
    pub(crate) max_seq: u64,
    pub(crate) smallest: Vec<u8>,
    pub(crate) largest: Vec<u8>,
}

impl FileMeta {
    pub(crate) fn smallest_user(&self) -> &[u8] {
        key::user_key(&self.smallest)
    }
    pub(crate) fn largest_user(&self) -> &[u8] {
        key::user_key(&self.largest)
    }
}

/// A live value-log segment as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) number: u64,
    /// Bytes of entries known to be garbage.
    pub(crate) discard: u64,
    /// Closed: the exact length. Active: the bytes known durable. `None` only from a
    /// version-1 manifest, which did not record lengths.
    pub(crate) len: Option<u64>,
    /// Whether this is the segment being appended to.
    pub(crate) active: bool,
}

/// The state a manifest records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManifestData {
    pub(crate) next_file_number: u64,
    pub(crate) last_sequence: u64,
    pub(crate) log_number: u64,
    pub(crate) files: Vec<(u8, FileMeta)>,
    /// Live value-log segments.
    pub(crate) segments: Vec<SegmentMeta>,
}

impl ManifestData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        put_u64(&mut out, self.next_file_number);
        put_u64(&mut out, self.last_sequence);
        put_u64(&mut out, self.log_number);
        put_u32(&mut out, self.files.len() as u32);
        for (level, f) in &self.files {
            out.push(*level);
            put_u64(&mut out, f.number);
            put_u64(&mut out, f.size);
            put_u32(&mut out, f.key_id);
            put_u64(&mut out, f.max_seq);
            put_len_prefixed(&mut out, &f.smallest);
            put_len_prefixed(&mut out, &f.largest);
        }
        put_u32(&mut out, self.segments.len() as u32);
        for seg in &self.segments {
            put_u64(&mut out, seg.number);
            put_u64(&mut out, seg.discard);
            put_u64(&mut out, seg.len.unwrap_or(0));
            out.push(if seg.active { SEGMENT_ACTIVE } else { 0 });
        }
        out
    }

    /// Decodes a manifest payload (already authenticated).
    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<ManifestData, &'static str> {
        let mut r = Reader::new(bytes);
        let version = r.u8();
        if version != Some(VERSION) && version != Some(VERSION_1) {
            return Err("unknown manifest version");
        }
        let v1 = version == Some(VERSION_1);
        let next_file_number = r.u64().ok_or("manifest truncated")?;
        let last_sequence = r.u64().ok_or("manifest truncated")?;
        let log_number = r.u64().ok_or("manifest truncated")?;
        let count = r.u32().ok_or("manifest truncated")?;
        if count > MAX_FILES || last_sequence > key::MAX_SEQ {
            return Err("manifest field out of range");
        }
        let mut files = Vec::new();
        for _ in 0..count {
            let level = r.u8().ok_or("manifest truncated")?;
            if usize::from(level) >= NUM_LEVELS {
                return Err("manifest level out of range");
            }
            let number = r.u64().ok_or("manifest truncated")?;
            let size = r.u64().ok_or("manifest truncated")?;
            let key_id = r.u32().ok_or("manifest truncated")?;
            let max_seq = r.u64().ok_or("manifest truncated")?;
            let smallest = r.len_prefixed().ok_or("manifest truncated")?.to_vec();
            let largest = r.len_prefixed().ok_or("manifest truncated")?.to_vec();
            if key::split(&smallest).is_none() || key::split(&largest).is_none() {
                return Err("manifest key range malformed");
            }
            if number >= next_file_number {
                return Err("manifest file number not below next file number");
            }
            files.push((level, FileMeta { number, size, key_id, max_seq, smallest, largest }));
        }
        let count = r.u32().ok_or("manifest truncated")?;
        if count > MAX_FILES {
            return Err("manifest field out of range");
        }
        let mut segments = Vec::new();
        for _ in 0..count {
            let number = r.u64().ok_or("manifest truncated")?;
            let discard = r.u64().ok_or("manifest truncated")?;
            if number >= next_file_number {
                return Err("manifest segment number not below next file number");
            }
            let (len, active) = if v1 {
                (None, false)
            } else {
                let len = r.u64().ok_or("manifest truncated")?;
                let flags = r.u8().ok_or("manifest truncated")?;
                if flags & !SEGMENT_ACTIVE != 0 {
                    return Err("unknown manifest segment flags");
                }
                (Some(len), flags & SEGMENT_ACTIVE != 0)
            };
            if active && segments.iter().any(|s: &SegmentMeta| s.active) {
                return Err("manifest names two active segments");
            }
            segments.push(SegmentMeta { number, discard, len, active });
        }
        if !r.is_empty() {
            return Err("trailing bytes in manifest");
        }
        Ok(ManifestData { next_file_number, last_sequence, log_number, files, segments })
    }
}

/// Whether the manifest at `path` says its database is encrypted (`None` if unreadable).
pub(crate) fn peek_encrypted(fs: &dyn Fs, dir: &Path) -> Option<bool> {
    let bytes = fs.read_all(&dir.join(names::MANIFEST)).ok()?;
    match bytes.get(10..12)? {
        [0, 0] => Some(false),
        [1, 0] => Some(true),
        _ => None,
    }
}

/// Writes a new manifest atomically: temp file, fsync, rename, fsync directory. The block is
/// offered to LZ4 only when `compress` (`Options::compression`) is on.
pub(crate) fn write(
    fs: &dyn Fs,
    dir: &Path,
    number: u64,
    data: &ManifestData,
    keys: Option<&KeyRing>,
    compress: bool,
) -> Result<()> {
    let (mut bytes, cipher) = FileHeader::create(FileKind::Manifest, number, keys)?;
    let offset = bytes.len() as u64;
    cipher.seal(BlockKind::Manifest, offset, 1, compress, &data.encode(), &mut bytes);
    crate::io::write_atomic(fs, dir, names::MANIFEST, &bytes)?;
    Ok(())
}

/// Reads and authenticates the manifest.
pub(crate) fn read(fs: &dyn Fs, dir: &Path, keys: Option<&KeyRing>) -> Result<ManifestData> {
    let path = dir.join(names::MANIFEST);
    let bytes = fs.read_all(&path)?;
    let hlen = FileHeader::len(keys.is_some());
    let header =
        bytes.get(..hlen).ok_or_else(|| Error::corruption(&path, 0, "manifest truncated"))?;
    let number = get_u64_at(header, 24).unwrap_or(0);
    let cipher = FileHeader::open(FileKind::Manifest, &path, number, header, keys)?;
    let payload = cipher
        .open(BlockKind::Manifest, hlen as u64, &bytes[hlen..])
        .map_err(|e| Error::corruption(&path, hlen as u64, e.reason()))?;
    ManifestData::decode(&payload).map_err(|e| Error::corruption(&path, hlen as u64, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut sk = Vec::new();
        key::encode(&mut sk, b"a", 1, key::ValueKind::Put);
        let d = ManifestData {
            next_file_number: 10,
            last_sequence: 99,
            log_number: 7,
            files: vec![(
                1,
                FileMeta {
                    number: 3,
                    size: 100,
                    key_id: 1,
                    max_seq: 9,
                    smallest: sk.clone(),
                    largest: sk,
                },
            )],
            segments: vec![
                SegmentMeta { number: 4, discard: 1000, len: Some(5000), active: false },
                SegmentMeta { number: 5, discard: 0, len: Some(64), active: true },
            ],
        };
        assert_eq!(ManifestData::decode(&d.encode()).unwrap(), d);
        let enc = d.encode();
        for n in 0..enc.len() {
            assert!(ManifestData::decode(&enc[..n]).is_err());
        }
    }
}
