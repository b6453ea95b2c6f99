//! Compaction picking: which tables to compact next, and which tombstones a compaction may
//! drop. Pure functions of the version and the tuning (plus the round-robin cursor, passed
//! in); running a picked compaction is in `jobs.rs`, the worker loop in `background.rs`.
//!
//! - **Scores.** L0 scores its file count / `l0_compaction_trigger`; level *n* (1..=5) its
//!   bytes / (`level_base_size` × `level_size_multiplier`^(n−1)). The last level is never a
//!   source. The highest score ≥ 1 wins; on a tie the shallower level wins.
//! - **Inputs.** From L0, every L0 file; from a deeper level, one file: the first whose
//!   smallest key is after the level's cursor (wrapping to the first file); the cursor
//!   advances to that file's largest key. Then every overlapping file of the next level.
//! - **Trivial moves.** A single input with nothing overlapping below is moved down a level
//!   without being rewritten.
//! - **Tombstones** are dropped only where no level below the output holds a table whose
//!   key range covers the key (so nothing older can reappear).

use std::sync::Arc;

use super::version::{TableFile, Version};
use super::Tuning;
use crate::manifest::NUM_LEVELS;

/// A chosen compaction.
pub(super) struct Compaction {
    pub(super) inputs: Vec<Arc<TableFile>>,
    pub(super) output_level: usize,
    /// Move the single input down without rewriting it.
    pub(super) trivial_move: bool,
}

fn max_bytes_for_level(t: &Tuning, level: usize) -> u64 {
    let mut b = t.level_base_size;
    for _ in 1..level {
        b = b.saturating_mul(t.level_size_multiplier);
    }
    b
}

fn key_range(files: &[Arc<TableFile>]) -> (Vec<u8>, Vec<u8>) {
    let lo = files.iter().map(|f| f.meta.smallest_user()).min().unwrap_or_default().to_vec();
    let hi = files.iter().map(|f| f.meta.largest_user()).max().unwrap_or_default().to_vec();
    (lo, hi)
}

