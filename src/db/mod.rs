//! The database facade.
use std::ops::RangeBounds;

use crate::batch::WriteBatch;
use crate::error::Result;
use crate::options::{Cipher, Options};

/// An open database. `Send + Sync`; share it with `Arc<DB>`.
pub struct DB {}

/// An ascending iterator over key-value pairs.
pub struct Iter {}

impl Iterator for Iter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;
    fn next(&mut self) -> Option<Self::Item> {
        todo!()
    }
}

/// A frozen view of the database.
pub struct Snapshot {}

/// The encryption state of a database.
#[derive(Debug, Clone)]
pub struct EncryptionStatus {
    /// The id of the data key that seals new files.
    pub current_key_id: u32,
    /// The cipher for new blocks.
    pub cipher: Cipher,
    /// Every data key still in the registry.
    pub keys: Vec<DataKeyInfo>,
}

/// One data key.
#[derive(Debug, Clone)]
pub struct DataKeyInfo {
    /// Its id.
    pub id: u32,
    /// Bytes of live files sealed under it.
    pub live_bytes: u64,
    /// Live files sealed under it.
    pub live_files: u64,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: u64,
}

impl DB {
    /// Opens (creating if missing) the database.
    pub fn open(options: Options) -> Result<DB> { let _ = options; todo!() }
    /// Stores `value` under `key`.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> { let _ = (key, value); todo!() }
    /// Reads `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> { let _ = key; todo!() }
    /// Deletes `key`.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> { let _ = key; todo!() }
    /// Applies a batch atomically.
    pub fn write(&self, batch: WriteBatch) -> Result<()> { let _ = batch; todo!() }
    /// Makes every write that returned before durable.
    pub fn sync(&self) -> Result<()> { todo!() }
    /// Iterates all keys.
    pub fn iter(&self) -> Iter { todo!() }
    /// Iterates a range.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter { let _ = range; todo!() }
    /// Iterates keys with a prefix.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter { let _ = prefix; todo!() }
    /// A frozen view.
    pub fn snapshot(&self) -> Snapshot { todo!() }
    /// Flushes the memtable.
    pub fn flush(&self) -> Result<()> { todo!() }
    /// Full compaction.
    pub fn compact(&self) -> Result<()> { todo!() }
    /// Closes.
    pub fn close(self) -> Result<()> { todo!() }
    /// Encryption status.
    pub fn encryption_status(&self) -> Option<EncryptionStatus> { todo!() }
}

impl Snapshot {
    /// Reads `key` as of the snapshot.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> { let _ = key; todo!() }
    /// Iterates all keys.
    pub fn iter(&self) -> Iter { todo!() }
    /// Iterates a range.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter { let _ = range; todo!() }
    /// Iterates keys with a prefix.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter { let _ = prefix; todo!() }
}
