//! `sealdb-bench`: macro benchmarks of sealdb against fjall and RocksDB, in the spirit of RocksDB's
//! `db_bench` and YCSB; with `--features peers`, also against two encrypting peers:
//! coordinode-lsm-tree and `SQLCipher`.
//!
//! ```text
//! cargo run --release -p sealdb-bench -- --quick
//! cargo run --release -p sealdb-bench -- --num 1000000 --engines sealdb-aes,fjall --workloads fillrandom,readrandom
//! cargo run --release -p sealdb-bench -- --num 1M --engines sealdb-aes --workloads reencrypt
//! cargo run --release -p sealdb-bench -- --num 200k --engines sealdb-aes --workloads cold --cold-latency-ms 20
//! cargo run --release -p sealdb-bench -- --sync-num 3000 --engines sealdb-aes,fjall --workloads fillsync,fillsync8
//! cargo run --release -p sealdb-bench --features peers -- --engines sealdb-aes,coordinode,sqlcipher,fjall --workloads fillrandom,readrandom
//! cargo run --release -p sealdb-bench -- --help
//! ```
//!
//! Each engine runs alone, one after the other, each in its own directory that is deleted after
//! its workloads. In-process engines implement [`engines::Engine`], one file per engine under
//! `engines/`; RocksDB runs as the system `db_bench` binary (Debian package `rocksdb-tools`)
//! with matching parameters, and its output is parsed into the same rows. The reencrypt workloads use sealdb's own API (key rotation and the
//! re-encryption compactor) and run on the encrypted sealdb engines only; they add a summary
//! table. Results go to a table on stdout, a JSON file and an SVG chart. See
//! `docs/benchmarks.md` for the workloads and how to read the figures.

#![expect(
    clippy::too_many_arguments,
    reason = "engine and workload runners take the run's many parts as arguments rather than \
              one-off structs"
)]

mod cold;
mod config;
mod engines;
mod reencrypt;
mod report;
mod run;
mod syncfill;
mod sys;
mod txn;
mod workloads;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use crate::config::{parse_args, Config, SEEK_NEXTS};
use crate::engines::rocksdb::{run_rocksdb, RocksBench};
use crate::engines::EngineKind;
use crate::reencrypt::ReencryptResult;
use crate::report::{print_ratios, print_reencrypt, print_table, ratios, write_svg, Row};
use crate::run::run_in_process;
use crate::sys::{fs_type, proc_write_bytes};
use crate::workloads::{ValueSource, Zipfian};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Res<T> = Result<T, BoxError>;

fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sealdb-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&cfg) {
        eprintln!("sealdb-bench: {e}");
        std::process::exit(1);
    }
}

/// The default data directory: a temporary directory inside the cargo target directory (the
/// binary lives at `target/<profile>/`), so data sits on the build disk, not tmpfs.
pub(crate) fn default_data_root() -> Res<tempfile::TempDir> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).or_else(|| {
        let exe = std::env::current_exe().ok()?;
        exe.ancestors().nth(2).map(Path::to_path_buf)
    });
    let parent = match target {
        Some(t) if t.is_dir() => t,
        _ => std::env::temp_dir(),
    };
    Ok(tempfile::Builder::new().prefix("db_bench-data-").tempdir_in(parent)?)
}

pub(crate) fn run(cfg: &Config) -> Res<()> {
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
            "{}: skipped (built without --features peers; run `cargo run --release \
             -p sealdb-bench --features peers`)",
            e.name()
        );
    }
    engines.retain(|e| e.built());

    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("sealdb db_bench");
    println!(
        "  keys {} x ({} B key + {} B value), reads {}, seeks {} x {}, 4 KiB values: {} keys, \
         {} seeks",
        cfg.num,
        cfg.key_size,
        cfg.value_size,
        cfg.reads,
        cfg.seeks,
        SEEK_NEXTS,
        cfg.num4k,
        cfg.seeks4k
    );
    println!(
        "  threads {}, cache {} MiB, sync {}, cores {cores}",
        cfg.threads, cfg.cache_mb, cfg.sync
    );
    if cfg.workloads.iter().any(|w| crate::syncfill::SYNC_WORKLOADS.contains(w)) {
        println!(
            "  fillsync / fillsync8: {} keys, every write synced, on 1 / 8 threads",
            cfg.sync_num
        );
    }
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
    let mut cold = Vec::new();
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
                run_in_process(e, cfg, &root, &values, &zipf, &mut rows, &mut reenc, &mut cold);
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
    if !cold.is_empty() {
        println!();
        print!("{}", cold::print_cold(&cold));
    }
    if let Some(t) = txn::print_txn_summary(&rows) {
        println!();
        print!("{t}");
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
            "seeks4k": cfg.seeks4k,
            "key_size": cfg.key_size,
            "value_size": cfg.value_size,
            "threads": cfg.threads,
            "cache_mb": cfg.cache_mb,
            "sync": cfg.sync,
            "sync_num": cfg.sync_num,
            "quick": cfg.quick,
            "seed": cfg.seed,
            "rounds": cfg.rounds,
            "reencrypt_cap_secs": cfg.reencrypt_cap_secs,
            "reencrypt_rate_bytes_per_sec": cfg.reencrypt_rate,
            "cold_latency_ms": cfg.cold_latency_ms,
            "cold_reads": cfg.cold_reads,
            "cold_cache_mb": cfg.cold_cache_mb,
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
        "cold": cold.iter().map(cold::ColdResult::to_json).collect::<Vec<_>>(),
        "txn": txn::txn_summary_json(&rows),
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
