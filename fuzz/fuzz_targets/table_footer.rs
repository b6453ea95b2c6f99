//! Fuzz target: `sealdb::decode::table_footer` must not panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealdb::decode::table_footer(data);
});
