//! `sealdb`: the command-line tool of the sealdb key-value store.
//!
//! Each command is a thin layer over the library. A key is never taken as an argument value
//! (it would show in `ps` and in shell history): commands that need one take `--key-env VAR`,
//! `--key-file FILE` (refused unless mode 0600) or `--passphrase-env VAR`; none means an
//! unencrypted database. Exit status: 0 success, 1 corruption found or a check failed, 2 usage
//! or any other error (`/work/shared/API.md`, "The command-line tool").

mod args;
mod commands;
mod convert;
mod db;
mod keysrc;
mod ops;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sealdb::Error;
use serde_json::json;

use args::{Cli, Command};
use db::{arg_bytes, done, open, Mode};
use output::escape;

/// Exit status: a check failed or corruption was found (also: `get` found no such key).
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit status for usage errors and any other error, as for clap's own usage errors.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // --help and --version come here too, with status 0; usage errors with status 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sealdb: {}", describe(&e));
            ExitCode::from(if e.is_corruption() { EXIT_FAILED } else { EXIT_USAGE })
        }
    }
}

/// The error as an operator should read it, with what to do next.
fn describe(e: &Error) -> String {
    match e {
        Error::WrongMasterKey => {
            "wrong master key: it does not open this database's key registry; nothing was \
             changed"
                .into()
        }
        Error::EncryptionRequired(dir) => format!(
            "the database at {} is encrypted: give its key with --key-env, --key-file or \
             --passphrase-env",
            dir.display()
        ),
        Error::NotEncrypted(dir) => format!(
            "the database at {} is not encrypted: run the command without a key option",
            dir.display()
        ),
        Error::Locked(dir) => format!(
            "the database at {} is locked: another process has it open; stop it first",
            dir.display()
        ),
        Error::Corruption { .. } => format!("corruption: {e}; run `sealdb verify` for a report"),
        other => other.to_string(),
    }
}

fn run(cli: &Cli) -> sealdb::Result<u8> {
    let json = cli.json;
    match &cli.command {
        Command::Keygen { out } => commands::keygen(out.as_deref(), json),
        Command::Info(db) => commands::info(db, json),
        Command::Verify(v) => commands::verify(v, json),
        Command::Keys(k) => commands::keys(k, json),
        Command::Audit { db, verify } => commands::audit(db, *verify, json),
        Command::Get { db, key, hex } => {
            let key = arg_bytes(key, *hex, "KEY")?;
            let d = open(db, Mode::Read)?;
            let Some(v) = d.get(&key)? else {
                eprintln!("sealdb: key not found");
                return Ok(EXIT_FAILED);
            };
            if json {
                let doc = json!({"key": hex::encode(&key), "value": hex::encode(&v)});
                println!("{doc}");
            } else {
                println!("{}", escape(&v));
            }
            Ok(0)
        }
        Command::Put { db, key, value, hex, create } => {
            let key = arg_bytes(key, *hex, "KEY")?;
            let value = arg_bytes(value, *hex, "VALUE")?;
            let d = open(db, if *create { Mode::Create } else { Mode::Write })?;
            d.put(&key, &value)?;
            d.sync()?;
            d.close()?;
            done(json, "stored");
            Ok(0)
        }
        Command::Delete { db, key, hex } => {
            let key = arg_bytes(key, *hex, "KEY")?;
            let d = open(db, Mode::Write)?;
            d.delete(&key)?;
            d.sync()?;
            d.close()?;
            done(json, "deleted");
            Ok(0)
        }
        Command::Scan { db, prefix, limit, hex } => {
            let prefix = prefix.as_deref().map(|p| arg_bytes(p, *hex, "P")).transpose()?;
            let d = open(db, Mode::Read)?;
            let it = match &prefix {
                Some(p) => d.prefix(p),
                None => d.iter(),
            };
            let mut out = std::io::stdout().lock();
            for item in it.take(limit.unwrap_or(usize::MAX)) {
                let (k, v) = item?;
                let line = if json {
                    json!({"key": hex::encode(&k), "value": hex::encode(&v)}).to_string()
                } else {
                    format!("{}\t{}", escape(&k), escape(&v))
                };
                if writeln!(out, "{line}").is_err() {
                    break; // stdout closed (a pipe into `head`): not an error
                }
            }
            Ok(0)
        }
        Command::Encrypt(db) => convert::encrypt(db, json),
        Command::Decrypt(db) => convert::decrypt(db, json),
        Command::Checkpoint { db, dest, store } => {
            ops::checkpoint(db, dest, store.as_deref(), json)
        }
        Command::Backup { db, target, store } => ops::backup(db, target, store.as_deref(), json),
        Command::Backups { target } => ops::list(target, json),
        Command::Restore { target, dest, id } => ops::restore(target, dest, *id, json),
        Command::Export { db, out, plaintext } => ops::export(db, out.as_deref(), *plaintext, json),
        Command::Import { db, input, plaintext } => ops::import(db, input, *plaintext, json),
        Command::Cold(c) => ops::cold(c, json),
    }
}
