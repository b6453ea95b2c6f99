//! The reencrypt workloads: key rotation and the re-encryption compactor, on the encrypted
//! sealdb engines only.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::config::{Config, VALUE_4K};
use crate::engines::sealdb::SealEngine;
use crate::engines::{Engine, EngineKind};
use crate::report::{report_row, Row};
use crate::run::{
    finish_row, panic_message, progress_bar, run_fill, run_parallel, Client, RunStats,
};
use crate::sys::{dir_size, rss_mark};
use crate::workloads::{make_key, ValueSource, Workload};
use crate::Res;

/// The figures of one reencrypt run beyond its rows: the read-throughput ratio during
/// background re-encryption and the unthrottled `DB::reencrypt` rate.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReencryptResult {
    pub(crate) engine: String,
    pub(crate) workload: String,
    pub(crate) keys: u64,
    pub(crate) value_size: usize,
    /// Seconds of `DB::compact` after the fill's flush (so the idle phase has no background
    /// compaction).
    pub(crate) compact_seconds: f64,
    /// Allocated directory size before the first rotation.
    pub(crate) db_bytes: u64,
    /// Sum of `live_bytes` over the data keys before the first rotation.
    pub(crate) live_bytes: u64,
    pub(crate) idle_ops_per_sec: f64,
    pub(crate) bg_ops_per_sec: f64,
    pub(crate) bg_reads: u64,
    pub(crate) bg_seconds: f64,
    /// `bg_ops_per_sec / idle_ops_per_sec`.
    pub(crate) ratio: f64,
    /// `reencrypt_bytes_left` just after the rotation, and when the read phase ended.
    pub(crate) bytes_left_start: u64,
    pub(crate) bytes_left_end: u64,
    /// Seconds from the rotation's return until `reencrypt_bytes_left` was seen at 0 (polled
    /// every 10 ms); `None` when the read phase hit its cap first.
    pub(crate) bg_reencrypt_seconds: Option<f64>,
    /// Second rotation, then `DB::reencrypt`: live bytes (sum over keys) and stale bytes
    /// (`reencrypt_bytes_left`) before the call, its wall time, live MiB/s.
    pub(crate) full_live_bytes: u64,
    pub(crate) full_stale_bytes: u64,
    pub(crate) full_seconds: f64,
    pub(crate) full_mb_per_sec: f64,
    /// Data keys in the registry and bytes left after `DB::reencrypt`.
    pub(crate) keys_after: usize,
    pub(crate) bytes_left_after: u64,
    /// Step (d): reopened with `background_work(false)`, rotated, `DB::reencrypt` timed.
    pub(crate) nobg_live_bytes: u64,
    pub(crate) nobg_seconds: f64,
    pub(crate) nobg_mb_per_sec: f64,
}

/// The read-throughput ratio that the background re-encryption compactor should leave.
pub(crate) const REENCRYPT_TARGET_RATIO: f64 = 0.80;

impl ReencryptResult {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "engine": self.engine,
            "workload": self.workload,
            "keys": self.keys,
            "value_size": self.value_size,
            "compact_seconds": self.compact_seconds,
            "db_bytes": self.db_bytes,
            "live_bytes": self.live_bytes,
            "readrandom_idle_ops_per_sec": self.idle_ops_per_sec,
            "readrandom_during_reencrypt_ops_per_sec": self.bg_ops_per_sec,
            "readrandom_during_reencrypt_reads": self.bg_reads,
            "readrandom_during_reencrypt_seconds": self.bg_seconds,
            "ratio_to_idle": self.ratio,
            "target_ratio": REENCRYPT_TARGET_RATIO,
            "target_met": self.ratio >= REENCRYPT_TARGET_RATIO,
            "reencrypt_bytes_left_at_start": self.bytes_left_start,
            "reencrypt_bytes_left_at_end": self.bytes_left_end,
            "background_reencrypt_seconds": self.bg_reencrypt_seconds,
            "full_reencrypt": {
                "live_bytes_before": self.full_live_bytes,
                "stale_bytes_before": self.full_stale_bytes,
                "seconds": self.full_seconds,
                "live_mb_per_sec": self.full_mb_per_sec,
                "data_keys_after": self.keys_after,
                "bytes_left_after": self.bytes_left_after,
            },
            "full_reencrypt_without_background_work": {
                "live_bytes_before": self.nobg_live_bytes,
                "seconds": self.nobg_seconds,
                "live_mb_per_sec": self.nobg_mb_per_sec,
            },
        })
    }
}

