//! Open and recovery: lock the directory, load the keys, read the manifest, scan the
//! directory, open tables and segments, replay the WALs, start.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, RwLock};

use super::version::{SuperVersion, TableFile, Version};
use super::write::{Queue, WalState};
use super::{jobs, keys, Inner, State, Tuning};
use crate::crypto::registry::KeyRing;
use crate::crypto::Kek;
use crate::error::{Error, Result};
use crate::io::{names, DirLock, Fs};
use crate::key::ValueKind;
use crate::manifest::{self, ManifestData};
use crate::memtable::MemTable;
use crate::options::Options;
use crate::sstable::BlockCache;
use crate::vlog::{Pointer, Recorded, VlogSet, VlogWriter};
use crate::wal::{self, WalWriter};

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound)
}

/// What an open without encryption demands of the directory: no key registry, and no
/// manifest that claims encryption (an encrypted database always has its registry; a manifest
/// claiming encryption without one was damaged, or the registry was deleted).
pub(super) fn refuse_encrypted(
    dir: &Path,
    has_keys: bool,
    manifest_enc: Option<bool>,
) -> Result<()> {
    if has_keys {
        return Err(Error::EncryptionRequired(dir.to_path_buf()));
    }
    if manifest_enc == Some(true) {
        return Err(Error::corruption(
            dir.join(names::MANIFEST),
            10,
            "manifest claims encryption but there is no key registry",
        ));
    }
    Ok(())
}

/// Loads the key registry, or creates one for a new encrypted database. Writes nothing unless
/// the master key opens the registry (or the database is new).
fn load_keys(options: &Options, fs: &dyn Fs, dir: &Path) -> Result<Option<(KeyRing, Kek)>> {
    let keys_path = dir.join(names::KEYS);
    let has_keys = fs.exists(&keys_path);
    let manifest_enc = manifest::peek_encrypted(fs, dir);
    let Some(enc) = &options.encryption else {
        refuse_encrypted(dir, has_keys, manifest_enc)?;
        return Ok(None);
    };
    if !has_keys {
        match manifest_enc {
            Some(false) if enc.encrypt_existing => {
                let ring = KeyRing::generate(enc.cipher)?;
                let kek = enc.master.resolve_new()?;
                return super::convert::begin(fs, dir, ring, kek, false).map(Some);
            }
            Some(false) => return Err(Error::NotEncrypted(dir.to_path_buf())),
            Some(true) => return Err(Error::corruption(&keys_path, 0, "key registry missing")),
            None if fs.exists(&dir.join(names::MANIFEST)) => {
                return Err(Error::corruption(
                    dir.join(names::MANIFEST),
                    0,
                    "manifest header unreadable",
                ));
            }
            None => {}
        }
        let ring = KeyRing::generate(enc.cipher)?;
        let kek = enc.master.resolve_new()?;
        keys::write_registry(fs, dir, &ring, &kek)?;
        return Ok(Some((ring, kek)));
    }
    let bytes = fs.read_all(&keys_path)?;
    let (ring, kek) = KeyRing::decode(&bytes, &keys_path, &enc.master).inspect_err(|e| {
        if matches!(e, Error::WrongMasterKey) {
            tracing::warn!(dir = %dir.display(), "sealdb: open refused, wrong master key");
        }
    })?;
    let (mut ring, kek) = super::convert::resume(fs, dir, ring, kek, manifest_enc, enc)?;
    if ring.cipher() != enc.cipher {
        ring.set_cipher(enc.cipher);
        keys::write_registry(fs, dir, &ring, &kek)?;
    }
    Ok(Some((ring, kek)))
}

