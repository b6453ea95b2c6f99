//! The manifest: the set of live files, rewritten whole at every change.
//!
//! ```text
//! MANIFEST = file header ‖ one sealed block (kind Manifest, nonce 1) holding:
//!   version u8 (4) ‖ next file number u64 ‖ last sequence u64 ‖ log number u64
//!   ‖ file count u32 ‖ file* ‖ segment count u32 ‖ segment*
//!   ‖ rotation key id u32 ‖ bytes sealed under it u64 ‖ audit lines u64 ‖ audit last mac [32]
//!   ‖ next keyspace id u32 ‖ keyspace count u32 ‖ keyspace* ‖ dropped count u32 ‖ id u32*
//!   ‖ database id [16] ‖ cold count u32 ‖ cold*
//! file     = level u8 ‖ number u64 ‖ size u64 ‖ key id u32 ‖ max sequence u64
//!            ‖ varint len ‖ smallest internal key ‖ varint len ‖ largest internal key
//!            ‖ oldest write u64 (ms since the Unix epoch, 0: unknown) ‖ tombstones u64
//! segment  = number u64 ‖ discard bytes u64 ‖ length u64 ‖ flags u8 (bit 0: active)
//! keyspace = id u32 ‖ varint len ‖ name
//! cold     = kind u8 (0 table, 1 value-log segment) ‖ number u64 ‖ size u64
//!            ‖ SHA-256 of the sealed bytes [32] ‖ varint len ‖ object name (UTF-8)
//! ```
//! Version 1 ends after the segments, and its segment is number ‖ discard bytes; version 2
//! ends after the audit anchor. Both still decode, but mark a database whose tree keys carry
//! no keyspace prefix ([`ManifestData::legacy_keys`]): the engine refuses to open it. Version
//! 3 is version 4 without a file's oldest write and tombstone count (read as unknown: oldest
//! write 0, one tombstone, so erasure treats such a table as possibly holding both).
//!
//! A change writes `MANIFEST.tmp`, fsyncs it, renames it over `MANIFEST` and fsyncs the
//! directory, so the manifest on disk is always one whole, authenticated snapshot: a truncated
//! or edited manifest fails to open rather than silently dropping files. WALs numbered below
//! `log number` are obsolete. `next file number` is a reservation: every number below it may
//! be in use, and none at or above it is used before a newer manifest reserves it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::coding::{get_u64_at, put_len_prefixed, put_u32, put_u64, Reader};
use crate::crypto::registry::KeyRing;
use crate::error::{Error, Result};
use crate::io::{names, Fs};
use crate::key;
use crate::seal::{BlockKind, FileHeader, FileKind};

/// Number of levels.
pub(crate) const NUM_LEVELS: usize = 7;
/// The version written.
const VERSION: u8 = 4;
/// The third version, still read: no oldest write or tombstone count per table.
const VERSION_3: u8 = 3;
/// Longest object name a manifest accepts.
const MAX_OBJECT_NAME: usize = 1024;
/// The first version, still read: no segment lengths, rotation counter or audit anchor.
const VERSION_1: u8 = 1;
/// The second version, still decoded: no keyspace table (tree keys without keyspace prefix),
/// no database id, no cold files.
const VERSION_2: u8 = 2;
/// Most named keyspaces (and dropped ids) a manifest may record.
const MAX_KEYSPACES: u32 = 1 << 20;
/// Longest keyspace name, in bytes.
pub(crate) const MAX_KEYSPACE_NAME: usize = 1024;
const MAX_FILES: u32 = 1 << 24;
/// Segment flag: the segment being appended to.
const SEGMENT_ACTIVE: u8 = 1;
/// File numbers each manifest reserves beyond the last one allocated (see [`ManifestData`]).
pub(crate) const FILE_NUMBER_RESERVE: u64 = 1024;

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
    /// When the oldest write the table holds was made, in milliseconds since the Unix epoch,
    /// or earlier (a bound, never later); 0 when unknown. Erasure compacts a table that may
    /// shadow older versions once this is older than its bound.
    pub(crate) oldest_write: u64,
    /// Tombstones in the table (1 when unknown).
    pub(crate) tombstones: u64,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) number: u64,
    /// Bytes of entries known to be garbage.
    pub(crate) discard: u64,
    /// For a closed segment its exact length; for the active one the bytes known durable (the
    /// file may be longer). `None` only when read from a version-1 manifest.
    pub(crate) len: Option<u64>,
    /// The segment being appended to.
    pub(crate) active: bool,
}

