//! Options for opening a database.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::crypto::MasterKey;
use crate::io::{Fs, StdFs};

/// The AEAD that seals blocks. Recorded in every block, so one database can hold both while it
/// migrates from one to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-256 in Galois/Counter Mode (the default; hardware accelerated on x86-64 and aarch64).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (fast without AES instructions).
    ChaCha20Poly1305,
}

/// Encryption at rest: a master key and the choices that go with it.
///
/// The master key never reaches the data directory; it wraps the data keys kept in the
/// directory's key registry.
pub struct Encryption {
    pub(crate) master: MasterKey,
    pub(crate) cipher: Cipher,
    pub(crate) rotate_every: Option<Duration>,
    pub(crate) rotate_after_bytes: Option<u64>,
    pub(crate) reencrypt_rate: Option<u64>,
    pub(crate) encrypt_existing: bool,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("master", &self.master)
            .field("cipher", &self.cipher)
            .field("rotate_every", &self.rotate_every)
            .field("rotate_after_bytes", &self.rotate_after_bytes)
            .field("reencrypt_rate", &self.reencrypt_rate)
            .field("encrypt_existing", &self.encrypt_existing)
            .finish()
    }
}

impl Encryption {
    /// Encryption under `master` with AES-256-GCM.
    pub fn new(master: MasterKey) -> Encryption {
        Encryption {
            master,
            cipher: Cipher::Aes256Gcm,
            rotate_every: None,
            rotate_after_bytes: None,
            reencrypt_rate: None,
            encrypt_existing: false,
        }
    }
    /// Selects the cipher for new blocks.
    #[must_use]
    pub fn cipher(mut self, cipher: Cipher) -> Encryption {
        self.cipher = cipher;
        self
    }
    /// Rotates the data key automatically once the current one is older than `age` (default:
    /// never by age).
    #[must_use]
    pub fn rotate_every(mut self, age: Duration) -> Encryption {
        self.rotate_every = Some(age);
        self
    }
    /// Bounds the background re-encryption compactor to `bytes_per_sec` (default 16 MiB/s).
    /// [`DB::reencrypt`](crate::DB::reencrypt) runs unthrottled.
    #[must_use]
    pub fn reencrypt_rate(mut self, bytes_per_sec: u64) -> Encryption {
        self.reencrypt_rate = Some(bytes_per_sec.max(1));
        self
    }
    /// Lets [`DB::open`](crate::DB::open) accept a database written without encryption and
    /// encrypt it online: a key registry is made at once, every file written from then on is
    /// sealed (WAL, tables, value-log segments, manifest), and the re-encryption compactor
    /// seals the old plaintext tables and value-log segments in the background at
    /// [`Encryption::reencrypt_rate`]. [`DB::reencrypt`](crate::DB::reencrypt) finishes the
    /// work unthrottled; [`DB::encryption_status`](crate::DB::encryption_status) shows what is
    /// left. On a database that is already encrypted the flag changes nothing.
    ///
    /// From the moment the key registry exists the database needs the master key; once the
    /// first sealed manifest is written it opens with the key alone, with or without this
    /// flag (a crash before that point needs the flag again to go on). Without the flag, a
    /// plaintext database opened with encryption is
    /// [`Error::NotEncrypted`](crate::Error::NotEncrypted). See `docs/security.md` for when
    /// plaintext is gone. The reverse is [`decrypt_database`](crate::decrypt_database).
    #[must_use]
    pub fn encrypt_existing(mut self) -> Encryption {
        self.encrypt_existing = true;
        self
    }
    /// Rotates the data key automatically once it has sealed `bytes` bytes (default 1 TiB;
    /// see `docs/security.md` for why this is hygiene rather than a nonce limit). The count is
    /// kept in the manifest and holds across reopens (a crash loses only what was counted
    /// since the last manifest write).
    #[must_use]
    pub fn rotate_after_bytes(mut self, bytes: u64) -> Encryption {
        self.rotate_after_bytes = Some(bytes);
        self
    }
}

