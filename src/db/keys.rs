//! Key management of an open database: data-key and master-key rotation, rekeying, the
//! re-encryption compactor, key destruction, automatic rotation and the audit log.
//!
//! Every key operation that appends audit lines ends with a manifest write, so the manifest's
//! audit anchor (line count and last MAC) follows the log; the manifest also carries the
//! volume sealed under the current data key, so rotation by volume holds across reopens.
//!
//! Locks are taken in the engine's order, stated on [`Inner`](super::Inner).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::version::TableFile;
use super::Inner;
use crate::crypto::audit::{AnchorCell, AuditAnchor, AuditLog};
use crate::crypto::registry::KeyRing;
use crate::crypto::{Kek, MasterKey};
use crate::error::{Error, Result};
use crate::io::{names, Fs};
use crate::manifest::FileMeta;
use crate::sstable::Table;

/// Default bound on background re-encryption: 16 MiB/s.
pub const DEFAULT_REENCRYPT_RATE: u64 = 16 << 20;
/// Default automatic rotation by volume: 1 TiB sealed under one data key (see
/// `docs/security.md`: hygiene, not a nonce limit).
pub const DEFAULT_ROTATE_AFTER_BYTES: u64 = 1 << 40;

struct Admin {
    kek: Kek,
    audit: AuditLog,
}

/// The key state of an encrypted database.
pub(crate) struct KeyAdmin {
    ring: RwLock<Arc<KeyRing>>,
    admin: Mutex<Admin>,
    pub(crate) rotate_every: Option<Duration>,
    pub(crate) rotate_after_bytes: Option<u64>,
    pub(crate) reencrypt_rate: u64,
    /// Bytes sealed under the current data key since it became current (restored at open
    /// from the manifest).
    pub(crate) sealed_bytes: AtomicU64,
    /// The audit log's anchor as appended so far (taken innermost, by manifest writes).
    anchor: AnchorCell,
    /// Set while `DB::reencrypt` runs: background passes stop pacing themselves, so an
    /// explicit re-encryption is not held back behind a throttled one.
    full_speed: std::sync::atomic::AtomicUsize,
}

