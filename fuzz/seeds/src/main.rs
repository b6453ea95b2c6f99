//! Regenerates the seed corpora of the fuzz targets, `fuzz/corpus/<target>/`.
//!
//! `cargo run --manifest-path fuzz/seeds/Cargo.toml [-- OUT_DIR]` (default: `fuzz/corpus`).
//! Each target's directory is emptied and refilled with a handful of small, meaningful inputs
//! for the matching function of `sealdb::decode`: hand-encoded inputs that follow the formats
//! documented in `src/`, and blocks, WAL records, manifests, headers, registries and audit logs
//! taken from real databases written through the public API. Seeds that hold random salts or
//! times (key registries, encrypted file headers, real audit logs) differ from one run to the
//! next; the rest are deterministic. The `model_ops` seeds are not decoder inputs but operation
//! scripts (see `fuzz/fuzz_targets/model_ops.rs`).

mod corpora;
mod encode;
mod real;

use std::fs;
use std::path::{Path, PathBuf};

use sealdb::{Cipher, MasterKey};

use crate::corpora::{
    audit_log_seeds, backup_manifest_seeds, bloom_filter_seeds, data_block_seeds,
    export_stream_seeds, file_header_seeds, key_registry_seeds, manifest_seeds, model_ops_seeds,
    sealed_block_seeds, table_footer_seeds, vlog_entry_seeds, vlog_segment_seeds, wal_record_seeds,
};
use crate::real::{audited_database, encrypted_database, plain_database, Real};

/// The key `sealdb::decode` opens registries with (`FUZZ_KEY` in src/decode.rs).
pub(crate) const FUZZ_KEY: [u8; 32] = [0x5a; 32];
/// Largest sequence number (56 bits), as in src/key.rs.
pub(crate) const MAX_SEQ: u64 = (1 << 56) - 1;
/// Op kinds of a WAL record and value kinds of an internal key (`src/key.rs`).
pub(crate) const DELETE: u8 = 0;
pub(crate) const PUT: u8 = 1;
pub(crate) const POINTER: u8 = 2;
/// Bytes of a plain file header with its check block (`FileHeader::len(false)`).
pub(crate) const PLAIN_HEADER_LEN: usize = 100;
/// Bytes of an encrypted file header with its check block (`FileHeader::len(true)`).
pub(crate) const ENCRYPTED_HEADER_LEN: usize = 112;

pub(crate) type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;
/// Writes the seeds of one target.
pub(crate) type Make = fn(&mut Corpus, &Real) -> BoxResult<()>;

// ---- the corpora ---------------------------------------------------------------------------------

pub(crate) struct Corpus {
    root: PathBuf,
    written: usize,
    bytes: usize,
}

impl Corpus {
    /// Empties (or creates) the directory of `target`.
    pub(crate) fn reset(&self, target: &str) -> BoxResult<()> {
        let dir = self.root.join(target);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(())
    }

    pub(crate) fn add(&mut self, target: &str, name: &str, bytes: &[u8]) -> BoxResult<()> {
        fs::write(self.root.join(target).join(name), bytes)?;
        self.written += 1;
        self.bytes += bytes.len();
        Ok(())
    }
}

fn main() -> BoxResult<()> {
    let root = match std::env::args().nth(1) {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("corpus"),
    };
    let mut real = Real::default();
    plain_database(&mut real)?;
    let raw = || MasterKey::from_bytes(FUZZ_KEY);
    encrypted_database(&mut real, raw(), Cipher::Aes256Gcm, "aes", true)?;
    encrypted_database(&mut real, raw(), Cipher::ChaCha20Poly1305, "chacha", true)?;
    // A passphrase registry (Argon2id parameters in the header; the decoder's raw key does not
    // open it), at the lowest cost.
    let pass = MasterKey::from_passphrase_with_cost("fuzz", 8, 1, 1);
    encrypted_database(&mut real, pass, Cipher::Aes256Gcm, "passphrase", false)?;
    audited_database(&mut real, Cipher::Aes256Gcm, "aes-rotations-reencrypt", true)?;
    audited_database(&mut real, Cipher::ChaCha20Poly1305, "chacha-one-rotation", false)?;
    let mut c = Corpus { root, written: 0, bytes: 0 };
    let targets: [(&str, Make); 14] = [
        ("sealed_block", sealed_block_seeds),
        ("data_block", data_block_seeds),
        ("bloom_filter", bloom_filter_seeds),
        ("wal_record", wal_record_seeds),
        ("manifest", manifest_seeds),
        ("key_registry", key_registry_seeds),
        ("file_header", file_header_seeds),
        ("vlog_entry", vlog_entry_seeds),
        ("vlog_segment", vlog_segment_seeds),
        ("table_footer", table_footer_seeds),
        ("audit_log", audit_log_seeds),
        ("model_ops", model_ops_seeds),
        ("backup_manifest", backup_manifest_seeds),
        ("export_stream", export_stream_seeds),
    ];
    // Targets named after the directory are the only ones written (all when none is named).
    let only: Vec<String> = std::env::args().skip(2).collect();
    for (target, make) in targets {
        if !only.is_empty() && !only.iter().any(|t| t == target) {
            continue;
        }
        c.reset(target)?;
        let before = c.written;
        make(&mut c, &real)?;
        println!("{target:>14}: {} seeds", c.written - before);
    }
    println!("wrote {} seeds, {} bytes, under {}", c.written, c.bytes, c.root.display());
    Ok(())
}