/// How to open a database. Every tuning option has a documented default.
#[derive(Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is an independent switch of the builder, as in the peers' options"
)]
pub struct Options {
    pub(crate) path: PathBuf,
    pub(crate) encryption: Option<Encryption>,
    pub(crate) fs: Arc<dyn Fs>,
    /// Whether memory maps are used ([`Options::mmap`]).
    pub(crate) mmap: bool,
    /// The object store cold files move to. Default none: everything stays local.
    pub(crate) cold_storage: Option<crate::cold::ColdStorage>,
    /// Size at which the mutable memtable is frozen and flushed. Default 32 MiB.
    pub(crate) memtable_size: usize,
    /// Frozen memtables allowed to wait for flush before writers stall. Default 2.
    pub(crate) max_immutable_memtables: usize,
    /// Target size of an SSTable data block before sealing. Default 4 KiB.
    pub(crate) block_size: usize,
    /// Entries between restart points in a data block. Default 16.
    pub(crate) block_restart_interval: usize,
    /// Bytes of opened blocks kept in the block cache. Default 64 MiB.
    pub(crate) cache_size: u64,
    /// Compress blocks with LZ4 (kept only when it shrinks a block). Default on.
    pub(crate) compression: bool,
    /// Bloom filter bits per key. Default 10 (about 1% false positives).
    pub(crate) bloom_bits_per_key: u32,
    /// Target size of SSTables written by compaction. Default 32 MiB.
    pub(crate) target_file_size: u64,
    /// L0 files that trigger a compaction into L1. Default 4.
    pub(crate) l0_compaction_trigger: usize,
    /// L0 files at which writes are slowed. Default 8.
    pub(crate) l0_slowdown_trigger: usize,
    /// L0 files at which writes stop until compaction catches up. Default 12.
    pub(crate) l0_stop_trigger: usize,
    /// Target size of L1; each further level is `level_size_multiplier` times larger.
    /// Default 128 MiB.
    pub(crate) level_base_size: u64,
    /// Growth factor between levels. Default 10.
    pub(crate) level_size_multiplier: u64,
    /// Values of at least this many bytes go to the value log. Default 2 KiB (see
    /// `docs/benchmarks.md`: at 1 KiB values the value log slowed random reads, at 2 KiB it
    /// sped up fills and reads).
    pub(crate) value_threshold: usize,
    /// Size at which the active value-log segment is closed and a new one started.
    /// Default 64 MiB.
    pub(crate) vlog_segment_size: u64,
    /// Garbage ratio above which background GC rewrites a value-log segment. Default 0.5.
    pub(crate) vlog_gc_ratio: f64,
    /// fsync the WAL on every write. Default off: writes reach the OS at once and
    /// [`DB::sync`](crate::DB::sync) makes them durable.
    pub(crate) sync_writes: bool,
    /// Run flush and compaction on background threads. Default on; when off they run only on
    /// [`DB::flush`](crate::DB::flush) and [`DB::compact`](crate::DB::compact) (for tests).
    pub(crate) background_work: bool,
    /// Create the database when the path holds none. Default on.
    pub(crate) create_if_missing: bool,
    /// Refuse to open a database that already exists. Default off.
    pub(crate) error_if_exists: bool,
    /// Open without writing anything to the directory. Default off.
    pub(crate) read_only: bool,
    /// Options of named keyspaces that differ from the database's, by name.
    pub(crate) per_keyspace: std::collections::BTreeMap<String, KeyspaceOptions>,
    /// The bound on how long a deleted or overwritten value may stay on disk. Default off.
    pub(crate) erase_within: Option<std::time::Duration>,
    /// Bytes per second the background erasure rewrites before a deadline is near.
    pub(crate) erase_rate: u64,
}

