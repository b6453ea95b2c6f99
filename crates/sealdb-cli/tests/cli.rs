//! The `sealdb` binary as an operator runs it, on real directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `sealdb args` with `env` added to its environment.
fn sealdb_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sealdb"));
    c.args(args).env_remove("SEALDB_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run sealdb")
}

fn sealdb(args: &[&str]) -> Output {
    sealdb_env(args, &[])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit status")
}

/// A new master key from `sealdb keygen`.
fn keygen() -> String {
    let out = sealdb(&["keygen"]);
    assert_eq!(code(&out), 0);
    let k = text(&out.stdout).trim().to_owned();
    assert_eq!(k.len(), 64);
    assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    k
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

#[test]
fn version_prints_the_package_version() {
    let out = sealdb(&["--version"]);
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout).trim(), format!("sealdb {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_documents_each_command() {
    let out = sealdb(&["--help"]);
    assert_eq!(code(&out), 0);
    let help = text(&out.stdout);
    for cmd in ["keygen", "info", "verify", "keys", "audit", "get", "put", "scan"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(&format!("{cmd} "))), "{cmd}");
    }
    let out = sealdb(&["verify", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("--key-file") && help.contains("offset"), "{help}");
}

#[test]
fn usage_errors_exit_2() {
    let out = sealdb(&[]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("Usage: sealdb"));
    for args in [&["frobnicate"][..], &["--frobnicate"], &["get", "d", "k", "--key", "00"]] {
        let out = sealdb(args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(text(&out.stderr).contains("error:"), "{args:?}");
    }
    // Two key sources at once are refused.
    let out = sealdb(&["get", "d", "k", "--key-env", "A", "--passphrase-env", "B"]);
    assert_eq!(code(&out), 2);
}

#[cfg(unix)]
#[test]
fn keygen_writes_a_0600_file_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("master.key");
    let fs = f.to_str().unwrap();
    let out = sealdb(&["keygen", "--out", fs]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "the key went to stdout");
    assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&f).unwrap();
    assert_eq!(key.trim().len(), 64);
    let out = sealdb(&["keygen", "--out", fs]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), key, "overwritten");
    // The file works as a key source; widened to 0644 it is refused.
    let db = dir.path().join("db");
    let dbs = db.to_str().unwrap();
    assert_eq!(code(&sealdb(&["put", dbs, "k", "v", "--key-file", fs, "--create"])), 0);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = sealdb(&["get", dbs, "k", "--key-file", fs]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("chmod 600"), "{}", text(&out.stderr));
}

#[test]
fn put_get_scan_delete_round_trip_encrypted_and_plain() {
    for encrypted in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let d = db.to_str().unwrap();
        let key = keygen();
        let env: &[(&str, &str)] = if encrypted { &[("SEALDB_KEY", &key)] } else { &[] };
        let k: &[&str] = if encrypted { &["--key-env", "SEALDB_KEY"] } else { &[] };
        let run = |args: &[&str]| sealdb_env(&[args, k].concat(), env);
        // Without --create a missing database is an error, and none is created.
        assert_eq!(code(&run(&["put", d, "a", "1"])), 2);
        assert!(!db.exists());
        assert_eq!(code(&run(&["put", d, "user:1", "Ada\nLovelace", "--create"])), 0);
        assert_eq!(code(&run(&["put", d, "user:2", "Grace"])), 0);
        assert_eq!(code(&run(&["put", d, "00ff", "00ff", "--hex"])), 0);
        assert_eq!(code(&run(&["put", d, "zzz", "last"])), 0);

        let out = run(&["get", d, "user:1"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "Ada\\nLovelace\n");
        let out = run(&["get", d, "nope"]);
        assert_eq!(code(&out), 1);
        assert!(out.stdout.is_empty());

        let out = run(&["scan", d]);
        assert_eq!(code(&out), 0);
        assert_eq!(
            text(&out.stdout),
            "\\x00\\xff\t\\x00\\xff\nuser:1\tAda\\nLovelace\nuser:2\tGrace\nzzz\tlast\n"
        );
        let out = run(&["scan", d, "--prefix", "user:", "--limit", "1", "--json"]);
        let lines: Vec<serde_json::Value> =
            text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["key"], hex::encode("user:1"));
        assert_eq!(lines[0]["value"], hex::encode("Ada\nLovelace"));

        assert_eq!(code(&run(&["delete", d, "user:1"])), 0);
        assert_eq!(code(&run(&["get", d, "user:1"])), 1);
        let out = run(&["get", d, "user:2", "--json"]);
        assert_eq!(json(&out)["value"], hex::encode("Grace"));

        // Nothing readable in the clear on disk when encrypted.
        if encrypted {
            for (p, bytes) in snapshot(&db) {
                assert!(!bytes.windows(5).any(|w| w == b"Grace"), "{} leaks", p.display());
            }
        }
        let out = run(&["verify", d]);
        assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    }
}

