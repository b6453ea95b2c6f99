//! Key sources: where a master key comes from. Never a command-line value: an environment
//! variable, a 0600 file, or a passphrase in an environment variable.

use std::path::PathBuf;

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