/// Options of one keyspace that differ from the database's (`Options`): where its values
/// go, whether its blocks are compressed, its bloom filters. Unset fields follow the
/// database's options. Like the database's tuning options they are not stored: give them at
/// every open ([`Options::keyspace_options`]) or when taking a handle
/// ([`DB::keyspace_with`](crate::DB::keyspace_with)). Changing them between opens is safe:
/// each entry records where its value is, each block whether it is compressed, each table
/// whether it has a filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyspaceOptions {
    pub(crate) value_threshold: Option<usize>,
    pub(crate) compression: Option<bool>,
    pub(crate) bloom_bits_per_key: Option<u32>,
}

impl KeyspaceOptions {
    /// Options that follow the database's in everything.
    pub fn new() -> KeyspaceOptions {
        KeyspaceOptions::default()
    }
    /// This keyspace's values of at least `bytes` bytes go to the value log (see
    /// [`Options::value_threshold`]): e.g. `usize::MAX` for a keyspace of small records
    /// read in scans, a small threshold for one of blobs.
    #[must_use]
    pub fn value_threshold(mut self, bytes: usize) -> KeyspaceOptions {
        self.value_threshold = Some(bytes);
        self
    }
    /// LZ4 compression of this keyspace's table blocks and value-log entries (see
    /// [`Options::compression`], including its warning about compression and secrets). The
    /// WAL and the manifest follow the database's option.
    #[must_use]
    pub fn compression(mut self, on: bool) -> KeyspaceOptions {
        self.compression = Some(on);
        self
    }
    /// Bloom filter bits per key of this keyspace's tables (0: none; at most 32).
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> KeyspaceOptions {
        self.bloom_bits_per_key = Some(bits.min(32));
        self
    }
}

/// Default pace of the background erasure ([`Options::erase_rate`]).
const DEFAULT_ERASE_RATE: u64 = 16 << 20;

impl Options {
    /// Options for a database at `path`, without encryption and with default tuning.
    pub fn new(path: impl AsRef<Path>) -> Options {
        Options {
            path: path.as_ref().to_path_buf(),
            encryption: None,
            fs: Arc::new(StdFs),
            mmap: true,
            cold_storage: None,
            memtable_size: 32 << 20,
            max_immutable_memtables: 2,
            block_size: 4 << 10,
            block_restart_interval: 16,
            cache_size: 64 << 20,
            compression: true,
            bloom_bits_per_key: 10,
            target_file_size: 32 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 8,
            l0_stop_trigger: 12,
            level_base_size: 128 << 20,
            level_size_multiplier: 10,
            sync_writes: false,
            background_work: true,
            create_if_missing: true,
            error_if_exists: false,
            read_only: false,
            value_threshold: 2 << 10,
            vlog_segment_size: 64 << 20,
            vlog_gc_ratio: 0.5,
            per_keyspace: std::collections::BTreeMap::new(),
            erase_within: None,
            erase_rate: DEFAULT_ERASE_RATE,
        }
    }

    /// Deleted or overwritten values are physically gone from every file within `bound`
    /// (default: off). The background workers flush a memtable whose first write is older
    /// than a quarter of the bound, compact every table whose oldest write is that old and
    /// that may still shadow an older version below it (or holds tombstones), and collect
    /// every value-log segment holding garbage, all paced at [`Options::erase_rate`] until
    /// half the bound has passed, then at full speed. A bound below one second is raised to
    /// one second. It needs [`Options::background_work`] (without it only
    /// [`DB::erase_now`](crate::DB::erase_now) erases). See `docs/security.md` ("Erasure") for
    /// what this does not reach (copies outside the directory, the device's own spare blocks).
    ///
    /// [`DB::erase_now`](crate::DB::erase_now) enforces the same at once.
    #[must_use]
    pub fn erase_within(mut self, bound: std::time::Duration) -> Options {
        self.erase_within = Some(bound.max(std::time::Duration::from_secs(1)));
        self
    }

    /// Bytes per second the background erasure of [`Options::erase_within`] rewrites while no
    /// deadline is near (default 16 MiB/s, at least 1).
    #[must_use]
    pub fn erase_rate(mut self, bytes_per_sec: u64) -> Options {
        self.erase_rate = bytes_per_sec.max(1);
        self
    }

