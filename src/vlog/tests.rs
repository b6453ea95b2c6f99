use super::*;
use crate::io::StdFs;
use crate::options::Cipher;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use std::sync::Mutex;

/// A file that records the (offset, length) of every read.
struct Tracked {
    inner: Arc<dyn RandomAccessFile>,
    reads: Mutex<Vec<(u64, usize)>>,
}

impl RandomAccessFile for Tracked {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.reads.lock().unwrap().push((offset, buf.len()));
        self.inner.read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

struct Written {
    _dir: tempfile::TempDir,
    seg: Segment,
    tracked: Arc<Tracked>,
    /// Recorded length of the segment (the file holds garbage after it).
    len: u64,
    /// (pointer, key, sequence, value) in write order.
    entries: Vec<(Pointer, Vec<u8>, u64, Vec<u8>)>,
}

/// A closed segment of `n` entries with 4 KiB values (half compressible), followed in its
/// file by 300 KiB of garbage that is not part of it; reads are tracked.
fn closed_segment(keys: Option<&KeyRing>, n: u64) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Fs> = Arc::new(StdFs);
    let path = dir.path().join("000001.vlog");
    let mut w = VlogWriter::create(&fs, &path, 1, keys).unwrap();
    let mut rng = StdRng::seed_from_u64(16);
    let mut entries = Vec::new();
    for i in 0..n {
        let key = format!("\0key{i:05}").into_bytes(); // a tree key of the default keyspace
        let mut value = vec![b'v'; 4096];
        rng.fill_bytes(&mut value[..if i % 2 == 0 { 4096 } else { 2048 }]);
        let ptr = w.add(i + 1, &key, &value, i % 2 == 1).unwrap();
        entries.push((ptr, key, i + 1, value));
    }
    w.write_staged().unwrap();
    w.sync().unwrap();
    let len = w.len();
    drop(w);
    let mut garbage = vec![0u8; 300 << 10];
    rng.fill_bytes(&mut garbage);
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, &garbage).unwrap();
    drop(file);
    let mut seg = Segment::open(&fs, &path, 1, keys, Recorded::Closed(len)).unwrap();
    let tracked = Arc::new(Tracked { inner: seg.file.clone(), reads: Mutex::new(Vec::new()) });
    seg.file = tracked.clone();
    Written { _dir: dir, seg, tracked, len, entries }
}

fn keyrings() -> Vec<Option<KeyRing>> {
    vec![None, Some(KeyRing::generate(Cipher::Aes256Gcm).unwrap())]
}

#[test]
fn sequential_read_ahead_grows_and_stops_at_the_recorded_length() {
    for keys in keyrings() {
        let w = closed_segment(keys.as_ref(), 200);
        let mut ra = ReadAhead::default();
        for (ptr, key, seq, value) in &w.entries {
            assert_eq!(&ra.read(&w.seg, *ptr, key, *seq, None).unwrap(), value);
        }
        let reads = w.tracked.reads.lock().unwrap().clone();
        let last = reads.iter().map(|&(o, n)| o + n as u64).max().unwrap();
        assert_eq!(last, w.len, "the last window ends exactly at the recorded length");
        // One entry, then windows of 16, 32, 64, 128 KiB, then 256 KiB ones.
        let sizes: Vec<usize> = reads.iter().map(|&(_, n)| n).collect();
        assert_eq!(sizes[0], w.entries[0].0.len as usize, "{sizes:?}");
        assert_eq!(sizes[1..5], [16 << 10, 32 << 10, 64 << 10, 128 << 10], "{sizes:?}");
        assert!(sizes.iter().all(|&n| n as u64 <= MAX_READ_AHEAD), "{sizes:?}");
        assert!(reads.len() < 12, "{} reads for {} entries", reads.len(), w.entries.len());
    }
}

