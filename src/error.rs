//! The crate-wide error type.

use std::path::PathBuf;

/// The result type of every fallible sealdb call.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in sealdb.
///
/// Error messages never contain key or value bytes nor key material: a corruption names the
/// file, the offset and the check that failed, nothing more.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(std::io::Error),

    /// A failed integrity check: authentication tag, checksum, bad magic, malformed structure,
    /// a block found at the wrong place, or a file the manifest names that is missing.
    #[error("corruption in {file} at offset {offset}: {reason}", file = file.display())]
    Corruption {
        /// The file in which the check failed.
        file: PathBuf,
        /// Byte offset in that file of the structure that failed the check.
        offset: u64,
        /// Which check failed (never contains user data).
        reason: String,
    },

    /// The master key does not open this database's key registry.
    #[error("the master key does not open this database's key registry")]
    WrongMasterKey,

    /// The directory holds an encrypted database but no encryption was configured.
    #[error("the database at {0} is encrypted: open it with Options::with_encryption")]
    EncryptionRequired(PathBuf),

    /// Encryption was configured but the directory holds an unencrypted database.
    #[error(
        "the database at {0} is not encrypted: open it without encryption, or with \
         Encryption::encrypt_existing to encrypt it"
    )]
    NotEncrypted(PathBuf),

    /// An argument is out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// No database exists at the path and `Options::create_if_missing(false)` was given.
    #[error("no database at {0} (and create_if_missing is off)")]
    NotFound(PathBuf),

    /// A database already exists at the path and `Options::error_if_exists(true)` was given.
    #[error("a database already exists at {0} (and error_if_exists is on)")]
    AlreadyExists(PathBuf),

    /// Another process (or another `DB` in this process) holds the directory's lock.
    #[error("the database at {0} is locked: it is open in another process or handle")]
    Locked(PathBuf),

    /// A key file is readable by group or others.
    #[error(
        "key file {path} has mode {mode:o}, readable by group or others: run `chmod 600 {path}`",
        path = path.display()
    )]
    KeyFilePermissions {
        /// The refused key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A master-key source could not be read or parsed (the message names the source only).
    #[error("bad master key source: {0}")]
    BadKeySource(String),

    /// An earlier write or fsync failed; the database refuses further writes until reopened.
    #[error("the database refuses writes after an earlier I/O failure ({0}); reopen it")]
    Poisoned(String),

    /// The database is shutting down.
    #[error("the database is closed")]
    Closed,

    /// The database was opened with `Options::read_only(true)`: every call that would write
    /// (a put, delete, batch, sync, flush, compaction, key rotation or re-encryption) is
    /// refused, with nothing written.
    #[error("the database at {0} is open read-only: writes are refused")]
    ReadOnly(PathBuf),

    /// A transaction's commit found that a key or range it read, or a key it wrote, was
    /// changed by a write committed after the transaction began; nothing was written. Retry
    /// the transaction.
    #[error("transaction conflict: a key or range it read or wrote changed since it began")]
    Conflict,

    /// The keyspace was dropped: a handle of it (or a batch or transaction using it) can no
    /// longer read or write.
    #[error("the keyspace was dropped")]
    KeyspaceDropped,

    /// The directory holds a database in an older on-disk format, which this version does not
    /// open (see `docs/format.md`, "Version changes").
    #[error(
        "the database at {0} uses an older on-disk format (tree keys without a keyspace \
         prefix): open it with the sealdb release that wrote it and export its data"
    )]
    UnsupportedFormat(PathBuf),

    /// [`DB::erase_now`](crate::DB::erase_now) did its work, but an open snapshot, iterator or
    /// transaction still holds `files` replaced files that may hold data deleted or overwritten
    /// before the call; they are removed when it is dropped. Drop it and call `erase_now`
    /// again.
    #[error(
        "erasure incomplete: {files} replaced file(s) are still held by an open snapshot, \
         iterator or transaction; drop it and call erase_now again"
    )]
    ErasureBlocked {
        /// Replaced files still on disk.
        files: u64,
    },

    /// The database keeps files in cold storage (an object store) but was opened without
    /// [`Options::cold_storage`](crate::Options::cold_storage).
    #[error(
        "the database at {path} keeps {files} file(s) in cold storage: open it with \
         Options::cold_storage (recall() them first to detach it from the object store)",
        path = path.display()
    )]
    ColdStorageRequired {
        /// The database directory.
        path: PathBuf,
        /// How many of its files are cold.
        files: u64,
    },
}

/// A [`Error::Corruption`] found below the [`io`](crate::io) interface (in a cold file's
/// object), carried through a `std::io::Error` and turned back into `Corruption` by `From`.
#[derive(Debug)]
pub(crate) struct CorruptionCarrier {
    pub(crate) file: PathBuf,
    pub(crate) offset: u64,
    pub(crate) reason: String,
}

impl std::fmt::Display for CorruptionCarrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "corruption in {} at offset {}: {}",
            self.file.display(),
            self.offset,
            self.reason
        )
    }
}

impl std::error::Error for CorruptionCarrier {}

impl CorruptionCarrier {
    /// The `std::io::Error` that carries this corruption.
    pub(crate) fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if !e.get_ref().is_some_and(<dyn std::error::Error + Send + Sync>::is::<CorruptionCarrier>)
        {
            return Error::Io(e);
        }
        let kind = e.kind();
        match e
            .into_inner()
            .map(<dyn std::error::Error + Send + Sync>::downcast::<CorruptionCarrier>)
        {
            Some(Ok(c)) => Error::Corruption { file: c.file, offset: c.offset, reason: c.reason },
            Some(Err(other)) => Error::Io(std::io::Error::new(kind, other)),
            None => Error::Io(kind.into()),
        }
    }
}

impl Error {
    /// Builds a [`Error::Corruption`].
    pub(crate) fn corruption(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Error {
        Error::Corruption { file: file.into(), offset, reason: reason.into() }
    }

    /// Whether this is a [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}
