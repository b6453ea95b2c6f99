//! `db_bench`: macro benchmarks of sealdb against fjall and RocksDB, in the spirit of RocksDB's
//! `db_bench` and YCSB; with `--features peers`, also against two encrypting peers:
//! coordinode-lsm-tree and `SQLCipher`.
//!
//! ```text
//! cargo bench --bench db_bench -- --quick
//! cargo bench --bench db_bench -- --num 1000000 --engines sealdb-aes,fjall --workloads fillrandom,readrandom
//! cargo bench --bench db_bench -- --num 1M --engines sealdb-aes --workloads reencrypt
//! cargo bench --features peers --bench db_bench -- --engines sealdb-aes,coordinode,sqlcipher,fjall --workloads fillrandom,readrandom
//! cargo bench --bench db_bench -- --help
//! ```
//!
//! Each engine runs alone, one after the other, each in its own directory that is deleted after
//! its workloads. In-process engines implement [`Engine`]; RocksDB runs as the system `db_bench`
//! binary (Debian package `rocksdb-tools`) with matching parameters, and its output is parsed
//! into the same rows. The reencrypt workloads use sealdb's own API (key rotation and the
//! re-encryption compactor) and run on the encrypted sealdb engines only; they add a summary
//! table. Results go to a table on stdout, a JSON file and an SVG chart. See
//! `docs/benchmarks.md` for the workloads and how to read the figures.

// Engine and workload runners take the run's many parts as arguments rather than one-off
// structs; the integer literals are byte counts and seeds.
#![allow(clippy::too_many_arguments, clippy::struct_excessive_bools, clippy::unreadable_literal)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

const USAGE: &str = "\
db_bench: sealdb vs fjall vs RocksDB (and, with --features peers, coordinode-lsm-tree and
SQLCipher), db_bench/YCSB-style workloads

USAGE: cargo bench --bench db_bench -- [OPTIONS]

  --num N            keys loaded by the fills (default 1000000; --quick: 50000)
  --reads N          operations of each read / YCSB workload (default: --num)
  --seeks N          seeks of seekrandom, each reading 100 keys (default: --reads / 10)
  --num4k N          keys of fill4k / read4k, 4 KiB values (default: --num / 10; --quick: 2000)
  --key-size N       key bytes (default 16)
  --value-size N     value bytes (default 100)
  --threads N        client threads per workload (default 1)
  --cache-mb N       block cache of every engine, MiB (default 64)
  --sync             fsync every write (sealdb sync_writes, fjall persist(SyncData), db_bench --sync)
  --engines LIST     comma-separated: sealdb-aes,sealdb-aes-inline,sealdb-chacha,sealdb-plain,
                     fjall,rocksdb,coordinode,sqlcipher (default: all available; sealdb-aes-inline
                     then runs only the 4 KiB workloads, as it differs from sealdb-aes only for
                     values >= 2 KiB). coordinode (coordinode-lsm-tree, AES-256-GCM blocks) and
                     sqlcipher (SQLCipher via rusqlite) need `cargo bench --features peers`
  --workloads LIST   comma-separated: fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,
                     seekrandom,ycsb-a,ycsb-b,ycsb-c,ycsb-f,fill4k,read4k,reencrypt,reencrypt4k
                     (a,b,c,f also accepted; default: all but reencrypt4k; `all`: every one)
  --reencrypt-cap-secs N
                     longest read phase during background re-encryption (default 120)
  --reencrypt-rate-mb N
                     background re-encryption rate of the encrypted sealdb engines, MiB/s
                     (default: sealdb's, 16)
  --quick            every workload at small scale against every engine (a few minutes on 2 cores)
  --dir PATH         parent of the engines' data directories (default: a temporary directory
                     inside the cargo target directory; never tmpfs if avoidable)
  --json PATH        JSON results (default bench-results/db_bench.json)
  --svg PATH         SVG chart of ops/s (default bench-results/db_bench.svg)
  --db-bench PATH    RocksDB db_bench binary (default: db_bench on PATH)
  --seed N           RNG seed (default 301)
  --rounds N         run the engine list N times, in reverse order every other round, and
                     compute the ratios from each engine's median (default 1). The first
                     engine of a process runs on a cold allocator and page cache; on a noisy
                     machine use 3 or more
  --help             this text
";

#[derive(Debug, Clone)]
struct Config {
    num: u64,
    reads: u64,
    seeks: u64,
    num4k: u64,
    key_size: usize,
    value_size: usize,
    threads: usize,
    cache_mb: u64,
    sync: bool,
    engines: Vec<EngineKind>,
    engines_explicit: bool,
    workloads: Vec<Workload>,
    quick: bool,
    dir: Option<PathBuf>,
    json: PathBuf,
    svg: PathBuf,
    db_bench: Option<PathBuf>,
    seed: u64,
    rounds: usize,
    reencrypt_cap_secs: u64,
    /// `Encryption::reencrypt_rate` of the encrypted sealdb engines, bytes/s (None: sealdb's
    /// default, 16 MiB/s).
    reencrypt_rate: Option<u64>,
}

const VALUE_4K: usize = 4096;
const SEEK_NEXTS: usize = 100;

fn parse_args() -> Res<Config> {
    let mut args = std::env::args().skip(1);
    let mut num = None;
    let mut reads = None;
    let mut seeks = None;
    let mut num4k = None;
    let mut cfg = Config {
        num: 0,
        reads: 0,
        seeks: 0,
        num4k: 0,
        key_size: 16,
        value_size: 100,
        threads: 1,
        cache_mb: 64,
        sync: false,
        engines: EngineKind::defaults(),
        engines_explicit: false,
        workloads: Workload::DEFAULT.to_vec(),
        quick: false,
        dir: None,
        json: PathBuf::from("bench-results/db_bench.json"),
        svg: PathBuf::from("bench-results/db_bench.svg"),
        db_bench: None,
        seed: 301,
        rounds: 1,
        reencrypt_cap_secs: 120,
        reencrypt_rate: None,
    };
    while let Some(arg) = args.next() {
        // Accept both `--opt value` and `--opt=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Res<String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{what} needs a value").into())
        };
        match name.as_str() {
            // `cargo bench` passes `--bench` to every harness = false target.
            "--bench" => {}
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--num" => num = Some(parse_num(&value("--num")?)?),
            "--reads" => reads = Some(parse_num(&value("--reads")?)?),
            "--seeks" => seeks = Some(parse_num(&value("--seeks")?)?),
            "--num4k" => num4k = Some(parse_num(&value("--num4k")?)?),
            "--key-size" => cfg.key_size = parse_num(&value("--key-size")?)? as usize,
            "--value-size" => cfg.value_size = parse_num(&value("--value-size")?)? as usize,
            "--threads" => cfg.threads = (parse_num(&value("--threads")?)? as usize).max(1),
            "--cache-mb" => cfg.cache_mb = parse_num(&value("--cache-mb")?)?,
            "--sync" => cfg.sync = true,
            "--quick" => cfg.quick = true,
            "--engines" => {
                cfg.engines = value("--engines")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(EngineKind::parse)
                    .collect::<Res<_>>()?;
                cfg.engines_explicit = true;
            }
            "--workloads" => {
                let list = value("--workloads")?;
                cfg.workloads = if list == "all" {
                    Workload::ALL.to_vec()
                } else {
                    let mut w: Vec<Workload> = list
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(Workload::parse)
                        .collect::<Res<_>>()?;
                    w.sort();
                    w.dedup();
                    w
                };
            }
            "--dir" => cfg.dir = Some(PathBuf::from(value("--dir")?)),
            "--json" => cfg.json = PathBuf::from(value("--json")?),
            "--svg" => cfg.svg = PathBuf::from(value("--svg")?),
            "--db-bench" => cfg.db_bench = Some(PathBuf::from(value("--db-bench")?)),
            "--seed" => cfg.seed = parse_num(&value("--seed")?)?,
            "--rounds" => {
                cfg.rounds = usize::try_from(parse_num(&value("--rounds")?)?)?.max(1);
            }
            "--reencrypt-cap-secs" => {
                cfg.reencrypt_cap_secs = parse_num(&value("--reencrypt-cap-secs")?)?.max(1);
            }
            "--reencrypt-rate-mb" => {
                cfg.reencrypt_rate = Some(parse_num(&value("--reencrypt-rate-mb")?)?.max(1) << 20);
            }
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}").into()),
        }
    }
    cfg.num = num.unwrap_or(if cfg.quick { 50_000 } else { 1_000_000 }).max(1);
    cfg.reads = reads.unwrap_or(cfg.num).max(1);
    cfg.seeks = seeks.unwrap_or(cfg.reads / 10).max(1);
    cfg.num4k = num4k.unwrap_or(if cfg.quick { 2_000 } else { cfg.num / 10 }).max(1);
    let digits = (cfg.num.max(cfg.num4k) - 1).to_string().len();
    if cfg.key_size < digits + 1 {
        return Err(format!(
            "--key-size {} is too small: keys are {digits} digits and a 1-byte suffix",
            cfg.key_size
        )
        .into());
    }
    if cfg.value_size == 0 {
        return Err("--value-size must be at least 1".into());
    }
    Ok(cfg)
}

/// Parses `1000000`, `1_000_000`, `1M`, `50k`.
fn parse_num(s: &str) -> Res<u64> {
    let t = s.trim().replace('_', "");
    let (digits, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (t.as_str(), 1),
    };
    Ok(digits.parse::<u64>().map_err(|e| format!("bad number {s:?}: {e}"))? * mult)
}

// ------------------------------------------------------------------------------------------
// Workloads
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Workload {
    FillSeq,
    FillRandom,
    Overwrite,
    ReadRandom,
    ReadMissing,
    ReadSeq,
    SeekRandom,
    YcsbA,
    YcsbB,
    YcsbC,
    YcsbF,
    Fill4k,
    Read4k,
    Reencrypt,
    Reencrypt4k,
}

impl Workload {
    const ALL: [Workload; 15] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::ReadSeq,
        Workload::SeekRandom,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbF,
        Workload::Fill4k,
        Workload::Read4k,
        Workload::Reencrypt,
        Workload::Reencrypt4k,
    ];

    /// The workloads run when `--workloads` is not given: all but reencrypt4k.
    const DEFAULT: [Workload; 14] = [
        Workload::FillSeq,
        Workload::FillRandom,
        Workload::Overwrite,
        Workload::ReadRandom,
        Workload::ReadMissing,
        Workload::ReadSeq,
        Workload::SeekRandom,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbF,
        Workload::Fill4k,
        Workload::Read4k,
        Workload::Reencrypt,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::FillSeq => "fillseq",
            Workload::FillRandom => "fillrandom",
            Workload::Overwrite => "overwrite",
            Workload::ReadRandom => "readrandom",
            Workload::ReadMissing => "readmissing",
            Workload::ReadSeq => "readseq",
            Workload::SeekRandom => "seekrandom",
            Workload::YcsbA => "ycsb-a",
            Workload::YcsbB => "ycsb-b",
            Workload::YcsbC => "ycsb-c",
            Workload::YcsbF => "ycsb-f",
            Workload::Fill4k => "fill4k",
            Workload::Read4k => "read4k",
            Workload::Reencrypt => "reencrypt",
            Workload::Reencrypt4k => "reencrypt4k",
        }
    }

    /// One line on what an operation of the workload is.
    fn describe(self) -> &'static str {
        match self {
            Workload::FillSeq => "fresh DB; put every key once in ascending order, then flush",
            Workload::FillRandom => "fresh DB; put every key once in shuffled order, then flush",
            Workload::Overwrite => "put a uniformly random existing key (on the fillrandom DB)",
            Workload::ReadRandom => "get a uniformly random existing key",
            Workload::ReadMissing => "get an absent key that sorts between two present ones",
            Workload::ReadSeq => "one full ascending scan; an op is one key",
            Workload::SeekRandom => "seek to a random existing key, then read 100 keys",
            Workload::YcsbA => "YCSB A: 50% get / 50% put, scrambled zipfian 0.99",
            Workload::YcsbB => "YCSB B: 95% get / 5% put, scrambled zipfian 0.99",
            Workload::YcsbC => "YCSB C: 100% get, scrambled zipfian 0.99",
            Workload::YcsbF => "YCSB F: get, change a byte, put back, scrambled zipfian 0.99",
            Workload::Fill4k => {
                "fresh DB; put --num4k keys with 4 KiB values, shuffled, then flush"
            }
            Workload::Read4k => "get a uniformly random key of the fill4k DB",
            Workload::Reencrypt => {
                "encrypted sealdb only: fresh DB of --num keys; readrandom idle, then during \
                 background re-encryption after rotate_data_key, then DB::reencrypt() MB/s"
            }
            Workload::Reencrypt4k => "reencrypt with --num4k keys of 4 KiB values",
        }
    }

    fn parse(s: &str) -> Res<Workload> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "a" | "ycsba" | "ycsb_a" => "ycsb-a",
            "b" | "ycsbb" | "ycsb_b" => "ycsb-b",
            "c" | "ycsbc" | "ycsb_c" => "ycsb-c",
            "f" | "ycsbf" | "ycsb_f" => "ycsb-f",
            other => other,
        };
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == alias)
            .ok_or_else(|| format!("unknown workload {s:?}").into())
    }

    fn is_fill(self) -> bool {
        matches!(self, Workload::FillSeq | Workload::FillRandom | Workload::Fill4k)
    }

    /// Workloads that run on the database loaded by fillrandom.
    fn needs_main_db(self) -> bool {
        matches!(
            self,
            Workload::FillRandom
                | Workload::Overwrite
                | Workload::ReadRandom
                | Workload::ReadMissing
                | Workload::ReadSeq
                | Workload::SeekRandom
                | Workload::YcsbA
                | Workload::YcsbB
                | Workload::YcsbC
                | Workload::YcsbF
        )
    }
}

