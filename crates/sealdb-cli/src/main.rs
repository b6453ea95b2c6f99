//! `sealdb`: the command-line tool of the sealdb key-value store.
//!
//! Each command is a thin layer over the library. A key is never taken as an argument value
//! (it would show in `ps` and in shell history): commands that need one take `--key-env VAR`,
//! `--key-file FILE` (refused unless mode 0600) or `--passphrase-env VAR`; none means an
//! unencrypted database. Exit status: 0 success, 1 corruption found or a check failed, 2 usage
//! or any other error (`/work/shared/API.md`, "The command-line tool").

mod keysrc;
mod output;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sealdb::{Encryption, Error, MasterKey, Options, DB};
use serde_json::json;

use keysrc::{KeyArgs, NewKeyArgs};
use output::{escape, utc};

/// Exit status: a check failed or corruption was found (also: `get` found no such key).
const EXIT_FAILED: u8 = 1;
/// Exit status for usage errors and any other error, as for clap's own usage errors.
const EXIT_USAGE: u8 = 2;

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
                  other error (wrong key, locked database, missing directory).\n\nNot yet \
                  implemented (exit 2): checkpoint, backup, backups, restore, export, import, \
                  encrypt, decrypt, cold."
)]
struct Cli {
    /// Machine-readable output: one JSON document (JSON lines for `scan`) on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    /// Show a database's encryption: cipher, data keys, bytes left to re-encrypt.
    ///
    /// Opens the database (which replays its WAL). Levels, files and sizes are not shown yet:
    /// the library does not expose them.
    Info(DbArgs),
    /// Check every tag and crc of every file of a database, offline.
    ///
    /// Reads the key registry, the manifest, every SSTable (every block), every value-log
    /// segment (every entry), every WAL (every record) and the audit log's MAC chain, and
    /// checks the manifest against the files present. Takes the directory's lock (a database
    /// open in another process is refused, exit 2) and writes nothing. Each problem is printed
    /// as FILE at offset N: CHECK. Exit status 1 if any problem is found.
    Verify(DbArgs),
    /// Data keys: status, rotate-data, rotate-master, reencrypt.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List the key events of the audit log, and check its MAC chain with --verify.
    ///
    /// AUDIT.log holds one line per key event (open, rotations, re-encryption, key
    /// destruction) with its time; each line carries an HMAC chained to the previous one, so
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
    #[command(flatten)]
    Planned(Planned),
}

/// Commands of later issues: they say so and exit 2.
#[derive(Subcommand, Debug)]
enum Planned {
    /// Copy a consistent view of a database to a new directory (not yet implemented).
    Checkpoint(Rest),
    /// Back a database up to a directory or an S3 prefix (not yet implemented).
    Backup(Rest),
    /// List the backups at a target (not yet implemented).
    Backups(Rest),
    /// Restore a backup into a new directory (not yet implemented).
    Restore(Rest),
    /// Dump a database, sealed unless --plaintext (not yet implemented).
    Export(Rest),
    /// Load a dump into a database (not yet implemented).
    Import(Rest),
    /// Encrypt an unencrypted database in place (not yet implemented).
    Encrypt(Rest),
    /// Decrypt an encrypted database in place (not yet implemented).
    Decrypt(Rest),
    /// Cold tier: status, archive, recall (not yet implemented).
    Cold(Rest),
}

