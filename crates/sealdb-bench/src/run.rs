//! Running in-process workloads: client threads, progress, timing and per-run statistics.

use std::fs;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::cold::{run_cold_phase, ColdResult};
use crate::config::{Config, SEEK_NEXTS, VALUE_4K};
use crate::engines::{Engine, EngineKind};
use crate::reencrypt::{run_reencrypt_phase, ReencryptResult};
use crate::report::{report_row, Row};
use crate::sys::{dir_size, proc_status_kb, proc_write_bytes, rss_mark, RssMark};
use crate::workloads::{
    make_key, ValueCursor, ValueSource, Workload, Zipfian, MAIN_PHASE, PHASE_4K,
};
use crate::Res;

/// What one timed run of operations measured.
pub(crate) struct RunStats {
    pub(crate) ops: u64,
    pub(crate) seconds: f64,
    pub(crate) user_bytes: u64,
    pub(crate) found: u64,
    /// Per-operation latencies in nanoseconds, saturated at `u32::MAX`.
    pub(crate) latencies: Vec<u32>,
}

impl RunStats {
    pub(crate) fn fill_row(mut self, row: &mut Row) {
        row.ops = self.ops;
        row.seconds = self.seconds;
        row.user_bytes = self.user_bytes;
        row.ops_per_sec = self.ops as f64 / self.seconds.max(1e-9);
        row.mb_per_sec = self.user_bytes as f64 / 1_048_576.0 / self.seconds.max(1e-9);
        self.latencies.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            if self.latencies.is_empty() {
                return None;
            }
            let idx =
                ((p * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
            Some(f64::from(self.latencies[idx - 1]) / 1000.0)
        };
        row.p50_us = pct(0.50);
        row.p99_us = pct(0.99);
        row.p999_us = pct(0.999);
    }
}

pub(crate) fn progress_bar(len: u64, engine: EngineKind, workload: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>17} {msg:<21} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(engine.name());
    pb.set_message(workload.to_string());
    pb
}