#[test]
fn wrong_key_exits_2_with_a_clear_message_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (good, bad) = (keygen(), keygen());
    let env = [("GOOD", good.as_str()), ("BAD", bad.as_str())];
    assert_eq!(code(&sealdb_env(&["put", d, "k", "v", "--key-env", "GOOD", "--create"], &env)), 0);
    let before = snapshot(dir.path());
    for args in [
        &["get", d, "k", "--key-env", "BAD"][..],
        &["put", d, "k", "w", "--key-env", "BAD"],
        &["keys", "rotate-data", d, "--key-env", "BAD"],
        &["keys", "rotate-master", d, "--key-env", "BAD", "--new-key-env", "GOOD"],
        &["verify", d, "--key-env", "BAD"],
        &["audit", d, "--verify", "--key-env", "BAD"],
    ] {
        let out = sealdb_env(args, &env);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(text(&out.stderr).contains("wrong master key"), "{}", text(&out.stderr));
        assert_eq!(snapshot(dir.path()), before, "{args:?} changed the directory");
    }
    // No key for an encrypted database: told how to give one, nothing changed.
    let out = sealdb(&["get", d, "k"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--key-env"));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn rotate_data_then_reencrypt_leaves_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    let run = |args: &[&str]| sealdb_env(&[args, &["--key-env", "K"]].concat(), &env);
    assert_eq!(code(&run(&["put", d, "a", "1", "--create"])), 0);
    for i in 0..20 {
        assert_eq!(code(&run(&["put", d, &format!("k{i}"), &"v".repeat(100)])), 0);
    }
    let out = run(&["keys", "rotate-data", d, "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json(&out)["current_key_id"], 2);
    let s = json(&run(&["keys", "status", d, "--json"]));
    assert_eq!(s["keys"].as_array().unwrap().len(), 2, "{s}");
    assert!(s["reencrypt_bytes_left"].as_u64().unwrap() > 0, "{s}");
    let out = run(&["keys", "reencrypt", d]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let s = json(&run(&["keys", "status", d, "--json"]));
    let keys = s["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{s}");
    assert_eq!(keys[0]["id"], 2);
    assert_eq!(s["reencrypt_bytes_left"], 0);
    assert_eq!(text(&run(&["get", d, "k7"]).stdout).trim(), "v".repeat(100));
    // The audit log tells the story, and its chain holds.
    let out = run(&["audit", d, "--verify", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let a = json(&out);
    let events: Vec<&str> =
        a["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    for e in ["rotate_data_key", "reencrypt_start", "key_destroyed", "reencrypt_finish"] {
        assert!(events.contains(&e), "{events:?}");
    }
    assert_eq!(a["chain"]["ok"], true);
}

#[test]
fn rotate_master_refuses_the_old_key_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (old, new) = (keygen(), keygen());
    let env = [("OLD", old.as_str()), ("NEW", new.as_str())];
    assert_eq!(code(&sealdb_env(&["put", d, "k", "v", "--key-env", "OLD", "--create"], &env)), 0);
    let out =
        sealdb_env(&["keys", "rotate-master", d, "--key-env", "OLD", "--new-key-env", "NEW"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = sealdb_env(&["get", d, "k", "--key-env", "OLD"], &env);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("wrong master key"));
    let out = sealdb_env(&["get", d, "k", "--key-env", "NEW"], &env);
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), "v\n");
    // A passphrase works as a master key source too.
    let env = [("NEW", new.as_str()), ("PASS", "correct horse battery staple")];
    let out = sealdb_env(
        &["keys", "rotate-master", d, "--key-env", "NEW", "--new-passphrase-env", "PASS"],
        &env,
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = sealdb_env(&["get", d, "k", "--passphrase-env", "PASS"], &env);
    assert_eq!(text(&out.stdout), "v\n");
}

/// A database with every kind of file: a table, a value-log segment, a WAL with records, the
/// manifest and the key registry.
fn build_for_verify(d: &str, env: &[(&str, &str)]) {
    let run = |args: &[&str]| sealdb_env(&[args, &["--key-env", "K"]].concat(), env);
    assert_eq!(code(&run(&["put", d, "small", "x", "--create"])), 0);
    // Large values go to the value log; enough puts across opens leave tables behind.
    for i in 0..8 {
        assert_eq!(code(&run(&["put", d, &format!("big{i}"), &"B".repeat(5000)])), 0);
    }
    assert_eq!(code(&run(&["keys", "rotate-data", d])), 0);
    assert_eq!(code(&run(&["put", d, "late", "in the WAL"])), 0);
}

/// The largest file of `dir` whose name ends with `suffix`.
fn largest(dir: &Path, suffix: &str) -> PathBuf {
    snapshot(dir)
        .into_iter()
        .filter(|(p, _)| p.to_str().unwrap().ends_with(suffix))
        .max_by_key(|(_, b)| b.len())
        .unwrap_or_else(|| panic!("no {suffix} file"))
        .0
}

#[test]
fn verify_exits_0_clean_and_1_naming_file_and_offset_of_a_flipped_byte() {
    let key = keygen();
    let env = [("K", key.as_str())];
    for kind in [".sst", ".wal", ".vlog", "MANIFEST", "KEYS"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        build_for_verify(d, &env);
        let out = sealdb_env(&["verify", d, "--key-env", "K", "--json"], &env);
        assert_eq!(code(&out), 0, "{}", text(&out.stdout));
        let r = json(&out);
        assert_eq!(r["ok"], true);
        assert!(r["files_checked"].as_u64().unwrap() >= 5, "{r}");

        let path = largest(dir.path(), kind);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 30;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let before = snapshot(dir.path());

        let out = sealdb_env(&["verify", d, "--key-env", "K"], &env);
        assert_eq!(code(&out), 1, "{kind}: {}", text(&out.stdout));
        let report = text(&out.stdout);
        let name = path.to_str().unwrap();
        let line = report
            .lines()
            .find(|l| l.starts_with("CORRUPT") && l.contains(name))
            .unwrap_or_else(|| panic!("{kind}: {report}"));
        assert!(line.contains(" at offset "), "{line}");
        let out = sealdb_env(&["verify", d, "--key-env", "K", "--json"], &env);
        assert_eq!(code(&out), 1);
        let p = &json(&out)["problems"][0];
        assert_eq!(p["file"], name, "{kind}");
        assert!(p["offset"].as_u64().unwrap() < bytes.len() as u64);
        assert_eq!(snapshot(dir.path()), before, "verify wrote to the directory");
    }
}

#[test]
fn verify_refuses_a_missing_directory_and_a_wrong_kind_of_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    let out = sealdb(&["verify", missing.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(!missing.exists(), "verify created the directory");
    // A plain database given a key.
    let d = dir.path().join("plain");
    let d = d.to_str().unwrap();
    assert_eq!(code(&sealdb(&["put", d, "k", "v", "--create"])), 0);
    let key = keygen();
    let out = sealdb_env(&["verify", d, "--key-env", "K"], &[("K", &key)]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("not encrypted"));
    assert_eq!(code(&sealdb(&["verify", d])), 0);
}

#[test]
fn verify_refuses_a_database_open_in_a_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(code(&sealdb(&["put", d, "k", "v", "--create"])), 0);
    let db = sealdb::DB::open(sealdb::Options::new(dir.path())).unwrap();
    let out = sealdb(&["verify", d]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("locked"), "{}", text(&out.stderr));
    drop(db);
    assert_eq!(code(&sealdb(&["verify", d])), 0);
}

#[test]
fn an_edited_audit_line_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    let run = |args: &[&str]| sealdb_env(&[args, &["--key-env", "K"]].concat(), &env);
    assert_eq!(code(&run(&["put", d, "k", "v", "--create"])), 0);
    assert_eq!(code(&run(&["keys", "rotate-data", d])), 0);
    let out = run(&["audit", d, "--verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("rotate_data_key key_id=2"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("chain ok"));
    let log = dir.path().join("AUDIT.log");
    let edited = std::fs::read_to_string(&log).unwrap().replace("\"key_id\":2", "\"key_id\":7");
    std::fs::write(&log, edited).unwrap();
    let out = run(&["audit", d, "--verify"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stdout).contains("chain BROKEN"), "{}", text(&out.stdout));
    let out = run(&["verify", d]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stdout).contains("AUDIT.log at offset"), "{}", text(&out.stdout));
}

#[test]
fn info_reports_levels_value_log_and_encryption() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    build_for_verify(d, &env);
    let out = sealdb_env(&["--json", "info", d, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["cipher"], "AES-256-GCM");
    assert_eq!(v["data_keys"], 2, "{v}");
    assert_eq!(v["levels"].as_array().unwrap().len(), 7);
    // The 5000-byte values went to the value log (compressed: they are one repeated letter).
    assert!(!v["vlog_segments"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["vlog_bytes"].as_u64().unwrap() > 0, "{v}");
    let files: u64 =
        v["levels"].as_array().unwrap().iter().map(|l| l["files"].as_u64().unwrap()).sum();
    assert_eq!(v["table_files"].as_u64().unwrap(), files);
    // The text form says the same in lines an operator reads.
    let out = sealdb_env(&["info", d, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0);
    let t = text(&out.stdout);
    assert!(t.contains("encryption     AES-256-GCM"), "{t}");
    assert!(t.contains("value log"), "{t}");
    // Plain databases say so.
    let plain = tempfile::tempdir().unwrap();
    let p = plain.path().to_str().unwrap();
    assert_eq!(code(&sealdb(&["put", p, "k", "v", "--create"])), 0);
    let v = json(&sealdb(&["--json", "info", p]));
    assert_eq!(v["encrypted"], false);
    assert!(v.get("cipher").is_none());
}

#[test]
fn rekey_moves_everything_to_a_new_master_and_data_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (old, new) = (keygen(), keygen());
    let env = [("K", old.as_str()), ("NEW", new.as_str())];
    build_for_verify(d, &env);
    let out =
        sealdb_env(&["--json", "keys", "rekey", d, "--key-env", "K", "--new-key-env", "NEW"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json(&out)["data_keys"], 1);
    let out = sealdb_env(&["get", d, "big3", "--key-env", "K"], &env);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("wrong master key"));
    let out = sealdb_env(&["get", d, "big3", "--key-env", "NEW"], &env);
    assert_eq!(text(&out.stdout).trim(), "B".repeat(5000));
    let out = sealdb_env(&["verify", d, "--key-env", "NEW"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
}

#[test]
fn reading_commands_write_nothing_even_beside_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    build_for_verify(d, &env);
    let before = snapshot(dir.path());
    for args in [
        vec!["get", d, "late"],
        vec!["scan", d, "--limit", "3"],
        vec!["info", d],
        vec!["keys", "status", d],
    ] {
        let out = sealdb_env(&[&args[..], &["--key-env", "K"]].concat(), &env);
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(snapshot(dir.path()), before, "a reading command changed the directory");
    // A process holding the database open does not stop them.
    let opts = sealdb::Options::new(dir.path())
        .with_encryption(sealdb::Encryption::new(sealdb::MasterKey::from_hex(&key).unwrap()));
    let db = sealdb::DB::open(opts).unwrap();
    db.put(b"fresh", b"from the writer").unwrap();
    db.sync().unwrap();
    let out = sealdb_env(&["get", d, "fresh", "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from the writer\n");
    let out = sealdb_env(&["put", d, "k", "v", "--key-env", "K"], &env);
    assert_eq!(code(&out), 2, "a writing command is refused while the database is open");
    drop(db);
}

/// Whether any file under `dir` holds `needle`.
fn any_file_holds(dir: &Path, needle: &[u8]) -> bool {
    snapshot(dir).values().any(|b| b.windows(needle.len()).any(|w| w == needle))
}

#[test]
fn encrypt_then_decrypt_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    let marker = "PLAINMARKER";
    assert_eq!(code(&sealdb(&["put", d, "k0", marker, "--create"])), 0);
    for i in 1..6 {
        let v = format!("{marker}-{i}-{}", "x".repeat(3000));
        assert_eq!(code(&sealdb(&["put", d, &format!("k{i}"), &v])), 0);
    }
    assert!(any_file_holds(dir.path(), marker.as_bytes()), "control: plaintext on disk");
    // Without a key it is refused, and nothing changes.
    let before = snapshot(dir.path());
    let out = sealdb(&["encrypt", d]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("needs the master key"), "{}", text(&out.stderr));
    assert_eq!(snapshot(dir.path()), before);

    let out = sealdb_env(&["--json", "encrypt", d, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json(&out)["plaintext_files_left"], 0);
    assert!(!any_file_holds(dir.path(), marker.as_bytes()), "plaintext left after encrypt");
    let out = sealdb(&["get", d, "k0"]);
    assert_eq!(code(&out), 2, "the database needs its key now");
    let out = sealdb_env(&["get", d, "k3", "--key-env", "K"], &env);
    assert!(text(&out.stdout).starts_with("PLAINMARKER-3-"), "{}", text(&out.stdout));
    assert_eq!(code(&sealdb_env(&["verify", d, "--key-env", "K"], &env)), 0);

    let out = sealdb_env(&["decrypt", d, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = sealdb(&["get", d, "k0"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{marker}\n"));
    let out = sealdb(&["--json", "scan", d]);
    assert_eq!(text(&out.stdout).lines().count(), 6);
}

#[test]
fn checkpoint_backup_restore_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("db");
    let d = d.to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    build_for_verify(d, &env);
    let run = |args: &[&str]| sealdb_env(&[args, &["--key-env", "K"]].concat(), &env);

    let cp = root.path().join("cp");
    let out = run(&["checkpoint", d, cp.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&run(&["get", cp.to_str().unwrap(), "late"]).stdout), "in the WAL\n");

    let target = root.path().join("backups");
    let t = target.to_str().unwrap();
    let out = sealdb_env(&["--json", "backup", d, t, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let first = json(&out);
    assert!(first["new_bytes"].as_u64().unwrap() > 0);
    assert_eq!(code(&run(&["put", d, "after", "the first backup"])), 0);
    let out = sealdb_env(&["--json", "backup", d, t, "--key-env", "K"], &env);
    let second = json(&out);
    assert!(second["new_bytes"].as_u64() < first["new_bytes"].as_u64(), "{second} vs {first}");
    // Listing needs no key.
    let out = sealdb(&["--json", "backups", t]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let list = json(&out)["backups"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);

    let r1 = root.path().join("r1");
    let id = first["id"].to_string();
    assert_eq!(code(&sealdb(&["restore", t, r1.to_str().unwrap(), "--id", &id])), 0);
    let r1 = r1.to_str().unwrap();
    assert_eq!(code(&run(&["get", r1, "after"])), 1, "the first backup predates the key");
    assert_eq!(text(&run(&["get", r1, "big3"]).stdout).trim(), "B".repeat(5000));
    let r2 = root.path().join("r2");
    assert_eq!(code(&sealdb(&["restore", t, r2.to_str().unwrap()])), 0, "the newest");
    assert_eq!(text(&run(&["get", r2.to_str().unwrap(), "after"]).stdout), "the first backup\n");
    assert_eq!(code(&run(&["verify", r2.to_str().unwrap()])), 0);
}

#[test]
fn export_import_round_trip_sealed_and_plain() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("db");
    let d = d.to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    let run = |args: &[&str]| sealdb_env(&[args, &["--key-env", "K"]].concat(), &env);
    assert_eq!(code(&run(&["put", d, "secret-key", "SECRETMARKER", "--create"])), 0);
    assert_eq!(code(&run(&["put", d, "other", "value"])), 0);

    let dump = root.path().join("dump");
    let out = run(&["export", d, "--out", dump.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let bytes = std::fs::read(&dump).unwrap();
    assert!(!bytes.windows(12).any(|w| w == b"SECRETMARKER"), "a sealed dump holds no plaintext");
    assert_eq!(code(&run(&["export", d, "--out", dump.to_str().unwrap()])), 2, "never overwrites");

    let copy = root.path().join("copy");
    let c = copy.to_str().unwrap();
    let out = run(&["import", c, "--in", dump.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&run(&["get", c, "secret-key"]).stdout), "SECRETMARKER\n");
    assert_eq!(code(&sealdb(&["get", c, "other"])), 2, "the import is encrypted");

    // A plaintext dump says what it is, and an unencrypted import of it works.
    let plain = root.path().join("plain.dump");
    assert_eq!(code(&run(&["export", d, "--plaintext", "--out", plain.to_str().unwrap()])), 0);
    assert!(std::fs::read(&plain).unwrap().windows(12).any(|w| w == b"SECRETMARKER"));
    let p = root.path().join("p");
    let p = p.to_str().unwrap();
    let out = sealdb(&["import", p, "--plaintext", "--in", plain.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&sealdb(&["get", p, "other"]).stdout), "value\n");
    // An unencrypted database without --plaintext: refused, nothing written.
    let out = sealdb(&["export", p]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--plaintext"));
}

/// A dump carries the named keyspaces, and `import` recreates them.
#[test]
fn export_import_carries_keyspaces() {
    let root = tempfile::tempdir().unwrap();
    let src = root.path().join("src");
    {
        let db = sealdb::DB::open(sealdb::Options::new(&src)).unwrap();
        db.put(b"k", b"default").unwrap();
        db.keyspace("accounts").unwrap().put(b"k", b"in accounts").unwrap();
        db.keyspace("empty").unwrap();
        db.close().unwrap();
    }
    let dump = root.path().join("dump");
    let out = sealdb(&[
        "export",
        src.to_str().unwrap(),
        "--plaintext",
        "--out",
        dump.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let info: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!((info["records"].as_u64(), info["keyspaces"].as_u64()), (Some(2), Some(2)));
    let dst = root.path().join("dst");
    let out =
        sealdb(&["import", dst.to_str().unwrap(), "--plaintext", "--in", dump.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "imported 2 records (2 named keyspaces)\n");
    let db = sealdb::DB::open(sealdb::Options::new(&dst)).unwrap();
    assert_eq!(db.keyspace_names().unwrap(), ["accounts", "empty"]);
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"default"[..]));
    let accounts = db.keyspace("accounts").unwrap();
    assert_eq!(accounts.get(b"k").unwrap().as_deref(), Some(&b"in accounts"[..]));
    assert_eq!(db.keyspace("empty").unwrap().iter().count(), 0);
}

/// Every file under `dir`, recursively.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn cold_archive_status_recall_on_a_local_store() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("db");
    let d = d.to_str().unwrap();
    let key = keygen();
    let env = [("K", key.as_str())];
    build_for_verify(d, &env);
    let store = root.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let s = store.to_str().unwrap();
    let cold =
        |cmd: &str| sealdb_env(&["--json", "cold", cmd, d, "--store", s, "--key-env", "K"], &env);
    let out = cold("archive");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let st = json(&out);
    assert!(st["cold_files"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["uploads"].as_u64().unwrap() >= 1, "{st}");
    // Without the store the database is refused clearly (exit 2), with the store it reads.
    let out = sealdb_env(&["get", d, "big3", "--key-env", "K"], &env);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("cold storage"), "{}", text(&out.stderr));
    let out = cold("status");
    assert_eq!(json(&out)["cold_files"], st["cold_files"]);
    // verify: cold files are not checked (and said so) without --store, checked with it, and
    // a changed object is a problem naming it (exit 1).
    let verify = |store: Option<&str>| {
        let mut args = vec!["--json", "verify", d, "--key-env", "K"];
        if let Some(s) = store {
            args.extend(["--store", s]);
        }
        sealdb_env(&args, &env)
    };
    let out = verify(None);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v = json(&out);
    assert_eq!(v["cold_files"], st["cold_files"], "{v}");
    assert_eq!(v["cold_unchecked"], st["cold_files"], "{v}");
    let out = sealdb_env(&["verify", d, "--key-env", "K"], &env);
    assert!(text(&out.stdout).contains("NOT checked"), "{}", text(&out.stdout));
    let out = verify(Some(s));
    assert_eq!(code(&out), 0, "{}", text(&out.stdout));
    let v = json(&out);
    assert_eq!(v["cold_checked"], st["cold_files"], "{v}");
    assert_eq!(v["cold_unchecked"], 0, "{v}");
    let object = walk_files(&store)
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .expect("a table object");
    let saved = std::fs::read(&object).unwrap();
    let mut bad = saved.clone();
    bad[saved.len() / 2] ^= 1;
    std::fs::write(&object, &bad).unwrap();
    let out = verify(Some(s));
    assert_eq!(code(&out), 1, "{}", text(&out.stdout));
    let problems = json(&out)["problems"].to_string();
    let name = object.file_name().unwrap().to_str().unwrap();
    assert!(problems.contains(name) && problems.contains("digest"), "{problems}");
    std::fs::write(&object, &saved).unwrap();
    // Checkpoints and backups of the tiered database take the store.
    let cp = root.path().join("cp");
    let cpd = cp.to_str().unwrap();
    let out = sealdb_env(&["checkpoint", d, cpd, "--key-env", "K"], &env);
    assert_eq!(code(&out), 2, "without --store the database does not open");
    assert!(text(&out.stderr).contains("cold storage"), "{}", text(&out.stderr));
    let out = sealdb_env(&["checkpoint", d, cpd, "--store", s, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let cp_cold =
        |cmd: &str| sealdb_env(&["--json", "cold", cmd, cpd, "--store", s, "--key-env", "K"], &env);
    let out = cp_cold("status");
    assert_eq!(json(&out)["cold_files"], st["cold_files"], "the checkpoint's files stay cold");
    let target = root.path().join("backups");
    let tgt = target.to_str().unwrap();
    let out = sealdb_env(&["backup", d, tgt, "--store", s, "--key-env", "K"], &env);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let restored = root.path().join("restored");
    let rd = restored.to_str().unwrap();
    assert_eq!(code(&sealdb(&["restore", tgt, rd])), 0);
    let out = sealdb_env(&["get", rd, "big3", "--key-env", "K"], &env);
    assert_eq!(text(&out.stdout).trim(), "B".repeat(5000), "restored without the store");
    let out = cold("recall");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json(&out)["cold_files"], 0);
    // The checkpoint's objects are its own: it still reads, and detaches too.
    let out = cp_cold("recall");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = sealdb_env(&["get", cpd, "big3", "--key-env", "K"], &env);
    assert_eq!(text(&out.stdout).trim(), "B".repeat(5000));
    let out = sealdb_env(&["get", d, "big3", "--key-env", "K"], &env);
    assert_eq!(text(&out.stdout).trim(), "B".repeat(5000));
    let out = sealdb_env(&["cold", "status", d, "--store", "s3:///x", "--key-env", "K"], &env);
    assert_eq!(code(&out), 2, "a bucket-less s3 URL is a usage error");
}