/// Opens the database: each step below is one function of this file, in this order.
pub(super) fn open_inner(options: &Options) -> Result<Inner> {
    if options.read_only {
        return super::read_only::open(options);
    }
    let fs = options.file_system();
    let dir = options.path.clone();
    check_open_flags(options, fs.as_ref(), &dir)?;
    let lock = lock_dir(fs.as_ref(), &dir)?;
    let loaded = load_keys(options, fs.as_ref(), &dir)?;
    let ring0 = loaded.as_ref().map(|(r, _)| Arc::new(r.clone()));
    let keyref = ring0.as_deref();
    let (mut data, has_manifest) = read_manifest(fs.as_ref(), &dir, keyref)?;
    let (tiered, tier) = open_tier(options, &fs, &dir, &mut data)?;
    let scan = scan_dir(fs.as_ref(), &dir, &mut data, has_manifest, keyref, options.compression)?;
    let cache = Arc::new(BlockCache::new(options.cache_size));
    let version = open_tables(&tiered, &dir, &data, keyref, &cache)?;
    let (vlog, was_active) = open_segments(&tiered, &dir, &data, keyref, &cache)?;
    let (recovered, last_seq) = replay_wals(
        fs.as_ref(),
        &dir,
        (&scan.wals, options.memtable_size),
        None,
        &data,
        (&vlog, was_active),
        keyref,
    )?;
    let inner =
        start(options, (tiered, tier), lock, loaded, &mut data, version, vlog, cache, last_seq)?;
    // Every named keyspace has its own key before anything of it is written (keyspaces made
    // before keyspaces had keys get one now; their older files move onto it through the
    // re-encryption compactor).
    let named: Vec<u32> = inner.state.lock().keyspaces.table.named.values().copied().collect();
    for id in named {
        super::keys::ensure_keyspace_key(&inner, id)?;
    }
    install_recovered(&inner, &recovered)?;
    // A drop a crash interrupted before its keyspace's key was destroyed is finished now.
    if let Some(ring) = inner.keys() {
        let dropped: Vec<u32> =
            inner.state.lock().keyspaces.table.dropped.iter().copied().collect();
        for id in dropped.into_iter().filter(|id| ring.keyspace_key(*id).is_some()) {
            inner.finish_drop(id)?;
        }
    }
    remove_obsolete(fs.as_ref(), &dir, scan);
    super::convert::opened(&inner)?;
    Ok(inner)
}

/// The engine's file system and the cold tier, if any.
pub(super) type Tiered = (Arc<dyn Fs>, Option<Arc<crate::cold::Tier>>);

/// Gives the database its id (a new one, or one older than the id, gets a random one now)
/// and sets up the cold tier: every cold file the manifest names is checked against the file
/// record it belongs to and mapped to its object. Returns the file system the engine uses
/// (the tiered one when there is cold storage) and the tier. A database with cold files
/// opened without cold storage is [`Error::ColdStorageRequired`].
fn open_tier(
    options: &Options,
    fs: &Arc<dyn Fs>,
    dir: &Path,
    data: &mut ManifestData,
) -> Result<Tiered> {
    let manifest_path = dir.join(names::MANIFEST);
    let id = if let Some(id) = data.db_id {
        id
    } else {
        let mut id = [0u8; 16];
        crate::crypto::random_bytes(&mut id)?;
        data.db_id = Some(id);
        id
    };
    let Some(cold) = &options.cold_storage else {
        if !data.cold.is_empty() {
            return Err(Error::ColdStorageRequired {
                path: dir.to_path_buf(),
                files: data.cold.len() as u64,
            });
        }
        return Ok((fs.clone(), None));
    };
    let tier = Arc::new(crate::cold::Tier::new(cold, id, dir, fs.clone())?);
    tiered_fs(fs, dir, &manifest_path, data, tier)
}

/// Maps every cold file `data` names to its object in `tier` (each checked against the file
/// record it belongs to) and returns the tiered file system over `fs` with the tier.
pub(super) fn tiered_fs(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    manifest_path: &Path,
    data: &manifest::ManifestData,
    tier: Arc<crate::cold::Tier>,
) -> Result<Tiered> {
    for c in &data.cold {
        let (path, ok) = match c.kind {
            manifest::ColdKind::Table => (
                names::table(dir, c.number),
                data.files.iter().any(|(_, f)| f.number == c.number && f.size == c.size),
            ),
            manifest::ColdKind::Segment => (
                names::vlog(dir, c.number),
                data.segments
                    .iter()
                    .any(|s| s.number == c.number && !s.active && s.len == Some(c.size)),
            ),
        };
        if !ok {
            return Err(Error::corruption(
                manifest_path,
                0,
                "manifest names a cold file that is not a live closed file of its size",
            ));
        }
        tier.set_cold(path, c.clone());
    }
    let tiered: Arc<dyn Fs> =
        Arc::new(crate::cold::TieredFs { base: fs.clone(), tier: tier.clone() });
    Ok((tiered, Some(tier)))
}

