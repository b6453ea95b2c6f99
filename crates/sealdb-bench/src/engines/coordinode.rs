//! coordinode-lsm-tree (`--features peers`): a fork of fjall's lsm-tree that seals its blocks
//! with AES-256-GCM.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use lsm_tree::AbstractTree as _;

use super::{copy_found, random_key, Config, Engine, Res};

/// The memtable size at which a coordinode writer seals it and hands it to the maintenance
/// thread: sealdb's (`Options::memtable_size`, 32 MiB).
const COORDINODE_MEMTABLE: u64 = 32 << 20;
/// Sealed memtables (waiting for their flush) at which coordinode writers stall, and L0 runs
/// at which they slow down: fjall's thresholds over the same lsm-tree.
const COORDINODE_MAX_SEALED: usize = 4;
const COORDINODE_L0_STALL: usize = 20;

/// What the coordinode maintenance thread and the writers share.
#[derive(Default)]
struct Maintenance {
    /// (work requested, stop requested).
    state: Mutex<(bool, bool)>,
    wake: Condvar,
    /// The first error of a background flush or compaction; writers return it.
    error: Mutex<Option<String>>,
}

impl Maintenance {
    fn signal(&self, stop: bool) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.0 = true;
        s.1 |= stop;
        self.wake.notify_one();
    }

    fn check(&self) -> Res<()> {
        match &*self.error.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(e) => Err(format!("coordinode background work failed: {e}").into()),
            None => Ok(()),
        }
    }
}

/// coordinode-lsm-tree: a bare LSM tree (no journal, no background threads of its own), so
/// this engine does what fjall's keyspace does around the same tree: seals the memtable at
/// a size, flushes sealed memtables and runs leveled compaction on a maintenance thread,
/// and stalls writers when flushes fall behind.
pub(super) struct CoordinodeEngine {
    tree: lsm_tree::AnyTree,
    seqno: lsm_tree::SequenceNumberCounter,
    maint: Arc<Maintenance>,
    worker: Option<JoinHandle<()>>,
}

impl CoordinodeEngine {
    pub(super) fn open(dir: &Path, cfg: &Config) -> Res<CoordinodeEngine> {
        let seqno = lsm_tree::SequenceNumberCounter::default();
        let provider = lsm_tree::Aes256GcmProvider::new(&random_key()?);
        let tree =
            lsm_tree::Config::new(dir, seqno.clone(), lsm_tree::SequenceNumberCounter::default())
                .use_cache(Arc::new(lsm_tree::Cache::with_capacity_bytes(cfg.cache_mb << 20)))
                .data_block_compression_policy(lsm_tree::config::CompressionPolicy::all(
                    lsm_tree::CompressionType::Lz4,
                ))
                .with_encryption(Some(Arc::new(provider)))
                .open()?;
        let maint = Arc::new(Maintenance::default());
        let worker = {
            let (tree, seqno, maint) = (tree.clone(), seqno.clone(), Arc::clone(&maint));
            std::thread::Builder::new()
                .name("coordinode-maint".into())
                .spawn(move || coordinode_maintenance(&tree, &seqno, &maint))?
        };
        Ok(CoordinodeEngine { tree, seqno, maint, worker: Some(worker) })
    }

    fn stop_worker(&mut self) {
        self.maint.signal(true);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The maintenance thread: flushes sealed memtables, then compacts (leveled, the default
/// strategy, as fjall's) until there is nothing to do or a memtable waits, then sleeps until
/// a writer seals one (or 100 ms, for compactions that became due).
fn coordinode_maintenance(
    tree: &lsm_tree::AnyTree,
    seqno: &lsm_tree::SequenceNumberCounter,
    maint: &Maintenance,
) {
    let strategy: Arc<dyn lsm_tree::compaction::CompactionStrategy> =
        Arc::new(lsm_tree::compaction::Leveled::default());
    loop {
        let stop = {
            let mut s = maint.state.lock().unwrap_or_else(PoisonError::into_inner);
            if !s.0 && !s.1 {
                s = maint
                    .wake
                    .wait_timeout(s, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            s.0 = false;
            s.1
        };
        if stop {
            return;
        }
        let work = || -> lsm_tree::Result<()> {
            // No snapshots are ever taken, so every version below the next sequence number
            // that a newer one shadows is garbage.
            if tree.sealed_memtable_count() > 0 {
                let lock = tree.get_flush_lock();
                tree.flush(&lock, seqno.get())?;
            }
            while tree.sealed_memtable_count() == 0 {
                let done = tree.compact(Arc::clone(&strategy), seqno.get())?;
                if done.action == lsm_tree::compaction::CompactionAction::Nothing {
                    break;
                }
            }
            Ok(())
        };
        if let Err(e) = work() {
            let mut err = maint.error.lock().unwrap_or_else(PoisonError::into_inner);
            err.get_or_insert_with(|| e.to_string());
            return;
        }
    }
}

impl Engine for CoordinodeEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
        let (_, memtable) = self.tree.insert(key, value, self.seqno.next());
        if memtable > COORDINODE_MEMTABLE && self.tree.rotate_memtable().is_some() {
            self.maint.signal(false);
            // Backpressure on the writer that sealed the memtable, as fjall applies it.
            while self.tree.sealed_memtable_count() >= COORDINODE_MAX_SEALED
                || self.tree.l0_run_count() >= COORDINODE_L0_STALL
            {
                self.maint.check()?;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
        Ok(copy_found(self.tree.get(key, lsm_tree::SeqNo::MAX)?, out))
    }
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
        use lsm_tree::Guard as _;
        let mut count = 0;
        for guard in self.tree.range(start.., lsm_tree::SeqNo::MAX, None).take(n) {
            let (k, v) = guard.into_inner()?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        self.maint.check()?;
        // Seals the active memtable and flushes it with every sealed one (waiting for a
        // flush the maintenance thread has begun); the default FlushDurability::Synced
        // fsyncs the tables and the manifest before it returns.
        self.tree.flush_active_memtable(self.seqno.get())?;
        Ok(())
    }
    fn close(mut self: Box<Self>) -> Res<()> {
        self.stop_worker();
        self.maint.check()?;
        let tree = self.tree.clone();
        drop(self);
        // Waits until nothing of the tree touches its directory any more.
        tree.close().wait();
        Ok(())
    }
}

impl Drop for CoordinodeEngine {
    fn drop(&mut self) {
        self.stop_worker();
    }
}