/// The compaction `v` needs next under tuning `t`, if any level scores at least 1; advances
/// the round-robin cursor (`pointers`, one per level) of the level picked.
pub(super) fn pick(v: &Version, t: &Tuning, pointers: &mut [Vec<u8>]) -> Option<Compaction> {
    let mut best = (0.0f64, 0usize);
    let l0_score = v.l0_depth() as f64 / t.l0_compaction_trigger as f64;
    if l0_score >= 1.0 {
        best = (l0_score, 0);
    }
    for level in 1..NUM_LEVELS - 1 {
        let score = v.level_size(level) as f64 / max_bytes_for_level(t, level) as f64;
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

/// The compaction of `DB::compact`: every table into one level, the deepest non-empty one
/// (at least L1); `None` when there is no table.
pub(super) fn pick_all(v: &Version) -> Option<Compaction> {
    let inputs: Vec<Arc<TableFile>> = v.all_files().map(|(_, f)| f.clone()).collect();
    if inputs.is_empty() {
        return None;
    }
    let deepest = (1..NUM_LEVELS).rev().find(|&l| !v.levels[l].is_empty()).unwrap_or(1);
    Some(Compaction { inputs, output_level: deepest, trivial_move: false })
}

/// The user-key range of `DB::compact_range`: inclusive bounds, `None` for unbounded (an
/// excluded bound is taken as included: a table touching it is compacted too).
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyRange {
    pub(crate) lo: Option<Vec<u8>>,
    pub(crate) hi: Option<Vec<u8>>,
}

impl KeyRange {
    /// Whether user keys [`smallest`, `largest`] meet the range.
    pub(crate) fn meets(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.lo.as_deref().is_none_or(|lo| largest >= lo)
            && self.hi.as_deref().is_none_or(|hi| smallest <= hi)
    }
}

/// The step of `DB::compact_range` at `level`: its tables meeting `range` into `level + 1`,
/// with every overlapping table there; `None` when no table of `level` meets the range. From
/// L0 the inputs are widened to every L0 table overlapping them (transitively), so no older
/// L0 entry is left above a newer one moved down. A single input with nothing overlapping
/// below is moved, keeping its number.
pub(super) fn pick_range(v: &Version, level: usize, range: &KeyRange) -> Option<Compaction> {
    if level + 1 >= NUM_LEVELS {
        return None;
    }
    let mut inputs: Vec<Arc<TableFile>> = v.levels[level]
        .iter()
        .filter(|f| range.meets(f.meta.smallest_user(), f.meta.largest_user()))
        .cloned()
        .collect();
    if inputs.is_empty() {
        return None;
    }
    if level == 0 {
        loop {
            let (lo, hi) = key_range(&inputs);
            let wider = v.overlapping(0, &lo, &hi);
            if wider.len() == inputs.len() {
                break;
            }
            inputs = wider;
        }
    }
    let (lo, hi) = key_range(&inputs);
    let next = v.overlapping(level + 1, &lo, &hi);
    let trivial_move = next.is_empty() && inputs.len() == 1;
    inputs.extend(next);
    Some(Compaction { inputs, output_level: level + 1, trivial_move })
}

/// Whether table `f` of `level` may still stand over an older version of one of its keys, or
/// hold a tombstone: another table overlaps its key range in L0 (when `f` is in L0) or in a
/// deeper level, or it records tombstones.
fn may_shadow(v: &Version, level: usize, f: &TableFile) -> bool {
    let (lo, hi) = (f.meta.smallest_user(), f.meta.largest_user());
    f.meta.tombstones > 0
        || (level == 0 && v.overlapping(0, lo, hi).iter().any(|g| g.meta.number != f.meta.number))
        || (level + 1..NUM_LEVELS).any(|l| !v.overlapping(l, lo, hi).is_empty())
}

/// The next compaction erasure needs (see `erase.rs`): for the first table, from L0 down,
/// whose oldest write is before `cutoff` (milliseconds since the Unix epoch) and which
/// [may shadow](may_shadow) an older version or holds tombstones, a compaction that takes it
/// one level down with the tables it overlaps there (from L0, every L0 table overlapping it,
/// transitively). A table with nothing overlapping in the next level moves without being
/// rewritten while something deeper overlaps it; otherwise (tombstones only) it is rewritten
/// into the next level, or in place in the last one, which drops them. `None` when no table
/// needs it. Repeated, it ends: each step moves entries down or drops tombstones.
pub(super) fn pick_erase(v: &Version, cutoff: u64) -> Option<Compaction> {
    for level in 0..NUM_LEVELS {
        for f in &v.levels[level] {
            if f.meta.oldest_write >= cutoff || !may_shadow(v, level, f) {
                continue;
            }
            let (lo, hi) = (f.meta.smallest_user(), f.meta.largest_user());
            if level == 0 {
                let r = KeyRange { lo: Some(lo.to_vec()), hi: Some(hi.to_vec()) };
                return pick_range(v, 0, &r);
            }
            let next =
                if level + 1 < NUM_LEVELS { v.overlapping(level + 1, lo, hi) } else { vec![] };
            let deeper = (level + 2..NUM_LEVELS).any(|l| !v.overlapping(l, lo, hi).is_empty());
            let trivial_move = next.is_empty() && deeper;
            let mut inputs = vec![f.clone()];
            inputs.extend(next);
            return Some(Compaction {
                inputs,
                output_level: (level + 1).min(NUM_LEVELS - 1),
                trivial_move,
            });
        }
    }
    None
}

/// Whether a compaction into `output_level` of version `base` may drop a tombstone of
/// `user_key`: no table below the output level covers the key.
pub(super) fn may_drop_tombstone(base: &Version, output_level: usize, user_key: &[u8]) -> bool {
    base.levels[output_level + 1..].iter().all(|lvl| {
        lvl.iter().all(|f| user_key < f.meta.smallest_user() || user_key > f.meta.largest_user())
    })
}

#[cfg(test)]
mod tests {
    use super::super::version::testing::Files;
    use super::*;

    fn tuning(files: &Files) -> Tuning {
        let mut t = files.tuning();
        t.l0_compaction_trigger = 4;
        t.level_base_size = 1000;
        t.level_size_multiplier = 10;
        t
    }

    fn numbers(c: &Compaction) -> Vec<u64> {
        let mut n: Vec<u64> = c.inputs.iter().map(|f| f.meta.number).collect();
        n.sort_unstable();
        n
    }

    fn no_cursors() -> Vec<Vec<u8>> {
        vec![Vec::new(); NUM_LEVELS]
    }

    #[test]
    fn range_picks_only_meeting_tables_and_widens_l0() {
        let fx = Files::new();
        let mut v = Version::default();
        v.levels[0].push(fx.file(1, b"a", b"c", 10));
        v.levels[0].push(fx.file(2, b"b", b"f", 10)); // overlaps 1, not the range
        v.levels[0].push(fx.file(3, b"x", b"z", 10));
        v.levels[1].push(fx.file(10, b"a", b"b", 10));
        v.levels[1].push(fx.file(11, b"e", b"g", 10));
        v.levels[1].push(fx.file(12, b"h", b"k", 10));
        v.levels[2].push(fx.file(20, b"j", b"m", 10));
        v.normalize();
        let r = KeyRange { lo: Some(b"a".to_vec()), hi: Some(b"a".to_vec()) };
        let c = pick_range(&v, 0, &r).expect("L0 meets [a, a]");
        assert_eq!((numbers(&c), c.output_level), (vec![1, 2, 10, 11], 1));
        let r = KeyRange { lo: Some(b"i".to_vec()), hi: None };
        let c = pick_range(&v, 1, &r).expect("L1 meets [i, ..)");
        assert_eq!((numbers(&c), c.trivial_move), (vec![12, 20], false));
        assert!(pick_range(&v, 2, &KeyRange { lo: None, hi: Some(b"c".to_vec()) }).is_none());
        let c = pick_range(&v, 2, &KeyRange::default()).expect("unbounded");
        assert_eq!((numbers(&c), c.output_level, c.trivial_move), (vec![20], 3, true));
    }

    #[test]
    fn nothing_below_the_triggers() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        for n in 1..4 {
            v.levels[0].push(fx.file(n, b"a", b"z", 10));
        }
        v.levels[1].push(fx.file(10, b"a", b"m", 999));
        v.levels[2].push(fx.file(20, b"a", b"m", 9_999));
        assert!(pick(&v, &t, &mut no_cursors()).is_none());
    }

    #[test]
    fn l0_at_its_trigger_compacts_every_l0_file_with_the_overlapping_l1_files() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        // Tree keys of the default keyspace (prefix 0).
        v.levels[0].push(fx.file(1, b"\0c", b"\0e", 10));
        v.levels[0].push(fx.file(2, b"\0d", b"\0f", 10));
        v.levels[0].push(fx.file(3, b"\0a", b"\0b", 10));
        v.levels[0].push(fx.file(4, b"\0e", b"\0g", 10));
        v.levels[1].push(fx.file(10, b"\0a", b"\0a", 10)); // overlaps [a, g]
        v.levels[1].push(fx.file(11, b"\0h", b"\0k", 10)); // does not
        let c = pick(&v, &t, &mut no_cursors()).expect("L0 is at its trigger");
        assert_eq!(c.output_level, 1);
        assert_eq!(numbers(&c), vec![1, 2, 3, 4, 10]);
        assert!(!c.trivial_move);
    }

    #[test]
    fn l0_depth_counts_the_tables_of_one_keyspace() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        // One flush over four keyspaces: four tables, one per keyspace, depth 1.
        for (n, ks) in [(1, b"\x01"), (2, b"\x02"), (3, b"\x03"), (4, b"\x04")] {
            v.levels[0].push(fx.file(n, &[&ks[..], b"a"].concat(), &[&ks[..], b"z"].concat(), 10));
        }
        assert_eq!(v.l0_depth(), 1);
        assert!(pick(&v, &t, &mut no_cursors()).is_none(), "no keyspace has 4 L0 tables");
        for n in 5..8 {
            v.levels[0].push(fx.file(n, b"\x02a", b"\x02z", 10));
        }
        assert_eq!(v.l0_depth(), 4);
        let c = pick(&v, &t, &mut no_cursors()).expect("keyspace 2 has 4 L0 tables");
        assert_eq!(c.output_level, 1);
    }

    #[test]
    fn highest_score_wins_and_a_tie_goes_to_the_shallower_level() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        // L1: 2000 / 1000 = 2.0; L2: 30000 / 10000 = 3.0.
        v.levels[1].push(fx.file(10, b"a", b"b", 2_000));
        v.levels[2].push(fx.file(20, b"c", b"d", 30_000));
        let c = pick(&v, &t, &mut no_cursors()).expect("over size");
        assert_eq!(c.output_level, 3);
        assert_eq!(numbers(&c), vec![20]);

        // L0: 8 / 4 = 2.0 ties L1: 2.0; L0 goes first.
        let mut v = Version::default();
        for n in 1..=8 {
            v.levels[0].push(fx.file(n, b"a", b"b", 1));
        }
        v.levels[1].push(fx.file(10, b"x", b"y", 2_000));
        let c = pick(&v, &t, &mut no_cursors()).expect("over size");
        assert_eq!(c.output_level, 1);
        assert_eq!(numbers(&c), (1..=8).collect::<Vec<_>>());

        // L1 2.0 ties L2 2.0: L1 goes first.
        let mut v = Version::default();
        v.levels[1].push(fx.file(10, b"a", b"b", 2_000));
        v.levels[2].push(fx.file(20, b"x", b"y", 20_000));
        let c = pick(&v, &t, &mut no_cursors()).expect("over size");
        assert_eq!(c.output_level, 2);
    }

    #[test]
    fn the_last_level_is_never_a_source() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        v.levels[NUM_LEVELS - 1].push(fx.file(60, b"a", b"b", u64::MAX / 2));
        assert!(pick(&v, &t, &mut no_cursors()).is_none());
    }

    #[test]
    fn round_robin_cursor_advances_and_wraps() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        v.levels[1].push(fx.file(10, b"a", b"c", 700));
        v.levels[1].push(fx.file(11, b"d", b"f", 700));
        v.levels[1].push(fx.file(12, b"g", b"i", 700));
        v.normalize();
        let mut cursors = no_cursors();
        let mut order = Vec::new();
        for _ in 0..4 {
            let c = pick(&v, &t, &mut cursors).expect("L1 over size");
            order.push(numbers(&c)[0]);
            assert_eq!(cursors[1], c.inputs[0].meta.largest_user());
        }
        assert_eq!(order, vec![10, 11, 12, 10]);
        // Other levels' cursors are untouched.
        assert!(cursors.iter().enumerate().all(|(l, c)| l == 1 || c.is_empty()));
    }

    #[test]
    fn trivial_move_only_for_a_single_input_with_nothing_below() {
        let fx = Files::new();
        let t = tuning(&fx);
        let mut v = Version::default();
        v.levels[1].push(fx.file(10, b"a", b"c", 2_000));
        v.levels[2].push(fx.file(20, b"d", b"f", 10));
        let c = pick(&v, &t, &mut no_cursors()).expect("L1 over size");
        assert!(c.trivial_move);
        assert_eq!(numbers(&c), vec![10]);

        v.levels[2].push(fx.file(21, b"c", b"c", 10));
        v.normalize();
        let c = pick(&v, &t, &mut no_cursors()).expect("L1 over size");
        assert!(!c.trivial_move);
        assert_eq!(numbers(&c), vec![10, 21]);

        // L0 with several files is never a move, even with an empty L1.
        let mut v = Version::default();
        for n in 1..=4 {
            v.levels[0].push(fx.file(n, b"a", b"b", 1));
        }
        assert!(!pick(&v, &t, &mut no_cursors()).expect("L0 full").trivial_move);
    }

    #[test]
    fn tombstones_drop_only_where_no_deeper_table_covers_the_key() {
        let fx = Files::new();
        let mut v = Version::default();
        v.levels[1].push(fx.file(10, b"a", b"z", 10));
        v.levels[3].push(fx.file(30, b"f", b"h", 10));
        v.levels[5].push(fx.file(50, b"p", b"p", 10));
        // Output L1: L3 and L5 lie below.
        assert!(may_drop_tombstone(&v, 1, b"a"));
        assert!(!may_drop_tombstone(&v, 1, b"f"));
        assert!(!may_drop_tombstone(&v, 1, b"g"));
        assert!(!may_drop_tombstone(&v, 1, b"h"));
        assert!(may_drop_tombstone(&v, 1, b"i"));
        assert!(!may_drop_tombstone(&v, 1, b"p"));
        // Output L3: only L5 lies below; the output level itself does not count.
        assert!(may_drop_tombstone(&v, 3, b"g"));
        assert!(!may_drop_tombstone(&v, 3, b"p"));
        // The bottom-most level drops every tombstone.
        assert!(may_drop_tombstone(&v, NUM_LEVELS - 1, b"p"));
    }

    fn aged(fx: &Files, n: u64, lo: &[u8], hi: &[u8], oldest: u64, tombs: u64) -> Arc<TableFile> {
        fx.aged(n, lo, hi, 10, (oldest, tombs))
    }

    #[test]
    fn erasure_picks_only_old_tables_that_may_shadow() {
        let fx = Files::new();
        let mut v = Version::default();
        // L1 [a, c] is old and overlaps L3 [b, b]; L1 [x, z] is old, overlaps nothing, and
        // holds no tombstone; L2 [m, n] is young (after the cutoff) and overlaps L3 [m, m].
        v.levels[1].push(aged(&fx, 10, b"a", b"c", 100, 0));
        v.levels[1].push(aged(&fx, 11, b"x", b"z", 100, 0));
        v.levels[2].push(aged(&fx, 20, b"m", b"n", 900, 0));
        v.levels[3].push(aged(&fx, 30, b"b", b"b", 50, 0));
        v.levels[3].push(aged(&fx, 31, b"m", b"m", 50, 0));
        v.normalize();
        // Nothing in L2 under [a, c]: a move toward L3.
        let c = pick_erase(&v, 500).expect("L1 [a, c] shadows L3 [b, b]");
        assert_eq!((numbers(&c), c.output_level, c.trivial_move), (vec![10], 2, true));
        // Before the first table's write, nothing is due.
        assert!(pick_erase(&v, 100).is_none());
        // Once L1 [a, c] is gone, only the young table shadows: due only after its write.
        v.levels[1].retain(|f| f.meta.number != 10);
        assert!(pick_erase(&v, 500).is_none());
        let c = pick_erase(&v, 901).expect("L2 [m, n] shadows L3 [m, m]");
        assert_eq!((numbers(&c), c.output_level, c.trivial_move), (vec![20, 31], 3, false));
    }

    #[test]
    fn erasure_rewrites_tables_with_tombstones_and_widens_l0() {
        let fx = Files::new();
        let mut v = Version::default();
        // A last-level table with a tombstone is rewritten in place.
        v.levels[NUM_LEVELS - 1].push(aged(&fx, 60, b"a", b"b", 1, 1));
        let c = pick_erase(&v, 2).expect("tombstone");
        assert_eq!(
            (numbers(&c), c.output_level, c.trivial_move),
            (vec![60], NUM_LEVELS - 1, false)
        );
        // An L2 table with tombstones and nothing below: rewritten into L3.
        let mut v = Version::default();
        v.levels[2].push(aged(&fx, 20, b"a", b"b", 1, 2));
        let c = pick_erase(&v, 2).expect("tombstones");
        assert_eq!((numbers(&c), c.output_level, c.trivial_move), (vec![20], 3, false));
        // An old L0 table overlapping a young one: both go, with L1's overlap.
        let mut v = Version::default();
        v.levels[0].push(aged(&fx, 1, b"a", b"c", 1, 0));
        v.levels[0].push(aged(&fx, 2, b"c", b"e", 99, 0));
        v.levels[1].push(aged(&fx, 10, b"e", b"f", 1, 0));
        v.levels[1].push(aged(&fx, 11, b"x", b"y", 1, 0));
        v.normalize();
        let c = pick_erase(&v, 50).expect("old L0 table overlaps another");
        assert_eq!((numbers(&c), c.output_level), (vec![1, 2, 10], 1));
        // A lone old L0 table over nothing, without tombstones: nothing to do.
        let mut v = Version::default();
        v.levels[0].push(aged(&fx, 1, b"a", b"c", 1, 0));
        assert!(pick_erase(&v, 50).is_none());
    }

    #[test]
    fn pick_all_targets_the_deepest_non_empty_level() {
        let fx = Files::new();
        assert!(pick_all(&Version::default()).is_none());
        let mut v = Version::default();
        v.levels[0].push(fx.file(1, b"a", b"b", 1));
        let c = pick_all(&v).expect("one table");
        assert_eq!(c.output_level, 1);
        v.levels[4].push(fx.file(40, b"c", b"d", 1));
        v.levels[2].push(fx.file(20, b"e", b"f", 1));
        let c = pick_all(&v).expect("tables");
        assert_eq!(c.output_level, 4);
        assert_eq!(numbers(&c), vec![1, 20, 40]);
        assert!(!c.trivial_move);
    }
}