/// Applies `create_if_missing` and `error_if_exists` before anything is written: a database
/// exists where its manifest does.
fn check_open_flags(options: &Options, fs: &dyn Fs, dir: &Path) -> Result<()> {
    let exists = fs.exists(&dir.join(names::MANIFEST));
    if exists && options.error_if_exists {
        return Err(Error::AlreadyExists(dir.to_path_buf()));
    }
    if !exists && !options.create_if_missing {
        return Err(Error::NotFound(dir.to_path_buf()));
    }
    Ok(())
}

/// Creates the directory if missing and takes its lock file: one process at a time.
fn lock_dir(fs: &dyn Fs, dir: &Path) -> Result<Box<dyn DirLock>> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} exists and is not a directory",
            dir.display()
        )));
    }
    fs.create_dir_all(dir)?;
    fs.lock(&dir.join(names::LOCK)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(dir.to_path_buf())
        } else {
            Error::Io(e)
        }
    })
}

/// Reads the manifest, or starts an empty one for a new database; says whether one was read.
fn read_manifest(
    fs: &dyn Fs,
    dir: &Path,
    keyref: Option<&KeyRing>,
) -> Result<(ManifestData, bool)> {
    let has_manifest = fs.exists(&dir.join(names::MANIFEST));
    let data = if has_manifest {
        let data = manifest::read(fs, dir, keyref)?;
        if data.legacy_keys {
            return Err(Error::UnsupportedFormat(dir.to_path_buf()));
        }
        data
    } else {
        ManifestData { next_file_number: 1, ..ManifestData::default() }
    };
    Ok((data, has_manifest))
}

/// What the directory scan found besides the files the manifest names.
struct Scan {
    /// WALs to replay, oldest first.
    wals: Vec<u64>,
    /// Stale temp files, and tables, segments and WALs no manifest names: removed once open.
    orphans: Vec<PathBuf>,
}

/// Scans the directory: stale temp files, orphan tables, WALs to replay. Moves
/// `next_file_number` past every file found; a new database's manifest is written here,
/// before any other file.
fn scan_dir(
    fs: &dyn Fs,
    dir: &Path,
    data: &mut ManifestData,
    has_manifest: bool,
    keyref: Option<&KeyRing>,
    compression: bool,
) -> Result<Scan> {
    let mut max_number = 0;
    let mut wals = Vec::new();
    // A local copy of a cold file is an orphan (a crash came between the manifest naming the
    // object and the local copy's removal, or during a recall).
    let cold = |kind: manifest::ColdKind, n: u64| {
        data.cold.iter().any(|c| c.kind == kind && c.number == n)
    };
    let live: std::collections::HashSet<u64> = data
        .files
        .iter()
        .map(|(_, f)| f.number)
        .filter(|&n| !cold(manifest::ColdKind::Table, n))
        .collect();
    let mut orphans = Vec::new();
    for name in fs.list(dir)? {
        match names::parse(&name) {
            Some(names::FileName::Temp) => orphans.push(dir.join(&name)),
            Some(names::FileName::Wal(n)) => {
                max_number = max_number.max(n);
                if n >= data.log_number {
                    wals.push(n);
                } else {
                    orphans.push(dir.join(&name));
                }
            }
            Some(names::FileName::Table(n)) => {
                max_number = max_number.max(n);
                if !live.contains(&n) {
                    orphans.push(dir.join(&name));
                }
            }
            Some(names::FileName::ValueLog(n)) => {
                max_number = max_number.max(n);
                if !data.segments.iter().any(|s| s.number == n)
                    || cold(manifest::ColdKind::Segment, n)
                {
                    orphans.push(dir.join(&name));
                }
            }
            None => {}
        }
    }
    if !has_manifest && (!wals.is_empty() || !data.files.is_empty() || max_number > 0) {
        return Err(Error::corruption(
            dir.join(names::MANIFEST),
            0,
            "manifest missing but data files exist",
        ));
    }
    wals.sort_unstable();
    data.next_file_number = data.next_file_number.max(max_number + 1);
    if !has_manifest {
        // A new database: record it before creating any other file, so that a crash from
        // here on leaves a directory that opens.
        let number = data.next_file_number;
        data.next_file_number += 1;
        manifest::write(fs, dir, number, data, keyref, compression)?;
    }
    Ok(Scan { wals, orphans })
}