/// The workloads that run, in order, on the database fillrandom loads.
const MAIN_PHASE: [Workload; 9] = [
    Workload::Overwrite,
    Workload::ReadRandom,
    Workload::ReadMissing,
    Workload::ReadSeq,
    Workload::SeekRandom,
    Workload::YcsbA,
    Workload::YcsbB,
    Workload::YcsbC,
    Workload::YcsbF,
];

// ------------------------------------------------------------------------------------------
// Keys, values, key distributions
// ------------------------------------------------------------------------------------------

/// Writes key `i` into `buf`: `i` as zero-padded decimal over `key_size - 1` bytes, then a suffix
/// byte, `k` for keys that are loaded and `m` for keys that never are. A missing key therefore
/// sorts between two present ones, inside the key range, as readmissing wants.
fn make_key(buf: &mut Vec<u8>, key_size: usize, i: u64, missing: bool) {
    buf.clear();
    buf.resize(key_size, b'0');
    buf[key_size - 1] = if missing { b'm' } else { b'k' };
    let mut pos = key_size - 1;
    let mut x = i;
    while x > 0 {
        pos -= 1;
        buf[pos] = b'0' + (x % 10) as u8;
        x /= 10;
    }
}

/// Value bytes compressible to about half, as `db_bench`'s default (`--compression_ratio 0.5`):
/// pieces of 100 bytes whose first half is random printable bytes and whose second half repeats
/// it. Values are successive slices of a 1 MiB buffer of such pieces.
struct ValueSource {
    data: Arc<Vec<u8>>,
}

impl ValueSource {
    const LEN: usize = 1 << 20;

    fn new(seed: u64) -> ValueSource {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_da7a);
        let mut data = Vec::with_capacity(Self::LEN + VALUE_4K);
        while data.len() < Self::LEN + VALUE_4K {
            let half: Vec<u8> = (0..50).map(|_| b' ' + rng.gen_range(0..95u8)).collect();
            data.extend_from_slice(&half);
            data.extend_from_slice(&half);
        }
        ValueSource { data: Arc::new(data) }
    }

    fn cursor(&self, start: usize) -> ValueCursor {
        ValueCursor { data: Arc::clone(&self.data), pos: start % Self::LEN }
    }
}

struct ValueCursor {
    data: Arc<Vec<u8>>,
    pos: usize,
}

impl ValueCursor {
    fn next(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        let start = self.pos;
        self.pos += len;
        &self.data[start..start + len]
    }
}

/// YCSB's scrambled zipfian generator (constant 0.99): a zipfian rank hashed (FNV-1a) over the
/// key space, so hot keys are spread out rather than clustered at the start.
#[derive(Clone)]
struct Zipfian {
    items: u64,
    theta: f64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
}

impl Zipfian {
    const THETA: f64 = 0.99;

    fn new(items: u64) -> Zipfian {
        let theta = Self::THETA;
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(items);
        let zeta2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zeta_n);
        Zipfian { items, theta, zeta_n, alpha, eta }
    }

    fn next(&self, rng: &mut StdRng) -> u64 {
        let u: f64 = rng.gen();
        let uz = u * self.zeta_n;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            ((self.items as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64
        };
        fnv1a64(rank.min(self.items - 1)) % self.items
    }
}

fn fnv1a64(x: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in x.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// ------------------------------------------------------------------------------------------
// Engines
// ------------------------------------------------------------------------------------------

/// What `Engine::get` returns for a lookup's result: copies a found value into `out`.
fn copy_found(found: Option<impl AsRef<[u8]>>, out: &mut Vec<u8>) -> bool {
    let Some(v) = found else { return false };
    out.clear();
    out.extend_from_slice(v.as_ref());
    true
}

/// An in-process key-value engine under test. Implement this and add an [`EngineKind`] arm to
/// bring another engine in.
trait Engine: Sync {
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
    fn sealdb(&self) -> Option<&sealdb::DB> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum EngineKind {
    SealAes,
    SealAesInline,
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
    const ALL: [EngineKind; 8] = [
        EngineKind::SealAes,
        EngineKind::SealAesInline,
        EngineKind::SealChaCha,
        EngineKind::SealPlain,
        EngineKind::Fjall,
        EngineKind::RocksDb,
        EngineKind::Coordinode,
        EngineKind::SqlCipher,
    ];

    /// The engines run when `--engines` is not given: all, less the peer engines when they are
    /// not compiled in.
    fn defaults() -> Vec<EngineKind> {
        EngineKind::ALL.into_iter().filter(|e| e.built()).collect()
    }

    /// Whether the peer engines (coordinode, sqlcipher).
    fn is_peer(self) -> bool {
        matches!(self, EngineKind::Coordinode | EngineKind::SqlCipher)
    }

    /// Whether this build has the engine: the peers need `--features peers`.
    fn built(self) -> bool {
        cfg!(feature = "peers") || !self.is_peer()
    }

    fn name(self) -> &'static str {
        match self {
            EngineKind::SealAes => "sealdb-aes",
            EngineKind::SealAesInline => "sealdb-aes-inline",
            EngineKind::SealChaCha => "sealdb-chacha",
            EngineKind::SealPlain => "sealdb-plain",
            EngineKind::Fjall => "fjall",
            EngineKind::RocksDb => "rocksdb",
            EngineKind::Coordinode => "coordinode",
            EngineKind::SqlCipher => "sqlcipher",
        }
    }

    fn parse(s: &str) -> Res<EngineKind> {
        let s = s.trim().to_ascii_lowercase();
        EngineKind::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| format!("unknown engine {s:?}").into())
    }

    /// Whether the engine encrypts (the reencrypt workloads need a data key to rotate).
    fn encrypted(self) -> bool {
        matches!(self, EngineKind::SealAes | EngineKind::SealAesInline | EngineKind::SealChaCha)
    }

    /// Whether the engine runs only the 4 KiB workloads: sealdb-aes-inline when it comes from
    /// the default engine list, since below the 2 KiB value threshold it is sealdb-aes.
    fn only_large_values(self, cfg: &Config) -> bool {
        self == EngineKind::SealAesInline && !cfg.engines_explicit
    }

    /// Opens an in-process engine (None for RocksDB, which runs as a separate process).
    /// `large_values` selects key-value separation where an engine has it as an option.
    fn open(self, dir: &Path, cfg: &Config, large_values: bool) -> Option<Res<Box<dyn Engine>>> {
        if let Some(opts) = self.seal_options(dir, cfg, &sealdb::MasterKey::generate()) {
            return Some(
                sealdb::DB::open(opts)
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
                peers::CoordinodeEngine::open(dir, cfg).map(|e| Box::new(e) as Box<dyn Engine>),
            ),
            #[cfg(feature = "peers")]
            EngineKind::SqlCipher => {
                Some(peers::SqlCipherEngine::open(dir, cfg).map(|e| Box::new(e) as Box<dyn Engine>))
            }
            _ => None,
        }
    }

    /// The options of a sealdb engine (None for the others), encrypted under `master` when the
    /// engine encrypts.
    fn seal_options(
        self,
        dir: &Path,
        cfg: &Config,
        master: &sealdb::MasterKey,
    ) -> Option<sealdb::Options> {
        let cipher = match self {
            EngineKind::SealAes | EngineKind::SealAesInline => Some(sealdb::Cipher::Aes256Gcm),
            EngineKind::SealChaCha => Some(sealdb::Cipher::ChaCha20Poly1305),
            EngineKind::SealPlain => None,
            EngineKind::Fjall
            | EngineKind::RocksDb
            | EngineKind::Coordinode
            | EngineKind::SqlCipher => return None,
        };
        let mut opts =
            sealdb::Options::new(dir).cache_size(cfg.cache_mb << 20).sync_writes(cfg.sync);
        if self == EngineKind::SealAesInline {
            opts = opts.value_threshold(usize::MAX);
        }
        if let Some(cipher) = cipher {
            let mut enc = sealdb::Encryption::new(master.clone()).cipher(cipher);
            if let Some(rate) = cfg.reencrypt_rate {
                enc = enc.reencrypt_rate(rate);
            }
            opts = opts.with_encryption(enc);
        }
        Some(opts)
    }

    fn describe(self, cfg: &Config) -> String {
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
            EngineKind::SealChaCha => "sealdb, ChaCha20-Poly1305, LZ4, default options".into(),
            EngineKind::SealPlain => "sealdb, no encryption (crc32), LZ4, default options".into(),
            EngineKind::Fjall => format!(
                "fjall 3, default keyspace options (LZ4), journal not fsynced per write{}; \
                 key-value separation for the 4 KiB workloads",
                if cfg.sync { " (but --sync: persist(SyncData) after each write)" } else { "" }
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

struct SealEngine {
    db: sealdb::DB,
}

impl Engine for SealEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
        Ok(self.db.put(key, value)?)
    }
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
        Ok(copy_found(self.db.get(key)?, out))
    }
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
        let mut count = 0;
        for item in self.db.range(start..).take(n) {
            let (k, v) = item?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        self.db.flush()?;
        self.db.sync()?;
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        Ok(self.db.close()?)
    }
    fn sealdb(&self) -> Option<&sealdb::DB> {
        Some(&self.db)
    }
}

struct FjallEngine {
    db: fjall::Database,
    ks: fjall::Keyspace,
    sync: bool,
}

impl FjallEngine {
    fn open(dir: &Path, cfg: &Config, large_values: bool) -> Res<FjallEngine> {
        let db = fjall::Database::builder(dir).cache_size(cfg.cache_mb << 20).open()?;
        let ks = db.keyspace("bench", || {
            let opts = fjall::KeyspaceCreateOptions::default();
            if large_values {
                opts.with_kv_separation(Some(fjall::KvSeparationOptions::default()))
            } else {
                opts
            }
        })?;
        Ok(FjallEngine { db, ks, sync: cfg.sync })
    }
}

impl Engine for FjallEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
        self.ks.insert(key, value)?;
        if self.sync {
            self.db.persist(fjall::PersistMode::SyncData)?;
        }
        Ok(())
    }
    fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
        Ok(copy_found(self.ks.get(key)?, out))
    }
    fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
        let mut count = 0;
        for guard in self.ks.range(start..).take(n) {
            let (k, v) = guard.into_inner()?;
            visit(&k, &v);
            count += 1;
        }
        Ok(count)
    }
    fn finish(&self) -> Res<()> {
        // fjall has no public "flush memtable" call; this doc(hidden) one is what its own tests
        // use: it seals the memtable and waits for the flush.
        self.ks.rotate_memtable_and_wait()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
    fn close(self: Box<Self>) -> Res<()> {
        let FjallEngine { db, ks, .. } = *self;
        drop(ks);
        drop(db);
        Ok(())
    }
}

// The peer engines (`--features peers`): coordinode-lsm-tree and SQLCipher. Without the feature
// they are not compiled, and naming them in --engines prints why and skips them.
#[cfg(feature = "peers")]
mod peers {
    use std::path::Path;
    use std::sync::{Arc, Condvar, Mutex, PoisonError};
    use std::thread::JoinHandle;
    use std::time::Duration;

    use lsm_tree::AbstractTree as _;

    use super::{copy_found, Config, Engine, Res};