    /// Options for the named keyspace `name` whenever it is used in this open (created or
    /// not yet); [`DB::keyspace_with`](crate::DB::keyspace_with) can change them later.
    #[must_use]
    pub fn keyspace_options(mut self, name: &str, options: KeyspaceOptions) -> Options {
        self.per_keyspace.insert(name.to_owned(), options);
        self
    }

    /// Moves immutable files (tables, closed value-log segments) to the object store of
    /// `cold` by its policy, and reads them from there transparently (default: none, all
    /// local). The WAL, manifest, `KEYS`, audit log and active segment never go cold.
    #[must_use]
    pub fn cold_storage(mut self, cold: crate::cold::ColdStorage) -> Options {
        self.cold_storage = Some(cold);
        self
    }

    /// Whether [`DB::open`](crate::DB::open) creates a database where none exists (default
    /// on). When off, a path without a database is [`Error::NotFound`](crate::Error::NotFound)
    /// and nothing is created, not even the directory.
    #[must_use]
    pub fn create_if_missing(mut self, on: bool) -> Options {
        self.create_if_missing = on;
        self
    }

    /// Whether [`DB::open`](crate::DB::open) refuses a database that already exists (default
    /// off): [`Error::AlreadyExists`](crate::Error::AlreadyExists), with nothing written.
    #[must_use]
    pub fn error_if_exists(mut self, on: bool) -> Options {
        self.error_if_exists = on;
        self
    }

