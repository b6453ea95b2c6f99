//! Results: one [`Row`] per engine and workload, and the outputs: the table on stdout, the
//! ratios, the JSON file and the SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::engines::EngineKind;
use crate::reencrypt::{ReencryptResult, REENCRYPT_TARGET_RATIO};
use crate::workloads::Workload;
use crate::Res;

#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) engine: String,
    pub(crate) workload: String,
    /// Which round of `--rounds` measured it (0-based).
    pub(crate) round: usize,
    pub(crate) ops: u64,
    pub(crate) seconds: f64,
    pub(crate) ops_per_sec: f64,
    pub(crate) mb_per_sec: f64,
    pub(crate) user_bytes: u64,
    pub(crate) p50_us: Option<f64>,
    pub(crate) p99_us: Option<f64>,
    pub(crate) p999_us: Option<f64>,
    pub(crate) write_amp: Option<f64>,
    pub(crate) write_amp_net: Option<f64>,
    pub(crate) write_amp_source: Option<String>,
    pub(crate) space_amp: Option<f64>,
    pub(crate) disk_bytes: Option<u64>,
    pub(crate) disk_bytes_apparent: Option<u64>,
    pub(crate) flush_seconds: Option<f64>,
    pub(crate) peak_rss_mb: Option<f64>,
    pub(crate) rss_at_start_mb: Option<f64>,
    pub(crate) found: Option<u64>,
    /// Transaction commits that failed with a conflict and were retried (txn).
    pub(crate) conflicts: Option<u64>,
    pub(crate) notes: Vec<String>,
    pub(crate) error: Option<String>,
    /// Why the workload did not run on this engine (not a failure).
    pub(crate) skipped: Option<String>,
}

impl Row {
    pub(crate) fn new(engine: EngineKind, workload: Workload) -> Row {
        Row { engine: engine.name().into(), workload: workload.name().into(), ..Row::default() }
    }

    pub(crate) fn failed(engine: EngineKind, workload: Workload, error: String) -> Row {
        Row { error: Some(error), ..Row::new(engine, workload) }
    }

    pub(crate) fn skipped(engine: EngineKind, workload: Workload, why: &str) -> Row {
        Row { skipped: Some(why.into()), ..Row::new(engine, workload) }
    }

    /// Whether the row holds a measurement (neither failed nor skipped).
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none() && self.skipped.is_none()
    }

    pub(crate) fn to_json(&self) -> Value {
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
            "conflicts_retried": self.conflicts,
            "notes": self.notes,
            "error": self.error,
            "skipped": self.skipped,
        })
    }
}

pub(crate) fn report_row(row: &Row) {
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

pub(crate) fn fmt_int(x: f64) -> String {
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

pub(crate) fn fmt_opt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.prec$}"))
}

pub(crate) fn print_table(rows: &[Row]) -> String {
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

pub(crate) const RATIOS: [(&str, &str); 7] = [
    ("sealdb-aes", "fjall"),
    ("sealdb-aes", "rocksdb"),
    ("sealdb-aes", "sealdb-plain"),
    ("sealdb-aes", "sealdb-aes-inline"),
    ("sealdb-aes", "coordinode"),
    ("sealdb-aes", "sqlcipher"),
    // What a configured cold tier (nothing archived) costs the hot path: 1.0 is nothing.
    ("sealdb-aes-tiered", "sealdb-aes"),
];

/// ops/s of `a` divided by ops/s of `b`, per workload.
/// The median of the values (the mean of the middle two for an even count); `None` if empty.
pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(f64::midpoint(v[n / 2 - 1], v[n / 2])),
    }
}

/// Ratios of ops/s, each engine's figure being its median over the rounds.
pub(crate) fn ratios(rows: &[Row]) -> BTreeMap<(String, String), BTreeMap<Workload, f64>> {
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

pub(crate) fn print_ratios(r: &BTreeMap<(String, String), BTreeMap<Workload, f64>>) -> String {
    let mut s = String::new();
    if r.values().all(BTreeMap::is_empty) {
        s.push_str(
            "ops/s ratios: none (they need sealdb-aes and fjall, rocksdb, sealdb-plain, \
             sealdb-aes-inline, sealdb-aes-tiered, coordinode or sqlcipher)\n",
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
pub(crate) fn print_reencrypt(res: &[ReencryptResult]) -> String {
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

pub(crate) fn write_svg(path: &Path, rows: &[Row], engines: &[EngineKind], title: &str) -> Res<()> {
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

#[cfg(test)]
mod tests {
    use super::{fmt_int, median};

    #[test]
    fn median_of_odd_even_and_empty_lists() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn fmt_int_groups_thousands() {
        assert_eq!(fmt_int(0.0), "0");
        assert_eq!(fmt_int(999.4), "999");
        assert_eq!(fmt_int(1_234_567.0), "1,234,567");
        assert_eq!(fmt_int(-5.0), "0");
    }
}
