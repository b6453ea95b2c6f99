//! The command line: every command, its arguments and its help text (doc comments are the
//! help that `sealdb --help` and `sealdb COMMAND --help` print).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::keysrc::{KeyArgs, NewKeyArgs};

/// Inspect, verify and manage sealdb databases (an encrypted embedded key-value store).
///
/// A key is never given on the command line: commands that need one take --key-env VAR
/// (64 hex characters in the environment variable VAR), --key-file FILE (64 hex characters or
/// 32 raw bytes, in a file of mode 0600 owned by you) or --passphrase-env VAR (a passphrase,
/// stretched with Argon2id). With none of them the database is taken to be unencrypted, unless
/// it is encrypted and standard input is a terminal: then the key or passphrase is asked for,
/// without echo.
#[derive(Parser, Debug)]
#[command(
    name = "sealdb",
    version,
    after_help = "Exit status: 0 success; 1 corruption found or a check failed; 2 usage or any \
                  other error (wrong key, locked database, missing directory)."
)]
pub(crate) struct Cli {
    /// Machine-readable output: one JSON document (JSON lines for `scan`) on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Print a new random master key (64 hex chars), or write it to a new 0600 file.
    ///
    /// The key comes from the operating system's random source. With --out the file is
    /// created with mode 0600 and never overwritten: an existing FILE is an error (exit 2).
    /// Keep the key in a secret manager: without it the database cannot be read.
    Keygen {
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Show what a database holds: levels, files, sizes, value log, encryption.
    ///
    /// Levels with their files and bytes, value-log segments and their garbage, the memtable
    /// replayed from the WAL, and the encryption: cipher, current data key, keys, bytes left to
    /// re-encrypt. Opens the database read-only: writes nothing, and works beside the
    /// process that has the database open (a consistent view as of the open).
    Info(DbArgs),
    /// Check every tag and crc of every file of a database, offline.
    ///
    /// Reads the key registry, the manifest, every SSTable (every block), every value-log
    /// segment (every entry), every WAL (every record) and the audit log's MAC chain, and
    /// checks the manifest against the files present. Takes the directory's lock (a database
    /// open in another process is refused, exit 2) and writes nothing. Each problem is printed
    /// as FILE at offset N: CHECK. Exit status 1 if any problem is found.
    ///
    /// Cold files (in an object store) are checked with --store: each object fetched whole,
    /// its size and SHA-256 compared with the manifest's, every block authenticated. Without
    /// --store they are listed as not checked (a warning, not a problem).
    Verify(VerifyArgs),
    /// Data keys: status, rotate-data, rotate-master, reencrypt.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List the key and erasure events of the audit log, and check its MAC chain with --verify.
    ///
    /// AUDIT.log holds one line per key event (open, rotations, re-encryption, key
    /// destruction, a dropped keyspace's key destroyed) and per erasure (an explicit one with
    /// its cutoff, and the background work of a bound) with its time; each line carries an HMAC chained to the previous one, so
    /// an edited, dropped or reordered line breaks the chain. --verify checks the chain with
    /// the key registry's audit key (the master key is needed) without opening the database,
    /// and exits 1 if it is broken.
    Audit {
        #[command(flatten)]
        db: DbArgs,
        /// Check the MAC chain (exit 1 if broken).
        #[arg(long)]
        verify: bool,
    },
    /// Print the value stored under KEY (exit 1 if there is none).
    ///
    /// The value is printed with bytes outside printable ASCII escaped (\n, \t, \\, \xNN);
    /// with --json, as {"key": HEX, "value": HEX}.
    Get {
        #[command(flatten)]
        db: DbArgs,
        /// The key (text, or hex with --hex).
        key: String,
        /// KEY is given in hexadecimal.
        #[arg(long)]
        hex: bool,
    },
    /// Store VALUE under KEY (durably: the WAL is synced before exiting).
    Put {
        #[command(flatten)]
        db: DbArgs,
        /// The key (text, or hex with --hex).
        key: String,
        /// The value (text, or hex with --hex).
        value: String,
        /// KEY and VALUE are given in hexadecimal.
        #[arg(long)]
        hex: bool,
        /// Create the database if DIR holds none (encrypted if a key option is given).
        #[arg(long)]
        create: bool,
    },
    /// Delete KEY (a no-op if absent; durably).
    Delete {
        #[command(flatten)]
        db: DbArgs,
        /// The key (text, or hex with --hex).
        key: String,
        /// KEY is given in hexadecimal.
        #[arg(long)]
        hex: bool,
    },
    /// List keys and values in key order, optionally under a prefix.
    ///
    /// One line per entry: KEY<TAB>VALUE, bytes outside printable ASCII escaped (\n, \t, \\,
    /// \xNN). With --json, one JSON object per line: {"key": HEX, "value": HEX}.
    Scan {
        #[command(flatten)]
        db: DbArgs,
        /// Only keys starting with this prefix (text, or hex with --hex).
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// At most N entries.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// The prefix is given in hexadecimal.
        #[arg(long)]
        hex: bool,
    },
    /// Encrypt an unencrypted database in place, online-safe and crash-safe.
    ///
    /// Needs a key option: that key becomes the master key. From the first moment the database
    /// opens only with it; new files are sealed at once and every old plaintext file is sealed
    /// (tables re-sealed, value-log entries rewritten), unthrottled, with a progress bar on a
    /// terminal. A crash or an interrupt at any point loses nothing: run the command again to
    /// finish (an application opening the database with the key finishes it in the background
    /// too). Plaintext is gone from the files once the command returns; blocks the file system
    /// freed may still hold it on the device (see docs/security.md).
    Encrypt(DbArgs),
    /// Decrypt an encrypted database in place (explicit: everything is then readable on disk).
    ///
    /// Offline: takes the directory's lock. Writes every live entry into new plaintext tables,
    /// then removes the key registry, the audit log and every sealed file. At every step the
    /// directory opens either with the key or without it, and running the command again
    /// finishes an interrupted run. Afterwards the database opens without a key option.
    Decrypt(DbArgs),
    /// Copy a consistent view of a database to a new directory DEST, sealed under the same keys.
    ///
    /// Tables and closed value-log segments are hard-linked where the file system allows
    /// (copied otherwise); the rest is copied and fsynced. DEST must not exist; the copy opens
    /// like any database, with the same key. Works while an application writes (it waits at
    /// most for a memtable switch) only through the library; the tool itself takes the lock.
    ///
    /// A database with cold files needs --store: the checkpoint's cold files stay cold, each
    /// copied to a new object of the checkpoint's own (checked against its pinned SHA-256),
    /// so the checkpoint needs the same store to open.
    Checkpoint {
        #[command(flatten)]
        db: DbArgs,
        /// The new directory.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
        /// The database's cold storage, as for `sealdb cold --store`.
        #[arg(long, value_name = "STORE")]
        store: Option<String>,
    },
    /// Back a database up, incrementally, to a directory or an S3 prefix.
    ///
    /// TARGET is a directory (created if missing) or `s3://BUCKET/PREFIX` (configured from the
    /// AWS_* environment variables). A file an earlier backup at TARGET already holds is not
    /// sent again. The backup is as sealed as the database: KEYS travels wrapped, and the
    /// backup manifest is authenticated. It restores with the master key current now.
    ///
    /// A database with cold files needs --store: its cold files are fetched, checked against
    /// their pinned SHA-256 and stored in the backup, which restores without the store.
    Backup {
        #[command(flatten)]
        db: DbArgs,
        /// A directory, or `s3://BUCKET/PREFIX`.
        #[arg(value_name = "TARGET")]
        target: String,
        /// The database's cold storage, as for `sealdb cold --store`.
        #[arg(long, value_name = "STORE")]
        store: Option<String>,
    },
    /// List the backups at TARGET, oldest first (no key needed).
    Backups {
        /// A directory, or `s3://BUCKET/PREFIX`.
        #[arg(value_name = "TARGET")]
        target: String,
    },
    /// Restore a backup from TARGET into the new directory DEST (the newest unless --id).
    ///
    /// Every file's size and SHA-256 are checked against the backup's manifest as it is
    /// written. DEST must not exist. The restored database opens with the master key that was
    /// current when the backup was taken.
    Restore {
        /// A directory, or `s3://BUCKET/PREFIX`.
        #[arg(value_name = "TARGET")]
        target: String,
        /// The new directory.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
        /// The backup to restore (see `sealdb backups`); the newest by default.
        #[arg(long, value_name = "N")]
        id: Option<u64>,
    },
    /// Dump every key and value to a stream, sealed under the database's master key.
    ///
    /// Every keyspace is dumped (the default one and the named ones, with their names sealed
    /// like the records); import recreates them.
    ///
    /// The stream is chunked and sealed (AES-256-GCM, under a key derived from the master key
    /// with a random salt): truncation, reordering and edits are detected on import. With
    /// --plaintext (required for an unencrypted database) keys and values are written in the
    /// clear, with crc32s against accidents only. Writes to FILE (created, never overwritten;
    /// mode 0600) or standard output.
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// Write the dump to this new file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write keys and values in the clear.
        #[arg(long)]
        plaintext: bool,
    },
    /// Load a dump made by `export` into a database (created if missing).
    ///
    /// Each record goes into the keyspace of the same name, created if missing. Dumps of
    /// earlier releases (the default keyspace only) load too. With a key option the dump is opened with that key and the database is encrypted with
    /// it; with --plaintext the dump is a plaintext one.
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// The dump to load.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// The dump was written with --plaintext.
        #[arg(long)]
        plaintext: bool,
    },
    /// The cold tier: status, archive, recall.
    #[command(subcommand)]
    Cold(ColdCommand),
}