/// Whatever arguments a planned command is given.
#[derive(Args, Debug)]
struct Rest {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// The data directory and the key options.
#[derive(Args, Debug)]
struct DbArgs {
    /// The database's data directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
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
}

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
        Command::Keygen { out } => keygen(out.as_deref(), json),
        Command::Info(db) => info(db, json),
        Command::Verify(db) => verify(db, json),
        Command::Keys(k) => keys(k, json),
        Command::Audit { db, verify } => audit(db, *verify, json),
        Command::Get { db, key, hex } => {
            let key = arg_bytes(key, *hex, "KEY")?;
            let d = open(db, false)?;
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
            let d = open(db, *create)?;
            d.put(&key, &value)?;
            d.sync()?;
            d.close()?;
            done(json, "stored");
            Ok(0)
        }
        Command::Delete { db, key, hex } => {
            let key = arg_bytes(key, *hex, "KEY")?;
            let d = open(db, false)?;
            d.delete(&key)?;
            d.sync()?;
            d.close()?;
            done(json, "deleted");
            Ok(0)
        }
        Command::Scan { db, prefix, limit, hex } => {
            let prefix = prefix.as_deref().map(|p| arg_bytes(p, *hex, "P")).transpose()?;
            let d = open(db, false)?;
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
        Command::Planned(p) => {
            let name = format!("{p:?}");
            let name = name.split('(').next().unwrap_or("").to_ascii_lowercase();
            eprintln!("sealdb: command `{name}` is not yet implemented");
            Ok(EXIT_USAGE)
        }
    }
}

/// Prints a one-word confirmation (`{"ok": true}` with --json) on stdout.
fn done(json: bool, what: &str) {
    if json {
        println!("{}", json!({"ok": true, "result": what}));
    } else {
        println!("{what}");
    }
}

/// A key, value or prefix argument as bytes.
fn arg_bytes(s: &str, hex: bool, what: &str) -> sealdb::Result<Vec<u8>> {
    if hex {
        hex::decode(s.trim())
            .map_err(|_| Error::InvalidArgument(format!("{what} is not valid hexadecimal")))
    } else {
        Ok(s.as_bytes().to_vec())
    }
}

/// Refuses a directory that holds no database (so that a typo does not create one).
fn require_database(dir: &Path) -> sealdb::Result<()> {
    if dir.join("MANIFEST").exists() || dir.join("KEYS").exists() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "no sealdb database at {} (put --create makes one)",
            dir.display()
        )))
    }
}

/// Opens the database in `args.dir` with its key, keeping the cipher its registry records.
fn open(args: &DbArgs, create: bool) -> sealdb::Result<DB> {
    if !create {
        require_database(&args.dir)?;
    }
    // No background threads: a command's work is done inline and nothing else runs meanwhile
    // (no automatic rotation or throttled re-encryption while `keys status` reads the state).
    let mut options = Options::new(&args.dir).background_work(false);
    if let Some(key) = args.key.master_key_for(&args.dir)? {
        // Checked before the open: a wrong key is refused having written nothing.
        let cipher = sealdb::verify::registry_cipher(&args.dir, &key)?;
        let mut enc = Encryption::new(key);
        if let Some(c) = cipher {
            enc = enc.cipher(c);
        }
        options = options.with_encryption(enc);
    }
    DB::open(options)
}

fn keygen(out: Option<&Path>, json: bool) -> sealdb::Result<u8> {
    let key = MasterKey::generate();
    let hex = key.to_hex().ok_or_else(|| Error::InvalidArgument("no raw key".into()))?;
    let Some(path) = out else {
        if json {
            println!("{}", json!({"key": hex.as_str()}));
        } else {
            println!("{}", hex.as_str());
        }
        return Ok(0);
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::InvalidArgument(format!(
                "{} already exists: keygen never overwrites a key file",
                path.display()
            ))
        } else {
            Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }
    })?;
    f.write_all(hex.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    if json {
        println!("{}", json!({"out": path.display().to_string()}));
    } else {
        eprintln!("sealdb: wrote a new master key to {} (mode 0600)", path.display());
    }
    Ok(0)
}

