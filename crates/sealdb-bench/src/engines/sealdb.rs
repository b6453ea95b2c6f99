//! sealdb itself, under each of its configurations (see `EngineKind::seal_options`).

use crate::engines::{copy_found, Engine};
use crate::txn::{Batches, Transactions, TxnOutcome};
use crate::Res;

pub(crate) struct SealEngine {
    pub(crate) db: sealdb::DB,
}

impl Engine for SealEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
        Ok(self.db.put(key, value)?)
    }
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
        Ok(copy_found(self.db.get(key)?, out))
    }
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
        let mut count = 0;
        for item in self.db.range(start..).take(n) {
            let (k, v) = item?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        self.db.flush()?;
        self.db.sync()?;
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        Ok(self.db.close()?)
    }
    fn sealdb(&self) -> Option<&sealdb::DB> {
        Some(&self.db)
    }
    fn batches(&self) -> Option<&dyn Batches> {
        Some(self)
    }
    fn transactions(&self) -> Option<&dyn Transactions> {
        Some(self)
    }
}

impl Batches for SealEngine {
    fn write_batch(&self, pairs: &[(&[u8], &[u8])]) -> Res<()> {
        let mut batch = sealdb::WriteBatch::new();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        Ok(self.db.write(batch)?)
    }
}

impl Transactions for SealEngine {
    fn transact(&self, reads: &[&[u8]], puts: &[(&[u8], &[u8])]) -> Res<TxnOutcome> {
        let mut tx = self.db.transaction();
        let (mut found, mut bytes) = (0, 0);
        for k in reads {
            if let Some(v) = tx.get(k)? {
                found += 1;
                bytes += v.len();
            }
        }
        for (k, v) in puts {
            tx.put(k, v);
        }
        match tx.commit() {
            Ok(()) => Ok(TxnOutcome::Committed { found, bytes }),
            Err(sealdb::Error::Conflict) => Ok(TxnOutcome::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}
