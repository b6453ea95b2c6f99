//! Fuzz target: `sealdb::decode::vlog_entry` must not panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealdb::decode::vlog_entry(data);
});
