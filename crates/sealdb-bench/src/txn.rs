//! The transaction workloads and their summary.
//!
//! - **txn**: begin a transaction, get 2 random existing keys, put both, commit; a commit that
//!   fails with a conflict is retried from the start (counted). sealdb runs `DB::transaction`,
//!   fjall its optimistic transactions (`fjall::OptimisticTxDatabase`).
//! - **batch2**: the same work without a transaction, txn's baseline: get the 2 keys, then put
//!   both in one atomic write batch (sealdb `DB::write`, fjall `Database::batch`).
//!
//! Each runs on a fresh database of its own, loaded like fillrandom (`--num` keys, shuffled,
//! then flushed), so both start from the same state; keys are uniform over the loaded ones and
//! distinct within an operation. With `--threads N` the clients share the database: conflicts
//! are possible but rare (uniform keys), which is the uncontended case the workloads measure.
//! Engines without transactions skip both, with a reason in their rows.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::config::Config;
use crate::engines::fjall_tx::FjallTxEngine;
use crate::engines::{Engine, EngineKind};
use crate::report::{fmt_int, fmt_opt, median, Row};
use crate::run::{
    finish_row, progress_bar, push_skipped_row, run_fill, run_fresh_phases, run_parallel, Client,
};
use crate::sys::rss_mark;
use crate::workloads::{make_key, ValueSource, Workload};
use crate::Res;

/// The transaction workloads, in the order they run.
pub(crate) const TXN_WORKLOADS: [Workload; 2] = [Workload::Batch2, Workload::Txn];

/// sealdb's target for txn ops/s over batch2 ops/s (issue 17).
pub(crate) const TXN_TARGET_RATIO: f64 = 0.7;

/// Attempts of one txn operation before the run fails: uniform keys make a conflict rare, so
/// this many in a row means something is wrong.
const MAX_ATTEMPTS: u64 = 1000;

/// Atomic multi-key writes without a transaction (the batch2 workload).
pub(crate) trait Batches: Sync {
    /// Puts every pair atomically, as one write batch.
    fn write_batch(&self, pairs: &[(&[u8], &[u8])]) -> Res<()>;
}

/// Optimistic transactions (the txn workload).
pub(crate) trait Transactions: Sync {
    /// One attempt: begins a transaction, gets each of `reads`, puts `puts`, commits.
    fn transact(&self, reads: &[&[u8]], puts: &[(&[u8], &[u8])]) -> Res<TxnOutcome>;
}

/// What one transaction attempt did.
pub(crate) enum TxnOutcome {
    /// Committed; `found` of the reads found their key, with `bytes` value bytes in all.
    Committed { found: usize, bytes: usize },
    /// The commit failed with a conflict and wrote nothing.
    Conflict,
}

/// Why `kind` does not run `w`, or None where it does.
pub(crate) fn skip_reason(kind: EngineKind, w: Workload) -> Option<&'static str> {
    match (kind, w) {
        (
            EngineKind::SealAes
            | EngineKind::SealAesTiered
            | EngineKind::SealAesInline
            | EngineKind::SealChaCha
            | EngineKind::SealPlain
            | EngineKind::Fjall,
            _,
        ) => None,
        (EngineKind::RocksDb, _) => Some(
            "RocksDB runs as the system db_bench, which has no read-2-write-2 transaction \
             benchmark to match (TransactionDB is not reachable from this harness)",
        ),
        (EngineKind::Coordinode, Workload::Txn) => {
            Some("coordinode-lsm-tree is a bare LSM tree: it has no transactions")
        }
        (EngineKind::SqlCipher, Workload::Txn) => Some(
            "not wired: SQLite transactions are pessimistic (one writer at a time), not \
             optimistic ones",
        ),
        (EngineKind::Coordinode | EngineKind::SqlCipher, _) => {
            Some("batch2 is txn's baseline and runs only on the engines that run txn")
        }
    }
}

/// Pushes (and prints) a skipped row for every selected transaction workload `kind` does not
/// run.
pub(crate) fn push_skipped(kind: EngineKind, cfg: &Config, out: &mut Vec<Row>) {
    for w in TXN_WORKLOADS.into_iter().filter(|w| cfg.workloads.contains(w)) {
        if let Some(why) = skip_reason(kind, w) {
            push_skipped_row(kind, w, why, out);
        }
    }
}

/// Runs the selected transaction workloads against one in-process engine, each on a fresh
/// database in `root`; one row per workload.
pub(crate) fn run_txn_phases(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    out: &mut Vec<Row>,
) {
    let phase = |dir: &Path, w| run_txn_phase(kind, cfg, dir, values, w);
    run_fresh_phases(kind, cfg, root, out, &TXN_WORKLOADS, |w| skip_reason(kind, w), phase);
}