impl KeyAdmin {
    /// The key state of a database being opened: `anchor` and `rotation` are what its
    /// manifest recorded (the audit anchor, and the data key id with the bytes sealed under
    /// it). The caller writes a manifest before the database is used.
    pub(crate) fn new(
        fs: &dyn Fs,
        dir: &Path,
        ring: KeyRing,
        kek: Kek,
        enc: &crate::options::Encryption,
        anchor: Option<AuditAnchor>,
        rotation: (u32, u64),
    ) -> Result<KeyAdmin> {
        let mut audit = AuditLog::open(fs, dir, ring.audit_keys(), anchor)?;
        audit.event(
            "open",
            &[("key_id", u64::from(ring.current().id)), ("keys", ring.keys().count() as u64)],
        )?;
        // A count for another key belongs to a key no longer current: the current one starts
        // from zero.
        let sealed = if rotation.0 == ring.current().id { rotation.1 } else { 0 };
        Ok(KeyAdmin {
            anchor: audit.anchor(),
            ring: RwLock::new(Arc::new(ring)),
            admin: Mutex::new(Admin { kek, audit }),
            rotate_every: enc.rotate_every,
            rotate_after_bytes: Some(enc.rotate_after_bytes.unwrap_or(DEFAULT_ROTATE_AFTER_BYTES)),
            reencrypt_rate: enc.reencrypt_rate.unwrap_or(DEFAULT_REENCRYPT_RATE),
            sealed_bytes: AtomicU64::new(sealed),
            full_speed: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The current key ring.
    pub(crate) fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().clone()
    }

    pub(crate) fn audit(&self, event: &str, fields: &[(&str, u64)]) {
        if let Err(e) = self.admin.lock().audit.event(event, fields) {
            tracing::warn!(error = %e, event, "sealdb: could not write the audit log");
        }
    }

    /// Ends the acceptance of plaintext files: an encryption of an existing database is done.
    pub(crate) fn forbid_plain(&self) {
        let _admin = self.admin.lock();
        let mut ring = (*self.ring()).clone();
        ring.set_plain_below(0);
        *self.ring.write() = Arc::new(ring);
    }

    /// The audit anchor for a manifest being written.
    pub(crate) fn anchor(&self) -> Option<AuditAnchor> {
        *self.anchor.lock()
    }

    /// The key registry and audit log as they are on disk now (`None` for a log not started),
    /// with the anchor that matches that log and the ring that registry holds: read under the
    /// admin lock, so no line is appended and no registry rewritten meanwhile. For checkpoints
    /// and backups.
    pub(crate) fn key_files(&self, fs: &dyn Fs, dir: &Path) -> Result<KeyFiles> {
        let _admin = self.admin.lock();
        let registry = fs.read_all(&dir.join(names::KEYS))?;
        let audit_log = match fs.read_all(&dir.join(crate::crypto::audit::AUDIT_LOG)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        Ok(KeyFiles { registry, audit_log, anchor: *self.anchor.lock(), ring: self.ring() })
    }

    /// The rotation-by-volume state for a manifest being written: the current key's id and
    /// the bytes sealed under it.
    pub(crate) fn rotation(&self) -> (u32, u64) {
        (self.ring().current().id, self.sealed_bytes.load(Ordering::Relaxed))
    }
}

/// The key files of an encrypted database at one moment (see [`KeyAdmin::key_files`]).
pub(crate) struct KeyFiles {
    /// `KEYS` as on disk.
    pub(crate) registry: Vec<u8>,
    /// `AUDIT.log` as on disk (`None` when not started).
    pub(crate) audit_log: Option<Vec<u8>>,
    /// The anchor matching `audit_log`.
    pub(crate) anchor: Option<AuditAnchor>,
    /// The ring `registry` holds.
    pub(crate) ring: Arc<KeyRing>,
}

/// Writes a manifest so that it anchors the audit lines just appended.
fn anchor_lines(inner: &Inner) -> Result<()> {
    let mut st = inner.state.lock();
    inner.write_manifest(&mut st)
}

/// Checks the audit log's MAC chain, and its length and last MAC against the anchor of the
/// manifest on disk.
pub(crate) fn verify_audit_log(inner: &Inner) -> Result<usize> {
    let ka = admin_of(inner)?;
    let path = inner.dir.join(crate::crypto::audit::AUDIT_LOG);
    // Under `admin` nothing is appended, so the log and the manifest agree with each other.
    let _admin = ka.admin.lock();
    let keys = inner.keys();
    let anchor = crate::manifest::read(inner.fs.as_ref(), &inner.dir, keys.as_deref())?.audit;
    let bytes = match inner.fs.read_all(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::corruption(&path, 1, "audit log missing"));
        }
        Err(e) => return Err(e.into()),
    };
    let n = crate::crypto::audit::verify(&bytes, &ka.ring().audit_keys(), anchor.as_ref())
        .map_err(|b| Error::corruption(&path, b.line, b.reason))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Writes the registry atomically: temp file, fsync, rename, fsync directory. Once it is
/// durable, its keyspace keys are the ones value-log entries are sealed and opened with
/// ([`KeyRing::publish`]).
pub(crate) fn write_registry(fs: &dyn Fs, dir: &Path, ring: &KeyRing, kek: &Kek) -> Result<()> {
    let bytes = ring.encode(kek)?;
    crate::io::write_atomic(fs, dir, names::KEYS, &bytes)?;
    ring.publish();
    Ok(())
}

fn admin_of(inner: &Inner) -> Result<&KeyAdmin> {
    inner
        .keys
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument("the database is not encrypted".into()))
}

/// Makes a new data key current for every file written from now on; returns its id.
pub(crate) fn rotate_data_key(inner: &Inner) -> Result<u32> {
    inner.refuse_read_only()?;
    let ka = admin_of(inner)?;
    let id = {
        let mut admin = ka.admin.lock();
        let mut ring = (*ka.ring()).clone();
        let id = ring.add_key()?;
        write_registry(inner.fs.as_ref(), &inner.dir, &ring, &admin.kek)?;
        // Reset before the swap: a manifest written in between records the old key with a
        // small count, never the new key with the old key's count.
        ka.sealed_bytes.store(0, Ordering::Relaxed);
        *ka.ring.write() = Arc::new(ring);
        if let Err(e) = admin.audit.event("rotate_data_key", &[("key_id", u64::from(id))]) {
            tracing::warn!(error = %e, "sealdb: could not write the audit log");
        }
        id
    };
    // The WAL and the value-log segment move to the new key at once; the manifest too.
    inner.start_new_logs()?;
    let mut st = inner.state.lock();
    inner.write_manifest(&mut st)?;
    Ok(id)
}

/// Re-wraps every data key and the audit key under `new`, atomically on disk. The keys
/// themselves do not change: an old copy of `KEYS` opened with the old master key still
/// yields them (see [`rekey`]).
pub(crate) fn rotate_master_key(inner: &Inner, new: &MasterKey) -> Result<()> {
    inner.refuse_read_only()?;
    let ka = admin_of(inner)?;
    let kek = new.resolve_new()?;
    {
        let mut admin = ka.admin.lock();
        write_registry(inner.fs.as_ref(), &inner.dir, &ka.ring(), &kek)?;
        admin.kek = kek;
        if let Err(e) = admin.audit.event("rotate_master_key", &[]) {
            tracing::warn!(error = %e, "sealdb: could not write the audit log");
        }
    }
    anchor_lines(inner)
}

/// The incident response: a new master key, a new data key and a new audit key, then every
/// live file re-encrypted and every old data key destroyed. Afterwards neither the old master
/// key nor any old copy of `KEYS` opens a file in use.
pub(crate) fn rekey(inner: &Inner, new: &MasterKey) -> Result<()> {
    inner.refuse_read_only()?;
    let ka = admin_of(inner)?;
    let kek = new.resolve_new()?;
    {
        let mut admin = ka.admin.lock();
        let mut ring = (*ka.ring()).clone();
        let id = ring.add_key()?;
        ring.rotate_audit_key()?;
        // One registry rewrite: from here on only `new` opens the database. A crash before the
        // rotation line below is finished at the next open (the log catches up with the
        // registry's newest audit key).
        write_registry(inner.fs.as_ref(), &inner.dir, &ring, &kek)?;
        admin.kek = kek;
        ka.sealed_bytes.store(0, Ordering::Relaxed);
        let audit_keys = ring.audit_keys();
        *ka.ring.write() = Arc::new(ring);
        let logged = admin
            .audit
            .rotate_key(audit_keys)
            .and_then(|()| admin.audit.event("rekey", &[("key_id", u64::from(id))]));
        if let Err(e) = logged {
            tracing::warn!(error = %e, "sealdb: could not write the audit log");
        }
    }
    // The logs move to the new data key at once, the manifest with them; then everything else,
    // and the old data keys go.
    inner.start_new_logs()?;
    anchor_lines(inner)?;
    reencrypt(inner)
}

/// Paces background work to a byte rate (unless a full-speed run is under way).
struct Throttle<'a> {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
    full_speed: &'a std::sync::atomic::AtomicUsize,
}

