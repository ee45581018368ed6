//! Prometheus metrics: admission outcomes, handling latency, certificate expiry and reloads,
//! and what the connection and body limits refused.

use std::sync::atomic::AtomicI64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::admission::Outcome;
use crate::body::BodyRefusal;

/// One label and its value.
type Label = [(&'static str, &'static str); 1];

/// All webhook metrics, registered once.
pub struct Metrics {
    registry: Registry,
    /// `admission_requests`' counter of each outcome, in [`Outcome::ALL`]'s order: taken once, so that
    /// counting a review is one atomic add, not a lock and a hash lookup in the family; and
    /// every outcome is exported from the start, at 0, as Prometheus advises for a label
    /// whose values are known.
    by_outcome: [Counter; 4],
    duration: Histogram,
    /// Unix time (seconds) at which the served certificate expires.
    pub cert_expiry: Gauge<i64, AtomicI64>,
    reloads: Family<Label, Counter>,
    refused_requests: Family<Label, Counter>,
    refused_connections: Counter,
    evicted_connections: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers the metrics under the `status_reporter_webhook` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("status_reporter_webhook");
        let requests = Family::<Label, Counter>::default();
        registry.register(
            "admission_requests",
            "AdmissionReviews answered, by outcome",
            requests.clone(),
        );
        // 25 µs .. ~0.4 s: the pure step takes microseconds, anything in the tail is news.
        let duration = Histogram::new(exponential_buckets(0.000_025, 2.0, 15));
        registry.register(
            "admission_duration_seconds",
            "Time to answer an AdmissionReview once its body is read",
            duration.clone(),
        );
        let cert_expiry = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "Unix time at which the serving certificate expires",
            cert_expiry.clone(),
        );
        let reloads = Family::<Label, Counter>::default();
        registry.register(
            "certificate_reloads",
            "Certificate reload attempts after a change in the certificate directory",
            reloads.clone(),
        );
        let refused_requests = Family::<Label, Counter>::default();
        registry.register(
            "requests_refused",
            "Requests answered without a review because of their body, by reason",
            refused_requests.clone(),
        );
        let refused_connections = Counter::default();
        registry.register(
            "connections_refused",
            "Connections closed at accept: at --max-connections with every connection busy",
            refused_connections.clone(),
        );
        let evicted_connections = Counter::default();
        registry.register(
            "connections_evicted",
            "Idle connections closed to make room for a new one at --max-connections",
            evicted_connections.clone(),
        );
        registry.register_collector(Box::new(DroppedLogLines));
        let by_outcome = Outcome::ALL.map(|outcome| {
            requests
                .get_or_create(&[("outcome", outcome.as_str())])
                .clone()
        });
        Metrics {
            registry,
            by_outcome,
            duration,
            cert_expiry,
            reloads,
            refused_requests,
            refused_connections,
            evicted_connections,
        }
    }

    /// Counts one answered review.
    pub fn observe(&self, outcome: Outcome, seconds: f64) {
        self.by_outcome[outcome as usize].inc();
        self.duration.observe(seconds);
    }

    /// Counts one certificate reload attempt.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.reloads.get_or_create(&[("result", result)]).inc();
    }

    /// Counts one request refused for its body.
    pub fn request_refused(&self, refusal: &BodyRefusal) {
        let reason = match refusal {
            BodyRefusal::TooLarge { .. } => "body_too_large",
            BodyRefusal::OverBudget => "body_memory",
            BodyRefusal::Read(_) => "body_unreadable",
        };
        self.refused_requests
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Counts one connection closed at accept.
    pub fn connection_refused(&self) {
        self.refused_connections.inc();
    }

    /// Counts one idle connection closed to make room.
    pub fn connection_evicted(&self) {
        self.evicted_connections.inc();
    }

    /// OpenMetrics text exposition (`application/openmetrics-text`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `log_lines_dropped_total`, read from the log writer at each scrape.
#[derive(Debug)]
struct DroppedLogLines;

impl Collector for DroppedLogLines {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new(crate::logging::dropped_lines());
        let metric = encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines dropped because stderr did not take them in time",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}
