//! The webhook's metrics (`status_reporter_webhook::metrics`): what a scrape shows.

use status_reporter_webhook::admission::Outcome;
use status_reporter_webhook::metrics::Metrics;

#[test]
fn exposes_outcomes_latency_and_expiry() {
    let m = Metrics::new();
    m.observe(Outcome::Injected, 0.0001);
    m.observe(Outcome::Denied, 0.0001);
    m.cert_expiry.set(1_900_000_000);
    m.reload(false);
    let text = m.encode();
    assert!(
        text.contains("status_reporter_webhook_admission_requests_total{outcome=\"injected\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("status_reporter_webhook_admission_requests_total{outcome=\"denied\"} 1"),
        "{text}"
    );
    // `observe` indexes the counters by `outcome as usize`.
    for (i, outcome) in Outcome::ALL.into_iter().enumerate() {
        assert_eq!(outcome as usize, i, "{outcome:?}");
    }
    // Outcomes not seen yet are exported at 0.
    for outcome in ["skipped", "invalid"] {
        let line =
            format!("status_reporter_webhook_admission_requests_total{{outcome=\"{outcome}\"}} 0");
        assert!(text.contains(&line), "{text}");
    }
    assert!(
        text.contains("status_reporter_webhook_admission_duration_seconds_count 2"),
        "{text}"
    );
    assert!(
        text.contains("status_reporter_webhook_certificate_expiry_timestamp_seconds 1900000000"),
        "{text}"
    );
    assert!(
        text.contains("status_reporter_webhook_certificate_reloads_total{result=\"failure\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("status_reporter_webhook_log_lines_dropped_total 0"),
        "{text}"
    );
}
