//! Versions: immutable sets of live tables, and the super-version a read works on.
//!
//! A reader takes an `Arc<SuperVersion>` (memtables + version) and a sequence number together;
//! everything it reads stays alive and unchanged while it holds them. A table dropped from
//! the newest version is deleted from disk when its last holder lets go.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::io::Fs;
use crate::manifest::{FileMeta, NUM_LEVELS};
use crate::memtable::MemTable;
use crate::sstable::Table;

/// A live table: its manifest record and its open reader.
pub(crate) struct TableFile {
    pub(crate) meta: FileMeta,
    pub(crate) table: Arc<Table>,
    obsolete: AtomicBool,
    fs: Arc<dyn Fs>,
    path: PathBuf,
}

impl TableFile {
    pub(crate) fn new(
        meta: FileMeta,
        table: Arc<Table>,
        fs: Arc<dyn Fs>,
        path: PathBuf,
    ) -> TableFile {
        TableFile { meta, table, obsolete: AtomicBool::new(false), fs, path }
    }
    /// Marks the file for deletion once nothing holds it.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for TableFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Err(e) = self.fs.remove(&self.path) {
                tracing::warn!(file = %self.path.display(), error = %e, "could not delete obsolete table");
            }
        }
    }
}

/// The tables of every level. L0 is newest first and may overlap; deeper levels are sorted by
/// key and do not overlap.
#[derive(Clone, Default)]
pub(crate) struct Version {
    pub(crate) levels: [Vec<Arc<TableFile>>; NUM_LEVELS],
}

impl Version {
    /// The files of `level` whose user-key range overlaps [`lo`, `hi`].
    pub(crate) fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<TableFile>> {
        self.levels[level]
            .iter()
            .filter(|f| f.meta.largest_user() >= lo && f.meta.smallest_user() <= hi)
            .cloned()
            .collect()
    }

    /// Total bytes of `level`.
    pub(crate) fn level_size(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.meta.size).sum()
    }

    /// The sorted-level file that may hold `user_key`.
    pub(crate) fn find_in_level(&self, level: usize, user_key: &[u8]) -> Option<&Arc<TableFile>> {
        let files = &self.levels[level];
        let i = files.partition_point(|f| f.meta.largest_user() < user_key);
        files.get(i).filter(|f| f.meta.smallest_user() <= user_key)
    }

    /// Sorts each level: L0 newest first (by largest sequence number: a file re-sealed under
    /// a new key gets a new number but keeps its place), others by smallest key.
    pub(crate) fn normalize(&mut self) {
        self.levels[0].sort_by_key(|f| std::cmp::Reverse((f.meta.max_seq, f.meta.number)));
        for l in &mut self.levels[1..] {
            l.sort_by(|a, b| a.meta.smallest_user().cmp(b.meta.smallest_user()));
        }
    }

    pub(crate) fn all_files(&self) -> impl Iterator<Item = (usize, &Arc<TableFile>)> {
        self.levels.iter().enumerate().flat_map(|(l, fs)| fs.iter().map(move |f| (l, f)))
    }
}

/// What a read sees: the mutable memtable, the frozen ones (newest first), and the tables.
pub(crate) struct SuperVersion {
    pub(crate) mem: Arc<MemTable>,
    pub(crate) imms: Vec<Arc<MemTable>>,
    pub(crate) version: Arc<Version>,
    pub(crate) vlog: Arc<crate::vlog::VlogSet>,
}
