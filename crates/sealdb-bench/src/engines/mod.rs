//! The engines under test: the [`Engine`] trait, [`EngineKind`] (names, descriptions, how each
//! is opened) and one file per engine.

#[cfg(feature = "peers")]
mod coordinode;
pub(crate) mod fjall;
pub(crate) mod fjall_tx;
pub(crate) mod rocksdb;
pub(crate) mod sealdb;
#[cfg(feature = "peers")]
mod sqlcipher;

use std::path::Path;

use self::fjall::FjallEngine;
use self::sealdb::SealEngine;
use crate::config::Config;
use crate::Res;

/// A random 32-byte key for one engine instance of the peers.
#[cfg(feature = "peers")]
fn random_key() -> Res<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key)?;
    Ok(key)
}

/// What `Engine::get` returns for a lookup's result: copies a found value into `out`.
pub(crate) fn copy_found(found: Option<impl AsRef<[u8]>>, out: &mut Vec<u8>) -> bool {
    let Some(v) = found else { return false };
    out.clear();
    out.extend_from_slice(v.as_ref());
    true
}

/// An in-process key-value engine under test. Implement this and add an [`EngineKind`] arm to
/// bring another engine in.
pub(crate) trait Engine: Sync {
    /// Stores `value` under `key`.
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()>;
    /// Copies the value of `key` into `out`; false when absent.
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool>;
    /// Visits up to `n` pairs in key order from the first key >= `start`; returns how many.
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize>;
    /// Flushes the memtable to the engine's table files and makes everything durable.
    fn finish(&self) -> Res<()>;
    /// Closes the engine cleanly.
    fn close(self: Box<Self>) -> Res<()>;
    /// The sealdb handle underneath, for the workloads that use sealdb's own API (reencrypt).
    fn sealdb(&self) -> Option<&::sealdb::DB> {
        None
    }
    /// Atomic multi-key write batches, for the batch2 workload (None: it is skipped).
    fn batches(&self) -> Option<&dyn crate::txn::Batches> {
        None
    }
    /// Optimistic transactions, for the txn workload (None: it is skipped).
    fn transactions(&self) -> Option<&dyn crate::txn::Transactions> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EngineKind {
    SealAes,
    SealAesInline,
    /// sealdb-aes with a cold tier configured (an in-memory store behind `FaultStore` with
    /// `--cold-latency-ms`) and the default `cold_after`, so nothing goes cold during a run:
    /// what the tier costs the hot path.
    SealAesTiered,
    SealChaCha,
    SealPlain,
    Fjall,
    RocksDb,
    /// coordinode-lsm-tree (`--features peers`).
    Coordinode,
    /// `SQLCipher` through rusqlite (`--features peers`).
    SqlCipher,
}

impl EngineKind {
    /// Every engine `--engines` knows, built or not.
    pub(crate) const ALL: [EngineKind; 9] = [
        EngineKind::SealAes,
        EngineKind::SealAesInline,
        EngineKind::SealAesTiered,
        EngineKind::SealChaCha,
        EngineKind::SealPlain,
        EngineKind::Fjall,
        EngineKind::RocksDb,
        EngineKind::Coordinode,
        EngineKind::SqlCipher,
    ];

    /// The engines run when `--engines` is not given: all but sealdb-aes-tiered (named when
    /// wanted), less the peer engines when they are not compiled in.
    pub(crate) fn defaults() -> Vec<EngineKind> {
        EngineKind::ALL
            .into_iter()
            .filter(|e| e.built() && *e != EngineKind::SealAesTiered)
            .collect()
    }

    /// Whether the peer engines (coordinode, sqlcipher).
    pub(crate) fn is_peer(self) -> bool {
        matches!(self, EngineKind::Coordinode | EngineKind::SqlCipher)
    }

    /// Whether this build has the engine: the peers need `--features peers`.
    pub(crate) fn built(self) -> bool {
        cfg!(feature = "peers") || !self.is_peer()
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            EngineKind::SealAes => "sealdb-aes",
            EngineKind::SealAesInline => "sealdb-aes-inline",
            EngineKind::SealAesTiered => "sealdb-aes-tiered",
            EngineKind::SealChaCha => "sealdb-chacha",
            EngineKind::SealPlain => "sealdb-plain",
            EngineKind::Fjall => "fjall",
            EngineKind::RocksDb => "rocksdb",
            EngineKind::Coordinode => "coordinode",
            EngineKind::SqlCipher => "sqlcipher",
        }
    }

    pub(crate) fn parse(s: &str) -> Res<EngineKind> {
        let s = s.trim().to_ascii_lowercase();
        EngineKind::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown engine {s:?}").into())
    }

    /// Whether the engine encrypts (the reencrypt workloads need a data key to rotate).
    pub(crate) fn encrypted(self) -> bool {
        matches!(
            self,
            EngineKind::SealAes
                | EngineKind::SealAesInline
                | EngineKind::SealAesTiered
                | EngineKind::SealChaCha
        )
    }

    /// Whether the engine runs only the 4 KiB workloads: sealdb-aes-inline when it comes from
    /// the default engine list, since below the 2 KiB value threshold it is sealdb-aes.
    pub(crate) fn only_large_values(self, cfg: &Config) -> bool {
        self == EngineKind::SealAesInline && !cfg.engines_explicit
    }

