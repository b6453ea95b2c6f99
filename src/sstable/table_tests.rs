use super::*;
use crate::io::StdFs;

/// Writes `entries` (user key, sequence, kind, value; in internal-key order) as a plain
/// table with tiny blocks, and opens it.
pub(crate) fn build_table(
    dir: &Path,
    number: u64,
    entries: &[(Vec<u8>, u64, ValueKind, Vec<u8>)],
) -> Arc<Table> {
    let path = dir.join(format!("{number:06}.sst"));
    let opts = BuildOptions {
        block_size: 128,
        restart_interval: 2,
        compression: true,
        bloom_bits_per_key: 10,
    };
    let mut b = TableBuilder::create(&StdFs, &path, number, None, 0, opts).unwrap();
    for (k, seq, kind, v) in entries {
        b.add(k, *seq, *kind, v).unwrap();
    }
    b.finish().unwrap();
    Arc::new(Table::open(&StdFs, &path, number, None, Arc::new(BlockCache::new(1 << 20))).unwrap())
}

type Entry = (Vec<u8>, u64, ValueKind, Vec<u8>);

fn entries() -> Vec<Entry> {
    let mut out = Vec::new();
    for i in 0..120u32 {
        let k = format!("key{:04}", i * 2).into_bytes();
        // Several versions of some keys, newest first.
        for seq in (1..=1 + u64::from(i % 3)).rev() {
            let kind =
                if (u64::from(i) + seq) % 5 == 0 { ValueKind::Delete } else { ValueKind::Put };
            let v = if kind == ValueKind::Delete {
                Vec::new()
            } else {
                format!("v{i}.{seq}").into_bytes()
            };
            out.push((k.clone(), seq, kind, v));
        }
    }
    out
}

fn at(it: &TableIter) -> Option<Entry> {
    it.valid().then(|| (it.user_key().to_vec(), it.seq(), it.kind(), it.value().to_vec()))
}

#[test]
fn table_iterates_backward() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries();
    let table = build_table(dir.path(), 1, &entries);
    let mut it = table.iter();
    it.seek_to_last().unwrap();
    let mut back = Vec::new();
    while let Some(e) = at(&it) {
        back.push(e);
        it.prev().unwrap();
    }
    let mut want = entries.clone();
    want.reverse();
    assert_eq!(back, want);

    // The last entry before each user key, present or not.
    for t in 0..=241u32 {
        let target = format!("key{t:04}").into_bytes();
        it.seek_before(&target).unwrap();
        let want = entries.iter().rposition(|e| e.0 < target).map(|j| entries[j].clone());
        assert_eq!(at(&it), want, "before key{t:04}");
    }
}

#[test]
fn table_mixes_next_and_prev() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let entries = entries();
    let table = build_table(dir.path(), 1, &entries);
    let mut it = table.iter();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut model: Option<usize> = None;
    for _ in 0..4_000 {
        match rng.gen_range(0..8) {
            0 => {
                it.seek_to_first().unwrap();
                model = Some(0);
            }
            1 => {
                it.seek_to_last().unwrap();
                model = Some(entries.len() - 1);
            }
            2..=4 => {
                if model.is_some() {
                    it.next().unwrap();
                    model = model.and_then(|m| (m + 1 < entries.len()).then_some(m + 1));
                }
            }
            _ => {
                if model.is_some() {
                    it.prev().unwrap();
                    model = model.and_then(|m| m.checked_sub(1));
                }
            }
        }
        assert_eq!(at(&it), model.map(|m| entries[m].clone()));
    }
}

#[test]
fn corrupt_restart_point_is_a_corruption_error_naming_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let entries = entries();
    let table = build_table(dir.path(), 7, &entries);
    // The first data block with at least five entries.
    let mut idx = BlockIter::new(table.index.clone());
    idx.seek_to_first();
    let (off, block, offsets) = loop {
        assert!(idx.valid(), "no data block with five entries");
        let (off, len) = table.handle(table.data_end, idx.value()).unwrap();
        let block = table.data_block(off, len).unwrap();
        let offsets = block.entry_offsets();
        if offsets.len() >= 5 {
            break (off, block, offsets);
        }
        idx.next();
    };
    // Restart point 1 (entry 2 at interval 2) moved to entry 3, which shares a prefix with
    // entry 2. Authenticated blocks never hold this; the cache hands it out as if read.
    assert_eq!(block.restart(1), offsets[2]);
    let bad = Arc::new(Block::new(block.with_restart(1, offsets[3])).unwrap());
    table.cache.insert(table.number, off, bad);
    let mut it = table.iter();
    it.seek_to_first().unwrap();
    while it.valid() && it.data_off != off {
        it.next().unwrap();
    }
    for _ in 0..4 {
        it.next().unwrap();
    }
    assert!(it.valid() && it.data_off == off);
    // Entry 4: stepping back decodes from the false restart point.
    let err = it.prev().unwrap_err();
    let msg = err.to_string();
    assert!(err.is_corruption(), "{msg}");
    assert!(msg.contains("000007.sst"), "{msg}");
    assert!(msg.contains(&off.to_string()), "{msg}");
}
