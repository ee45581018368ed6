//! Arbitrary bytes as the adapter's result file: never a panic; an accepted result obeys
//! the contract (reason 1..=128 bytes, message 1..=1024 bytes, trimmed at the start).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/result_parse.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::check_bytes(data).unwrap_or_else(|e| panic!("{e}"));
});
