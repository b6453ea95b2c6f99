//! Atomic write batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::db::keyspace::{self, Keyspace};
use crate::vlog::Pointer;

/// What an entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Put,
    Delete,
    /// Value-log GC: store the value again, only if the key still points at `Pointer`.
    Rewrite(Pointer),
}

/// A group of puts and deletes applied atomically, also across a crash, in any number of
/// keyspaces.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    /// (kind, tree key = keyspace prefix ‖ user key, value).
    pub(crate) ops: Vec<(OpKind, Vec<u8>, Vec<u8>)>,
    /// User key and value bytes.
    pub(crate) bytes: usize,
    /// The "dropped" flags of the named keyspaces the batch writes into (once each).
    pub(crate) keyspaces: Vec<Arc<AtomicBool>>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }
    /// Adds a put of `value` under `key` (in the default keyspace).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let k = keyspace::tree_key(keyspace::DEFAULT_PREFIX, key.as_ref());
        self.push(OpKind::Put, k, value.as_ref().to_vec());
    }
    /// Adds a delete of `key` (in the default keyspace).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        let k = keyspace::tree_key(keyspace::DEFAULT_PREFIX, key.as_ref());
        self.push(OpKind::Delete, k, Vec::new());
    }
    /// Adds a put of `value` under `key` in keyspace `ks`. Writing a batch that names a
    /// dropped keyspace fails with [`Error::KeyspaceDropped`](crate::Error::KeyspaceDropped).
    pub fn put_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.note(ks);
        self.push(OpKind::Put, ks.key(key.as_ref()), value.as_ref().to_vec());
    }
    /// Adds a delete of `key` in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) {
        self.note(ks);
        self.push(OpKind::Delete, ks.key(key.as_ref()), Vec::new());
    }
    /// Remembers `ks`'s "dropped" flag (named keyspaces only).
    pub(crate) fn note(&mut self, ks: &Keyspace) {
        if ks.id != keyspace::DEFAULT_ID
            && !self.keyspaces.iter().any(|f| Arc::ptr_eq(f, &ks.dropped))
        {
            self.keyspaces.push(ks.dropped.clone());
        }
    }
    /// Adds an op on tree key `k`.
    pub(crate) fn push(&mut self, kind: OpKind, k: Vec<u8>, v: Vec<u8>) {
        self.bytes += k.len() - keyspace::prefix_of(&k).len() + v.len();
        self.ops.push((kind, k, v));
    }
    /// Whether a keyspace the batch writes into was dropped.
    pub(crate) fn names_dropped_keyspace(&self) -> bool {
        self.keyspaces.iter().any(|f| f.load(Ordering::Acquire))
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
        self.keyspaces.clear();
    }
}