/// Opens `kind` for `w`: fjall's transactions need `fjall::OptimisticTxDatabase`; every other
/// case opens the engine as the other workloads do.
fn open_for(kind: EngineKind, dir: &Path, cfg: &Config, w: Workload) -> Res<Box<dyn Engine>> {
    if kind == EngineKind::Fjall && w == Workload::Txn {
        return Ok(Box::new(FjallTxEngine::open(dir, cfg)?));
    }
    kind.open(dir, cfg, false).ok_or_else(|| format!("{} is not in-process", kind.name()))?
}

fn run_txn_phase(
    kind: EngineKind,
    cfg: &Config,
    dir: &Path,
    values: &ValueSource,
    w: Workload,
) -> Res<Row> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let engine = open_for(kind, dir, cfg, w)?;
    // Loaded as fillrandom loads the main database: the same keys in the same order.
    let mut order: Vec<u64> = (0..cfg.num).collect();
    order.shuffle(&mut StdRng::seed_from_u64(cfg.seed));
    run_fill(
        engine.as_ref(),
        cfg,
        kind,
        Workload::FillRandom,
        dir,
        Some(&order),
        cfg.num,
        cfg.value_size,
        values,
    )?;
    drop(order);
    let mark = rss_mark();
    let row = run_txn_workload(engine.as_ref(), cfg, kind, w, values)?;
    engine.close()?;
    Ok(finish_row(row, mark))
}

/// The per-thread state: [`Client`] and a second key buffer.
struct TxnClient {
    c: Client,
    key2: Vec<u8>,
}

/// Times `cfg.reads` operations of `w` (batch2 or txn) on a loaded engine.
pub(crate) fn run_txn_workload(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    w: Workload,
    values: &ValueSource,
) -> Res<Row> {
    let batches = if w == Workload::Batch2 {
        Some(engine.batches().ok_or("the engine has no write batches")?)
    } else {
        None
    };
    let txns = if w == Workload::Txn {
        Some(engine.transactions().ok_or("the engine was opened without transactions")?)
    } else {
        None
    };
    let (n, vs, ks) = (cfg.num, cfg.value_size, cfg.key_size);
    let conflicts = AtomicU64::new(0);
    let pb = progress_bar(cfg.reads, kind, w.name());
    let stats = run_parallel(
        cfg.threads,
        cfg.reads,
        &pb,
        |t| TxnClient { c: Client::new(cfg, values, w as u64, t), key2: Vec::new() },
        |tc, _| {
            let a = tc.c.rng.gen_range(0..n);
            let mut b = tc.c.rng.gen_range(0..n);
            while n > 1 && b == a {
                b = tc.c.rng.gen_range(0..n);
            }
            make_key(&mut tc.c.key, ks, a, false);
            make_key(&mut tc.key2, ks, b, false);
            let (v1, v2) = tc.c.values.next(2 * vs).split_at(vs);
            let puts: [(&[u8], &[u8]); 2] = [(&tc.c.key, v1), (&tc.key2, v2)];
            let (found, bytes) = if let Some(batches) = batches {
                let (mut found, mut bytes) = (0, 0);
                for k in [&tc.c.key, &tc.key2] {
                    if engine.get(k, &mut tc.c.buf)? {
                        found += 1;
                        bytes += tc.c.buf.len();
                    }
                }
                batches.write_batch(&puts)?;
                (found, bytes)
            } else {
                let txns = txns.ok_or("no transactions")?;
                let reads: [&[u8]; 2] = [&tc.c.key, &tc.key2];
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match txns.transact(&reads, &puts)? {
                        TxnOutcome::Committed { found, bytes } => break (found, bytes),
                        TxnOutcome::Conflict if attempts < MAX_ATTEMPTS => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        TxnOutcome::Conflict => {
                            return Err(format!("{attempts} conflicts in a row").into())
                        }
                    }
                }
            };
            Ok(((2 * ks + bytes + 2 * (ks + vs)) as u64, found == 2))
        },
    )?;
    pb.finish_and_clear();
    let mut row = Row::new(kind, w);
    let (ops, found) = (stats.ops, stats.found);
    stats.fill_row(&mut row);
    row.found = Some(found);
    if found != ops {
        row.notes.push(format!("WARNING: only {found} of {ops} operations found both keys"));
    }
    if w == Workload::Txn {
        let c = conflicts.load(Ordering::Relaxed);
        row.conflicts = Some(c);
        if c > 0 {
            row.notes.push(format!("{c} commits failed with a conflict and were retried"));
        }
    }
    Ok(row)
}

