//! The cold workload: a sealdb database moved whole to an object store that answers every
//! request after `--cold-latency-ms`, then read from there. Figures: object GETs per cold
//! point read (from the store's request counters), cold scan throughput, and the part cache's
//! hit ratio on a zipfian read mix. The store is `object_store`'s in-memory store behind
//! sealdb's public [`FaultStore`], which adds the latency and counts requests.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use sealdb::object_store::memory::InMemory;
use sealdb::objstore::{FaultStore, StoreOp};
use sealdb::{ColdStorage, MasterKey, DB};
use serde_json::{json, Value};

use crate::config::Config;
use crate::engines::sealdb::SealEngine;
use crate::engines::{Engine, EngineKind};
use crate::report::{fmt_int, report_row, Row};
use crate::run::{panic_message, progress_bar, run_fill, run_parallel, Client, RunStats};
use crate::workloads::{make_key, ValueSource, Workload, Zipfian};
use crate::Res;

/// A cold tier on a fresh in-memory store that waits `--cold-latency-ms` before answering
/// each request, and the [`FaultStore`] handle that sets the latency and counts requests.
pub(crate) fn tiered_storage(cfg: &Config) -> (ColdStorage, FaultStore) {
    let fault = FaultStore::new(Arc::new(InMemory::new()));
    fault.set_latency(Duration::from_millis(cfg.cold_latency_ms));
    (ColdStorage::new(Arc::new(fault.clone()), "bench"), fault)
}

/// The figures of one cold run beyond its rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct ColdResult {
    pub(crate) engine: String,
    pub(crate) keys: u64,
    pub(crate) value_size: usize,
    pub(crate) latency_ms: u64,
    /// Seconds of `DB::archive` moving every file (each upload: PUT, HEAD, GET back).
    pub(crate) archive_seconds: f64,
    pub(crate) cold_files: u64,
    pub(crate) cold_bytes: u64,
    /// GETs while opening the all-cold database (each table's index and filter).
    pub(crate) open_gets: u64,
    /// Cold point reads with no block cache and no part cache, and their GETs.
    pub(crate) point_reads: u64,
    pub(crate) point_gets: u64,
    pub(crate) point_ops_per_sec: f64,
    pub(crate) point_p50_ms: f64,
    /// One full scan with no caches: keys, seconds, GETs, bytes downloaded.
    pub(crate) scan_keys: u64,
    pub(crate) scan_seconds: f64,
    pub(crate) scan_gets: u64,
    pub(crate) scan_downloaded: u64,
    pub(crate) scan_user_bytes: u64,
    /// The zipfian mix through the part cache (no block cache).
    pub(crate) zipf_reads: u64,
    pub(crate) zipf_cache_mb: u64,
    pub(crate) zipf_gets: u64,
    pub(crate) zipf_hits: u64,
    pub(crate) zipf_misses: u64,
    pub(crate) zipf_ops_per_sec: f64,
}

impl ColdResult {
    fn point_gets_per_read(&self) -> f64 {
        self.point_gets as f64 / self.point_reads.max(1) as f64
    }
    fn zipf_hit_ratio(&self) -> f64 {
        self.zipf_hits as f64 / (self.zipf_hits + self.zipf_misses).max(1) as f64
    }
    fn scan_mb_per_sec(&self) -> f64 {
        self.scan_user_bytes as f64 / 1_048_576.0 / self.scan_seconds.max(1e-9)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "engine": self.engine,
            "keys": self.keys,
            "value_size": self.value_size,
            "latency_ms_per_request": self.latency_ms,
            "archive_seconds": self.archive_seconds,
            "cold_files": self.cold_files,
            "cold_bytes": self.cold_bytes,
            "gets_at_open": self.open_gets,
            "point_reads": {
                "reads": self.point_reads,
                "gets": self.point_gets,
                "gets_per_read": self.point_gets_per_read(),
                "ops_per_sec": self.point_ops_per_sec,
                "p50_ms": self.point_p50_ms,
            },
            "scan": {
                "keys": self.scan_keys,
                "seconds": self.scan_seconds,
                "keys_per_sec": self.scan_keys as f64 / self.scan_seconds.max(1e-9),
                "user_mb_per_sec": self.scan_mb_per_sec(),
                "gets": self.scan_gets,
                "downloaded_bytes": self.scan_downloaded,
            },
            "zipfian": {
                "reads": self.zipf_reads,
                "part_cache_mb": self.zipf_cache_mb,
                "gets": self.zipf_gets,
                "gets_per_read": self.zipf_gets as f64 / self.zipf_reads.max(1) as f64,
                "cache_hits": self.zipf_hits,
                "cache_misses": self.zipf_misses,
                "cache_hit_ratio": self.zipf_hit_ratio(),
                "ops_per_sec": self.zipf_ops_per_sec,
            },
        })
    }
}

