//! Arbitrary bytes as the body of `POST /mutate`: the answer is always a well-formed
//! AdmissionReview (never a panic, never an HTTP error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use status_reporter_webhook::admission::review;
use status_reporter_webhook::config::InjectConfig;

fuzz_target!(|data: &[u8]| {
    let answer = review(data, &InjectConfig::default());
    let v: Value = serde_json::from_slice(answer.json().expect("the answer is written")).expect("response is JSON");
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert!(v["response"]["allowed"].is_boolean(), "{v}");
    assert!(v["response"]["uid"].is_string(), "{v}");
});