#[test]
fn scattered_pointers_read_one_entry_each_then_hit_the_cache() {
    for keys in keyrings() {
        let w = closed_segment(keys.as_ref(), 120);
        let mut order: Vec<usize> = (0..w.entries.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(7));
        let cache = BlockCache::new(64 << 20);
        let mut ra = ReadAhead::default();
        let mut expect = Vec::new();
        for &i in &order {
            let (ptr, key, seq, value) = &w.entries[i];
            if expect.last().is_some_and(|&(o, n)| o + n as u64 == ptr.offset) {
                // Sequential to the previous one: it may start a window; skip it.
                continue;
            }
            assert_eq!(&ra.read(&w.seg, *ptr, key, *seq, Some(&cache)).unwrap(), value);
            expect.push((ptr.offset, ptr.len as usize));
        }
        assert_eq!(*w.tracked.reads.lock().unwrap(), expect, "one read of each entry alone");
        // Again: every value comes from the cache, nothing is read.
        let mut ra = ReadAhead::default();
        for &(offset, _) in &expect {
            let (ptr, key, seq, value) = w.entries.iter().find(|e| e.0.offset == offset).unwrap();
            assert_eq!(&ra.read(&w.seg, *ptr, key, *seq, Some(&cache)).unwrap(), value);
        }
        assert_eq!(w.tracked.reads.lock().unwrap().len(), expect.len());
        // A pointer whose entry is for another key fails, from the cache or not.
        let (ptr, _, seq, _) = &w.entries[order[0]];
        let err = ReadAhead::default().read(&w.seg, *ptr, b"other", *seq, Some(&cache));
        assert!(err.unwrap_err().is_corruption());
    }
}

#[test]
fn pointer_and_entry_roundtrip() {
    let p = Pointer { segment: 7, offset: 100, len: 4200 };
    assert_eq!(Pointer::decode(&p.encode()), Some(p));
    assert_eq!(Pointer::decode(&p.encode()[..19]), None);
    let mut payload = Vec::new();
    put_u64(&mut payload, 9);
    put_len_prefixed(&mut payload, b"key");
    payload.extend_from_slice(b"value");
    assert_eq!(decode_entry(&payload), Ok((9, &b"key"[..], &b"value"[..])));
    for n in 0..11 {
        assert!(decode_entry(&payload[..n]).is_err());
    }
}

#[test]
fn keyspace_entries_are_sealed_twice_and_erased_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Fs> = Arc::new(StdFs);
    let path = dir.path().join("000007.vlog");
    let mut ring = KeyRing::generate(Cipher::ChaCha20Poly1305).unwrap();
    assert!(ring.add_keyspace_key(3).unwrap());
    ring.publish();
    let ring = Arc::new(ring);
    let mut w = VlogWriter::create(&fs, &path, 7, Some(&ring)).unwrap();
    // Tree keys: varint keyspace id, then the user key. 3 is a named keyspace, 0 the default.
    let named = |i: u32| [&[3u8][..], format!("named{i}").as_bytes()].concat();
    let plain = |i: u32| [&[0u8][..], format!("plain{i}").as_bytes()].concat();
    let value = |i: u32| format!("MARKER-{i:04}-").repeat(40).into_bytes();
    let mut ptrs = Vec::new();
    for i in 0..20u32 {
        let k = if i % 2 == 0 { named(i) } else { plain(i) };
        let p = w.add(u64::from(i) + 1, &k, &value(i), i % 4 == 0).unwrap();
        ptrs.push((p, k, u64::from(i) + 1, value(i)));
    }
    // A keyspace without a key cannot be written.
    let err = w.add(99, &[&[9u8][..], b"x"].concat(), &[0; 600], false).unwrap_err();
    assert!(err.to_string().contains("keyspace 9"), "{err}");
    let (seg, len, seen) = close_and_read_back(&fs, &path, &ring, w, &ptrs);
    assert_eq!(seen, 20);

    // The keyspace's key is destroyed: its entries can no longer be read, the others can, and a
    // walk of the segment still authenticates every entry (the outer block, under the data
    // key) and skips the erased ones.
    let mut erased = (*ring).clone();
    assert!(erased.erase_keyspace_key(3));
    erased.publish();
    for (i, (p, k, seq, v)) in ptrs.iter().enumerate() {
        match seg.read(*p, k, *seq) {
            Ok(got) => {
                assert_eq!(i % 2, 1, "entry {i} of the erased keyspace was read");
                assert_eq!(got.value(), &v[..]);
            }
            Err(e) => {
                assert_eq!(i % 2, 0, "entry {i}: {e}");
                assert!(e.is_corruption() && e.to_string().contains("dropped keyspace"), "{e}");
            }
        }
    }
    let mut seen = 0;
    seg.scan(|_| {
        seen += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen, 10, "erased entries are skipped");
    // A flipped byte in an erased entry's outer block is still caught by the walk.
    let (p, ..) = ptrs[0];
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(p.offset + 40) as usize] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let seg = Segment::open(&fs, &path, 7, Some(&erased), Recorded::Closed(len)).unwrap();
    assert!(seg.scan(|_| Ok(())).unwrap_err().is_corruption());
    // The erased entries' plaintext never reached the file.
    assert!(!bytes.windows(12).any(|w| w == b"MARKER-0000-"));
}