/// One engine's transaction figures: medians over the rounds.
struct Summary {
    engine: String,
    batch2: Option<f64>,
    txn: Option<f64>,
    /// Conflicts retried, summed over the rounds, and the txn operations they belong to.
    conflicts: Option<(u64, u64)>,
}

fn summaries(rows: &[Row]) -> Vec<Summary> {
    let mut engines: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.ok()) {
        let tx = TXN_WORKLOADS.iter().any(|w| w.name() == r.workload);
        if tx && !engines.contains(&r.engine.as_str()) {
            engines.push(&r.engine);
        }
    }
    let of = |engine: &str, w: Workload| -> Vec<&Row> {
        rows.iter().filter(|r| r.engine == engine && r.workload == w.name() && r.ok()).collect()
    };
    engines
        .into_iter()
        .map(|e| {
            let ops = |w| median(of(e, w).iter().map(|r| r.ops_per_sec).collect());
            let txn_rows = of(e, Workload::Txn);
            let conflicts = (!txn_rows.is_empty()).then(|| {
                (
                    txn_rows.iter().filter_map(|r| r.conflicts).sum(),
                    txn_rows.iter().map(|r| r.ops).sum(),
                )
            });
            Summary {
                engine: e.to_string(),
                batch2: ops(Workload::Batch2),
                txn: ops(Workload::Txn),
                conflicts,
            }
        })
        .collect()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Whether `engine` is one of sealdb's (the engines the txn/batch2 target applies to).
fn is_sealdb(engine: &str) -> bool {
    engine.starts_with("sealdb")
}

/// The transaction summary table (None when no transaction workload ran): per engine, the
/// median ops/s of batch2 and txn, their ratio against sealdb's target, txn against fjall's
/// transactions, and the conflicts retried.
pub(crate) fn print_txn_summary(rows: &[Row]) -> Option<String> {
    use std::fmt::Write as _;
    let sums = summaries(rows);
    if sums.is_empty() {
        return None;
    }
    let fjall_txn = sums.iter().find(|s| s.engine == "fjall").and_then(|s| s.txn);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Transactions (txn: read 2 keys, write 2, commit; batch2: the same in a write batch; \
         medians over the rounds)"
    );
    let _ = writeln!(
        s,
        "{:<17} {:>12} {:>12} {:>11} {:>6} {:>15} {:>10}",
        "engine",
        "batch2 ops/s",
        "txn ops/s",
        "txn/batch2",
        format!(">={TXN_TARGET_RATIO:.2}"),
        "txn/fjall txn",
        "conflicts"
    );
    let _ = writeln!(s, "{}", "-".repeat(89));
    for m in &sums {
        let tb = ratio(m.txn, m.batch2);
        let target = match tb {
            Some(r) if is_sealdb(&m.engine) => {
                if r >= TXN_TARGET_RATIO {
                    "yes"
                } else {
                    "NO"
                }
            }
            _ => "-",
        };
        let _ = writeln!(
            s,
            "{:<17} {:>12} {:>12} {:>11} {:>6} {:>15} {:>10}",
            m.engine,
            m.batch2.map_or_else(|| "-".into(), fmt_int),
            m.txn.map_or_else(|| "-".into(), fmt_int),
            fmt_opt(tb, 2),
            target,
            fmt_opt(ratio(m.txn, fjall_txn), 2),
            m.conflicts.map_or_else(|| "-".into(), |(c, ops)| format!("{c}/{ops}")),
        );
    }
    let _ = writeln!(
        s,
        "{TXN_TARGET_RATIO:.2} is sealdb's target for txn/batch2. conflicts: commits retried \
         after a conflict / txn operations, summed over the rounds."
    );
    Some(s)
}