    /// Opens the database read-only (default off): the open writes nothing to the directory
    /// (no lock file is created, no manifest, key registry, audit line or new WAL is written,
    /// the WALs are replayed into memory only, no file is removed and no background thread
    /// starts), and every call that would write is refused with
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). A path without a database is
    /// [`Error::NotFound`](crate::Error::NotFound).
    ///
    /// It may open beside a process that has the database open for writing: it reads a
    /// consistent view of the database as of its open (retrying when the writer replaced the
    /// files it was reading) and keeps it, ignoring later writes, until closed and reopened.
    /// See `docs/design.md`, "Read-only open", for how it coexists with a writer.
    #[must_use]
    pub fn read_only(mut self, on: bool) -> Options {
        self.read_only = on;
        self
    }

    /// Encrypts the database at rest.
    #[must_use]
    pub fn with_encryption(mut self, encryption: Encryption) -> Options {
        self.encryption = Some(encryption);
        self
    }
    /// Memtable size in bytes (default 32 MiB; at least 64 KiB).
    #[must_use]
    pub fn memtable_size(mut self, bytes: usize) -> Options {
        self.memtable_size = bytes.max(64 << 10);
        self
    }
    /// Frozen memtables that may wait for flush before writers stall (default 2, at least 1).
    #[must_use]
    pub fn max_immutable_memtables(mut self, n: usize) -> Options {
        self.max_immutable_memtables = n.max(1);
        self
    }
    /// Data block size in bytes before sealing (default 4 KiB; 256 B to 1 MiB).
    #[must_use]
    pub fn block_size(mut self, bytes: usize) -> Options {
        self.block_size = bytes.clamp(256, 1 << 20);
        self
    }
    /// Block cache capacity in bytes of opened blocks (default 64 MiB; 0 disables it).
    #[must_use]
    pub fn cache_size(mut self, bytes: u64) -> Options {
        self.cache_size = bytes;
        self
    }
    /// LZ4 compression of every sealed block sealdb writes (SSTable blocks, value-log entries,
    /// WAL records, the manifest), kept only when it shrinks a block (default on). Off, no new
    /// block is compressed.
    ///
    /// Compress-then-encrypt leaks through the sealed length how well a block compressed: when
    /// an attacker can choose data stored next to a secret (in one WAL record, SSTable block or
    /// value-log entry) and observe file sizes, the length can reveal the secret (the CRIME and
    /// BREACH class). Turn compression off for such workloads; see `docs/security.md`.
    /// Blocks already written keep their form until rewritten: compaction re-encodes tables,
    /// while value-log GC and re-encryption move entries as stored.
    #[must_use]
    pub fn compression(mut self, on: bool) -> Options {
        self.compression = on;
        self
    }
    /// Bloom filter bits per key (default 10; 0 disables filters).
    #[must_use]
    pub fn bloom_bits_per_key(mut self, bits: u32) -> Options {
        self.bloom_bits_per_key = bits.min(32);
        self
    }
    /// Target SSTable size for compaction output (default 32 MiB; at least 64 KiB).
    #[must_use]
    pub fn target_file_size(mut self, bytes: u64) -> Options {
        self.target_file_size = bytes.max(64 << 10);
        self
    }
    /// Target size of level 1 (default 128 MiB; at least 256 KiB).
    #[must_use]
    pub fn level_base_size(mut self, bytes: u64) -> Options {
        self.level_base_size = bytes.max(256 << 10);
        self
    }
    /// L0 file count that triggers compaction (default 4), slows writes (default 8) and
    /// stops writes (default 12). Slowdown is at least the compaction trigger and stop at
    /// least slowdown + 1.
    #[must_use]
    pub fn l0_triggers(mut self, compact: usize, slowdown: usize, stop: usize) -> Options {
        self.l0_compaction_trigger = compact.max(1);
        self.l0_slowdown_trigger = slowdown.max(self.l0_compaction_trigger);
        self.l0_stop_trigger = stop.max(self.l0_slowdown_trigger + 1);
        self
    }
    /// Values of at least `bytes` bytes are stored in the value log, with only a pointer in the
    /// tree (default 2 KiB; `usize::MAX` keeps every value inline). Changing it between opens
    /// is safe: each entry records where its value is.
    #[must_use]
    pub fn value_threshold(mut self, bytes: usize) -> Options {
        self.value_threshold = bytes;
        self
    }
    /// Size of a value-log segment (default 64 MiB; at least 64 KiB).
    #[must_use]
    pub fn vlog_segment_size(mut self, bytes: u64) -> Options {
        self.vlog_segment_size = bytes.max(64 << 10);
        self
    }
    /// Garbage ratio (0.0 to 1.0) above which background GC rewrites a value-log segment
    /// (default 0.5).
    #[must_use]
    pub fn vlog_gc_ratio(mut self, ratio: f64) -> Options {
        self.vlog_gc_ratio = ratio.clamp(0.01, 1.0);
        self
    }
    /// fsync the WAL on every write (default off; see [`DB::sync`](crate::DB::sync)).
    #[must_use]
    pub fn sync_writes(mut self, on: bool) -> Options {
        self.sync_writes = on;
        self
    }
    /// Background flush and compaction (default on).
    #[must_use]
    pub fn background_work(mut self, on: bool) -> Options {
        self.background_work = on;
        self
    }
    /// Replaces the file-system layer (fault injection in tests).
    #[must_use]
    pub fn with_fs(mut self, fs: Arc<dyn Fs>) -> Options {
        self.fs = fs;
        self
    }
    /// Whether sealdb uses memory maps (default true): tables and value-log segments are read
    /// through read-only maps (a read is a copy out of the page cache, with no system call;
    /// every read still copies the bytes before checking them), and the WAL is allocated ahead
    /// and written through a map (a write is a copy into the page cache; `sync()` is an
    /// `msync`). The cost: a table or segment truncated by another program while the database
    /// is open stops the process with `SIGBUS` on the next read of the cut part, instead of
    /// `Error::Corruption`. `false`: `pread` and `write` only (see `docs/security.md`).
    #[must_use]
    pub fn mmap(mut self, on: bool) -> Options {
        self.mmap = on;
        self
    }
    /// The file-system layer the database uses: [`Options::with_fs`]'s, without maps when
    /// [`Options::mmap`] is off.
    pub(crate) fn file_system(&self) -> Arc<dyn Fs> {
        if self.mmap {
            self.fs.clone()
        } else {
            Arc::new(crate::io::Unmapped(self.fs.clone()))
        }
    }
    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
