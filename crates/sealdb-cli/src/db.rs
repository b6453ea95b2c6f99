//! What every command shares: opening a database with its key, argument bytes, confirmations.

use std::path::Path;

use sealdb::{Encryption, Error, Options, DB};
use serde_json::json;

use crate::args::DbArgs;

/// Prints a one-word confirmation (`{"ok": true}` with --json) on stdout.
pub(crate) fn done(json: bool, what: &str) {
    if json {
        println!("{}", json!({"ok": true, "result": what}));
    } else {
        println!("{what}");
    }
}

/// A key, value or prefix argument as bytes.
pub(crate) fn arg_bytes(s: &str, hex: bool, what: &str) -> sealdb::Result<Vec<u8>> {
    if hex {
        hex::decode(s.trim())
            .map_err(|_| Error::InvalidArgument(format!("{what} is not valid hexadecimal")))
    } else {
        Ok(s.as_bytes().to_vec())
    }
}

/// Refuses a directory that holds no database (so that a typo does not create one).
pub(crate) fn require_database(dir: &Path) -> sealdb::Result<()> {
    if dir.join("MANIFEST").exists() || dir.join("KEYS").exists() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "no sealdb database at {} (put --create makes one)",
            dir.display()
        )))
    }
}

/// How a command opens its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Reads only: writes nothing to the directory, and may run beside the process that has
    /// the database open (`Options::read_only`).
    Read,
    /// Reads and writes an existing database (takes the directory's lock).
    Write,
    /// As `Write`, creating the database if the directory holds none.
    Create,
}

/// Opens the database in `args.dir` with its key, keeping the cipher its registry records.
pub(crate) fn open(args: &DbArgs, mode: Mode) -> sealdb::Result<DB> {
    let key = args.key.master_key_for(&args.dir)?;
    open_with(args, mode, key)
}

/// As [`open`], with cold storage (the tier needs a writable open).
pub(crate) fn open_cold(args: &DbArgs, cold: sealdb::ColdStorage) -> sealdb::Result<DB> {
    let key = args.key.master_key_for(&args.dir)?;
    DB::open(options(args, Mode::Write, key)?.cold_storage(cold))
}

/// As [`open`], with the key already read.
pub(crate) fn open_with(
    args: &DbArgs,
    mode: Mode,
    key: Option<sealdb::MasterKey>,
) -> sealdb::Result<DB> {
    DB::open(options(args, mode, key)?)
}

/// The options every command opens a database with.
fn options(args: &DbArgs, mode: Mode, key: Option<sealdb::MasterKey>) -> sealdb::Result<Options> {
    if mode != Mode::Create {
        require_database(&args.dir)?;
    }
    // No background threads: a command's work is done inline and nothing else runs meanwhile
    // (no automatic rotation or throttled re-encryption while `keys status` reads the state).
    let mut options = Options::new(&args.dir).background_work(false).read_only(mode == Mode::Read);
    if let Some(key) = key {
        // Checked before the open: a wrong key is refused having written nothing.
        let cipher = sealdb::verify::registry_cipher(&args.dir, &key)?;
        let mut enc = Encryption::new(key);
        if let Some(c) = cipher {
            enc = enc.cipher(c);
        }
        options = options.with_encryption(enc);
    }
    Ok(options)
}