    /// The memtable size at which a coordinode writer seals it and hands it to the maintenance
    /// thread: sealdb's (`Options::memtable_size`, 32 MiB).
    const COORDINODE_MEMTABLE: u64 = 32 << 20;
    /// Sealed memtables (waiting for their flush) at which coordinode writers stall, and L0 runs
    /// at which they slow down: fjall's thresholds over the same lsm-tree.
    const COORDINODE_MAX_SEALED: usize = 4;
    const COORDINODE_L0_STALL: usize = 20;

    /// A random 32-byte key for one engine instance.
    fn random_key() -> Res<[u8; 32]> {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key)?;
        Ok(key)
    }

    /// What the coordinode maintenance thread and the writers share.
    #[derive(Default)]
    struct Maintenance {
        /// (work requested, stop requested).
        state: Mutex<(bool, bool)>,
        wake: Condvar,
        /// The first error of a background flush or compaction; writers return it.
        error: Mutex<Option<String>>,
    }

    impl Maintenance {
        fn signal(&self, stop: bool) {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.0 = true;
            s.1 |= stop;
            self.wake.notify_one();
        }

        fn check(&self) -> Res<()> {
            match &*self.error.lock().unwrap_or_else(PoisonError::into_inner) {
                Some(e) => Err(format!("coordinode background work failed: {e}").into()),
                None => Ok(()),
            }
        }
    }

    /// coordinode-lsm-tree: a bare LSM tree (no journal, no background threads of its own), so
    /// this engine does what fjall's keyspace does around the same tree: seals the memtable at
    /// a size, flushes sealed memtables and runs leveled compaction on a maintenance thread,
    /// and stalls writers when flushes fall behind.
    pub(super) struct CoordinodeEngine {
        tree: lsm_tree::AnyTree,
        seqno: lsm_tree::SequenceNumberCounter,
        maint: Arc<Maintenance>,
        worker: Option<JoinHandle<()>>,
    }

    impl CoordinodeEngine {
        pub(super) fn open(dir: &Path, cfg: &Config) -> Res<CoordinodeEngine> {
            let seqno = lsm_tree::SequenceNumberCounter::default();
            let provider = lsm_tree::Aes256GcmProvider::new(&random_key()?);
            let tree = lsm_tree::Config::new(
                dir,
                seqno.clone(),
                lsm_tree::SequenceNumberCounter::default(),
            )
            .use_cache(Arc::new(lsm_tree::Cache::with_capacity_bytes(cfg.cache_mb << 20)))
            .data_block_compression_policy(lsm_tree::config::CompressionPolicy::all(
                lsm_tree::CompressionType::Lz4,
            ))
            .with_encryption(Some(Arc::new(provider)))
            .open()?;
            let maint = Arc::new(Maintenance::default());
            let worker = {
                let (tree, seqno, maint) = (tree.clone(), seqno.clone(), Arc::clone(&maint));
                std::thread::Builder::new()
                    .name("coordinode-maint".into())
                    .spawn(move || coordinode_maintenance(&tree, &seqno, &maint))?
            };
            Ok(CoordinodeEngine { tree, seqno, maint, worker: Some(worker) })
        }

        fn stop_worker(&mut self) {
            self.maint.signal(true);
            if let Some(w) = self.worker.take() {
                let _ = w.join();
            }
        }
    }

    /// The maintenance thread: flushes sealed memtables, then compacts (leveled, the default
    /// strategy, as fjall's) until there is nothing to do or a memtable waits, then sleeps until
    /// a writer seals one (or 100 ms, for compactions that became due).
    fn coordinode_maintenance(
        tree: &lsm_tree::AnyTree,
        seqno: &lsm_tree::SequenceNumberCounter,
        maint: &Maintenance,
    ) {
        let strategy: Arc<dyn lsm_tree::compaction::CompactionStrategy> =
            Arc::new(lsm_tree::compaction::Leveled::default());
        loop {
            let stop = {
                let mut s = maint.state.lock().unwrap_or_else(PoisonError::into_inner);
                if !s.0 && !s.1 {
                    s = maint
                        .wake
                        .wait_timeout(s, Duration::from_millis(100))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                s.0 = false;
                s.1
            };
            if stop {
                return;
            }
            let work = || -> lsm_tree::Result<()> {
                // No snapshots are ever taken, so every version below the next sequence number
                // that a newer one shadows is garbage.
                if tree.sealed_memtable_count() > 0 {
                    let lock = tree.get_flush_lock();
                    tree.flush(&lock, seqno.get())?;
                }
                while tree.sealed_memtable_count() == 0 {
                    let done = tree.compact(Arc::clone(&strategy), seqno.get())?;
                    if done.action == lsm_tree::compaction::CompactionAction::Nothing {
                        break;
                    }
                }
                Ok(())
            };
            if let Err(e) = work() {
                let mut err = maint.error.lock().unwrap_or_else(PoisonError::into_inner);
                err.get_or_insert_with(|| e.to_string());
                return;
            }
        }
    }

    impl Engine for CoordinodeEngine {
        fn put(&self, key: &[u8], value: &[u8]) -> Res<()> {
            let (_, memtable) = self.tree.insert(key, value, self.seqno.next());
            if memtable > COORDINODE_MEMTABLE && self.tree.rotate_memtable().is_some() {
                self.maint.signal(false);
                // Backpressure on the writer that sealed the memtable, as fjall applies it.
                while self.tree.sealed_memtable_count() >= COORDINODE_MAX_SEALED
                    || self.tree.l0_run_count() >= COORDINODE_L0_STALL
                {
                    self.maint.check()?;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Ok(())
        }
        fn get(&self, key: &[u8], out: &mut Vec<u8>) -> Res<bool> {
            Ok(copy_found(self.tree.get(key, lsm_tree::SeqNo::MAX)?, out))
        }
        fn scan(&self, start: &[u8], n: usize, visit: &mut dyn FnMut(&[u8], &[u8])) -> Res<usize> {
            use lsm_tree::Guard as _;
            let mut count = 0;
            for guard in self.tree.range(start.., lsm_tree::SeqNo::MAX, None).take(n) {
                let (k, v) = guard.into_inner()?;
                visit(&k, &v);
                count += 1;
            }
            Ok(count)
        }
        fn finish(&self) -> Res<()> {
            self.maint.check()?;
            // Seals the active memtable and flushes it with every sealed one (waiting for a
            // flush the maintenance thread has begun); the default FlushDurability::Synced
            // fsyncs the tables and the manifest before it returns.
            self.tree.flush_active_memtable(self.seqno.get())?;
            Ok(())
        }
        fn close(mut self: Box<Self>) -> Res<()> {
            self.stop_worker();
            self.maint.check()?;
            let tree = self.tree.clone();
            drop(self);
            // Waits until nothing of the tree touches its directory any more.
            tree.close().wait();
            Ok(())
        }
    }

    impl Drop for CoordinodeEngine {
        fn drop(&mut self) {
            self.stop_worker();
        }
    }

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
}

// ------------------------------------------------------------------------------------------
// Results
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
struct Row {
    engine: String,
    workload: String,
    /// Which round of `--rounds` measured it (0-based).
    round: usize,
    ops: u64,
    seconds: f64,
    ops_per_sec: f64,
    mb_per_sec: f64,
    user_bytes: u64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    write_amp: Option<f64>,
    write_amp_net: Option<f64>,
    write_amp_source: Option<String>,
    space_amp: Option<f64>,
    disk_bytes: Option<u64>,
    disk_bytes_apparent: Option<u64>,
    flush_seconds: Option<f64>,
    peak_rss_mb: Option<f64>,
    rss_at_start_mb: Option<f64>,
    found: Option<u64>,
    notes: Vec<String>,
    error: Option<String>,
    /// Why the workload did not run on this engine (not a failure).
    skipped: Option<String>,
}

impl Row {
    fn new(engine: EngineKind, workload: Workload) -> Row {
        Row { engine: engine.name().into(), workload: workload.name().into(), ..Row::default() }
    }

    fn failed(engine: EngineKind, workload: Workload, error: String) -> Row {
        Row { error: Some(error), ..Row::new(engine, workload) }
    }

    fn skipped(engine: EngineKind, workload: Workload, why: &str) -> Row {
        Row { skipped: Some(why.into()), ..Row::new(engine, workload) }
    }

    /// Whether the row holds a measurement (neither failed nor skipped).
    fn ok(&self) -> bool {
        self.error.is_none() && self.skipped.is_none()
    }

    fn to_json(&self) -> Value {
        json!({
            "engine": self.engine,
            "round": self.round,
            "workload": self.workload,
            "ops": self.ops,
            "seconds": self.seconds,
            "ops_per_sec": self.ops_per_sec,
            "mb_per_sec": self.mb_per_sec,
            "user_bytes": self.user_bytes,
            "latency_us": {"p50": self.p50_us, "p99": self.p99_us, "p99_9": self.p999_us},
            "write_amp": self.write_amp,
            "write_amp_net_of_cancelled": self.write_amp_net,
            "write_amp_source": self.write_amp_source,
            "space_amp": self.space_amp,
            "disk_bytes": self.disk_bytes,
            "disk_bytes_apparent": self.disk_bytes_apparent,
            "flush_seconds": self.flush_seconds,
            "peak_rss_mb": self.peak_rss_mb,
            "rss_at_start_mb": self.rss_at_start_mb,
            "found": self.found,
            "notes": self.notes,
            "error": self.error,
            "skipped": self.skipped,
        })
    }
}

/// What one timed run of operations measured.
struct RunStats {
    ops: u64,
    seconds: f64,
    user_bytes: u64,
    found: u64,
    /// Per-operation latencies in nanoseconds, saturated at `u32::MAX`.
    latencies: Vec<u32>,
}

impl RunStats {
    fn fill_row(mut self, row: &mut Row) {
        row.ops = self.ops;
        row.seconds = self.seconds;
        row.user_bytes = self.user_bytes;
        row.ops_per_sec = self.ops as f64 / self.seconds.max(1e-9);
        row.mb_per_sec = self.user_bytes as f64 / 1_048_576.0 / self.seconds.max(1e-9);
        self.latencies.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            if self.latencies.is_empty() {
                return None;
            }
            let idx =
                ((p * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
            Some(f64::from(self.latencies[idx - 1]) / 1000.0)
        };
        row.p50_us = pct(0.50);
        row.p99_us = pct(0.99);
        row.p999_us = pct(0.999);
    }
}

// ------------------------------------------------------------------------------------------
// /proc measurements
// ------------------------------------------------------------------------------------------

/// Bytes a process (all its threads, and its reaped children) caused to be sent to the storage
/// layer, from `/proc/<pid>/io`: (`write_bytes`, `cancelled_write_bytes`). The second counts
/// dirty page-cache bytes dropped before writeback (a file deleted or truncated in time), so the
/// difference is what reached the device.
fn proc_write_bytes(pid: &str) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    Some((field("write_bytes:")?, field("cancelled_write_bytes:").unwrap_or(0)))
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
fn proc_status_kb(pid: &str, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Where a workload's memory measurement starts.
#[derive(Debug, Clone, Copy)]
struct RssMark {
    /// Whether `VmHWM` could be reset to the current RSS (Linux 4.0+, `/proc/self/clear_refs`).
    reset: bool,
    /// RSS at the start, KiB.
    start_kb: Option<u64>,
}

fn rss_mark() -> RssMark {
    let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
    RssMark { reset, start_kb: proc_status_kb("self", "VmRSS:") }
}

/// The state letter of `/proc/<pid>/stat` (`Z` for a zombie not yet reaped).
fn proc_state(pid: u32) -> Option<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Space used under `dir`: (allocated bytes as `du` counts them, apparent bytes). Allocated is
/// the one that counts: fjall pre-sizes its journal as a sparse file, whose apparent size is
/// far from what it occupies.
fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = fs::read_dir(dir) else { return (0, 0) };
    entries.filter_map(Result::ok).fold((0, 0), |(alloc, apparent), e| match e.metadata() {
        Ok(m) if m.is_dir() => {
            let (a, b) = dir_size(&e.path());
            (alloc + a, apparent + b)
        }
        Ok(m) => (alloc + m.blocks() * 512, apparent + m.len()),
        Err(_) => (alloc, apparent),
    })
}

/// The file-system type of the mount that holds `path` (longest mount-point prefix).
fn fs_type(path: &Path) -> Option<String> {
    let path = fs::canonicalize(path).ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_dev, mnt, ty) = (parts.next()?, parts.next()?, parts.next()?);
            Some((mnt.replace("\\040", " "), ty.to_string()))
        })
        .filter(|(mnt, _)| path.starts_with(mnt))
        .max_by_key(|(mnt, _)| mnt.len())
        .map(|(_, ty)| ty)
}

