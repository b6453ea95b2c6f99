//! Key sources: where a master key comes from. Never a command-line value: an environment
//! variable, a 0600 file, or a passphrase in an environment variable; with none of them, for
//! an encrypted database and on a terminal, a prompt that does not echo.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use sealdb::{Error, MasterKey};
use zeroize::Zeroizing;

/// The current master key of the database, if it is encrypted.
#[derive(Args, Debug)]
#[group(multiple = false)]
pub struct KeyArgs {
    /// Read the master key (64 hex chars) from environment variable VAR.
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
    /// Read the master key (64 hex chars or 32 raw bytes) from FILE, which must be a regular
    /// file of mode 0600 or 0400 owned by you.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Derive the master key from the passphrase in environment variable VAR (Argon2id).
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
}

/// The new master key of `keys rotate-master`.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
#[expect(
    clippy::struct_field_names,
    reason = "clap derives the option names from the fields: --new-key-env and its siblings"
)]
pub struct NewKeyArgs {
    /// Read the new master key (64 hex chars) from environment variable VAR.
    #[arg(long, value_name = "VAR")]
    new_key_env: Option<String>,
    /// Read the new master key from FILE (mode 0600 or 0400, owned by you).
    #[arg(long, value_name = "FILE")]
    new_key_file: Option<PathBuf>,
    /// Derive the new master key from the passphrase in environment variable VAR.
    #[arg(long, value_name = "VAR")]
    new_passphrase_env: Option<String>,
}

fn resolve(
    env: Option<&str>,
    file: Option<&PathBuf>,
    pass_env: Option<&str>,
) -> sealdb::Result<Option<MasterKey>> {
    if let Some(var) = env {
        return MasterKey::from_env(var).map(Some);
    }
    if let Some(path) = file {
        return MasterKey::from_file(path).map(Some);
    }
    if let Some(var) = pass_env {
        let pass = Zeroizing::new(std::env::var(var).map_err(|_| {
            Error::BadKeySource(format!("environment variable {var} is not set or not UTF-8"))
        })?);
        if pass.is_empty() {
            return Err(Error::BadKeySource(format!("environment variable {var} is empty")));
        }
        return Ok(Some(MasterKey::from_passphrase(&pass)));
    }
    Ok(None)
}

impl KeyArgs {
    /// The master key the options name; `None` when none is given (unencrypted).
    pub fn master_key(&self) -> sealdb::Result<Option<MasterKey>> {
        resolve(self.key_env.as_deref(), self.key_file.as_ref(), self.passphrase_env.as_deref())
    }

    /// As [`KeyArgs::master_key`]; when no option is given, `dir` holds an encrypted database
    /// (a key registry) and standard input is a terminal, asks for the key on the terminal
    /// without echo. The answer is taken as a raw key if it is 64 hex characters and the
    /// registry is wrapped by a raw key, else as a passphrase.
    pub fn master_key_for(&self, dir: &Path) -> sealdb::Result<Option<MasterKey>> {
        let given = self.master_key()?;
        if given.is_some() || !dir.join("KEYS").exists() || !std::io::stdin().is_terminal() {
            return Ok(given);
        }
        let answer = prompt::read_hidden(&format!(
            "master key (64 hex chars) or passphrase for {}: ",
            dir.display()
        ))?;
        let answer = answer.trim_end_matches(['\r', '\n']);
        if answer.len() == 64 && answer.bytes().all(|b| b.is_ascii_hexdigit()) {
            let raw = MasterKey::from_hex(answer)?;
            // A registry wrapped by a passphrase refuses a raw key as the wrong kind, at once.
            match sealdb::verify::registry_cipher(dir, &raw) {
                Err(Error::WrongMasterKey) => {}
                _ => return Ok(Some(raw)),
            }
        }
        Ok(Some(MasterKey::from_passphrase(answer)))
    }
}

/// Reading a line from the terminal without echo.
mod prompt {
    use std::io::{Read, Write};

    use sealdb::Error;
    use zeroize::Zeroizing;

    /// Longest answer read: a passphrase longer than this is refused.
    const MAX: usize = 1024;

    /// Prints `prompt` on the controlling terminal and reads one line from it with echo off.
    #[cfg(unix)]
    pub fn read_hidden(prompt: &str) -> sealdb::Result<Zeroizing<String>> {
        use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        let old = tcgetattr(&tty).map_err(std::io::Error::from)?;
        let mut quiet = old.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        (&tty).write_all(prompt.as_bytes())?;
        tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(std::io::Error::from)?;
        let line = read_line(&tty);
        tcsetattr(&tty, OptionalActions::Now, &old).map_err(std::io::Error::from)?;
        line
    }

    /// Without unix terminals there is no prompt: a key option is required.
    #[cfg(not(unix))]
    pub fn read_hidden(_prompt: &str) -> sealdb::Result<Zeroizing<String>> {
        Err(Error::BadKeySource(
            "give the key with --key-env, --key-file or --passphrase-env".into(),
        ))
    }

    /// Reads up to a newline, byte by byte into a buffer that never reallocates (so no
    /// unzeroized copy is left behind).
    #[cfg_attr(not(unix), expect(dead_code, reason = "only the unix prompt reads a line"))]
    fn read_line(mut from: impl Read) -> sealdb::Result<Zeroizing<String>> {
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX + 1));
        let mut b = [0u8; 1];
        loop {
            match from.read(&mut b)? {
                0 => break,
                _ if b[0] == b'\n' => break,
                _ if buf.len() == MAX => {
                    return Err(Error::BadKeySource("the answer is too long".into()));
                }
                _ => buf.push(b[0]),
            }
        }
        let bytes = std::mem::take(&mut *buf);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                Err(Error::BadKeySource("the answer is not UTF-8".into()))
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn reads_one_line() {
            assert_eq!(
                super::read_line(&b"secret words\nrest"[..]).unwrap().as_str(),
                "secret words"
            );
            assert_eq!(super::read_line(&b"no newline"[..]).unwrap().as_str(), "no newline");
            assert!(super::read_line(&[b'x'; 2000][..]).is_err());
            assert!(super::read_line(&b"\xff\n"[..]).is_err());
        }
    }
}

impl NewKeyArgs {
    /// The new master key (one option is required by the parser).
    pub fn master_key(&self) -> sealdb::Result<MasterKey> {
        resolve(
            self.new_key_env.as_deref(),
            self.new_key_file.as_ref(),
            self.new_passphrase_env.as_deref(),
        )?
        .ok_or_else(|| Error::InvalidArgument("no new master key given".into()))
    }
}
