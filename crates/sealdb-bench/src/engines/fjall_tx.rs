//! fjall 3 opened for optimistic transactions (`fjall::OptimisticTxDatabase`), for the txn
//! workload: fjall's transactions need their own database type, so a plain `fjall::Database`
//! (engines/fjall.rs, which batch2 uses) cannot run them.

use std::path::Path;

use fjall::Readable as _;

use crate::config::Config;
use crate::engines::{copy_found, Engine};
use crate::txn::{Transactions, TxnOutcome};
use crate::Res;

pub(crate) struct FjallTxEngine {
    pub(crate) db: fjall::OptimisticTxDatabase,
    pub(crate) ks: fjall::OptimisticTxKeyspace,
    pub(crate) sync: bool,
}

impl FjallTxEngine {
    /// Opens with the options of [`crate::engines::fjall::FjallEngine`] (default keyspace
    /// options, values inline).
    pub(crate) fn open(dir: &Path, cfg: &Config) -> Res<FjallTxEngine> {
        let db = fjall::OptimisticTxDatabase::builder(dir).cache_size(cfg.cache_mb << 20).open()?;
        let ks = db.keyspace("bench", fjall::KeyspaceCreateOptions::default)?;
        Ok(FjallTxEngine { db, ks, sync: cfg.sync })
    }
}

impl Engine for FjallTxEngine {
    /// A put outside a transaction: on this database type fjall wraps it in a one-write
    /// transaction itself.
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
        self.ks.insert(key, value)?;
        if self.sync {
            self.db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
        Ok(copy_found(self.ks.get(key)?, out))
    }
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
        let mut count = 0;
        for guard in self.db.read_tx().range(&self.ks, start..).take(n) {
            let (k, v) = guard.into_inner()?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        // As FjallEngine::finish: seal the memtable and wait for its flush.
        AsRef::<fjall::Keyspace>::as_ref(&self.ks).rotate_memtable_and_wait()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        let FjallTxEngine { db, ks, .. } = *self;
        drop(ks);
        drop(db);
        Ok(())
    }
    fn transactions(&self) -> Option<&dyn Transactions> {
        Some(self)
    }
}

impl Transactions for FjallTxEngine {
    fn transact(&self, reads: &[&[u8]], puts: &[(&[u8], &[u8])]) -> Res<TxnOutcome> {
        let mut tx = self.db.write_tx()?;
        let (mut found, mut bytes) = (0, 0);
        for k in reads {
            if let Some(v) = tx.get(&self.ks, k)? {
                found += 1;
                bytes += v.len();
            }
        }
        for (k, v) in puts {
            tx.insert(&self.ks, *k, *v);
        }
        match tx.commit()? {
            Ok(()) => {
                if self.sync {
                    self.db.persist(fjall::PersistMode::SyncData)?;
                }
                Ok(TxnOutcome::Committed { found, bytes })
            }
            Err(fjall::Conflict) => Ok(TxnOutcome::Conflict),
        }
    }
}
