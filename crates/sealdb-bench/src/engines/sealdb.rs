//! sealdb itself, under each of its configurations (see `EngineKind::seal_options`).

use crate::engines::{copy_found, Engine};
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
}
