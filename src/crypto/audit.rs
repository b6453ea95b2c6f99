//! The audit log of key events: JSON lines in `AUDIT.log` of the data directory.
//!
//! ```text
//! {"ts":1763870000,"event":"rotate_data_key","key_id":2,"mac":"<64 hex>"}
//! ```
//! Fields are numbers and fixed words only: no key material, no user data. Each line's `mac`
//! is HMAC-SHA256 under the audit key (kept in the key registry) of the previous line's mac
//! followed by the line up to `,"mac"`, so an edited, dropped or reordered line breaks the
//! chain ([`verify`]).
//!
//! Invariants:
//! - *Anchor.* Every manifest records the number of lines and the last MAC as they stood when
//!   it was written ([`AuditAnchor`]); the count only covers lines already fsynced. Dropped
//!   trailing lines, a deleted log or a log replaced by another one disagree with the anchor.
//! - *Key generations.* The registry keeps every audit key the log was ever written under,
//!   oldest first. Line 1 is under generation 0; an `audit_key_rotated` line (field
//!   `generation`, under the old key) moves every later line to the next generation.
//! - *Repair and damage.* At open, a last line beyond the anchored count that is unterminated
//!   or fails its MAC is a torn append: it is cut off and an `audit_repaired` event is logged.
//!   Any other disagreement is damage: the log is left as it is, the chain continues from the
//!   last line whose MAC holds, and an `audit_damaged` event is logged, which [`verify`]
//!   reports as corruption for good.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use super::SecretKey;
use crate::error::{Error, Result};
use crate::io::{Fs, WritableFile};
pub(crate) use crate::manifest::AuditAnchor;

/// File name of the audit log.
pub const AUDIT_LOG: &str = "AUDIT.log";

/// The event that moves the chain to the next audit key.
const ROTATED: &str = "audit_key_rotated";
/// The event logged when the log disagreed with the manifest's anchor at open.
const DAMAGED: &str = "audit_damaged";

fn mac(key: &SecretKey, prev: &[u8; 32], body: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable!());
    m.update(prev);
    m.update(body.as_bytes());
    m.finalize().into_bytes().into()
}

/// The anchor of the chain as appended so far, shared with whoever writes manifests.
pub(crate) type AnchorCell = Arc<Mutex<Option<AuditAnchor>>>;

/// Appends chained, authenticated event lines.
pub(crate) struct AuditLog {
    file: Box<dyn WritableFile>,
    prev: [u8; 32],
    /// Every audit key, oldest first; `keys[generation]` MACs the next line.
    keys: Vec<SecretKey>,
    generation: usize,
    lines: u64,
    anchor: AnchorCell,
    /// Set after a failed append: the file may hold a line the chain does not know, so nothing
    /// more is appended until reopen (which sees that line beyond the anchor).
    failed: bool,
}

/// What a walk over the log found about one line.
struct LineInfo<'a> {
    /// Byte offset just past the line (and its newline, if any).
    end: usize,
    terminated: bool,
    /// The body and stored MAC, if the line parses.
    parsed: Option<(&'a str, [u8; 32])>,
    /// Whether the stored MAC is the MAC of the body, chained from the previous parsed line's
    /// stored MAC, under the key generation in force.
    ok: bool,
}

/// The lines of a log, and the key generation in force after the last one.
struct Walk<'a> {
    lines: Vec<LineInfo<'a>>,
    generation: usize,
}

/// Walks every line, judging each MAC against the previous parsed line's stored MAC (so one
/// bad line does not hide whether the following ones hold).
fn walk<'a>(bytes: &'a [u8], keys: &[SecretKey]) -> Walk<'a> {
    let mut lines = Vec::new();
    let mut prev = [0u8; 32];
    let mut generation = 0;
    let mut start = 0;
    while start < bytes.len() {
        let (raw, end, terminated) = match bytes[start..].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[start..start + i], start + i + 1, true),
            None => (&bytes[start..], bytes.len(), false),
        };
        start = end;
        let parsed = std::str::from_utf8(raw).ok().and_then(split_line);
        let mut ok = false;
        if let Some((body, stored)) = parsed {
            ok = keys.get(generation).is_some_and(|k| mac(k, &prev, body) == stored);
            prev = stored;
            if ok && event_of(body) == Some(ROTATED) {
                let next = field(body, "generation");
                if next == Some(generation as u64 + 1) && generation + 1 < keys.len() {
                    generation += 1;
                }
            }
        }
        lines.push(LineInfo { end, terminated, parsed, ok });
    }
    Walk { lines, generation }
}

