//! Fuzz target: `sealdb::decode::vlog_segment` (recovery's walk of a value-log segment, then
//! GC's authenticated walk) must not panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealdb::decode::vlog_segment(data);
});
