//! The memtable's skip list: entries laid out in an arena, one writer at a time (inserts take
//! a lock), any number of readers without a lock. Entries are never removed or changed once
//! linked; their memory is freed all at once when the list is dropped.
//!
//! An entry in the arena (8-byte aligned):
//!
//! ```text
//! seq: u64 | key_len: u32 | value_len: u32 | kind: u8 | height: u8 | padding to 24 bytes
//! | `height` links (8 bytes each) | key | value
//! ```
//!
//! A search step reads the entry it visits and nothing else: its links, sequence and key sit
//! together, where a node of a general-purpose concurrent map holds the key and value apart
//! from its links and frees each node on its own.
//!
//! Publication: an entry is written whole, its own links included, before a `Release` store
//! links it into its predecessor at level 0, then at each level above in turn. Readers follow
//! links with `Acquire` loads, so they reach only whole entries, and an entry reachable at a
//! level is reachable at every level below it. Entries are ordered by user key, then by
//! sequence number, newest first (the memtable's internal-key order).

use std::cmp::Ordering as CmpOrdering;
use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::key::ValueKind;

/// The most levels an entry links into. With a quarter of the entries reaching each next
/// level, 12 levels keep searches logarithmic up to about 16 million entries (a memtable
/// holds far fewer).
const MAX_HEIGHT: usize = 12;

/// Bytes of arena taken at a time; an entry larger than this gets a chunk of its own size.
const CHUNK: usize = 1 << 20;

/// An entry's fixed header; its links, key and value follow it in the arena.
#[repr(C)]
struct Node {
    seq: u64,
    key_len: u32,
    value_len: u32,
    kind: ValueKind,
    height: u8,
}

const HEADER: usize = 24;
const LINK: usize = size_of::<AtomicPtr<Node>>();
const _: () = assert!(size_of::<Node>() == HEADER && align_of::<Node>() == 8 && LINK == 8);

/// The link of `node` at `level` (below the node's height).
///
/// # Safety
/// `node` points at a node written by [`SkipList::insert`] (or the head) whose height is
/// above `level`.
unsafe fn link<'a>(node: *const Node, level: usize) -> &'a AtomicPtr<Node> {
    // Safety: the caller's contract: the node's links follow its header, `height` of them,
    // each written as an `AtomicPtr` before the node was published, 8-byte aligned.
    unsafe { &*links(node).add(level) }
}

/// Where the links of `node` start: right after its header.
fn links(node: *const Node) -> *const AtomicPtr<Node> {
    // `wrapping_add`: computing the address needs no promise; reading it is the callers'.
    node.wrapping_add(1).cast()
}

/// The key of `node`.
///
/// # Safety
/// `node` points at a node written by [`SkipList::insert`], and the arena outlives `'a`.
unsafe fn key<'a>(node: *const Node) -> &'a [u8] {
    // Safety: the caller's contract; the key's bytes follow the links, written before the
    // node was published and never changed.
    unsafe {
        let n = &*node;
        let at = links(node).add(usize::from(n.height)).cast::<u8>();
        std::slice::from_raw_parts(at, n.key_len as usize)
    }
}

/// How `node` orders against the internal key (`user_key`, `seq`).
///
/// # Safety
/// As for [`key`].
unsafe fn compare(node: *const Node, user_key: &[u8], seq: u64) -> CmpOrdering {
    // Safety: the caller's contract.
    unsafe { key(node).cmp(user_key).then_with(|| seq.cmp(&(*node).seq)) }
}

/// The writer's side: the arena's chunks and the height generator.
struct Writer {
    /// Every chunk, each from `Box::into_raw` (freed in `Drop`), with its length in words.
    chunks: Vec<(*mut MaybeUninit<u64>, usize)>,
    /// Where the next entry goes in the last chunk, and the bytes left there.
    next: *mut u8,
    left: usize,
    /// xorshift state for entry heights (a fixed seed: heights need no secrecy, only spread).
    rng: u64,
}

impl Writer {
    /// `size` bytes (a multiple of 8) of uninitialised, 8-byte aligned arena memory.
    fn alloc(&mut self, size: usize) -> *mut u64 {
        debug_assert_eq!(size % 8, 0);
        if size > self.left {
            let len = size.max(CHUNK);
            let words = len / 8;
            let chunk = Box::into_raw(Box::<[u64]>::new_uninit_slice(words));
            let base = chunk.cast::<MaybeUninit<u64>>();
            self.chunks.push((base, words));
            self.next = base.cast();
            self.left = len;
        }
        let at = self.next;
        // Safety: `size <= self.left`, so `at + size` is within (or one past) the chunk.
        self.next = unsafe { at.add(size) };
        self.left -= size;
        at.cast()
    }