// ------------------------------------------------------------------------------------------
// Running in-process workloads
// ------------------------------------------------------------------------------------------

fn progress_bar(len: u64, engine: EngineKind, workload: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>17} {msg:<21} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_prefix(engine.name());
    pb.set_message(workload.to_string());
    pb
}

/// Runs `total` operations split over `threads` client threads. `op(state, i)` performs
/// operation `i` (0-based, global) and returns (user bytes, found).
fn run_parallel<S, Init, Op>(
    threads: usize,
    total: u64,
    pb: &ProgressBar,
    init: Init,
    op: Op,
) -> Res<RunStats>
where
    Init: Fn(usize) -> S + Sync,
    Op: Fn(&mut S, u64) -> Res<(u64, bool)> + Sync,
{
    let threads = threads.max(1).min(total.max(1) as usize);
    let per = total / threads as u64;
    let extra = total % threads as u64;
    let start = Instant::now();
    let results: Vec<Res<(u64, u64, Vec<u32>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (init, op) = (&init, &op);
                let lo = t as u64 * per + (t as u64).min(extra);
                let n = per + u64::from((t as u64) < extra);
                s.spawn(move || -> Res<(u64, u64, Vec<u32>)> {
                    let mut state = init(t);
                    let mut lat = Vec::with_capacity(n as usize);
                    let (mut bytes, mut found) = (0u64, 0u64);
                    for i in lo..lo + n {
                        let t0 = Instant::now();
                        let (b, f) = op(&mut state, i)?;
                        lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        bytes += b;
                        found += u64::from(f);
                        if (i - lo) % 1024 == 1023 {
                            pb.inc(1024);
                        }
                    }
                    pb.inc(n % 1024);
                    Ok((bytes, found, lat))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut stats =
        RunStats { ops: total, seconds, user_bytes: 0, found: 0, latencies: Vec::new() };
    for r in results {
        let (bytes, found, lat) = r?;
        stats.user_bytes += bytes;
        stats.found += found;
        stats.latencies.extend_from_slice(&lat);
    }
    Ok(stats)
}

/// The per-thread state of the operation loops.
struct Client {
    rng: StdRng,
    key: Vec<u8>,
    buf: Vec<u8>,
    values: ValueCursor,
}

impl Client {
    fn new(cfg: &Config, values: &ValueSource, salt: u64, thread: usize) -> Client {
        let seed = cfg.seed.wrapping_mul(1_000_003).wrapping_add(salt * 977 + thread as u64);
        Client {
            rng: StdRng::seed_from_u64(seed),
            key: Vec::with_capacity(cfg.key_size),
            buf: Vec::new(),
            values: values.cursor((seed as usize).wrapping_mul(7919)),
        }
    }
}

/// Loads `keys` (in the given order) with `value_size`-byte values and flushes; fills `row`
/// with throughput, latency, write and space amplification.
fn run_fill(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    workload: Workload,
    dir: &Path,
    order: Option<&[u64]>,
    count: u64,
    value_size: usize,
    values: &ValueSource,
) -> Res<Row> {
    let mut row = Row::new(kind, workload);
    let io_before = proc_write_bytes("self");
    let size_before = dir_size(dir);
    let pb = progress_bar(count, kind, workload.name());
    let stats = run_parallel(
        cfg.threads,
        count,
        &pb,
        |t| Client::new(cfg, values, workload as u64, t),
        |c, i| {
            let k = order.map_or(i, |o| o[i as usize]);
            make_key(&mut c.key, cfg.key_size, k, false);
            engine.put(&c.key, c.values.next(value_size))?;
            Ok(((cfg.key_size + value_size) as u64, true))
        },
    )?;
    pb.set_message(format!("{} (flush)", workload.name()));
    let t0 = Instant::now();
    engine.finish()?;
    row.flush_seconds = Some(t0.elapsed().as_secs_f64());
    pb.finish_and_clear();
    stats.fill_row(&mut row);
    row.found = None;
    let size_after = dir_size(dir);
    let user = row.user_bytes as f64;
    row.disk_bytes = Some(size_after.0);
    row.disk_bytes_apparent = Some(size_after.1);
    row.space_amp = Some(size_after.0 as f64 / user);
    match (io_before, proc_write_bytes("self")) {
        (Some((wb, cb)), Some((wa, ca))) if wa > wb => {
            row.write_amp = Some((wa - wb) as f64 / user);
            let net = (wa - wb).saturating_sub(ca.saturating_sub(cb));
            row.write_amp_net = Some(net as f64 / user);
            row.write_amp_source = Some("/proc/self/io write_bytes delta".into());
        }
        _ => {
            row.write_amp = Some(size_after.0.saturating_sub(size_before.0) as f64 / user);
            row.write_amp_source = Some(
                "directory growth (/proc/self/io write_bytes showed 0 or was unreadable)".into(),
            );
            row.notes
                .push("WA from directory growth (/proc/self/io shows 0): a lower bound".into());
        }
    }
    Ok(row)
}

/// Runs one non-fill workload on an open, loaded engine.
fn run_workload(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    workload: Workload,
    values: &ValueSource,
    zipf: &Zipfian,
) -> Res<Row> {
    let mut row = Row::new(kind, workload);
    let n = cfg.num;
    let entry = (cfg.key_size + cfg.value_size) as u64;
    let salt = workload as u64;
    let client = |t| Client::new(cfg, values, salt, t);
    let stats = match workload {
        Workload::Overwrite => {
            let pb = progress_bar(n, kind, workload.name());
            let s = run_parallel(cfg.threads, n, &pb, client, |c, _| {
                let k = c.rng.gen_range(0..n);
                make_key(&mut c.key, cfg.key_size, k, false);
                engine.put(&c.key, c.values.next(cfg.value_size))?;
                Ok((entry, true))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::ReadRandom | Workload::ReadMissing | Workload::Read4k => {
            let missing = workload == Workload::ReadMissing;
            let (space, reads) =
                if workload == Workload::Read4k { (cfg.num4k, cfg.num4k) } else { (n, cfg.reads) };
            let pb = progress_bar(reads, kind, workload.name());
            let s = run_parallel(cfg.threads, reads, &pb, client, |c, _| {
                let k = c.rng.gen_range(0..space);
                make_key(&mut c.key, cfg.key_size, k, missing);
                let found = engine.get(&c.key, &mut c.buf)?;
                Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::ReadSeq => {
            let pb = progress_bar(n, kind, workload.name());
            let mut latencies = Vec::with_capacity(n as usize);
            let mut bytes = 0u64;
            let start = Instant::now();
            let mut prev = start;
            // An op is one key: its latency is the time since the previous key arrived.
            let count = engine.scan(b"", usize::MAX, &mut |k, v| {
                let now = Instant::now();
                latencies.push(u32::try_from((now - prev).as_nanos()).unwrap_or(u32::MAX));
                prev = now;
                bytes += (k.len() + v.len()) as u64;
                if latencies.len() % 1024 == 0 {
                    pb.inc(1024);
                }
            })? as u64;
            let seconds = start.elapsed().as_secs_f64();
            pb.finish_and_clear();
            if count != n {
                row.notes.push(format!("WARNING: scan returned {count} keys, {n} loaded"));
            }
            RunStats { ops: count, seconds, user_bytes: bytes, found: count, latencies }
        }
        Workload::SeekRandom => {
            let pb = progress_bar(cfg.seeks, kind, workload.name());
            let s = run_parallel(cfg.threads, cfg.seeks, &pb, client, |c, _| {
                let k = c.rng.gen_range(0..n);
                make_key(&mut c.key, cfg.key_size, k, false);
                let mut bytes = 0u64;
                let got = engine.scan(&c.key, SEEK_NEXTS, &mut |k, v| {
                    bytes += (k.len() + v.len()) as u64;
                })?;
                Ok((bytes, got > 0))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::YcsbA | Workload::YcsbB | Workload::YcsbC => {
            let read_pct = match workload {
                Workload::YcsbA => 50,
                Workload::YcsbB => 95,
                _ => 100,
            };
            let pb = progress_bar(cfg.reads, kind, workload.name());
            let s = run_parallel(cfg.threads, cfg.reads, &pb, client, |c, _| {
                let k = zipf.next(&mut c.rng);
                make_key(&mut c.key, cfg.key_size, k, false);
                if c.rng.gen_range(0..100) < read_pct {
                    let found = engine.get(&c.key, &mut c.buf)?;
                    Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
                } else {
                    engine.put(&c.key, c.values.next(cfg.value_size))?;
                    Ok((entry, true))
                }
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::YcsbF => {
            let pb = progress_bar(cfg.reads, kind, workload.name());
            let s = run_parallel(cfg.threads, cfg.reads, &pb, client, |c, _| {
                let k = zipf.next(&mut c.rng);
                make_key(&mut c.key, cfg.key_size, k, false);
                let found = engine.get(&c.key, &mut c.buf)?;
                // Modify: bump one byte of what was read (or start from fresh bytes).
                if !found || c.buf.is_empty() {
                    c.buf.clear();
                    c.buf.extend_from_slice(c.values.next(cfg.value_size));
                }
                let at = c.rng.gen_range(0..c.buf.len());
                c.buf[at] = c.buf[at].wrapping_add(1);
                engine.put(&c.key, &c.buf)?;
                Ok((2 * (cfg.key_size + c.buf.len()) as u64, found))
            })?;
            pb.finish_and_clear();
            s
        }
        Workload::FillSeq | Workload::FillRandom | Workload::Fill4k => {
            unreachable!("fills run through run_fill")
        }
        Workload::Reencrypt | Workload::Reencrypt4k => {
            unreachable!("reencrypt runs through run_reencrypt_phase")
        }
    };
    let found = stats.found;
    let ops = stats.ops;
    stats.fill_row(&mut row);
    if matches!(
        workload,
        Workload::ReadRandom
            | Workload::ReadMissing
            | Workload::Read4k
            | Workload::YcsbC
            | Workload::YcsbF
    ) {
        row.found = Some(found);
        let expect_all = workload != Workload::ReadMissing;
        if expect_all && found != ops {
            row.notes.push(format!("WARNING: only {found} of {ops} reads found their key"));
        } else if !expect_all && found != 0 {
            row.notes.push(format!("WARNING: {found} missing keys were found"));
        }
    }
    Ok(row)
}

fn finish_row(mut row: Row, mark: RssMark) -> Row {
    row.peak_rss_mb = proc_status_kb("self", "VmHWM:").map(|kb| kb as f64 / 1024.0);
    row.rss_at_start_mb = mark.start_kb.map(|kb| kb as f64 / 1024.0);
    if !mark.reset {
        row.notes.push("peak RSS since process start (clear_refs not permitted)".into());
    }
    row
}

/// Runs every selected workload against one in-process engine; one row per workload.
fn run_in_process(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    zipf: &Zipfian,
    out: &mut Vec<Row>,
    re_out: &mut Vec<ReencryptResult>,
) {
    let sel = |w: Workload| cfg.workloads.contains(&w);
    let only_large = kind.only_large_values(cfg);
    let phase = |name: &str, fill: Workload, large: bool, then: &[Workload], out: &mut Vec<Row>| {
        let dir = root.join(format!("{}-{name}", kind.name()));
        let _ = fs::remove_dir_all(&dir);
        if let Err(e) = fs::create_dir_all(&dir) {
            out.push(Row::failed(kind, fill, format!("create {}: {e}", dir.display())));
            return;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Res<()> {
            let engine = kind.open(&dir, cfg, large).expect("in-process engine")?;
            let (count, value_size, order) = match fill {
                Workload::FillSeq => (cfg.num, cfg.value_size, None),
                Workload::FillRandom => {
                    let mut perm: Vec<u64> = (0..cfg.num).collect();
                    perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed));
                    (cfg.num, cfg.value_size, Some(perm))
                }
                _ => {
                    let mut perm: Vec<u64> = (0..cfg.num4k).collect();
                    perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed + 4));
                    (cfg.num4k, VALUE_4K, Some(perm))
                }
            };
            let mark = rss_mark();
            let row = run_fill(
                engine.as_ref(),
                cfg,
                kind,
                fill,
                &dir,
                order.as_deref(),
                count,
                value_size,
                values,
            )?;
            drop(order);
            if sel(fill) {
                let row = finish_row(row, mark);
                report_row(&row);
                out.push(row);
            }
            for &w in then.iter().filter(|w| sel(**w)) {
                let mark = rss_mark();
                let row = match run_workload(engine.as_ref(), cfg, kind, w, values, zipf) {
                    Ok(r) => finish_row(r, mark),
                    Err(e) => Row::failed(kind, w, e.to_string()),
                };
                report_row(&row);
                out.push(row);
            }
            engine.close()
        }));
        let err = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(p) => Some(format!("panicked: {}", panic_message(&p))),
        };
        if let Some(e) = err {
            eprintln!("{}: {name} phase failed: {e}", kind.name());
            let mut failed_any = false;
            for w in std::iter::once(fill).chain(then.iter().copied()).filter(|w| sel(*w)) {
                if !out.iter().any(|r| r.engine == kind.name() && r.workload == w.name()) {
                    out.push(Row::failed(kind, w, e.clone()));
                    failed_any = true;
                }
            }
            if !failed_any {
                out.push(Row::failed(kind, fill, e));
            }
        }
        let _ = fs::remove_dir_all(&dir);
    };
    if sel(Workload::FillSeq) && !only_large {
        phase("seq", Workload::FillSeq, false, &[], out);
    }
    if cfg.workloads.iter().any(|w| w.needs_main_db()) && !only_large {
        phase("main", Workload::FillRandom, false, &MAIN_PHASE, out);
    }
    if sel(Workload::Fill4k) || sel(Workload::Read4k) {
        phase("4k", Workload::Fill4k, true, &[Workload::Read4k], out);
    }
    for w in [Workload::Reencrypt, Workload::Reencrypt4k] {
        if !sel(w) || (w == Workload::Reencrypt && only_large) {
            continue;
        }
        if !kind.encrypted() {
            let row = Row::skipped(kind, w, "needs an encrypted sealdb (a data key to rotate)");
            report_row(&row);
            out.push(row);
            continue;
        }
        run_reencrypt_phase(kind, cfg, root, values, w, out, re_out);
    }
}

// ------------------------------------------------------------------------------------------
// The reencrypt workload
// ------------------------------------------------------------------------------------------

/// The figures of one reencrypt run beyond its rows: the read-throughput ratio during
/// background re-encryption and the unthrottled `DB::reencrypt` rate.
#[derive(Debug, Clone, Default)]
struct ReencryptResult {
    engine: String,
    workload: String,
    keys: u64,
    value_size: usize,
    /// Seconds of `DB::compact` after the fill's flush (so the idle phase has no background
    /// compaction).
    compact_seconds: f64,
    /// Allocated directory size before the first rotation.
    db_bytes: u64,
    /// Sum of `live_bytes` over the data keys before the first rotation.
    live_bytes: u64,
    idle_ops_per_sec: f64,
    bg_ops_per_sec: f64,
    bg_reads: u64,
    bg_seconds: f64,
    /// `bg_ops_per_sec / idle_ops_per_sec`.
    ratio: f64,
    /// `reencrypt_bytes_left` just after the rotation, and when the read phase ended.
    bytes_left_start: u64,
    bytes_left_end: u64,
    /// Seconds from the rotation's return until `reencrypt_bytes_left` was seen at 0 (polled
    /// every 10 ms); `None` when the read phase hit its cap first.
    bg_reencrypt_seconds: Option<f64>,
    /// Second rotation, then `DB::reencrypt`: live bytes (sum over keys) and stale bytes
    /// (`reencrypt_bytes_left`) before the call, its wall time, live MiB/s.
    full_live_bytes: u64,
    full_stale_bytes: u64,
    full_seconds: f64,
    full_mb_per_sec: f64,
    /// Data keys in the registry and bytes left after `DB::reencrypt`.
    keys_after: usize,
    bytes_left_after: u64,
    /// Step (d): reopened with `background_work(false)`, rotated, `DB::reencrypt` timed.
    nobg_live_bytes: u64,
    nobg_seconds: f64,
    nobg_mb_per_sec: f64,
}

/// The read-throughput ratio that the background re-encryption compactor should leave.
const REENCRYPT_TARGET_RATIO: f64 = 0.80;

impl ReencryptResult {
    fn to_json(&self) -> Value {
        json!({
            "engine": self.engine,
            "workload": self.workload,
            "keys": self.keys,
            "value_size": self.value_size,
            "compact_seconds": self.compact_seconds,
            "db_bytes": self.db_bytes,
            "live_bytes": self.live_bytes,
            "readrandom_idle_ops_per_sec": self.idle_ops_per_sec,
            "readrandom_during_reencrypt_ops_per_sec": self.bg_ops_per_sec,
            "readrandom_during_reencrypt_reads": self.bg_reads,
            "readrandom_during_reencrypt_seconds": self.bg_seconds,
            "ratio_to_idle": self.ratio,
            "target_ratio": REENCRYPT_TARGET_RATIO,
            "target_met": self.ratio >= REENCRYPT_TARGET_RATIO,
            "reencrypt_bytes_left_at_start": self.bytes_left_start,
            "reencrypt_bytes_left_at_end": self.bytes_left_end,
            "background_reencrypt_seconds": self.bg_reencrypt_seconds,
            "full_reencrypt": {
                "live_bytes_before": self.full_live_bytes,
                "stale_bytes_before": self.full_stale_bytes,
                "seconds": self.full_seconds,
                "live_mb_per_sec": self.full_mb_per_sec,
                "data_keys_after": self.keys_after,
                "bytes_left_after": self.bytes_left_after,
            },
            "full_reencrypt_without_background_work": {
                "live_bytes_before": self.nobg_live_bytes,
                "seconds": self.nobg_seconds,
                "live_mb_per_sec": self.nobg_mb_per_sec,
            },
        })
    }
}

/// `count` uniformly random gets over keys `0..space`, on `cfg.threads` threads.
fn read_fixed(
    engine: &dyn Engine,
    cfg: &Config,
    kind: EngineKind,
    label: &str,
    values: &ValueSource,
    salt: u64,
    space: u64,
    count: u64,
) -> Res<RunStats> {
    let pb = progress_bar(count, kind, label);
    let s = run_parallel(
        cfg.threads,
        count,
        &pb,
        |t| Client::new(cfg, values, salt, t),
        |c, _| {
            let k = c.rng.gen_range(0..space);
            make_key(&mut c.key, cfg.key_size, k, false);
            let found = engine.get(&c.key, &mut c.buf)?;
            Ok(((cfg.key_size + if found { c.buf.len() } else { 0 }) as u64, found))
        },
    )?;
    pb.finish_and_clear();
    Ok(s)
}

/// What one reader thread of [`read_while_reencrypting`] did: ops, user bytes, keys found,
/// latencies (ns).
type ReaderTotals = (u64, u64, u64, Vec<u32>);

/// Uniformly random gets over keys `0..space` on `cfg.threads` threads until the database
/// reports no bytes left to re-encrypt (polled every 10 ms) or `cap` has passed. Returns the
/// stats, the bytes left at the end, and when they reached 0 (seconds since the start).
fn read_while_reencrypting(
    engine: &dyn Engine,
    db: &sealdb::DB,
    cfg: &Config,
    kind: EngineKind,
    label: &str,
    values: &ValueSource,
    salt: u64,
    space: u64,
    cap: Duration,
) -> Res<(RunStats, u64, Option<f64>)> {
    use std::sync::atomic::{AtomicBool, Ordering};

    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>17} {msg:<21} {spinner} {pos} reads {per_sec} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_prefix(kind.name());
    pb.set_message(label.to_string());
    let stop = AtomicBool::new(false);
    let bytes_left = || db.encryption_status().map_or(0, |s| s.reencrypt_bytes_left);
    let start = Instant::now();
    let (results, left, done) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads.max(1))
            .map(|t| {
                let (stop, pb) = (&stop, &pb);
                s.spawn(move || -> Res<ReaderTotals> {
                    let mut c = Client::new(cfg, values, salt, t);
                    let mut lat = Vec::new();
                    let (mut ops, mut bytes, mut found) = (0u64, 0u64, 0u64);
                    while !stop.load(Ordering::Relaxed) {
                        let k = c.rng.gen_range(0..space);
                        make_key(&mut c.key, cfg.key_size, k, false);
                        let t0 = Instant::now();
                        let f = engine.get(&c.key, &mut c.buf)?;
                        lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                        ops += 1;
                        bytes += (cfg.key_size + if f { c.buf.len() } else { 0 }) as u64;
                        found += u64::from(f);
                        if ops % 1024 == 0 {
                            pb.inc(1024);
                        }
                    }
                    Ok((ops, bytes, found, lat))
                })
            })
            .collect();
        let (mut left, mut done) = (bytes_left(), None);
        loop {
            if left == 0 {
                done = Some(start.elapsed().as_secs_f64());
                break;
            }
            // A reader that returned early failed: stop the others and report it.
            if start.elapsed() >= cap
                || handles.iter().any(std::thread::ScopedJoinHandle::is_finished)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            left = bytes_left();
        }
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Res<ReaderTotals>> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        (results, left, done)
    });
    let seconds = start.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let mut stats = RunStats { ops: 0, seconds, user_bytes: 0, found: 0, latencies: Vec::new() };
    for r in results {
        let (ops, bytes, found, lat) = r?;
        stats.ops += ops;
        stats.user_bytes += bytes;
        stats.found += found;
        stats.latencies.extend_from_slice(&lat);
    }
    Ok((stats, left, done))
}

/// Checks that every read of a run found its key, as readrandom does.
fn check_found(row: &mut Row, found: u64) {
    row.found = Some(found);
    if found != row.ops {
        row.notes.push(format!("WARNING: only {found} of {} reads found their key", row.ops));
    }
}

/// The reencrypt workload on a fresh database: fill, flush and compact; readrandom idle; rotate
/// the data key and readrandom while the background compactor re-encrypts at its default rate;
/// rotate again and time `DB::reencrypt`. Rows `<workload>/fill`, `/idle`, `/bg`, `/full`.
fn run_reencrypt_phase(
    kind: EngineKind,
    cfg: &Config,
    root: &Path,
    values: &ValueSource,
    workload: Workload,
    out: &mut Vec<Row>,
    re_out: &mut Vec<ReencryptResult>,
) {
    let name = workload.name();
    let dir = root.join(format!("{}-{name}", kind.name()));
    let _ = fs::remove_dir_all(&dir);
    let mut rows = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reencrypt_steps(kind, cfg, &dir, values, workload, &mut rows)
    }));
    let err = match result {
        Ok(Ok(re)) => {
            re_out.push(re);
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(p) => Some(format!("panicked: {}", panic_message(&p))),
    };
    out.extend(rows);
    if let Some(e) = err {
        eprintln!("{}: {name} failed: {e}", kind.name());
        let row = Row::failed(kind, workload, e);
        report_row(&row);
        out.push(row);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The steps of [`run_reencrypt_phase`]; pushes each row to `rows` as it completes.
fn reencrypt_steps(
    kind: EngineKind,
    cfg: &Config,
    dir: &Path,
    values: &ValueSource,
    workload: Workload,
    rows: &mut Vec<Row>,
) -> Res<ReencryptResult> {
    let name = workload.name();
    let large = workload == Workload::Reencrypt4k;
    let (count, value_size) = if large { (cfg.num4k, VALUE_4K) } else { (cfg.num, cfg.value_size) };
    let reads = cfg.reads;
    let mut push = |step: &str, mut row: Row| {
        row.workload = format!("{name}/{step}");
        report_row(&row);
        rows.push(row);
    };
    fs::create_dir_all(dir)?;
    // The master key is kept for the reopen of step (d).
    let master = sealdb::MasterKey::generate();
    let opts = kind.seal_options(dir, cfg, &master).ok_or("reencrypt needs a sealdb engine")?;
    let engine: Box<dyn Engine> = Box::new(SealEngine { db: sealdb::DB::open(opts)? });
    let db = engine.sealdb().ok_or("reencrypt needs a sealdb engine")?;
    let mut re = ReencryptResult {
        engine: kind.name().into(),
        workload: name.into(),
        keys: count,
        value_size,
        ..ReencryptResult::default()
    };

    // Load: shuffled keys, flush, then compact so that no background compaction runs into the
    // idle read phase.
    let mut perm: Vec<u64> = (0..count).collect();
    perm.shuffle(&mut StdRng::seed_from_u64(cfg.seed + 7));
    let mark = rss_mark();
    let order = Some(perm.as_slice());
    let row =
        run_fill(engine.as_ref(), cfg, kind, workload, dir, order, count, value_size, values)?;
    drop(perm);
    push("fill", finish_row(row, mark));
    let t0 = Instant::now();
    db.compact()?;
    re.compact_seconds = t0.elapsed().as_secs_f64();
    re.db_bytes = dir_size(dir).0;
    let status = db.encryption_status().ok_or("the database is not encrypted")?;
    re.live_bytes = status.keys.iter().map(|k| k.live_bytes).sum();

    // (a) Idle, after an untimed warm-up pass, so that the block cache is as warm as the idle
    // phase leaves it for the next.
    let salt = workload as u64 * 10;
    let label = |step: &str| format!("{name}/{step}");
    read_fixed(
        engine.as_ref(),
        cfg,
        kind,
        &label("warm"),
        values,
        salt + 2,
        count,
        reads.min(count),
    )?;
    let mark = rss_mark();
    let stats = read_fixed(engine.as_ref(), cfg, kind, &label("idle"), values, salt, count, reads)?;
    let found = stats.found;
    let mut row = Row::new(kind, workload);
    stats.fill_row(&mut row);
    check_found(&mut row, found);
    re.idle_ops_per_sec = row.ops_per_sec;
    push("idle", finish_row(row, mark));

    // (b) During background re-encryption at the configured (default: sealdb's) rate.
    let mark = rss_mark();
    db.rotate_data_key()?;
    re.bytes_left_start = db.encryption_status().map_or(0, |s| s.reencrypt_bytes_left);
    let cap = Duration::from_secs(cfg.reencrypt_cap_secs);
    let (stats, left, done) = read_while_reencrypting(
        engine.as_ref(),
        db,
        cfg,
        kind,
        &label("bg"),
        values,
        salt + 1,
        count,
        cap,
    )?;
    let found = stats.found;
    let mut row = Row::new(kind, workload);
    stats.fill_row(&mut row);
    check_found(&mut row, found);
    re.bg_ops_per_sec = row.ops_per_sec;
    re.bg_reads = row.ops;
    re.bg_seconds = row.seconds;
    re.ratio = row.ops_per_sec / re.idle_ops_per_sec.max(1e-9);
    re.bytes_left_end = left;
    re.bg_reencrypt_seconds = done;
    let mib = |b: u64| b as f64 / 1_048_576.0;
    row.notes.push(format!(
        "{:.2} x idle ops/s (target >= {REENCRYPT_TARGET_RATIO:.2}); {:.1} MiB to re-encrypt at \
         the start, {:.1} MiB left at the end{}",
        re.ratio,
        mib(re.bytes_left_start),
        mib(left),
        if done.is_none() { " (read phase capped)" } else { "" }
    ));
    if row.seconds < 2.0 {
        row.notes.push(format!(
            "the read phase lasted {:.2} s (the time re-encryption took): too short for a stable \
             ratio; use a larger --num",
            row.seconds
        ));
    }
    push("bg", finish_row(row, mark));

    // (c) Unthrottled DB::reencrypt after a second rotation.
    let mark = rss_mark();
    db.rotate_data_key()?;
    let status = db.encryption_status().ok_or("the database is not encrypted")?;
    re.full_live_bytes = status.keys.iter().map(|k| k.live_bytes).sum();
    re.full_stale_bytes = status.reencrypt_bytes_left;
    let t0 = Instant::now();
    db.reencrypt()?;
    re.full_seconds = t0.elapsed().as_secs_f64();
    re.full_mb_per_sec = mib(re.full_live_bytes) / re.full_seconds.max(1e-9);
    let after = db.encryption_status().ok_or("the database is not encrypted")?;
    re.keys_after = after.keys.len();
    re.bytes_left_after = after.reencrypt_bytes_left;
    let mut row = Row::new(kind, workload);
    row.seconds = re.full_seconds;
    row.user_bytes = re.full_live_bytes;
    row.mb_per_sec = re.full_mb_per_sec;
    row.notes.push(format!(
        "DB::reencrypt: {:.1} MiB live ({:.1} MiB stale) in {:.2} s; {} data key(s) and {} bytes \
         left after",
        mib(re.full_live_bytes),
        mib(re.full_stale_bytes),
        re.full_seconds,
        re.keys_after,
        re.bytes_left_after
    ));
    if re.keys_after != 1 || re.bytes_left_after != 0 {
        row.notes.push("WARNING: retired keys or stale bytes remain after reencrypt()".into());
    }
    push("full", finish_row(row, mark));
    engine.close()?;

    // (d) The same on the database reopened without background work, so that no throttled
    // background pass runs beside DB::reencrypt.
    let mark = rss_mark();
    let opts = kind.seal_options(dir, cfg, &master).ok_or("reencrypt needs a sealdb engine")?;
    let db = sealdb::DB::open(opts.background_work(false))?;
    db.rotate_data_key()?;
    let status = db.encryption_status().ok_or("the database is not encrypted")?;
    re.nobg_live_bytes = status.keys.iter().map(|k| k.live_bytes).sum();
    let t0 = Instant::now();
    db.reencrypt()?;
    re.nobg_seconds = t0.elapsed().as_secs_f64();
    re.nobg_mb_per_sec = mib(re.nobg_live_bytes) / re.nobg_seconds.max(1e-9);
    let after = db.encryption_status().ok_or("the database is not encrypted")?;
    let mut row = Row::new(kind, workload);
    row.seconds = re.nobg_seconds;
    row.user_bytes = re.nobg_live_bytes;
    row.mb_per_sec = re.nobg_mb_per_sec;
    row.notes.push(format!(
        "DB::reencrypt, reopened with background_work(false): {:.1} MiB live in {:.2} s",
        mib(re.nobg_live_bytes),
        re.nobg_seconds
    ));
    if after.keys.len() != 1 || after.reencrypt_bytes_left != 0 {
        row.notes.push("WARNING: retired keys or stale bytes remain after reencrypt()".into());
    }
    push("full-nobg", finish_row(row, mark));
    db.close()?;
    Ok(re)
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}

fn report_row(row: &Row) {
    if let Some(e) = &row.error {
        println!("  {:<17} {:<21} FAILED: {e}", row.engine, row.workload);
        return;
    }
    if let Some(why) = &row.skipped {
        println!("  {:<17} {:<21} skipped: {why}", row.engine, row.workload);
        return;
    }
    println!(
        "  {:<17} {:<21} {:>12} ops/s {:>8.1} MB/s  p50 {:>8} p99 {:>8} us{}",
        row.engine,
        row.workload,
        if row.ops == 0 { "-".to_string() } else { fmt_int(row.ops_per_sec) },
        row.mb_per_sec,
        fmt_opt(row.p50_us, 1),
        fmt_opt(row.p99_us, 1),
        row.write_amp.map_or(String::new(), |w| format!("  WA {w:.2}")),
    );
}

// ------------------------------------------------------------------------------------------
// RocksDB through the system db_bench
// ------------------------------------------------------------------------------------------

struct RocksBench {
    bin: PathBuf,
    version: Option<String>,
    assertions: bool,
}

struct ChildRun {
    stdout: String,
    write_bytes: Option<(u64, u64)>,
    peak_rss_kb: Option<u64>,
    seconds: f64,
}

/// One `Microseconds per <op>:` histogram of `db_bench --histogram=1`.
struct Hist {
    kind: String,
    count: u64,
    p50: f64,
    p99: f64,
    p999: f64,
}

impl RocksBench {
    /// Caveats that hold for every RocksDB row.
    fn notes(&self) -> Vec<String> {
        let mut n = vec![
            "each workload is a separate db_bench process on the same directory: the block cache \
             starts cold and process start-up is not timed"
                .to_string(),
            "peak RSS is that of the db_bench process, sampled every 20 ms".into(),
            "YCSB rows are db_bench proxies with uniform keys (it has no zipfian YCSB)".into(),
        ];
        if self.assertions {
            n.push(
                "this db_bench is built with assertions on (Debian's package is), so RocksDB \
                 figures are pessimistic"
                    .into(),
            );
        }
        n
    }

    fn find(cfg: &Config) -> Option<RocksBench> {
        let bin = cfg.db_bench.clone().or_else(|| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| Path::new(d).join("db_bench"))
                .find(|p| p.is_file())
        })?;
        // `db_bench --version` is not universal; a tiny run in a scratch directory prints the
        // version header.
        let scratch = tempfile::tempdir().ok()?;
        let out = Command::new(&bin)
            .arg("--benchmarks=crc32c")
            .arg(format!("--db={}", scratch.path().display()))
            .arg("--num=1")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("RocksDB:")?.trim().strip_prefix("version"))
            .map(|v| v.trim().to_string());
        let assertions = text.contains("Assertions are enabled");
        Some(RocksBench { bin, version, assertions })
    }

    /// Runs `db_bench` and waits, sampling its peak RSS, and reading its `/proc/<pid>/io` once
    /// it has exited but before it is reaped, so the count includes the writes of its last
    /// moments (flush on close).
    fn run(&self, args: &[String], pb: &ProgressBar) -> Res<ChildRun> {
        let mut out_file = tempfile::tempfile()?;
        let start = Instant::now();
        let mut child = Command::new(&self.bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out_file.try_clone()?))
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        let pid_s = pid.to_string();
        let (mut write_bytes, mut peak) = (None, None::<u64>);
        loop {
            let state = proc_state(pid);
            if let Some(w) = proc_write_bytes(&pid_s) {
                write_bytes = Some(w);
            }
            if matches!(state, None | Some('Z')) {
                break;
            }
            if let Some(kb) = proc_status_kb(&pid_s, "VmHWM:") {
                peak = Some(peak.map_or(kb, |p| p.max(kb)));
            }
            pb.tick();
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait()?;
        let seconds = start.elapsed().as_secs_f64();
        let mut stdout = String::new();
        out_file.rewind()?;
        out_file.read_to_string(&mut stdout)?;
        if !status.success() {
            let tail: Vec<&str> = stdout.lines().rev().take(5).collect();
            return Err(format!("db_bench exited with {status}: {}", tail.join(" | ")).into());
        }
        Ok(ChildRun { stdout, write_bytes, peak_rss_kb: peak, seconds })
    }

    /// Parses the `name : X micros/op Y ops/sec Z seconds N operations;` line of `bench`.
    fn parse_line(stdout: &str, bench: &str) -> Option<(f64, f64, f64, u64)> {
        let line = stdout.lines().find(|l| {
            l.split_once(':').is_some_and(|(n, rest)| n.trim() == bench && rest.contains("ops/sec"))
        })?;
        let toks: Vec<&str> = line.split_once(':')?.1.split_whitespace().collect();
        let before = |unit: &str| -> Option<f64> {
            let i = toks.iter().position(|t| *t == unit)?;
            toks.get(i.checked_sub(1)?)?.parse().ok()
        };
        Some((
            before("micros/op")?,
            before("ops/sec")?,
            before("seconds")?,
            before("operations;")? as u64,
        ))
    }

    fn parse_histograms(stdout: &str) -> Vec<Hist> {
        let mut out = Vec::new();
        let mut kind = String::from("op");
        let mut count = 0u64;
        for line in stdout.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("Microseconds per ") {
                kind = rest.trim_end_matches(':').to_string();
            } else if let Some(rest) = line.strip_prefix("Count:") {
                count = rest.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(0);
            } else if let Some(rest) = line.strip_prefix("Percentiles:") {
                let toks: Vec<&str> = rest.split_whitespace().collect();
                let get = |label: &str| -> Option<f64> {
                    let i = toks.iter().position(|t| *t == label)?;
                    toks.get(i + 1)?.parse().ok()
                };
                if let (Some(p50), Some(p99), Some(p999)) =
                    (get("P50:"), get("P99:"), get("P99.9:"))
                {
                    out.push(Hist { kind: kind.clone(), count, p50, p99, p999 });
                }
            }
        }
        out
    }
}

/// The `db_bench` benchmark and extra flags standing in for one of our workloads, and a note
/// when it is only an approximation.
fn rocks_mapping(w: Workload, cfg: &Config) -> (&'static str, Vec<String>, Option<&'static str>) {
    let t = cfg.threads as u64;
    let reads = |n: u64| format!("--reads={}", (n / t).max(1));
    let writes = |n: u64| format!("--writes={}", (n / t).max(1));
    match w {
        Workload::FillSeq => ("fillseq", vec![writes(cfg.num)], None),
        // filluniquerandom runs on one thread (see rocks_threads).
        Workload::FillRandom => (
            "filluniquerandom",
            vec![format!("--writes={}", cfg.num)],
            Some("filluniquerandom: every key once, like our fillrandom"),
        ),
        Workload::Overwrite => ("overwrite", vec![writes(cfg.num)], None),
        Workload::ReadRandom => ("readrandom", vec![reads(cfg.reads)], None),
        Workload::ReadMissing => ("readmissing", vec![reads(cfg.reads)], None),
        Workload::ReadSeq => ("readseq", vec![], None),
        Workload::SeekRandom => {
            ("seekrandom", vec![reads(cfg.seeks), format!("--seek_nexts={SEEK_NEXTS}")], None)
        }
        Workload::YcsbA => (
            "readrandomwriterandom",
            vec![reads(cfg.reads), "--readwritepercent=50".into()],
            Some("proxy: readrandomwriterandom 50% reads, uniform keys"),
        ),
        Workload::YcsbB => (
            "readrandomwriterandom",
            vec![reads(cfg.reads), "--readwritepercent=95".into()],
            Some("proxy: readrandomwriterandom 95% reads, uniform keys"),
        ),
        Workload::YcsbC => {
            ("readrandom", vec![reads(cfg.reads)], Some("proxy: readrandom, uniform keys"))
        }
        Workload::YcsbF => (
            "updaterandom",
            vec![reads(cfg.reads)],
            Some("proxy: updaterandom (read-modify-write), uniform keys"),
        ),
        Workload::Fill4k => ("filluniquerandom", vec![format!("--writes={}", cfg.num4k)], None),
        Workload::Read4k => ("readrandom", vec![reads(cfg.num4k)], None),
        Workload::Reencrypt | Workload::Reencrypt4k => {
            unreachable!("reencrypt is skipped for RocksDB")
        }
    }
}

/// Client threads of a `db_bench` run: `--threads`, except where the `db_bench` benchmark is
/// single-threaded (filluniquerandom) or our workload is (readseq: one scan).
fn rocks_threads(w: Workload, cfg: &Config) -> usize {
    match w {
        Workload::FillRandom | Workload::Fill4k | Workload::ReadSeq => 1,
        _ => cfg.threads,
    }
}

fn run_rocksdb(rocks: &RocksBench, cfg: &Config, root: &Path, out: &mut Vec<Row>) {
    let kind = EngineKind::RocksDb;
    let sel = |w: Workload| cfg.workloads.contains(&w);
    let phases: [(&str, Workload, &[Workload]); 3] = [
        ("seq", Workload::FillSeq, &[]),
        ("main", Workload::FillRandom, &MAIN_PHASE),
        ("4k", Workload::Fill4k, &[Workload::Read4k]),
    ];
    for (name, fill, then) in phases {
        if !(sel(fill) || then.iter().any(|w| sel(*w))) {
            continue;
        }
        let dir = root.join(format!("rocksdb-{name}"));
        let _ = fs::remove_dir_all(&dir);
        let large = fill == Workload::Fill4k;
        let (num, value_size) =
            if large { (cfg.num4k, VALUE_4K) } else { (cfg.num, cfg.value_size) };
        let mut base = vec![
            format!("--db={}", dir.display()),
            format!("--num={num}"),
            format!("--key_size={}", cfg.key_size),
            format!("--value_size={value_size}"),
            format!("--cache_size={}", cfg.cache_mb << 20),
            "--compression_type=lz4".into(),
            format!("--sync={}", u8::from(cfg.sync)),
            "--bloom_bits=10".into(),
            "--histogram=1".into(),
            format!("--seed={}", cfg.seed),
        ];
        if large {
            base.push("--enable_blob_files=true".into());
            base.push("--min_blob_size=1024".into());
        }
        let mut fill_ok = true;
        for w in std::iter::once(fill).chain(then.iter().copied()) {
            // The fill always runs: the others need its data.
            if w != fill && !sel(w) {
                continue;
            }
            if !fill_ok {
                out.push(Row::failed(kind, w, "the fill before it failed".into()));
                continue;
            }
            let (bench, extra, note) = rocks_mapping(w, cfg);
            let mut args = base.clone();
            args.extend(extra);
            args.push(format!("--threads={}", rocks_threads(w, cfg)));
            if w.is_fill() {
                // Flush the memtable before exiting, as the other engines' finish() does.
                args.push(format!("--benchmarks={bench},flush"));
                args.push("--use_existing_db=0".into());
            } else {
                args.push(format!("--benchmarks={bench}"));
                args.push("--use_existing_db=1".into());
            }
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            pb.set_style(
                ProgressStyle::with_template("{prefix:>17} {msg:<21} {spinner} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(kind.name());
            pb.set_message(w.name());
            let result = rocks.run(&args, &pb);
            pb.finish_and_clear();
            let row = match result {
                Err(e) => Row::failed(kind, w, e.to_string()),
                Ok(run) => rocks_row(w, bench, note, &run, cfg, &dir, num, value_size),
            };
            if w.is_fill() && row.error.is_some() {
                fill_ok = false;
            }
            if sel(w) {
                report_row(&row);
                out.push(row);
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }
    for w in [Workload::Reencrypt, Workload::Reencrypt4k].into_iter().filter(|w| sel(*w)) {
        let row = Row::skipped(kind, w, "needs an encrypted sealdb (a data key to rotate)");
        report_row(&row);
        out.push(row);
    }
}

fn rocks_row(
    w: Workload,
    bench: &str,
    note: Option<&str>,
    run: &ChildRun,
    cfg: &Config,
    dir: &Path,
    num: u64,
    value_size: usize,
) -> Row {
    let kind = EngineKind::RocksDb;
    let Some((_micros, ops_per_sec, seconds, ops)) = RocksBench::parse_line(&run.stdout, bench)
    else {
        return Row::failed(kind, w, format!("no '{bench} : ... ops/sec' line in db_bench output"));
    };
    let mut row = Row::new(kind, w);
    row.ops = ops;
    row.ops_per_sec = ops_per_sec;
    row.seconds = seconds;
    // User bytes per op, computed as for the in-process engines.
    let entry = (cfg.key_size + value_size) as f64;
    let per_op = match w {
        Workload::ReadMissing => cfg.key_size as f64,
        Workload::SeekRandom => entry * SEEK_NEXTS as f64,
        Workload::YcsbF => 2.0 * entry,
        _ => entry,
    };
    row.user_bytes = (per_op * ops as f64) as u64;
    row.mb_per_sec = ops_per_sec * per_op / 1_048_576.0;
    let hists = RocksBench::parse_histograms(&run.stdout);
    if let Some(h) = hists.iter().max_by_key(|h| h.count) {
        row.p50_us = Some(h.p50);
        row.p99_us = Some(h.p99);
        row.p999_us = Some(h.p999);
        if hists.len() > 1 {
            row.notes.push(format!("latency of the {} ops only (db_bench splits by op)", h.kind));
        }
    }
    row.peak_rss_mb = run.peak_rss_kb.map(|kb| kb as f64 / 1024.0);
    if let Some(n) = note {
        row.notes.push(n.into());
    }
    if cfg.threads > 1 && rocks_threads(w, cfg) == 1 {
        row.notes.push("ran on 1 thread (single-threaded in db_bench or here)".into());
    }
    if w.is_fill() {
        let user = num as f64 * entry;
        let (size, apparent) = dir_size(dir);
        row.disk_bytes = Some(size);
        row.disk_bytes_apparent = Some(apparent);
        row.space_amp = Some(size as f64 / user);
        match run.write_bytes {
            Some((w, c)) if w > 0 => {
                row.write_amp = Some(w as f64 / user);
                row.write_amp_net = Some(w.saturating_sub(c) as f64 / user);
                row.write_amp_source = Some(
                    "/proc/<db_bench pid>/io write_bytes, whole process (fill + flush)".into(),
                );
            }
            _ => {
                row.write_amp = Some(size as f64 / user);
                row.write_amp_source = Some(
                    "directory size (/proc/<pid>/io write_bytes showed 0 or was unreadable)".into(),
                );
                row.notes.push("WA from directory size (/proc shows 0): a lower bound".into());
            }
        }
        // Process time less the fill: open, flush, close.
        row.flush_seconds = Some((run.seconds - seconds).max(0.0));
    }
    row
}

// ------------------------------------------------------------------------------------------
// Output: table, ratios, JSON, SVG
// ------------------------------------------------------------------------------------------

fn fmt_int(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_opt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.prec$}"))
}

fn print_table(rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<17} {:<21} {:>10} {:>12} {:>8} {:>9} {:>9} {:>9} {:>6} {:>6} {:>8}",
        "engine",
        "workload",
        "ops",
        "ops/s",
        "MB/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "WA",
        "SA",
        "RSS MB"
    );
    let _ = writeln!(s, "{}", "-".repeat(124));
    for r in rows {
        if let Some(e) = &r.error {
            let mut e = e.replace('\n', " ");
            e.truncate(80);
            let _ = writeln!(s, "{:<17} {:<21} FAILED: {e}", r.engine, r.workload);
            continue;
        }
        if let Some(why) = &r.skipped {
            let _ = writeln!(s, "{:<17} {:<21} skipped: {why}", r.engine, r.workload);
            continue;
        }
        // A row without operations (reencrypt/full) has only a time and MB/s.
        let (ops, ops_s) = if r.ops == 0 {
            ("-".to_string(), "-".to_string())
        } else {
            (r.ops.to_string(), fmt_int(r.ops_per_sec))
        };
        let _ = writeln!(
            s,
            "{:<17} {:<21} {:>10} {:>12} {:>8.1} {:>9} {:>9} {:>9} {:>6} {:>6} {:>8}",
            r.engine,
            r.workload,
            ops,
            ops_s,
            r.mb_per_sec,
            fmt_opt(r.p50_us, 1),
            fmt_opt(r.p99_us, 1),
            fmt_opt(r.p999_us, 1),
            fmt_opt(r.write_amp, 2),
            fmt_opt(r.space_amp, 2),
            fmt_opt(r.peak_rss_mb, 0),
        );
    }
    s
}

const RATIOS: [(&str, &str); 6] = [
    ("sealdb-aes", "fjall"),
    ("sealdb-aes", "rocksdb"),
    ("sealdb-aes", "sealdb-plain"),
    ("sealdb-aes", "sealdb-aes-inline"),
    ("sealdb-aes", "coordinode"),
    ("sealdb-aes", "sqlcipher"),
];

/// ops/s of `a` divided by ops/s of `b`, per workload.
/// The median of the values (the mean of the middle two for an even count); `None` if empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(f64::midpoint(v[n / 2 - 1], v[n / 2])),
    }
}

