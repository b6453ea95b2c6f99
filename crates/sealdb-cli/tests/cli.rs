//! The `sealdb` binary as a user runs it: version, help, and the planned commands.

use std::process::{Command, Output};

fn sealdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealdb")).args(args).output().expect("run sealdb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn version_prints_the_package_version() {
    let out = sealdb(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).trim(), format!("sealdb {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_the_planned_commands_as_not_implemented() {
    let out = sealdb(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for cmd in ["keygen", "info", "verify", "keys", "audit", "backup", "export", "scan"] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{cmd} ")))
            .unwrap_or_else(|| panic!("no line for {cmd} in:\n{help}"));
        assert!(line.contains("(not yet implemented)"), "{line}");
    }
}

#[test]
fn a_planned_command_says_it_is_not_implemented_and_exits_2() {
    for args in
        [&["info", "/nonexistent"][..], &["keys", "rotate-master", "DIR", "--new-key-env", "K"]]
    {
        let out = sealdb(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(err.contains(&format!("command `{}` is not yet implemented", args[0])), "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    // No command: the help, on stderr, status 2.
    let out = sealdb(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage: sealdb"));
    // An unknown command or option.
    for args in [&["frobnicate"][..], &["--frobnicate"]] {
        let out = sealdb(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("error:"), "{args:?}");
    }
}