    /// A height from 1 to `MAX_HEIGHT`, each level reached by a quarter of those below it.
    fn height(&mut self) -> usize {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (1 + x.trailing_zeros() as usize / 2).min(MAX_HEIGHT)
    }
}

/// The skip list (see the module documentation).
pub(crate) struct SkipList {
    /// The head: a node of height `MAX_HEIGHT` with no key, before every entry.
    head: *const Node,
    /// Levels in use (1 while empty); readers may see it lag the links, which is harmless.
    height: AtomicUsize,
    /// Arena bytes taken by entries (the head not counted: an empty list is 0).
    bytes: AtomicUsize,
    writer: Mutex<Writer>,
    /// This list's number, unique in the process: what a [`Pos`] is checked against.
    id: u64,
}

/// The number of the next list made.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

// Safety: the raw pointers point into chunks the list owns and frees only when dropped. Readers
// only read entries published with a `Release` store and never changed afterwards (but for
// their links, which are atomics); writers are serialised by `writer`'s lock.
unsafe impl Send for SkipList {}
// Safety: as for `Send`.
unsafe impl Sync for SkipList {}

impl std::fmt::Debug for SkipList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkipList").field("bytes", &self.bytes()).finish_non_exhaustive()
    }
}

/// A position in a [`SkipList`]: an entry, valid only with the list it came from (checked by
/// the list's number, never reused, so a position kept after its list is gone matches no
/// list).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Pos {
    list: u64,
    node: NonNull<Node>,
}

// Safety: a `Pos` is an address; it is read only through `SkipList::at`, which checks that it
// belongs to that list (which is then alive, as `at` borrows it), whose arena holds the entry
// as long as the list lives.
unsafe impl Send for Pos {}
// Safety: as for `Send`.
unsafe impl Sync for Pos {}

/// An entry of a [`SkipList`], borrowed from it.
#[derive(Clone, Copy)]
pub(crate) struct Entry<'a> {
    /// A published node of the list (a pointer with the arena's provenance, so the links, key
    /// and value after the header can be read through it).
    node: NonNull<Node>,
    list: std::marker::PhantomData<&'a SkipList>,
}

impl<'a> Entry<'a> {
    fn header(self) -> &'a Node {
        // Safety: `Entry`s are made only from published nodes of a list that outlives `'a`.
        unsafe { self.node.as_ref() }
    }
    pub(crate) fn seq(self) -> u64 {
        self.header().seq
    }
    pub(crate) fn kind(self) -> ValueKind {
        self.header().kind
    }
    pub(crate) fn user_key(self) -> &'a [u8] {
        // Safety: as for `header`.
        unsafe { key(self.node.as_ptr()) }
    }
    pub(crate) fn value(self) -> &'a [u8] {
        let n = self.header();
        // Safety: as for `header`; the value follows the key.
        unsafe {
            let key = links(self.node.as_ptr()).add(usize::from(n.height)).cast::<u8>();
            std::slice::from_raw_parts(key.add(n.key_len as usize), n.value_len as usize)
        }
    }
}