/// The transaction summary for the JSON results.
pub(crate) fn txn_summary_json(rows: &[Row]) -> Value {
    let sums = summaries(rows);
    let fjall_txn = sums.iter().find(|s| s.engine == "fjall").and_then(|s| s.txn);
    Value::Array(
        sums.iter()
            .map(|m| {
                json!({
                    "engine": m.engine,
                    "batch2_ops_per_sec": m.batch2,
                    "txn_ops_per_sec": m.txn,
                    "txn_over_batch2": ratio(m.txn, m.batch2),
                    "target_txn_over_batch2": is_sealdb(&m.engine).then_some(TXN_TARGET_RATIO),
                    "txn_over_fjall_txn": ratio(m.txn, fjall_txn),
                    "conflicts_retried": m.conflicts.map(|c| c.0),
                    "txn_ops": m.conflicts.map(|c| c.1),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(engine: EngineKind, w: Workload, ops_per_sec: f64, conflicts: Option<u64>) -> Row {
        Row { ops: 100, ops_per_sec, conflicts, ..Row::new(engine, w) }
    }

    #[test]
    fn summary_takes_medians_and_ratios_per_engine() {
        let rows = vec![
            row(EngineKind::SealAes, Workload::Batch2, 1000.0, None),
            row(EngineKind::SealAes, Workload::Txn, 600.0, Some(1)),
            row(EngineKind::SealAes, Workload::Batch2, 3000.0, None),
            row(EngineKind::SealAes, Workload::Txn, 900.0, Some(2)),
            row(EngineKind::SealAes, Workload::Batch2, 2000.0, None),
            row(EngineKind::SealAes, Workload::Txn, 1500.0, Some(0)),
            row(EngineKind::Fjall, Workload::Txn, 450.0, Some(0)),
            Row::skipped(EngineKind::RocksDb, Workload::Txn, "no"),
        ];
        let sums = summaries(&rows);
        assert_eq!(sums.len(), 2, "the skipped engine has no summary");
        assert_eq!(sums[0].engine, "sealdb-aes");
        assert_eq!(sums[0].batch2, Some(2000.0));
        assert_eq!(sums[0].txn, Some(900.0));
        assert_eq!(sums[0].conflicts, Some((3, 300)));
        assert_eq!(sums[1].batch2, None);
        let json = txn_summary_json(&rows);
        assert_eq!(json[0]["txn_over_batch2"], json!(0.45));
        assert_eq!(json[0]["txn_over_fjall_txn"], json!(2.0));
        assert_eq!(json[1]["target_txn_over_batch2"], Value::Null);
        let table = print_txn_summary(&rows).unwrap();
        let line = table.lines().find(|l| l.starts_with("sealdb-aes")).unwrap();
        assert!(line.contains(" NO "), "0.45 misses the target: {line}");
    }

    #[test]
    fn engines_without_transactions_skip_both_workloads_with_a_reason() {
        for w in TXN_WORKLOADS {
            assert!(skip_reason(EngineKind::SealAes, w).is_none());
            assert!(skip_reason(EngineKind::Fjall, w).is_none());
            for kind in [EngineKind::RocksDb, EngineKind::Coordinode, EngineKind::SqlCipher] {
                assert!(skip_reason(kind, w).is_some(), "{} {}", kind.name(), w.name());
            }
        }
        assert_eq!(print_txn_summary(&[]), None);
    }

    #[test]
    fn txn_and_batch2_do_the_same_work_and_txn_commits_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let values = ValueSource::new(7);
        let args = ["--num", "200", "--reads", "300"].map(String::from);
        let cfg = crate::config::parse_from(args.into_iter()).unwrap();
        for (kind, w) in [
            (EngineKind::SealAes, Workload::Batch2),
            (EngineKind::SealAes, Workload::Txn),
            (EngineKind::Fjall, Workload::Batch2),
            (EngineKind::Fjall, Workload::Txn),
        ] {
            let sub = dir.path().join(format!("{}-{}", kind.name(), w.name()));
            let row = run_txn_phase(kind, &cfg, &sub, &values, w).unwrap();
            assert!(row.ok(), "{:?}", row.error);
            assert_eq!(row.ops, 300);
            assert_eq!(
                row.found,
                Some(300),
                "{} {}: every read finds its key",
                kind.name(),
                w.name()
            );
            // Two reads of key + value and two puts of key + value per operation.
            assert_eq!(row.user_bytes, 300 * 4 * (16 + 100) as u64);
            assert_eq!(row.conflicts, (w == Workload::Txn).then_some(0), "single client: none");
        }
    }

    #[test]
    fn txn_with_threads_commits_every_operation() {
        // 4 clients over 8 keys: conflicts are likely; every operation still commits once.
        let dir = tempfile::tempdir().unwrap();
        let values = ValueSource::new(7);
        let args = ["--num", "8", "--reads", "400", "--threads", "4"].map(String::from);
        let cfg = crate::config::parse_from(args.into_iter()).unwrap();
        for kind in [EngineKind::SealPlain, EngineKind::Fjall] {
            let sub = dir.path().join(kind.name());
            let row = run_txn_phase(kind, &cfg, &sub, &values, Workload::Txn).unwrap();
            assert_eq!((row.ops, row.found), (400, Some(400)), "{}", kind.name());
            let c = row.conflicts.unwrap();
            assert_eq!(c > 0, row.notes.iter().any(|n| n.contains("retried")), "{}", kind.name());
        }
    }
}
