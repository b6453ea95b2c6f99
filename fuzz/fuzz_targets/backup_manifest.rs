//! Fuzz target: `sealdb::decode::backup_manifest` must not panic, loop or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sealdb::decode::backup_manifest(data);
});
