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

    /// The read depth of L0: the most L0 tables of any one keyspace. A table holds one
    /// keyspace's entries, and a read of a key consults only the L0 tables of its keyspace,
    /// so a flush of a memtable touching many keyspaces (one table each) deepens L0 by one,
    /// not by their number. Scores L0 for compaction and for write stalls.
    pub(crate) fn l0_depth(&self) -> usize {
        let mut per: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
        for f in &self.levels[0] {
            *per.entry(super::keyspace::prefix_of(f.meta.smallest_user())).or_default() += 1;
        }
        per.into_values().max().unwrap_or(0)
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

/// Table files for unit tests: one real (tiny) table shared by files whose manifest records
/// say what each test needs (number, key range, size).
#[cfg(test)]
pub(super) mod testing {
    use std::sync::Arc;

    use super::TableFile;
    use crate::db::Tuning;
    use crate::io::{Fs, StdFs};
    use crate::key::{self, ValueKind};
    use crate::manifest::FileMeta;
    use crate::options::Options;
    use crate::sstable::{BlockCache, Table, TableBuilder};

    pub(in crate::db) struct Files {
        dir: tempfile::TempDir,
        fs: Arc<dyn Fs>,
        table: Arc<Table>,
    }

    impl Files {
        pub(in crate::db) fn new() -> Files {
            let dir = tempfile::tempdir().expect("temp dir");
            let fs: Arc<dyn Fs> = Arc::new(StdFs);
            let path = dir.path().join("000001.sst");
            let build = Tuning::from_options(&Options::new(dir.path())).build;
            let mut b =
                TableBuilder::create(fs.as_ref(), &path, 1, None, 0, build).expect("create");
            b.add(b"k", 1, ValueKind::Put, b"v").expect("add");
            b.finish().expect("finish");
            let cache = Arc::new(BlockCache::new(1 << 20));
            let table = Arc::new(Table::open(fs.as_ref(), &path, 1, None, cache).expect("open"));
            Files { dir, fs, table }
        }

        /// The default tuning.
        pub(in crate::db) fn tuning(&self) -> Tuning {
            Tuning::from_options(&Options::new(self.dir.path()))
        }

        /// A file numbered `number` holding user keys `lo..=hi` in `size` bytes; its largest
        /// sequence number is `number`.
        pub(in crate::db) fn file(
            &self,
            number: u64,
            lo: &[u8],
            hi: &[u8],
            size: u64,
        ) -> Arc<TableFile> {
            self.aged(number, lo, hi, size, (0, 0))
        }

        /// As [`Files::file`], with the oldest write and tombstone count recorded.
        pub(in crate::db) fn aged(
            &self,
            number: u64,
            lo: &[u8],
            hi: &[u8],
            size: u64,
            (oldest_write, tombstones): (u64, u64),
        ) -> Arc<TableFile> {
            let (mut smallest, mut largest) = (Vec::new(), Vec::new());
            key::encode(&mut smallest, lo, number, ValueKind::Put);
            key::encode(&mut largest, hi, number, ValueKind::Put);
            let meta = FileMeta {
                number,
                size,
                key_id: 0,
                max_seq: number,
                smallest,
                largest,
                oldest_write,
                tombstones,
            };
            let path = self.dir.path().join(format!("{number:06}.unused"));
            Arc::new(TableFile::new(meta, self.table.clone(), self.fs.clone(), path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Files;
    use super::*;

    fn numbers(files: &[Arc<TableFile>]) -> Vec<u64> {
        files.iter().map(|f| f.meta.number).collect()
    }

    fn sorted_level(fx: &Files) -> Version {
        let mut v = Version::default();
        v.levels[1].push(fx.file(12, b"m", b"p", 1));
        v.levels[1].push(fx.file(10, b"b", b"d", 1));
        v.levels[1].push(fx.file(11, b"f", b"f", 1));
        v.normalize();
        v
    }

    #[test]
    fn find_in_level_finds_the_only_file_that_can_hold_a_key() {
        let fx = Files::new();
        let v = sorted_level(&fx);
        let find = |k: &[u8]| v.find_in_level(1, k).map(|f| f.meta.number);
        assert_eq!(numbers(&v.levels[1]), vec![10, 11, 12]);
        assert_eq!(find(b"a"), None); // before the first file
        assert_eq!(find(b"b"), Some(10)); // smallest key, inclusive
        assert_eq!(find(b"c"), Some(10));
        assert_eq!(find(b"d"), Some(10)); // largest key, inclusive
        assert_eq!(find(b"e"), None); // in a gap
        assert_eq!(find(b"f"), Some(11)); // a one-key file
        assert_eq!(find(b"ff"), None);
        assert_eq!(find(b"n"), Some(12));
        assert_eq!(find(b"q"), None); // after the last file
        assert_eq!(v.find_in_level(2, b"c").map(|f| f.meta.number), None); // empty level
    }

    #[test]
    fn overlapping_is_inclusive_at_both_ends() {
        let fx = Files::new();
        let v = sorted_level(&fx);
        assert_eq!(numbers(&v.overlapping(1, b"a", b"a")), Vec::<u64>::new());
        assert_eq!(numbers(&v.overlapping(1, b"a", b"b")), vec![10]);
        assert_eq!(numbers(&v.overlapping(1, b"d", b"f")), vec![10, 11]);
        assert_eq!(numbers(&v.overlapping(1, b"e", b"e")), Vec::<u64>::new());
        assert_eq!(numbers(&v.overlapping(1, b"a", b"z")), vec![10, 11, 12]);
        assert_eq!(numbers(&v.overlapping(1, b"p", b"z")), vec![12]);
    }

    #[test]
    fn l0_files_overlap_and_sort_newest_first() {
        let fx = Files::new();
        let mut v = Version::default();
        v.levels[0].push(fx.file(3, b"a", b"k", 1));
        v.levels[0].push(fx.file(7, b"c", b"e", 1));
        v.levels[0].push(fx.file(5, b"j", b"z", 1));
        v.normalize();
        // Newest (largest sequence) first: the order a read must search L0 in.
        assert_eq!(numbers(&v.levels[0]), vec![7, 5, 3]);
        assert_eq!(numbers(&v.overlapping(0, b"d", b"d")), vec![7, 3]);
        assert_eq!(numbers(&v.overlapping(0, b"j", b"j")), vec![5, 3]);
        assert_eq!(v.level_size(0), 3);
        assert_eq!(v.all_files().count(), 3);
    }
}
