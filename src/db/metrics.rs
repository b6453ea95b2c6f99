//! The figures of [`Stats`] published through the `metrics` crate facade (cargo feature
//! `metrics`), so whichever exporter the application installed (for Prometheus, `StatsD`,
//! ...) picks them up: on every call of `DB::publish_metrics`, and about once a second from the
//! background thread of a database opened with background work.
//!
//! Every metric carries the label `db`, the database directory. Counters are published as
//! absolute values (they count since the database was opened); gauges are set.
//!
//! | name                                        | kind    | from [`Stats`]                    |
//! | ------------------------------------------- | ------- | --------------------------------- |
//! | `sealdb_level_files` (label `level`)        | gauge   | `levels[level].files`             |
//! | `sealdb_level_bytes` (label `level`)        | gauge   | `levels[level].bytes`             |
//! | `sealdb_memtable_bytes`                     | gauge   | `memtable_bytes`                  |
//! | `sealdb_frozen_memtables`                   | gauge   | `frozen_memtables`                |
//! | `sealdb_flush_running`                      | gauge   | `flush_running` (0 or 1)          |
//! | `sealdb_compaction_running`                 | gauge   | `compaction_running` (0 or 1)     |
//! | `sealdb_gc_running`                         | gauge   | `gc_running` (0 or 1)             |
//! | `sealdb_flushes_total`                      | counter | `flushes`                         |
//! | `sealdb_compactions_total`                  | counter | `compactions`                     |
//! | `sealdb_gc_segments_collected_total`        | counter | `gc_segments_collected`           |
//! | `sealdb_reencrypt_bytes_left`               | gauge   | `reencrypt_bytes_left`            |
//! | `sealdb_reencrypt_files_left`               | gauge   | `reencrypt_files_left`            |
//! | `sealdb_block_cache_hits_total`             | counter | `block_cache_hits`                |
//! | `sealdb_block_cache_misses_total`           | counter | `block_cache_misses`              |
//! | `sealdb_value_cache_hits_total`             | counter | `value_cache_hits`                |
//! | `sealdb_value_cache_misses_total`           | counter | `value_cache_misses`              |
//! | `sealdb_write_stalls_total`                 | counter | `write_stalls`                    |
//! | `sealdb_write_stall_microseconds_total`     | counter | `write_stall_time`                |
//! | `sealdb_vlog_segments`                      | gauge   | `vlog_segments.len()`             |
//! | `sealdb_vlog_bytes`                         | gauge   | sum of `vlog_segments[].bytes`    |
//! | `sealdb_vlog_garbage_bytes`                 | gauge   | sum of `vlog_segments[].garbage`  |
//! | `sealdb_vlog_max_garbage_ratio`             | gauge   | largest `garbage / bytes`         |
//!
//! The value log is published as totals and the worst segment's garbage ratio rather than one
//! series per segment: segments come and go with GC, and the facade cannot retire a series, so
//! per-segment series would pile up in the exporter. `DB::stats` has every segment.

use metrics::{counter, gauge};

use super::Stats;

/// Publishes `s`, the figures of the database at `dir`.
pub(crate) fn publish(dir: &std::path::Path, s: &Stats) {
    let db = dir.display().to_string();
    for (level, l) in s.levels.iter().enumerate() {
        let level = level.to_string();
        gauge!("sealdb_level_files", "db" => db.clone(), "level" => level.clone())
            .set(l.files as f64);
        gauge!("sealdb_level_bytes", "db" => db.clone(), "level" => level).set(l.bytes as f64);
    }
    let gauges = [
        ("sealdb_memtable_bytes", s.memtable_bytes as f64),
        ("sealdb_frozen_memtables", s.frozen_memtables as f64),
        ("sealdb_flush_running", f64::from(u8::from(s.flush_running))),
        ("sealdb_compaction_running", f64::from(u8::from(s.compaction_running))),
        ("sealdb_gc_running", f64::from(u8::from(s.gc_running))),
        ("sealdb_reencrypt_bytes_left", s.reencrypt_bytes_left as f64),
        ("sealdb_reencrypt_files_left", s.reencrypt_files_left as f64),
        ("sealdb_vlog_segments", s.vlog_segments.len() as f64),
        ("sealdb_vlog_bytes", s.vlog_segments.iter().map(|g| g.bytes).sum::<u64>() as f64),
        (
            "sealdb_vlog_garbage_bytes",
            s.vlog_segments.iter().map(|g| g.garbage).sum::<u64>() as f64,
        ),
        (
            "sealdb_vlog_max_garbage_ratio",
            s.vlog_segments
                .iter()
                .map(|g| g.garbage as f64 / g.bytes.max(1) as f64)
                .fold(0.0, f64::max),
        ),
    ];
    for (name, v) in gauges {
        gauge!(name, "db" => db.clone()).set(v);
    }
    let stall_micros = u64::try_from(s.write_stall_time.as_micros()).unwrap_or(u64::MAX);
    let counters = [
        ("sealdb_flushes_total", s.flushes),
        ("sealdb_compactions_total", s.compactions),
        ("sealdb_gc_segments_collected_total", s.gc_segments_collected),
        ("sealdb_block_cache_hits_total", s.block_cache_hits),
        ("sealdb_block_cache_misses_total", s.block_cache_misses),
        ("sealdb_value_cache_hits_total", s.value_cache_hits),
        ("sealdb_value_cache_misses_total", s.value_cache_misses),
        ("sealdb_write_stalls_total", s.write_stalls),
        ("sealdb_write_stall_microseconds_total", stall_micros),
    ];
    for (name, v) in counters {
        counter!(name, "db" => db.clone()).absolute(v);
    }
}