/// Opens every table the manifest names.
pub(super) fn open_tables(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    data: &ManifestData,
    keyref: Option<&KeyRing>,
    cache: &Arc<BlockCache>,
) -> Result<Version> {
    let mut version = Version::default();
    for (level, meta) in &data.files {
        let path = names::table(dir, meta.number);
        let table = crate::sstable::Table::open_sized(
            fs.as_ref(),
            &path,
            meta.number,
            keyref,
            cache.clone(),
            Some(meta.size),
        )
        .map_err(|e| {
            if is_not_found(&e) {
                Error::corruption(&path, 0, "table named by the manifest is missing")
            } else {
                e
            }
        })?;
        if table.key_id() != meta.key_id {
            return Err(Error::corruption(&path, 16, "table key id differs from the manifest"));
        }
        let tf = TableFile::new(meta.clone(), Arc::new(table), fs.clone(), path);
        version.levels[usize::from(*level)].push(Arc::new(tf));
    }
    version.normalize();
    Ok(version)
}

/// Opens the value-log segments the manifest names, each checked against its recorded
/// length; returns them with the number of the one that was active. That one may end in a
/// torn tail past its durable mark; every other one is whole. From here on all are closed.
pub(super) fn open_segments(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    data: &ManifestData,
    keyref: Option<&KeyRing>,
    cache: &Arc<BlockCache>,
) -> Result<(VlogSet, Option<u64>)> {
    let mut vlog = VlogSet { cache: Some(cache.clone()), ..VlogSet::default() };
    let mut was_active = None;
    for meta in &data.segments {
        let n = meta.number;
        let path = names::vlog(dir, n);
        let recorded = Recorded::of(meta, keyref.is_some());
        let seg = crate::vlog::Segment::open(fs, &path, n, keyref, recorded).map_err(|e| {
            if is_not_found(&e) {
                Error::corruption(&path, 0, "value-log segment named by the manifest is missing")
            } else {
                e
            }
        })?;
        seg.close();
        seg.discard.store(meta.discard, Ordering::Relaxed);
        if meta.active || meta.len.is_none() {
            was_active = Some(n);
        }
        vlog.segments.insert(n, Arc::new(seg));
    }
    Ok((vlog, was_active))
}

