//! Replays the fuzz corpora through the decoders in `sealdb::decode`, and runs a cheap,
//! deterministic fuzz around every input.
//!
//! For each target of [`TARGETS`], every file of `fuzz/corpus/<target>/` (the committed seeds,
//! which must exist) and of `fuzz/regressions/<target>/` (crashes found by `cargo fuzz`, if
//! any) is decoded as is, with every byte flipped (XOR) by each of [`MASKS`] (inputs under
//! [`FLIP_BELOW`] bytes) and truncated at every length (inputs under [`TRUNCATE_BELOW`]
//! bytes). No decode may panic. The model-based targets of [`MODEL_TARGETS`] are not pure
//! decoders: their seeds and regressions are each run once, without mutations. See
//! `fuzz/README.md`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use sealdb::decode;

/// A decoder under test: any bytes in, a measure of how far they got (0 when rejected early).
type Decoder = fn(&[u8]) -> usize;

/// Every fuzz target: the name of `fuzz/fuzz_targets/<name>.rs` and of its corpus and
/// regression directories, and the function of `sealdb::decode` it calls.
///
/// Adding a target is one line here, plus `fuzz/fuzz_targets/<name>.rs`, its `[[bin]]` in
/// `fuzz/Cargo.toml` and its seeds (`examples/make_fuzz_seeds.rs`). A decoder that does not
/// return `usize` fits with a closure, e.g. `|d| usize::from(decode::x(d).is_ok())`.
const TARGETS: &[(&str, Decoder)] = &[
    ("sealed_block", decode::sealed_block),
    ("data_block", decode::data_block),
    ("bloom_filter", decode::bloom_filter),
    ("wal_record", decode::wal_record),
    ("manifest", decode::manifest),
    ("key_registry", decode::key_registry),
    ("file_header", decode::file_header),
    ("vlog_entry", decode::vlog_entry),
    ("vlog_segment", decode::vlog_segment),
    ("table_footer", decode::table_footer),
    ("audit_log", decode::audit_log),
    ("backup_manifest", decode::backup_manifest),
    ("export_stream", decode::export_stream),
];

#[path = "../fuzz/common/model_ops.rs"]
mod model_ops;

/// The model-based fuzz targets: the name of `fuzz/fuzz_targets/<name>.rs` and of its corpus and
/// regression directories, and the function that runs one input (it panics on a failed check).
/// Each input does real I/O, so [`model_seeds_run_clean`] runs every seed once, unmutated.
const MODEL_TARGETS: &[(&str, Runner)] = &[("model_ops", model_ops::run)];

/// A model-based target's run of one input: panics when a check fails.
type Runner = fn(&[u8]);