#[test]
fn point_reads_open_in_place_and_check_every_byte() {
    for keys in keyrings() {
        let w = closed_segment(keys.as_ref(), 6);
        let cache = BlockCache::new(64 << 20);
        for (ptr, key, seq, value) in &w.entries {
            // Stored compressed (odd entries) or not (even ones): the same value either way,
            // from the file, then from the cache.
            assert_eq!(&w.seg.read(*ptr, key, *seq).unwrap().into_value(), value);
            assert_eq!(&read_cached(&w.seg, *ptr, key, *seq, Some(&cache)).unwrap(), value);
            let reads = w.tracked.reads.lock().unwrap().len();
            assert_eq!(&read_cached(&w.seg, *ptr, key, *seq, Some(&cache)).unwrap(), value);
            assert_eq!(w.tracked.reads.lock().unwrap().len(), reads, "a hit reads nothing");
            let entry = cache.get_value(ptr.segment, ptr.offset).unwrap();
            assert_eq!((entry.seq, entry.key(), entry.value()), (*seq, &key[..], &value[..]));
            assert!(w.seg.read(*ptr, key, seq + 1).unwrap_err().is_corruption());
        }
    }
}

#[test]
fn a_flipped_byte_of_an_entry_fails_its_point_read() {
    for keys in keyrings() {
        let w = closed_segment(keys.as_ref(), 2);
        for (ptr, key, seq, _) in &w.entries {
            let path = w.seg.path().to_path_buf();
            let original = std::fs::read(&path).unwrap();
            for at in [
                ptr.offset + 1,
                ptr.offset + u64::from(ptr.len) / 2,
                ptr.offset + u64::from(ptr.len) - 1,
            ] {
                let mut bytes = original.clone();
                bytes[at as usize] ^= 0x10;
                std::fs::write(&path, &bytes).unwrap();
                let err = w.seg.read(*ptr, key, *seq).unwrap_err();
                assert!(err.is_corruption(), "flip at {at}: {err}");
            }
            std::fs::write(&path, &original).unwrap();
        }
    }
}

#[test]
fn entries_compressed_ahead_read_back_as_entries_compressed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Fs> = Arc::new(StdFs);
    let path = dir.path().join("000008.vlog");
    let mut ring = KeyRing::generate(Cipher::Aes256Gcm).unwrap();
    assert!(ring.add_keyspace_key(3).unwrap());
    ring.publish();
    let mut w = VlogWriter::create(&fs, &path, 8, Some(&ring)).unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let mut entries = Vec::new();
    for i in 0..48u64 {
        // Default and named keyspace; compressible and random values; prepared and not; with
        // compression asked for or not (options changed since the writer prepared).
        let key = [&[if i % 2 == 0 { 0u8 } else { 3 }][..], format!("k{i}").as_bytes()].concat();
        let mut value = b"half-repeats ".repeat(300);
        if i % 3 == 0 {
            rng.fill_bytes(&mut value);
        }
        let compress = i % 4 != 3;
        let prepared = (i % 8 < 6).then(|| precompress_tail(&key, &value).unwrap());
        let before = w.staged.len();
        let p = w.add_prepared(i + 1, &key, &value, compress, prepared.as_deref()).unwrap();
        let stored = w.staged.len() - before;
        // Compressed exactly when asked for and the value compresses.
        let shrunk = stored < value.len();
        assert_eq!(shrunk, compress && i % 3 != 0, "entry {i}: {stored} bytes stored");
        entries.push((p, key, i + 1, value));
    }
    let (_, _, seen) = close_and_read_back(&fs, &path, &ring, w, &entries);
    assert_eq!(seen, entries.len());
}

/// Writes out and closes `w`'s segment, reopens it as a closed segment, checks that every
/// entry of `entries` (pointer, key, sequence, value) reads back; returns the segment, its
/// length and how many entries a walk of it yields.
fn close_and_read_back(
    fs: &Arc<dyn Fs>,
    path: &std::path::Path,
    ring: &KeyRing,
    mut w: VlogWriter,
    entries: &[(Pointer, Vec<u8>, u64, Vec<u8>)],
) -> (Segment, u64, usize) {
    w.write_staged().unwrap();
    w.sync().unwrap();
    let (len, number) = (w.len(), w.segment.number);
    drop(w);
    let seg = Segment::open(fs, path, number, Some(ring), Recorded::Closed(len)).unwrap();
    for (p, k, seq, v) in entries {
        assert_eq!(seg.read(*p, k, *seq).unwrap().value(), &v[..]);
    }
    let mut seen = 0;
    seg.scan(|_| {
        seen += 1;
        Ok(())
    })
    .unwrap();
    (seg, len, seen)
}
