//! Compaction picking: which tables to compact next, chosen from the version.

use std::sync::Arc;

use super::version::{TableFile, Version};
use super::Inner;
use crate::manifest::NUM_LEVELS;

/// A chosen compaction.
pub(super) struct Compaction {
    pub(super) inputs: Vec<Arc<TableFile>>,
    pub(super) output_level: usize,
    /// Move the single input down without rewriting it.
    pub(super) trivial_move: bool,
}

fn max_bytes_for_level(inner: &Inner, level: usize) -> u64 {
    let mut b = inner.tuning.level_base_size;
    for _ in 1..level {
        b = b.saturating_mul(inner.tuning.level_size_multiplier);
    }
    b
}

fn key_range(files: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
    let lo = files.iter().map(|f| f.meta.smallest_user()).min().unwrap_or_default().to_vec();
    let hi = files.iter().map(|f| f.meta.largest_user()).max().unwrap_or_default().to_vec();
    (lo, hi)
}

pub(super) fn pick(inner: &Inner, v: &Version, pointers: &mut [Vec<u8>]) -> Option<Compaction> {
    let t = &inner.tuning;
    let mut best = (0.0f64, 0usize);
    let l0_score = v.levels[0].len() as f64 / t.l0_compaction_trigger as f64;
    if l0_score >= 1.0 {
        best = (l0_score, 0);
    }
    for level in 1..NUM_LEVELS - 1 {
        let score = v.level_size(level) as f64 / max_bytes_for_level(inner, level) as f64;
        if score >= 1.0 && score > best.0 {
            best = (score, level);
        }
    }
    if best.0 < 1.0 {
        return None;
    }
    let level = best.1;
    let inputs: Vec<Arc<TableFile>> = if level == 0 {
        v.levels[0].clone()
    } else {
        let files = &v.levels[level];
        let ptr = &pointers[level];
        let f = files.iter().find(|f| f.meta.smallest_user() > ptr.as_slice()).or(files.first())?;
        pointers[level] = f.meta.largest_user().to_vec();
        vec![f.clone()]
    };
    let (lo, hi) = key_range(&inputs);
    let next = v.overlapping(level + 1, &lo, &hi);
    let trivial_move = next.is_empty() && inputs.len() == 1;
    let mut all = inputs;
    all.extend(next);
    Some(Compaction { inputs: all, output_level: level + 1, trivial_move })
}