impl Throttle<'_> {
    fn tick(&mut self, n: u64) {
        self.bytes += n;
        if self.full_speed.load(Ordering::Relaxed) > 0 {
            return;
        }
        if let Some(rate) = self.rate.filter(|&r| r > 0) {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            let elapsed = self.start.elapsed();
            if let Some(wait) = due.checked_sub(elapsed) {
                std::thread::sleep(wait);
            }
        }
    }
}

/// Whether a file sealed under (`key_id`, `alg`) must be re-encrypted.
fn stale(ring: &KeyRing, key_id: u32, alg: u8) -> bool {
    key_id != ring.current().id || alg != crate::seal::alg_id(Some(ring.cipher()))
}

/// The keyspace of a table whose smallest tree key is `smallest`, if `ring` holds a key for
/// it (0 otherwise: sealed under the data key alone).
fn table_keyspace(ring: Option<&KeyRing>, smallest: &[u8]) -> u32 {
    let ks = super::keyspace::split(smallest).map_or(0, |(id, _)| id);
    if ring.is_some_and(|r| r.keyspace_key(ks).is_some()) {
        ks
    } else {
        0
    }
}

/// Whether a table whose smallest tree key is `smallest`, sealed under keyspace key
/// `sealed_in` (0: none), must be re-sealed to come under its keyspace's key (a table written
/// before its keyspace had one, or by an encryption of an existing database).
fn stale_keyspace(ring: &KeyRing, smallest: &[u8], sealed_in: u32) -> bool {
    !ring.is_erased(sealed_in) && table_keyspace(Some(ring), smallest) != sealed_in
}

