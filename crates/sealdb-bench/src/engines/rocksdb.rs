//! RocksDB through the system `db_bench` binary (Debian package `rocksdb-tools`), its output
//! parsed into the same rows.

use std::fs;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{Config, SEEK_NEXTS, VALUE_4K};
use crate::engines::EngineKind;
use crate::report::{report_row, Row};
use crate::sys::{dir_size, proc_state, proc_status_kb, proc_write_bytes};
use crate::workloads::{Workload, MAIN_PHASE, PHASE_4K};
use crate::Res;

pub(crate) struct RocksBench {
    pub(crate) bin: PathBuf,
    pub(crate) version: Option<String>,
    pub(crate) assertions: bool,
}

pub(crate) struct ChildRun {
    pub(crate) stdout: String,
    pub(crate) write_bytes: Option<(u64, u64)>,
    pub(crate) peak_rss_kb: Option<u64>,
    pub(crate) seconds: f64,
}

/// One `Microseconds per <op>:` histogram of `db_bench --histogram=1`.
pub(crate) struct Hist {
    pub(crate) kind: String,
    pub(crate) count: u64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
}

impl RocksBench {
    /// Caveats that hold for every RocksDB row.
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut n = vec![
            "each workload is a separate db_bench process on the same directory: the block cache \
             starts cold and process start-up is not timed"
                .to_string(),
            "peak RSS is that of the db_bench process, sampled every 20 ms".into(),
            "YCSB rows are db_bench proxies with uniform keys (it has no zipfian YCSB)".into(),
        ];
        if self.assertions {
            n.push(
                "this db_bench is built with assertions on (Debian's package is), so RocksDB \
                 figures are pessimistic"
                    .into(),
            );
        }
        n
    }

    pub(crate) fn find(cfg: &Config) -> Option<RocksBench> {
        let bin = cfg.db_bench.clone().or_else(|| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join("db_bench"))
                .find(|p| p.is_file())
        })?;
        // `db_bench --version` is not universal; a tiny run in a scratch directory prints the
        // version header.
        let scratch = tempfile::tempdir().ok()?;
        let out = Command::new(&bin)
            .arg("--benchmarks=crc32c")
            .arg(format!("--db={}", scratch.path().display()))
            .arg("--num=1")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("RocksDB:")?.trim().strip_prefix("version"))
            .map(|v| v.trim().to_string());
        let assertions = text.contains("Assertions are enabled");
        Some(RocksBench { bin, version, assertions })
    }

    /// Runs `db_bench` and waits, sampling its peak RSS, and reading its `/proc/<pid>/io` once
    /// it has exited but before it is reaped, so the count includes the writes of its last
    /// moments (flush on close).
    pub(crate) fn run(&self, args: &[String], pb: &ProgressBar) -> Res<ChildRun> {
        let mut out_file = tempfile::tempfile()?;
        let start = Instant::now();
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_file.try_clone()?))
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        let pid_s = pid.to_string();
        let (mut write_bytes, mut peak) = (None, None::<u64>);
        loop {
            let state = proc_state(pid);
            if let Some(w) = proc_write_bytes(&pid_s) {
                write_bytes = Some(w);
            }
            if matches!(state, None | Some('Z')) {
                break;
            }
            if let Some(kb) = proc_status_kb(&pid_s, "VmHWM:") {
                peak = Some(peak.map_or(kb, |p| p.max(kb)));
            }
            pb.tick();
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait()?;
        let seconds = start.elapsed().as_secs_f64();
        let mut stdout = String::new();
        out_file.rewind()?;
        out_file.read_to_string(&mut stdout)?;
        if !status.success() {
            let tail: Vec<&str> = stdout.lines().rev().take(5).collect();
            return Err(format!("db_bench exited with {status}: {}", tail.join(" | ")).into());
        }
        Ok(ChildRun { stdout, write_bytes, peak_rss_kb: peak, seconds })
    }

    /// Parses the `name : X micros/op Y ops/sec Z seconds N operations;` line of `bench`.
    pub(crate) fn parse_line(stdout: &str, bench: &str) -> Option<(f64, f64, f64, u64)> {
        let line = stdout.lines().find(|l| {
            l.split_once(':').is_some_and(|(n, rest)| n.trim() == bench && rest.contains("ops/sec"))
        })?;
        let toks: Vec<&str> = line.split_once(':')?.1.split_whitespace().collect();
        let before = |unit: &str| -> Option<f64> {
            let i = toks.iter().position(|t| *t == unit)?;
            toks.get(i.checked_sub(1)?)?.parse().ok()
        };
        Some((
            before("micros/op")?,
            before("ops/sec")?,
            before("seconds")?,
            before("operations;")? as u64,
        ))
    }

    pub(crate) fn parse_histograms(stdout: &str) -> Vec<Hist> {
        let mut out = Vec::new();
        let mut kind = String::from("op");
        let mut count = 0u64;
        for line in stdout.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("Microseconds per ") {
                kind = rest.trim_end_matches(':').to_string();
            } else if let Some(rest) = line.strip_prefix("Count:") {
                count = rest.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some(rest) = line.strip_prefix("Percentiles:") {
                let toks: Vec<&str> = rest.split_whitespace().collect();
                let get = |label: &str| -> Option<f64> {
                    let i = toks.iter().position(|t| *t == label)?;
                    toks.get(i + 1)?.parse().ok()
                };
                if let (Some(p50), Some(p99), Some(p999)) =
                    (get("P50:"), get("P99:"), get("P99.9:"))
                {
                    out.push(Hist { kind: kind.clone(), count, p50, p99, p999 });
                }
            }
        }
        out
    }
}

