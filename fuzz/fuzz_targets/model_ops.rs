//! Fuzz target: operations on a database through a fault-injecting file system, checked
//! against a `BTreeMap` model (input format and checks: `fuzz/common/model_ops.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/model_ops.rs"]
mod model_ops;

fuzz_target!(|data: &[u8]| {
    model_ops::run(data);
});