/// The summary table of the cold runs.
pub(crate) fn print_cold(res: &[ColdResult]) -> String {
    let mut s = String::new();
    let _ =
        writeln!(s, "Cold tier (everything archived; no block cache; store latency per request)");
    let _ = writeln!(
        s,
        "{:<17} {:>8} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9} {:>9} {:>10}",
        "engine",
        "keys",
        "lat ms",
        "cold MB",
        "GETs/get",
        "get ops/s",
        "get p50ms",
        "open GETs",
        "scan keys/s",
        "scan MB/s",
        "scan GETs",
        "zipf hit%",
        "zipf ops/s"
    );
    let _ = writeln!(s, "{}", "-".repeat(133));
    for r in res {
        let _ = writeln!(
            s,
            "{:<17} {:>8} {:>6} {:>7.1} {:>9.2} {:>9.1} {:>9.1} {:>9} {:>11} {:>9.2} {:>9} {:>9.1} {:>10}",
            r.engine,
            r.keys,
            r.latency_ms,
            r.cold_bytes as f64 / 1_048_576.0,
            r.point_gets_per_read(),
            r.point_ops_per_sec,
            r.point_p50_ms,
            r.open_gets,
            fmt_int(r.scan_keys as f64 / r.scan_seconds.max(1e-9)),
            r.scan_mb_per_sec(),
            r.scan_gets,
            100.0 * r.zipf_hit_ratio(),
            fmt_int(r.zipf_ops_per_sec),
        );
    }
    s
}

/// Runs the cold workload on a sealdb engine (others get a skipped row).
pub(crate) fn run_cold_phase(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    zipf: &Zipfian,
    out: &mut Vec<Row>,
    res: &mut Vec<ColdResult>,
) {
    if kind.seal_options(root, cfg, &MasterKey::generate()).is_none() {
        let row = Row::skipped(kind, Workload::Cold, "needs sealdb (a cold tier)");
        report_row(&row);
        out.push(row);
        return;
    }
    let dir = root.join(format!("{}-cold", kind.name()));
    let _ = fs::remove_dir_all(&dir);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fs::create_dir_all(&dir)?;
        cold_phase(kind, cfg, &dir, values, zipf, out)
    }));
    match result {
        Ok(Ok(r)) => res.push(r),
        Ok(Err(e)) => out.push(Row::failed(kind, Workload::Cold, e.to_string())),
        Err(p) => out.push(Row::failed(kind, Workload::Cold, panic_message(&p))),
    }
    let _ = fs::remove_dir_all(&dir);
}

/// A row of the cold workload under its own name (`cold-get`, `cold-scan`, `cold-zipf`).
fn cold_row(kind: EngineKind, name: &str, stats: RunStats, notes: String) -> Row {
    let mut row = Row::new(kind, Workload::Cold);
    row.workload = name.into();
    stats.fill_row(&mut row);
    row.notes.push(notes);
    report_row(&row);
    row
}