/// The `db_bench` benchmark and extra flags standing in for one of our workloads, and a note
/// when it is only an approximation.
pub(crate) fn rocks_mapping(
    w: Workload,
    cfg: &Config,
) -> (&'static str, Vec<String>, Option<&'static str>) {
    let t = cfg.threads as u64;
    let reads = |n: u64| format!("--reads={}", (n / t).max(1));
    let writes = |n: u64| format!("--writes={}", (n / t).max(1));
    match w {
        Workload::FillSeq => ("fillseq", vec![writes(cfg.num)], None),
        // filluniquerandom runs on one thread (see rocks_threads).
        Workload::FillRandom => (
            "filluniquerandom",
            vec![format!("--writes={}", cfg.num)],
            Some("filluniquerandom: every key once, like our fillrandom"),
        ),
        Workload::Overwrite => ("overwrite", vec![writes(cfg.num)], None),
        Workload::ReadRandom => ("readrandom", vec![reads(cfg.reads)], None),
        Workload::ReadMissing => ("readmissing", vec![reads(cfg.reads)], None),
        Workload::ReadSeq => ("readseq", vec![], None),
        Workload::SeekRandom => {
            ("seekrandom", vec![reads(cfg.seeks), format!("--seek_nexts={SEEK_NEXTS}")], None)
        }
        Workload::YcsbA => (
            "readrandomwriterandom",
            vec![reads(cfg.reads), "--readwritepercent=50".into()],
            Some("proxy: readrandomwriterandom 50% reads, uniform keys"),
        ),
        Workload::YcsbB => (
            "readrandomwriterandom",
            vec![reads(cfg.reads), "--readwritepercent=95".into()],
            Some("proxy: readrandomwriterandom 95% reads, uniform keys"),
        ),
        Workload::YcsbC => {
            ("readrandom", vec![reads(cfg.reads)], Some("proxy: readrandom, uniform keys"))
        }
        Workload::YcsbF => (
            "updaterandom",
            vec![reads(cfg.reads)],
            Some("proxy: updaterandom (read-modify-write), uniform keys"),
        ),
        Workload::Fill4k => ("filluniquerandom", vec![format!("--writes={}", cfg.num4k)], None),
        Workload::Read4k => ("readrandom", vec![reads(cfg.num4k)], None),
        Workload::Seek4k => {
            ("seekrandom", vec![reads(cfg.seeks4k), format!("--seek_nexts={SEEK_NEXTS}")], None)
        }
        // Every write synced: `--sync=1` comes from run_rocksdb for these two.
        Workload::FillSync => (
            "filluniquerandom",
            vec![format!("--writes={}", cfg.sync_num)],
            Some("filluniquerandom --sync=1: every key once, one thread"),
        ),
        Workload::FillSync8 => (
            "fillrandom",
            vec![format!("--writes={}", (cfg.sync_num / 8).max(1))],
            Some(
                "fillrandom --sync=1 --threads=8, --sync-num/8 writes each: random keys of \
                 --sync-num, some written twice (filluniquerandom is single-threaded)",
            ),
        ),
        Workload::Reencrypt | Workload::Reencrypt4k | Workload::Cold => {
            unreachable!("reencrypt and cold are skipped for RocksDB")
        }
        Workload::Batch2 | Workload::Txn => unreachable!("txn and batch2 are skipped for RocksDB"),
    }
}