/// Where the audit log's MAC chain stood when the manifest was written: its number of lines and
/// the MAC of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AuditAnchor {
    pub(crate) lines: u64,
    pub(crate) last_mac: [u8; 32],
}

/// The keyspaces a manifest records: the name of every named keyspace and its id, the ids
/// dropped, and the next id to hand out. Id 0 is the unnamed default keyspace; ids are never
/// reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyspaceTable {
    /// Every id below it was handed out (≥ 1: 0 is the default keyspace).
    pub(crate) next_id: u32,
    /// Live named keyspaces: name → id.
    pub(crate) named: BTreeMap<String, u32>,
    /// Dropped ids: their entries are garbage wherever they are found.
    pub(crate) dropped: BTreeSet<u32>,
}

impl Default for KeyspaceTable {
    fn default() -> KeyspaceTable {
        KeyspaceTable { next_id: 1, named: BTreeMap::new(), dropped: BTreeSet::new() }
    }
}

impl KeyspaceTable {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.next_id);
        put_u32(out, self.named.len() as u32);
        for (name, id) in &self.named {
            put_u32(out, *id);
            put_len_prefixed(out, name.as_bytes());
        }
        put_u32(out, self.dropped.len() as u32);
        for id in &self.dropped {
            put_u32(out, *id);
        }
    }

    fn decode(r: &mut Reader<'_>) -> std::result::Result<KeyspaceTable, &'static str> {
        let next_id = r.u32().ok_or("manifest truncated")?;
        if next_id == 0 {
            return Err("manifest next keyspace id is 0");
        }
        let count = r.u32().ok_or("manifest truncated")?;
        if count > MAX_KEYSPACES {
            return Err("manifest field out of range");
        }
        let mut named = BTreeMap::new();
        let mut ids = BTreeSet::new();
        for _ in 0..count {
            let id = r.u32().ok_or("manifest truncated")?;
            let name = r.len_prefixed().ok_or("manifest truncated")?;
            if name.is_empty() || name.len() > MAX_KEYSPACE_NAME {
                return Err("manifest keyspace name length out of range");
            }
            let name = std::str::from_utf8(name).map_err(|_| "manifest keyspace name not UTF-8")?;
            if id == 0 || id >= next_id || !ids.insert(id) {
                return Err("manifest keyspace id out of range or repeated");
            }
            if named.insert(name.to_owned(), id).is_some() {
                return Err("manifest keyspace name repeated");
            }
        }
        let count = r.u32().ok_or("manifest truncated")?;
        if count > MAX_KEYSPACES {
            return Err("manifest field out of range");
        }
        let mut dropped = BTreeSet::new();
        for _ in 0..count {
            let id = r.u32().ok_or("manifest truncated")?;
            if id == 0 || id >= next_id || ids.contains(&id) || !dropped.insert(id) {
                return Err("manifest dropped keyspace id out of range, live or repeated");
            }
        }
        Ok(KeyspaceTable { next_id, named, dropped })
    }
}

/// What a cold file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ColdKind {
    Table,
    Segment,
}

/// A file whose sealed bytes live in the object store rather than the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColdMeta {
    pub(crate) kind: ColdKind,
    pub(crate) number: u64,
    /// The object's exact size (the file's).
    pub(crate) size: u64,
    /// SHA-256 of the object's bytes: the sealed file as it was uploaded.
    pub(crate) digest: [u8; 32],
    /// The object's name under the cold storage prefix.
    pub(crate) name: String,
}

/// The state a manifest records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManifestData {
    /// Every file number below it may be in use; new numbers start at it.
    pub(crate) next_file_number: u64,
    pub(crate) last_sequence: u64,
    pub(crate) log_number: u64,
    pub(crate) files: Vec<(u8, FileMeta)>,
    /// Live value-log segments.
    pub(crate) segments: Vec<SegmentMeta>,
    /// Rotation by volume: the current data key's id and the bytes sealed under it so far
    /// ((0, 0) when unencrypted or read from a version-1 manifest).
    pub(crate) rotation: (u32, u64),
    /// The audit log's chain (`None` when unencrypted, when no line was written yet, or read
    /// from a version-1 manifest).
    pub(crate) audit: Option<AuditAnchor>,
    /// Named and dropped keyspaces (empty when read from a version-1 or -2 manifest).
    pub(crate) keyspaces: KeyspaceTable,
    /// Read from a version-1 or -2 manifest: the database's tree keys have no keyspace prefix.
    pub(crate) legacy_keys: bool,
    /// The database's id, random, made with the database (`None` when read from a manifest
    /// older than version 3: the engine makes one then). Object names carry it.
    pub(crate) db_id: Option<[u8; 16]>,
    /// Files that live in the object store.
    pub(crate) cold: Vec<ColdMeta>,
}