/// Replays the WALs into one memtable; returns it with the last sequence number seen.
///
/// Every pointer op of a record is checked against its segment's length. Only the segment
/// that was active (`was_active`) can have lost values in a crash before `sync()`, and only
/// records of the WAL being written then point at them: such a record ends the log, and no
/// later WAL may hold a record (the value log is synced before a WAL ends, and a newer WAL is
/// written to only after that). A pointer past the end of any other segment, or followed by
/// records in a later WAL, is corruption. A pointer into a segment that is no longer live
/// points at a value GC collected: GC rewrote it under a newer sequence later in the log if
/// it was still the key's newest value, so the op is skipped. (Segments enter the manifest
/// before any entry is written to them.)
///
/// A read-only open passes the WALs' bytes, read before the segments were opened
/// (`preloaded`): a pointer into a segment newer than every one the manifest names then means
/// a writer started it after the manifest was read, and is [`Error::Corruption`] that the
/// read-only open answers by reading the manifest again.
pub(super) fn replay_wals(
    fs: &dyn Fs,
    dir: &Path,
    (wals, mem_size): (&[u64], usize),
    preloaded: Option<&std::collections::HashMap<u64, Vec<u8>>>,
    data: &ManifestData,
    (vlog, was_active): (&VlogSet, Option<u64>),
    keyref: Option<&KeyRing>,
) -> Result<(Arc<MemTable>, u64)> {
    let wal_number = wals.last().copied().unwrap_or(data.log_number);
    let recovered = Arc::new(MemTable::new(wal_number, mem_size));
    let newest_segment = data.segments.iter().map(|s| s.number).max().unwrap_or(0);
    let mut last_seq = data.last_sequence;
    let mut replayed = Vec::with_capacity(wals.len());
    let mut ended: Option<u64> = None;
    for &n in wals {
        let path = names::wal(dir, n);
        let read;
        let bytes = if let Some(m) = preloaded {
            m.get(&n).map_or(&[][..], Vec::as_slice)
        } else {
            read = fs.read_all(&path)?;
            &read[..]
        };
        let r = wal::replay_bytes(bytes, &path, n, keyref, |payload| {
            if let Some(segment) = ended {
                return Err(Error::corruption(
                    names::vlog(dir, segment),
                    0,
                    "values a WAL record points to are missing from this value-log segment, \
                     yet a later WAL holds records",
                ));
            }
            let mut lost = None;
            let mut newer = None;
            let mut malformed = false;
            wal::decode_ops(payload, |op| {
                if op.kind != ValueKind::Pointer {
                    return;
                }
                let Some(p) = Pointer::decode(op.value) else {
                    malformed = true;
                    return;
                };
                let Some(s) = vlog.segments.get(&p.segment) else {
                    if preloaded.is_some() && p.segment > newest_segment {
                        newer = Some(p.segment);
                    }
                    return;
                };
                let whole = p
                    .offset
                    .checked_add(u64::from(p.len))
                    .is_some_and(|e| e <= s.size.load(Ordering::Relaxed));
                if !whole && lost.is_none() {
                    lost = Some(p.segment);
                }
            })
            .map_err(|why| Error::corruption(&path, 0, why))?;
            if let Some(segment) = newer {
                return Err(Error::corruption(
                    names::vlog(dir, segment),
                    0,
                    "a WAL record points into a value-log segment the manifest does not name yet",
                ));
            }
            if malformed {
                return Err(Error::corruption(
                    &path,
                    0,
                    "malformed value-log pointer in WAL record",
                ));
            }
            if let Some(segment) = lost {
                if Some(segment) != was_active {
                    return Err(Error::corruption(
                        names::vlog(dir, segment),
                        0,
                        "a WAL record points past the end of this value-log segment",
                    ));
                }
                tracing::warn!(file = %path.display(), "WAL ends at a record whose values were lost before sync");
                ended = Some(segment);
                return Ok(false);
            }
            wal::decode_ops(payload, |op| {
                last_seq = last_seq.max(op.seq);
                let collected = op.kind == ValueKind::Pointer
                    && Pointer::decode(op.value)
                        .is_some_and(|p| !vlog.segments.contains_key(&p.segment));
                if !collected {
                    recovered.insert(op.key, op.seq, op.kind, op.value);
                }
            })
            .map_err(|why| Error::corruption(&path, 0, why))?;
            Ok(true)
        })?;
        replayed.push((n, r));
    }
    wal::check_chain(dir, data.log_number, &replayed)?;
    Ok((recovered, last_seq))
}