    /// Opens an in-process engine (None for RocksDB, which runs as a separate process).
    /// `large_values` selects key-value separation where an engine has it as an option.
    pub(crate) fn open(
        self,
        dir: &Path,
        cfg: &Config,
        large_values: bool,
    ) -> Option<Res<Box<dyn Engine>>> {
        if let Some(opts) = self.seal_options(dir, cfg, &::sealdb::MasterKey::generate()) {
            return Some(
                ::sealdb::DB::open(opts)
                    .map(|db| Box::new(SealEngine { db }) as Box<dyn Engine>)
                    .map_err(Into::into),
            );
        }
        match self {
            EngineKind::Fjall => Some(
                FjallEngine::open(dir, cfg, large_values).map(|e| Box::new(e) as Box<dyn Engine>),
            ),
            // Values stay in the tree for the 4 KiB workloads too: this release leaves its
            // key-value separated blob files unencrypted (see describe).
            #[cfg(feature = "peers")]
            EngineKind::Coordinode => Some(
                coordinode::CoordinodeEngine::open(dir, cfg)
                    .map(|e| Box::new(e) as Box<dyn Engine>),
            ),
            #[cfg(feature = "peers")]
            EngineKind::SqlCipher => Some(
                sqlcipher::SqlCipherEngine::open(dir, cfg).map(|e| Box::new(e) as Box<dyn Engine>),
            ),
            _ => None,
        }
    }

    /// The options of a sealdb engine (None for the others), encrypted under `master` when the
    /// engine encrypts.
    pub(crate) fn seal_options(
        self,
        dir: &Path,
        cfg: &Config,
        master: &::sealdb::MasterKey,
    ) -> Option<::sealdb::Options> {
        let cipher = match self {
            EngineKind::SealAes | EngineKind::SealAesInline | EngineKind::SealAesTiered => {
                Some(::sealdb::Cipher::Aes256Gcm)
            }
            EngineKind::SealChaCha => Some(::sealdb::Cipher::ChaCha20Poly1305),
            EngineKind::SealPlain => None,
            EngineKind::Fjall
            | EngineKind::RocksDb
            | EngineKind::Coordinode
            | EngineKind::SqlCipher => return None,
        };
        let mut opts =
            ::sealdb::Options::new(dir).cache_size(cfg.cache_mb << 20).sync_writes(cfg.sync);
        if self == EngineKind::SealAesInline {
            opts = opts.value_threshold(usize::MAX);
        }
        if self == EngineKind::SealAesTiered {
            opts = opts.cold_storage(crate::cold::tiered_storage(cfg).0);
        }
        if let Some(cipher) = cipher {
            let mut enc = ::sealdb::Encryption::new(master.clone()).cipher(cipher);
            if let Some(rate) = cfg.reencrypt_rate {
                enc = enc.reencrypt_rate(rate);
            }
            opts = opts.with_encryption(enc);
        }
        Some(opts)
    }

    pub(crate) fn describe(self, cfg: &Config) -> String {
        match self {
            EngineKind::SealAes => {
                "sealdb, AES-256-GCM, LZ4, default options (values >= 2 KiB in the value log)"
                    .into()
            }
            EngineKind::SealAesInline => format!(
                "sealdb, AES-256-GCM, LZ4, value_threshold(usize::MAX): every value inline in \
                 the tree, no value log{}",
                if cfg.engines_explicit { "" } else { "; 4 KiB workloads only" }
            ),
            EngineKind::SealAesTiered => format!(
                "sealdb-aes with a cold tier configured (in-memory object store, {} ms per \
                 request) and the default cold_after (7 days): nothing goes cold during the run",
                cfg.cold_latency_ms
            ),
            EngineKind::SealChaCha => "sealdb, ChaCha20-Poly1305, LZ4, default options".into(),
            EngineKind::SealPlain => "sealdb, no encryption (crc32), LZ4, default options".into(),
            EngineKind::Fjall => format!(
                "fjall 3, default keyspace options (LZ4), journal not fsynced per write{}; \
                 key-value separation for the 4 KiB workloads",
                if cfg.sync {
                    " (but --sync: persist(SyncData) after each write)"
                } else if cfg.workloads.iter().any(|w| crate::syncfill::SYNC_WORKLOADS.contains(w))
                {
                    " (but fillsync/fillsync8: persist(SyncData) after each write)"
                } else {
                    ""
                }
            ),
            EngineKind::RocksDb => "RocksDB via the system db_bench (lz4, bloom 10 bits/key; \
                blob files for the 4 KiB workloads)"
                .into(),
            EngineKind::Coordinode => format!(
                "coordinode-lsm-tree 7.4.0 (fjall's lsm-tree, forked): AES-256-GCM on every \
                 block of its tables (data, index, filter, meta) and on its manifest snapshots, \
                 LZ4 at every level, 32 MiB memtable, leveled compaction on one maintenance \
                 thread, values inline for the 4 KiB workloads too (its KV-separated blob files \
                 would be plaintext). Not encrypted: block headers (type, lengths, checksums), \
                 the manifest's edit log (table ids and levels); blocks are sealed with empty \
                 associated data (the AAD-bound envelope needs its zstd feature), so nothing \
                 binds a block to its table or offset. No journal: a put reaches no file until \
                 its memtable is flushed{}",
                if cfg.sync { " (so --sync cannot apply)" } else { "" }
            ),
            EngineKind::SqlCipher => format!(
                "SQLCipher 4.19 (SQLite 3.53) via rusqlite, OpenSSL 3 built from source: table \
                 kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID, raw 32-byte key, SQLCipher 4 \
                 defaults (4 KiB pages, AES-256-CBC + HMAC-SHA512 per page), WAL, synchronous={} \
                 (a commit's WAL write reaches the OS{}), cache_size {} MiB, one connection \
                 behind a mutex (--threads take turns). Not encrypted: the 16-byte salt at the \
                 start of the file, WAL frame headers (page numbers), the -shm WAL index",
                if cfg.sync { "FULL" } else { "NORMAL" },
                if cfg.sync { " and is fsynced" } else { ", fsync only at checkpoints" },
                cfg.cache_mb
            ),
        }
    }
}