/// Client threads of a `db_bench` run: `--threads`, except where the `db_bench` benchmark is
/// single-threaded (filluniquerandom) or our workload is (readseq: one scan), and the synced
/// fills' own 1 and 8.
pub(crate) fn rocks_threads(w: Workload, cfg: &Config) -> usize {
    match w {
        Workload::FillSync | Workload::FillSync8 => crate::syncfill::sync_threads(w),
        Workload::FillRandom | Workload::Fill4k | Workload::ReadSeq => 1,
        _ => cfg.threads,
    }
}

pub(crate) fn run_rocksdb(rocks: &RocksBench, cfg: &Config, root: &Path, out: &mut Vec<Row>) {
    let kind = EngineKind::RocksDb;
    let sel = |w: Workload| cfg.workloads.contains(&w);
    let phases: [(&str, Workload, &[Workload]); 5] = [
        ("seq", Workload::FillSeq, &[]),
        ("main", Workload::FillRandom, &MAIN_PHASE),
        ("4k", Workload::Fill4k, &PHASE_4K),
        ("sync", Workload::FillSync, &[]),
        ("sync8", Workload::FillSync8, &[]),
    ];
    for (name, fill, then) in phases {
        if !(sel(fill) || then.iter().any(|w| sel(*w))) {
            continue;
        }
        let dir = root.join(format!("rocksdb-{name}"));
        let _ = fs::remove_dir_all(&dir);
        let large = fill == Workload::Fill4k;
        let synced = crate::syncfill::SYNC_WORKLOADS.contains(&fill);
        let (num, value_size) = if large {
            (cfg.num4k, VALUE_4K)
        } else if synced {
            (cfg.sync_num, cfg.value_size)
        } else {
            (cfg.num, cfg.value_size)
        };
        let mut base = vec![
            format!("--db={}", dir.display()),
            format!("--num={num}"),
            format!("--key_size={}", cfg.key_size),
            format!("--value_size={value_size}"),
            format!("--cache_size={}", cfg.cache_mb << 20),
            "--compression_type=lz4".into(),
            format!("--sync={}", u8::from(cfg.sync || synced)),
            "--bloom_bits=10".into(),
            "--histogram=1".into(),
            format!("--seed={}", cfg.seed),
        ];
        if large {
            base.push("--enable_blob_files=true".into());
            base.push("--min_blob_size=1024".into());
        }
        let mut fill_ok = true;
        for w in std::iter::once(fill).chain(then.iter().copied()) {
            // The fill always runs: the others need its data.
            if w != fill && !sel(w) {
                continue;
            }
            if !fill_ok {
                out.push(Row::failed(kind, w, "the fill before it failed".into()));
                continue;
            }
            let (bench, extra, note) = rocks_mapping(w, cfg);
            let mut args = base.clone();
            args.extend(extra);
            args.push(format!("--threads={}", rocks_threads(w, cfg)));
            if w.is_fill() {
                // Flush the memtable before exiting, as the other engines' finish() does.
                args.push(format!("--benchmarks={bench},flush"));
                args.push("--use_existing_db=0".into());
            } else {
                args.push(format!("--benchmarks={bench}"));
                args.push("--use_existing_db=1".into());
            }
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            pb.set_style(
                ProgressStyle::with_template("{prefix:>17} {msg:<21} {spinner} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(kind.name());
            pb.set_message(w.name());
            let result = rocks.run(&args, &pb);
            pb.finish_and_clear();
            let row = match result {
                Err(e) => Row::failed(kind, w, e.to_string()),
                Ok(run) => rocks_row(w, bench, note, &run, cfg, &dir, num, value_size),
            };
            if w.is_fill() && row.error.is_some() {
                fill_ok = false;
            }
            if sel(w) {
                report_row(&row);
                out.push(row);
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
    for w in [Workload::Reencrypt, Workload::Reencrypt4k].into_iter().filter(|w| sel(*w)) {
        let row = Row::skipped(kind, w, "needs an encrypted sealdb (a data key to rotate)");
        report_row(&row);
        out.push(row);
    }
    if sel(Workload::Cold) {
        let row = Row::skipped(kind, Workload::Cold, "needs sealdb (a cold tier)");
        report_row(&row);
        out.push(row);
    }
    crate::txn::push_skipped(kind, cfg, out);
}

pub(crate) fn rocks_row(
    w: Workload,
    bench: &str,
    note: Option<&str>,
    run: &ChildRun,
    cfg: &Config,
    dir: &Path,
    num: u64,
    value_size: usize,
) -> Row {
    let kind = EngineKind::RocksDb;
    let Some((_micros, ops_per_sec, seconds, ops)) = RocksBench::parse_line(&run.stdout, bench)
    else {
        return Row::failed(kind, w, format!("no '{bench} : ... ops/sec' line in db_bench output"));
    };
    let mut row = Row::new(kind, w);
    row.ops = ops;
    row.ops_per_sec = ops_per_sec;
    row.seconds = seconds;
    // User bytes per op, computed as for the in-process engines.
    let entry = (cfg.key_size + value_size) as f64;
    let per_op = match w {
        Workload::ReadMissing => cfg.key_size as f64,
        Workload::SeekRandom | Workload::Seek4k => entry * SEEK_NEXTS as f64,
        Workload::YcsbF => 2.0 * entry,
        _ => entry,
    };
    row.user_bytes = (per_op * ops as f64) as u64;
    row.mb_per_sec = ops_per_sec * per_op / 1_048_576.0;
    let hists = RocksBench::parse_histograms(&run.stdout);
    if let Some(h) = hists.iter().max_by_key(|h| h.count) {
        row.p50_us = Some(h.p50);
        row.p99_us = Some(h.p99);
        row.p999_us = Some(h.p999);
        if hists.len() > 1 {
            row.notes.push(format!("latency of the {} ops only (db_bench splits by op)", h.kind));
        }
    }
    row.peak_rss_mb = run.peak_rss_kb.map(|kb| kb as f64 / 1024.0);
    if let Some(n) = note {
        row.notes.push(n.into());
    }
    if cfg.threads > 1 && rocks_threads(w, cfg) == 1 && w != Workload::FillSync {
        row.notes.push("ran on 1 thread (single-threaded in db_bench or here)".into());
    }
    if w.is_fill() {
        // fillsync8's db_bench run writes 8 x (--sync-num / 8) keys, some twice.
        let writes = if w == Workload::FillSync8 { ops } else { num };
        let user = writes as f64 * entry;
        let (size, apparent) = dir_size(dir);
        row.disk_bytes = Some(size);
        row.disk_bytes_apparent = Some(apparent);
        row.space_amp = Some(size as f64 / user);
        match run.write_bytes {
            Some((w, c)) if w > 0 => {
                row.write_amp = Some(w as f64 / user);
                row.write_amp_net = Some(w.saturating_sub(c) as f64 / user);
                row.write_amp_source = Some(
                    "/proc/<db_bench pid>/io write_bytes, whole process (fill + flush)".into(),
                );
            }
            _ => {
                row.write_amp = Some(size as f64 / user);
                row.write_amp_source = Some(
                    "directory size (/proc/<pid>/io write_bytes showed 0 or was unreadable)".into(),
                );
                row.notes.push("WA from directory size (/proc shows 0): a lower bound".into());
            }
        }
        // Process time less the fill: open, flush, close.
        row.flush_seconds = Some((run.seconds - seconds).max(0.0));
    }
    row
}
