//! sealdb: an embedded LSM-tree key-value store in which every byte on disk is sealed.
//!
//! Every block that reaches disk is compressed (LZ4), then encrypted and authenticated
//! (AES-256-GCM or ChaCha20-Poly1305) under a per-file key derived from a data key, itself
//! wrapped by a master key that never touches the data directory. Without encryption the same
//! envelope carries a crc32, so both modes share one code path.
//!
//! ```no_run
//! use sealdb::{DB, Encryption, MasterKey, Options};
//!
//! # fn main() -> sealdb::Result<()> {
//! let key = MasterKey::generate();
//! let db = DB::open(Options::new("./data").with_encryption(Encryption::new(key)))?;
//! db.put(b"user:1", b"Ada")?;
//! assert_eq!(db.get(b"user:1")?.as_deref(), Some(&b"Ada"[..]));
//! # Ok(()) }
//! ```
//!
//! See `docs/design.md`, `docs/format.md` and `docs/security.md` in the repository.

pub mod crypto;
/// Entry points into every decoder of bytes read from disk, for the fuzz crate; not stable API.
#[doc(hidden)]
pub mod decode;
pub mod error;
mod export;
pub mod io;
pub mod objstore;
pub mod options;
/// The sealed-block envelope; public for `benches/micro.rs` and the fuzz seed maker only, not
/// stable API.
#[doc(hidden)]
pub mod seal;
pub mod verify;

mod backup;
mod batch;
mod coding;
mod cold;
mod db;
mod iter;
mod key;
mod manifest;
mod memtable;
mod sstable;
mod vlog;
mod wal;

pub use backup::{BackupInfo, Backups};
pub use batch::WriteBatch;
pub use cold::{ColdStorage, TieringStatus};
pub use crypto::{KeyProvider, MasterKey};
pub use db::{
    decrypt_database, DataKeyInfo, EncryptionStatus, Keyspace, LevelStats, SegmentStats, Snapshot,
    Stats, Transaction, DB, MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE,
};
pub use error::{Error, Result};
pub use export::{ExportInfo, ExportOptions};
pub use iter::Iter;
pub use options::{Cipher, Encryption, KeyspaceOptions, Options};
pub use verify::{verify, verify_with, Problem, VerifyOptions, VerifyReport};

/// The `object_store` crate sealdb is built with: the cold tier and backups take any of its
/// stores.
pub use object_store;