/// `count` uniformly random gets over keys `0..space`, on `cfg.threads` threads.
pub(crate) fn read_fixed(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    label: &str,
    values: &ValueSource,
    salt: u64,
    space: u64,
    count: u64,
) -> Res<RunStats> {
    let pb = progress_bar(count, kind, label);
    let s = run_parallel(
        cfg.threads,
        count,
        &pb,
        |t| Client::new(cfg, values, salt, t),
        |c, _| {
            let k = c.rng.gen_range(0..space);
            make_key(&mut c.key, cfg.key_size, k, false);
            let found = engine.get(&c.key, &mut c.buf)?;
            Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
        },
    )?;
    pb.finish_and_clear();
    Ok(s)
}

/// What one reader thread of [`read_while_reencrypting`] did: ops, user bytes, keys found,
/// latencies (ns).
pub(crate) type ReaderTotals = (u64, u64, u64, Vec<u32>);

/// Uniformly random gets over keys `0..space` on `cfg.threads` threads until the database
/// reports no bytes left to re-encrypt (polled every 10 ms) or `cap` has passed. Returns the
/// stats, the bytes left at the end, and when they reached 0 (seconds since the start).
pub(crate) fn read_while_reencrypting(
    engine: &dyn Engine,
    db: &sealdb::DB,
    cfg: &Config,
    kind: EngineKind,
    label: &str,
    values: &ValueSource,
    salt: u64,
    space: u64,
    cap: Duration,
) -> Res<(RunStats, u64, Option<f64>)> {
    use std::sync::atomic::{AtomicBool, Ordering};

    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>17} {msg:<21} {spinner} {pos} reads {per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_prefix(kind.name());
    pb.set_message(label.to_string());
    let stop = AtomicBool::new(false);
    let bytes_left = || db.encryption_status().map_or(0, |s| s.reencrypt_bytes_left);
    let start = Instant::now();
    let (results, left, done) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads.max(1))
            .map(|t| {
                let (stop, pb) = (&stop, &pb);
                s.spawn(move || -> Res<ReaderTotals> {
                    let mut c = Client::new(cfg, values, salt, t);
                    let mut lat = Vec::new();
                    let (mut ops, mut bytes, mut found) = (0u64, 0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        let k = c.rng.gen_range(0..space);
                        make_key(&mut c.key, cfg.key_size, k, false);
                        let t0 = Instant::now();
                        let f = engine.get(&c.key, &mut c.buf)?;
                        lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        ops += 1;
                        bytes += (cfg.key_size + if f { c.buf.len() } else { 0 }) as u64;
                        found += u64::from(f);
                        if ops % 1024 == 0 {
                            pb.inc(1024);
                        }
                    }
                    Ok((ops, bytes, found, lat))
                })
            })
            .collect();
        let (mut left, mut done) = (bytes_left(), None);
        loop {
            if left == 0 {
                done = Some(start.elapsed().as_secs_f64());
                break;
            }
            // A reader that returned early failed: stop the others and report it.
            if start.elapsed() >= cap
                || handles.iter().any(std::thread::ScopedJoinHandle::is_finished)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            left = bytes_left();
        }
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Res<ReaderTotals>> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (results, left, done)
    });
    let seconds = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let mut stats = RunStats { ops: 0, seconds, user_bytes: 0, found: 0, latencies: Vec::new() };
    for r in results {
        let (ops, bytes, found, lat) = r?;
        stats.ops += ops;
        stats.user_bytes += bytes;
        stats.found += found;
        stats.latencies.extend_from_slice(&lat);
    }
    Ok((stats, left, done))
}

/// Checks that every read of a run found its key, as readrandom does.
pub(crate) fn check_found(row: &mut Row, found: u64) {
    row.found = Some(found);
    if found != row.ops {
        row.notes.push(format!("WARNING: only {found} of {} reads found their key", row.ops));
    }
}