fn cold_phase(
    kind: EngineKind,
    cfg: &Config,
    dir: &Path,
    values: &ValueSource,
    zipf: &Zipfian,
    out: &mut Vec<Row>,
) -> Res<ColdResult> {
    let master = MasterKey::generate();
    let (cold, fault) = tiered_storage(cfg);
    let latency = Duration::from_millis(cfg.cold_latency_ms);
    let open = |cold: ColdStorage, block_cache: u64, background: bool| -> Res<DB> {
        let opts = kind.seal_options(dir, cfg, &master).ok_or("not a sealdb engine")?;
        Ok(DB::open(opts.cache_size(block_cache).background_work(background).cold_storage(cold))?)
    };
    let mut r = ColdResult {
        engine: kind.name().into(),
        keys: cfg.num,
        value_size: cfg.value_size,
        latency_ms: cfg.cold_latency_ms,
        zipf_cache_mb: cfg.cold_cache_mb,
        ..ColdResult::default()
    };

    // Fill (store idle: nothing is old enough to move), compact, close.
    fault.set_latency(Duration::ZERO);
    {
        let engine = SealEngine { db: open(cold.clone(), cfg.cache_mb << 20, true)? };
        let mut perm: Vec<u64> = (0..cfg.num).collect();
        perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed + 13));
        let fill = Workload::FillRandom;
        run_fill(&engine, cfg, kind, fill, dir, Some(&perm), cfg.num, cfg.value_size, values)?;
        engine.db.compact()?;
        Box::new(engine).close()?;
    }

    // Archive everything, through the latency.
    fault.set_latency(latency);
    let all_cold = cold.clone().cold_after(Duration::ZERO);
    {
        let db = open(all_cold.clone().cache_size(0), 0, false)?;
        let t0 = Instant::now();
        db.archive()?;
        r.archive_seconds = t0.elapsed().as_secs_f64();
        let s = db.tiering_status().ok_or("no tiering status")?;
        r.cold_files = s.cold_files;
        r.cold_bytes = s.cold_bytes;
        if s.local_files > 1 {
            return Err(format!("archive left {} local files", s.local_files).into());
        }
        db.close()?;
    }

    // Point reads and a full scan with no block cache and no part cache: every read of a
    // table block is a request to the store.
    {
        let before = fault.requests(StoreOp::Get);
        let engine = SealEngine { db: open(all_cold.clone().cache_size(0), 0, false)? };
        r.open_gets = fault.requests(StoreOp::Get) - before;
        let before = fault.requests(StoreOp::Get);
        let pb = progress_bar(cfg.cold_reads, kind, "cold-get");
        let stats = run_parallel(
            cfg.threads,
            cfg.cold_reads,
            &pb,
            |t| Client::new(cfg, values, 31, t),
            |c, _| {
                let k = rand::Rng::gen_range(&mut c.rng, 0..cfg.num);
                make_key(&mut c.key, cfg.key_size, k, false);
                let found = engine.get(&c.key, &mut c.buf)?;
                Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
            },
        )?;
        pb.finish_and_clear();
        r.point_reads = stats.ops;
        r.point_gets = fault.requests(StoreOp::Get) - before;
        if stats.found != stats.ops {
            return Err(format!("cold reads found {} of {} keys", stats.found, stats.ops).into());
        }
        let notes = format!("{:.2} GETs per read", r.point_gets_per_read());
        let row = cold_row(kind, "cold-get", stats, notes);
        r.point_ops_per_sec = row.ops_per_sec;
        r.point_p50_ms = row.p50_us.unwrap_or(0.0) / 1000.0;
        out.push(row);

        let before = fault.requests(StoreOp::Get);
        let down = engine.db.tiering_status().ok_or("no tiering status")?.downloaded_bytes;
        let t0 = Instant::now();
        let (mut keys, mut bytes) = (0u64, 0u64);
        for item in &engine.db {
            let (k, v) = item?;
            keys += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        r.scan_seconds = t0.elapsed().as_secs_f64();
        r.scan_keys = keys;
        r.scan_user_bytes = bytes;
        r.scan_gets = fault.requests(StoreOp::Get) - before;
        r.scan_downloaded =
            engine.db.tiering_status().ok_or("no tiering status")?.downloaded_bytes - down;
        if keys != cfg.num {
            return Err(format!("cold scan returned {keys} keys, {} loaded", cfg.num).into());
        }
        let stats = RunStats {
            ops: keys,
            seconds: r.scan_seconds,
            user_bytes: bytes,
            found: keys,
            latencies: Vec::new(),
        };
        let notes = format!(
            "{} GETs, {:.1} MB downloaded",
            r.scan_gets,
            r.scan_downloaded as f64 / 1_048_576.0
        );
        out.push(cold_row(kind, "cold-scan", stats, notes));
        Box::new(engine).close()?;
    }

    // The zipfian mix through the part cache (no block cache, so every read reaches the tier).
    {
        let cache = all_cold.cache_size(cfg.cold_cache_mb << 20);
        let engine = SealEngine { db: open(cache, 0, false)? };
        let s0 = engine.db.tiering_status().ok_or("no tiering status")?;
        let before = fault.requests(StoreOp::Get);
        let reads = cfg.cold_reads * 4;
        let pb = progress_bar(reads, kind, "cold-zipf");
        let stats = run_parallel(
            cfg.threads,
            reads,
            &pb,
            |t| Client::new(cfg, values, 37, t),
            |c, _| {
                let k = zipf.next(&mut c.rng);
                make_key(&mut c.key, cfg.key_size, k, false);
                let found = engine.get(&c.key, &mut c.buf)?;
                Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
            },
        )?;
        pb.finish_and_clear();
        let s1 = engine.db.tiering_status().ok_or("no tiering status")?;
        r.zipf_reads = reads;
        r.zipf_gets = fault.requests(StoreOp::Get) - before;
        r.zipf_hits = s1.cache_hits - s0.cache_hits;
        r.zipf_misses = s1.cache_misses - s0.cache_misses;
        let notes = format!(
            "part cache {} MiB: {:.1}% hits, {:.2} GETs per read",
            cfg.cold_cache_mb,
            100.0 * r.zipf_hit_ratio(),
            r.zipf_gets as f64 / reads.max(1) as f64
        );
        let row = cold_row(kind, "cold-zipf", stats, notes);
        r.zipf_ops_per_sec = row.ops_per_sec;
        out.push(row);
        Box::new(engine).close()?;
    }
    Ok(r)
}
