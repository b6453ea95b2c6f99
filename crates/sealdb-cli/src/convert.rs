//! `encrypt` and `decrypt`: turning encryption on for a database written without it, and off.

use sealdb::{Encryption, Error, Options, DB};
use serde_json::json;

use crate::args::DbArgs;
use crate::commands::with_progress;
use crate::db::{done, require_database};

/// The key that `encrypt` and `decrypt` cannot do without.
fn required_key(args: &DbArgs, what: &str) -> sealdb::Result<sealdb::MasterKey> {
    args.key.master_key_for(&args.dir)?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{what} needs the master key: give it with --key-env, --key-file or --passphrase-env \
             (`sealdb keygen` makes one)"
        ))
    })
}

pub(crate) fn encrypt(args: &DbArgs, json: bool) -> sealdb::Result<u8> {
    require_database(&args.dir)?;
    let key = required_key(args, "encrypt")?;
    let options = Options::new(&args.dir)
        .background_work(false)
        .with_encryption(Encryption::new(key).encrypt_existing());
    let db = DB::open(options)?;
    let start =
        db.encryption_status().ok_or_else(|| Error::InvalidArgument("no encryption".into()))?;
    with_progress(
        &db,
        "encrypting",
        start.plaintext_bytes_left,
        |s| s.plaintext_bytes_left,
        || db.reencrypt(),
    )?;
    let end =
        db.encryption_status().ok_or_else(|| Error::InvalidArgument("no encryption".into()))?;
    db.close()?;
    if json {
        println!(
            "{}",
            json!({"encrypted": true, "plaintext_files_left": end.plaintext_files_left,
                   "sealed_bytes": start.plaintext_bytes_left})
        );
    } else {
        println!(
            "encrypted: {} plaintext bytes sealed; the database opens only with its key now",
            start.plaintext_bytes_left
        );
    }
    Ok(0)
}

pub(crate) fn decrypt(args: &DbArgs, json: bool) -> sealdb::Result<u8> {
    require_database(&args.dir)?;
    let key = required_key(args, "decrypt")?;
    // The cipher the registry records (checked first: a wrong key is refused having written
    // nothing).
    let cipher = sealdb::verify::registry_cipher(&args.dir, &key)?;
    let mut enc = Encryption::new(key);
    if let Some(c) = cipher {
        enc = enc.cipher(c);
    }
    sealdb::decrypt_database(Options::new(&args.dir).background_work(false).with_encryption(enc))?;
    done(json, "decrypted: the database opens without a key now, and its files are readable");
    Ok(0)
}
