//! Arbitrary JSON as the Job: when it reads as a batch/v1 Job and gets injected, the patch
//! applies to the object as received, yields a Job, and injecting that Job again is a no-op.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use status_reporter_webhook::config::InjectConfig;

#[path = "../checks/admission.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    let Ok(object) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    checks::inject_twice(&object, &InjectConfig::default()).unwrap_or_else(|e| panic!("{e}"));
});