/// Inputs shorter than this get every byte flipped with each mask.
const FLIP_BELOW: usize = 512;
/// Inputs shorter than this are also decoded truncated at every length.
const TRUNCATE_BELOW: usize = 256;
/// XOR masks of the byte flips: lowest bit, highest bit, every bit.
const MASKS: [u8; 3] = [0x01, 0x80, 0xff];
/// Distinct panic locations described in full before the rest are only counted.
const MAX_REPORTED: usize = 10;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir` (none if it does not exist), skipping hidden ones, in name order.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')))
        .collect();
    files.sort();
    files
}

thread_local! {
    /// Set while a decode runs under `catch_unwind`: the panic hook records into it instead of
    /// printing, so thousands of mutated inputs cannot flood the output.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of the runs of [`run_catching`] and
/// hands every other panic to the default hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let recorded = CAUGHT.with(|c| match c.borrow_mut().as_mut() {
                Some(slot) => {
                    let bt = std::backtrace::Backtrace::force_capture().to_string();
                    *slot = format!(
                        "{info}\n  backtrace (panic machinery and harness cut):\n{}",
                        trim_backtrace(&bt)
                    );
                    true
                }
                None => false,
            });
            if !recorded {
                default(info);
            }
        }));
    });
}

/// The frames of a backtrace between the panic machinery and the unwinding catch of
/// [`run_catching`].
fn trim_backtrace(bt: &str) -> String {
    let lines: Vec<&str> = bt.lines().collect();
    // The catch: `catch_unwind` and the frames it calls the closure through.
    let catch = ["panic::catch_unwind", "panicking::catch_unwind", "panicking::try", "__rust_try"];
    let end = lines
        .iter()
        .position(|l| catch.iter().any(|c| l.contains(c)) || l.contains("run_catching"))
        .unwrap_or(lines.len());
    let end = lines[..end]
        .iter()
        .rposition(|l| !l.contains("AssertUnwindSafe") && !l.trim_start().starts_with("at "))
        .map_or(end, |i| {
            // Keep frame `i` and its `at` line, drop the `AssertUnwindSafe` frames after it.
            let next = i + 1;
            next + usize::from(lines.get(next).is_some_and(|l| l.trim_start().starts_with("at ")))
        })
        .min(end);
    let machinery = [
        "std::panicking",
        "core::panicking",
        "rust_begin_unwind",
        "std::sys::backtrace",
        "std::backtrace",
        "install_hook",
        "as core::ops::function::Fn",
    ];
    let start = lines[..end]
        .iter()
        .rposition(|l| machinery.iter().any(|m| l.contains(m)))
        .map_or(0, |i| i + 1);
    let start =
        start + usize::from(lines.get(start).is_some_and(|l| l.trim_start().starts_with("at ")));
    lines[start..end.max(start)].join("\n")
}

/// Runs `f`: `Err` with the panic message, location and backtrace if it panics.
fn run_catching<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    CAUGHT.with(|c| *c.borrow_mut() = Some(String::new()));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    let msg = CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    r.map_err(|_| msg)
}

/// Runs `f` on `input`: `Err` with the panic message, location and backtrace if it panics.
fn decode_catching(f: Decoder, input: &[u8]) -> Result<usize, String> {
    run_catching(|| f(input))
}

/// The inputs derived from one seed: the seed, its byte flips and its truncations, each with
/// a description.
fn mutations(seed: &[u8]) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
    let flips = (seed.len() < FLIP_BELOW)
        .then(|| {
            (0..seed.len()).flat_map(move |i| {
                MASKS.into_iter().map(move |m| {
                    let mut d = seed.to_vec();
                    d[i] ^= m;
                    (format!("byte {i} ^ {m:#04x}"), d)
                })
            })
        })
        .into_iter()
        .flatten();
    let truncations = (seed.len() < TRUNCATE_BELOW)
        .then(|| (0..seed.len()).map(|n| (format!("truncated to {n}"), seed[..n].to_vec())))
        .into_iter()
        .flatten();
    std::iter::once(("as is".to_string(), seed.to_vec())).chain(flips).chain(truncations)
}

fn hex_preview(d: &[u8]) -> String {
    const SHOWN: usize = 256;
    let mut s = String::with_capacity(2 * d.len().min(SHOWN));
    for b in d.iter().take(SHOWN) {
        let _ = write!(s, "{b:02x}");
    }
    if d.len() > SHOWN {
        let _ = write!(s, "… ({} bytes)", d.len());
    }
    s
}

/// What one target's replay found.
struct Outcome {
    target: &'static str,
    seeds: usize,
    regressions: usize,
    decodes: usize,
    panics: usize,
    /// The first panicking input at each distinct panic location, described.
    distinct: BTreeMap<String, String>,
}

fn replay_target(target: &'static str, f: Decoder) -> Outcome {
    install_hook();
    let dir = fuzz_dir();
    let seeds = files_in(&dir.join("corpus").join(target));
    let regressions = files_in(&dir.join("regressions").join(target));
    let mut out = Outcome {
        target,
        seeds: seeds.len(),
        regressions: regressions.len(),
        decodes: 0,
        panics: 0,
        distinct: BTreeMap::new(),
    };
    for path in seeds.iter().chain(&regressions) {
        let seed = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (what, input) in mutations(&seed) {
            out.decodes += 1;
            if let Err(msg) = decode_catching(f, &input) {
                out.panics += 1;
                let location = msg.lines().next().unwrap_or_default().to_owned();
                out.distinct.entry(location).or_insert_with(|| {
                    format!(
                        "{target}: {} ({what}) panicked\n  input: {}\n  {msg}",
                        path.display(),
                        hex_preview(&input)
                    )
                });
            }
        }
    }
    out
}

/// Every target's seeds and regressions, and their mutations, decode without a panic; every
/// target has seeds.
#[test]
fn corpora_and_mutations_decode_without_panic() {
    let outcomes: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> =
            TARGETS.iter().map(|&(t, f)| s.spawn(move || replay_target(t, f))).collect();
        handles.into_iter().map(|h| h.join().expect("replay thread")).collect()
    });
    let mut problems = Vec::new();
    for o in &outcomes {
        eprintln!(
            "{:>14}: {} seeds, {} regressions, {} decodes, {} panics at {} places",
            o.target,
            o.seeds,
            o.regressions,
            o.decodes,
            o.panics,
            o.distinct.len()
        );
        if o.seeds == 0 {
            problems.push(format!(
                "{}: no seeds in fuzz/corpus/{}/ (regenerate: cargo run --manifest-path fuzz/seeds/Cargo.toml)",
                o.target, o.target
            ));
        }
    }
    let reports: Vec<&String> = outcomes.iter().flat_map(|o| o.distinct.values()).collect();
    problems.extend(reports.iter().take(MAX_REPORTED).map(|r| (*r).clone()));
    if reports.len() > MAX_REPORTED {
        problems.push(format!("... and {} more panic locations", reports.len() - MAX_REPORTED));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The seeds are not stale: for every target at least one seed gets past the first checks
/// (after a format change, regenerate them with `cargo run --manifest-path fuzz/seeds/Cargo.toml`).
#[test]
fn every_target_has_a_seed_that_decodes() {
    install_hook();
    for &(target, f) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let reached = files_in(&dir).iter().any(|p| {
            let seed = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            decode_catching(f, &seed).is_ok_and(|n| n > 0)
        });
        assert!(
            reached,
            "{target}: no seed in {} decodes; regenerate: cargo run --manifest-path fuzz/seeds/Cargo.toml",
            dir.display()
        );
    }
}

/// Every seed and regression of the model-based targets runs without a failed check or a panic
/// (each once: a run opens and reopens a database several times).
#[test]
fn model_seeds_run_clean() {
    install_hook();
    let mut problems = Vec::new();
    for &(target, run) in MODEL_TARGETS {
        let dir = fuzz_dir();
        let seeds = files_in(&dir.join("corpus").join(target));
        let regressions = files_in(&dir.join("regressions").join(target));
        if seeds.is_empty() {
            problems.push(format!(
                "{target}: no seeds in fuzz/corpus/{target}/ (regenerate: cargo run --manifest-path fuzz/seeds/Cargo.toml)"
            ));
        }
        let start = std::time::Instant::now();
        for path in seeds.iter().chain(&regressions) {
            let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(msg) = run_catching(|| run(&input)) {
                problems.push(format!(
                    "{target}: {} failed\n  input: {}\n  {msg}",
                    path.display(),
                    hex_preview(&input)
                ));
            }
        }
        eprintln!(
            "{target:>14}: {} seeds, {} regressions, run once each in {:.1?}",
            seeds.len(),
            regressions.len(),
            start.elapsed()
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The tables above and the fuzz crate name the same targets.
#[test]
fn targets_match_the_fuzz_crate() {
    let dir = fuzz_dir();
    let mut in_crate: Vec<String> = files_in(&dir.join("fuzz_targets"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect();
    in_crate.sort();
    let mut in_table: Vec<String> = TARGETS
        .iter()
        .map(|(t, _)| *t)
        .chain(MODEL_TARGETS.iter().map(|(t, _)| *t))
        .map(str::to_owned)
        .collect();
    in_table.sort();
    assert_eq!(
        in_crate, in_table,
        "fuzz/fuzz_targets/*.rs and TARGETS plus MODEL_TARGETS in tests/fuzz_corpus.rs differ"
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for t in &in_table {
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "fuzz/Cargo.toml has no [[bin]] named {t}"
        );
    }
}