fn info(args: &DbArgs, json: bool) -> sealdb::Result<u8> {
    let d = open(args, false)?;
    let status = d.encryption_status();
    if json {
        let v = match &status {
            None => json!({"dir": args.dir.display().to_string(), "encrypted": false}),
            Some(s) => json!({
                "dir": args.dir.display().to_string(),
                "encrypted": true,
                "cipher": output::cipher_name(s.cipher),
                "current_key_id": s.current_key_id,
                "data_keys": s.keys.len(),
                "reencrypt_bytes_left": s.reencrypt_bytes_left,
            }),
        };
        println!("{v}");
    } else {
        println!("directory      {}", args.dir.display());
        match &status {
            None => println!("encryption     none"),
            Some(s) => {
                println!("encryption     {}", output::cipher_name(s.cipher));
                println!("current key    {}", s.current_key_id);
                println!("data keys      {}", s.keys.len());
                println!("to re-encrypt  {} bytes", s.reencrypt_bytes_left);
            }
        }
    }
    d.close()?;
    Ok(0)
}

fn verify(args: &DbArgs, json: bool) -> sealdb::Result<u8> {
    let key = args.key.master_key_for(&args.dir)?;
    let r = sealdb::verify(&args.dir, key.as_ref())?;
    let item = |p: &sealdb::Problem| {
        let file = p.file.display().to_string();
        json!({"file": file, "offset": p.offset, "check": p.check})
    };
    if json {
        let v = json!({
            "ok": r.is_clean(),
            "encrypted": r.encrypted,
            "files_checked": r.files_checked,
            "blocks_checked": r.blocks_checked,
            "problems": r.problems.iter().map(item).collect::<Vec<_>>(),
            "warnings": r.warnings.iter().map(item).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        for p in &r.problems {
            println!("CORRUPT {p}");
        }
        for w in &r.warnings {
            println!("warning {w}");
        }
        println!(
            "{}: {} files, {} blocks checked, {} problems, {} warnings",
            if r.is_clean() { "ok" } else { "FAILED" },
            r.files_checked,
            r.blocks_checked,
            r.problems.len(),
            r.warnings.len()
        );
    }
    Ok(if r.is_clean() { 0 } else { EXIT_FAILED })
}

fn keys(cmd: &KeysCommand, json: bool) -> sealdb::Result<u8> {
    match cmd {
        KeysCommand::Status(args) => {
            let d = open(args, false)?;
            let s = d.encryption_status().ok_or_else(not_encrypted)?;
            let now = output::now();
            if json {
                let keys: Vec<_> = s
                    .keys
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id,
                            "current": k.id == s.current_key_id,
                            "created_at": k.created_at,
                            "age_seconds": now.saturating_sub(k.created_at),
                            "live_bytes": k.live_bytes,
                            "live_files": k.live_files,
                        })
                    })
                    .collect();
                let v = json!({
                    "cipher": output::cipher_name(s.cipher),
                    "current_key_id": s.current_key_id,
                    "reencrypt_bytes_left": s.reencrypt_bytes_left,
                    "keys": keys,
                });
                println!("{v}");
            } else {
                println!("cipher {}", output::cipher_name(s.cipher));
                println!(
                    "{:>6}  {:<8} {:<20} {:>10} {:>14} {:>6}",
                    "id", "", "created", "age", "live bytes", "files"
                );
                for k in &s.keys {
                    println!(
                        "{:>6}  {:<8} {:<20} {:>10} {:>14} {:>6}",
                        k.id,
                        if k.id == s.current_key_id { "current" } else { "retired" },
                        utc(k.created_at),
                        output::age(now.saturating_sub(k.created_at)),
                        k.live_bytes,
                        k.live_files
                    );
                }
                println!("bytes left to re-encrypt: {}", s.reencrypt_bytes_left);
            }
            d.close()?;
            Ok(0)
        }
        KeysCommand::RotateData(args) => {
            let d = open(args, false)?;
            let id = d.rotate_data_key()?;
            d.close()?;
            if json {
                println!("{}", json!({"current_key_id": id}));
            } else {
                println!(
                    "data key {id} is now current; run `sealdb keys reencrypt` to move old \
                     files to it"
                );
            }
            Ok(0)
        }
        KeysCommand::RotateMaster { db, new } => {
            let new_key = new.master_key()?;
            let d = open(db, false)?;
            d.encryption_status().ok_or_else(not_encrypted)?;
            d.rotate_master_key(new_key)?;
            d.close()?;
            done(json, "master key rotated: only the new key opens the database now");
            Ok(0)
        }
        KeysCommand::Reencrypt(args) => {
            let d = open(args, false)?;
            let start = d.encryption_status().ok_or_else(not_encrypted)?;
            let r = with_progress(&d, start.reencrypt_bytes_left, || d.reencrypt());
            r?;
            let s = d.encryption_status().ok_or_else(not_encrypted)?;
            d.close()?;
            if json {
                println!(
                    "{}",
                    json!({"current_key_id": s.current_key_id, "data_keys": s.keys.len(),
                           "reencrypt_bytes_left": s.reencrypt_bytes_left})
                );
            } else {
                println!(
                    "re-encrypted: {} data key(s) left (current {})",
                    s.keys.len(),
                    s.current_key_id
                );
            }
            Ok(0)
        }
    }
}

