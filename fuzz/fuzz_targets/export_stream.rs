//! Fuzz target: `sealdb::decode::export_stream` must not panic, loop or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealdb::decode::export_stream(data);
});