impl ManifestData {
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_as(VERSION)
    }

    /// The payload as version 4 (`VERSION`) or, for tests forging an older manifest, version 3
    /// (no oldest write or tombstones per table).
    pub(crate) fn encode_as(&self, version: u8) -> Vec<u8> {
        let mut out = vec![version];
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
            if version >= VERSION {
                put_u64(&mut out, f.oldest_write);
                put_u64(&mut out, f.tombstones);
            }
        }
        put_u32(&mut out, self.segments.len() as u32);
        for s in &self.segments {
            put_u64(&mut out, s.number);
            put_u64(&mut out, s.discard);
            // A version-1 segment's length is unknown until the engine measures it; it is
            // written as what the engine filled in, never as `None`.
            put_u64(&mut out, s.len.unwrap_or(0));
            out.push(if s.active { SEGMENT_ACTIVE } else { 0 });
        }
        put_u32(&mut out, self.rotation.0);
        put_u64(&mut out, self.rotation.1);
        let anchor = self.audit.unwrap_or(AuditAnchor { lines: 0, last_mac: [0; 32] });
        put_u64(&mut out, anchor.lines);
        out.extend_from_slice(&anchor.last_mac);
        self.keyspaces.encode(&mut out);
        out.extend_from_slice(&self.db_id.unwrap_or_default());
        put_u32(&mut out, self.cold.len() as u32);
        for c in &self.cold {
            out.push(match c.kind {
                ColdKind::Table => 0,
                ColdKind::Segment => 1,
            });
            put_u64(&mut out, c.number);
            put_u64(&mut out, c.size);
            out.extend_from_slice(&c.digest);
            put_len_prefixed(&mut out, c.name.as_bytes());
        }
        out
    }

    /// Decodes a manifest payload (already authenticated), version 4, 3, 2 or 1.
    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<ManifestData, &'static str> {
        let mut r = Reader::new(bytes);
        let version = r.u8().ok_or("manifest truncated")?;
        if !matches!(version, VERSION | VERSION_3 | VERSION_2 | VERSION_1) {
            return Err("unknown manifest version");
        }
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
            let (oldest_write, tombstones) = if version == VERSION {
                (r.u64().ok_or("manifest truncated")?, r.u64().ok_or("manifest truncated")?)
            } else {
                (0, 1)
            };
            if number >= next_file_number {
                return Err("manifest file number not below next file number");
            }
            files.push((
                level,
                FileMeta {
                    number,
                    size,
                    key_id,
                    max_seq,
                    smallest,
                    largest,
                    oldest_write,
                    tombstones,
                },
            ));
        }
        let count = r.u32().ok_or("manifest truncated")?;
        if count > MAX_FILES {
            return Err("manifest field out of range");
        }
        let mut segments = Vec::new();
        for _ in 0..count {
            let number = r.u64().ok_or("manifest truncated")?;
            let discard = r.u64().ok_or("manifest truncated")?;
            let (len, active) = if version == VERSION_1 {
                (None, false)
            } else {
                let len = r.u64().ok_or("manifest truncated")?;
                let flags = r.u8().ok_or("manifest truncated")?;
                if flags & !SEGMENT_ACTIVE != 0 {
                    return Err("manifest segment flags hold an unknown bit");
                }
                (Some(len), flags & SEGMENT_ACTIVE != 0)
            };
            if number >= next_file_number {
                return Err("manifest segment number not below next file number");
            }
            segments.push(SegmentMeta { number, discard, len, active });
        }
        if segments.iter().filter(|s| s.active).count() > 1 {
            return Err("manifest names more than one active segment");
        }
        let (rotation, audit) = if version == VERSION_1 {
            ((0, 0), None)
        } else {
            let key_id = r.u32().ok_or("manifest truncated")?;
            let sealed = r.u64().ok_or("manifest truncated")?;
            let lines = r.u64().ok_or("manifest truncated")?;
            let last_mac: [u8; 32] = r.array().ok_or("manifest truncated")?;
            let audit = match lines {
                0 if last_mac != [0; 32] => return Err("manifest audit anchor malformed"),
                0 => None,
                _ => Some(AuditAnchor { lines, last_mac }),
            };
            ((key_id, sealed), audit)
        };
        let keyspaces = if version >= VERSION_3 {
            KeyspaceTable::decode(&mut r)?
        } else {
            KeyspaceTable::default()
        };
        let (db_id, cold) = if version >= VERSION_3 {
            decode_cold(&mut r, next_file_number)?
        } else {
            (None, Vec::new())
        };
        if !r.is_empty() {
            return Err("trailing bytes in manifest");
        }
        Ok(ManifestData {
            next_file_number,
            last_sequence,
            log_number,
            files,
            segments,
            rotation,
            audit,
            keyspaces,
            legacy_keys: version < VERSION_3,
            db_id,
            cold,
        })
    }
}

