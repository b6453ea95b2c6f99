//! The commands: each a thin layer over the library.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;

use sealdb::{Error, MasterKey, DB};
use serde_json::json;

use crate::args::{DbArgs, KeysCommand, VerifyArgs};
use crate::db::{done, open, require_database, Mode};
use crate::output::{self, utc};
use crate::EXIT_FAILED;

pub(crate) fn keygen(out: Option<&Path>, json: bool) -> sealdb::Result<u8> {
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
    let mut f = create_private(path)?;
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

/// Creates `path` for writing with mode 0600; an existing file is an error (never overwritten).
pub(crate) fn create_private(path: &Path) -> sealdb::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::InvalidArgument(format!(
                "{} already exists: it is never overwritten",
                path.display()
            ))
        } else {
            Error::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }
    })
}

pub(crate) fn info(args: &DbArgs, json: bool) -> sealdb::Result<u8> {
    let d = open(args, Mode::Read)?;
    let status = d.encryption_status();
    let stats = d.stats();
    d.close()?;
    let table_files: u64 = stats.levels.iter().map(|l| l.files).sum();
    let table_bytes: u64 = stats.levels.iter().map(|l| l.bytes).sum();
    let vlog_bytes: u64 = stats.vlog_segments.iter().map(|s| s.bytes).sum();
    let vlog_garbage: u64 = stats.vlog_segments.iter().map(|s| s.garbage).sum();
    if json {
        let levels: Vec<_> = stats
            .levels
            .iter()
            .enumerate()
            .map(|(n, l)| json!({"level": n, "files": l.files, "bytes": l.bytes}))
            .collect();
        let segments: Vec<_> = stats
            .vlog_segments
            .iter()
            .map(|s| {
                json!({"number": s.number, "bytes": s.bytes, "garbage": s.garbage,
                       "active": s.active})
            })
            .collect();
        let mut v = json!({
            "dir": args.dir.display().to_string(),
            "encrypted": status.is_some(),
            "levels": levels,
            "table_files": table_files,
            "table_bytes": table_bytes,
            "vlog_segments": segments,
            "vlog_bytes": vlog_bytes,
            "vlog_garbage_bytes": vlog_garbage,
            "memtable_bytes": stats.memtable_bytes,
        });
        if let Some(s) = &status {
            v["cipher"] = json!(output::cipher_name(s.cipher));
            v["current_key_id"] = json!(s.current_key_id);
            v["data_keys"] = json!(s.keys.len());
            v["reencrypt_bytes_left"] = json!(s.reencrypt_bytes_left);
        }
        println!("{v}");
        return Ok(0);
    }
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
    println!("tables         {table_files} files, {table_bytes} bytes");
    for (n, l) in stats.levels.iter().enumerate().filter(|(_, l)| l.files > 0) {
        println!("  L{n}           {:>6} files {:>14} bytes", l.files, l.bytes);
    }
    println!(
        "value log      {} segments, {vlog_bytes} bytes, {vlog_garbage} bytes garbage",
        stats.vlog_segments.len()
    );
    println!("memtable       {} bytes (replayed from the WAL)", stats.memtable_bytes);
    Ok(0)
}

pub(crate) fn verify(v: &VerifyArgs, json: bool) -> sealdb::Result<u8> {
    let args = &v.db;
    let key = args.key.master_key_for(&args.dir)?;
    let mut options = sealdb::VerifyOptions::new();
    if let Some(store) = &v.store {
        options = options.cold_storage(crate::ops::cold_at(store)?);
    }
    let r = sealdb::verify_with(&args.dir, key.as_ref(), &options)?;
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
            "cold_files": r.cold_files,
            "cold_checked": r.cold_checked,
            "cold_unchecked": r.cold_unchecked,
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
        if r.cold_files > 0 {
            println!(
                "cold files: {} in the object store, {} checked, {} NOT checked{}",
                r.cold_files,
                r.cold_checked,
                r.cold_unchecked,
                if v.store.is_none() { " (give --store to check them)" } else { "" }
            );
        }
    }
    Ok(if r.is_clean() { 0 } else { EXIT_FAILED })
}

pub(crate) fn keys(cmd: &KeysCommand, json: bool) -> sealdb::Result<u8> {
    match cmd {
        KeysCommand::Status(args) => {
            let d = open(args, Mode::Read)?;
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
            let d = open(args, Mode::Write)?;
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
            let d = open(db, Mode::Write)?;
            d.encryption_status().ok_or_else(not_encrypted)?;
            d.rotate_master_key(new_key)?;
            d.close()?;
            done(json, "master key rotated: only the new key opens the database now");
            Ok(0)
        }
        KeysCommand::Rekey { db, new } => {
            let new_key = new.master_key()?;
            let d = open(db, Mode::Write)?;
            d.encryption_status().ok_or_else(not_encrypted)?;
            d.rekey(new_key)?;
            let s = d.encryption_status().ok_or_else(not_encrypted)?;
            d.close()?;
            if json {
                println!(
                    "{}",
                    json!({"current_key_id": s.current_key_id, "data_keys": s.keys.len()})
                );
            } else {
                println!(
                    "rekeyed: only the new master key opens the database; every file is sealed \
                     under data key {} and the old data keys are destroyed",
                    s.current_key_id
                );
            }
            Ok(0)
        }
        KeysCommand::Reencrypt(args) => {
            let d = open(args, Mode::Write)?;
            let start = d.encryption_status().ok_or_else(not_encrypted)?;
            let r = with_progress(
                &d,
                "re-encrypting",
                start.reencrypt_bytes_left,
                |s| s.reencrypt_bytes_left,
                || d.reencrypt(),
            );
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

/// Runs `work` while a progress bar on stderr (a terminal only) follows the bytes `left` reads
/// from the encryption status, out of `total`.
pub(crate) fn with_progress(
    d: &DB,
    what: &str,
    total: u64,
    left: impl Fn(&sealdb::EncryptionStatus) -> u64,
    work: impl FnOnce() -> sealdb::Result<()> + Send,
) -> sealdb::Result<()> {
    if !std::io::stderr().is_terminal() || total == 0 {
        return work();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}"
        ))
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
                bar.set_position(total.saturating_sub(left(&st)));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        h.join().unwrap_or_else(|_| Err(Error::InvalidArgument(format!("{what} panicked"))))
    });
    bar.finish_and_clear();
    r
}

pub(crate) fn audit(args: &DbArgs, check: bool, json: bool) -> sealdb::Result<u8> {
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
