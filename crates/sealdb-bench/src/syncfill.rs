//! The synced fill workloads: what a durable write costs.
//!
//! - **fillsync**: a fresh database opened as `--sync` opens it (sealdb `sync_writes(true)`,
//!   so a put returns only after its commit group's fsync; fjall `persist(SyncData)` after each
//!   write; `SQLCipher` `synchronous=FULL`), then `--sync-num` keys of `--value-size` bytes put
//!   once each in shuffled order from one client thread, then `finish()`.
//! - **fillsync8**: the same from 8 client threads at once, so that an engine which shares one
//!   fsync among concurrent commits (sealdb's group commit) shows it.
//!
//! Both ignore `--sync` and `--threads`: they always sync, on 1 and 8 threads, so one run can
//! report them beside the unsynced workloads. Engines without a journal to sync skip them, with
//! a reason in their rows.

use std::fs;
use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::config::Config;
use crate::engines::EngineKind;
use crate::report::Row;
use crate::run::{finish_row, run_fill, run_fresh_phases};
use crate::sys::rss_mark;
use crate::workloads::{ValueSource, Workload};
use crate::Res;

/// The synced fill workloads, in the order they run.
pub(crate) const SYNC_WORKLOADS: [Workload; 2] = [Workload::FillSync, Workload::FillSync8];

/// Client threads of a synced fill workload: 8 for fillsync8, else 1.
pub(crate) fn sync_threads(w: Workload) -> usize {
    if w == Workload::FillSync8 {
        8
    } else {
        1
    }
}

/// The configuration `w` runs under: `cfg` with every write synced and `w`'s client threads.
pub(crate) fn sync_config(cfg: &Config, w: Workload) -> Config {
    Config { sync: true, threads: sync_threads(w), ..cfg.clone() }
}

/// Why `kind` does not run the synced fills, or None where it does.
pub(crate) fn skip_reason(kind: EngineKind) -> Option<&'static str> {
    (kind == EngineKind::Coordinode).then_some(
        "coordinode-lsm-tree has no journal: a put reaches no file until its memtable is \
         flushed, so there is no write to sync",
    )
}

/// Runs the selected synced fills against one in-process engine, each on a fresh database in
/// `root`; one row per workload.
pub(crate) fn run_sync_phases(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    out: &mut Vec<Row>,
) {
    let phase = |dir: &Path, w| run_sync_phase(kind, cfg, dir, values, w);
    run_fresh_phases(kind, cfg, root, out, &SYNC_WORKLOADS, |_| skip_reason(kind), phase);
}

/// Opens `kind` in `dir` with every write synced and times the synced fill `w`.
pub(crate) fn run_sync_phase(
    kind: EngineKind,
    cfg: &Config,
    dir: &Path,
    values: &ValueSource,
    w: Workload,
) -> Res<Row> {
    fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let cfg = sync_config(cfg, w);
    let engine = kind
        .open(dir, &cfg, false)
        .ok_or_else(|| format!("{} is not in-process", kind.name()))??;
    let mut order: Vec<u64> = (0..cfg.sync_num).collect();
    order.shuffle(&mut StdRng::seed_from_u64(cfg.seed + 8));
    let mark = rss_mark();
    let row = run_fill(
        engine.as_ref(),
        &cfg,
        kind,
        w,
        dir,
        Some(&order),
        cfg.sync_num,
        cfg.value_size,
        values,
    )?;
    engine.close()?;
    Ok(finish_row(row, mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_fills_put_every_key_on_their_own_threads() {
        let dir = tempfile::tempdir().unwrap();
        let values = ValueSource::new(7);
        let args = ["--num", "100", "--sync-num", "60", "--threads", "3"].map(String::from);
        let cfg = crate::config::parse_from(args.into_iter()).unwrap();
        assert!(!cfg.sync, "the synced fills do not need --sync");
        for kind in [EngineKind::SealPlain, EngineKind::Fjall] {
            for w in SYNC_WORKLOADS {
                assert!(skip_reason(kind).is_none());
                let sub = dir.path().join(format!("{}-{}", kind.name(), w.name()));
                let row = run_sync_phase(kind, &cfg, &sub, &values, w).unwrap();
                assert!(row.ok(), "{:?}", row.error);
                assert_eq!(row.workload, w.name());
                assert_eq!(row.ops, 60, "{} {}", kind.name(), w.name());
                assert_eq!(row.user_bytes, 60 * (16 + 100));
                assert!(row.p99_us.is_some());
            }
        }
        let sync8 = sync_config(&cfg, Workload::FillSync8);
        assert!(sync8.sync);
        assert_eq!((sync8.threads, sync_config(&cfg, Workload::FillSync).threads), (8, 1));
        assert!(skip_reason(EngineKind::Coordinode).is_some());
    }

    #[test]
    fn rocksdb_runs_the_synced_fills_on_1_and_8_threads() {
        use crate::engines::rocksdb::{rocks_mapping, rocks_threads};
        let args = ["--sync-num", "3k", "--threads", "2"].map(String::from);
        let cfg = crate::config::parse_from(args.into_iter()).unwrap();
        assert_eq!(cfg.sync_num, 3000);
        let (bench, extra, _) = rocks_mapping(Workload::FillSync, &cfg);
        assert_eq!(
            (bench, extra, rocks_threads(Workload::FillSync, &cfg)),
            ("filluniquerandom", vec!["--writes=3000".to_string()], 1)
        );
        let (bench, extra, _) = rocks_mapping(Workload::FillSync8, &cfg);
        assert_eq!(
            (bench, extra, rocks_threads(Workload::FillSync8, &cfg)),
            ("fillrandom", vec!["--writes=375".to_string()], 8)
        );
    }
}
