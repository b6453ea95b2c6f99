//! Per-keyspace options in effect ([`KeyspaceOptions`]): given by name (at open through
//! [`Options::keyspace_options`], or with [`DB::keyspace_with`]) and resolved by keyspace id
//! for the write path (value threshold, compression of value-log entries) and for flushes and
//! compactions (compression and bloom filters of the tables they write). Keyspaces without
//! options of their own, and the default keyspace, follow the database's options.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::{keyspace, Keyspace, Tuning, DB};
use crate::error::Result;
use crate::manifest::KeyspaceTable;
use crate::options::{KeyspaceOptions, Options};
use crate::sstable::BuildOptions;

/// The options of one keyspace with the database's filled in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolved {
    pub(crate) value_threshold: usize,
    pub(crate) build: BuildOptions,
}

/// The per-keyspace options of an open database.
pub(crate) struct KeyspaceTuning {
    base: Resolved,
    by_name: Mutex<BTreeMap<String, KeyspaceOptions>>,
    by_id: RwLock<Arc<BTreeMap<u32, Resolved>>>,
    /// The smallest value threshold any keyspace has had in this open (never raised again):
    /// a value below it stays inline whatever its keyspace.
    least_threshold: AtomicUsize,
}

impl KeyspaceTuning {
    /// The options `options` gives, resolved for the keyspaces `table` names.
    pub(crate) fn new(options: &Options, tuning: &Tuning, table: &KeyspaceTable) -> Self {
        let t = KeyspaceTuning {
            base: Resolved { value_threshold: tuning.value_threshold, build: tuning.build },
            by_name: Mutex::new(options.per_keyspace.clone()),
            by_id: RwLock::new(Arc::default()),
            least_threshold: AtomicUsize::new(tuning.value_threshold),
        };
        for (name, id) in &table.named {
            t.apply(name, *id, None);
        }
        t
    }

    fn resolve(&self, o: &KeyspaceOptions) -> Resolved {
        let mut r = self.base;
        if let Some(v) = o.value_threshold {
            r.value_threshold = v;
        }
        if let Some(c) = o.compression {
            r.build.compression = c;
        }
        if let Some(b) = o.bloom_bits_per_key {
            r.build.bloom_bits_per_key = b;
        }
        r
    }

    /// Puts in effect for keyspace `id` (named `name`) `options` if given (kept under the
    /// name for the rest of this open), else the options last given for the name, if any.
    pub(crate) fn apply(&self, name: &str, id: u32, options: Option<KeyspaceOptions>) {
        let mut by_name = self.by_name.lock();
        if let Some(o) = options {
            by_name.insert(name.to_owned(), o);
        }
        let Some(o) = by_name.get(name) else { return };
        let resolved = self.resolve(o);
        let mut by_id = self.by_id.write();
        let mut next = (**by_id).clone();
        next.insert(id, resolved);
        *by_id = Arc::new(next);
        self.least_threshold.fetch_min(resolved.value_threshold, Ordering::Relaxed);
    }

    /// The options in effect now, by keyspace id (keyspaces absent follow the database's).
    pub(crate) fn snapshot(&self) -> Arc<BTreeMap<u32, Resolved>> {
        self.by_id.read().clone()
    }

    /// No keyspace sends a value shorter than this to the value log (a lower bound: it may
    /// lag a threshold raised since).
    pub(crate) fn least_value_threshold(&self) -> usize {
        self.least_threshold.load(Ordering::Relaxed)
    }

    /// The database's own options.
    pub(crate) fn base(&self) -> Resolved {
        self.base
    }

    /// The table-build options of keyspace `id`.
    pub(crate) fn build_for(&self, id: u32) -> BuildOptions {
        self.by_id.read().get(&id).map_or(self.base.build, |r| r.build)
    }
}

/// The options of the keyspace of tree key `k` in `map` (the database's when it has none).
pub(crate) fn for_key(map: &BTreeMap<u32, Resolved>, base: Resolved, k: &[u8]) -> Resolved {
    if map.is_empty() {
        return base;
    }
    match keyspace::split(k) {
        Some((id, _)) => map.get(&id).copied().unwrap_or(base),
        None => base,
    }
}

impl DB {
    /// The keyspace named `name`, created if missing (as [`DB::keyspace`]), with `options` in
    /// effect for it from now on, for the rest of this open: values written after this call
    /// follow its value threshold, and tables written after it (flushes, compactions) its
    /// compression and bloom filters. Entries already written keep their form until
    /// rewritten. To have them from the start of every open, give them in
    /// [`Options::keyspace_options`].
    pub fn keyspace_with(&self, name: &str, options: KeyspaceOptions) -> Result<Keyspace> {
        let ks = self.keyspace(name)?;
        self.inner.ks_tuning.apply(name, ks.id, Some(options));
        Ok(ks)
    }
}