/// The event word of a line body.
fn event_of(body: &str) -> Option<&str> {
    let rest = &body[body.find(",\"event\":\"")? + 10..];
    Some(&rest[..rest.find('"')?])
}

/// The numeric field `name` of a line body.
fn field(body: &str, name: &str) -> Option<u64> {
    let pat = format!(",\"{name}\":");
    let rest = &body[body.find(&pat)? + pat.len()..];
    let digits = rest.find(|c: char| !c.is_ascii_digit()).map_or(rest, |n| &rest[..n]);
    digits.parse().ok()
}

impl AuditLog {
    /// Opens the log in `dir` for appending under `keys` (every audit key, oldest first, the
    /// registry's current one last), checks it against `anchor` (the manifest's), repairs a
    /// torn last line, records damage, and continues the chain.
    pub(crate) fn open(
        fs: &dyn Fs,
        dir: &Path,
        keys: Vec<SecretKey>,
        anchor: Option<AuditAnchor>,
    ) -> Result<AuditLog> {
        let path: PathBuf = dir.join(AUDIT_LOG);
        let existing = if fs.exists(&path) { fs.read_all(&path)? } else { Vec::new() };
        let w = walk(&existing, &keys);
        let anchored = anchor.map_or(0, |a| a.lines);
        let n = w.lines.len() as u64;
        // The anchored line must be there, whole, with the anchored MAC.
        let anchor_holds = anchor.is_none_or(|a| {
            a.lines
                .checked_sub(1)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| w.lines.get(i))
                .is_some_and(|l| l.terminated && l.parsed.is_some_and(|(_, m)| m == a.last_mac))
        });
        // Lines after the anchor were appended (and fsynced, all but possibly the last) since
        // the manifest was written: they must chain; only the very last may be torn.
        let bad_after = w
            .lines
            .iter()
            .enumerate()
            .skip(usize::try_from(anchored).unwrap_or(usize::MAX))
            .find(|(_, l)| !(l.ok && l.terminated))
            .map(|(i, _)| i as u64 + 1);
        let mut keep = existing.len();
        let mut repaired = None;
        let mut damaged = None;
        if !anchor_holds {
            damaged = Some(if n < anchored { n + 1 } else { anchored });
        } else if let Some(line) = bad_after {
            if line == n {
                repaired = Some(line);
                keep = w.lines.iter().rev().nth(1).map_or(0, |l| l.end);
            } else {
                damaged = Some(line);
            }
        }
        let kept = &w.lines[..w.lines.iter().take_while(|l| l.end <= keep).count()];
        // An intact log continues from its last line; a damaged one from the last line whose
        // MAC holds.
        let prev = if damaged.is_none() {
            kept.last().and_then(|l| l.parsed)
        } else {
            kept.iter().rev().find(|l| l.ok).and_then(|l| l.parsed)
        }
        .map_or([0; 32], |(_, m)| m);
        // A repair walks again over what is kept, so the generation is the one of its end.
        let generation = if repaired.is_some() {
            walk(&existing[..keep], &keys).generation
        } else {
            w.generation
        };
        if repaired.is_some() {
            // The only rewrite of the log: a crash cut an append short.
            crate::io::write_atomic(fs, dir, AUDIT_LOG, &existing[..keep])?;
        }
        let file = fs.open_append(&path)?;
        let lines = kept.len() as u64;
        let anchor_now = (lines > 0).then_some(AuditAnchor { lines, last_mac: prev });
        let mut log = AuditLog {
            file,
            prev,
            keys,
            generation,
            lines,
            anchor: Arc::new(Mutex::new(anchor_now)),
            failed: false,
        };
        if let Some(line) = repaired {
            tracing::warn!(file = %path.display(), line, "sealdb: torn last audit line cut off");
            log.event("audit_repaired", &[("line", line)])?;
        }
        if let Some(line) = damaged {
            tracing::error!(
                file = %path.display(),
                line,
                anchored,
                "sealdb: the audit log disagrees with the manifest's anchor"
            );
            log.event(DAMAGED, &[("line", line), ("anchored", anchored)])?;
        }
        // A crash between a registry rewrite with a new audit key and the rotation line
        // leaves the log behind the registry: finish the rotation.
        while log.generation + 1 < log.keys.len() {
            log.rotate_to_newest()?;
        }
        Ok(log)
    }

    /// The cell holding the anchor of what is appended so far.
    pub(crate) fn anchor(&self) -> AnchorCell {
        self.anchor.clone()
    }

    /// Appends `{"ts":..,"event":"<event>",<fields>,"mac":".."}` and syncs it.
    pub(crate) fn event(&mut self, event: &str, fields: &[(&str, u64)]) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned("an earlier audit log append failed".into()));
        }
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut body = format!("{{\"ts\":{ts},\"event\":\"{event}\"");
        for (k, v) in fields {
            let _ = write!(body, ",\"{k}\":{v}");
        }
        let key = self.keys.get(self.generation).unwrap_or_else(|| unreachable!());
        let m = mac(key, &self.prev, &body);
        let line = format!("{body},\"mac\":\"{}\"}}\n", hex::encode(m));
        if let Err(e) = self.file.append(line.as_bytes()).and_then(|()| self.file.sync()) {
            self.failed = true;
            return Err(e.into());
        }
        self.prev = m;
        self.lines += 1;
        *self.anchor.lock() = Some(AuditAnchor { lines: self.lines, last_mac: m });
        tracing::info!(event, "sealdb key event");
        Ok(())
    }

    /// Moves the chain to the newest audit key of `keys` (every audit key, oldest first, as
    /// the registry now holds them), one `audit_key_rotated` line per generation.
    pub(crate) fn rotate_key(&mut self, keys: Vec<SecretKey>) -> Result<()> {
        if keys.len() < self.keys.len() {
            return Err(Error::InvalidArgument("audit keys cannot be dropped".into()));
        }
        self.keys = keys;
        while self.generation + 1 < self.keys.len() {
            self.rotate_to_newest()?;
        }
        Ok(())
    }

    /// Logs the rotation line under the current key, then moves to the next generation.
    fn rotate_to_newest(&mut self) -> Result<()> {
        let next = self.generation + 1;
        self.event(ROTATED, &[("generation", next as u64)])?;
        self.generation = next;
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

/// Why [`verify`] rejected a log: the 1-based line and the check that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) line: u64,
    pub(crate) reason: &'static str,
}

