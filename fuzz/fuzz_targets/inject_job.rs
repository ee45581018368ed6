//! Arbitrary JSON as the Job: when it reads as a batch/v1 Job and gets injected, the patch
//! applies to the object as received, yields a Job, and injecting that Job again is a no-op.
#![no_main]

use k8s_openapi::api::batch::v1::Job;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use status_reporter_webhook::config::InjectConfig;
use status_reporter_webhook::inject::{Injection, SkipReason, inject};

fuzz_target!(|data: &[u8]| {
    let Ok(object) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(job) = serde_json::from_value::<Job>(object.clone()) else {
        return;
    };
    let config = InjectConfig::default();
    match inject(&job, Some("fuzz"), &config) {
        Ok(Injection::Injected { patch, .. }) => {
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &patch).unwrap_or_else(|e| {
                panic!("patch does not apply: {e}\nobject: {object}\npatch: {patch:?}")
            });
            let again: Job = serde_json::from_value(patched.clone())
                .unwrap_or_else(|e| panic!("patched object is not a Job: {e}\n{patched}"));
            match inject(&again, Some("fuzz"), &config) {
                Ok(Injection::Skipped(SkipReason::AlreadyInjected)) => {}
                other => panic!("second inject is not a no-op: {other:?}\n{patched}"),
            }
        }
        Ok(Injection::Skipped(_)) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