fn not_encrypted() -> Error {
    Error::InvalidArgument("the database is not encrypted: it has no data keys".into())
}

/// Runs `work` while a progress bar on stderr (a terminal only) follows the bytes left to
/// re-encrypt.
fn with_progress(
    d: &DB,
    total: u64,
    work: impl FnOnce() -> sealdb::Result<()> + Send,
) -> sealdb::Result<()> {
    if !std::io::stderr().is_terminal() || total == 0 {
        return work();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "re-encrypting {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let finished = std::sync::atomic::AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let r = work();
            finished.store(true, std::sync::atomic::Ordering::Release);
            r
        });
        while !finished.load(std::sync::atomic::Ordering::Acquire) {
            if let Some(st) = d.encryption_status() {
                bar.set_position(total.saturating_sub(st.reencrypt_bytes_left));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        h.join().unwrap_or_else(|_| Err(Error::InvalidArgument("re-encryption panicked".into())))
    });
    bar.finish_and_clear();
    r
}

fn audit(args: &DbArgs, check: bool, json: bool) -> sealdb::Result<u8> {
    require_database(&args.dir)?;
    let path = args.dir.join("AUDIT.log");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            )))
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|_| json!({"unparsed": true}));
            if let Some(o) = v.as_object_mut() {
                o.remove("mac");
            }
            v
        })
        .collect();
    let chain = if check {
        let key = args.key.master_key_for(&args.dir)?.ok_or_else(|| {
            Error::InvalidArgument(
                "--verify needs the master key (--key-env, --key-file or --passphrase-env)".into(),
            )
        })?;
        Some(sealdb::verify::verify_audit_log(&args.dir, &key))
    } else {
        None
    };
    let broken = matches!(chain, Some(Err(_)));
    if let Some(Err(e)) = &chain {
        if !e.is_corruption() {
            // A wrong key or an unreadable file: not a verdict on the chain.
            return Err(chain.and_then(Result::err).unwrap_or(Error::Closed));
        }
    }
    if json {
        let mut v = json!({"events": events});
        if let Some(c) = &chain {
            v["chain"] = match c {
                Ok(n) => json!({"ok": true, "lines": n}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            };
        }
        println!("{v}");
    } else {
        for e in &events {
            let ts = e.get("ts").and_then(serde_json::Value::as_u64).unwrap_or(0);
            let name = e.get("event").and_then(serde_json::Value::as_str).unwrap_or("?");
            let mut fields = String::new();
            if let Some(o) = e.as_object() {
                for (k, val) in o {
                    if k != "ts" && k != "event" {
                        let _ = write!(fields, " {k}={val}");
                    }
                }
            }
            println!("{}  {name}{fields}", utc(ts));
        }
        match &chain {
            Some(Ok(n)) => println!("chain ok: {n} events"),
            Some(Err(e)) => println!("chain BROKEN: {e}"),
            None => {}
        }
    }
    Ok(if broken { EXIT_FAILED } else { 0 })
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