/// Starts a new WAL and value-log segment and assembles the engine around the recovered
/// tables and segments.
#[expect(clippy::too_many_arguments, reason = "one call site: the steps of `open_inner`")]
fn start(
    options: &Options,
    (fs, tier): Tiered,
    lock: Box<dyn DirLock>,
    loaded: Option<(KeyRing, Kek)>,
    data: &mut ManifestData,
    version: Version,
    mut vlog: VlogSet,
    cache: Arc<BlockCache>,
    last_seq: u64,
) -> Result<Inner> {
    let fs = &fs;
    let dir = &options.path;
    let keyref = loaded.as_ref().map(|(r, _)| r);
    let tuning = Tuning::from_options(options);
    // Numbers from here on lie beyond what the manifest on disk reserved (a crashed session
    // may have used any below it): reserve a block before creating a file.
    let reserved = data.next_file_number + manifest::FILE_NUMBER_RESERVE;
    let number = data.next_file_number;
    let reservation = ManifestData { next_file_number: reserved, ..data.clone() };
    manifest::write(fs.as_ref(), dir, number, &reservation, keyref, tuning.build.compression)?;
    data.next_file_number += 1;
    let wal_number = data.next_file_number;
    data.next_file_number += 1;
    let writer = WalWriter::create(
        fs.as_ref(),
        &names::wal(dir, wal_number),
        wal_number,
        keyref,
        options.compression,
    )?;
    let segment_number = data.next_file_number;
    data.next_file_number += 1;
    let vlog_writer =
        VlogWriter::create(fs, &names::vlog(dir, segment_number), segment_number, keyref)?;
    vlog.segments.insert(segment_number, vlog_writer.segment.clone());
    let vlog = Arc::new(vlog);
    let mem = Arc::new(MemTable::new(wal_number, options.memtable_size));
    let state = State {
        mem: mem.clone(),
        imms: VecDeque::new(),
        version: Arc::new(version),
        next_file_number: data.next_file_number,
        bg_error: None,
        shutting_down: false,
        compact_pointer: vec![Vec::new(); manifest::NUM_LEVELS],
        vlog: vlog.clone(),
        active_segment: segment_number,
        reserved_file_numbers: reserved,
        keyspaces: super::keyspace::Registry::new(data.keyspaces.clone()),
    };
    let sv =
        SuperVersion { mem: mem.clone(), imms: Vec::new(), version: state.version.clone(), vlog };
    let keys = match (loaded, &options.encryption) {
        (Some((ring, kek)), Some(enc)) => {
            Some(keys::KeyAdmin::new(fs.as_ref(), dir, ring, kek, enc, data.audit, data.rotation)?)
        }
        _ => None,
    };
    let ks_tuning = super::keyspace_options::KeyspaceTuning::new(options, &tuning, &data.keyspaces);
    let inner = Inner {
        dir: dir.clone(),
        fs: fs.clone(),
        tuning,
        ks_tuning,
        keys,
        cache,
        state: Mutex::new(state),
        bg_cv: Condvar::new(),
        sv: RwLock::new(Arc::new(sv)),
        last_seq: AtomicU64::new(last_seq),
        queue: Mutex::new(Queue::default()),
        wal: Mutex::new(Some(WalState {
            writer,
            vlog: vlog_writer,
            mem,
            ops: Vec::new(),
            record: Vec::new(),
        })),
        flush_lock: Mutex::new(()),
        compaction_lock: Mutex::new(()),
        gc_lock: Mutex::new(()),
        counters: super::stats::Counters::default(),
        read_only: None,
        txns: super::txn::Tracker::default(),
        db_id: data.db_id.unwrap_or_default(),
        tier,
        erase: super::erase::Tracker::default(),
        _lock: lock,
    };
    Ok(inner)
}

/// Writes the recovered memtable to an L0 table; then the manifest records the new WAL and
/// the old WALs can go.
fn install_recovered(inner: &Inner, recovered: &Arc<MemTable>) -> Result<()> {
    {
        let mut st = inner.state.lock();
        if !recovered.is_empty() {
            let mut discards = jobs::Discards::new();
            let dropped = st.keyspaces.table.dropped.clone();
            let files = jobs::build_l0(
                inner,
                recovered,
                || inner.alloc_file_number(&mut st),
                &dropped,
                &mut discards,
                // Replayed writes carry no time: unknown, taken as old by erasure.
                0,
            )?;
            jobs::apply_discards(&st.vlog, &discards);
            let mut v = (*st.version).clone();
            v.levels[0].extend(files);
            v.normalize();
            st.version = Arc::new(v);
        }
        inner.write_manifest(&mut st)?;
        inner.install_sv(&st);
    }
    Ok(())
}

/// Removes the replayed WALs (now in an L0 table named by the manifest) and the orphans.
fn remove_obsolete(fs: &dyn Fs, dir: &Path, scan: Scan) {
    for n in scan.wals {
        let _ = fs.remove(&names::wal(dir, n));
    }
    for p in scan.orphans {
        let _ = fs.remove(&p);
    }
}
impl Tuning {
    /// The engine's copy of the tuning options.
    pub(super) fn from_options(options: &Options) -> Tuning {
        Tuning {
            memtable_size: options.memtable_size,
            max_immutable_memtables: options.max_immutable_memtables,
            build: crate::sstable::BuildOptions {
                block_size: options.block_size,
                restart_interval: options.block_restart_interval,
                compression: options.compression,
                bloom_bits_per_key: options.bloom_bits_per_key,
            },
            target_file_size: options.target_file_size,
            l0_compaction_trigger: options.l0_compaction_trigger,
            l0_slowdown_trigger: options.l0_slowdown_trigger,
            l0_stop_trigger: options.l0_stop_trigger,
            level_base_size: options.level_base_size,
            level_size_multiplier: options.level_size_multiplier,
            sync_writes: options.sync_writes,
            background_work: options.background_work,
            value_threshold: options.value_threshold,
            vlog_segment_size: options.vlog_segment_size,
            vlog_gc_ratio: options.vlog_gc_ratio,
            erase_within: options.erase_within,
            erase_rate: options.erase_rate,
        }
    }
}