/// The cold tier's commands.
#[derive(Subcommand, Debug)]
pub(crate) enum ColdCommand {
    /// Local and cold files and bytes, uploads, downloads, cache figures, the last error.
    Status(ColdArgs),
    /// Move every table and closed value-log segment to the object store now.
    ///
    /// Each file is uploaded, its size checked, read back and its SHA-256 compared, the
    /// manifest updated durably, and only then the local copy removed.
    Archive(ColdArgs),
    /// Bring every cold file back to local disk (to detach the database from the store).
    Recall(ColdArgs),
}

/// `verify`: a database and, optionally, its object store.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// The object store of the cold files, as for `sealdb cold`: `s3://BUCKET/PREFIX` (AWS_*
    /// environment variables), or a local directory used as an object store.
    #[arg(long, value_name = "STORE")]
    pub(crate) store: Option<String>,
}

/// A database and its object store.
#[derive(Args, Debug)]
pub(crate) struct ColdArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
    /// `s3://BUCKET/PREFIX` (AWS_* environment variables), or a local directory used as an
    /// object store.
    #[arg(long, value_name = "STORE")]
    pub(crate) store: String,
    /// Files untouched for fewer seconds than this stay local (`archive`; default 0: every
    /// table and closed value-log segment goes cold).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub(crate) older_than: u64,
}