/// Checks the chain of an audit log under `keys` (every audit key, oldest first) and, when
/// given, against the manifest's `anchor`; returns the number of lines.
pub(crate) fn verify(
    bytes: &[u8],
    keys: &[SecretKey],
    anchor: Option<&AuditAnchor>,
) -> std::result::Result<u64, Broken> {
    let w = walk(bytes, keys);
    for (i, l) in w.lines.iter().enumerate() {
        let line = i as u64 + 1;
        let Some((body, _)) = l.parsed.filter(|_| l.terminated) else {
            return Err(Broken { line, reason: "audit log line malformed or unterminated" });
        };
        if !l.ok {
            return Err(Broken { line, reason: "audit log MAC chain broken at this line" });
        }
        if event_of(body) == Some(DAMAGED) {
            return Err(Broken {
                line: field(body, "line").unwrap_or(line),
                reason: "audit log lost or replaced lines here (an audit_damaged event says so)",
            });
        }
    }
    let n = w.lines.len() as u64;
    if let Some(a) = anchor {
        if n < a.lines {
            return Err(Broken {
                line: n + 1,
                reason: "audit log shorter than the manifest's anchor",
            });
        }
        let at = a
            .lines
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| w.lines.get(i));
        if at.and_then(|l| l.parsed).is_none_or(|(_, m)| m != a.last_mac) {
            return Err(Broken {
                line: a.lines,
                reason: "audit log differs from the manifest's anchor",
            });
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::StdFs;

    fn key() -> SecretKey {
        SecretKey([3; 32])
    }

    fn open(dir: &Path, keys: &[SecretKey], anchor: Option<AuditAnchor>) -> AuditLog {
        AuditLog::open(&StdFs, dir, keys.to_vec(), anchor).unwrap()
    }

    fn read(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(AUDIT_LOG)).unwrap()
    }

    fn events(dir: &Path) -> Vec<String> {
        String::from_utf8(read(dir))
            .unwrap()
            .lines()
            .map(|l| event_of(l).unwrap_or("?").to_string())
            .collect()
    }

    /// A log of three events; returns the anchor after them.
    fn three(dir: &Path) -> AuditAnchor {
        let mut log = open(dir, &[key()], None);
        log.event("open", &[("key_id", 1)]).unwrap();
        log.event("rotate_data_key", &[("key_id", 2)]).unwrap();
        log.event("key_destroyed", &[("key_id", 1)]).unwrap();
        let a = log.anchor().lock().unwrap();
        assert_eq!(a.lines, 3);
        a
    }

    #[test]
    fn chain_verifies_and_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = three(dir.path());
        let bytes = read(dir.path());
        assert_eq!(verify(&bytes, &[key()], Some(&anchor)), Ok(3));
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replacen("\"key_id\":2", "\"key_id\":9", 1);
        assert_eq!(verify(edited.as_bytes(), &[key()], None).unwrap_err().line, 2);
        let dropped: String = text.lines().skip(1).flat_map(|l| [l, "\n"]).collect();
        assert_eq!(verify(dropped.as_bytes(), &[key()], None).unwrap_err().line, 1);
        assert!(verify(&bytes, &[SecretKey([4; 32])], None).is_err());
    }

    #[test]
    fn anchor_detects_dropped_tail_deleted_and_replaced_log() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = three(dir.path());
        let text = String::from_utf8(read(dir.path())).unwrap();
        // The first two lines chain on their own: only the anchor tells.
        let two: String = text.lines().take(2).flat_map(|l| [l, "\n"]).collect();
        assert_eq!(verify(two.as_bytes(), &[key()], None), Ok(2));
        let e = verify(two.as_bytes(), &[key()], Some(&anchor)).unwrap_err();
        assert_eq!((e.line, e.reason), (3, "audit log shorter than the manifest's anchor"));
        assert_eq!(verify(b"", &[key()], Some(&anchor)).unwrap_err().line, 1);
        // Another database's log, of the same length, under the same key.
        let other = tempfile::tempdir().unwrap();
        let mut log = open(other.path(), &[key()], None);
        for id in [5, 6, 7] {
            log.event("rotate_data_key", &[("key_id", id)]).unwrap();
        }
        let replaced = read(other.path());
        assert_eq!(verify(&replaced, &[key()], None), Ok(3));
        assert_eq!(verify(&replaced, &[key()], Some(&anchor)).unwrap_err().line, 3);
    }

    #[test]
    fn torn_last_line_is_cut_and_recorded() {
        for torn in
            [&b"{\"ts\":1,\"event\":\"rot"[..], b"{\"ts\":1,\"event\":\"x\",\"mac\":\"00\"}\n"]
        {
            let dir = tempfile::tempdir().unwrap();
            let anchor = three(dir.path());
            let whole = read(dir.path());
            let mut bytes = whole.clone();
            bytes.extend_from_slice(torn);
            std::fs::write(dir.path().join(AUDIT_LOG), &bytes).unwrap();
            assert!(verify(&bytes, &[key()], Some(&anchor)).is_err());
            let mut log = open(dir.path(), &[key()], Some(anchor));
            log.event("open", &[]).unwrap();
            let a = log.anchor().lock().unwrap();
            let after = read(dir.path());
            assert_eq!(after[..whole.len()], whole[..], "the anchored lines are kept as they were");
            assert_eq!(events(dir.path())[3..], ["audit_repaired", "open"]);
            assert_eq!(verify(&after, &[key()], Some(&a)), Ok(5));
            assert!(String::from_utf8(after).unwrap().contains("\"line\":4"));
        }
    }

    #[test]
    fn unanchored_complete_lines_are_kept() {
        // A crash after an append and before the manifest write: the line is whole and chains.
        let dir = tempfile::tempdir().unwrap();
        let anchor = three(dir.path());
        let mut log = open(dir.path(), &[key()], Some(anchor));
        log.event("rotate_master_key", &[]).unwrap();
        drop(log);
        let log = open(dir.path(), &[key()], Some(anchor));
        let a = log.anchor().lock().unwrap();
        assert_eq!(a.lines, 4);
        assert_eq!(verify(&read(dir.path()), &[key()], Some(&a)), Ok(4));
    }

    #[test]
    fn damage_is_recorded_not_repaired_and_reported_for_good() {
        type Damage = fn(&str) -> String;
        fn zero_last_mac(t: &str) -> String {
            let at = t.trim_end().rfind("\"mac\":\"").unwrap() + 7;
            format!("{}{}\"}}\n", &t[..at], "0".repeat(64))
        }
        let cases: [(&str, Damage, u64, bool); 4] = [
            ("dropped tail", |t| t.lines().take(2).flat_map(|l| [l, "\n"]).collect(), 3, true),
            ("deleted", |_| String::new(), 1, true),
            ("anchored line replaced", zero_last_mac, 3, true),
            // Before the anchor: open cannot tell, the chain check can.
            ("middle line edited", |t| t.replacen("\"key_id\":2", "\"key_id\":7", 1), 2, false),
        ];
        for (what, damage, line, event) in cases {
            let dir = tempfile::tempdir().unwrap();
            let anchor = three(dir.path());
            let text = String::from_utf8(read(dir.path())).unwrap();
            let damaged = damage(&text);
            std::fs::write(dir.path().join(AUDIT_LOG), &damaged).unwrap();
            let mut log = open(dir.path(), &[key()], Some(anchor));
            log.event("open", &[]).unwrap();
            let a = log.anchor().lock().unwrap();
            let after = read(dir.path());
            assert_eq!(after[..damaged.len()], *damaged.as_bytes(), "{what}: never rewritten");
            assert_eq!(events(dir.path()).contains(&DAMAGED.to_string()), event, "{what}");
            let e = verify(&after, &[key()], Some(&a)).unwrap_err();
            assert_eq!(e.line, line, "{what}: {e:?}");
            // Reopening with the new anchor adds no new damage event, and the report stays.
            drop(log);
            let mut log = open(dir.path(), &[key()], Some(a));
            log.event("open", &[]).unwrap();
            let a = log.anchor().lock().unwrap();
            let n = events(dir.path()).iter().filter(|e| *e == DAMAGED).count();
            assert_eq!(n, usize::from(event), "{what}");
            assert_eq!(verify(&read(dir.path()), &[key()], Some(&a)).unwrap_err().line, line);
        }
    }

    #[test]
    fn rotated_keys_verify_across_generations() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = SecretKey([9; 32]);
        let mut log = open(dir.path(), &[key()], None);
        log.event("open", &[]).unwrap();
        log.rotate_key(vec![key(), k1.clone()]).unwrap();
        log.event("rekey", &[("key_id", 2)]).unwrap();
        let a = log.anchor().lock().unwrap();
        drop(log);
        let all = [key(), k1.clone()];
        assert_eq!(verify(&read(dir.path()), &all, Some(&a)), Ok(3));
        assert!(verify(&read(dir.path()), &[key()], None).is_err());
        assert!(verify(&read(dir.path()), std::slice::from_ref(&k1), None).is_err());
        // Reopened, the chain goes on under the newest key.
        let mut log = open(dir.path(), &all, Some(a));
        log.event("open", &[]).unwrap();
        let a = log.anchor().lock().unwrap();
        assert_eq!(verify(&read(dir.path()), &all, Some(&a)), Ok(4));
        // A registry already holding a newer key than the log's last line: caught up at open.
        let k2 = SecretKey([11; 32]);
        let newer = [key(), k1, k2];
        drop(log);
        let log = open(dir.path(), &newer, Some(a));
        let a = log.anchor().lock().unwrap();
        assert_eq!(events(dir.path()).last().map(String::as_str), Some(ROTATED));
        assert_eq!(verify(&read(dir.path()), &newer, Some(&a)), Ok(5));
    }
}