/// The reencrypt workload on a fresh database: fill, flush and compact; readrandom idle; rotate
/// the data key and readrandom while the background compactor re-encrypts at its default rate;
/// rotate again and time `DB::reencrypt`. Rows `<workload>/fill`, `/idle`, `/bg`, `/full`.
pub(crate) fn run_reencrypt_phase(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    workload: Workload,
    out: &mut Vec<Row>,
    re_out: &mut Vec<ReencryptResult>,
) {
    let name = workload.name();
    let dir = root.join(format!("{}-{name}", kind.name()));
    let _ = fs::remove_dir_all(&dir);
    let mut rows = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reencrypt_steps(kind, cfg, &dir, values, workload, &mut rows)
    }));
    let err = match result {
        Ok(Ok(re)) => {
            re_out.push(re);
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(p) => Some(format!("panicked: {}", panic_message(&p))),
    };
    out.extend(rows);
    if let Some(e) = err {
        eprintln!("{}: {name} failed: {e}", kind.name());
        let row = Row::failed(kind, workload, e);
        report_row(&row);
        out.push(row);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The steps of [`run_reencrypt_phase`]; pushes each row to `rows` as it completes.
pub(crate) fn reencrypt_steps(
    kind: EngineKind,
    cfg: &Config,
    dir: &Path,
    values: &ValueSource,
    workload: Workload,
    rows: &mut Vec<Row>,
) -> Res<ReencryptResult> {
    let name = workload.name();
    let large = workload == Workload::Reencrypt4k;
    let (count, value_size) = if large { (cfg.num4k, VALUE_4K) } else { (cfg.num, cfg.value_size) };
    let reads = cfg.reads;
    let mut push = |step: &str, mut row: Row| {
        row.workload = format!("{name}/{step}");
        report_row(&row);
        rows.push(row);
    };
    fs::create_dir_all(dir)?;
    // The master key is kept for the reopen of step (d).
    let master = sealdb::MasterKey::generate();
    let opts = kind.seal_options(dir, cfg, &master).ok_or("reencrypt needs a sealdb engine")?;
    let engine: Box<dyn Engine> = Box::new(SealEngine { db: sealdb::DB::open(opts)? });
    let db = engine.sealdb().ok_or("reencrypt needs a sealdb engine")?;
    let mut re = ReencryptResult {
        engine: kind.name().into(),
        workload: name.into(),
        keys: count,
        value_size,
        ..ReencryptResult::default()
    };

    // Load: shuffled keys, flush, then compact so that no background compaction runs into the
    // idle read phase.
    let mut perm: Vec<u64> = (0..count).collect();
    perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed + 7));
    let mark = rss_mark();
    let order = Some(perm.as_slice());
    let row =
        run_fill(engine.as_ref(), cfg, kind, workload, dir, order, count, value_size, values)?;
    drop(perm);
    push("fill", finish_row(row, mark));
    let t0 = Instant::now();
    db.compact()?;
    re.compact_seconds = t0.elapsed().as_secs_f64();
    re.db_bytes = dir_size(dir).0;
    let status = db.encryption_status().ok_or("the database is not encrypted")?;
    re.live_bytes = status.keys.iter().map(|k| k.live_bytes).sum();

    // (a) Idle, after an untimed warm-up pass, so that the block cache is as warm as the idle
    // phase leaves it for the next.
    let salt = workload as u64 * 10;
    let label = |step: &str| format!("{name}/{step}");
    read_fixed(
        engine.as_ref(),
        cfg,
        kind,
        &label("warm"),
        values,
        salt + 2,
        count,
        reads.min(count),
    )?;
    let mark = rss_mark();
    let stats = read_fixed(engine.as_ref(), cfg, kind, &label("idle"), values, salt, count, reads)?;
    let found = stats.found;
    let mut row = Row::new(kind, workload);
    stats.fill_row(&mut row);
    check_found(&mut row, found);
    re.idle_ops_per_sec = row.ops_per_sec;
    push("idle", finish_row(row, mark));

    // (b) During background re-encryption at the configured (default: sealdb's) rate.
    let mark = rss_mark();
    db.rotate_data_key()?;
    re.bytes_left_start = db.encryption_status().map_or(0, |s| s.reencrypt_bytes_left);
    let cap = Duration::from_secs(cfg.reencrypt_cap_secs);
    let (stats, left, done) = read_while_reencrypting(
        engine.as_ref(),
        db,
        cfg,
        kind,
        &label("bg"),
        values,
        salt + 1,
        count,
        cap,
    )?;
    let found = stats.found;
    let mut row = Row::new(kind, workload);
    stats.fill_row(&mut row);
    check_found(&mut row, found);
    re.bg_ops_per_sec = row.ops_per_sec;
    re.bg_reads = row.ops;
    re.bg_seconds = row.seconds;
    re.ratio = row.ops_per_sec / re.idle_ops_per_sec.max(1e-9);
    re.bytes_left_end = left;
    re.bg_reencrypt_seconds = done;
    let mib = |b: u64| b as f64 / 1_048_576.0;
    row.notes.push(format!(
        "{:.2} x idle ops/s (target >= {REENCRYPT_TARGET_RATIO:.2}); {:.1} MiB to re-encrypt at \
         the start, {:.1} MiB left at the end{}",
        re.ratio,
        mib(re.bytes_left_start),
        mib(left),
        if done.is_none() { " (read phase capped)" } else { "" }
    ));
    if row.seconds < 2.0 {
        row.notes.push(format!(
            "the read phase lasted {:.2} s (the time re-encryption took): too short for a stable \
             ratio; use a larger --num",
            row.seconds
        ));
    }
    push("bg", finish_row(row, mark));

    // (c) Unthrottled DB::reencrypt after a second rotation.
    let mark = rss_mark();
    db.rotate_data_key()?;
    let status = db.encryption_status().ok_or("the database is not encrypted")?;
    re.full_live_bytes = status.keys.iter().map(|k| k.live_bytes).sum();
    re.full_stale_bytes = status.reencrypt_bytes_left;
    let t0 = Instant::now();
    db.reencrypt()?;
    re.full_seconds = t0.elapsed().as_secs_f64();
    re.full_mb_per_sec = mib(re.full_live_bytes) / re.full_seconds.max(1e-9);
    let after = db.encryption_status().ok_or("the database is not encrypted")?;
    re.keys_after = after.keys.len();
    re.bytes_left_after = after.reencrypt_bytes_left;
    let mut row = Row::new(kind, workload);
    row.seconds = re.full_seconds;
    row.user_bytes = re.full_live_bytes;
    row.mb_per_sec = re.full_mb_per_sec;
    row.notes.push(format!(
        "DB::reencrypt: {:.1} MiB live ({:.1} MiB stale) in {:.2} s; {} data key(s) and {} bytes \
         left after",
        mib(re.full_live_bytes),
        mib(re.full_stale_bytes),
        re.full_seconds,
        re.keys_after,
        re.bytes_left_after
    ));
    if re.keys_after != 1 || re.bytes_left_after != 0 {
        row.notes.push("WARNING: retired keys or stale bytes remain after reencrypt()".into());
    }
    push("full", finish_row(row, mark));
    engine.close()?;

    // (d) The same on the database reopened without background work, so that no throttled
    // background pass runs beside DB::reencrypt.
    let mark = rss_mark();
    let opts = kind.seal_options(dir, cfg, &master).ok_or("reencrypt needs a sealdb engine")?;
    let db = sealdb::DB::open(opts.background_work(false))?;
    db.rotate_data_key()?;
    let status = db.encryption_status().ok_or("the database is not encrypted")?;
    re.nobg_live_bytes = status.keys.iter().map(|k| k.live_bytes).sum();
    let t0 = Instant::now();
    db.reencrypt()?;
    re.nobg_seconds = t0.elapsed().as_secs_f64();
    re.nobg_mb_per_sec = mib(re.nobg_live_bytes) / re.nobg_seconds.max(1e-9);
    let after = db.encryption_status().ok_or("the database is not encrypted")?;
    let mut row = Row::new(kind, workload);
    row.seconds = re.nobg_seconds;
    row.user_bytes = re.nobg_live_bytes;
    row.mb_per_sec = re.nobg_mb_per_sec;
    row.notes.push(format!(
        "DB::reencrypt, reopened with background_work(false): {:.1} MiB live in {:.2} s",
        mib(re.nobg_live_bytes),
        re.nobg_seconds
    ));
    if after.keys.len() != 1 || after.reencrypt_bytes_left != 0 {
        row.notes.push("WARNING: retired keys or stale bytes remain after reencrypt()".into());
    }
    push("full-nobg", finish_row(row, mark));
    db.close()?;
    Ok(re)
}
