//! A `KeyProvider` that asks an external command to wrap and unwrap the registry key, the way
//! a KMS or HSM client would be called.
//!
//! The command is run as `PROGRAM wrap` or `PROGRAM unwrap` with hex on standard input and
//! must print hex on standard output; a failing unwrap means "wrong key". For the demo this
//! example is its own key service: `key_provider kms wrap|unwrap` wraps with AES-256-GCM under
//! the 64-hex-character key in `TOY_KMS_KEY` (a real deployment points the provider at its KMS
//! client instead).
//!
//! `cargo run --example key_provider` opens a database in a temporary directory through the
//! provider, writes, reopens, and shows that another KMS key is refused.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::Aes256Gcm;
use sealdb::{Encryption, Error, KeyProvider, MasterKey, Options, DB};
use zeroize::Zeroizing;

/// Wraps and unwraps through an external command. The environment it passes may hold a
/// secret (here the toy KMS key), so `Debug` is written by hand and shows variable names only;
/// `name` is what `MasterKey`'s `Debug` prints.
struct CommandProvider {
    program: std::path::PathBuf,
    args: Vec<String>,
    env: Vec<(String, Zeroizing<String>)>,
}

impl std::fmt::Debug for CommandProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandProvider")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .finish()
    }
}

impl CommandProvider {
    fn run(&self, verb: &str, input: &[u8]) -> sealdb::Result<Zeroizing<Vec<u8>>> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg(verb)
            .envs(self.env.iter().map(|(k, v)| (k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| Error::BadKeySource("no stdin".into()))?
            .write_all(hex::encode(input).as_bytes())?;
        let mut out = Zeroizing::new(String::new());
        child
            .stdout
            .take()
            .ok_or_else(|| Error::BadKeySource("no stdout".into()))?
            .read_to_string(&mut out)?;
        if !child.wait()?.success() {
            return Err(if verb == "unwrap" {
                Error::WrongMasterKey
            } else {
                Error::BadKeySource(format!("key command failed to {verb}"))
            });
        }
        let bytes = hex::decode(out.trim())
            .map_err(|_| Error::BadKeySource("key command printed no hex".into()))?;
        Ok(Zeroizing::new(bytes))
    }
}

impl KeyProvider for CommandProvider {
    #[expect(clippy::unnecessary_literal_bound, reason = "the trait's signature")]
    fn name(&self) -> &str {
        "key command"
    }
    fn wrap(&self, key: &[u8; 32]) -> sealdb::Result<Vec<u8>> {
        Ok(self.run("wrap", key)?.to_vec())
    }
    fn unwrap(&self, wrapped: &[u8]) -> sealdb::Result<Zeroizing<[u8; 32]>> {
        let plain = self.run("unwrap", wrapped)?;
        let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| Error::WrongMasterKey)?;
        Ok(Zeroizing::new(key))
    }
}

/// The toy key service: AES-256-GCM under `TOY_KMS_KEY`, random nonce prefixed.
fn toy_kms(verb: &str) -> Result<(), Box<dyn std::error::Error>> {
    let key = Zeroizing::new(hex::decode(std::env::var("TOY_KMS_KEY")?)?);
    let aead = Aes256Gcm::new_from_slice(&key).map_err(|_| "TOY_KMS_KEY must be 32 bytes")?;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let input = Zeroizing::new(hex::decode(input.trim())?);
    let out = match verb {
        "wrap" => {
            let mut nonce = [0u8; 12];
            getrandom::getrandom(&mut nonce)?;
            let mut out = nonce.to_vec();
            out.extend(aead.encrypt((&nonce).into(), input.as_slice()).map_err(|_| "wrap failed")?);
            out
        }
        "unwrap" if input.len() > 12 => {
            let (nonce, ct) = input.split_at(12);
            let nonce: &[u8; 12] = nonce.try_into()?;
            aead.decrypt(nonce.into(), ct).map_err(|_| "unwrap failed")?
        }
        _ => return Err("usage: key_provider kms wrap|unwrap".into()),
    };
    println!("{}", hex::encode(Zeroizing::new(out).as_slice()));
    Ok(())
}

fn provider(kms_key_hex: &str) -> Result<Arc<CommandProvider>, Box<dyn std::error::Error>> {
    Ok(Arc::new(CommandProvider {
        program: std::env::current_exe()?,
        args: vec!["kms".into()],
        env: vec![("TOY_KMS_KEY".into(), Zeroizing::new(kms_key_hex.into()))],
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("kms") {
        return toy_kms(args.get(2).map_or("", String::as_str));
    }
    let dir = tempfile_dir()?;
    let kms_key = hex::encode([0x11u8; 32]);
    let open = |hexkey: &str| -> Result<DB, Box<dyn std::error::Error>> {
        let master = MasterKey::from_provider(provider(hexkey)?);
        // Neither the master key's Debug nor the provider's shows the KMS key.
        let shown = format!("{master:?} {:?}", provider(hexkey)?);
        if shown.contains(hexkey) {
            return Err("Debug output shows the KMS key".into());
        }
        Ok(DB::open(Options::new(&dir).with_encryption(Encryption::new(master)))?)
    };
    {
        let db = open(&kms_key)?;
        db.put("patient:1", "sealed through the key service")?;
    }
    let db = open(&kms_key)?;
    let v = db.get("patient:1")?.ok_or("value missing after reopen")?;
    println!("reopened through the key provider: {}", String::from_utf8_lossy(&v));
    drop(db);
    match open(&hex::encode([0x22u8; 32])) {
        Err(e) => println!("another KMS key is refused: {e}"),
        Ok(_) => return Err("a wrong KMS key opened the database".into()),
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("sealdb-key-provider-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