/// Ratios of ops/s, each engine's figure being its median over the rounds.
fn ratios(rows: &[Row]) -> BTreeMap<(String, String), BTreeMap<Workload, f64>> {
    let ops = |engine: &str, w: Workload| {
        median(
            rows.iter()
                .filter(|r| r.engine == engine && r.workload == w.name() && r.ok())
                .map(|r| r.ops_per_sec)
                .collect(),
        )
    };
    let mut out = BTreeMap::new();
    for (a, b) in RATIOS {
        let mut m = BTreeMap::new();
        for w in Workload::ALL {
            if let (Some(x), Some(y)) = (ops(a, w), ops(b, w)) {
                if y > 0.0 {
                    m.insert(w, x / y);
                }
            }
        }
        out.insert((a.to_string(), b.to_string()), m);
    }
    out
}

fn print_ratios(r: &BTreeMap<(String, String), BTreeMap<Workload, f64>>) -> String {
    let mut s = String::new();
    if r.values().all(BTreeMap::is_empty) {
        s.push_str(
            "ops/s ratios: none (they need sealdb-aes and fjall, rocksdb, sealdb-plain, \
             sealdb-aes-inline, coordinode or sqlcipher)\n",
        );
        return s;
    }
    let cols: Vec<String> = RATIOS.iter().map(|(a, b)| format!("{a}/{b}")).collect();
    let _ = write!(s, "{:<12}", "ops/s ratio");
    for c in &cols {
        let _ = write!(s, " {c:>28}");
    }
    let _ = writeln!(s);
    for w in Workload::ALL {
        let vals: Vec<Option<f64>> = RATIOS
            .iter()
            .map(|(a, b)| r[&((*a).to_string(), (*b).to_string())].get(&w).copied())
            .collect();
        if vals.iter().all(Option::is_none) {
            continue;
        }
        let _ = write!(s, "{:<12}", w.name());
        for v in vals {
            let _ = write!(s, " {:>28}", fmt_opt(v, 2));
        }
        let _ = writeln!(s);
    }
    s
}

