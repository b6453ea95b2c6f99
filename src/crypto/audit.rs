//! The audit log of key events: JSON lines in `AUDIT.log` of the data directory.
//!
//! ```text
//! {"ts":1763870000,"event":"rotate_data_key","key_id":2,"mac":"<64 hex>"}
//! ```
//! Fields are numbers and fixed words only: no key material, no user data. Each line's `mac`
//! is HMAC-SHA256 under the audit key (kept in the key registry) of the previous line's mac
//! followed by the line up to `,"mac"`, so an edited, dropped or reordered line breaks the
//! chain ([`verify`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::SecretKey;
use crate::error::Result;
use crate::io::{Fs, WritableFile};

/// File name of the audit log.
pub const AUDIT_LOG: &str = "AUDIT.log";

fn mac(key: &SecretKey, prev: &[u8; 32], body: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable!());
    m.update(prev);
    m.update(body.as_bytes());
    m.finalize().into_bytes().into()
}

/// Appends chained, authenticated event lines.
pub(crate) struct AuditLog {
    file: Box<dyn WritableFile>,
    prev: [u8; 32],
    key: SecretKey,
}

impl AuditLog {
    /// Opens the log in `dir` for appending, continuing the chain from its last line.
    pub(crate) fn open(fs: &dyn Fs, dir: &Path, key: SecretKey) -> Result<AuditLog> {
        let path: PathBuf = dir.join(AUDIT_LOG);
        let existing = if fs.exists(&path) { fs.read_all(&path)? } else { Vec::new() };
        let prev = last_mac(&existing).unwrap_or([0; 32]);
        let file = fs.open_append(&path)?;
        Ok(AuditLog { file, prev, key })
    }

    /// Appends `{"ts":..,"event":"<event>",<fields>,"mac":".."}` and syncs it.
    pub(crate) fn event(&mut self, event: &str, fields: &[(&str, u64)]) -> Result<()> {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut body = format!("{{\"ts\":{ts},\"event\":\"{event}\"");
        for (k, v) in fields {
            let _ = write!(body, ",\"{k}\":{v}");
        }
        let m = mac(&self.key, &self.prev, &body);
        let line = format!("{body},\"mac\":\"{}\"}}\n", hex::encode(m));
        self.file.append(line.as_bytes())?;
        self.file.sync()?;
        self.prev = m;
        tracing::info!(event, "sealdb key event");
        Ok(())
    }
}

fn split_line(line: &str) -> Option<(&str, [u8; 32])> {
    let at = line.rfind(",\"mac\":\"")?;
    let (body, rest) = line.split_at(at);
    let hexmac = rest.strip_prefix(",\"mac\":\"")?.strip_suffix("\"}")?;
    let mut m = [0u8; 32];
    hex::decode_to_slice(hexmac, &mut m).ok()?;
    Some((body, m))
}

fn last_mac(bytes: &[u8]) -> Option<[u8; 32]> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines().rev().find_map(|l| split_line(l).map(|(_, m)| m))
}

/// Checks the chain of an audit log; returns the number of lines, or the 1-based number of the
/// first line that fails.
pub(crate) fn verify(bytes: &[u8], key: &SecretKey) -> std::result::Result<usize, usize> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Err(1) };
    let mut prev = [0u8; 32];
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let Some((body, m)) = split_line(line) else { return Err(i + 1) };
        if mac(key, &prev, body) != m {
            return Err(i + 1);
        }
        prev = m;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;

    #[test]
    fn chain_verifies_and_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey([3; 32]);
        {
            let mut log = AuditLog::open(&StdFs, dir.path(), key.clone()).unwrap();
            log.event("open", &[("key_id", 1)]).unwrap();
            log.event("rotate_data_key", &[("key_id", 2)]).unwrap();
        }
        {
            let mut log = AuditLog::open(&StdFs, dir.path(), key.clone()).unwrap();
            log.event("key_destroyed", &[("key_id", 1)]).unwrap();
        }
        let bytes = std::fs::read(dir.path().join(AUDIT_LOG)).unwrap();
        assert_eq!(verify(&bytes, &key), Ok(3));
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replacen("\"key_id\":2", "\"key_id\":9", 1);
        assert_eq!(verify(edited.as_bytes(), &key), Err(2));
        let dropped: String = text.lines().skip(1).flat_map(|l| [l, "\n"]).collect();
        assert_eq!(verify(dropped.as_bytes(), &key), Err(1));
        assert!(verify(&bytes, &SecretKey([4; 32])).is_err());
    }
}