/// Decodes version 3's tail: the database id and the cold files.
fn decode_cold(
    r: &mut Reader<'_>,
    next_file_number: u64,
) -> std::result::Result<(Option<[u8; 16]>, Vec<ColdMeta>), &'static str> {
    let id: [u8; 16] = r.array().ok_or("manifest truncated")?;
    let count = r.u32().ok_or("manifest truncated")?;
    if count > MAX_FILES {
        return Err("manifest field out of range");
    }
    let mut cold = Vec::new();
    for _ in 0..count {
        let kind = match r.u8().ok_or("manifest truncated")? {
            0 => ColdKind::Table,
            1 => ColdKind::Segment,
            _ => return Err("manifest cold file kind unknown"),
        };
        let number = r.u64().ok_or("manifest truncated")?;
        let size = r.u64().ok_or("manifest truncated")?;
        let digest: [u8; 32] = r.array().ok_or("manifest truncated")?;
        let name = r.len_prefixed().ok_or("manifest truncated")?;
        if name.is_empty() || name.len() > MAX_OBJECT_NAME {
            return Err("manifest object name length out of range");
        }
        let name =
            std::str::from_utf8(name).map_err(|_| "manifest object name is not UTF-8")?.to_owned();
        if number >= next_file_number {
            return Err("manifest cold file number not below next file number");
        }
        if cold.iter().any(|c: &ColdMeta| c.kind == kind && c.number == number) {
            return Err("manifest names a cold file twice");
        }
        cold.push(ColdMeta { kind, number, size, digest, name });
    }
    Ok(((id != [0; 16]).then_some(id), cold))
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
    let bytes = encode_file(number, data, keys, compress)?;
    crate::io::write_atomic(fs, dir, names::MANIFEST, &bytes)?;
    Ok(())
}

/// The bytes of a manifest file numbered `number` recording `data` (as [`write`] writes them).
pub(crate) fn encode_file(
    number: u64,
    data: &ManifestData,
    keys: Option<&KeyRing>,
    compress: bool,
) -> Result<Vec<u8>> {
    encode_payload_file(number, &data.encode(), keys, compress)
}

/// Writes a manifest holding `payload` atomically (see [`write`]): tests forge older versions.
#[cfg(test)]
pub(crate) fn write_payload(
    fs: &dyn Fs,
    dir: &Path,
    number: u64,
    payload: &[u8],
    keys: Option<&KeyRing>,
    compress: bool,
) -> Result<()> {
    let bytes = encode_payload_file(number, payload, keys, compress)?;
    crate::io::write_atomic(fs, dir, names::MANIFEST, &bytes)?;
    Ok(())
}

/// The bytes of a manifest file numbered `number` holding `payload`.
fn encode_payload_file(
    number: u64,
    payload: &[u8],
    keys: Option<&KeyRing>,
    compress: bool,
) -> Result<Vec<u8>> {
    let (mut bytes, cipher) = FileHeader::create(FileKind::Manifest, number, keys)?;
    let offset = bytes.len() as u64;
    cipher.seal(BlockKind::Manifest, offset, 1, compress, payload, &mut bytes);
    Ok(bytes)
}

