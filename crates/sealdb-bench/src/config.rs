//! Command-line options: `--help` text, parsing, and the run configuration.

use std::path::PathBuf;

use crate::engines::EngineKind;
use crate::workloads::Workload;
use crate::Res;

pub(crate) const USAGE: &str = "\
sealdb-bench: sealdb vs fjall vs RocksDB (and, with --features peers, coordinode-lsm-tree and
SQLCipher), db_bench/YCSB-style workloads

USAGE: cargo run --release -p sealdb-bench [--features peers] -- [OPTIONS]

  --num N            keys loaded by the fills (default 1000000; --quick: 50000)
  --reads N          operations of each read / YCSB workload (default: --num)
  --seeks N          seeks of seekrandom, each reading 100 keys (default: --reads / 10)
  --num4k N          keys of fill4k / read4k / seek4k, 4 KiB values (default: --num / 10;
                     --quick: 2000); seek4k runs --num4k / 10 seeks, each reading 100 keys
  --key-size N       key bytes (default 16)
  --value-size N     value bytes (default 100)
  --threads N        client threads per workload (default 1)
  --cache-mb N       block cache of every engine, MiB (default 64)
  --sync             fsync every write (sealdb sync_writes, fjall persist(SyncData), db_bench --sync)
  --sync-num N       keys of fillsync / fillsync8, --value-size values (default 3000); those
                     two always fsync every write and run on 1 / 8 threads, whatever --sync
                     and --threads say
  --engines LIST     comma-separated: sealdb-aes,sealdb-aes-inline,sealdb-aes-tiered,
                     sealdb-chacha,sealdb-plain,fjall,rocksdb,coordinode,sqlcipher (default: all
                     available but sealdb-aes-tiered, a cold tier configured and nothing
                     archived, to compare with sealdb-aes; sealdb-aes-inline
                     then runs only the 4 KiB workloads, as it differs from sealdb-aes only for
                     values >= 2 KiB). coordinode (coordinode-lsm-tree, AES-256-GCM blocks) and
                     sqlcipher (SQLCipher via rusqlite) need `--features peers`
  --workloads LIST   comma-separated: fillseq,fillrandom,overwrite,readrandom,readmissing,readseq,
                     seekrandom,ycsb-a,ycsb-b,ycsb-c,ycsb-f,fill4k,read4k,seek4k,reencrypt,
                     reencrypt4k,cold,batch2,txn,fillsync,fillsync8
                     (a,b,c,f also accepted; default: all but reencrypt4k, cold, fillsync and
                     fillsync8; `all`: every one). cold: sealdb engines only, everything
                     archived to an object store with --cold-latency-ms per request.
                     fillsync: a fresh DB opened as --sync opens it, --sync-num puts from 1
                     thread, each durable before it returns; fillsync8: the same from 8
                     threads at once (sealdb's group commit shares an fsync among them)
  --reencrypt-cap-secs N
                     longest read phase during background re-encryption (default 120)
  --reencrypt-rate-mb N
                     background re-encryption rate of the encrypted sealdb engines, MiB/s
                     (default: sealdb's, 16)
  --cold-latency-ms N
                     latency the cold workload's object store adds to every request, and
                     sealdb-aes-tiered's (default 20)
  --cold-reads N     point reads of each cold read phase (default 500; the zipfian mix runs
                     4x as many)
  --cold-cache-mb N  the cold tier's part cache in the cold workload's zipfian mix (default 16)
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
pub(crate) struct Config {
    pub(crate) num: u64,
    pub(crate) reads: u64,
    pub(crate) seeks: u64,
    pub(crate) num4k: u64,
    /// Seeks of seek4k: `num4k / 10`.
    pub(crate) seeks4k: u64,
    pub(crate) key_size: usize,
    pub(crate) value_size: usize,
    pub(crate) threads: usize,
    pub(crate) cache_mb: u64,
    pub(crate) sync: bool,
    /// Keys of the synced fills (fillsync, fillsync8).
    pub(crate) sync_num: u64,
    pub(crate) engines: Vec<EngineKind>,
    pub(crate) engines_explicit: bool,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) quick: bool,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) json: PathBuf,
    pub(crate) svg: PathBuf,
    pub(crate) db_bench: Option<PathBuf>,
    pub(crate) seed: u64,
    pub(crate) rounds: usize,
    pub(crate) reencrypt_cap_secs: u64,
    /// `Encryption::reencrypt_rate` of the encrypted sealdb engines, bytes/s (None: sealdb's
    /// default, 16 MiB/s).
    pub(crate) reencrypt_rate: Option<u64>,
    /// Milliseconds the cold workload's object store (and sealdb-aes-tiered's) adds to every
    /// request.
    pub(crate) cold_latency_ms: u64,
    /// Point reads of each cold read phase.
    pub(crate) cold_reads: u64,
    /// The cold tier's part cache in the cold workload's zipfian mix, MiB.
    pub(crate) cold_cache_mb: u64,
}

