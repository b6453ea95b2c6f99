//! `sealdb`: the command-line tool of the sealdb key-value store.
//!
//! A skeleton for now: it parses its command line, answers `--help` and `--version`, and names
//! the commands it is planned to have; each of them reports that it is not yet implemented and
//! exits with status 2, the status for usage and other errors (`/work/shared/API.md`, "The
//! command-line tool"). No command reads a key or touches a database yet.

use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

/// The planned commands: name, and the line of help that says what each will do.
const PLANNED: [(&str, &str); 18] = [
    ("keygen", "Print a new master key (64 hex chars) or write it to a 0600 file"),
    ("info", "Files, levels, sizes, cipher, data keys of a database"),
    ("verify", "Check every tag and crc of every file, offline"),
    ("keys", "Data keys: status, rotate-data, rotate-master, reencrypt"),
    ("audit", "Key events, and whether the audit log's MAC chain holds"),
    ("checkpoint", "Copy a consistent view of a database to a new directory"),
    ("backup", "Back a database up to a directory or an S3 prefix"),
    ("backups", "List the backups at a target"),
    ("restore", "Restore a backup into a new directory"),
    ("export", "Dump a database, sealed unless --plaintext"),
    ("import", "Load a dump into a database"),
    ("encrypt", "Encrypt an unencrypted database in place"),
    ("decrypt", "Decrypt an encrypted database in place"),
    ("get", "Print the value of a key"),
    ("put", "Store a value under a key"),
    ("delete", "Delete a key"),
    ("scan", "List keys and values, optionally under a prefix"),
    ("cold", "Cold tier: status, archive, recall"),
];

/// Exit status for usage errors and any other error, as for clap's own usage errors.
const EXIT_USAGE: u8 = 2;

/// The command line: every planned command, each taking whatever arguments it is given so that
/// it can say it is not implemented rather than reject its arguments.
fn cli() -> Command {
    let mut cmd = Command::new("sealdb")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Inspect, verify and manage sealdb databases (encrypted embedded key-value store)")
        .after_help(
            "Only --help and --version work so far: every command is planned, not yet \
             implemented, and exits with status 2.",
        )
        .subcommand_required(true)
        .arg_required_else_help(true);
    for (name, about) in PLANNED {
        cmd = cmd.subcommand(
            Command::new(name).about(format!("{about} (not yet implemented)")).arg(
                Arg::new("args")
                    .num_args(0..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true)
                    .action(ArgAction::Append)
                    .hide(true),
            ),
        );
    }
    cmd
}

fn main() -> ExitCode {
    let matches = match cli().try_get_matches() {
        Ok(m) => m,
        // --help and --version come here too, with status 0; usage errors with status 2.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    match matches.subcommand_name() {
        Some(name) => {
            eprintln!("sealdb: command `{name}` is not yet implemented");
            ExitCode::from(EXIT_USAGE)
        }
        // `subcommand_required` makes clap refuse a command line without one.
        None => ExitCode::from(EXIT_USAGE),
    }
}

#[cfg(test)]
mod tests {
    use super::cli;

    #[test]
    fn command_definition_is_valid() {
        // clap's own consistency checks (duplicate names, conflicting settings).
        cli().debug_assert();
    }
}