/// Bytes of live files still sealed under a non-current key or another cipher.
pub(crate) fn bytes_left(inner: &Inner) -> u64 {
    let Some(ka) = inner.keys.as_ref() else { return 0 };
    let ring = ka.ring();
    let st = inner.state.lock();
    let tables: u64 = st
        .version
        .all_files()
        .filter(|(_, f)| {
            stale(&ring, f.meta.key_id, f.table.alg())
                || stale_keyspace(&ring, f.meta.smallest_user(), f.table.keyspace())
        })
        .map(|(_, f)| f.meta.size)
        .sum();
    let segs: u64 = st
        .vlog
        .segments
        .values()
        .filter(|s| stale(&ring, s.key_id(), s.alg()))
        .map(|s| s.size.load(Ordering::Acquire))
        .sum();
    tables + segs
}

/// One pass of the re-encryption compactor, oldest first: logs, then tables (re-sealed block by
/// block), then value-log segments (re-sealed in place, pointers unchanged), then the manifest.
/// Returns the bytes re-sealed.
pub(crate) fn reencrypt_pass(inner: &Inner, rate: Option<u64>) -> Result<u64> {
    let ka = admin_of(inner)?;
    let ring = ka.ring();
    let mut throttle =
        Throttle { rate, start: Instant::now(), bytes: 0, full_speed: &ka.full_speed };
    if inner.logs_stale(&ring) {
        inner.start_new_logs()?;
    }
    // Frozen memtables hold their old WALs until flushed.
    inner.flush_frozen()?;

    loop {
        if inner.state.lock().shutting_down {
            return Err(Error::Closed);
        }
        let _g = inner.compaction_lock.lock();
        let target = {
            let st = inner.state.lock();
            st.version
                .all_files()
                .filter(|(_, f)| {
                    stale(&ring, f.meta.key_id, f.table.alg())
                        || stale_keyspace(&ring, f.meta.smallest_user(), f.table.keyspace())
                })
                .min_by_key(|(_, f)| (f.meta.key_id, f.meta.number))
                .map(|(l, f)| (l, f.clone()))
        };
        let Some((level, old)) = target else { break };
        let number = inner.alloc_file_number(&mut inner.state.lock())?;
        let path = names::table(&inner.dir, number);
        let keys = inner.keys();
        let built = old.table.reseal(
            inner.fs.as_ref(),
            &path,
            number,
            keys.as_deref(),
            table_keyspace(keys.as_deref(), old.meta.smallest_user()),
            inner.tuning.build,
            &mut |n| throttle.tick(n),
        );
        let info = match built {
            Ok(i) => i,
            Err(e) => {
                let _ = inner.fs.remove(&path);
                return Err(e);
            }
        };
        let table =
            Table::open(inner.fs.as_ref(), &path, number, keys.as_deref(), inner.cache.clone())?;
        let meta = FileMeta {
            max_seq: old.meta.max_seq,
            number,
            size: info.size,
            key_id: info.key_id,
            smallest: old.meta.smallest.clone(),
            largest: old.meta.largest.clone(),
            oldest_write: old.meta.oldest_write,
            tombstones: old.meta.tombstones,
        };
        let new = Arc::new(TableFile::new(meta, Arc::new(table), inner.fs.clone(), path));
        if let Some(t) = &inner.tier {
            // A cold table's successor goes cold at once, as a new object.
            if t.object(&names::table(&inner.dir, old.meta.number)).is_some() {
                t.mark_recold(crate::manifest::ColdKind::Table, number);
            }
        }
        let mut st = inner.state.lock();
        let mut v = (*st.version).clone();
        let Some(slot) = v.levels[level].iter_mut().find(|f| f.meta.number == old.meta.number)
        else {
            new.mark_obsolete();
            continue;
        };
        *slot = new.clone();
        let prev = std::mem::replace(&mut st.version, Arc::new(v));
        if let Err(e) = inner.write_manifest(&mut st) {
            // The new manifest may be on disk: keep both files (the orphan goes at open).
            st.version = prev;
            return Err(e);
        }
        old.mark_obsolete();
        inner.install_sv(&st);
        inner.bg_cv.notify_all();
    }

    loop {
        let _g = inner.gc_lock.lock();
        let target = {
            let st = inner.state.lock();
            st.vlog
                .segments
                .values()
                .filter(|s| s.number != st.active_segment && stale(&ring, s.key_id(), s.alg()))
                .min_by_key(|s| (s.key_id(), s.number))
                .cloned()
        };
        let Some(old) = target else { break };
        if old.alg() == crate::seal::alg_id(None) {
            // A segment of an unencrypted past: its entries move to the sealed active segment.
            super::convert::seal_plain_segment(inner, &old, &mut |n| throttle.tick(n))?;
            continue;
        }
        let keys = inner.keys();
        let new = Arc::new(old.reseal(&inner.fs, keys.as_deref(), &mut |n| throttle.tick(n))?);
        let mut st = inner.state.lock();
        // Garbage counted while the copy was made went to the installed segment (discards are
        // applied under this lock), so its counter is the whole count.
        if let Some(installed) = st.vlog.segments.get(&new.number) {
            new.discard.store(installed.discard.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let mut set = (*st.vlog).clone();
        set.segments.insert(new.number, new);
        st.vlog = Arc::new(set);
        inner.install_sv(&st);
    }

    let mut st = inner.state.lock();
    inner.write_manifest(&mut st)?;
    drop(st);
    super::convert::finish_if_done(inner)?;
    Ok(throttle.bytes)
}

/// Destroys every data key that is not current and seals no live file: removed from the
/// registry (rewritten atomically) and zeroized. Returns the destroyed ids.
pub(crate) fn destroy_retired(inner: &Inner) -> Result<Vec<u32>> {
    let ka = admin_of(inner)?;
    // No file can be in the making under an old key while these are held (in the lock order
    // stated on `Inner`).
    let _gc = inner.gc_lock.lock();
    let ws = inner.logs()?;
    let _c = inner.compaction_lock.lock();
    let _f = inner.flush_lock.lock();
    let mut live = std::collections::HashSet::new();
    live.insert(ws.writer.key_id());
    live.insert(ws.vlog.segment.key_id());
    {
        let st = inner.state.lock();
        if !st.imms.is_empty() {
            return Ok(Vec::new());
        }
        live.extend(st.version.all_files().map(|(_, f)| f.meta.key_id));
        live.extend(st.vlog.segments.values().map(|s| s.key_id()));
    }
    let mut admin = ka.admin.lock();
    let mut ring = (*ka.ring()).clone();
    let current = ring.current().id;
    let gone: Vec<u32> =
        ring.keys().map(|k| k.id).filter(|id| *id != current && !live.contains(id)).collect();
    if gone.is_empty() {
        return Ok(gone);
    }
    for id in &gone {
        ring.remove(*id);
    }
    write_registry(inner.fs.as_ref(), &inner.dir, &ring, &admin.kek)?;
    // The old ring (and with it the destroyed keys) is zeroized when its last holder drops it.
    *ka.ring.write() = Arc::new(ring);
    for id in &gone {
        if let Err(e) = admin.audit.event("key_destroyed", &[("key_id", u64::from(*id))]) {
            tracing::warn!(error = %e, "sealdb: could not write the audit log");
        }
    }
    drop(admin);
    anchor_lines(inner)?;
    drop(ws);
    Ok(gone)
}

/// Runs the re-encryption compactor to completion, unthrottled, then destroys retired keys.
pub(crate) fn reencrypt(inner: &Inner) -> Result<()> {
    inner.refuse_read_only()?;
    let ka = admin_of(inner)?;
    let left = bytes_left(inner);
    ka.audit("reencrypt_start", &[("bytes_left", left)]);
    anchor_lines(inner)?;
    ka.full_speed.fetch_add(1, Ordering::Relaxed);
    let r = reencrypt_all(inner, ka);
    ka.full_speed.fetch_sub(1, Ordering::Relaxed);
    r
}

fn reencrypt_all(inner: &Inner, ka: &KeyAdmin) -> Result<()> {
    let mut total = 0;
    // Files written concurrently are sealed under the current key, so this converges; the
    // bound only guards against a key rotated again meanwhile, every pass.
    for _ in 0..64 {
        total += reencrypt_pass(inner, None)?;
        inner.flush_frozen()?;
        destroy_retired(inner)?;
        if ka.ring().keys().count() == 1 && bytes_left(inner) == 0 {
            ka.audit("reencrypt_finish", &[("bytes", total)]);
            return anchor_lines(inner);
        }
    }
    Err(Error::InvalidArgument("re-encryption did not converge: keys are rotating too fast".into()))
}

/// Background key maintenance: automatic rotation, then throttled re-encryption while any
/// file is stale, then destruction of retired keys. Called about once a second.
pub(crate) fn maintain(inner: &Inner) -> Result<()> {
    let Some(ka) = inner.keys.as_ref() else { return Ok(()) };
    let ring = ka.ring();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let age = Duration::from_secs(now.saturating_sub(ring.current().created_at));
    let by_age = ka.rotate_every.is_some_and(|every| age >= every);
    let by_volume =
        ka.rotate_after_bytes.is_some_and(|b| ka.sealed_bytes.load(Ordering::Relaxed) >= b);
    if by_age || by_volume {
        rotate_data_key(inner)?;
    }
    let ring = ka.ring();
    if bytes_left(inner) > 0 || inner.logs_stale(&ring) {
        reencrypt_pass(inner, Some(ka.reencrypt_rate))?;
    }
    if ring.keys().count() > 1 && bytes_left(inner) == 0 {
        destroy_retired(inner)?;
    }
    Ok(())
}

/// Gives keyspace `id` a key of its own (if the database is encrypted and the keyspace has
/// none), durably in the registry, before anything of the keyspace is written.
pub(crate) fn ensure_keyspace_key(inner: &Inner, id: u32) -> Result<()> {
    let Some(ka) = inner.keys.as_ref() else { return Ok(()) };
    let mut admin = ka.admin.lock();
    let mut ring = (*ka.ring()).clone();
    if !ring.add_keyspace_key(id)? {
        return Ok(());
    }
    write_registry(inner.fs.as_ref(), &inner.dir, &ring, &admin.kek)?;
    *ka.ring.write() = Arc::new(ring);
    if let Err(e) = admin.audit.event("keyspace_key_created", &[("keyspace", u64::from(id))]) {
        tracing::warn!(error = %e, "sealdb: could not write the audit log");
    }
    Ok(())
}

/// Destroys the key of dropped keyspace `id` (crypto-erasure): the registry no longer holds
/// it once this returns, so no file or value-log entry sealed under it can be read again,
/// here or in any copy of the database taken from now on. `fields` describe what the drop
/// removed, for the audit line. Returns whether there was a key to destroy.
pub(crate) fn erase_keyspace_key(inner: &Inner, id: u32, fields: &[(&str, u64)]) -> Result<bool> {
    let Some(ka) = inner.keys.as_ref() else { return Ok(false) };
    {
        let mut admin = ka.admin.lock();
        let mut ring = (*ka.ring()).clone();
        if ring.keyspace_key(id).is_none() && ring.is_erased(id) {
            return Ok(false);
        }
        ring.erase_keyspace_key(id);
        write_registry(inner.fs.as_ref(), &inner.dir, &ring, &admin.kek)?;
        // The old ring (and with it the destroyed key) is zeroized when its last holder drops
        // it; the published copy and the ciphers derived from it went in `write_registry`.
        *ka.ring.write() = Arc::new(ring);
        let mut line = vec![("keyspace", u64::from(id))];
        line.extend_from_slice(fields);
        if let Err(e) = admin.audit.event("keyspace_erased", &line) {
            tracing::warn!(error = %e, "sealdb: could not write the audit log");
        }
    }
    anchor_lines(inner)?;
    Ok(true)
}
