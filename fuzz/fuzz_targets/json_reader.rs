//! Arbitrary text as an AdmissionReview body: whatever the webhook's one-pass reader takes,
//! serde_json reads to the same views (the reader stands in for serde_json on the fast path,
//! so it must never take a body serde_json refuses or read one differently).
#![no_main]

use libfuzzer_sys::fuzz_target;
use status_reporter_webhook::json_reader;
use status_reporter_webhook::review_view::ReviewView;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(fast) = json_reader::review(text) {
        let serde = serde_json::from_str::<ReviewView>(text).ok();
        assert_eq!(Some(fast), serde, "{text}");
    }
});
