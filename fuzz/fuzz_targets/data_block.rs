//! Fuzz target: `sealdb::decode::data_block` (walks forward and backward, seeks, steps both
//! ways) must not panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealdb::decode::data_block(data);
});