/// Reads and authenticates the manifest.
pub(crate) fn read(fs: &dyn Fs, dir: &Path, keys: Option<&KeyRing>) -> Result<ManifestData> {
    let path = dir.join(names::MANIFEST);
    let bytes = fs.read_all(&path)?;
    let number = get_u64_at(&bytes, 24).unwrap_or(0);
    let hlen = FileHeader::len_for(&bytes, number, keys);
    let header =
        bytes.get(..hlen).ok_or_else(|| Error::corruption(&path, 0, "manifest truncated"))?;
    let cipher = FileHeader::open(FileKind::Manifest, &path, number, header, keys)?;
    let payload = cipher
        .open(BlockKind::Manifest, hlen as u64, &bytes[hlen..])
        .map_err(|e| Error::corruption(&path, hlen as u64, e.reason()))?;
    ManifestData::decode(&payload).map_err(|e| Error::corruption(&path, hlen as u64, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ManifestData {
        let mut sk = Vec::new();
        key::encode(&mut sk, b"a", 1, key::ValueKind::Put);
        ManifestData {
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
                    oldest_write: 1_700_000_000_123,
                    tombstones: 3,
                },
            )],
            segments: vec![
                SegmentMeta { number: 4, discard: 1000, len: Some(5000), active: false },
                SegmentMeta { number: 8, discard: 0, len: Some(64), active: true },
            ],
            rotation: (2, 123_456),
            audit: Some(AuditAnchor { lines: 5, last_mac: [7; 32] }),
            keyspaces: KeyspaceTable::default(),
            legacy_keys: false,
            db_id: Some([3; 16]),
            cold: Vec::new(),
        }
    }

    /// Bytes of version 3's tail in `sample()`: database id and an empty cold list.
    const V3_TAIL: usize = 20;

    /// `sample()` as an older version decodes its one file: oldest write and tombstones
    /// unknown.
    fn sample_files_unknown_age() -> Vec<(u8, FileMeta)> {
        let mut files = sample().files;
        for (_, f) in &mut files {
            (f.oldest_write, f.tombstones) = (0, 1);
        }
        files
    }

    /// `sample().encode()` laid out as version 3: its one file without the 16 bytes of oldest
    /// write and tombstones.
    fn sample_v3() -> Vec<u8> {
        let mut enc = sample().encode();
        enc[0] = VERSION_3;
        let seg_at = enc.len() - (4 + 2 * 25 + 64 + V3_TAIL);
        enc.drain(seg_at - 16..seg_at);
        enc
    }

    #[test]
    fn version_3_decodes_with_unknown_ages() {
        let back = ManifestData::decode(&sample_v3()).unwrap();
        assert_eq!(back.files, sample_files_unknown_age());
        assert!(!back.legacy_keys);
        assert_eq!((back.db_id, back.audit), (sample().db_id, sample().audit));
    }

    #[test]
    fn cold_files_roundtrip_and_are_checked() {
        let mut d = sample();
        d.cold = vec![
            ColdMeta {
                kind: ColdKind::Table,
                number: 3,
                size: 100,
                digest: [9; 32],
                name: "ab12/x-3.sst".into(),
            },
            ColdMeta {
                kind: ColdKind::Segment,
                number: 4,
                size: 5000,
                digest: [8; 32],
                name: "cd34/x-4.vlog".into(),
            },
        ];
        let enc = d.encode();
        assert_eq!(ManifestData::decode(&enc).unwrap(), d);
        for n in 0..enc.len() {
            assert!(ManifestData::decode(&enc[..n]).is_err(), "cut at {n}");
        }
        let mut twice = d.clone();
        twice.cold[1].kind = ColdKind::Table;
        twice.cold[1].number = 3;
        assert_eq!(ManifestData::decode(&twice.encode()), Err("manifest names a cold file twice"));
        let mut beyond = d.clone();
        beyond.cold[0].number = 10;
        assert!(ManifestData::decode(&beyond.encode()).is_err());
        let mut empty_name = d;
        empty_name.cold[0].name.clear();
        assert!(ManifestData::decode(&empty_name.encode()).is_err());
    }

    #[test]
    fn roundtrip() {
        let d = sample();
        assert_eq!(ManifestData::decode(&d.encode()).unwrap(), d);
        let enc = d.encode();
        for n in 0..enc.len() {
            assert!(ManifestData::decode(&enc[..n]).is_err(), "cut at {n}");
        }
        let plain = ManifestData { audit: None, rotation: (0, 0), db_id: None, ..d };
        assert_eq!(ManifestData::decode(&plain.encode()).unwrap(), plain);
    }

    /// Offset of the flags byte of segment `i` in `sample().encode()`.
    fn flags_offset(enc: &[u8], i: usize) -> usize {
        // Segments sit before the tail (rotation 12, anchor 40, empty keyspace table 12, then
        // the cold part); each is 25 bytes.
        enc.len() - V3_TAIL - 64 - 25 * (2 - i) + 24
    }

    #[test]
    fn segment_flags_are_checked() {
        let enc = sample().encode();
        assert_eq!(enc[flags_offset(&enc, 0)], 0);
        assert_eq!(enc[flags_offset(&enc, 1)], SEGMENT_ACTIVE);
        for bit in 1..8 {
            let mut t = enc.clone();
            t[flags_offset(&enc, 0)] |= 1 << bit;
            assert_eq!(
                ManifestData::decode(&t),
                Err("manifest segment flags hold an unknown bit"),
                "bit {bit}"
            );
        }
        let mut two_active = enc.clone();
        two_active[flags_offset(&enc, 0)] = SEGMENT_ACTIVE;
        assert!(ManifestData::decode(&two_active).is_err());
        let mut no_anchor_mac = enc.clone();
        let lines_at = enc.len() - V3_TAIL - 52;
        no_anchor_mac[lines_at..lines_at + 8].fill(0);
        assert_eq!(ManifestData::decode(&no_anchor_mac), Err("manifest audit anchor malformed"));
    }

    #[test]
    fn version_1_still_decodes() {
        let d = sample();
        let mut v1 = vec![VERSION_1];
        put_u64(&mut v1, d.next_file_number);
        put_u64(&mut v1, d.last_sequence);
        put_u64(&mut v1, d.log_number);
        // The file count and files are laid out alike in versions 1 to 3.
        let enc = sample_v3();
        v1.extend_from_slice(&enc[25..enc.len() - (4 + 2 * 25 + 64 + V3_TAIL)]);
        put_u32(&mut v1, 2);
        for s in &d.segments {
            put_u64(&mut v1, s.number);
            put_u64(&mut v1, s.discard);
        }
        let back = ManifestData::decode(&v1).unwrap();
        assert_eq!(back.files, sample_files_unknown_age());
        assert_eq!(back.rotation, (0, 0));
        assert_eq!(back.audit, None);
        let segs: Vec<_> = back.segments.iter().map(|s| (s.number, s.discard, s.len)).collect();
        assert_eq!(segs, vec![(4, 1000, None), (8, 0, None)]);
        assert!(back.segments.iter().all(|s| !s.active));
        assert!(back.legacy_keys, "a version-1 manifest marks a database without keyspaces");
        // A version-1 payload with version 2's tail is refused, and the reverse.
        let mut long = v1.clone();
        long.push(0);
        assert_eq!(ManifestData::decode(&long), Err("trailing bytes in manifest"));
        let mut v5 = d.encode();
        v5[0] = 5;
        assert_eq!(ManifestData::decode(&v5), Err("unknown manifest version"));
        // Version 2: version 3 without the keyspace table and the cold part.
        let mut v2 = sample_v3();
        v2[0] = VERSION_2;
        v2.truncate(v2.len() - 12 - V3_TAIL);
        let back = ManifestData::decode(&v2).unwrap();
        assert!(back.legacy_keys);
        assert_eq!((back.db_id, back.cold.len()), (None, 0));
        assert_eq!(back.files, sample_files_unknown_age());
        assert_eq!(back.audit, d.audit);
    }

    #[test]
    fn keyspace_table_roundtrips_and_is_checked() {
        let mut d = sample();
        d.keyspaces.next_id = 9;
        d.keyspaces.named.insert("orders".into(), 3);
        d.keyspaces.named.insert("users".into(), 8);
        d.keyspaces.dropped.extend([1, 2, 4]);
        let enc = d.encode();
        assert_eq!(ManifestData::decode(&enc).unwrap(), d);
        for n in 0..enc.len() {
            assert!(ManifestData::decode(&enc[..n]).is_err(), "cut at {n}");
        }
        let bad = |f: &dyn Fn(&mut KeyspaceTable)| {
            let mut t = d.clone();
            f(&mut t.keyspaces);
            ManifestData::decode(&t.encode()).is_err()
        };
        assert!(bad(&|k| k.next_id = 8), "an id at or above the next id");
        assert!(bad(&|k| k.next_id = 0));
        assert!(bad(&|k| {
            k.named.insert("again".into(), 3);
        }));
        assert!(bad(&|k| {
            k.dropped.insert(8);
        }));
        assert!(bad(&|k| {
            k.named.insert(String::new(), 5);
        }));
        assert!(bad(&|k| {
            k.dropped.insert(0);
        }));
    }
}
