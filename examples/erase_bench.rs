//! Write amplification of an overwrite-heavy workload with and without
//! `Options::erase_within`.
//!
//! `cargo run --release --example erase_bench -- [seconds] [bound seconds] [scratch dir]`
//! (defaults 30, 5, the system temp directory). For each value size (200 B, inline in the
//! tables; 4 KiB, in the value log) and each configuration (no bound; `erase_within(bound)`),
//! it loads 20,000 keys, then overwrites random keys at a fixed 2 MB/s of user data for the
//! given time, waits twice the bound so background work catches up, and reports: user bytes
//! written, bytes sealdb wrote to files (`wchar` of `/proc/self/io`: every byte handed to
//! `write`, so Linux only), their ratio (write amplification), the directory's size at the end
//! and the compactions, flushes and value-log segments collected. Values are incompressible;
//! the database is unencrypted (encryption changes sizes by a tag per block, not the ratio).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sealdb::{Options, DB};

const KEYS: u64 = 20_000;
const RATE: f64 = 2e6;

/// Bytes this process handed to `write` so far.
fn written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").expect("/proc/self/io (Linux only)");
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar in /proc/self/io")
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

/// xorshift64: incompressible values, random keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let x = self.next();
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
    }
}

struct Run {
    user: u64,
    wrote: u64,
    size: u64,
    compactions: u64,
    flushes: u64,
    segments: u64,
}

fn run(dir: &Path, value_size: usize, secs: u64, bound: Option<Duration>) -> sealdb::Result<Run> {
    let mut o = Options::new(dir).memtable_size(4 << 20).vlog_segment_size(16 << 20);
    if let Some(b) = bound {
        o = o.erase_within(b);
    }
    let db = DB::open(o)?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut value = vec![0u8; value_size];
    let before = written();
    let mut user = 0u64;
    for i in 0..KEYS {
        rng.fill(&mut value);
        db.put(format!("key{i:012}"), &value)?;
        user += 15 + value_size as u64;
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut sent = 0f64;
    while Instant::now() < end {
        let k = rng.next() % KEYS;
        rng.fill(&mut value);
        db.put(format!("key{k:012}"), &value)?;
        let n = 15 + value_size as u64;
        user += n;
        sent += n as f64;
        let due = Duration::from_secs_f64(sent / RATE);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    std::thread::sleep(bound.unwrap_or(Duration::from_secs(5)) * 2);
    let wrote = written() - before;
    let s = db.stats();
    let r = Run {
        user,
        wrote,
        size: dir_bytes(dir),
        compactions: s.compactions,
        flushes: s.flushes,
        segments: s.gc_segments_collected,
    };
    db.close()?;
    Ok(r)
}

fn main() -> sealdb::Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map_or(30, |a| a.parse().expect("seconds"));
    let bound = Duration::from_secs(args.next().map_or(5, |a| a.parse().expect("bound seconds")));
    let root = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let scratch = root.join(format!("sealdb-erase-bench-{}", std::process::id()));
    println!(
        "{secs} s of random overwrites of {KEYS} keys at {:.0} MB/s; bound {bound:?}",
        RATE / 1e6
    );
    println!(
        "| value | erase_within | user MB | written MB | write amp. | dir MB at end | compactions | flushes | segments GC'd |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for value_size in [200usize, 4096] {
        for b in [None, Some(bound)] {
            let dir = scratch.join(format!("{value_size}-{}", b.is_some()));
            let r = run(&dir, value_size, secs, b)?;
            println!(
                "| {value_size} B | {} | {:.1} | {:.1} | {:.2} | {:.1} | {} | {} | {} |",
                b.map_or_else(|| "off".to_string(), |b| format!("{b:?}")),
                r.user as f64 / 1e6,
                r.wrote as f64 / 1e6,
                r.wrote as f64 / r.user as f64,
                r.size as f64 / 1e6,
                r.compactions,
                r.flushes,
                r.segments,
            );
            std::fs::remove_dir_all(&dir)?;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