/// The reencrypt summary: readrandom idle and during background re-encryption, their ratio
/// against the target, and the unthrottled `DB::reencrypt` rate.
fn print_reencrypt(res: &[ReencryptResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Re-encryption (readrandom idle vs during background re-encryption; then DB::reencrypt)"
    );
    let _ = writeln!(
        s,
        "{:<17} {:<11} {:>9} {:>7} {:>11} {:>11} {:>7} {:>6} {:>7} {:>8} {:>8} {:>7} {:>9} {:>9}",
        "engine",
        "workload",
        "keys",
        "live MB",
        "idle ops/s",
        "bg ops/s",
        "bg/idle",
        ">=0.80",
        "bg s",
        "left MB",
        "bg re s",
        "full s",
        "full MB/s",
        "nobg MB/s"
    );
    let _ = writeln!(s, "{}", "-".repeat(141));
    for r in res {
        let _ = writeln!(
            s,
            concat!(
                "{:<17} {:<11} {:>9} {:>7.1} {:>11} {:>11} {:>7.2} {:>6} {:>7.2} {:>8.1} {:>8} ",
                "{:>7.2} {:>9.1} {:>9.1}"
            ),
            r.engine,
            r.workload,
            r.keys,
            r.live_bytes as f64 / 1_048_576.0,
            fmt_int(r.idle_ops_per_sec),
            fmt_int(r.bg_ops_per_sec),
            r.ratio,
            if r.ratio >= REENCRYPT_TARGET_RATIO { "yes" } else { "NO" },
            r.bg_seconds,
            r.bytes_left_end as f64 / 1_048_576.0,
            fmt_opt(r.bg_reencrypt_seconds, 2),
            r.full_seconds,
            r.full_mb_per_sec,
            r.nobg_mb_per_sec,
        );
    }
    let _ = writeln!(
        s,
        "live MB: sum of encryption_status().keys[*].live_bytes before the first rotation. bg s: \
         length of the read phase after rotate_data_key (it ends when reencrypt_bytes_left is 0, \
         or at --reencrypt-cap-secs); left MB: reencrypt_bytes_left when it ended; bg re s: \
         rotation to reencrypt_bytes_left == 0 (10 ms polls). full: rotate_data_key again, then \
         DB::reencrypt wall time and live MiB (before the call) / s. nobg: the same after \
         reopening with background_work(false), so no throttled background pass runs beside it."
    );
    s
}