/// The data directory and the key options.
#[derive(Args, Debug)]
pub(crate) struct DbArgs {
    /// The database's data directory.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Per data key: id, age, live bytes and files; the cipher; bytes left to re-encrypt.
    Status(DbArgs),
    /// Make a new data key current for every file written from now on.
    ///
    /// Older files stay readable under their keys until re-encrypted (`keys reencrypt`, or
    /// the background compactor). Prints the new key's id.
    RotateData(DbArgs),
    /// Re-wrap every data key under a new master key; afterwards only the new key opens it.
    ///
    /// The current key is given with the usual key options, the new one with --new-key-env,
    /// --new-key-file or --new-passphrase-env. The registry is replaced atomically: a crash
    /// leaves it under the old key or the new one. Rotate after a suspected leak of the
    /// master key; then also rotate-data and reencrypt if data keys may have leaked.
    RotateMaster {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        new: NewKeyArgs,
    },
    /// Re-encrypt every file under the current data key, then destroy the retired keys.
    ///
    /// Runs unthrottled until no live file is sealed under a retired key, then removes those
    /// keys from the registry. Shows a progress bar on a terminal.
    Reencrypt(DbArgs),
    /// Incident response: new master key, new data key, every file re-encrypted, old keys gone.
    ///
    /// For a master key or a copy of KEYS that may have leaked: makes the new master key
    /// (--new-key-env, --new-key-file or --new-passphrase-env) and a new data key current,
    /// re-encrypts every live file under the new data key (unthrottled), and destroys every old
    /// data key. Afterwards the old master key is refused and no old copy of KEYS holds a key
    /// that opens a file in use. A crash part-way leaves a database the new key opens; run the
    /// command again (with the new key as the current one) or `keys reencrypt` to finish.
    Rekey {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        new: NewKeyArgs,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn command_definition_is_valid() {
        // clap's own consistency checks (duplicate names, conflicting settings).
        Cli::command().debug_assert();
    }
}