impl SkipList {
    pub(crate) fn new() -> SkipList {
        let mut w = Writer {
            chunks: Vec::new(),
            next: ptr::null_mut(),
            left: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        };
        let size = HEADER + LINK * MAX_HEIGHT;
        let head = w.alloc(size).cast::<Node>();
        // Safety: `head` is `size` bytes of fresh, aligned arena: the header, then
        // `MAX_HEIGHT` null links.
        unsafe {
            head.write(Node {
                seq: 0,
                key_len: 0,
                value_len: 0,
                kind: ValueKind::Delete,
                height: MAX_HEIGHT as u8,
            });
            let links = links(head).cast_mut();
            for level in 0..MAX_HEIGHT {
                links.add(level).write(AtomicPtr::new(ptr::null_mut()));
            }
        }
        SkipList {
            head,
            height: AtomicUsize::new(1),
            bytes: AtomicUsize::new(0),
            writer: Mutex::new(w),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Whether no entry is linked.
    pub(crate) fn is_empty(&self) -> bool {
        self.first().is_none()
    }

    /// Arena bytes taken by the entries, padding included.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Inserts an entry. (`user_key`, `seq`) should be new to the list: an equal entry is not
    /// replaced, and which of the two a search finds first is unspecified.
    ///
    /// # Panics
    /// If the key or value is 4 GiB or longer.
    pub(crate) fn insert(&self, user_key: &[u8], seq: u64, kind: ValueKind, value: &[u8]) {
        let key_len = u32::try_from(user_key.len()).expect("memtable key under 4 GiB");
        let value_len = u32::try_from(value.len()).expect("memtable value under 4 GiB");
        let mut w = self.writer.lock();
        let height = w.height();
        let mut prev = [self.head; MAX_HEIGHT];
        self.search(user_key, seq, &mut prev);
        let size = (HEADER + LINK * height + user_key.len() + value.len()).next_multiple_of(8);
        let node = w.alloc(size).cast::<Node>();
        // Safety: `node` is `size` bytes of fresh, aligned arena, written whole here before it
        // is published; `prev[l]` are the head or published nodes of height above `l` (from
        // `search`), and only this writer (holding the lock) stores links.
        unsafe {
            node.write(Node { seq, key_len, value_len, kind, height: height as u8 });
            let own = links(node).cast_mut();
            for (level, p) in prev.iter().enumerate().take(height) {
                own.add(level).write(AtomicPtr::new(link(*p, level).load(Ordering::Relaxed)));
            }
            let at = own.add(height).cast::<u8>();
            ptr::copy_nonoverlapping(user_key.as_ptr(), at, user_key.len());
            ptr::copy_nonoverlapping(value.as_ptr(), at.add(user_key.len()), value.len());
            for (level, p) in prev.iter().enumerate().take(height) {
                link(*p, level).store(node, Ordering::Release);
            }
        }
        self.height.fetch_max(height, Ordering::Release);
        self.bytes.fetch_add(size, Ordering::Relaxed);
    }

    /// Finds, at each level, the last node before (`user_key`, `seq`) (the head if none) and
    /// returns the first entry at or after it.
    fn search(
        &self,
        user_key: &[u8],
        seq: u64,
        prev: &mut [*const Node; MAX_HEIGHT],
    ) -> *const Node {
        let mut x = self.head;
        let mut level = self.height.load(Ordering::Acquire) - 1;
        // The node found at or after the probe one level up: met again a level down (as it
        // often is), it needs no second comparison.
        let mut after: *const Node = ptr::null();
        loop {
            // Safety: `x` is the head or a published node reached at `level`, so its height is
            // above `level`; `next`, if not null, is published.
            let next = unsafe { link(x, level).load(Ordering::Acquire) };
            if !next.is_null()
                && !ptr::eq(next, after)
                && unsafe { compare(next, user_key, seq) } == CmpOrdering::Less
            {
                x = next;
                continue;
            }
            after = next;
            prev[level] = x;
            if level == 0 {
                return next;
            }
            level -= 1;
        }
    }

    fn pos(&self, node: *const Node) -> Option<Pos> {
        NonNull::new(node.cast_mut())
            .filter(|n| !ptr::eq(n.as_ptr(), self.head))
            .map(|node| Pos { list: self.id, node })
    }

    /// The entry at `pos`.
    ///
    /// # Panics
    /// If `pos` came from another list.
    pub(crate) fn at(&self, pos: Pos) -> Entry<'_> {
        assert_eq!(pos.list, self.id, "a skip-list position used with another list");
        // `pos` was made by this list from a published node, alive as long as `self`.
        Entry { node: pos.node, list: std::marker::PhantomData }
    }

    /// The first entry at or after (`user_key`, `seq`).
    pub(crate) fn seek(&self, user_key: &[u8], seq: u64) -> Option<Pos> {
        let mut prev = [self.head; MAX_HEIGHT];
        self.pos(self.search(user_key, seq, &mut prev))
    }

    /// The first entry.
    pub(crate) fn first(&self) -> Option<Pos> {
        // Safety: the head has `MAX_HEIGHT` links.
        self.pos(unsafe { link(self.head, 0).load(Ordering::Acquire) })
    }

    /// The entry after `pos`.
    pub(crate) fn next(&self, pos: Pos) -> Option<Pos> {
        let e = self.at(pos);
        // Safety: a published node has at least one link.
        self.pos(unsafe { link(e.node.as_ptr(), 0).load(Ordering::Acquire) })
    }

    /// The last entry before (`user_key`, `seq`), or the last entry of all (`None`).
    pub(crate) fn seek_before(&self, bound: Option<(&[u8], u64)>) -> Option<Pos> {
        let mut x = self.head;
        let mut level = self.height.load(Ordering::Acquire) - 1;
        loop {
            // Safety: as in `search`.
            let next = unsafe { link(x, level).load(Ordering::Acquire) };
            let before = !next.is_null()
                && bound.is_none_or(|(k, s)| unsafe { compare(next, k, s) } == CmpOrdering::Less);
            if before {
                x = next;
            } else if level == 0 {
                return self.pos(x);
            } else {
                level -= 1;
            }
        }
    }

    /// The entry before `pos`.
    pub(crate) fn prev(&self, pos: Pos) -> Option<Pos> {
        let e = self.at(pos);
        self.seek_before(Some((e.user_key(), e.seq())))
    }
}

impl Drop for SkipList {
    fn drop(&mut self) {
        for &(base, words) in &self.writer.get_mut().chunks {
            // Safety: each chunk came from `Box::into_raw` of a slice of `words` words, and is
            // freed once, here; nothing reads the list any more (`&mut self`). Entries need no
            // drop of their own (plain bytes and atomics).
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, words)) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &SkipList) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut p = list.first();
        while let Some(pos) = p {
            let e = list.at(pos);
            out.push((e.user_key().to_vec(), e.seq()));
            p = list.next(pos);
        }
        out
    }

    #[test]
    fn entries_come_back_in_internal_key_order_both_ways() {
        let list = SkipList::new();
        let mut want = Vec::new();
        // A pseudo-random order, every key with up to three versions, values of many sizes.
        for i in 0..3000u64 {
            let k = (i * 7919 % 1000).to_be_bytes().to_vec();
            let seq = i + 1;
            let v = vec![(i % 251) as u8; (i % 300) as usize];
            list.insert(&k, seq, ValueKind::Put, &v);
            want.push((k, seq));
        }
        want.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        assert_eq!(keys(&list), want);
        assert!(!list.is_empty());
        assert!(SkipList::new().is_empty());
        let mut back = Vec::new();
        let mut p = list.seek_before(None);
        while let Some(pos) = p {
            let e = list.at(pos);
            back.push((e.user_key().to_vec(), e.seq()));
            assert_eq!(
                e.value(),
                vec![((e.seq() - 1) % 251) as u8; ((e.seq() - 1) % 300) as usize]
            );
            p = list.prev(pos);
        }
        back.reverse();
        assert_eq!(back, want);
        // Seeks land on the first entry at or after the probe, and before it.
        for (i, (k, s)) in want.iter().enumerate() {
            let at = list.at(list.seek(k, *s).unwrap());
            assert_eq!((at.user_key(), at.seq()), (k.as_slice(), *s));
            let before = list.seek_before(Some((k, *s))).map(|p| list.at(p).seq());
            assert_eq!(before, i.checked_sub(1).map(|j| want[j].1));
        }
        assert!(list.seek(&u64::MAX.to_be_bytes(), 0).is_none());
    }

    #[test]
    fn entries_larger_than_a_chunk_get_their_own() {
        let list = SkipList::new();
        let big = vec![7u8; CHUNK + 5];
        list.insert(b"b", 2, ValueKind::Put, b"small");
        list.insert(b"a", 1, ValueKind::Put, &big);
        list.insert(b"c", 3, ValueKind::Delete, b"");
        let got: Vec<_> = keys(&list).into_iter().map(|(k, _)| k).collect();
        assert_eq!(got, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(list.at(list.first().unwrap()).value(), big);
        assert_eq!(list.at(list.seek(b"c", 3).unwrap()).kind(), ValueKind::Delete);
        assert!(list.bytes() > CHUNK);
    }

    #[test]
    #[should_panic(expected = "another list")]
    fn a_position_of_another_list_is_refused() {
        let (a, b) = (SkipList::new(), SkipList::new());
        a.insert(b"k", 1, ValueKind::Put, b"v");
        let _ = b.at(a.first().unwrap());
    }

    #[test]
    fn readers_see_whole_entries_while_one_writer_inserts() {
        let list = std::sync::Arc::new(SkipList::new());
        let writer = {
            let list = list.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    let k = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_be_bytes();
                    list.insert(&k, i + 1, ValueKind::Put, &(i + 1).to_le_bytes().repeat(3));
                }
            })
        };
        let mut scans = 0;
        while !writer.is_finished() || scans == 0 {
            let mut last: Option<(Vec<u8>, u64)> = None;
            let mut p = list.first();
            while let Some(pos) = p {
                let e = list.at(pos);
                // The value is the sequence three times: a torn entry would not be.
                assert_eq!(e.value(), e.seq().to_le_bytes().repeat(3));
                let cur = (e.user_key().to_vec(), e.seq());
                if let Some(l) = &last {
                    assert!(l.0 < cur.0, "order broken");
                }
                last = Some(cur);
                p = list.next(pos);
            }
            scans += 1;
        }
        writer.join().unwrap();
        assert_eq!(keys(&list).len(), 20_000);
    }
}