fn write_svg(path: &Path, rows: &[Row], engines: &[EngineKind], title: &str) -> Res<()> {
    use plotters::prelude::*;

    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| rows.iter().any(|r| r.workload == w.name() && r.ok()))
        .collect();
    // Only rows of the charted workloads: the reencrypt rows have names of their own.
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.ok() && workloads.iter().any(|w| w.name() == r.workload))
        .collect();
    let engines: Vec<EngineKind> =
        engines.iter().copied().filter(|e| rows.iter().any(|r| r.engine == e.name())).collect();
    if workloads.is_empty() || engines.is_empty() {
        return Err("no successful results to chart".into());
    }
    let slots = engines.len() as i32 + 1;
    let width = workloads.len() as i32 * slots;
    let max = rows.iter().map(|r| r.ops_per_sec).fold(1.0, f64::max);
    let min =
        rows.iter().filter(|r| r.ops_per_sec > 0.0).map(|r| r.ops_per_sec).fold(max, f64::min);
    let y_lo = 10f64.powf((min / 2.0).max(1.0).log10().floor());
    let y_hi = 10f64.powf((max * 1.5).log10().ceil());
    let centers: Vec<i32> = (0..workloads.len() as i32).map(|i| i * slots + slots / 2).collect();

    let root = SVGBackend::new(path, (1400, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let names: Vec<&str> = workloads.iter().map(|w| w.name()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0..width).with_key_points(centers.clone()),
            (y_lo..y_hi).log_scale(),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| {
            centers.iter().position(|c| c == x).map_or(String::new(), |i| names[i].to_string())
        })
        .y_desc("ops/s (log scale)")
        .y_label_formatter(&|y| fmt_int(*y))
        .draw()?;
    let palette = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    for (ei, e) in engines.iter().enumerate() {
        let color = palette[ei % palette.len()];
        let bars: Vec<Rectangle<(i32, f64)>> = workloads
            .iter()
            .enumerate()
            .filter_map(|(wi, w)| {
                let r = rows.iter().find(|r| r.engine == e.name() && r.workload == w.name())?;
                let x = wi as i32 * slots + ei as i32;
                Some(Rectangle::new([(x, y_lo), (x + 1, r.ops_per_sec.max(y_lo))], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(e.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// main
// ------------------------------------------------------------------------------------------

fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("db_bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&cfg) {
        eprintln!("db_bench: {e}");
        std::process::exit(1);
    }
}

/// The default data directory: a temporary directory inside the cargo target directory (the
/// bench binary lives at `target/<profile>/deps/`), so data sits on the build disk, not tmpfs.
fn default_data_root() -> Res<tempfile::TempDir> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).or_else(|| {
        let exe = std::env::current_exe().ok()?;
        exe.ancestors().nth(3).map(Path::to_path_buf)
    });
    let parent = match target {
        Some(t) if t.is_dir() => t,
        _ => std::env::temp_dir(),
    };
    Ok(tempfile::Builder::new().prefix("db_bench-data-").tempdir_in(parent)?)
}

fn run(cfg: &Config) -> Res<()> {
    // The temporary directory (when --dir is not given) is removed when `_guard` drops.
    let (root, _guard) = if let Some(d) = &cfg.dir {
        fs::create_dir_all(d)?;
        (d.clone(), None)
    } else {
        let t = default_data_root()?;
        (t.path().to_path_buf(), Some(t))
    };
    let fs_kind = fs_type(&root).unwrap_or_else(|| "unknown".into());
    let proc_io_ok = proc_write_bytes("self").is_some();

    let rocks =
        if cfg.engines.contains(&EngineKind::RocksDb) { RocksBench::find(cfg) } else { None };
    let mut engines = cfg.engines.clone();
    if engines.contains(&EngineKind::RocksDb) && rocks.is_none() {
        println!(
            "rocksdb: skipped (no db_bench binary on PATH; `apt-get install rocksdb-tools`, or pass \
             --db-bench PATH){}",
            if cfg.engines_explicit { "" } else { " — it is optional" }
        );
        engines.retain(|e| *e != EngineKind::RocksDb);
    }
    for e in engines.iter().filter(|e| !e.built()) {
        println!(
            "{}: skipped (built without --features peers; run `cargo bench --features peers \
             --bench db_bench`)",
            e.name()
        );
    }
    engines.retain(|e| e.built());

    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("sealdb db_bench");
    println!(
        "  keys {} x ({} B key + {} B value), reads {}, seeks {} x {}, 4 KiB values: {} keys",
        cfg.num, cfg.key_size, cfg.value_size, cfg.reads, cfg.seeks, SEEK_NEXTS, cfg.num4k
    );
    println!(
        "  threads {}, cache {} MiB, sync {}, cores {cores}",
        cfg.threads, cfg.cache_mb, cfg.sync
    );
    println!("  data under {} ({fs_kind})", root.display());
    if fs_kind == "tmpfs" {
        println!("  WARNING: data directory is on tmpfs; write amplification and I/O are not real");
    }
    if !proc_io_ok {
        println!("  /proc/self/io unreadable: write amplification falls back to directory growth");
    }
    for e in &engines {
        println!("  {:<17} {}", e.name(), e.describe(cfg));
    }
    if let Some(r) = &rocks {
        println!(
            "  {:<17} {} version {}{}",
            "",
            r.bin.display(),
            r.version.as_deref().unwrap_or("?"),
            if r.assertions { " (built with assertions)" } else { "" }
        );
        for n in r.notes() {
            println!("  {:<17} note: {n}", "");
        }
    }
    println!("workloads:");
    for w in &cfg.workloads {
        println!("  {:<12} {}", w.name(), w.describe());
    }
    println!();

    let values = ValueSource::new(cfg.seed);
    let zipf = Zipfian::new(cfg.num);
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut reenc = Vec::new();
    for round in 0..cfg.rounds {
        // Odd rounds run the engines in reverse, so none is always first.
        let order: Vec<EngineKind> =
            if round % 2 == 1 { engines.iter().rev().copied().collect() } else { engines.clone() };
        for e in order {
            if cfg.rounds > 1 {
                println!("{} (round {} of {}):", e.name(), round + 1, cfg.rounds);
            } else {
                println!("{}:", e.name());
            }
            let first = rows.len();
            if e == EngineKind::RocksDb {
                if let Some(r) = &rocks {
                    run_rocksdb(r, cfg, &root, &mut rows);
                }
            } else {
                run_in_process(e, cfg, &root, &values, &zipf, &mut rows, &mut reenc);
            }
            for r in &mut rows[first..] {
                r.round = round;
            }
        }
    }
    let total_secs = started.elapsed().as_secs_f64();

    let table = print_table(&rows);
    let ratio = ratios(&rows);
    println!("\nResults ({total_secs:.0} s in all)\n");
    print!("{table}");
    println!();
    if cfg.rounds > 1 {
        println!("Ratios of each engine's median ops/s over {} rounds:", cfg.rounds);
    }
    print!("{}", print_ratios(&ratio));
    if !reenc.is_empty() {
        println!();
        print!("{}", print_reencrypt(&reenc));
    }
    let notes: Vec<String> = rows
        .iter()
        .filter(|r| !r.notes.is_empty())
        .map(|r| format!("  {} {}: {}", r.engine, r.workload, r.notes.join("; ")))
        .collect();
    if !notes.is_empty() {
        println!("\nNotes:");
        for n in notes {
            println!("{n}");
        }
    }
    println!(
        "\nWA: bytes written (/proc write_bytes) during the fill and its final flush / user bytes. \
         SA: allocated directory size after fill+flush / user bytes. RSS: peak resident set \
         during the workload, process-wide (for in-process engines it includes memory the \
         allocator kept from earlier engines; rss_at_start_mb in the JSON is the baseline)."
    );

    let json_ratios: Vec<Value> = ratio
        .iter()
        .map(|((a, b), m)| {
            let per: serde_json::Map<String, Value> =
                m.iter().map(|(w, v)| (w.name().to_string(), json!(v))).collect();
            json!({"numerator": a, "denominator": b, "ops_per_sec": per})
        })
        .collect();
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let doc = json!({
        "tool": "sealdb benches/db_bench.rs",
        "sealdb_version": env!("CARGO_PKG_VERSION"),
        "unix_time": unix_time,
        "total_seconds": total_secs,
        "config": {
            "num": cfg.num,
            "reads": cfg.reads,
            "seeks": cfg.seeks,
            "seek_nexts": SEEK_NEXTS,
            "num4k": cfg.num4k,
            "key_size": cfg.key_size,
            "value_size": cfg.value_size,
            "threads": cfg.threads,
            "cache_mb": cfg.cache_mb,
            "sync": cfg.sync,
            "quick": cfg.quick,
            "seed": cfg.seed,
            "rounds": cfg.rounds,
            "reencrypt_cap_secs": cfg.reencrypt_cap_secs,
            "reencrypt_rate_bytes_per_sec": cfg.reencrypt_rate,
            "engines": engines.iter().map(|e| e.name()).collect::<Vec<_>>(),
            "workloads": cfg
                .workloads
                .iter()
                .map(|w| json!({"name": w.name(), "op": w.describe()}))
                .collect::<Vec<_>>(),
        },
        "machine": {
            "cores": cores,
            "data_dir": root.display().to_string(),
            "data_fs": fs_kind,
            "proc_io_readable": proc_io_ok,
        },
        "engines": engines
            .iter()
            .map(|e| json!({"name": e.name(), "description": e.describe(cfg)}))
            .collect::<Vec<_>>(),
        "rocksdb_db_bench": rocks.as_ref().map(|r| json!({
            "binary": r.bin.display().to_string(),
            "version": r.version,
            "assertions": r.assertions,
            "notes": r.notes(),
        })),
        "results": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "ratios": json_ratios,
        "reencrypt": reenc.iter().map(ReencryptResult::to_json).collect::<Vec<_>>(),
    });
    if let Some(parent) = cfg.json.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    fs::write(&cfg.json, serde_json::to_string_pretty(&doc)?)?;
    println!("\nJSON: {}", cfg.json.display());
    if let Some(parent) = cfg.svg.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let title = format!(
        "ops/s by workload ({} keys, {} B values, {} thread(s))",
        cfg.num, cfg.value_size, cfg.threads
    );
    match write_svg(&cfg.svg, &rows, &engines, &title) {
        Ok(()) => println!("SVG:  {}", cfg.svg.display()),
        Err(e) => println!("SVG:  not written ({e})"),
    }
    Ok(())
}
