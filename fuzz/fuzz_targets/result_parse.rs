//! Arbitrary bytes as the adapter's result file: never a panic; an accepted result obeys
//! the contract (reason 1..=128 bytes, message 1..=1024 bytes, trimmed at the start).
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_reporter::outcome::Outcome;
use status_reporter::result::{MAX_MESSAGE_BYTES, MAX_REASON_BYTES, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(r) => {
            assert!(
                !r.reason.is_empty() && r.reason.len() <= MAX_REASON_BYTES,
                "{r:?}"
            );
            assert!(
                !r.message.is_empty() && r.message.len() <= MAX_MESSAGE_BYTES,
                "{r:?}"
            );
            assert_eq!(r.reason.trim_start(), r.reason);
            assert_eq!(r.message.trim_start(), r.message);
        }
        Err(e) => {
            let o = Outcome::invalid(&e);
            assert!(!o.success && o.message.len() <= 32 * 1024, "{o:?}");
        }
    }
});
