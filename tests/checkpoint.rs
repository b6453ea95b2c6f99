//! `DB::checkpoint`: a copy taken while four threads write opens with the same key and equals
//! the model at one point that includes every write acknowledged before the call; tables are
//! hard-linked; an existing directory is refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{check_model, Mode, Model};
use sealdb::{MasterKey, Options, DB};

const WRITERS: usize = 4;
/// Distinct keys per writer (each is overwritten and sometimes deleted).
const SLOTS: u64 = 48;

fn open(path: &Path, mode: Mode, key: &MasterKey) -> DB {
    let o: Options = common::options(path, mode, key)
        .memtable_size(32 << 10)
        .value_threshold(64)
        .vlog_segment_size(64 << 10);
    common::open(o, "checkpoint test")
}

/// Writer `t`'s `i`-th operation: a put of key `t:slot` (a value long enough for the value log
/// every third time), or, every seventh, a delete.
fn op(t: usize, i: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = format!("w{t}:{:03}", i % SLOTS).into_bytes();
    if i % 7 == 6 {
        return (key, None);
    }
    let pad = if i.is_multiple_of(3) { 100 } else { 4 };
    (key, Some(format!("{t}:{i}:{}", "x".repeat(pad)).into_bytes()))
}

fn apply(model: &mut Model, (k, v): (Vec<u8>, Option<Vec<u8>>)) {
    match v {
        Some(v) => model.insert(k, v),
        None => model.remove(&k),
    };
}

fn checkpoint_while_writing(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = Arc::new(open(&dir.path().join("db"), mode, &key));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, acked, stop) = (db.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    match op(t, i) {
                        (k, Some(v)) => db.put(k, v).unwrap(),
                        (k, None) => db.delete(k).unwrap(),
                    }
                    i += 1;
                    acked[t].store(i, Ordering::Release);
                }
                i
            })
        })
        .collect();
    // Let the writers get going (flushes and value-log segments happen meanwhile).
    while acked.iter().map(|a| a.load(Ordering::Acquire)).min().unwrap() < 1500 {
        std::thread::yield_now();
    }
    let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
    let cp = dir.path().join("checkpoint");
    db.checkpoint(&cp).unwrap();
    let after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
    stop.store(true, Ordering::Relaxed);
    let done: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let copy = open(&cp, mode, &key);
    let mut whole = Model::new();
    for t in 0..WRITERS {
        // The copy's keys of writer t must equal writer t's first n operations for one n
        // between what it had acknowledged before the call and what it had done after it.
        let prefix = format!("w{t}:");
        let got: BTreeMap<Vec<u8>, Vec<u8>> =
            copy.prefix(prefix.as_bytes()).map(|r| r.unwrap()).collect();
        let mut model = Model::new();
        let mut found = None;
        for n in 0..=done[t] {
            if n >= before[t] && model == got {
                found = Some(n);
                break;
            }
            if n < done[t] {
                apply(&mut model, op(t, n));
            }
        }
        let n = found.unwrap_or_else(|| {
            panic!(
                "{mode:?}: writer {t}: the checkpoint is no prefix of its writes from {} on \
                 (acknowledged after the call: {})",
                before[t], after[t]
            )
        });
        assert!(
            n <= after[t] + 1,
            "{mode:?}: writer {t}: {n} ops in the copy, {} acked after",
            after[t]
        );
        whole.extend(got);
    }
    check_model(&format!("{mode:?} checkpoint"), &copy, &whole);
    drop(copy);
    let report = sealdb::verify(&cp, mode.encrypted().then_some(&key)).unwrap();
    assert!(report.is_clean(), "{mode:?}: {:?}", report.problems);
    // The source goes on.
    db.put(b"after", b"1").unwrap();
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn checkpoint_while_four_threads_write_plain() {
    checkpoint_while_writing(Mode::Plain);
}

#[test]
fn checkpoint_while_four_threads_write_aes() {
    checkpoint_while_writing(Mode::Aes);
}

#[cfg(unix)]
#[test]
fn tables_are_hard_linked_and_an_existing_directory_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let db = open(&dir.path().join("db"), Mode::ChaCha, &key);
    for i in 0..2000u32 {
        db.put(format!("k{i:05}"), format!("v{i}").repeat(3)).unwrap();
    }
    db.flush().unwrap();
    let cp = dir.path().join("cp");
    db.checkpoint(&cp).unwrap();
    let tables = common::files_with_suffix(&cp, ".sst");
    assert!(!tables.is_empty());
    for t in &tables {
        let a = std::fs::metadata(cp.join(t)).unwrap();
        let b = std::fs::metadata(dir.path().join("db").join(t)).unwrap();
        assert_eq!(a.ino(), b.ino(), "{t} is not a hard link");
    }
    let err = db.checkpoint(&cp).unwrap_err();
    assert!(matches!(err, sealdb::Error::InvalidArgument(_)), "{err}");
    // A checkpoint of a checkpoint, with the key current then.
    let copy = open(&cp, Mode::ChaCha, &key);
    assert_eq!(copy.get(b"k01999").unwrap().as_deref(), Some("v1999".repeat(3).as_bytes()));
    let other = MasterKey::generate();
    drop(copy);
    let wrong = DB::open(common::options(&cp, Mode::ChaCha, &other));
    assert!(matches!(common::open_err(wrong, "wrong key"), sealdb::Error::WrongMasterKey));
}
