//! Atomic write batches.

use crate::vlog::Pointer;

/// What an entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Put,
    Delete,
    /// Value-log GC: store the value again, only if the key still points at `Pointer`.
    Rewrite(Pointer),
}

/// A group of puts and deletes applied atomically, also across a crash.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: Vec<(OpKind, Vec<u8>, Vec<u8>)>,
    pub(crate) bytes: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }
    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (k, v) = (key.as_ref().to_vec(), value.as_ref().to_vec());
        self.bytes += k.len() + v.len();
        self.ops.push((OpKind::Put, k, v));
    }
    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        let k = key.as_ref().to_vec();
        self.bytes += k.len();
        self.ops.push((OpKind::Delete, k, Vec::new()));
    }
    /// Adds a value-log rewrite (GC) of `key`, applied only if the key still points at `old`.
    pub(crate) fn rewrite(&mut self, key: &[u8], value: &[u8], old: Pointer) {
        self.bytes += key.len() + value.len();
        self.ops.push((OpKind::Rewrite(old), key.to_vec(), value.to_vec()));
    }
    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
    /// Removes every operation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.bytes = 0;
    }
}
