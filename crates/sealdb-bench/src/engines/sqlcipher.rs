//! `SQLCipher` through rusqlite (`--features peers`).

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::{random_key, Config, Engine, Res};

/// `SQLCipher` through rusqlite: one `WITHOUT ROWID` table, every put its own autocommit
/// transaction. A rusqlite `Connection` is `Send` but not `Sync`, so the engine holds one
/// behind a mutex: with `--threads N` the clients take turns, which is how an application
/// sharing one connection uses `SQLite`.
pub(super) struct SqlCipherEngine {
    conn: Mutex<rusqlite::Connection>,
}

const SQL_PUT: &str = "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)";
const SQL_GET: &str = "SELECT v FROM kv WHERE k = ?1";
const SQL_SCAN: &str = "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2";

impl SqlCipherEngine {
    pub(super) fn open(dir: &Path, cfg: &Config) -> Res<SqlCipherEngine> {
        let conn = rusqlite::Connection::open(dir.join("kv.db"))?;
        // A raw key (x'...'): SQLCipher skips its passphrase KDF and uses the 32 bytes as
        // the AES-256 key (the HMAC key is derived from it with 2 PBKDF2 iterations).
        conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(random_key()?)))?;
        // WAL: a commit appends its pages to the -wal file with write(2). synchronous
        // NORMAL fsyncs only at checkpoints, so a write reaches the OS but is not fsynced,
        // as the other engines' journals; --sync: FULL, which fsyncs the WAL every commit.
        let journal: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(format!("sqlcipher: journal_mode is {journal}, not wal").into());
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA cache_size = -{};
             CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;",
            if cfg.sync { "FULL" } else { "NORMAL" },
            cfg.cache_mb << 10,
        ))?;
        Ok(SqlCipherEngine { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Engine for SqlCipherEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
        let conn = self.conn();
        conn.prepare_cached(SQL_PUT)?.execute(rusqlite::params![key, value])?;
        Ok(())
    }
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(SQL_GET)?;
        let mut rows = stmt.query([key])?;
        Ok(match rows.next()? {
            Some(row) => {
                out.clear();
                out.extend_from_slice(row.get_ref(0)?.as_blob()?);
                true
            }
            None => false,
        })
    }
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(SQL_SCAN)?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let mut rows = stmt.query(rusqlite::params![start, limit])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            visit(row.get_ref(0)?.as_blob()?, row.get_ref(1)?.as_blob()?);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        // Copies the WAL into the database file, fsyncs it and truncates the WAL.
        let conn = self.conn();
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Err("sqlcipher: wal_checkpoint(TRUNCATE) could not complete".into());
        }
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        let conn = self.conn.into_inner().unwrap_or_else(PoisonError::into_inner);
        conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}
