//! fjall 3: the unencrypted LSM-tree peer.

use std::path::Path;

use crate::config::Config;
use crate::engines::{copy_found, Engine};
use crate::txn::Batches;
use crate::Res;

pub(crate) struct FjallEngine {
    pub(crate) db: fjall::Database,
    pub(crate) ks: fjall::Keyspace,
    pub(crate) sync: bool,
}

impl FjallEngine {
    pub(crate) fn open(dir: &Path, cfg: &Config, large_values: bool) -> Res<FjallEngine> {
        let db = fjall::Database::builder(dir).cache_size(cfg.cache_mb << 20).open()?;
        let ks = db.keyspace("bench", || {
            let opts = fjall::KeyspaceCreateOptions::default();
            if large_values {
                opts.with_kv_separation(Some(fjall::KvSeparationOptions::default()))
            } else {
                opts
            }
        })?;
        Ok(FjallEngine { db, ks, sync: cfg.sync })
    }
}

impl Engine for FjallEngine {
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
        for guard in self.ks.range(start..).take(n) {
            let (k, v) = guard.into_inner()?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        // fjall has no public "flush memtable" call; this doc(hidden) one is what its own tests
        // use: it seals the memtable and waits for the flush.
        self.ks.rotate_memtable_and_wait()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        let FjallEngine { db, ks, .. } = *self;
        drop(ks);
        drop(db);
        Ok(())
    }
    fn batches(&self) -> Option<&dyn Batches> {
        Some(self)
    }
}

impl Batches for FjallEngine {
    fn write_batch(&self, pairs: &[(&[u8], &[u8])]) -> Res<()> {
        let mut batch = self.db.batch();
        for (k, v) in pairs {
            batch.insert(&self.ks, *k, *v);
        }
        batch.commit()?;
        if self.sync {
            self.db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }
}