pub(crate) const VALUE_4K: usize = 4096;
pub(crate) const SEEK_NEXTS: usize = 100;

pub(crate) fn parse_args() -> Res<Config> {
    parse_from(std::env::args().skip(1))
}

/// Parses the options in `args` (the command line without the program name).
pub(crate) fn parse_from(mut args: impl Iterator<Item = String>) -> Res<Config> {
    let mut num = None;
    let mut reads = None;
    let mut seeks = None;
    let mut num4k = None;
    let mut cfg = Config {
        num: 0,
        reads: 0,
        seeks: 0,
        num4k: 0,
        seeks4k: 0,
        key_size: 16,
        value_size: 100,
        threads: 1,
        cache_mb: 64,
        sync: false,
        sync_num: 3000,
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
        cold_latency_ms: 20,
        cold_reads: 500,
        cold_cache_mb: 16,
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
            "--sync-num" => cfg.sync_num = parse_num(&value("--sync-num")?)?.max(1),
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
            "--cold-latency-ms" => cfg.cold_latency_ms = parse_num(&value("--cold-latency-ms")?)?,
            "--cold-reads" => cfg.cold_reads = parse_num(&value("--cold-reads")?)?.max(1),
            "--cold-cache-mb" => cfg.cold_cache_mb = parse_num(&value("--cold-cache-mb")?)?,
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}").into()),
        }
    }
    cfg.num = num.unwrap_or(if cfg.quick { 50_000 } else { 1_000_000 }).max(1);
    cfg.reads = reads.unwrap_or(cfg.num).max(1);
    cfg.seeks = seeks.unwrap_or(cfg.reads / 10).max(1);
    cfg.num4k = num4k.unwrap_or(if cfg.quick { 2_000 } else { cfg.num / 10 }).max(1);
    cfg.seeks4k = (cfg.num4k / 10).max(1);
    let digits = (cfg.num.max(cfg.num4k).max(cfg.sync_num) - 1).to_string().len();
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
pub(crate) fn parse_num(s: &str) -> Res<u64> {
    let t = s.trim().replace('_', "");
    let (digits, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000),
        Some('m' | 'M') => (&t[..t.len() - 1], 1_000_000),
        _ => (t.as_str(), 1),
    };
    Ok(digits.parse::<u64>().map_err(|e| format!("bad number {s:?}: {e}"))? * mult)
}

#[cfg(test)]
mod tests {
    use super::parse_num;

    #[test]
    fn parse_num_takes_suffixes_and_underscores() {
        assert_eq!(parse_num("20000").unwrap(), 20_000);
        assert_eq!(parse_num("1_000").unwrap(), 1_000);
        assert_eq!(parse_num("50k").unwrap(), 50_000);
        assert_eq!(parse_num("2M").unwrap(), 2_000_000);
        assert!(parse_num("").is_err());
        assert!(parse_num("1G").is_err());
        assert!(parse_num("-5").is_err());
    }
}