/// Runs `total` operations split over `threads` client threads. `op(state, i)` performs
/// operation `i` (0-based, global) and returns (user bytes, found).
pub(crate) fn run_parallel<S, Init, Op>(
    threads: usize,
    total: u64,
    pb: &ProgressBar,
    init: Init,
    op: Op,
) -> Res<RunStats>
where
    Init: Fn(usize) -> S + Sync,
    Op: Fn(&mut S, u64) -> Res<(u64, bool)> + Sync,
{
    let threads = threads.max(1).min(total.max(1) as usize);
    let per = total / threads as u64;
    let extra = total % threads as u64;
    let start = Instant::now();
    let results: Vec<Res<(u64, u64, Vec<u32>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (init, op) = (&init, &op);
                let lo = t as u64 * per + (t as u64).min(extra);
                let n = per + u64::from((t as u64) < extra);
                s.spawn(move || -> Res<(u64, u64, Vec<u32>)> {
                    let mut state = init(t);
                    let mut lat = Vec::with_capacity(n as usize);
                    let (mut bytes, mut found) = (0u64, 0u64);
                    for i in lo..lo + n {
                        let t0 = Instant::now();
                        let (b, f) = op(&mut state, i)?;
                        lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        bytes += b;
                        found += u64::from(f);
                        if (i - lo) % 1024 == 1023 {
                            pb.inc(1024);
                        }
                    }
                    pb.inc(n % 1024);
                    Ok((bytes, found, lat))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut stats =
        RunStats { ops: total, seconds, user_bytes: 0, found: 0, latencies: Vec::new() };
    for r in results {
        let (bytes, found, lat) = r?;
        stats.user_bytes += bytes;
        stats.found += found;
        stats.latencies.extend_from_slice(&lat);
    }
    Ok(stats)
}

/// The per-thread state of the operation loops.
pub(crate) struct Client {
    pub(crate) rng: StdRng,
    pub(crate) key: Vec<u8>,
    pub(crate) buf: Vec<u8>,
    pub(crate) values: ValueCursor,
}

impl Client {
    pub(crate) fn new(cfg: &Config, values: &ValueSource, salt: u64, thread: usize) -> Client {
        let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add(salt * 977 + thread as u64);
        Client {
            rng: StdRng::seed_from_u64(seed),
            key: Vec::with_capacity(cfg.key_size),
            buf: Vec::new(),
            values: values.cursor((seed as usize).wrapping_mul(7919)),
        }
    }
}

/// Loads `keys` (in the given order) with `value_size`-byte values and flushes; fills `row`
/// with throughput, latency, write and space amplification.
pub(crate) fn run_fill(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    workload: Workload,
    dir: &Path,
    order: Option<&[u64]>,
    count: u64,
    value_size: usize,
    values: &ValueSource,
) -> Res<Row> {
    let mut row = Row::new(kind, workload);
    let io_before = proc_write_bytes("self");
    let size_before = dir_size(dir);
    let pb = progress_bar(count, kind, workload.name());
    let stats = run_parallel(
        cfg.threads,
        count,
        &pb,
        |t| Client::new(cfg, values, workload as u64, t),
        |c, i| {
            let k = order.map_or(i, |o| o[i as usize]);
            make_key(&mut c.key, cfg.key_size, k, false);
            engine.put(&c.key, c.values.next(value_size))?;
            Ok(((cfg.key_size + value_size) as u64, true))
        },
    )?;
    pb.set_message(format!("{} (flush)", workload.name()));
    let t0 = Instant::now();
    engine.finish()?;
    row.flush_seconds = Some(t0.elapsed().as_secs_f64());
    pb.finish_and_clear();
    stats.fill_row(&mut row);
    row.found = None;
    let size_after = dir_size(dir);
    let user = row.user_bytes as f64;
    row.disk_bytes = Some(size_after.0);
    row.disk_bytes_apparent = Some(size_after.1);
    row.space_amp = Some(size_after.0 as f64 / user);
    match (io_before, proc_write_bytes("self")) {
        (Some((wb, cb)), Some((wa, ca))) if wa > wb => {
            row.write_amp = Some((wa - wb) as f64 / user);
            let net = (wa - wb).saturating_sub(ca.saturating_sub(cb));
            row.write_amp_net = Some(net as f64 / user);
            row.write_amp_source = Some("/proc/self/io write_bytes delta".into());
        }
        _ => {
            row.write_amp = Some(size_after.0.saturating_sub(size_before.0) as f64 / user);
            row.write_amp_source = Some(
                "directory growth (/proc/self/io write_bytes showed 0 or was unreadable)".into(),
            );
            row.notes
                .push("WA from directory growth (/proc/self/io shows 0): a lower bound".into());
        }
    }
    Ok(row)
}

/// Runs one non-fill workload on an open, loaded engine.
pub(crate) fn run_workload(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    workload: Workload,
    values: &ValueSource,
    zipf: &Zipfian,
) -> Res<Row> {
    let mut row = Row::new(kind, workload);
    let n = cfg.num;
    let entry = (cfg.key_size + cfg.value_size) as u64;
    let salt = workload as u64;
    let client = |t| Client::new(cfg, values, salt, t);
    let stats = match workload {
        Workload::Overwrite => {
            let pb = progress_bar(n, kind, workload.name());
            let s = run_parallel(cfg.threads, n, &pb, client, |c, _| {
                let k = c.rng.gen_range(0..n);
                make_key(&mut c.key, cfg.key_size, k, false);
                engine.put(&c.key, c.values.next(cfg.value_size))?;
                Ok((entry, true))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::ReadRandom | Workload::ReadMissing | Workload::Read4k => {
            let missing = workload == Workload::ReadMissing;
            let (space, reads) =
                if workload == Workload::Read4k { (cfg.num4k, cfg.num4k) } else { (n, cfg.reads) };
            let pb = progress_bar(reads, kind, workload.name());
            let s = run_parallel(cfg.threads, reads, &pb, client, |c, _| {
                let k = c.rng.gen_range(0..space);
                make_key(&mut c.key, cfg.key_size, k, missing);
                let found = engine.get(&c.key, &mut c.buf)?;
                Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::ReadSeq => {
            let pb = progress_bar(n, kind, workload.name());
            let mut latencies = Vec::with_capacity(n as usize);
            let mut bytes = 0u64;
            let start = Instant::now();
            let mut prev = start;
            // An op is one key: its latency is the time since the previous key arrived.
            let count = engine.scan(b"", usize::MAX, &mut |k, v| {
                let now = Instant::now();
                latencies.push(u32::try_from((now - prev).as_nanos()).unwrap_or(u32::MAX));
                prev = now;
                bytes += (k.len() + v.len()) as u64;
                if latencies.len() % 1024 == 0 {
                    pb.inc(1024);
                }
            })? as u64;
            let seconds = start.elapsed().as_secs_f64();
            pb.finish_and_clear();
            if count != n {
                row.notes.push(format!("WARNING: scan returned {count} keys, {n} loaded"));
            }
            RunStats { ops: count, seconds, user_bytes: bytes, found: count, latencies }
        }
        Workload::SeekRandom | Workload::Seek4k => {
            let (space, seeks) = if workload == Workload::Seek4k {
                (cfg.num4k, cfg.seeks4k)
            } else {
                (n, cfg.seeks)
            };
            let pb = progress_bar(seeks, kind, workload.name());
            let s = run_parallel(cfg.threads, seeks, &pb, client, |c, _| {
                let k = c.rng.gen_range(0..space);
                make_key(&mut c.key, cfg.key_size, k, false);
                let mut bytes = 0u64;
                let got = engine.scan(&c.key, SEEK_NEXTS, &mut |k, v| {
                    bytes += (k.len() + v.len()) as u64;
                })?;
                Ok((bytes, got > 0))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::YcsbA | Workload::YcsbB | Workload::YcsbC => {
            let read_pct = match workload {
                Workload::YcsbA => 50,
                Workload::YcsbB => 95,
                _ => 100,
            };
            let pb = progress_bar(cfg.reads, kind, workload.name());
            let s = run_parallel(cfg.threads, cfg.reads, &pb, client, |c, _| {
                let k = zipf.next(&mut c.rng);
                make_key(&mut c.key, cfg.key_size, k, false);
                if c.rng.gen_range(0..100) < read_pct {
                    let found = engine.get(&c.key, &mut c.buf)?;
                    Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
                } else {
                    engine.put(&c.key, c.values.next(cfg.value_size))?;
                    Ok((entry, true))
                }
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::YcsbF => {
            let pb = progress_bar(cfg.reads, kind, workload.name());
            let s = run_parallel(cfg.threads, cfg.reads, &pb, client, |c, _| {
                let k = zipf.next(&mut c.rng);
                make_key(&mut c.key, cfg.key_size, k, false);
                let found = engine.get(&c.key, &mut c.buf)?;
                // Modify: bump one byte of what was read (or start from fresh bytes).
                if !found || c.buf.is_empty() {
                    c.buf.clear();
                    c.buf.extend_from_slice(c.values.next(cfg.value_size));
                }
                let at = c.rng.gen_range(0..c.buf.len());
                c.buf[at] = c.buf[at].wrapping_add(1);
                engine.put(&c.key, &c.buf)?;
                Ok((2 * (cfg.key_size + c.buf.len()) as u64, found))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::FillSeq
        | Workload::FillRandom
        | Workload::Fill4k
        | Workload::FillSync
        | Workload::FillSync8 => {
            unreachable!("fills run through run_fill")
        }
        Workload::Reencrypt | Workload::Reencrypt4k => {
            unreachable!("reencrypt runs through run_reencrypt_phase")
        }
        Workload::Cold => unreachable!("cold runs through run_cold_phase"),
        Workload::Batch2 | Workload::Txn => unreachable!("they run through txn::run_txn_phases"),
    };
    let found = stats.found;
    let ops = stats.ops;
    stats.fill_row(&mut row);
    if matches!(
        workload,
        Workload::ReadRandom
            | Workload::ReadMissing
            | Workload::Read4k
            | Workload::YcsbC
            | Workload::YcsbF
    ) {
        row.found = Some(found);
        let expect_all = workload != Workload::ReadMissing;
        if expect_all && found != ops {
            row.notes.push(format!("WARNING: only {found} of {ops} reads found their key"));
        } else if !expect_all && found != 0 {
            row.notes.push(format!("WARNING: {found} missing keys were found"));
        }
    }
    Ok(row)
}

pub(crate) fn finish_row(mut row: Row, mark: RssMark) -> Row {
    row.peak_rss_mb = proc_status_kb("self", "VmHWM:").map(|kb| kb as f64 / 1024.0);
    row.rss_at_start_mb = mark.start_kb.map(|kb| kb as f64 / 1024.0);
    if !mark.reset {
        row.notes.push("peak RSS since process start (clear_refs not permitted)".into());
    }
    row
}

/// Runs every selected workload against one in-process engine; one row per workload.
pub(crate) fn run_in_process(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    zipf: &Zipfian,
    out: &mut Vec<Row>,
    re_out: &mut Vec<ReencryptResult>,
    cold_out: &mut Vec<ColdResult>,
) {
    let sel = |w: Workload| cfg.workloads.contains(&w);
    let only_large = kind.only_large_values(cfg);
    let phase = |name: &str, fill: Workload, large: bool, then: &[Workload], out: &mut Vec<Row>| {
        let dir = root.join(format!("{}-{name}", kind.name()));
        let _ = fs::remove_dir_all(&dir);
        if let Err(e) = fs::create_dir_all(&dir) {
            out.push(Row::failed(kind, fill, format!("create {}: {e}", dir.display())));
            return;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Res<()> {
            let engine = kind.open(&dir, cfg, large).expect("in-process engine")?;
            let (count, value_size, order) = match fill {
                Workload::FillSeq => (cfg.num, cfg.value_size, None),
                Workload::FillRandom => {
                    let mut perm: Vec<u64> = (0..cfg.num).collect();
                    perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed));
                    (cfg.num, cfg.value_size, Some(perm))
                }
                _ => {
                    let mut perm: Vec<u64> = (0..cfg.num4k).collect();
                    perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed + 4));
                    (cfg.num4k, VALUE_4K, Some(perm))
                }
            };
            let mark = rss_mark();
            let row = run_fill(
                engine.as_ref(),
                cfg,
                kind,
                fill,
                &dir,
                order.as_deref(),
                count,
                value_size,
                values,
            )?;
            drop(order);
            if sel(fill) {
                let row = finish_row(row, mark);
                report_row(&row);
                out.push(row);
            }
            for &w in then.iter().filter(|w| sel(**w)) {
                let mark = rss_mark();
                let row = match run_workload(engine.as_ref(), cfg, kind, w, values, zipf) {
                    Ok(r) => finish_row(r, mark),
                    Err(e) => Row::failed(kind, w, e.to_string()),
                };
                report_row(&row);
                out.push(row);
            }
            engine.close()
        }));
        let err = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(p) => Some(format!("panicked: {}", panic_message(&p))),
        };
        if let Some(e) = err {
            eprintln!("{}: {name} phase failed: {e}", kind.name());
            let mut failed_any = false;
            for w in std::iter::once(fill).chain(then.iter().copied()).filter(|w| sel(*w)) {
                if !out.iter().any(|r| r.engine == kind.name() && r.workload == w.name()) {
                    out.push(Row::failed(kind, w, e.clone()));
                    failed_any = true;
                }
            }
            if !failed_any {
                out.push(Row::failed(kind, fill, e));
            }
        }
        let _ = fs::remove_dir_all(&dir);
    };
    if sel(Workload::FillSeq) && !only_large {
        phase("seq", Workload::FillSeq, false, &[], out);
    }
    if cfg.workloads.iter().any(|w| w.needs_main_db()) && !only_large {
        phase("main", Workload::FillRandom, false, &MAIN_PHASE, out);
    }
    if sel(Workload::Fill4k) || PHASE_4K.iter().any(|w| sel(*w)) {
        phase("4k", Workload::Fill4k, true, &PHASE_4K, out);
    }
    crate::syncfill::run_sync_phases(kind, cfg, root, values, out);
    for w in [Workload::Reencrypt, Workload::Reencrypt4k] {
        if !sel(w) || (w == Workload::Reencrypt && only_large) {
            continue;
        }
        if !kind.encrypted() {
            let row = Row::skipped(kind, w, "needs an encrypted sealdb (a data key to rotate)");
            report_row(&row);
            out.push(row);
            continue;
        }
        run_reencrypt_phase(kind, cfg, root, values, w, out, re_out);
    }
    if sel(Workload::Cold) {
        run_cold_phase(kind, cfg, root, values, zipf, out, cold_out);
    }
    crate::txn::run_txn_phases(kind, cfg, root, values, out);
}

/// Runs the selected ones of `workloads` against one in-process engine, each by `phase` on a
/// fresh directory under `root` (see [`run_fresh_phase`]), or as a skipped row where `skip`
/// gives the reason; nothing for an engine that runs only the 4 KiB workloads (sealdb-aes-inline
/// from the default engine list). One row per workload.
pub(crate) fn run_fresh_phases(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    out: &mut Vec<Row>,
    workloads: &[Workload],
    skip: impl Fn(Workload) -> Option<&'static str>,
    mut phase: impl FnMut(&Path, Workload) -> Res<Row>,
) {
    if kind.only_large_values(cfg) {
        return;
    }
    for &w in workloads.iter().filter(|w| cfg.workloads.contains(w)) {
        match skip(w) {
            Some(why) => push_skipped_row(kind, w, why, out),
            None => run_fresh_phase(kind, w, root, out, |dir| phase(dir, w)),
        }
    }
}

/// Reports a row for workload `w`, which `kind` does not run (`why`), and adds it to `out`.
pub(crate) fn push_skipped_row(kind: EngineKind, w: Workload, why: &str, out: &mut Vec<Row>) {
    let row = Row::skipped(kind, w, why);
    report_row(&row);
    out.push(row);
}

/// Runs workload `w` of `kind` by `phase` on a fresh directory under `root` (removed before and
/// after), turning an error or a panic into a failed row; reports the row and adds it to `out`.
pub(crate) fn run_fresh_phase(
    kind: EngineKind,
    w: Workload,
    root: &Path,
    out: &mut Vec<Row>,
    phase: impl FnOnce(&Path) -> Res<Row>,
) {
    let dir = root.join(format!("{}-{}", kind.name(), w.name()));
    let _ = fs::remove_dir_all(&dir);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| phase(&dir)));
    let row = match result {
        Ok(Ok(row)) => row,
        Ok(Err(e)) => Row::failed(kind, w, e.to_string()),
        Err(p) => Row::failed(kind, w, format!("panicked: {}", panic_message(&p))),
    };
    if row.error.is_some() {
        eprintln!("{}: {} phase failed", kind.name(), w.name());
    }
    report_row(&row);
    out.push(row);
    let _ = fs::remove_dir_all(&dir);
}

pub(crate) fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}
